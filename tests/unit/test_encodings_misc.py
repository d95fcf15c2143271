"""Names that are not UTF-8, on hand-made bytes: a copy-id target sent and read back
by the install script's protocol, an SFTP path and name reply, allowed_signers
principals matched byte by byte; and the locale variable Python adds at start taken
back out of the environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from keytool import allowedsigners
from keytool.copyid import RemoteFile, ShellExchange, refusal_causes
from keytool.keys.ed25519 import Ed25519Private
from keytool.keys.pubfile import format_public_line
from keytool.transport.sftp import Attributes, Name
from keytool.wire import Writer
from tests.unit.test_sftp import packet, sent, started

TARGET = os.fsdecode(b".ssh/caf\xe9")


def test_target_goes_and_comes_back_as_its_bytes() -> None:
    exchange = ShellExchange(TARGET, mark="ab" * 16)
    assert exchange.opening().endswith(b"\n.ssh/caf\xe9\n")
    remote = exchange.feed(b"keytool-copyid 3\n/home/u/.ssh/caf\xe9\nnone\n" + b"ab" * 16 + b"\n")
    assert remote is not None
    assert remote.path.encode("utf-8", "surrogateescape") == b"/home/u/.ssh/caf\xe9"


def test_refusal_names_the_path_escaped() -> None:
    causes = refusal_causes(RemoteFile(TARGET, b"", 0o606))
    assert "StrictModes: .ssh/caf\\351 is writable by group or others (mode 0606)" in causes


def test_sftp_path_and_name_reply_keep_the_bytes() -> None:
    client = started()
    rid = client.realpath(TARGET)
    _, r = sent(client)
    r.uint32()
    assert r.string() == b".ssh/caf\xe9"
    body = Writer().uint32(rid).uint32(1).string(b"/h/caf\xe9").string(b"")
    (reply,) = client.receive_data(packet(104, body.raw(Attributes().to_wire()).getvalue()))
    assert isinstance(reply, Name)
    assert reply.names[0][0] == os.fsdecode(b"/h/caf\xe9")


def test_principals_match_byte_by_byte() -> None:
    key = Ed25519Private.generate().public
    line = b"caf\xe9@x,caf?@one,caf??@utf8 " + format_public_line(key).encode() + b"\n"
    text = line.decode("utf-8", "surrogateescape")
    (signer,) = allowedsigners.parse(text)
    for identity, expected in [
        (b"caf\xe9@x", True), ("café@x".encode(), False), (b"caf\xe9@one", True),
        ("café@one".encode(), False), ("café@utf8".encode(), True),
    ]:  # fmt: skip
        found = allowedsigners.allowed([signer], os.fsdecode(identity), key, "file", 0)
        assert found is expected, identity


@pytest.mark.parametrize(
    ("given", "expected"),
    [({"LANG": "C"}, None), ({"LC_CTYPE": "C"}, "C"), ({"LC_CTYPE": "C.UTF-8"}, "C.UTF-8")],
)
def test_coerced_locale_taken_back(given: dict[str, str], expected: str | None) -> None:
    """Python sets LC_CTYPE=C.UTF-8 at start for a C locale (PEP 538); keytool's main
    gives back what the user had, while the process's own locale stays."""
    code = (
        "import os, sys; from keytool.cli import app; from keytool.display import utf8_locale; "
        "before = utf8_locale(); app._undo_locale_coercion(); "
        "print(os.environ.get('LC_CTYPE'), before == utf8_locale())"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **given}
    env.update({k: v for k, v in os.environ.items() if k == "PYTHONPATH"})
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout == f"{expected} True\n"

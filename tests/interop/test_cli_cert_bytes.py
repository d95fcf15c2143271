"""Certificates as bytes, as ssh-keygen 9.2 takes them: one another CA made with its
options in another order is read and written back as it is (the CA signed those
bytes), names that are not UTF-8 are kept, and the -z serial counter wraps as
ssh-keygen's uint64 does."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from keytool.wire import Writer
from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require

ENV = base_env(TZ="UTC")


def keygen(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require("ssh-keygen"), *map(os.fsencode, args)], capture_output=True, env=ENV, timeout=60
    )


def keytool(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*KEYTOOL, *map(os.fsencode, args)], capture_output=True, env=ENV, timeout=60
    )


def _ed25519_blob(key: Ed25519PrivateKey) -> bytes:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Writer().string("ssh-ed25519").string(raw).getvalue()


def _options(*pairs: tuple[str, bytes]) -> bytes:
    out = Writer()
    for name, data in pairs:
        out.string(name).string(data)
    return out.getvalue()


def other_ca_certificate(folder: Path) -> Path:
    """A user certificate whose extensions are not in name order (the order ssh-keygen
    writes), validly signed over those bytes by an Ed25519 CA."""
    ca = Ed25519PrivateKey.generate()
    user = Ed25519PrivateKey.generate()
    user_raw = user.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    name = "ssh-ed25519-cert-v01@openssh.com"
    extensions = _options(
        ("permit-pty", b""),
        ("login@github.com", Writer().string("octocat").getvalue()),
        ("permit-agent-forwarding", b""),
    )
    signed = (
        Writer()
        .string(name)
        .string(os.urandom(32))
        .string(user_raw)
        .uint64(7)
        .uint32(1)
        .string("other-ca issued")
        .string(Writer().string("alice").getvalue())
        .uint64(0)
        .uint64(2**64 - 1)
        .string(b"")
        .string(extensions)
        .string(b"")
        .string(_ed25519_blob(ca))
        .getvalue()
    )
    signature = Writer().string("ssh-ed25519").string(ca.sign(signed)).getvalue()
    blob = signed + Writer().string(signature).getvalue()
    path = folder / "user-cert.pub"
    path.write_text(f"{name} {base64.b64encode(blob).decode()} alice@laptop\n")
    return path


def test_options_in_another_order_are_read_and_kept(tmp_path: Path) -> None:
    cert = other_ca_certificate(tmp_path)
    theirs = keygen("-L", "-f", cert)
    mine = keytool("cert", "-L", "-f", cert)
    assert theirs.returncode == mine.returncode == 0, mine.stderr
    assert mine.stdout == theirs.stdout
    assert b"login@github.com" in mine.stdout
    # the fingerprint covers the blob as the CA made it: keytool writes nothing else
    theirs = keygen("-l", "-f", cert)
    mine = keytool("fingerprint", "-f", cert)
    assert theirs.returncode == mine.returncode == 0, mine.stderr
    assert mine.stdout == theirs.stdout


@pytest.mark.parametrize(
    ("key_id", "principal"),
    [(b"caf\xe9", b"jos\xe9"), (b"caf\xc3\xa9\x01", b"ren\xc3\xa9e"), (b"tab\there", b"\xff")],
)
def test_names_that_are_not_utf8(tmp_path: Path, key_id: bytes, principal: bytes) -> None:
    for name in ("ca", "user"):
        made = keygen("-q", "-t", "ed25519", "-N", "", "-f", tmp_path / name)
        assert made.returncode == 0, made.stderr
    user = tmp_path / "user.pub"
    cert = tmp_path / "user-cert.pub"
    args = ("-s", tmp_path / "ca", "-I", os.fsdecode(key_id), "-n", os.fsdecode(principal))
    theirs = keygen(*args, user)
    assert theirs.returncode == 0, theirs.stderr
    shown = keygen("-L", "-f", cert)
    listed = keytool("cert", "-L", "-f", cert)
    assert listed.returncode == shown.returncode == 0, listed.stderr
    assert listed.stdout == shown.stdout and key_id in listed.stdout
    cert.unlink()
    mine = keytool("cert", *args, user)
    assert mine.returncode == 0, mine.stderr
    # the same report (ssh-keygen logs it with \r\n and its bytes escaped), the same names
    assert mine.stderr.splitlines() == [theirs.stderr.rstrip(b"\r\n")]
    again = keygen("-L", "-f", cert)
    assert again.returncode == 0
    assert [line for line in again.stdout.splitlines() if b"Key ID" in line] == [
        b'        Key ID: "' + key_id + b'"'
    ]
    assert b"                " + principal + b"\n" in again.stdout


def test_serial_counter_wraps_as_ssh_keygen(tmp_path: Path) -> None:
    for name in ("ca", "a", "b", "c"):
        made = keygen("-q", "-t", "ed25519", "-N", "", "-f", tmp_path / name)
        assert made.returncode == 0, made.stderr
    pubs = [tmp_path / f"{name}.pub" for name in ("a", "b", "c")]
    serials: dict[str, list[bytes]] = {}
    reports: dict[str, list[bytes]] = {}
    for tool, run in (("ssh-keygen", keygen), ("keytool", keytool)):
        for name in ("a", "b", "c"):
            (tmp_path / f"{name}-cert.pub").unlink(missing_ok=True)
        prefix = ("cert",) if tool == "keytool" else ()
        made = run(*prefix, "-s", tmp_path / "ca", "-I", "x", "-z", f"+{2**64 - 2}", *pubs)
        assert made.returncode == 0, made.stderr
        reports[tool] = [line.rstrip(b"\r") for line in made.stderr.splitlines()]
        serials[tool] = [
            line.strip()
            for name in ("a", "b", "c")
            for line in keygen("-L", "-f", tmp_path / f"{name}-cert.pub").stdout.splitlines()
            if line.strip().startswith(b"Serial:")
        ]
    assert serials["keytool"] == serials["ssh-keygen"]
    assert serials["keytool"] == [
        b"Serial: 18446744073709551614",
        b"Serial: 18446744073709551615",
        b"Serial: 0",
    ]
    assert reports["keytool"] == reports["ssh-keygen"]

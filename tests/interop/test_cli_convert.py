"""``keytool export`` / ``keytool import`` against ``ssh-keygen -e`` / ``-i``: the same
bytes out, for every key type and format ssh-keygen writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require, run

KEYS = [("ed25519", "256"), ("rsa", "2048"), ("rsa", "3072"), ("ecdsa", "256"),
        ("ecdsa", "384"), ("ecdsa", "521")]  # fmt: skip


def tool(name: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [require("ssh-keygen")] if name == "ssh-keygen" else [*KEYTOOL]
    return subprocess.run([*command, *args], capture_output=True, env=base_env(), timeout=60)


@pytest.mark.parametrize(("kind", "bits"), KEYS)
@pytest.mark.parametrize("fmt", ["RFC4716", "PKCS8", "PEM"])
def test_export_and_import_as_ssh_keygen(tmp_path: Path, kind: str, bits: str, fmt: str) -> None:
    key = tmp_path / "id"
    run([require("ssh-keygen"), "-q", "-t", kind, "-b", bits, "-N", "", "-C", "c", "-f", key])
    public_line = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    for source in (f"{key}.pub", str(key)):  # a public key file, and its private key
        theirs = tool("ssh-keygen", "-e", "-m", fmt, "-f", source)
        ours = tool("keytool", "export", "-m", fmt, "-f", source)
        assert ours.returncode == theirs.returncode, ours.stderr
        if theirs.returncode != 0:  # ssh-keygen refuses PKCS8/PEM for Ed25519: so do we
            assert kind == "ed25519" and len(ours.stderr.splitlines()) == 1
            return
        assert ours.stdout == theirs.stdout
    exported = tmp_path / "exported"
    exported.write_bytes(ours.stdout)
    imported = tool("keytool", "import", "-m", fmt, "-f", str(exported))
    reference = tool("ssh-keygen", "-i", "-m", fmt, "-f", str(exported))
    assert imported.stdout == f"{public_line}\n".encode()
    if reference.returncode == 0:
        assert reference.stdout == imported.stdout
    else:  # ssh-keygen -i -m PEM reads only RSA's PKCS#1 form; keytool reads this too
        assert (kind, fmt) == ("ecdsa", "PEM")
    # any format is recognised without -m
    assert tool("keytool", "import", "-f", str(exported)).stdout == imported.stdout


def test_rfc4716_with_continued_headers(tmp_path: Path) -> None:
    key = tmp_path / "id"
    run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key])
    blob = Path(f"{key}.pub").read_text().split()[1]
    text = (
        "---- BEGIN SSH2 PUBLIC KEY ----\n"
        'Comment: "a comment long enough to go on \\\n'
        'over two lines"\n'
        "x-private-tag: anything: with colons\n"
        f"{blob[:40]}\n{blob[40:]}\n"
        "---- END SSH2 PUBLIC KEY ----\n"
    )
    path = tmp_path / "ssh2.pub"
    path.write_text(text)
    ours, theirs = (
        tool("keytool", "import", "-f", str(path)),
        tool("ssh-keygen", "-i", "-f", str(path)),
    )
    assert ours.stdout == theirs.stdout and theirs.returncode == 0


@pytest.mark.parametrize(
    "content",
    [
        b"---- BEGIN SSH2 PUBLIC KEY ----\nAAAA!!\n---- END SSH2 PUBLIC KEY ----\n",
        b"---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n",
        b"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
        # an EC key whose curve OID is one OpenSSL does not know
        b"-----BEGIN PUBLIC KEY-----\n"
        b"MFkwEwYHKoZIzj0CAQYIKoZIzj0SAQcDQgAEt2vnpy3mqjivTpK2bc2HKWntmAR1\n"
        b"8oPLbpqTn3Sv7cAXe9WldW8H5kZDx88l7F2k7zL1V1d9eMi6l3CORKKd/A==\n"
        b"-----END PUBLIC KEY-----\n",
        b"ssh-ed25519 AAAA",
        b"\xff\xfe",
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    done = tool("keytool", "import", "-f", str(path))
    assert done.returncode != 0 and done.stdout == b""
    assert len(done.stderr.splitlines()) == 1 and b"Traceback" not in done.stderr

"""Key files and fingerprints against the real ssh-keygen, in both directions.

Ours -> ssh-keygen: files written by keytool.keys.openssh.dump, read by ``ssh-keygen -y``
and ``-l``/``-lv``. ssh-keygen -> ours: its keys in every format and cipher it writes,
loaded by keytool.keys.load_private.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa

from keytool.errors import PassphraseError, UnsupportedKeyError
from keytool.files import PRIVATE_MODE, write_atomic
from keytool.keys import load_private, openssh
from keytool.keys.fingerprint import describe, randomart
from keytool.keys.pubfile import format_public_line, parse_public_line, parse_public_text
from tests.interop.keysets import SPECS, keygen_key, our_key, ssh_keygen
from tests.peers import run

PASSPHRASE = "pass phrase"  # ssh-keygen wants at least five characters
COMMENT = "keytool test key, with spaces"


def keygen(*args: str | Path) -> str:
    """Run ssh-keygen; it must succeed; returns its stdout."""
    result = run([ssh_keygen(), *args])
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- ours -> ssh-keygen ---


@pytest.mark.parametrize("passphrase", [None, PASSPHRASE], ids=["plain", "encrypted"])
@pytest.mark.parametrize(("kind", "bits"), SPECS)
def test_ssh_keygen_reads_our_key_file(
    kind: str, bits: int, passphrase: str | None, tmp_path: Path
) -> None:
    key = our_key(kind, bits)
    secret = passphrase.encode() if passphrase else None
    path = tmp_path / "id_test"
    write_atomic(path, openssh.dump(key, COMMENT, secret), PRIVATE_MODE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ours = format_public_line(key.public, COMMENT)
    if passphrase:
        assert keygen("-y", "-P", passphrase, "-f", path) == ours + "\n"
        wrong = run([ssh_keygen(), "-y", "-P", "not the passphrase", "-f", path])
        assert wrong.returncode != 0
        assert "incorrect passphrase" in wrong.stderr
    else:
        assert keygen("-y", "-f", path) == ours + "\n"
        # no .pub beside it: ssh-keygen reads the key and comment from our file itself
        assert keygen("-l", "-f", path) == describe(key.public, COMMENT) + "\n"


@pytest.mark.parametrize("hash_name", ["sha256", "md5"])
@pytest.mark.parametrize(("kind", "bits"), SPECS)
def test_ssh_keygen_fingerprints_equal_ours(
    kind: str, bits: int, hash_name: str, tmp_path: Path
) -> None:
    key = our_key(kind, bits)
    pub = tmp_path / "id_test.pub"
    pub.write_text(format_public_line(key.public, COMMENT) + "\n")
    line = describe(key.public, COMMENT, hash_name)
    assert keygen("-l", "-E", hash_name, "-f", pub) == line + "\n"
    picture = randomart(key.public, hash_name)
    assert keygen("-lv", "-E", hash_name, "-f", pub) == f"{line}\n{picture}\n"


# --- ssh-keygen -> ours ---

# PEM headers ssh-keygen writes per format, key kind and encryption
HEADERS = {
    ("PEM", "rsa"): b"-----BEGIN RSA PRIVATE KEY-----",
    ("PEM", "ecdsa"): b"-----BEGIN EC PRIVATE KEY-----",
    ("PKCS8", "rsa"): b"-----BEGIN PRIVATE KEY-----",
    ("PKCS8", "ecdsa"): b"-----BEGIN PRIVATE KEY-----",
}


def convert(source: bytes, path: Path, fmt: str | None, passphrase: str, *extra: str) -> bytes:
    """Have ssh-keygen rewrite an unencrypted key in ``fmt`` with ``passphrase`` (-p)."""
    write_atomic(path, source, PRIVATE_MODE)
    args = ["-p", "-P", "", "-N", passphrase, *extra, "-f", str(path)]
    if fmt:
        args[1:1] = ["-m", fmt]
    keygen(*args)
    return path.read_bytes()


@pytest.mark.parametrize("passphrase", [None, PASSPHRASE], ids=["plain", "encrypted"])
@pytest.mark.parametrize("fmt", [None, "PEM", "PKCS8"], ids=["openssh", "pem", "pkcs8"])
@pytest.mark.parametrize(("kind", "bits"), SPECS)
def test_we_load_ssh_keygen_keys(
    kind: str, bits: int, fmt: str | None, passphrase: str | None, tmp_path: Path
) -> None:
    theirs = keygen_key(kind, bits, tmp_path)
    text = convert(theirs.private, tmp_path / "key", fmt, passphrase or "")
    if fmt is None or kind == "ed25519":
        # ssh-keygen writes ed25519 keys in its own format whatever -m says
        assert text.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
        comment = theirs.comment
    else:
        header = HEADERS[fmt, kind]
        if passphrase and fmt == "PKCS8":
            header = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
        assert text.startswith(header + b"\n")
        assert (b"ENCRYPTED" in text) is bool(passphrase)
        comment = ""  # PEM has no place for one
    secret = passphrase.encode() if passphrase else None
    key, loaded_comment = load_private(text, secret)
    assert loaded_comment == comment
    assert format_public_line(key.public, theirs.comment) == theirs.public_line
    if passphrase:
        with pytest.raises(PassphraseError):
            load_private(text, b"not the passphrase")
        with pytest.raises(PassphraseError):
            load_private(text, None)


@pytest.mark.parametrize("hash_name", ["sha256", "md5"])
@pytest.mark.parametrize(("kind", "bits"), SPECS)
def test_our_fingerprints_of_ssh_keygen_keys(
    kind: str, bits: int, hash_name: str, tmp_path: Path
) -> None:
    theirs = keygen_key(kind, bits, tmp_path)
    pub = tmp_path / "key.pub"
    pub.write_text(theirs.public_line + "\n")
    key, comment = parse_public_text(pub.read_bytes())
    line = describe(key, comment, hash_name)
    assert keygen("-l", "-E", hash_name, "-f", pub) == line + "\n"
    assert keygen("-lv", "-E", hash_name, "-f", pub) == f"{line}\n{randomart(key, hash_name)}\n"


CIPHERS = [
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
]


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize(("kind", "bits"), [("ed25519", 256), ("ecdsa", 384), ("rsa", 2048)])
def test_we_load_every_cipher_ssh_keygen_writes(
    kind: str, bits: int, cipher: str, tmp_path: Path
) -> None:
    theirs = keygen_key(kind, bits, tmp_path)
    # two bcrypt rounds: the cipher is under test here, not the work factor
    text = convert(theirs.private, tmp_path / "key", None, PASSPHRASE, "-Z", cipher, "-a", "2")
    parsed = openssh.parse(text)
    assert (parsed.cipher, parsed.kdf, parsed.rounds) == (cipher, "bcrypt", 2)
    key, comment = load_private(text, PASSPHRASE.encode())
    assert format_public_line(key.public, comment) == theirs.public_line
    with pytest.raises(PassphraseError):
        load_private(text, b"not the passphrase")


@pytest.mark.parametrize(
    ("fmt", "passphrase"),
    [(None, ""), (None, PASSPHRASE), ("PEM", ""), ("PEM", PASSPHRASE), ("PKCS8", "")],
    ids=["openssh", "openssh-encrypted", "pem", "pem-encrypted", "pkcs8"],
)
@pytest.mark.parametrize("newline", ["crlf", "crlf-no-final", "lf-no-final"])
def test_crlf_and_missing_final_newline(
    fmt: str | None, passphrase: str, newline: str, tmp_path: Path
) -> None:
    theirs = keygen_key("ecdsa", 256, tmp_path)
    text = convert(theirs.private, tmp_path / "key", fmt, passphrase, "-a", "2")
    if newline.startswith("crlf"):
        text = text.replace(b"\n", b"\r\n")
    if newline.endswith("no-final"):
        text = text.rstrip(b"\r\n")
    key, _ = load_private(text, passphrase.encode() or None)
    assert format_public_line(key.public, theirs.comment) == theirs.public_line


def _dsa_key(tmp_path: Path, fmt: str | None) -> tuple[bytes, str | None]:
    """A DSA private key file (and its .pub line) from ssh-keygen if it still makes them,
    else crafted with cryptography (no .pub then)."""
    path = tmp_path / "id_dsa"
    args: list[str | Path] = [ssh_keygen(), "-q", "-t", "dsa", "-N", "", "-C", "old", "-f", path]
    if fmt:
        args[2:2] = ["-m", fmt]
    if run(args).returncode == 0:
        return path.read_bytes(), Path(f"{path}.pub").read_text()
    key = dsa.generate_private_key(1024)
    pem_format = {
        None: serialization.PrivateFormat.OpenSSH,
        "PEM": serialization.PrivateFormat.TraditionalOpenSSL,
        "PKCS8": serialization.PrivateFormat.PKCS8,
    }[fmt]
    text = key.private_bytes(serialization.Encoding.PEM, pem_format, serialization.NoEncryption())
    return text, None


@pytest.mark.parametrize("fmt", [None, "PEM", "PKCS8"], ids=["openssh", "pem", "pkcs8"])
def test_dsa_key_is_named_unsupported(fmt: str | None, tmp_path: Path) -> None:
    text, public_line = _dsa_key(tmp_path, fmt)
    with pytest.raises(UnsupportedKeyError, match="DSA"):
        load_private(text)
    if public_line is not None:
        assert public_line.startswith("ssh-dss ")
        with pytest.raises(UnsupportedKeyError, match="DSA"):
            parse_public_line(public_line)


@pytest.mark.parametrize("comment", ["", "ünïcode ☃ comment", "tab\tinside"])
def test_comments_both_ways(comment: str, tmp_path: Path) -> None:
    # ours -> ssh-keygen: the comment stored in our file is the one ssh-keygen prints
    key = our_key("ed25519", 256)
    path = tmp_path / "ours"
    write_atomic(path, openssh.dump(key, comment), PRIVATE_MODE)
    assert keygen("-y", "-f", path) == format_public_line(key.public, comment) + "\n"
    # an empty comment in a key file is printed empty, not as "no comment"
    assert keygen("-l", "-f", path) == describe(key.public, comment) + "\n"
    # ssh-keygen -> ours: the comment it stored is the one we load
    theirs = tmp_path / "theirs"
    keygen("-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", theirs)
    loaded, loaded_comment = load_private(theirs.read_bytes())
    assert loaded_comment == comment
    public, public_comment = parse_public_text(Path(f"{theirs}.pub").read_bytes())
    assert (public, public_comment) == (loaded.public, comment)

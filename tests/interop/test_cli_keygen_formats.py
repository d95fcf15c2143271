"""keytool gen / passwd -m FORMAT and -Z CIPHER against the real ssh-keygen, OpenSSL's
asn1parse, ssh and sshd."""

from __future__ import annotations

import base64
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import assert_clean_error, keytool
from tests.interop.clienthelp import base_env
from tests.peers import Sshd, require, run

PASS = "secret pass"
# the ciphers ssh-keygen -Z takes in OpenSSH 9.2: its cipher table (ssh -Q cipher)
CIPHERS = [
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
]
FORMAT_CASES = [
    (kind, fmt) for kind in ("rsa", "ecdsa", "ed25519") for fmt in ("PEM", "PKCS8", "RFC4716")
]


def ssh_keygen(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return run([require("ssh-keygen"), *args])


def size_args(kind: str) -> list[str]:
    return ["-b", "2048"] if kind == "rsa" else []  # 2048: quicker, same format


def openssh_header(path: Path) -> tuple[str, str]:
    """The cipher and kdf names of an openssh-key-v1 file (PROTOCOL.key), read here."""
    lines = path.read_text().strip().splitlines()
    assert lines[0] == "-----BEGIN OPENSSH PRIVATE KEY-----"
    data = base64.b64decode("".join(lines[1:-1]))
    assert data.startswith(b"openssh-key-v1\0")
    at = len(b"openssh-key-v1\0")
    names = []
    for _ in range(2):
        (size,) = struct.unpack(">I", data[at : at + 4])
        names.append(data[at + 4 : at + 4 + size].decode())
        at += 4 + size
    return names[0], names[1]


def asn1_shape(path: Path) -> list[str]:
    """OpenSSL's parse of a PEM file without its random parts (salt, IV, key bytes)."""
    parsed = run(["openssl", "asn1parse", "-in", path])
    assert parsed.returncode == 0, parsed.stderr
    shape = []
    for line in parsed.stdout.splitlines():
        kind = line.split(":", 3)[-1].split("[HEX DUMP]")[0].strip()
        if "OBJECT" in line or ("INTEGER" in line and "prim" in line and "l=   2" in line):
            shape.append(kind)
    return shape


@pytest.mark.parametrize("passphrase", ["", PASS], ids=["plain", "encrypted"])
@pytest.mark.parametrize(("kind", "fmt"), FORMAT_CASES)
def test_formats_as_ssh_keygen_writes_and_reads_them(
    tmp_path: Path, kind: str, fmt: str, passphrase: str
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    common = ["-t", kind, *size_args(kind), "-m", fmt, "-N", passphrase, "-C", "c@x"]
    made = keytool("gen", "-q", *common, "-f", ours)
    assert made.returncode == 0, made.stderr
    assert ssh_keygen("-q", *common, "-f", theirs).returncode == 0
    our_lines, their_lines = ours.read_text().splitlines(), theirs.read_text().splitlines()
    # the same armour: BEGIN line (Ed25519 stays in OpenSSH's format), and for encrypted
    # PEM the same Proc-Type and cipher in DEK-Info
    assert our_lines[0] == their_lines[0]
    if our_lines[1].startswith("Proc-Type"):
        assert our_lines[1] == their_lines[1] == "Proc-Type: 4,ENCRYPTED"
        assert our_lines[2].split(",")[0] == their_lines[2].split(",")[0] == "DEK-Info: AES-128-CBC"
    if "OPENSSH" in our_lines[0]:
        assert openssh_header(ours) == openssh_header(theirs)
    elif not our_lines[1].startswith("Proc-Type"):
        # PKCS#8: PBES2 / PBKDF2 / hmacWithSHA256 / 2048 rounds / AES-128-CBC; or the
        # plain key's structure
        assert asn1_shape(ours) == asn1_shape(theirs)

    public = Path(f"{ours}.pub").read_text()
    derived = ssh_keygen("-y", "-P", passphrase, "-f", ours)
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout.split()[:2] == public.split()[:2]
    if passphrase:
        assert ssh_keygen("-y", "-P", "wrong passphrase", "-f", ours).returncode != 0
    assert keytool("fingerprint", "-f", ours).stdout == ssh_keygen("-l", "-f", ours).stdout
    # keytool reads ssh-keygen's key in the same format
    read = keytool("pub", "-P", passphrase, "-f", theirs)
    assert read.returncode == 0, read.stderr
    assert read.stdout.split()[:2] == Path(f"{theirs}.pub").read_text().split()[:2]


def test_ssh_logs_in_with_keys_of_each_format(tmp_path: Path) -> None:
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{PASS}'\n")
    askpass.chmod(0o755)
    keys = {
        "rsa-PEM-encrypted": ["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS],
        "ecdsa-PEM": ["-t", "ecdsa", "-m", "PEM", "-N", ""],
        "ecdsa-PKCS8-encrypted": ["-t", "ecdsa", "-b", "384", "-m", "PKCS8", "-N", PASS],
        "rsa-PKCS8": ["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", ""],
        "ed25519-RFC4716-chacha": [
            "-t",
            "ed25519",
            "-m",
            "RFC4716",
            "-Z",
            "chacha20-poly1305@openssh.com",
            "-N",
            PASS,
        ],
        "ecdsa-aes128-gcm": ["-t", "ecdsa", "-Z", "aes128-gcm@openssh.com", "-N", PASS],
    }
    server = Sshd(tmp_path / "sshd")
    lines = []
    for name, args in keys.items():
        made = keytool("gen", "-q", *args, "-C", name, "-f", tmp_path / name)
        assert made.returncode == 0, made.stderr
        lines.append(Path(f"{tmp_path / name}.pub").read_text())
    server.authorized_keys.write_text("".join(lines))
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    env = base_env(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force")
    with server:
        for name in keys:
            key = tmp_path / name
            login = run(
                [
                    require("ssh"),
                    "-F",
                    "/dev/null",
                    "-p",
                    str(server.port),
                    "-i",
                    key,
                    "-o",
                    "IdentitiesOnly=yes",
                    "-o",
                    f"UserKnownHostsFile={known}",
                    "-o",
                    "GlobalKnownHostsFile=/dev/null",
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    "PasswordAuthentication=no",
                    "-o",
                    "KbdInteractiveAuthentication=no",
                    "root@127.0.0.1",
                    "echo",
                    name,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
            )
            assert login.returncode == 0, (name, login.stderr)
            assert login.stdout == f"{name}\n"
            fingerprint = ssh_keygen("-l", "-f", f"{key}.pub").stdout.split()[1]
            # sshd accepted this very key
            accepted = [
                line
                for line in server.log.read_text().splitlines()
                if "Accepted publickey for root from 127.0.0.1" in line and fingerprint in line
            ]
            assert accepted, name


@pytest.mark.parametrize("cipher", CIPHERS)
def test_each_cipher_both_ways(tmp_path: Path, cipher: str) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    made = keytool("gen", "-q", "-t", "ecdsa", "-Z", cipher, "-N", PASS, "-C", "z", "-f", ours)
    assert made.returncode == 0, made.stderr
    assert openssh_header(ours) == (cipher, "bcrypt")
    derived = ssh_keygen("-y", "-P", PASS, "-f", ours)
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout == Path(f"{ours}.pub").read_text()
    assert ssh_keygen("-y", "-P", "wrong passphrase", "-f", ours).returncode != 0

    assert ssh_keygen("-q", "-t", "ed25519", "-Z", cipher, "-N", PASS, "-f", theirs).returncode == 0
    assert openssh_header(theirs) == (cipher, "bcrypt")
    Path(f"{theirs}.pub").unlink()  # keytool must open the private part itself
    read = keytool("pub", "-P", PASS, "-f", theirs)
    assert read.returncode == 0, read.stderr
    assert read.stdout == ssh_keygen("-y", "-P", PASS, "-f", theirs).stdout

    # passwd re-encrypts ssh-keygen's key with this cipher
    converted = keytool("passwd", "-f", theirs, "-P", PASS, "-N", "other pass", "-Z", cipher)
    assert converted.returncode == 0, converted.stderr
    assert openssh_header(theirs) == (cipher, "bcrypt")
    assert ssh_keygen("-y", "-P", "other pass", "-f", theirs).stdout == read.stdout


def test_cipher_list_is_ssh_keygens() -> None:
    listed = run([require("ssh"), "-Q", "cipher"]).stdout.split()
    assert sorted(listed) == sorted(CIPHERS)


def test_unknown_cipher_and_format_write_nothing(tmp_path: Path) -> None:
    key = tmp_path / "k"
    for args in (["-Z", "aes512-ctr"], ["-Z", "AES128-CTR"], ["-m", "DER"]):
        line = assert_clean_error(keytool("gen", "-N", PASS, "-f", key, *args))
        assert args[1] in line
        assert ssh_keygen("-q", "-N", PASS, "-f", key, *args).returncode != 0
        assert list(tmp_path.iterdir()) == []
    # -Z none is refused: ssh-keygen takes it and stores the key in the clear although a
    # passphrase was given
    line = assert_clean_error(keytool("gen", "-N", PASS, "-f", key, "-Z", "none"))
    assert "-Z none" in line
    assert list(tmp_path.iterdir()) == []
    assert ssh_keygen("-q", "-N", PASS, "-f", key, "-Z", "none").returncode == 0
    assert openssh_header(key)[0] == "none"
    key.unlink()
    Path(f"{key}.pub").unlink()
    line = assert_clean_error(
        keytool("gen", "-t", "rsa", "-m", "PEM", "-Z", "aes128-ctr", "-N", PASS, "-f", key)
    )
    assert "-Z" in line
    assert list(tmp_path.iterdir()) == []


def test_passwd_converts_to_pem_and_back_keeping_the_public_key(tmp_path: Path) -> None:
    key = tmp_path / "k"
    made = ssh_keygen("-q", "-t", "ecdsa", "-N", PASS, "-C", "kept comment", "-f", key)
    assert made.returncode == 0
    pub_bytes = Path(f"{key}.pub").read_bytes()
    original = key.read_bytes()

    # a bad combination leaves the key as it was
    line = assert_clean_error(
        keytool("passwd", "-f", key, "-P", PASS, "-N", PASS, "-m", "PEM", "-Z", "aes128-ctr")
    )
    assert "-Z" in line
    assert assert_clean_error(keytool("passwd", "-f", key, "-P", PASS, "-N", "", "-m", "X"))
    assert key.read_bytes() == original

    to_pem = keytool("passwd", "-f", key, "-P", PASS, "-N", "pem secret", "-m", "PEM")
    assert to_pem.returncode == 0, to_pem.stderr
    assert key.read_text().startswith("-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n")
    assert Path(f"{key}.pub").read_bytes() == pub_bytes
    derived = ssh_keygen("-y", "-P", "pem secret", "-f", key)
    assert derived.stdout.split()[:2] == pub_bytes.decode().split()[:2]

    to_pkcs8 = keytool("passwd", "-f", key, "-P", "pem secret", "-N", "", "-m", "pkcs8")
    assert to_pkcs8.returncode == 0, to_pkcs8.stderr
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")
    assert ssh_keygen("-y", "-f", key).stdout.split()[:2] == pub_bytes.decode().split()[:2]

    back = keytool("passwd", "-f", key, "-N", PASS)
    assert back.returncode == 0, back.stderr
    assert openssh_header(key) == ("aes256-ctr", "bcrypt")
    assert Path(f"{key}.pub").read_bytes() == pub_bytes
    # the comment the PEM file could not hold came back from the .pub
    Path(f"{key}.pub").unlink()
    assert ssh_keygen("-y", "-P", PASS, "-f", key).stdout.encode() == pub_bytes

    # ssh-keygen -p -m PEM converts the same way, and keytool reads its result
    assert ssh_keygen("-p", "-f", key, "-P", PASS, "-N", "", "-m", "PEM").returncode == 0
    assert key.read_text().startswith("-----BEGIN EC PRIVATE KEY-----\n")
    assert keytool("pub", "-f", key).stdout.split()[:2] == pub_bytes.decode().split()[:2]


def test_gen_help_is_fast_and_lists_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "keytool", "gen", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for flag in ("-A", "-m", "-Z"):
        assert f" {flag} " in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert not any(name.startswith("cryptography") for name in imported)


def test_import_takes_the_first_rfc4716_key_as_ssh_keygen(tmp_path: Path) -> None:
    """Text or a second key after the END line: ssh-keygen -i reads the first key and
    stops there; keytool import prints the same line."""
    keys = []
    for name in ("one", "two"):
        ssh_keygen("-q", "-t", "ed25519", "-N", "", "-f", tmp_path / name)
        keys.append(ssh_keygen("-e", "-f", tmp_path / f"{name}.pub").stdout)
    for name, text in (("trailing", keys[0] + "trailing words\n"), ("two", keys[0] + keys[1])):
        path = tmp_path / f"{name}.rfc"
        path.write_text(text)
        theirs = ssh_keygen("-i", "-f", path)
        ours = keytool("import", "-f", path)
        assert theirs.returncode == 0, theirs.stderr
        assert (ours.returncode, ours.stdout) == (0, theirs.stdout), ours.stderr
        one = (tmp_path / "one.pub").read_text().split()[:2]
        assert ours.stdout.split()[:2] == one

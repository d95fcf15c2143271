"""Values ssh 9.2 reads in its own way, as ``ssh -G`` and ``keytool exec -G`` show them
on the same configuration and flags: the lines of the keywords concerned, the exit
status, and ssh's error line where it has one. -A and -a turn agent forwarding on or
off and keep the socket ForwardAgent names; algorithm lists take patterns in key type
lists and lose repeated names; -c takes + and ^ but not -, -m none of them; Compression,
RequiredRSASize, ConnectionAttempts and StreamLocalBindMask take what ssh takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL
from tests.interop.confighelp import run_config
from tests.peers import require

_KEYWORDS = (
    "forwardagent ",
    "hostkeyalgorithms ",
    "pubkeyacceptedalgorithms ",
    "casignaturealgorithms ",
    "ciphers ",
    "macs ",
    "kexalgorithms ",
    "compression ",
    "requiredrsasize ",
    "connectionattempts ",
    "streamlocalbindmask ",
)


def _run(command: list[str], home: Path, keys: tuple[str, ...]) -> tuple[list[str], list[str], int]:
    result = run_config(command, home)
    lines = [line for line in result.stdout.splitlines() if line.startswith(keys)]
    errors = [
        line.removeprefix("keytool: ")
        for line in result.stderr.splitlines()
        if "terminating" not in line and not line.startswith("Unsupported KEX")
    ]
    return lines, errors[-1:] if result.returncode else [], result.returncode


_FLAG_KEYWORDS = {"-A": "forwardagent ", "-a": "forwardagent ", "-c": "ciphers ", "-m": "macs "}


def _both(tmp_path: Path, text: str, *flags: str) -> None:
    ssh = require("ssh")
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "config"
    config.write_text(f"Host x\n{text}")
    said = (text + " ".join(flags)).lower().replace("=", " ")
    keys = tuple(k for k in _KEYWORDS if k.strip() in said)
    keys += tuple(_FLAG_KEYWORDS[flag] for flag in flags if flag in _FLAG_KEYWORDS)
    theirs = _run([ssh, "-G", "-F", str(config), *flags, "x"], home, keys)
    ours = _run([*KEYTOOL, "exec", "-G", "-F", str(config), *flags, "x"], home, keys)
    assert ours == theirs


# every algorithm list given whole, so that keytool's defaults (which differ) play no part
_LISTS = (
    "Ciphers aes128-ctr\nMACs hmac-sha2-256\nKexAlgorithms curve25519-sha256\n"
    "HostKeyAlgorithms ssh-ed25519\nPubkeyAcceptedAlgorithms ssh-ed25519\n"
    "CASignatureAlgorithms ssh-ed25519\n"
)

CASES = [
    # 1: -A / -a against ForwardAgent
    ("ForwardAgent /tmp/fwd-other.sock\n", ("-A",)),
    ("ForwardAgent /tmp/fwd-other.sock\n", ("-a",)),
    ("ForwardAgent $KT_NO_SUCH_VAR\n", ("-A",)),
    ("ForwardAgent $KT_NO_SUCH_VAR\n", ("-a",)),
    ("ForwardAgent yes\n", ("-a",)),
    ("ForwardAgent no\n", ("-A",)),
    ("ForwardAgent /tmp/fwd-other.sock\n", ("-a", "-A")),
    ("ForwardAgent /tmp/fwd-other.sock\n", ("-A", "-a")),
    ("", ("-A", "-o", "ForwardAgent=/tmp/fwd-p")),
    ("", ("-a", "-o", "ForwardAgent=/tmp/fwd-p")),
    # 2: patterns in key type lists, repeated names, certificates in CASignatureAlgorithms
    ("HostKeyAlgorithms ssh-ed25519*\n" + _LISTS, ()),
    ("PubkeyAcceptedAlgorithms ssh-ed25519*,rsa-sha2-?56\n" + _LISTS, ()),
    ("PubkeyAcceptedAlgorithms webauthn*,ssh-ed25519\n" + _LISTS, ()),
    ("CASignatureAlgorithms ecdsa-sha2-nistp256-cert-v01@openssh.com,ssh-ed25519\n" + _LISTS, ()),
    ("CASignatureAlgorithms ecdsa*,ssh-ed25519\n" + _LISTS, ()),
    ("HostKeyAlgorithms foo*\n" + _LISTS, ()),
    ("HostKeyAlgorithms +foo*\n" + _LISTS, ()),
    ("Ciphers aes128-ctr,aes128-gcm@openssh.com,aes128-ctr\n" + _LISTS, ()),
    ("MACs hmac-sha2-256,hmac-sha2-512,hmac-sha2-256\n" + _LISTS, ()),
    ("Ciphers aes*\n" + _LISTS, ()),
    ("Ciphers ^aes*\n" + _LISTS, ()),
    ("KexAlgorithms curve*\n" + _LISTS, ()),
    ("KexAlgorithms -*\n" + _LISTS, ()),
    # 3: -c and -m
    (_LISTS, ("-m", "-hmac-sha2-256")),
    (_LISTS, ("-m", "+hmac-sha2-256")),
    (_LISTS, ("-m", "^hmac-sha2-256")),
    (_LISTS, ("-m", "hmac-sha2-256,hmac-sha2-256")),
    (_LISTS, ("-c", "-aes128-ctr")),
    (_LISTS, ("-c", "aes128-ctr,aes128-ctr")),
    # 4: other values
    ("Compression true\n", ()),
    ("Compression false\n", ()),
    ("Compression yes\n", ()),
    ("Compression NO\n", ()),
    ("RequiredRSASize 512\n", ()),
    ("RequiredRSASize 1023\n", ()),
    ("RequiredRSASize 0\n", ()),
    ("RequiredRSASize 20000\n", ()),
    ("RequiredRSASize -1\n", ()),
    ("RequiredRSASize abc\n", ()),
    ("ConnectionAttempts 0\n", ()),
    ("ConnectionAttempts -1\n", ()),
    ("ConnectionAttempts 3\n", ()),
    ("StreamLocalBindMask 00177\n", ()),
    ("StreamLocalBindMask 0000077\n", ()),
    ("StreamLocalBindMask 777\n", ()),
    ("StreamLocalBindMask 1777\n", ()),
    ("StreamLocalBindMask 8\n", ()),
]


@pytest.mark.parametrize(("text", "flags"), CASES)
def test_values_as_ssh_reads_them(tmp_path: Path, text: str, flags: tuple[str, ...]) -> None:
    _both(tmp_path, text, *flags)

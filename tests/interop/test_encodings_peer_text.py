"""Texts that are not UTF-8, as OpenSSH 9.2 takes them: sshd's Banner file in Latin-1
with an escape sequence (ssh shows it escaped and logs in), and a certificate
ssh-keygen made with Latin-1 in its key id, principals, force-command and an
extension's value (ssh-keygen -L shows it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import Sshd, require

BANNER = b"Welcome caf\xe9 \x1b[31mred\x07\r\n\tcaf\xc3\xa9, del\x7f\n"


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_a_latin1_banner_as_ssh_shows_it(tmp_path: Path, locale: str) -> None:
    """keytool refused the login: "malformed authentication message: malformed
    authentication message: text is not UTF-8" (255); ssh shows the banner escaped
    for its locale and runs the command."""
    (tmp_path / "banner").write_bytes(BANNER)
    key = keygen(tmp_path / "id")
    with Sshd(tmp_path / "sshd", {"Banner": str(tmp_path / "banner")}) as server:
        server.authorized_keys.write_bytes(Path(f"{key}.pub").read_bytes())
        known = tmp_path / "known"
        known.write_text(server.known_hosts_line())
        common = ["-F", "none", "-p", str(server.port), "-i", str(key),
                  "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                  "-o", "BatchMode=yes", "root@127.0.0.1", "echo hi"]  # fmt: skip
        seen = {}
        for tool, program in (("ssh", [require("ssh")]), ("keytool", [*KEYTOOL, "exec"])):
            done = subprocess.run(
                [*program, *common], capture_output=True, stdin=subprocess.DEVNULL,
                env=base_env(HOME=str(tmp_path), LC_ALL=locale), timeout=60, check=False,
            )  # fmt: skip
            seen[tool] = (done.returncode, done.stdout, done.stderr)
    assert seen["ssh"][:2] == (0, b"hi\n")
    assert seen["keytool"] == seen["ssh"]
    # what ssh printed: the invalid byte, ESC, BEL and DEL in octal, CR LF and tab as
    # they are, valid UTF-8 kept in a UTF-8 locale only
    shown = b"\\303\\251" if locale == "C" else "\u00e9".encode()
    expected = b"Welcome caf\\351 \\033[31mred\\007\r\n\tcaf" + shown + b", del\\177\n"
    assert seen["ssh"][2] == expected


def test_cert_list_of_latin1_fields_as_ssh_keygen(tmp_path: Path) -> None:
    """keytool cert -L said "option force-command is corrupt: ... text is not UTF-8"
    (255); ssh-keygen -L prints each field's bytes as they are."""
    ssh_keygen = require("ssh-keygen")
    env = base_env(TZ="UTC", LC_ALL="C.UTF-8")
    for name in ("ca", "user"):
        made = subprocess.run(
            [ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / name],
            capture_output=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    sign = [
        ssh_keygen, b"-s", tmp_path / "ca", b"-I", b"Jos\xe9 \x1b[1m",
        b"-n", b"jos\xe9,root", b"-O", b"force-command=ls \xe9\x1b[31m",
        b"-O", b"source-address=127.0.0.1/32", b"-O", b"extension:note@example.com=caf\xe9",
        tmp_path / "user.pub",
    ]  # fmt: skip
    signed = subprocess.run(
        [os.fsencode(arg) for arg in sign], capture_output=True, env=env, timeout=60, check=False
    )
    assert signed.returncode == 0, signed.stderr
    cert = tmp_path / "user-cert.pub"
    theirs = subprocess.run(
        [ssh_keygen, "-L", "-f", cert], capture_output=True, env=env, timeout=60, check=False
    )
    ours = subprocess.run(
        [*KEYTOOL, "cert", "-L", "-f", str(cert)],
        capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert theirs.returncode == 0 and b"force-command ls \xe9\x1b[31m\n" in theirs.stdout
    assert b'Key ID: "Jos\xe9 \x1b[1m"' in theirs.stdout
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, theirs.stdout, b"")

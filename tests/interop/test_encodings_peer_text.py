"""Texts that are not UTF-8, as OpenSSH 9.2 takes them: a certificate ssh-keygen made
with Latin-1 in its key id, principals, force-command and an extension's value
(ssh-keygen -L shows it). A Latin-1 banner: test_client_banner.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require


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

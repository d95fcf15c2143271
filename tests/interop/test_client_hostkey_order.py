"""A server with several host keys, of which known_hosts records only one type: keytool
asks for the known type first, as ssh does, instead of refusing a 'changed' key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.clienthelp import keygen, keytool_exec
from tests.peers import Sshd, ssh_login


@pytest.mark.parametrize(("kind", "algorithm"), [("rsa", "rsa-sha2-512"), ("ecdsa", "ecdsa")])
def test_known_type_is_asked_for_first(
    tmp_path: Path, sshd: Sshd, kind: str, algorithm: str
) -> None:
    key = keygen(tmp_path / "id")
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line(kind))  # the server also has an ed25519 key

    result = keytool_exec(
        sshd.port, known, "root@127.0.0.1", "echo", "in", flags=("-i", str(key), "-v")
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"in\n"
    trace = result.stderr.decode()
    assert f"host key {algorithm}" in trace
    # sshd agrees on what it signed with
    assert f"kex: host key algorithm: {algorithm}" in sshd.log.read_text()

    # real ssh, given the same file, also connects without complaint
    ssh = ssh_login(sshd.port, key, known, "true")
    assert ssh.returncode == 0, ssh.stderr

"""The fixtures' servers really start and accept a real ssh login with a key."""

from __future__ import annotations

from pathlib import Path

from tests.peers import Sshd, require, run, ssh_login


def test_sshd_accepts_real_ssh(tmp_path: Path, sshd: Sshd) -> None:
    key = tmp_path / "id"
    run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key]).check_returncode()
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    result = ssh_login(sshd.port, key, known, "echo", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"

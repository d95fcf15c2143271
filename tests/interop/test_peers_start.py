"""The fixtures' servers really start and accept a real ssh login with a key."""

from __future__ import annotations

from pathlib import Path

from tests.peers import Sshd, require, run


def test_sshd_accepts_real_ssh(tmp_path: Path, sshd: Sshd) -> None:
    key = tmp_path / "id"
    run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key]).check_returncode()
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    result = run(
        [
            require("ssh"),
            "-p",
            str(sshd.port),
            "-i",
            key,
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "IdentitiesOnly=yes",
            "-F",
            "/dev/null",
            "root@127.0.0.1",
            "echo",
            "hello",
        ]
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"

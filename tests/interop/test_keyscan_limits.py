"""``keytool keyscan`` of many hosts at once, as ``ssh-keyscan`` scans them: as many
connections as its open-file limit allows (up to 246), so hosts that never answer
cost about one -T between them, not one -T for every 32; the soft limit is raised
for them, and a hard limit bounds them without a host failing for want of files."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.interop.test_cli_keyscan_hosts import silent_at
from tests.interop.test_copyid_fleet_limits import open_file_limit
from tests.peers import Sshd, require


def scan(
    tool: str, args: list[str], soft: int = 64, hard: int | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    command = [require("ssh-keyscan")] if tool == "ssh-keyscan" else [*KEYTOOL, "keyscan"]
    started = time.monotonic()
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, env=base_env(),
        preexec_fn=open_file_limit(soft, hard), timeout=120, check=False,
    )  # fmt: skip
    return done, time.monotonic() - started


def hosts_file(folder: Path, silent: int) -> Path:
    """``silent`` entries for 127.0.0.2 (silent), then the real server, 127.0.0.1."""
    hosts = folder / "hosts"
    lines = [f"127.0.0.2 silent{i}" for i in range(silent)] + ["127.0.0.1"]
    hosts.write_text("".join(f"{line}\n" for line in lines))
    return hosts


def test_many_silent_hosts_cost_about_one_timeout(sshd: Sshd, tmp_path: Path) -> None:
    """240 hosts that never answer and a real one, -T 3, soft limit 64: ssh-keyscan
    scans them all at once (about 3 s); keytool scanned 32 at a time (8 rounds, 24 s
    and more). The real host's lines are ssh-keyscan's, each silent host one line."""
    silent = 240
    hosts = hosts_file(tmp_path, silent)
    args = ["-T", "3", "-t", "ed25519,rsa", "-p", str(sshd.port), "-f", str(hosts)]
    with silent_at("127.0.0.2", sshd.port):
        ours, took = scan("keytool", args)
        theirs, _ = scan("ssh-keyscan", args)
    assert "Traceback" not in ours.stderr and "Too many open files" not in ours.stderr
    assert took < 14, f"{took:.1f}s"
    assert ours.returncode == theirs.returncode == 0, ours.stderr[-2000:]
    assert sorted(ours.stdout.splitlines()) == sorted(theirs.stdout.splitlines())
    assert len(ours.stdout.splitlines()) == 2
    assert {line.split()[0] for line in ours.stdout.splitlines()} == {f"[127.0.0.1]:{sshd.port}"}
    timed_out = [line for line in ours.stderr.splitlines() if "timed out" in line]
    assert len(timed_out) == silent


def test_a_hard_limit_bounds_the_hosts_at_once(sshd: Sshd, tmp_path: Path) -> None:
    """ulimit -n 24 (soft and hard): fewer hosts at once, none of them failing for want
    of a file descriptor (keytool scanned 32 at once, whatever the limit: connections
    failed with "Too many open files"); the output in the hosts' order."""
    silent = 30
    hosts = hosts_file(tmp_path, silent)
    args = ["-T", "2", "-t", "ed25519", "-p", str(sshd.port), "-f", str(hosts)]
    with silent_at("127.0.0.2", sshd.port):
        ours, took = scan("keytool", args, soft=24, hard=24)
        theirs, _ = scan("ssh-keyscan", args, soft=24, hard=24)
    assert "Traceback" not in ours.stderr and "Too many open files" not in ours.stderr
    assert took < 30, f"{took:.1f}s"
    assert ours.returncode == theirs.returncode == 0, ours.stderr[-2000:]
    assert ours.stdout.splitlines() == theirs.stdout.splitlines()
    assert ours.stdout == f"[127.0.0.1]:{sshd.port} {sshd.known_hosts_line().split(None, 1)[1]}"
    timed_out = [line for line in ours.stderr.splitlines() if "timed out" in line]
    assert len(timed_out) == silent

"""ServerAliveInterval and ServerAliveCountMax in ``keytool exec``, as ssh keeps them:
a live sshd is asked whether it is there and the command runs on; a server that stops
answering is given up with ssh's line and status, where without them the client would
wait for ever."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen, keytool_exec
from tests.peers import Sshd, free_port, require, wait_for_port

ALIVE = ("-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2")


@pytest.fixture
def login(tmp_path: Path, sshd: Sshd) -> tuple[Path, Path]:
    """A key sshd takes for root, and a known_hosts naming sshd."""
    key = keygen(tmp_path / "id", "ed25519", "alive")
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    return key, known


def test_a_live_server_is_asked_and_the_command_runs_on(
    sshd: Sshd, login: tuple[Path, Path]
) -> None:
    key, known = login
    result = keytool_exec(
        sshd.port, known, "root@127.0.0.1", "sleep 4; echo done", flags=("-i", str(key), *ALIVE)
    )
    assert (result.returncode, result.stdout) == (0, b"done\n"), result.stderr
    # sshd got our keepalives (and answered each with a failure, as to any client)
    asked = sshd.log.read_text().count("rtype keepalive@openssh.com want_reply 1")
    assert asked >= 2, sshd.log.read_text()[-2000:]


def session_processes(sshd: Sshd) -> list[int]:
    """The processes below our sshd: the connection's privileged and user sshd, and
    the shell running the command."""
    assert sshd.proc is not None
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = [], [sshd.proc.pid]
    while todo:
        parent = todo.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        todo += children
    return found


def wait_for_line(stream: IO[bytes] | None, expected: bytes) -> None:
    assert stream is not None
    line = stream.readline()
    assert line == expected, line


@pytest.mark.parametrize("client", ["keytool", "keytool -N -L", "ssh"])
def test_a_silent_server_is_given_up_as_ssh_does(
    sshd: Sshd, login: tuple[Path, Path], client: str
) -> None:
    key, known = login
    common = ["-p", str(sshd.port), "-o", f"UserKnownHostsFile={known}",
              "-o", "GlobalKnownHostsFile=/dev/null", "-i", str(key), *ALIVE]  # fmt: skip
    command = "echo started; exec sleep 60"
    local = free_port()
    if client == "keytool":
        args = [*KEYTOOL, "exec", "-F", "none", *common, "root@127.0.0.1", "--", command]
    elif client == "keytool -N -L":  # a tunnel, no command: the article's forwarding
        args = [*KEYTOOL, "exec", "-F", "none", *common, "-N",
                "-L", f"127.0.0.1:{local}:127.0.0.1:{sshd.port}", "root@127.0.0.1"]  # fmt: skip
    else:
        args = [require("ssh"), "-F", "none", "-o", "BatchMode=yes", *common,
                "root@127.0.0.1", command]  # fmt: skip
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=base_env(),
    )  # fmt: skip
    stopped: list[int] = []
    try:
        if "-N" in args:
            wait_for_port(local, proc)
        else:
            wait_for_line(proc.stdout, b"started\n")
        stopped = session_processes(sshd)
        assert stopped
        for pid in stopped:  # the server side of this connection falls silent
            os.kill(pid, signal.SIGSTOP)
        start = time.monotonic()
        status = proc.wait(timeout=40)  # without keepalives: the whole 60 s and more
        waited = time.monotonic() - start
        assert proc.stderr is not None
        said = proc.stderr.read().decode()
    finally:
        for pid in stopped:
            for sig in (signal.SIGKILL, signal.SIGCONT):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status == 255
    assert said.splitlines()[-1].endswith("Timeout, server 127.0.0.1 not responding."), said
    assert len(said.splitlines()) == 1
    assert waited < 40

"""``keytool agent`` whose environment lines cannot be written, side by side with
ssh-agent: on a full disk ssh-agent says nothing, exits 0 and leaves an agent nobody
was told of; keytool says so and exits 1, and stops the agent it started (its socket
and folder removed). A closed stdout, or a reader gone, end both as before, the agent
left running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require


def _agent_argv(tool: str, sock: Path | None) -> list[str]:
    program = [require("ssh-agent")] if tool == "openssh" else [*KEYTOOL, "agent"]
    return [*program, "-s", *(["-a", str(sock)] if sock else [])]


def _pids_naming(word: str) -> list[int]:
    """The live processes whose command line or environment holds ``word`` (a path of
    this test alone)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                named = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if os.fsencode(word) in named and state != "Z":
                pids.append(int(entry.name))
    return pids


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A folder for the agents' sockets; an agent left on one is stopped after."""
    yield tmp_path
    for pid in _pids_naming(str(tmp_path)):
        os.kill(pid, signal.SIGTERM)


def _listening(sock: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(sock))
        except OSError:
            return False
    return True


def _start(argv: list[str], stdout: int, env: dict[str, str]) -> tuple[int, str]:
    """The status (a signal as a shell gives it, 128+N) and stderr."""
    done = subprocess.run(
        argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
        env=env, timeout=60, check=False,
    )  # fmt: skip
    code = done.returncode if done.returncode >= 0 else 128 - done.returncode
    return code, done.stderr.decode(errors="replace")


def _gone(sock: Path, timeout: float = 10) -> bool:
    """Nothing left of the agent on ``sock``: no process, no socket."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not _pids_naming(str(sock)) and not sock.exists():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "unbuffered"])
def test_a_full_disk_leaves_no_agent_running(folder: Path, unbuffered: str) -> None:
    env = base_env(HOME=str(folder))
    # as users run it, stdout buffered, and with each line written at once
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    seen = {}
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        for tool in ("openssh", "keytool"):
            sock = folder / f"{tool}.sock"
            status, err = _start(_agent_argv(tool, sock), full, env)
            seen[tool] = status, err, _listening(sock)
            if tool == "keytool":
                assert _gone(sock), "the keytool agent was left running"
    finally:
        os.close(full)
    assert seen["openssh"] == (0, "", True)  # ssh-agent does not check the write
    status, err, listening = seen["keytool"]
    assert (status, err, listening) == (1, "keytool: No space left on device\n", False)


def test_a_full_disk_leaves_no_folder(folder: Path) -> None:
    """Without -a: the fresh folder made for the socket is removed too."""
    tmp = folder / "tmp"
    tmp.mkdir()
    env = base_env(HOME=str(folder), TMPDIR=str(tmp))
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        status, err = _start(_agent_argv("keytool", None), full, env)
    finally:
        os.close(full)
    assert (status, err) == (1, "keytool: No space left on device\n")
    end = time.monotonic() + 10
    while any(tmp.iterdir()) and time.monotonic() < end:
        time.sleep(0.02)
    assert not list(tmp.iterdir())
    assert not _pids_naming(str(tmp))


@pytest.mark.parametrize("where", ["closed", "reader gone"])
def test_other_outputs_end_as_ssh_agent_the_agent_running(folder: Path, where: str) -> None:
    """``>&-``: status 0, the lines go nowhere; a pipe whose reader is gone: ssh-agent
    dies of SIGPIPE, keytool exits 141 as a shell shows that; both agents run."""
    env = base_env(HOME=str(folder))
    seen = {}
    for tool in ("openssh", "keytool"):
        sock = folder / f"{tool}-{where.replace(' ', '-')}.sock"
        argv = _agent_argv(tool, sock)
        if where == "closed":
            script = 'exec "$@" >&-'
            status, err = _start(["bash", "-c", script, "bash", *argv], subprocess.PIPE, env)
        else:
            read, write = os.pipe()
            os.close(read)
            try:
                status, err = _start(argv, write, env)
            finally:
                os.close(write)
        seen[tool] = status, err, _listening(sock)
    assert seen["openssh"] == (0 if where == "closed" else 141, "", True)
    assert seen["keytool"] == seen["openssh"]


@pytest.mark.parametrize("where", ["reader gone", "full disk"])
def test_a_foreground_agent_that_cannot_say_its_socket_leaves_none(
    folder: Path, where: str
) -> None:
    """-D: an agent whose lines cannot be written does not serve; ssh-agent ends the
    same (141 by SIGPIPE with the reader gone) but leaves its socket behind."""
    env = base_env(HOME=str(folder))
    env.pop("PYTHONUNBUFFERED", None)
    seen = {}
    # ssh-agent -D does not check the write to a full disk: it serves on, unseen
    for tool in ("openssh", "keytool") if where == "reader gone" else ("keytool",):
        sock = folder / f"{tool}.sock"
        argv = [*_agent_argv(tool, sock)[:-3], "-D", "-a", str(sock)]
        if where == "reader gone":
            reader, out = os.pipe()
            os.close(reader)
        else:
            out = os.open("/dev/full", os.O_WRONLY)
        try:
            status, _err = _start(argv, out, env)
        finally:
            os.close(out)
        seen[tool] = status, sock.exists()
    if where == "reader gone":
        assert seen["openssh"] == (141, True)
        assert seen["keytool"] == (141, False)
    else:
        assert seen["keytool"][1] is False and seen["keytool"][0] != 0

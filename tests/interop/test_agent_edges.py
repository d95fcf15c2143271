"""keytool agent at the edges, side by side with ssh-agent: a socket that is live but
busy, or too long a path, is never removed; a relative $TMPDIR; a lock or a removal
while a confirmation is asked; fish lines for paths with quotes and backslashes;
SSH_AGENT_PID values strtonum refuses."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import pytest

from tests.interop.agenthelp import (
    KEYTOOL,
    agent_env,
    keytool_agent,
    openssh_agent,
)
from tests.interop.test_agent_daemon import gone
from tests.peers import missing, require, run

AGENT_PID = re.compile(r"Agent pid (\d+)")
TOOLS = ("ssh-agent", "keytool")


def program(tool: str) -> list[str]:
    return [require("ssh-agent")] if tool == "ssh-agent" else [*KEYTOOL, "agent"]


def plain_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
    env.update(HOME=str(tmp_path), SHELL="/bin/sh", TMPDIR=str(tmp_path))
    env.update(extra)
    return env


def start(
    tool: str, args: list[str], env: dict[str, str], started: list[int], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``tool`` run to print its lines; any agent it started is stopped at the end."""
    result = subprocess.run(
        [*program(tool), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )
    started.extend(int(p) for p in AGENT_PID.findall(result.stdout))
    return result


@contextmanager
def busy_listener(path: Path) -> Iterator[socket.socket]:
    """A live listener at ``path`` whose backlog is full: one more connection would
    have to wait (a blocking connect) or is refused with EAGAIN (a non-blocking one)."""
    with ExitStack() as stack:
        listener = stack.enter_context(socket.socket(socket.AF_UNIX))
        listener.bind(str(path))
        listener.listen(0)
        full = False
        for _ in range(3):
            pending = stack.enter_context(socket.socket(socket.AF_UNIX))
            pending.setblocking(False)
            try:
                pending.connect(str(path))
            except BlockingIOError:
                full = True
        assert full, "the backlog did not fill"
        yield listener


@pytest.mark.parametrize("tool", TOOLS)
def test_a_busy_live_socket_is_left_alone(tmp_path: Path, tool: str, started: list[int]) -> None:
    """ssh-agent -a on a live listener too busy to answer: "Address already in use",
    status 1. keytool waited 2 s, took it for stale, removed it and bound its own."""
    path = tmp_path / "busy"
    with busy_listener(path) as listener:
        inode = path.stat().st_ino
        result = start(tool, ["-s", "-a", str(path)], plain_env(tmp_path), started)
        assert result.returncode == 1, result
        assert "Address already in use" in result.stderr
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
        assert result.stdout == ""
        assert path.stat().st_ino == inode  # the same socket, still there
        listener.settimeout(5)
        conn, _ = listener.accept()  # and still the live listener's
        conn.close()


def long_path(tmp_path: Path) -> Path:
    """A folder whose socket path is over sun_path's 108 bytes."""
    folder = tmp_path / ("d" * max(1, 120 - len(str(tmp_path))))
    folder.mkdir()
    return folder / "agent.sock"


@pytest.mark.parametrize("tool", TOOLS)
def test_a_live_socket_at_too_long_a_path_is_left_alone(
    tmp_path: Path, tool: str, started: list[int]
) -> None:
    """A live agent at a path over 108 bytes (bound through a shorter name): ssh-agent
    says the path is too long, status 1. keytool removed the other agent's socket."""
    path = long_path(tmp_path)
    assert len(os.fsencode(str(path))) > 107
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(f"/proc/self/fd/{folder}/{path.name}")
            listener.listen(8)
            result = start(tool, ["-s", "-a", str(path)], plain_env(tmp_path), started)
            assert result.returncode == 1, result
            assert "too long" in result.stderr
            assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
            assert path.is_socket()
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(f"/proc/self/fd/{folder}/{path.name}")  # still live
    finally:
        os.close(folder)


@pytest.mark.parametrize("tool", TOOLS)
def test_a_relative_tmpdir(tmp_path: Path, tool: str, started: list[int]) -> None:
    """TMPDIR=.: ssh-agent prints an absolute socket path, and removes the socket and
    its folder when killed. keytool printed ./ssh-.../agent.N and, after its chdir to
    "/", left both behind."""
    work = tmp_path / "work"
    work.mkdir()
    env = plain_env(tmp_path, TMPDIR=".")
    result = start(tool, ["-s"], env, started, cwd=work)
    assert result.returncode == 0, result.stderr
    sock = result.stdout.split("SSH_AUTH_SOCK=")[1].split(";")[0]
    pid = int(result.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    assert os.path.isabs(sock), sock
    assert Path(sock).is_socket()
    assert run([require("ssh-add"), "-l"], env=agent_env(sock), cwd="/").returncode == 1
    killed = start(tool, ["-k"], dict(env, SSH_AGENT_PID=str(pid)), started, cwd=work)
    assert killed.returncode == 0, killed.stderr
    assert gone(pid)
    assert not Path(sock).exists() and not Path(sock).parent.exists()
    assert list(work.iterdir()) == []


def waiting_askpass(folder: Path) -> tuple[Path, Path, Path]:
    """An askpass that says it was asked (a file), waits until the test releases it
    (another file), then answers yes."""
    asked, release = folder / "asked", folder / "release"
    script = folder / "askpass.sh"
    script.write_text(
        f"#!/bin/sh\n: > '{asked}'\nwhile [ ! -e '{release}' ]; do sleep 0.02; done\necho yes\n"
    )
    script.chmod(0o755)
    return script, asked, release


def wait_for(path: Path, proc: subprocess.Popen[bytes]) -> None:
    """Until ``path`` exists (the askpass was started), or ``proc`` ended first."""
    for _ in range(3000):
        if path.exists():
            return
        if proc.poll() is not None:
            raise AssertionError(f"ssh-add -T ended ({proc.returncode}) before asking")
        with suppress(subprocess.TimeoutExpired):
            proc.wait(0.01)
    raise AssertionError("the confirmation was never asked")


@pytest.mark.parametrize(
    ("tool", "kind", "action"),
    [
        ("keytool", "ed25519", "-D"),
        ("keytool", "rsa", "-x"),
        ("keytool", "ed25519", "-x"),
        ("ssh-agent", "ed25519", "-D"),
        ("ssh-agent", "ed25519", "-x"),
    ],
)
def test_a_lock_or_removal_while_a_confirmation_is_asked(
    tmp_path: Path, tool: str, kind: str, action: str
) -> None:
    """ssh-add -T on a key added with -c, the askpass waiting; meanwhile ssh-add -D or
    -x. ssh-agent answers one request at a time: -D or -x is answered only after the
    signature. keytool's agent answers them at once, so the signature, once
    confirmed, must be refused: a removal or lock that was answered is never followed
    by a signature. (keytool still signed.)"""
    key = tmp_path / f"id_{kind}"
    run(
        [require("ssh-keygen"), "-q", "-t", kind, "-N", "", "-C", "k1", "-f", key]
    ).check_returncode()
    askpass, asked, release = waiting_askpass(tmp_path)
    env = plain_env(tmp_path, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":99")
    running = openssh_agent if tool == "ssh-agent" else keytool_agent
    add = require("ssh-add")
    testing: subprocess.Popen[bytes] | None = None
    try:
        with running(tmp_path / "agent", env=env) as agent:
            run([add, "-q", "-c", key], env=agent.env()).check_returncode()
            testing = subprocess.Popen(
                [add, "-T", f"{key}.pub"],
                env=agent.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            wait_for(asked, testing)
            # -x reads its password from a stdin that is no terminal
            password = tmp_path / "password"
            password.write_text("lock pw\nlock pw\n")
            with password.open("rb") as stdin:
                answered = subprocess.Popen(
                    [add, action],
                    env=agent.env(),
                    stdin=stdin,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            if tool == "keytool":
                # answered while the askpass still waits
                assert answered.wait(30) == 0
                release.touch()
                assert testing.wait(30) == 1
                assert testing.stderr is not None
                assert b"Agent signature failed" in testing.stderr.read()
            else:
                # ssh-agent is busy asking: -D / -x wait for the signature
                release.touch()
                assert testing.wait(30) == 0
                assert answered.wait(30) == 0
            listed = run([add, "-l"], env=agent.env())
            assert (listed.returncode, listed.stdout) == (1, "The agent has no identities.\n")
    finally:
        release.touch()
        if testing is not None and testing.poll() is None:
            testing.kill()
            testing.wait()


@pytest.fixture
def fish() -> str:
    found = shutil.which("fish")
    if found is None:
        missing("fish is not installed")
    return found or "fish"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A folder with a short path: under pytest's long ones a socket's path can pass a
    Unix socket's 108 bytes, and the agent then takes /tmp instead, as ssh-agent would."""
    base = Path(tempfile.mkdtemp(prefix="kt-"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("", "a\\\\b c$d.sock"),
        ("", "e'f\\'g.sock"),
        ("", "trailing\\"),
        ("tmp\\\\dir 'x' $HOME", ""),
    ],
)
def test_fish_reads_back_the_path(
    tmp_path: Path, short_tmp: Path, fish: str, started: list[int], folder: str, name: str
) -> None:
    """``keytool agent --fish | source`` sets SSH_AUTH_SOCK to the very path, with
    backslashes, quotes, blanks and "$" in it, given with -a or made under $TMPDIR.
    (shlex.quote's single quotes: fish takes "\\\\" and "\\'" in them as escapes.)"""
    env = plain_env(tmp_path)
    args = ["--fish"]
    if folder:
        tmpdir = short_tmp / folder
        tmpdir.mkdir()
        env["TMPDIR"] = str(tmpdir)
    else:
        args += ["-a", str(tmp_path / name)]
    result = start("keytool", args, env, started)
    assert result.returncode == 0, result.stderr
    lines = tmp_path / "lines.fish"
    lines.write_text(result.stdout)
    script = f"source {lines} >/dev/null; printf '%s' $SSH_AUTH_SOCK"
    sourced = subprocess.run(
        [fish, "--no-config", "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert sourced.returncode == 0, sourced.stderr
    sock = Path(sourced.stdout)
    assert sock.is_socket(), sourced.stdout
    if folder:
        assert sock.parent.parent == tmpdir
    else:
        assert sock == tmp_path / name
    assert run([require("ssh-add"), "-l"], env=agent_env(sock)).returncode == 1


def spell(kind: str, pid: int) -> str:
    digits = str(pid)
    if kind == "underscore":
        return f"{digits[0]}_{digits[1:]}"
    if kind == "arabic digits":
        return "".join(chr(0x660 + int(d)) for d in digits)
    if kind == "trailing blank":
        return f"{digits} "
    if kind == "hex":
        return hex(pid)
    return ""


@pytest.mark.parametrize("kind", ["underscore", "arabic digits", "trailing blank", "hex", "empty"])
def test_k_takes_only_what_strtonum_takes(tmp_path: Path, kind: str) -> None:
    """SSH_AGENT_PID as ssh-agent -k reads it (strtonum): with "_", non-ASCII digits or
    a trailing blank it is "not a good PID: invalid", status 1, and nothing is killed.
    keytool's int() took "6_785" and Arabic-Indic digits for 6785, and killed it."""
    target = subprocess.Popen(["sleep", "60"])
    try:
        spelled = spell(kind, target.pid)
        env = plain_env(tmp_path, SSH_AGENT_PID=spelled)
        results = {
            tool: subprocess.run(
                [*program(tool), "-k"], capture_output=True, text=True, env=env, timeout=60
            )
            for tool in TOOLS
        }
        assert target.poll() is None  # alive
        words = f'SSH_AGENT_PID="{spelled}", which is not a good PID: invalid\n'
        assert results["ssh-agent"].returncode == 1
        assert results["ssh-agent"].stderr == words
        ours = results["keytool"]
        assert ours.returncode == 1
        if spelled.isascii():
            assert ours.stderr == f"keytool: {words}"
        else:  # a character the terminal may not show is printed as "?"
            assert ours.stderr.endswith("which is not a good PID: invalid\n")
            assert len(ours.stderr.splitlines()) == 1
        assert ours.stdout == results["ssh-agent"].stdout == ""
    finally:
        target.send_signal(signal.SIGTERM)
        target.wait()


def test_k_takes_what_strtonum_takes(tmp_path: Path) -> None:
    """Leading blanks and a "+" are part of what strtonum reads: both kill the target."""
    for tool in TOOLS:
        target = subprocess.Popen(["sleep", "60"])
        try:
            env = plain_env(tmp_path, SSH_AGENT_PID=f" +{target.pid}")
            result = subprocess.run(
                [*program(tool), "-k"], capture_output=True, text=True, env=env, timeout=60
            )
            assert result.returncode == 0, (tool, result.stderr)
            assert target.wait(10) == -signal.SIGTERM
        finally:
            if target.poll() is None:
                target.kill()
                target.wait()

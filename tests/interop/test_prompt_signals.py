"""A signal at a passphrase prompt, side by side with ssh-keygen and ssh-add: as
OpenSSH's readpassphrase, the echo is given back before the signal takes effect
(SIGTERM, SIGHUP, SIGQUIT and ^C end the program as they would; SIGTSTP stops it with
the echo on and the prompt is asked again once it goes on)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.agenthelp import RunningAgent, openssh_agent
from tests.interop.clienthelp import KEYTOOL, base_env
from tests.interop.ptyhelp import Pty, reading_terminal
from tests.peers import require, run

PASSPHRASE = "old secret"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[RunningAgent]:
    with openssh_agent(tmp_path / "agent") as running:
        yield running


def _locked(path: Path) -> Path:
    made = run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", path])
    assert made.returncode == 0, made.stderr
    return path


def _commands(tool: str, folder: Path) -> dict[str, list[str]]:
    """Each prompting command by OpenSSH's tool or keytool, on files of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    locked = _locked(folder / "kenc")
    if tool == "openssh":
        return {
            "gen": [require("ssh-keygen"), "-t", "ed25519", "-f", str(folder / "new")],
            "add": [require("ssh-add"), str(locked)],
            "passwd": [require("ssh-keygen"), "-p", "-f", str(locked)],
        }
    return {
        "gen": [*KEYTOOL, "gen", "-t", "ed25519", "-f", str(folder / "new")],
        "add": [*KEYTOOL, "add", str(locked)],
        "passwd": [*KEYTOOL, "passwd", "-f", str(locked)],
    }


def _env(folder: Path, agent: RunningAgent) -> dict[str, str]:
    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    return base_env(HOME=str(home), SSH_AUTH_SOCK=str(agent.sock))


def _child(pid: int) -> int:
    """The one child of ``pid`` (the shell's foreground command)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _killed_at_prompt(argv: list[str], env: dict[str, str], signum: int) -> tuple[int, str]:
    """The status and the terminal's echo after ``signum`` comes to the terminal's
    process group at the prompt; a shell that survives it reports both."""
    script = (
        f"trap : INT TERM HUP QUIT; ulimit -c 0; {shlex.join(argv)}; echo RC=$?; "
        'stty -a | grep -ow -- "-\\?echo"'
    )
    term = Pty([shutil.which("bash") or "/bin/bash", "-c", script], env)
    try:
        assert term.read_until(b"passphrase", 60), term.out
        assert reading_terminal(_child(term.pid)), term.out
        os.killpg(os.tcgetpgrp(term.fd), signum)
        assert term.wait(60) == 0, term.out
    finally:
        term.close()
    text = term.out.decode(errors="replace")
    found = re.search(r"RC=(\d+)\s+(-?echo)\b", text)
    assert found, text
    return int(found[1]), found[2]


@pytest.mark.parametrize("command", ["gen", "add", "passwd"])
@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT], ids=str
)
def test_a_signal_at_the_prompt_gives_the_echo_back(
    tmp_path: Path, agent: RunningAgent, command: str, signum: int
) -> None:
    """ssh-keygen and ssh-add end with the echo on (status 128+N); keytool left it off."""
    seen = {}
    for tool in ("openssh", "keytool"):
        argv = _commands(tool, tmp_path / tool)[command]
        seen[tool] = _killed_at_prompt(argv, _env(tmp_path / tool, agent), signum)
    assert seen["openssh"] == (128 + signum, "echo")
    assert seen["keytool"] == seen["openssh"]


#: runs a command in a process group of its own in the terminal's foreground, as a
#: shell with job control does (a stop signal is ignored in an orphaned group), and
#: tells when it stops and how it ends
LAUNCHER = """
import os, signal, sys
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(0, os.getpid())
    for number in (signal.SIGTTOU, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL)
    os.execvp(sys.argv[1], sys.argv[1:])
while True:
    _, status = os.waitpid(pid, os.WUNTRACED)
    if os.WIFSTOPPED(status):
        os.write(1, b"STOPPED\\n")
    else:
        os.write(1, b"RC=%d\\n" % os.waitstatus_to_exitcode(status))
        break
"""


@pytest.mark.parametrize("command", ["gen", "add", "passwd"])
def test_stopped_at_the_prompt_the_echo_is_on_and_it_asks_again(
    tmp_path: Path, agent: RunningAgent, command: str
) -> None:
    """SIGTSTP: stopped with the echo on (keytool stopped with it off), and once
    continued the prompt is written again, the echo off, and what is typed then is
    taken."""
    seen = {}
    for tool in ("openssh", "keytool"):
        argv = _commands(tool, tmp_path / tool)[command]
        term = Pty([sys.executable, "-c", LAUNCHER, *argv], _env(tmp_path / tool, agent))
        try:
            assert term.read_until(b"passphrase", 60), term.out
            pid = os.tcgetpgrp(term.fd)
            assert reading_terminal(pid), term.out
            hidden = not term.echo()
            os.kill(pid, signal.SIGTSTP)
            assert term.read_until(b"STOPPED", 60), term.out
            echo_stopped = term.echo()
            term.out = b""
            os.kill(pid, signal.SIGCONT)
            assert term.read_until(b"passphrase", 60), term.out
            hidden_again = not term.echo()
            answer = b"" if command == "gen" else PASSPHRASE.encode()
            os.write(term.fd, answer + b"\r")
            if command == "passwd":  # then a new passphrase (none)
                assert term.read_until(b"new passphrase", 60), term.out
                os.write(term.fd, b"\r")
            if command != "add":  # and the same again
                assert term.read_until(b"again", 60), term.out
                os.write(term.fd, b"\r")
            assert term.read_until(b"RC=", 60), term.out
            assert term.wait(60) == 0, term.out
        finally:
            term.close()
        found = re.search(rb"RC=(\d+)", term.out)
        assert found, term.out
        seen[tool] = (hidden, echo_stopped, hidden_again, int(found[1]))
    assert seen["openssh"] == (True, True, True, 0)
    assert seen["keytool"] == seen["openssh"]

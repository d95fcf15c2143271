"""The lines ``keytool agent`` prints for the shell, side by side with ssh-agent: which
shell's lines (ssh-agent's rule: csh lines when $SHELL ends in "csh", sh lines for
everybody else, fish users too), and socket paths that survive csh's eval."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interop.agenthelp import KEYTOOL, openssh_agent
from tests.peers import missing, require

AGENT_PID = re.compile(r"Agent pid (\d+)")


def env_for(tmp_path: Path, shell: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
    env.update(SHELL=shell, HOME=str(tmp_path), TMPDIR=str(tmp_path), **extra)
    return env


def agent_command(which: str) -> str:
    if which == "ssh-agent":
        return require("ssh-agent")
    return " ".join([sys.executable, "-m", "keytool", "agent"])


def normal(text: str, sock: str) -> str:
    return AGENT_PID.sub("Agent pid PID", re.sub(r"PID[= ]\d+;", "PID=PID;", text)).replace(
        sock, "SOCK"
    )


@pytest.mark.parametrize("shell", ["/usr/bin/fish", "/bin/bash", "/bin/tcsh"])
def test_the_shell_decides_as_for_ssh_agent(tmp_path: Path, shell: str, started: list[int]) -> None:
    """Plain ``agent`` for a user whose $SHELL is fish, bash or tcsh: the lines ssh-agent
    prints for that user."""
    printed = {}
    for which in ("ssh-agent", "keytool"):
        sock = str(tmp_path / f"{which}.sock")
        argv = [require("ssh-agent")] if which == "ssh-agent" else [*KEYTOOL, "agent"]
        result = subprocess.run(
            [*argv, "-a", sock],
            capture_output=True,
            text=True,
            timeout=60,
            env=env_for(tmp_path, shell),
        )
        started.extend(int(p) for p in AGENT_PID.findall(result.stdout))
        assert result.returncode == 0, result.stderr
        printed[which] = normal(result.stdout, sock)
    assert printed["keytool"] == printed["ssh-agent"]


def test_a_fish_users_bash_script_evals_the_lines(tmp_path: Path, started: list[int]) -> None:
    """``eval "$(keytool agent)"`` in a bash script run by a fish user sets the variables
    and the agent is reached and stopped, as with ssh-agent."""
    outputs = {}
    for which in ("ssh-agent", "keytool"):
        script = (
            f'eval "$({agent_command(which)})"; ssh-add -l; echo "list $?"; '
            'echo "pid ${SSH_AGENT_PID:-unset}"; kill "$SSH_AGENT_PID" && echo stopped'
        )
        result = subprocess.run(
            [require("bash"), "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env=env_for(tmp_path, shutil.which("fish") or "/usr/bin/fish"),
        )
        started.extend(int(p) for p in AGENT_PID.findall(result.stdout))
        outputs[which] = (re.sub(r"\d+", "N", result.stdout), result.stderr, result.returncode)
    assert outputs["keytool"] == outputs["ssh-agent"]
    assert "pid N\nstopped\n" in outputs["keytool"][0]


def test_a_socket_path_with_a_history_mark_survives_csh_eval(
    tmp_path: Path, started: list[int]
) -> None:
    """ssh-agent prints the path bare, which breaks at a space or "!"; keytool quotes it,
    "!" too (tcsh expands history inside single quotes)."""
    tcsh = shutil.which("tcsh") or shutil.which("csh")
    if tcsh is None:
        missing("no csh installed")
        return
    folder = tmp_path / "we!rd $x"
    folder.mkdir()
    sock = str(folder / "s.sock")
    # the path reaches the agent through the environment: typed on tcsh's command
    # line, its "!" would be expanded before keytool ever saw it
    start = tmp_path / "start-agent"
    lines = tmp_path / "lines"  # the agent's pid, to stop it whatever tcsh made of them
    start.write_text(f'#!/bin/sh\n{agent_command("keytool")} -c -a "$KT_SOCK" | tee {lines}\n')
    start.chmod(0o755)
    script = (
        f"eval `{start}`; printenv SSH_AUTH_SOCK; ssh-add -l; echo list $status; "
        "kill $SSH_AGENT_PID"
    )
    result = subprocess.run(
        [tcsh, "-f", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_for(tmp_path, tcsh, KT_SOCK=sock),
    )
    started.extend(int(p) for p in AGENT_PID.findall(lines.read_text()))
    assert result.returncode == 0, result.stderr
    # what ssh-add -l says of an empty agent, asked with the path as it is
    with openssh_agent(tmp_path / "openssh") as running:
        empty = subprocess.run(
            ["sh", "-c", "ssh-add -l; echo list $?"],
            capture_output=True,
            text=True,
            timeout=60,
            env=running.env(),
        )
    out = result.stdout.splitlines(keepends=True)
    assert out[0] == f"Agent pid {started[-1]}\n"
    assert "".join(out[1:]) == f"{sock}\n" + empty.stdout

"""The agent's shell lines, shell detection and time spans (pure parts of the daemon)."""

from __future__ import annotations

import pytest

from agent.daemon import detect_shell, env_lines, foreground_lines, kill_lines
from keytool.duration import parse_seconds
from keytool.errors import KeytoolError


@pytest.mark.parametrize(
    ("shell", "csh", "sh", "expected"),
    [
        ("/bin/bash", False, False, "sh"),
        ("/usr/bin/zsh", False, False, "sh"),
        ("/bin/tcsh", False, False, "csh"),
        ("/bin/csh", False, False, "csh"),
        # as ssh-agent: only a $SHELL ending in "csh" picks other lines than sh
        ("/usr/bin/fish", False, False, "sh"),
        ("/opt/csh", False, False, "csh"),
        ("", False, False, "sh"),
        ("/bin/bash", True, False, "csh"),
        ("/bin/tcsh", False, True, "sh"),
        ("/usr/bin/fish", True, False, "csh"),
    ],
)
def test_detect_shell(shell: str, csh: bool, sh: bool, expected: str) -> None:
    assert detect_shell(csh, sh, {"SHELL": shell}) == expected


def test_fish_lines_only_when_asked() -> None:
    assert detect_shell(environ={"SHELL": "/bin/bash"}, fish=True) == "fish"
    assert detect_shell(environ={"SHELL": "/usr/bin/fish"}) == "sh"


def test_csh_lines_escape_history_marks() -> None:
    """Single quotes do not stop csh's history expansion of "!"; a backslash does."""
    path = "/x/we!rd $x/s.sock"
    assert env_lines("csh", path, 7).startswith("setenv SSH_AUTH_SOCK '/x/we\\!rd $x/s.sock';\n")
    assert foreground_lines("csh", path, 7).startswith("setenv SSH_AUTH_SOCK '/x/we\\!rd")
    assert env_lines("sh", path, 7).startswith("SSH_AUTH_SOCK='/x/we!rd $x/s.sock';")


def test_lines_as_ssh_agent_prints_them() -> None:
    assert env_lines("sh", "/s/agent.1", 42) == (
        "SSH_AUTH_SOCK=/s/agent.1; export SSH_AUTH_SOCK;\n"
        "SSH_AGENT_PID=42; export SSH_AGENT_PID;\n"
        "echo Agent pid 42;\n"
    )
    assert env_lines("csh", "/s/a", 7) == (
        "setenv SSH_AUTH_SOCK /s/a;\nsetenv SSH_AGENT_PID 7;\necho Agent pid 7;\n"
    )
    assert env_lines("fish", "/s/a", 7).startswith("set -gx SSH_AUTH_SOCK /s/a;\n")
    assert kill_lines("sh", 9) == (
        "unset SSH_AUTH_SOCK;\nunset SSH_AGENT_PID;\necho Agent pid 9 killed;\n"
    )
    assert kill_lines("csh", 9).startswith("unsetenv SSH_AUTH_SOCK;\n")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("10s", 10), ("1h30m", 5400), ("2d", 172800), ("1w", 604800), ("5M", 300)],
)
def test_time_spans(text: str, seconds: int) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "1x", "h", "-5", "1.5h", "99999999999"])
def test_bad_time_spans(text: str) -> None:
    with pytest.raises(KeytoolError):
        parse_seconds(text)

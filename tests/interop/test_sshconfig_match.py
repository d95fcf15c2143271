"""ssh_config Match blocks read as ssh reads them: every criterion, negation, the
final pass, exec with its tokens (and not run once the line cannot match), Include
inside a Match block; `ssh -G` on the same file and host is the reference."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from tests.interop.test_sshconfig_openssh import check_against_ssh

LOCAL_USER = pwd.getpwuid(os.getuid()).pw_name

CONFIG = """\
Host alias
    HostName real-%h.Example.org
Match host real-alias.example.org
    Port 2201
Match originalhost alias !host nothing
    User via-alias
Match host *.corp exec "test %h = db.corp"
    Port 2202
Match host *.corp exec "echo %n %h %p %r %u %L >> {log}; false"
    IdentityFile ~/.ssh/never
Match host *.corp !exec "test -n '%C'"
    IdentityFile ~/.ssh/never-either
Match host nomatch exec "echo ran >> {skipped}"
    Port 9
Match user deploy
    Port 2203
Match localuser {local}
    ConnectTimeout 7
Match !localuser {local}
    ConnectTimeout 8
Host web*
    User deploy
Match user deploy
    Port 2204
Match final host final.example
    Port 2205
Match !final host final.example
    ServerAliveInterval 11
Match canonical
    ServerAliveInterval 12
Match host inc.example
    Include {include}
Match all
    User everyone
"""
HOSTS = ["alias", "db.corp", "app.corp", "web1", "final.example", "inc.example", "other"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    included = tmp_path / "included"
    included.write_text("Port 2206\nUser from-include\n")
    text = CONFIG.format(
        log=tmp_path / "exec.log",
        skipped=tmp_path / "skipped.log",
        local=LOCAL_USER,
        include=included,
    )
    path = tmp_path / "config"
    path.write_text(text)
    return path


@pytest.mark.parametrize("host", HOSTS)
def test_match_agrees_with_ssh_G(config: Path, host: str) -> None:
    log = config.parent / "exec.log"
    check_against_ssh(config, host)
    # both ran the same exec commands, in each pass (a Match final asks for two), their
    # tokens expanded alike: ssh's lines first, then keytool's
    if log.exists():
        lines = log.read_text().splitlines()
        half = len(lines) // 2
        assert half and lines[:half] == lines[half:], lines
    assert not (config.parent / "skipped.log").exists()  # a failed host stops exec


def test_the_hosts_exercise_the_blocks(config: Path) -> None:
    seen = {host: check_against_ssh(config, host) for host in HOSTS}
    assert seen["alias"].port == 2201 and seen["alias"].user == "via-alias"
    assert seen["db.corp"].port == 2202 and seen["app.corp"].port != 2202
    assert seen["web1"].port == 2204 and seen["web1"].user == "deploy"
    assert seen["final.example"].port == 2205
    assert seen["final.example"].server_alive_interval == 11
    assert (seen["inc.example"].port, seen["inc.example"].user) == (2206, "from-include")
    assert seen["other"].user == "everyone" and seen["other"].connect_timeout == 7

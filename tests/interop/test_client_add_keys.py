"""AddKeysToAgent in ``keytool exec``, side by side with ssh: each logs in to the same
sshd with a key file, each with its own OpenSSH ssh-agent in debug mode, whose log
tells what was added (key, comment, lifetime, confirm). ssh's agent log is the
reference."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.interop.agenthelp import _running_agent, askpass_script
from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.interop.ptyjob import Job
from tests.peers import Sshd, require

ADDED = re.compile(r"process_add_identity: add .*")


def added_with(
    client: str, sshd: Sshd, folder: Path, value: str, env: dict[str, str], tty: bool = False
) -> str:
    """What an ssh-agent was asked to add while ``client`` logged in once (``tty``: on
    a terminal of its own, where nothing is typed)."""
    key = folder / "id_login"
    folder.mkdir()
    sock = folder / "agent.sock"
    flags = ["-F", "none", "-p", str(sshd.port), "-i", str(key),
             "-o", f"UserKnownHostsFile={folder.parent / 'known_hosts'}",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", f"AddKeysToAgent={value}"]  # fmt: skip
    if client == "keytool":
        args = [*KEYTOOL, "exec", *flags, "root@127.0.0.1", "--", "echo in"]
    else:
        args = [require("ssh"), "-T", *flags, "root@127.0.0.1", "echo in"]
    key.write_bytes((folder.parent / "id_login").read_bytes())
    key.chmod(0o600)
    with _running_agent([require("ssh-agent"), "-d", "-a", str(sock)], sock, None) as agent:
        if tty:
            job = Job(args, base_env(SSH_AUTH_SOCK=str(sock), **env))
            try:
                status = job.wait()
                shown = job.out
            finally:
                job.close()
            assert status == 0 and b"in\r\n" in shown, shown
            assert b"Add key" not in shown, shown  # not asked on the terminal
            return "\n".join(ADDED.findall(agent.log_text()))
        done = subprocess.run(
            args, capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
            env=base_env(SSH_AUTH_SOCK=str(sock), **env),
        )  # fmt: skip
        assert (done.returncode, done.stdout) == (0, b"in\n"), done.stderr
    # the key's file is named in the comment only when it has none; here it has one
    return "\n".join(ADDED.findall(agent.log_text()))


@pytest.mark.parametrize(
    ("value", "answer"),
    [
        ("yes", None),
        ("no", None),
        ("confirm", None),
        ("1h30m", None),
        ("confirm 5m", None),
        ("ask", None),  # nobody to ask: not added
        ("ask", "yes"),
        ("ask", ""),  # an empty answer is a yes to ssh
        ("ask", "no"),
    ],
)
def test_added_as_ssh_adds(tmp_path: Path, sshd: Sshd, value: str, answer: str | None) -> None:
    keygen(tmp_path / "id_login", "ed25519", "login key")
    sshd.authorized_keys.write_text((tmp_path / "id_login.pub").read_text())
    (tmp_path / "known_hosts").write_text(sshd.known_hosts_line())
    env: dict[str, str] = {}
    if answer is not None:
        env = {
            "SSH_ASKPASS": str(askpass_script(tmp_path)), "SSH_ASKPASS_REQUIRE": "force",
            "DISPLAY": ":0", "KT_ASKPASS_ANSWER": answer,
            "KT_ASKPASS_LOG": str(tmp_path / "asked"),
        }  # fmt: skip
    theirs = added_with("ssh", sshd, tmp_path / "ssh", value, env)
    mine = added_with("keytool", sshd, tmp_path / "keytool", value, env)
    assert mine == theirs
    adds = value != "no" and not (value == "ask" and answer in (None, "no"))
    assert bool(theirs) == adds, theirs
    if adds:
        assert '"login key"' in theirs
    if answer is not None:  # both asked the same question, once each
        asked = (tmp_path / "asked").read_text().splitlines()
        assert len(asked) == 2 and asked[0] == asked[1].replace("/keytool/", "/ssh/"), asked


def test_ask_is_never_asked_on_the_terminal(tmp_path: Path, sshd: Sshd) -> None:
    """ssh asks AddKeysToAgent=ask's question through askpass alone: on a terminal
    without one it asks nothing and adds nothing (keytool asked there, echo off)."""
    keygen(tmp_path / "id_login", "ed25519", "login key")
    sshd.authorized_keys.write_text((tmp_path / "id_login.pub").read_text())
    (tmp_path / "known_hosts").write_text(sshd.known_hosts_line())
    theirs = added_with("ssh", sshd, tmp_path / "ssh", "ask", {}, tty=True)
    mine = added_with("keytool", sshd, tmp_path / "keytool", "ask", {}, tty=True)
    assert mine == theirs == ""

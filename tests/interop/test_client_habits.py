"""Habits of ssh that keytool exec and copy-id keep, each run side by side with ssh
against the same sshd: a new host key accepted through SSH_ASKPASS, an IdentityFile
that is a .pub naming the agent's key, and an SFTP stream spoiled by a chatty shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.agenthelp import openssh_agent
from tests.interop.clienthelp import (
    KEYTOOL,
    Account,
    askpass_env,
    both_clients,
    install_key,
    keygen,
    throwaway_account,
)
from tests.interop.copyidhelp import USER_KEYS, copy_id, make_client, put_keys
from tests.peers import READS_BASHRC, Sshd, require, run


def common(server: Sshd, known: Path, key: Path) -> list[str]:
    return ["-F", "/dev/null", "-p", str(server.port), "-o", f"UserKnownHostsFile={known}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
            "-i", str(key)]  # fmt: skip


@pytest.mark.parametrize("answer", ["yes", "no"])
def test_a_new_host_key_is_asked_through_askpass(
    tmp_path: Path, account: Account, answer: str
) -> None:
    """No terminal, SSH_ASKPASS_REQUIRE=force: ssh asks its "Are you sure you want to
    continue connecting" through askpass; keytool said there was no terminal."""
    key = keygen(tmp_path / "key")
    install_key(account, Path(f"{key}.pub"))
    with Sshd(tmp_path / "sshd", dict(USER_KEYS, AllowUsers=account.name)) as server:
        host_line = server.known_hosts_line().split(" ", 1)[1]
        for tool in ("ssh", "keytool"):
            known = tmp_path / f"known_{tool}"
            known.write_text("")
            (tmp_path / "askpass.log").unlink(missing_ok=True)
            env = askpass_env(tmp_path, answer)
            args = [*common(server, known, key), f"{account.name}@127.0.0.1", "echo", "in"]
            program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
            done = subprocess.run([*program, *args], capture_output=True, env=env,
                                  stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
            asked = (tmp_path / "askpass.log").read_text()
            assert "Are you sure you want to continue connecting" in asked, (tool, asked)
            if answer == "yes":
                assert done.returncode == 0, (tool, done.stderr)
                assert done.stdout == b"in\n"
                assert b"Permanently added" in done.stderr
                assert host_line.split()[1] in known.read_text()
            else:
                assert done.returncode == 255 and done.stdout == b""
                assert known.read_text() == ""


def test_an_identity_file_that_is_a_pub_names_the_agents_key(
    tmp_path: Path, account: Account
) -> None:
    """IdentityFile KEY.pub with the private key only in the agent (a token, a password
    manager's agent): ssh signs with the agent's key; keytool offered nothing."""
    key = keygen(tmp_path / "key")
    other = keygen(tmp_path / "other")
    install_key(account, Path(f"{key}.pub"))
    alone = tmp_path / "pubonly"
    alone.mkdir()
    (alone / "id.pub").write_bytes(Path(f"{key}.pub").read_bytes())
    with (
        Sshd(tmp_path / "sshd", dict(USER_KEYS, AllowUsers=account.name)) as server,
        openssh_agent(tmp_path / "agent") as agent,
    ):
        run([require("ssh-add"), "-q", other], env=agent.env()).check_returncode()
        known = tmp_path / "known"
        known.write_text(server.known_hosts_line())
        args = [*common(server, known, alone / "id.pub"), "-o", "BatchMode=yes",
                f"{account.name}@127.0.0.1", "echo", "in"]  # fmt: skip
        # the key is not in the agent yet: neither can log in with it
        for tool, done in both_clients(*args, env=agent.env()).items():
            assert done.returncode == 255, (tool, done.stderr)
        run([require("ssh-add"), "-q", key], env=agent.env()).check_returncode()
        for tool, done in both_clients(*args, env=agent.env()).items():
            assert done.returncode == 0, (tool, done.stderr)
            assert done.stdout == b"in\n"


def test_sftp_spoiled_by_a_chatty_shell_says_what_to_fix(tmp_path: Path) -> None:
    """An sftp-server started through bash, whose .bashrc prints: OpenSSH's sftp says
    the shell must print nothing; keytool copy-id -s said "SFTP packet of N bytes"."""
    with throwaway_account("/bin/bash") as account:
        rc = account.home / ".bashrc"
        rc.write_text("echo JUNK-FROM-BASHRC\n")
        login = keygen(tmp_path / "login", "ed25519", "login")
        put_keys(account, Path(f"{login}.pub").read_bytes())
        options = dict(USER_KEYS, AllowUsers=account.name, **READS_BASHRC)
        options["Subsystem"] = "sftp /usr/lib/openssh/sftp-server"
        with Sshd(tmp_path / "sshd", options) as server:
            client = make_client(tmp_path, server)
            theirs = run([require("sftp"), "-b", "-", "-P", str(server.port), "-F", "/dev/null",
                          "-o", f"UserKnownHostsFile={client.known_hosts}", "-o",
                          "BatchMode=yes", "-i", str(login), f"{account.name}@127.0.0.1"],
                         input="pwd\n")  # fmt: skip
            assert theirs.returncode != 0
            assert "produces no output for non-interactive sessions" in theirs.stderr
            ours = copy_id(client, "-s", "-p", server.port, f"{account.name}@127.0.0.1",
                           login_key=login)  # fmt: skip
            assert ours.returncode != 0
            assert "print nothing for non-interactive sessions" in ours.stdout + ours.stderr
            keys = account.home / ".ssh" / "authorized_keys"
            assert keys.read_bytes() == Path(f"{login}.pub").read_bytes()

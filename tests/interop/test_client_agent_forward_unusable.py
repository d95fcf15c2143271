"""Agent forwarding with no agent to forward (``keytool exec -A``, ForwardAgent), side
by side with ssh against sshd: SSH_AUTH_SOCK naming a socket nobody listens on, or a
regular file, or ForwardAgent naming such a socket. As ssh, nothing is asked of the
server then: the session has no SSH_AUTH_SOCK, ssh-add there finds no agent (status
2), and nothing is said here. An agent gone after the session asked for it: the
server's ssh-add fails, and here, as with ssh, nothing is said (-v names it)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.interop.agenthelp import openssh_agent
from tests.interop.clienthelp import base_env, server_for
from tests.interop.test_client_agent_forwarding import run as run_client
from tests.peers import Sshd

CLIENTS = ("ssh", "keytool")
#: what the session's programs see: the agent variable, and ssh-add's answer
AT_SERVER = 'echo "sock=$SSH_AUTH_SOCK"; ssh-add -l; echo "status $?"'
NO_AGENT = (0, "sock=\nstatus 2\n", "Could not open a connection to your authentication agent.\n")


def run(
    client: str, sshd: Sshd, key: Path, known: Path, env: dict[str, str], *flags: str,
    command: str = AT_SERVER,
) -> tuple[int, str, str]:  # fmt: skip
    """The client's status, stdout and stderr for ``command`` at the server."""
    return run_client(client, sshd, key, known, env, *flags, command=command)


def dead_socket(path: Path) -> Path:
    """A socket file nobody listens on (its listener closed): connecting is refused."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
    return path


@pytest.mark.parametrize("kind", ["dead socket", "regular file"])
def test_no_forwarding_when_ssh_auth_sock_is_no_agent(tmp_path: Path, kind: str) -> None:
    sshd, key, known = server_for(tmp_path)
    if kind == "dead socket":
        sock = dead_socket(tmp_path / "agent.sock")
    else:
        sock = tmp_path / "agent.file"
        sock.write_text("")
    env = base_env(SSH_AUTH_SOCK=str(sock))
    with sshd:
        seen = {c: run(c, sshd, key, known, env, "-A") for c in CLIENTS}
    assert seen["keytool"] == seen["ssh"] == NO_AGENT


def test_no_forwarding_when_forward_agent_names_a_dead_socket(tmp_path: Path) -> None:
    sshd, key, known = server_for(tmp_path)
    sock = dead_socket(tmp_path / "agent.sock")
    with sshd:
        seen = {
            c: run(c, sshd, key, known, base_env(), "-o", f"ForwardAgent={sock}") for c in CLIENTS
        }
    assert seen["keytool"] == seen["ssh"] == NO_AGENT


def test_verbose_says_why_the_agent_is_not_forwarded(tmp_path: Path) -> None:
    sshd, key, known = server_for(tmp_path)
    sock = dead_socket(tmp_path / "agent.sock")
    with sshd:
        _, _, stderr = run("keytool", sshd, key, known, base_env(SSH_AUTH_SOCK=str(sock)), "-Av")
    said = f"agent forwarding: not asked for: cannot connect to the agent at {sock}: "
    assert f"keytool: {said}Connection refused\n" in stderr
    assert "may use our agent" not in stderr


def test_an_agent_gone_later_is_not_called_port_forwarding(tmp_path: Path) -> None:
    """The agent answers as the session is set up, then its socket is moved away by the
    session's command: the forwarded connection fails; ssh says nothing of it here."""
    sshd, key, known = server_for(tmp_path)
    with openssh_agent(tmp_path / "agent") as agent, sshd:
        away = f"{agent.sock}.away"
        command = f"mv {agent.sock} {away}; ssh-add -l; echo status $?; mv {away} {agent.sock}"
        env = base_env(SSH_AUTH_SOCK=str(agent.sock))
        seen = {c: run(c, sshd, key, known, env, "-A", command=command) for c in CLIENTS}
        verbose = run("keytool", sshd, key, known, env, "-Av", command=command)
    # the server's ssh-add sees the forwarded connection fail as it reads the answer, or
    # as it writes its request (SIGPIPE): a race of its own, with either client
    failed = {
        (0, "status 1\n", "error fetching identities: communication with agent failed\n"),
        (0, "status 141\n", ""),
    }
    assert seen["ssh"] in failed and seen["keytool"] in failed, seen  # nothing said here
    assert "port forwarding" not in verbose[2]
    lines = [line for line in verbose[2].splitlines() if "cannot connect to our agent" in line]
    assert len(lines) == 1 and lines[0].startswith("keytool: agent forwarding: channel ")
    assert lines[0].endswith(": No such file or directory")

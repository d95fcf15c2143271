"""Agent forwarding (``keytool exec -A``, ForwardAgent), side by side with ssh against
sshd: the real ssh-add, run at the server, lists through the forwarded agent the keys
of the agent here (OpenSSH's ssh-agent, or keytool's own); without -A it finds none;
and a server that opens an agent channel nobody asked for is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.agenthelp import keytool_agent, openssh_agent
from tests.interop.clienthelp import KEYTOOL, keygen, server_for
from tests.peers import Sshd, require

CLIENTS = ("ssh", "keytool")


def run(
    client: str, sshd: Sshd, key: Path, known: Path, env: dict[str, str], *flags: str,
    command: str = "ssh-add -l; echo status $?",
) -> tuple[int, str, str]:  # fmt: skip
    """The client's status, stdout and stderr for ``command`` at the server."""
    args = ["-F", "none", "-p", str(sshd.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", *flags, "root@127.0.0.1", command]  # fmt: skip
    program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
    done = subprocess.run(
        [*program, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env,
        timeout=60,
    )  # fmt: skip
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout, done.stderr


def run_at_server(
    client: str, sshd: Sshd, key: Path, known: Path, env: dict[str, str], *flags: str
) -> tuple[int, str]:
    status, stdout, _ = run(client, sshd, key, known, env, *flags)
    return status, stdout


@pytest.mark.parametrize("agent_kind", ["ssh-agent", "keytool agent"])
def test_forwarded_agent_lists_our_keys(tmp_path: Path, agent_kind: str) -> None:
    sshd, key, known = server_for(tmp_path)
    held = keygen(tmp_path / "held", "ecdsa", "held@here")
    runner = openssh_agent if agent_kind == "ssh-agent" else keytool_agent
    with runner(tmp_path / "agent") as agent, sshd:
        listed, unlisted = _both(sshd, key, known, held, agent.env())
    # with -A: the key held here, as ssh-add at the server lists it, for both clients
    assert listed["keytool"] == listed["ssh"]
    assert listed["ssh"][0] == 0 and "held@here (ECDSA)" in listed["ssh"][1]
    # without: no agent at the server (ssh-add's status 2)
    assert unlisted["keytool"] == unlisted["ssh"] == (0, "status 2\n")


def _both(
    sshd: Sshd, key: Path, known: Path, held: Path, env: dict[str, str]
) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]]]:
    subprocess.run([require("ssh-add"), "-q", str(held)], env=env, check=True)
    listed = {c: run_at_server(c, sshd, key, known, env, "-A") for c in CLIENTS}
    unlisted = {c: run_at_server(c, sshd, key, known, env) for c in CLIENTS}
    return listed, unlisted


def test_forward_agent_path_and_variable_as_ssh(tmp_path: Path) -> None:
    """ForwardAgent naming a socket (or a variable holding one): that agent is the one
    forwarded, not SSH_AUTH_SOCK's. (ssh 9.2 forwards nothing at all when SSH_AUTH_SOCK
    names no agent; keytool forwards the one named all the same.)"""
    sshd, key, known = server_for(tmp_path)
    held = keygen(tmp_path / "held", "ed25519", "by-path")
    with openssh_agent(tmp_path / "a") as usual, openssh_agent(tmp_path / "b") as named, sshd:
        subprocess.run([require("ssh-add"), "-q", str(held)], env=named.env(), check=True)
        env = usual.env(KT_AGENT=str(named.sock))
        for setting in (f"ForwardAgent={named.sock}", "ForwardAgent=$KT_AGENT"):
            seen = {c: run_at_server(c, sshd, key, known, env, "-o", setting) for c in CLIENTS}
            assert seen["keytool"] == seen["ssh"], setting
            assert "by-path (ED25519)" in seen["ssh"][1]


def test_no_agent_forwarding_after_a_changed_host_key(tmp_path: Path) -> None:
    """A changed host key let through with StrictHostKeyChecking=no: as ssh, our agent
    is not forwarded (ssh's words said), so the server finds none."""
    sshd, key, known = server_for(tmp_path)
    other = keygen(tmp_path / "other_host", "ed25519")
    kind, blob = Path(f"{other}.pub").read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")  # not the server's key
    held = keygen(tmp_path / "held", "ed25519", "held@here")
    with openssh_agent(tmp_path / "agent") as agent, sshd:
        subprocess.run([require("ssh-add"), "-q", str(held)], env=agent.env(), check=True)
        seen = {}
        for client in CLIENTS:
            args = ["-F", "none", "-p", str(sshd.port), "-i", str(key),
                    "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known}",
                    "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
                    "-A", "root@127.0.0.1", "ssh-add -l; echo status $?"]  # fmt: skip
            program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
            done = subprocess.run(
                [*program, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                env=agent.env(), timeout=60,
            )  # fmt: skip
            said = "Agent forwarding is disabled to avoid man-in-the-middle attacks."
            seen[client] = (done.returncode, done.stdout, said in done.stderr)
    assert seen["keytool"] == seen["ssh"] == (0, "status 2\n", True)


def test_the_last_of_a_and_big_a_counts_as_with_ssh(tmp_path: Path) -> None:
    """-a then -A forwards, -A then -a does not: as ssh, the last one given counts."""
    sshd, key, known = server_for(tmp_path)
    held = keygen(tmp_path / "held", "ed25519", "last@here")
    with openssh_agent(tmp_path / "agent") as agent, sshd:
        subprocess.run([require("ssh-add"), "-q", str(held)], env=agent.env(), check=True)
        for flags, listed in ((("-a", "-A"), True), (("-A", "-a"), False), (("-aA",), True)):
            seen = {c: run_at_server(c, sshd, key, known, agent.env(), *flags) for c in CLIENTS}
            assert seen["keytool"] == seen["ssh"], flags
            assert ("last@here (ED25519)" in seen["ssh"][1]) == listed, flags

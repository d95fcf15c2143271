"""Packets a real server never sends, from the raw test server (tests/interop/rawserver.py),
to keytool exec and to ssh: a USERAUTH_SUCCESS in the clear during the key exchange, and
a host certificate under the plain algorithm negotiated. Both clients must give up
before any command runs, and the server sees why."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.interop.rawserver import (
    MSG_USERAUTH_SUCCESS,
    OUTPUT,
    Plan,
    RawServer,
    raw_server,
)
from tests.peers import require

PROTOCOL_ERROR = 2  # SSH_DISCONNECT_PROTOCOL_ERROR
KEX_FAILED = 3  # SSH_DISCONNECT_KEY_EXCHANGE_FAILED


def _exec(
    server: RawServer, home: Path, tool: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """``ssh`` or ``keytool exec`` running a command on ``server``, the host key taken
    as new, nothing asked."""
    home.mkdir(exist_ok=True)
    program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
    return subprocess.run(
        [*program, "-F", "none", "-p", str(server.port), "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={home / f'known_hosts.{tool}'}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=accept-new",
         "-o", "KexAlgorithms=curve25519-sha256", *options, "someone@127.0.0.1", "cmd"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, env=base_env(HOME=str(home)),
        timeout=30, check=False,
    )  # fmt: skip


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_userauth_success_in_the_clear_during_kex(tmp_path: Path) -> None:
    """Right after its KEXINIT the server sends USERAUTH_SUCCESS, unencrypted: were it
    taken, the client would count itself logged in on a forger's word. ssh stops at it
    (strict kex), keytool too, with one line naming the message and a DISCONNECT for
    a protocol error to the server; nothing runs."""
    plan = Plan(follows=False, early=(bytes((MSG_USERAUTH_SUCCESS,)),))
    with raw_server(plan) as server:
        ssh = _exec(server, tmp_path / "home", "ssh", "-o", "LogLevel=DEBUG2")
        ours = _exec(server, tmp_path / "home", "keytool")
    assert ssh.returncode == 255 and ssh.stdout == "", ssh.stderr
    assert ours.returncode == 255 and ours.stdout == "", ours.stderr
    line = _one_line(ours)
    assert "unexpected message 52 from the server" in line, line
    assert [seen.ran for seen in server.seen] == [False, False]
    # ssh queues a DISCONNECT and exits before it is written; keytool's arrives
    assert "protocol error: rcvd type 52" in ssh.stderr, ssh.stderr
    ours_saw = server.seen[1].disconnect
    assert ours_saw is not None and ours_saw[0] == PROTOCOL_ERROR, ours_saw
    assert "unexpected message 52" in ours_saw[1]


def _certify_with_ssh_keygen(folder: Path) -> Callable[[bytes], bytes]:
    """What the server sends as its host key: ssh-keygen's host certificate of it."""
    import base64

    folder.mkdir()
    ca = folder / "ca"
    subprocess.run(
        [require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(ca)], check=True
    )

    def certify(blob: bytes) -> bytes:
        host = folder / "host.pub"
        host.write_text(f"ssh-ed25519 {base64.b64encode(blob).decode()} host\n")
        subprocess.run(
            [require("ssh-keygen"), "-q", "-s", str(ca), "-I", "host", "-h", "-n", "127.0.0.1",
             str(host)],
            check=True, capture_output=True,
        )  # fmt: skip
        cert = (folder / "host-cert.pub").read_text().split()
        assert cert[0] == "ssh-ed25519-cert-v01@openssh.com"
        return base64.b64decode(cert[1])

    return certify


@pytest.mark.parametrize("tool", ["ssh", "keytool"])
def test_host_certificate_under_the_plain_algorithm(tmp_path: Path, tool: str) -> None:
    """The server offers ssh-ed25519 only, so that is what is negotiated; its kex reply
    then carries a certificate of its key (well signed by it, the exchange hash over
    that blob). ssh refuses a key of another type than the algorithm; so does keytool,
    naming both, before asking anybody about the key."""
    plan = Plan(follows=False, host_key_sent=_certify_with_ssh_keygen(tmp_path / "ca"))
    with raw_server(plan) as server:
        result = _exec(server, tmp_path / "home", tool)
    assert result.returncode == 255 and result.stdout == "", result.stderr
    if tool == "ssh":
        assert "key type does not match" in result.stderr, result.stderr
    else:
        line = _one_line(result)
        assert (
            "the server sent a ssh-ed25519-cert-v01@openssh.com host key"
            " for algorithm ssh-ed25519" in line
        ), line
    assert not (tmp_path / "home" / f"known_hosts.{tool}").exists()
    [seen] = server.seen
    assert not seen.ran
    assert seen.server_host_key == ["ssh-ed25519"]


def test_the_plain_host_key_logs_in(tmp_path: Path) -> None:
    """The control of the two tests above: the same server and options, nothing
    forged, and both clients run the command."""
    with raw_server(Plan(follows=False)) as server:
        for tool in ("ssh", "keytool"):
            result = _exec(server, tmp_path / "home", tool)
            assert (result.returncode, result.stdout) == (0, OUTPUT.decode()), result.stderr
    assert [seen.ran for seen in server.seen] == [True, True]

"""ProxyJump: keytool reaches a server through jump hosts, running itself as the
ProxyCommand (``exec -W``) the way ssh runs ssh; and ``keytool exec -W`` alone. The jump
servers are real sshd processes, whose logs show the forwarding they did; OpenSSH's
ssh takes the same config file the same way."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, hello_service, keygen, run_stdin_open
from tests.peers import Sshd, free_port, require, run


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return keygen(tmp_path / "id_ed25519")


@pytest.fixture
def servers(tmp_path: Path, key: Path) -> Iterator[list[Sshd]]:
    """target, first jump, second jump: each takes the key."""
    started: list[Sshd] = []
    try:
        for name in ("target", "jump1", "jump2"):
            server = Sshd(tmp_path / name)
            server.authorized_keys.write_text(Path(f"{key}.pub").read_text())
            server.__enter__()
            started.append(server)
        yield started
    finally:
        for server in reversed(started):
            server.__exit__(None, None, None)


def write_config(tmp_path: Path, key: Path, servers: list[Sshd], jump: str) -> Path:
    known = tmp_path / "known_hosts"
    known.write_text("".join(server.known_hosts_line() for server in servers))
    common = (
        f"  HostName 127.0.0.1\n  User root\n  IdentityFile {key}\n"
        f"  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n  BatchMode yes\n"
    )
    target, jump1, jump2 = servers
    config = tmp_path / "config"
    config.write_text(
        f"Host target\n  Port {target.port}\n  ProxyJump {jump}\n{common}"
        f"Host jump1\n  Port {jump1.port}\n{common}"
        f"Host jump2\n  Port {jump2.port}\n{common}"
    )
    return config


def forwarded_to(server: Sshd) -> list[int]:
    """Ports this sshd opened direct-tcpip connections to (its DEBUG1 log)."""
    text = server.log.read_text(errors="replace")
    found = re.findall(r"server_request_direct_tcpip: .*target 127\.0\.0\.1 port (\d+)", text)
    return [int(port) for port in found]


def test_two_jumps_as_ssh_takes_them(tmp_path: Path, key: Path, servers: list[Sshd]) -> None:
    target, jump1, jump2 = servers
    config = write_config(tmp_path, key, servers, "jump1,jump2")
    ours = subprocess.run(
        [*KEYTOOL, "exec", "-F", str(config), "target", "--", "echo", "far"],
        capture_output=True, env=base_env(), stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert (ours.returncode, ours.stdout) == (0, b"far\n"), ours.stderr
    # jump1 forwarded to jump2, and jump2 to the target: the chain, in ssh's order
    assert forwarded_to(jump1) == [jump2.port]
    assert forwarded_to(jump2) == [target.port]
    assert forwarded_to(target) == []
    # OpenSSH's ssh, given the same file, goes the same way
    theirs = run(
        [require("ssh"), "-F", str(config), "target", "echo", "far"], stdin=subprocess.DEVNULL
    )
    assert (theirs.returncode, theirs.stdout) == (0, "far\n"), theirs.stderr
    assert forwarded_to(jump1) == [jump2.port, jump2.port]
    assert forwarded_to(jump2) == [target.port, target.port]


def test_jump_host_refusal_is_one_line(tmp_path: Path, key: Path, servers: list[Sshd]) -> None:
    jump1 = servers[1]
    jump1.authorized_keys.write_text("")  # the jump host no longer takes the key
    config = write_config(tmp_path, key, servers, "jump1")
    result = subprocess.run(
        [*KEYTOOL, "exec", "-F", str(config), "target", "--", "true"],
        capture_output=True, env=base_env(), stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert result.returncode == 255
    text = result.stderr.decode()
    assert "Traceback" not in text
    # the jump's own keytool says why, then ours that the connection went away
    assert "Permission denied" in text.splitlines()[0]
    assert len(text.splitlines()) == 2
    assert forwarded_to(jump1) == []


def test_stdio_forward_reaches_the_port(key: Path, servers: list[Sshd], tmp_path: Path) -> None:
    target, jump1, _ = servers
    config = write_config(tmp_path, key, servers, "none")
    result = subprocess.run(
        [*KEYTOOL, "exec", "-F", str(config), "-W", f"127.0.0.1:{target.port}", "jump1"],
        input=b"SSH-2.0-probe\r\n", capture_output=True, env=base_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # what came back is the target's SSH banner, through jump1
    assert result.stdout.startswith(b"SSH-2.0-OpenSSH_")
    assert forwarded_to(jump1) == [target.port]
    refused = subprocess.run(
        [*KEYTOOL, "exec", "-F", str(config), "-W", "127.0.0.1:1", "jump1"],
        capture_output=True, env=base_env(), stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 255
    assert refused.stderr.decode().count("\n") == 1
    assert "refused to connect to 127.0.0.1 port 1" in refused.stderr.decode()


def test_stdio_forward_with_n_and_bad_specs_as_ssh(
    key: Path, servers: list[Sshd], tmp_path: Path
) -> None:
    """`-N -W` (a common ProxyCommand) forwards as -W alone, for ssh and keytool; a
    command or a -L given with -W changes nothing; a bad -W is ssh's line and 255."""
    target = servers[0]
    config = write_config(tmp_path, key, servers, "none")
    spec = f"127.0.0.1:{target.port}"
    for extra in (["-N"], ["-L", f"{free_port()}:127.0.0.1:9"], []):
        for program in ([require("ssh")], [*KEYTOOL, "exec"]):
            args = [*program, "-F", str(config), *extra, "-W", spec, "jump1"]
            args += ["ignored command"] if not extra else []
            done = subprocess.run(args, input=b"SSH-2.0-probe\r\n", capture_output=True,
                                  env=base_env(), timeout=60)  # fmt: skip
            assert done.returncode == 0, (args, done.stderr)
            assert done.stdout.startswith(b"SSH-2.0-OpenSSH_"), args
    for bad in ("bad", "host", "host:0"):
        theirs = subprocess.run([require("ssh"), "-F", "none", "-W", bad, "x"],
                                capture_output=True, timeout=60)  # fmt: skip
        mine = subprocess.run([*KEYTOOL, "exec", "-F", "none", "-W", bad, "x"],
                              capture_output=True, env=base_env(), timeout=60)  # fmt: skip
        assert mine.returncode == theirs.returncode == 255
        assert mine.stderr.decode() == "keytool: " + theirs.stderr.decode().replace("\r\n", "\n")


def test_stdio_forward_ends_when_the_far_end_closes(
    key: Path, servers: list[Sshd], tmp_path: Path
) -> None:
    """-W to a service that says hello and closes, stdin still open: ssh ends at once
    (its stdio channel drains and closes on the far end's EOF), with the hello; keytool
    waited for stdin's end."""
    config = write_config(tmp_path, key, servers, "none")
    with hello_service(2) as port:
        for program in ([require("ssh")], [*KEYTOOL, "exec"]):
            args = [*program, "-F", str(config), "-W", f"127.0.0.1:{port}", "jump1"]
            status, out, err = run_stdin_open(args)
            assert (status, out) == (0, b"hello\n"), (program, err)

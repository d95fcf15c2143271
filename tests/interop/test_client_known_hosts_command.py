"""KnownHostsCommand, side by side with ssh against sshd: the program is run as ssh
runs it (ORDER before the key exchange, HOSTNAME to check the key, with the same
arguments), the keys it prints are trusted as known_hosts lines are (and order the
host key algorithms), and a program that fails or cannot be run is said in ssh's words
with the same outcome."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen, ssh_words
from tests.peers import Sshd, require

TOOLS = ("ssh", "keytool")
HOST = "root@127.0.0.1"


@pytest.fixture
def server(tmp_path: Path) -> Sshd:
    sshd = Sshd(tmp_path / "sshd", {"LogLevel": "VERBOSE"})
    return sshd


@pytest.fixture
def key(tmp_path: Path, server: Sshd) -> Path:
    path = keygen(tmp_path / "id", "ed25519")
    server.authorized_keys.write_text(Path(f"{path}.pub").read_text())
    return path


def helper(folder: Path, status: int = 0) -> tuple[Path, Path, Path]:
    """A KnownHostsCommand program: it records its arguments (one line a run) and
    prints the lines of a file; returns the program, that file and the record."""
    lines = folder / "lines"
    record = folder / "record"
    program = folder / "known-hosts-command"
    program.write_text(f'#!/bin/sh\necho "$*" >> {record}\ncat {lines}\nexit {status}\n')
    program.chmod(0o755)
    lines.write_text("")
    return program, lines, record


def run(
    tool: str, server: Sshd, key: Path, folder: Path, command: str, *flags: str
) -> subprocess.CompletedProcess[bytes]:
    empty = folder / f"known_hosts_{tool}"
    empty.write_text("")
    args = [
        "-F", "none", "-p", str(server.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={empty}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes", "-o", f"KnownHostsCommand={command}", *flags, HOST, "echo ran",
    ]  # fmt: skip
    program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
    result = subprocess.run(
        [*program, *args],
        capture_output=True,
        env=base_env(),
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert empty.read_text() == "", "a key known from the command is not written down"
    return result


def test_keys_from_the_command_are_trusted_with_ssh_s_arguments(
    tmp_path: Path, server: Sshd, key: Path
) -> None:
    program, lines, record = helper(tmp_path)
    lines.write_text(server.known_hosts_line())
    command = f"{program} %H %I %t %f %K %h %p %r %n %%"
    runs = {}
    with server:
        for tool in TOOLS:
            record.write_text("")
            result = run(tool, server, key, tmp_path, command)
            runs[tool] = (result.returncode, result.stdout, record.read_text())
    assert runs["keytool"] == runs["ssh"]
    status, stdout, calls = runs["ssh"]
    assert (status, stdout) == (0, b"ran\n")
    order, hostname = calls.splitlines()
    assert order.split()[:5] == ["127.0.0.1", "ORDER", "NONE", "NONE", "NONE"]
    assert hostname.split()[:3] == [f"[127.0.0.1]:{server.port}", "HOSTNAME", "ssh-ed25519"]
    assert hostname.endswith(f"127.0.0.1 {server.port} root 127.0.0.1 %")


def test_the_command_s_key_types_order_the_host_key_algorithms(
    tmp_path: Path, server: Sshd, key: Path
) -> None:
    """Only the server's ECDSA key is known, from the command: both ask for it first
    (else the server shows its Ed25519 key, which nobody knows) and log in."""
    program, lines, _ = helper(tmp_path)
    # the key under the name asked for: the host alone (ORDER: ssh matches the lines
    # against it, whatever the port), then [host]:port (HOSTNAME)
    program.write_text(f'#!/bin/sh\necho "$1 $(cat {lines})"\n')
    lines.write_text(server.known_hosts_line("ecdsa").split(" ", 1)[1])
    with server:
        results = {tool: run(tool, server, key, tmp_path, f"{program} %H") for tool in TOOLS}
        # printed under [host]:port only, the line is not seen for ORDER: as ssh, the
        # server's Ed25519 key is asked for and refused as a changed key
        program.write_text(f'#!/bin/sh\necho "[127.0.0.1]:{server.port} $(cat {lines})"\n')
        refused = {tool: run(tool, server, key, tmp_path, f"{program} %H") for tool in TOOLS}
    for result in results.values():
        assert (result.returncode, result.stdout) == (0, b"ran\n"), result.stderr
    for result in refused.values():
        assert (result.returncode, result.stdout) == (255, b""), result.stderr
        assert b"REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr
    assert server.log.read_text().count("Accepted publickey") == 2


def test_a_changed_key_from_the_command_is_refused(tmp_path: Path, server: Sshd, key: Path) -> None:
    program, lines, _ = helper(tmp_path)
    other = Sshd(tmp_path / "other")  # its keys, never started
    lines.write_text(
        server.known_hosts_line().split(" ")[0] + " " + other.known_hosts_line().split(" ", 1)[1]
    )
    with server:
        results = {tool: run(tool, server, key, tmp_path, f"{program} %H") for tool in TOOLS}
    for result in results.values():
        assert (result.returncode, result.stdout) == (255, b"")
        assert b"REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr
    assert "Accepted publickey" not in server.log.read_text()


@pytest.mark.parametrize("status", [1, 3])
def test_a_failing_command_ends_it_in_ssh_s_words(
    tmp_path: Path, server: Sshd, key: Path, status: int
) -> None:
    program, lines, record = helper(tmp_path, status)
    lines.write_text(server.known_hosts_line())
    with server:
        results = {tool: run(tool, server, key, tmp_path, f"{program} %I x") for tool in TOOLS}
    ours, theirs = results["keytool"], results["ssh"]
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (255, b"")
    assert (
        ssh_words(ours.stderr)
        == ssh_words(theirs.stderr)
        == [
            f"KnownHostsCommand-ORDER {program} ORDER x failed, status {status}",
            "KnownHostsCommand failed",
        ]
    )
    assert record.read_text() == "ORDER x\n" * 2  # each ran it once, before connecting
    assert "Accepted publickey" not in server.log.read_text()


@pytest.mark.parametrize("command", ["known-hosts-command %H", "/nonexistent/program %H"])
def test_a_program_that_cannot_run_is_said_and_gives_no_keys(
    tmp_path: Path, server: Sshd, key: Path, command: str
) -> None:
    helper(tmp_path)
    with server:
        results = {tool: run(tool, server, key, tmp_path, command) for tool in TOOLS}
    ours, theirs = results["keytool"], results["ssh"]
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (255, b"")
    # the same lines for the program, for ORDER and HOSTNAME; then each one's refusal
    # of the unknown key (keytool's says more)
    assert ssh_words(ours.stderr)[:2] == ssh_words(theirs.stderr)[:2]
    said = ssh_words(theirs.stderr)[0]
    assert said.startswith(("KnownHostsCommand-ORDER path is not absolute", "Could not stat"))
    assert (
        ssh_words(ours.stderr)[-1]
        == ssh_words(theirs.stderr)[-1]
        == ("Host key verification failed.")
    )

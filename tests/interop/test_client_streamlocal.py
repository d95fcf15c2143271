"""Forwarding to and from Unix-domain sockets (OpenSSH's PROTOCOL §2.4), keytool and
ssh side by side against sshd: the same -L, -R and -D specs, the same bytes through,
the same socket files (and modes) where the client makes them, and sshd's log naming
the streamlocal channels and requests."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop import test_client_forward as forward
from tests.interop.agenthelp import wait_for_socket
from tests.interop.clienthelp import ssh_words
from tests.interop.test_client_forward import (
    TIMEOUT,
    EchoService,
    exec_args,
    known_hosts,
    round_trip,
    wait_listening,
)
from tests.peers import Sshd, free_port, require

CLIENTS = ("ssh", "keytool")
# the fixtures of the TCP forwarding tests: a key, an sshd taking it, started clients
key = forward.key
server = forward.server
started = forward.started


def received(echo: EchoService) -> list[bytes]:
    """What each connection brought, leaving out the probes that found the socket."""
    return [data for data in echo.received if data]


@pytest.fixture
def unix_echo(tmp_path: Path) -> Iterator[EchoService]:
    """An echo service on a socket the server can reach (the same machine)."""
    echo = EchoService(tmp_path / "echo.sock")
    yield echo
    echo.close()


@pytest.fixture
def tcp_echo() -> Iterator[EchoService]:
    echo = EchoService()
    yield echo
    echo.close()


def start(
    client: str, server: Sshd, folder: Path, key: Path, procs: list[subprocess.Popen[bytes]],
    *flags: str,
) -> subprocess.Popen[bytes]:  # fmt: skip
    args = exec_args(server, known_hosts(server, folder), key, *flags, "-N", "root@127.0.0.1")
    if client == "ssh":
        args = [require("ssh"), *args[args.index("-F") :]]
    return forward.spawn(args, procs)


def unix_round_trip(path: Path, payload: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(path))
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        back = bytearray()
        while data := sock.recv(1 << 16):
            back += data
    return bytes(back)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _inode(path: Path) -> int | None:
    """The inode at ``path``; None while there is none (ssh unlinks the file before it
    binds its own socket there)."""
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


@pytest.mark.parametrize("mask", [None, "0111"])
def test_local_socket_to_a_port_beyond_the_server(
    tmp_path: Path, server: Sshd, key: Path, started: list[subprocess.Popen[bytes]],
    tcp_echo: EchoService, mask: str | None,
) -> None:  # fmt: skip
    payload = os.urandom(3 * 1024 * 1024)
    modes = {}
    for client in CLIENTS:
        path = tmp_path / f"{client}.sock"
        flags = ["-L", f"{path}:127.0.0.1:{tcp_echo.port}"]
        flags += ["-o", f"StreamLocalBindMask={mask}"] if mask else []
        proc = start(client, server, tmp_path, key, started, *flags)
        wait_for_socket(path, proc)
        assert digest(unix_round_trip(path, payload)) == digest(payload)
        modes[client] = stat.S_IMODE(path.stat().st_mode)
    assert modes["keytool"] == modes["ssh"] == (0o666 if mask else 0o600)
    assert [len(data) for data in received(tcp_echo)] == [len(payload)] * 2


@pytest.mark.parametrize("listen", ["port", "socket"])
def test_local_forward_to_a_socket_at_the_server(
    tmp_path: Path, server: Sshd, key: Path, started: list[subprocess.Popen[bytes]],
    unix_echo: EchoService, listen: str,
) -> None:  # fmt: skip
    target = tmp_path / "echo.sock"
    for client in CLIENTS:
        payload = os.urandom(1024 * 1024)
        if listen == "port":
            port = free_port()
            proc = start(client, server, tmp_path, key, started, "-L", f"{port}:{target}")
            wait_listening(port, proc)
            back = round_trip(port, payload)
        else:
            path = tmp_path / f"{client}-l.sock"
            proc = start(client, server, tmp_path, key, started, "-L", f"{path}:{target}")
            wait_for_socket(path, proc)
            back = unix_round_trip(path, payload)
        assert digest(back) == digest(payload)
    # sshd connected to the socket for each client, as a streamlocal channel
    log = server.log.read_text(errors="replace")
    assert log.count("server_request_direct_streamlocal: originator") >= 2
    assert len(received(unix_echo)) == 2


@pytest.mark.parametrize("target", ["port", "socket"])
def test_remote_socket_at_the_server(
    tmp_path: Path, server: Sshd, key: Path, started: list[subprocess.Popen[bytes]],
    tcp_echo: EchoService, unix_echo: EchoService, target: str,
) -> None:  # fmt: skip
    for client in CLIENTS:
        remote = tmp_path / f"{client}-r.sock"
        goes_to = f"127.0.0.1:{tcp_echo.port}" if target == "port" else str(tmp_path / "echo.sock")
        proc = start(client, server, tmp_path, key, started, "-R", f"{remote}:{goes_to}")
        wait_for_socket(remote, proc)  # sshd made it, for us
        payload = os.urandom(1024 * 1024)
        assert digest(unix_round_trip(remote, payload)) == digest(payload)
    log = server.log.read_text(errors="replace")
    assert log.count("streamlocal-forward listen path") == 2
    echo = tcp_echo if target == "port" else unix_echo
    assert len(received(echo)) == 2


def test_remote_port_to_a_socket_here(
    tmp_path: Path, server: Sshd, key: Path, started: list[subprocess.Popen[bytes]],
    unix_echo: EchoService,
) -> None:  # fmt: skip
    for client in CLIENTS:
        port = free_port()
        proc = start(
            client, server, tmp_path, key, started, "-R", f"{port}:{tmp_path / 'echo.sock'}"
        )
        wait_listening(port, proc)
        assert round_trip(port, b"through the server's port") == b"through the server's port"
    assert received(unix_echo) == [b"through the server's port"] * 2


def test_socks_on_a_socket(
    tmp_path: Path, server: Sshd, key: Path, started: list[subprocess.Popen[bytes]],
    tcp_echo: EchoService,
) -> None:  # fmt: skip
    for client in CLIENTS:
        path = tmp_path / f"{client}-socks.sock"
        proc = start(client, server, tmp_path, key, started, "-D", str(path))
        wait_for_socket(path, proc)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(str(path))
            sock.sendall(b"\x05\x01\x00")
            assert sock.recv(2) == b"\x05\x00"
            port = tcp_echo.port.to_bytes(2, "big")
            sock.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + port)
            assert sock.recv(10)[:2] == b"\x05\x00"
            sock.sendall(b"socks over a socket")
            assert sock.recv(100) == b"socks over a socket"  # the echo service's answer


def test_stale_socket_file_and_bind_unlink(
    tmp_path: Path, server: Sshd, key: Path, started: list[subprocess.Popen[bytes]],
    tcp_echo: EchoService,
) -> None:  # fmt: skip
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))  # left behind: nobody listens
    spec = f"{path}:127.0.0.1:{tcp_echo.port}"
    args = exec_args(server, known_hosts(server, tmp_path), key)
    for setting in ("no", "yes"):  # as ssh: said and on, or (ExitOnForwardFailure) 255
        runs = forward.side_by_side(
            [*args, "-o", f"ExitOnForwardFailure={setting}", "-L", spec, "root@127.0.0.1"],
            "echo ran",
        )
        ours, theirs = runs["keytool"], runs["ssh"]
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
        assert ssh_words(ours.stderr) == ssh_words(theirs.stderr)
        assert f"cannot bind to path {path}: Address already in use" in ssh_words(ours.stderr)
        assert ours.returncode == (255 if setting == "yes" else 0)
    proc = start(
        "keytool", server, tmp_path, key, started, "-L", spec, "-o", "StreamLocalBindUnlink=yes"
    )
    wait_for_socket(path, proc)
    assert unix_round_trip(path, b"fresh") == b"fresh"
    # stopped as a user stops it (Ctrl-C): the socket file it made goes with it
    proc.send_signal(signal.SIGINT)
    proc.wait(TIMEOUT)
    assert not path.exists()


def test_a_server_that_forbids_socket_forwarding(
    tmp_path: Path, key: Path, started: list[subprocess.Popen[bytes]], unix_echo: EchoService,
) -> None:  # fmt: skip
    sshd = Sshd(tmp_path / "sshd", {"AllowStreamLocalForwarding": "no"})
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    with sshd:
        port = free_port()
        proc = start(
            "keytool", sshd, tmp_path, key, started, "-L", f"{port}:{tmp_path / 'echo.sock'}"
        )
        wait_listening(port, proc)
        assert forward.refused(port)  # refused at the server: closed
        assert proc.poll() is None  # the tunnel goes on
        remote = tmp_path / "r.sock"
        runs = forward.side_by_side(
            [*exec_args(sshd, known_hosts(sshd, tmp_path), key), "-R", f"{remote}:127.0.0.1:1",
             "-o", "ExitOnForwardFailure=yes", "root@127.0.0.1"], "echo ran",
        )  # fmt: skip
    ours, theirs = runs["keytool"], runs["ssh"]
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (255, b"")
    assert ssh_words(ours.stderr) == ssh_words(theirs.stderr)
    assert ssh_words(ours.stderr) == [f"remote port forwarding failed for listen path {remote}"]
    assert unix_echo.received == []


def test_a_path_too_long_for_a_socket_is_one_line(
    tmp_path: Path, server: Sshd, key: Path, tcp_echo: EchoService
) -> None:
    path = tmp_path / ("s" * 120)
    runs = forward.side_by_side(
        [*exec_args(server, known_hosts(server, tmp_path), key), "-o",
         "ExitOnForwardFailure=yes", "-L", f"{path}:127.0.0.1:{tcp_echo.port}", "root@127.0.0.1"],
        "echo ran",
    )  # fmt: skip
    ours, theirs = runs["keytool"], runs["ssh"]
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (255, b"")
    # as ssh: a bad specification, before any connection
    (ours_line,) = ssh_words(ours.stderr)
    (theirs_line,) = ssh_words(theirs.stderr)
    assert theirs_line.startswith("Bad local forwarding specification")
    assert ours_line == theirs_line  # ssh's words
    assert "Accepted publickey" not in server.log.read_text()  # neither logged in


def test_a_socket_another_forwarder_took_over_is_left_to_it(
    tmp_path: Path, server: Sshd, key: Path, started: list[subprocess.Popen[bytes]],
    tcp_echo: EchoService,
) -> None:  # fmt: skip
    """A second forwarder replaces the socket file (StreamLocalBindUnlink) while the
    first runs: when the first stops, the file stays, and the second still serves
    through it, as with ssh. keytool removed the file by name and cut the second off."""
    path = tmp_path / "shared.sock"
    spec = f"{path}:127.0.0.1:{tcp_echo.port}"
    first = start("keytool", server, tmp_path, key, started, "-L", spec)
    wait_for_socket(path, first)
    before = path.stat().st_ino
    second = start("ssh", server, tmp_path, key, started, "-L", spec,
                   "-o", "StreamLocalBindUnlink=yes")  # fmt: skip
    deadline = time.monotonic() + TIMEOUT
    while _inode(path) in (before, None):  # the second's socket in place of the first's
        assert time.monotonic() < deadline and second.poll() is None
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    first.wait(TIMEOUT)
    assert path.exists()
    assert unix_round_trip(path, b"still served") == b"still served"

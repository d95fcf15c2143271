"""``keytool exec`` (the blocking driver) against hostile and broken servers: each
ends in one line on stderr and exit status 255, within its timeout, never a
traceback or a hang. Where the server can tell, the test checks what it saw.

Peers: small raw servers on 127.0.0.1, one connection each, in a thread.
"""

from __future__ import annotations

import random
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from keytool.wire import Reader
from tests.interop.clienthelp import keytool_exec
from tests.interop.transport_helpers import server_kexinit_packet
from tests.peers import free_port

Handler = Callable[[socket.socket], None]


@contextmanager
def raw_server(handler: Handler) -> Iterator[int]:
    """A server on 127.0.0.1 that runs ``handler`` on its first connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    port = listener.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            with suppress(OSError, EOFError):
                handler(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()
        thread.join(35)


def read_line(conn: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        byte = conn.recv(1)
        if not byte:
            break
        line += byte
    return line


def read_exact(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise EOFError("client closed")
        data += chunk
    return data


def read_plain_packet(conn: socket.socket) -> bytes:
    """One unencrypted packet (RFC 4253 §6) from the client; its payload."""
    length, padding = struct.unpack(">IB", read_exact(conn, 5))
    body = read_exact(conn, length - 1)
    return body[: len(body) - padding]


def run_exec(port: int, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[bytes]:
    known = tmp_path / "known_hosts"
    known.touch()
    return keytool_exec(
        port,
        known,
        "nobody@127.0.0.1",
        "true",
        flags=("-o", "StrictHostKeyChecking=no", "-o", "BatchMode=yes", *flags),
        timeout=30,
    )


def one_line_failure(result: subprocess.CompletedProcess[bytes]) -> str:
    err = result.stderr.decode()
    assert result.returncode == 255, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line and not line.startswith("Warning:")]
    assert len(lines) == 1, err
    return lines[0]


def test_server_drops_mid_kex(tmp_path: Path) -> None:
    seen: list[bytes] = []

    def handler(conn: socket.socket) -> None:
        conn.sendall(b"SSH-2.0-Dropper\r\n" + server_kexinit_packet())
        seen.append(read_line(conn))
        seen.append(read_plain_packet(conn))  # client KEXINIT
        seen.append(read_plain_packet(conn))  # client ECDH init

    with raw_server(handler) as port:
        line = one_line_failure(run_exec(port, tmp_path))
    assert "closed by the server during key exchange" in line
    assert seen[0].startswith(b"SSH-2.0-keytool")
    assert seen[1][0] == 20 and seen[2][0] == 30  # it got as far as the ECDH init


def test_server_sends_garbage_and_is_told_why(tmp_path: Path) -> None:
    disconnect: list[bytes] = []

    def handler(conn: socket.socket) -> None:
        conn.sendall(b"SSH-2.0-Babbler\r\n" + b"\xff" * 64)
        read_line(conn)
        while (payload := read_plain_packet(conn))[0] != 1:
            pass
        disconnect.append(payload)

    with raw_server(handler) as port:
        line = one_line_failure(run_exec(port, tmp_path))
    assert "bad packet length" in line
    r = Reader(disconnect[0])
    r.byte()
    assert r.uint32() == 2  # SSH_DISCONNECT_PROTOCOL_ERROR
    assert "bad packet length" in r.text()


def test_not_an_ssh_server(tmp_path: Path) -> None:
    def handler(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"<html>" * 3000)
        conn.recv(100)

    with raw_server(handler) as port:
        line = one_line_failure(run_exec(port, tmp_path))
    assert "no SSH version line" in line


@pytest.mark.parametrize("say_hello", [False, True], ids=["silent", "after-version"])
def test_server_stalls_connect_timeout_bounds_the_handshake(
    tmp_path: Path, say_hello: bool
) -> None:
    release = threading.Event()

    def handler(conn: socket.socket) -> None:
        if say_hello:
            conn.sendall(b"SSH-2.0-Staller\r\n")
        release.wait(30)

    with raw_server(handler) as port:
        start = time.monotonic()
        try:
            result = run_exec(port, tmp_path, "-o", "ConnectTimeout=2")
        finally:
            release.set()
        elapsed = time.monotonic() - start
    line = one_line_failure(result)
    assert "timed out after 2s waiting for the server during the handshake" in line
    assert elapsed < 20  # bounded by ConnectTimeout, not the 60 s default


def test_connection_refused(tmp_path: Path) -> None:
    port = free_port()
    line = one_line_failure(run_exec(port, tmp_path))
    assert f"port {port}: Connection refused" in line


@pytest.mark.parametrize("seed", range(6))
def test_random_server_bytes(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)

    def handler(conn: socket.socket) -> None:
        conn.sendall(b"SSH-2.0-Random\r\n" + server_kexinit_packet()[: rng.randrange(200)])
        conn.sendall(rng.randbytes(rng.randrange(1, 4096)))
        conn.settimeout(5)
        while conn.recv(65536):
            pass

    with raw_server(handler) as port:
        one_line_failure(run_exec(port, tmp_path, "-o", "ConnectTimeout=3"))

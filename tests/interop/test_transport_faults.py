"""Faults: servers that drop, babble, stall, share no cipher, re-key on their own, or
whose packets get corrupted on the way; TCP failures. Each ends in one clear
KeytoolError with exit status 255, within its timeout; where the peer can tell, the
test checks what the peer saw (our DISCONNECT and its reason).

Peers: small raw asyncio servers, an asyncssh server (test-only), sshd behind a
corrupting proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncssh
import pytest

from keytool.client import Transport, open_transport
from keytool.errors import (
    ConnectError,
    DisconnectError,
    HostKeyError,
    KeytoolError,
    NegotiationError,
    ProtocolError,
    TimedOut,
)
from keytool.tcp import start_connect
from keytool.transport.config import TransportConfig
from keytool.wire import Reader
from tests.interop.transport_helpers import (
    NONE_REQUEST,
    accept_any,
    none_auth,
    server_kexinit_packet,
    wait_for_log,
)
from tests.peers import Sshd, free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def connect(port: int, handshake_timeout: float = 20, **config: object) -> Transport:
    """A whole key exchange may take seconds on a loaded machine: ``handshake_timeout``
    is short only where the timeout itself is tested."""
    return await open_transport(
        "127.0.0.1",
        port,
        TransportConfig(**config),  # type: ignore[arg-type]
        accept_any,
        connect_timeout=5,
        handshake_timeout=handshake_timeout,
    )


def run(coro: Awaitable[object]) -> object:
    async def bounded() -> object:
        async with asyncio.timeout(30):  # a hang fails the test instead of the suite
            return await coro

    return asyncio.run(bounded())


async def with_raw_server(handler: Handler, body: Callable[[int], Awaitable[None]]) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await body(port)
    finally:
        server.close()


async def read_plain_packet(reader: asyncio.StreamReader) -> bytes:
    """One unencrypted packet (RFC 4253 §6) from the client; returns its payload."""
    length, padding = struct.unpack(">IB", await reader.readexactly(5))
    body = await reader.readexactly(length - 1)
    return body[: len(body) - padding]


# raw servers


def test_server_drops_mid_kex() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-Dropper\r\n" + server_kexinit_packet())
        seen.append(await reader.readline())
        seen.append(await read_plain_packet(reader))  # client KEXINIT
        seen.append(await read_plain_packet(reader))  # client ECDH init
        writer.close()

    async def body(port: int) -> None:
        with pytest.raises(DisconnectError, match="closed by the server during key exchange"):
            await connect(port)

    run(with_raw_server(handler, body))
    assert seen[0].startswith(b"SSH-2.0-keytool")
    assert seen[1][0] == 20 and seen[2][0] == 30  # it got as far as the ECDH init


def test_server_sends_garbage() -> None:
    disconnect: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-Babbler\r\n" + b"\xff" * 64)
        await reader.readline()
        while (payload := await read_plain_packet(reader))[0] != 1:
            pass
        disconnect.append(payload)
        writer.close()

    async def body(port: int) -> None:
        with pytest.raises(ProtocolError, match="bad packet length") as caught:
            await connect(port)
        assert caught.value.exit_code == 255

    run(with_raw_server(handler, body))
    # the server was told why, in plain text (no keys yet): SSH_DISCONNECT_PROTOCOL_ERROR
    r = Reader(disconnect[0])
    r.byte()
    assert r.uint32() == 2
    assert "bad packet length" in r.text()


def test_not_an_ssh_server() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"<html>" * 3000)
        await reader.read(100)
        writer.close()

    async def body(port: int) -> None:
        with pytest.raises(ProtocolError, match="no SSH version line"):
            await connect(port)

    run(with_raw_server(handler, body))


@pytest.mark.parametrize("say_hello", [False, True], ids=["silent", "after-version"])
def test_server_stalls(say_hello: bool) -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if say_hello:
            writer.write(b"SSH-2.0-Staller\r\n")
        await release.wait()
        writer.close()

    async def body(port: int) -> None:
        try:
            with pytest.raises(TimedOut, match="timed out after 2s") as caught:
                await connect(port, handshake_timeout=2)
            assert caught.value.exit_code == 255
        finally:
            release.set()

    run(with_raw_server(handler, body))


# TCP failures


def test_connection_refused() -> None:
    port = free_port()  # nothing listens there any more
    with pytest.raises(ConnectError, match=f"port {port}: Connection refused") as caught:
        run(connect(port))
    assert caught.value.exit_code == 255


def test_unknown_host() -> None:
    async def body() -> None:
        await open_transport("no-such-host.invalid", 22, None, accept_any, connect_timeout=10)

    with pytest.raises(ConnectError, match=r"Could not resolve hostname no-such-host\.invalid"):
        run(body())


@contextlib.contextmanager
def stalled_port() -> Iterator[int]:
    """A port where a connect hangs: its listener's backlog is full, so further SYNs
    are dropped."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_connect_timeout() -> None:
    with stalled_port() as port:

        async def body() -> None:
            await open_transport("127.0.0.1", port, None, accept_any, connect_timeout=1)

        with pytest.raises(ConnectError, match="Connection timed out"):
            run(body())


def started(port: int) -> socket.socket:
    """A connect begun by tcp.start_connect (as copy-id does before loading asyncio),
    wrapped as the event loop wants it."""
    raw = start_connect("127.0.0.1", port)
    assert raw is not None
    return socket.socket(fileno=raw.detach())


def test_started_connect_refused() -> None:
    port = free_port()

    async def body() -> None:
        await open_transport("127.0.0.1", port, None, accept_any, sock=started(port))

    with pytest.raises(ConnectError, match=f"port {port}: Connection refused"):
        run(body())


def test_started_connect_timeout() -> None:
    with stalled_port() as port:
        sock = started(port)

        async def body() -> None:
            await open_transport("127.0.0.1", port, None, accept_any, connect_timeout=1, sock=sock)

        with pytest.raises(ConnectError, match="Connection timed out"):
            run(body())
        assert sock.fileno() == -1  # closed, not leaked


def test_start_connect_leaves_names_to_the_resolver() -> None:
    # a name would block on DNS before the event loop runs: not started early
    assert start_connect("localhost", 22) is None
    assert start_connect("no-such-host.invalid", 22) is None


# asyncssh as the server


class Recorder(asyncssh.SSHServer):
    """Lets anyone in (auth "none" succeeds) and keeps why the connection ended."""

    lost: list[BaseException | None]

    def begin_auth(self, username: str) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)


@pytest.fixture(scope="module")
def asyncssh_host_key() -> object:
    return asyncssh.generate_private_key("ssh-ed25519")


def asyncssh_server(
    host_key: object, lost: list[BaseException | None], **options: object
) -> Callable[[Callable[[int], Awaitable[None]]], Awaitable[None]]:
    async def serve(body: Callable[[int], Awaitable[None]]) -> None:
        class Server(Recorder):
            pass

        Server.lost = lost
        server = await asyncssh.create_server(
            Server, "127.0.0.1", 0, server_host_keys=[host_key], **options
        )
        port = server.sockets[0].getsockname()[1]
        try:
            await body(port)
        finally:
            server.close()
            await server.wait_closed()

    return serve


def test_no_common_cipher_names_both_lists(asyncssh_host_key: object) -> None:
    lost: list[BaseException | None] = []

    async def body(port: int) -> None:
        with pytest.raises(NegotiationError) as caught:
            await connect(port, ciphers=("aes128-gcm@openssh.com", "aes256-ctr"))
        message = str(caught.value)  # ssh's line
        assert message == (
            f"Unable to negotiate with 127.0.0.1 port {port}: no matching cipher found. "
            "Their offer: aes192-cbc"
        )
        assert caught.value.exit_code == 255
        for _ in range(1000):  # up to 20 s
            if lost:
                break
            await asyncio.sleep(0.02)

    serve = asyncssh_server(asyncssh_host_key, lost, encryption_algs=["aes192-cbc"])
    run(serve(body))
    # asyncssh failed the same negotiation on its side, from the list keytool sent
    assert isinstance(lost[0], asyncssh.KeyExchangeFailed)
    assert "received aes128-gcm@openssh.com,aes256-ctr" in lost[0].reason


def test_rekey_started_by_asyncssh(asyncssh_host_key: object) -> None:
    lost: list[BaseException | None] = []
    trace: list[str] = []

    async def body(port: int) -> None:
        transport = await connect(port, trace=trace.append)
        await transport.send(NONE_REQUEST)
        assert (await transport.receive(timeout=5))[0] == 52  # none is enough here
        for _ in range(20):  # asyncssh answers unknown global requests with FAILURE
            await transport.send(b"\x50" + struct.pack(">I", 7) + b"x@y.z.w" + b"\x01")
            assert (await transport.receive(timeout=5))[0] == 82
        assert transport.kex_count >= 2
        await transport.close()

    serve = asyncssh_server(asyncssh_host_key, lost, rekey_bytes=256)
    run(serve(body))
    assert trace.count("the server started a re-key") >= 1


def test_disconnect_reason_from_asyncssh(asyncssh_host_key: object) -> None:
    lost: list[BaseException | None] = []

    class Closer(Recorder):
        def auth_completed(self) -> None:
            self.conn.disconnect(asyncssh.DISC_BY_APPLICATION, "maintenance window, bye")

        def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
            self.conn = conn

    async def body(port: int) -> None:
        transport = await connect(port)
        await transport.send(NONE_REQUEST)
        with pytest.raises(DisconnectError) as caught:
            while True:
                await transport.receive(timeout=5)
        assert str(caught.value) == (
            "disconnected by the server: maintenance window, bye (by application)"
        )
        assert caught.value.exit_code == 255

    async def serve() -> None:
        Closer.lost = lost
        server = await asyncssh.create_server(
            Closer, "127.0.0.1", 0, server_host_keys=[asyncssh_host_key]
        )
        try:
            await body(server.sockets[0].getsockname()[1])
        finally:
            server.close()
            await server.wait_closed()

    run(serve())


# sshd behind a proxy that corrupts one byte


class CorruptingProxy:
    """Forwards 127.0.0.1:port to a server; after ``armed`` is set, flips one bit in the
    last byte (inside the MAC or AEAD tag) of the next chunk from the server."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.armed = False
        self.corrupted = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, down: bool) -> None:
            try:
                while data := await src.read(65536):
                    if down and self.armed and not self.corrupted:
                        data = data[:-1] + bytes((data[-1] ^ 0x01,))
                        self.corrupted += 1
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))


@pytest.fixture
def sshd9(tmp_path: Path) -> Iterator[Sshd]:
    server = Sshd(tmp_path / "sshd", {"Ciphers": "aes128-gcm@openssh.com"})
    with server:
        yield server


def test_bad_mac_ends_the_connection(sshd9: Sshd) -> None:
    proxy = CorruptingProxy(sshd9.port)

    async def scenario() -> None:
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            transport = await connect(port)
            assert await none_auth(transport) == ["publickey"]
            proxy.armed = True
            await transport.send(NONE_REQUEST)
            with pytest.raises(ProtocolError, match="corrupted MAC on input") as caught:
                await transport.receive(timeout=5)
            assert caught.value.exit_code == 255
            # every later call gives the same error, nothing hangs
            with pytest.raises(ProtocolError, match="corrupted MAC"):
                await transport.send(NONE_REQUEST)
            await transport.close()
        finally:
            server.close()

    run(scenario())
    assert proxy.corrupted == 1
    # sshd received our DISCONNECT, with the reason, through the intact direction
    wait_for_log(sshd9.log, "Received disconnect from 127.0.0.1 port")
    assert "2: corrupted MAC on input" in sshd9.log.read_text()


def test_only_keytool_errors_escape_random_server_bytes() -> None:
    """Random bytes after a valid version line, from a real socket: one KeytoolError."""
    for seed in range(5):
        data = os.urandom(2000 + seed)

        async def handler(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes = data
        ) -> None:
            writer.write(b"SSH-2.0-Random\r\n" + data)
            await reader.read(1 << 16)
            writer.close()

        async def body(port: int) -> None:
            with pytest.raises(KeytoolError):
                await connect(port)

        run(with_raw_server(handler, body))


def test_refused_host_key_stops_before_authentication(sshd9: Sshd) -> None:
    offered: list[str] = []

    async def refuse(key: object, algorithm: str) -> None:
        offered.append(algorithm)
        raise HostKeyError("host key verification failed")

    async def scenario() -> None:
        await open_transport("127.0.0.1", sshd9.port, None, refuse, handshake_timeout=20)

    with pytest.raises(HostKeyError, match="verification failed") as caught:
        run(scenario())
    assert caught.value.exit_code == 255
    assert offered == ["ssh-ed25519"]
    # sshd saw the connection end during the key exchange: keytool never sent NEWKEYS
    wait_for_log(sshd9.log, "SSH2_MSG_KEX_ECDH_INIT received")
    # sshd notices the end of our connection: "Connection closed/reset by ... [preauth]"
    for _ in range(400):  # up to 20 s
        log = sshd9.log.read_text()
        if any("by 127.0.0.1 port" in line and "[preauth]" in line for line in log.splitlines()):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"sshd did not log the closed connection:\n{log[-2000:]}")
    assert "SSH2_MSG_NEWKEYS received" not in log
    assert "userauth-request" not in log

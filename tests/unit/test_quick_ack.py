"""Both drivers acknowledge what the server sends at once (tcp.quick_ack).

sshd keeps Nagle's algorithm on for sessions without a terminal: a second small
packet it writes waits for the acknowledgement of the first, which Linux holds back
for up to 40 ms while the client has nothing to send. The client's socket is put in
delayed-acknowledgement ("ping-pong") mode with TCP_QUICKACK 0, what the kernel does
by itself to an interactive connection; the server's kernel then says how many of
its segments are still unacknowledged (tcp_info's tcpi_unacked): none once the
driver has read them.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from keytool.blocking_transport import BlockingTransport
from keytool.client import _Protocol
from keytool.tcp import quick_ack
from keytool.transport.config import TransportConfig
from keytool.transport.handshake import ClientTransport

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux's"
)

VERSION = b"SSH-2.0-OpenSSH_9.2p1 test\r\n"


#: tries of a case: the kernel's delayed-acknowledgement timer (40 ms at least) may
#: fire before the driver reads, on a loaded machine; such a try proves nothing
TRIES = 10


@contextmanager
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A client socket in delayed-acknowledgement mode and the server's end."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
    assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 0
    try:
        yield client, server
    finally:
        client.close()
        server.close()


def unacked(sock: socket.socket) -> int:
    """Segments ``sock`` sent that its peer has not acknowledged yet (tcp_info: eight
    one-byte fields, then rto, ato, snd_mss, rcv_mss, unacked as 32-bit numbers)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    count: int = struct.unpack_from("I", info, 24)[0]
    return count


def arrived(sock: socket.socket) -> None:
    """Wait until the server's bytes are there to read, reading none of them."""
    assert select.select([sock], [], [], 10)[0]


def test_the_blocking_driver_acknowledges_at_once() -> None:
    held = 0
    for _ in range(TRIES):
        with tcp_pair() as (client, server):
            driver = BlockingTransport(client, ClientTransport(TransportConfig()))
            # our version line and KEXINIT go first: no answer of ours carries the
            # acknowledgement of what the server sends next
            hello = driver.conn.data_to_send()
            client.sendall(hello)
            assert len(server.recv(len(hello), socket.MSG_WAITALL)) == len(hello)
            server.sendall(VERSION)
            arrived(client)
            if unacked(server) != 1:
                continue  # acknowledged already: the timer fired
            held += 1
            driver._read()
            assert driver.conn.bytes_received == len(VERSION)
            assert unacked(server) == 0
    assert held


def test_the_asyncio_driver_acknowledges_at_once() -> None:
    async def run(client: socket.socket, server: socket.socket) -> tuple[int, int]:
        conn = ClientTransport(TransportConfig())
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(lambda: _Protocol(conn), sock=client)
        server.sendall(VERSION)
        arrived(client)
        held = unacked(server)
        async with asyncio.timeout(10):
            while conn.bytes_received < len(VERSION):
                await asyncio.sleep(0)  # the loop reads; no timer of ours meanwhile
        count = unacked(server)
        transport.abort()
        return held, count

    held = 0
    for _ in range(TRIES):
        with tcp_pair() as (client, server):
            before, after = asyncio.run(run(client, server))
        if before != 1:
            continue  # acknowledged already: the timer fired
        held += 1
        assert after == 0
    assert held


def test_a_socket_that_is_not_tcp_is_left_alone() -> None:
    """A ProxyCommand's connection is a Unix socket pair: the option is refused, so
    the drivers stop asking (quick_ack says False), and the bytes still arrive."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert quick_ack(ours) is False
        driver = BlockingTransport(ours, ClientTransport(TransportConfig()))
        theirs.sendall(VERSION)
        arrived(ours)
        driver._read()
        assert driver.conn.bytes_received == len(VERSION)
        assert driver._acking is False

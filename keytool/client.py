"""The asyncio adapter around the sans-IO transport (keytool/blocking.py is the other).

Lowest layer (this part): ``open_transport`` opens TCP, drives
:class:`keytool.transport.handshake.ClientTransport` through version exchange, key
exchange, host key check and the ssh-userauth service request, and hands back a
:class:`Transport` that moves message payloads (numbers >= 50) both ways::

    transport = await open_transport(host, port, config, host_key_checker)
    await transport.send(userauth_request)
    reply = await transport.receive(timeout=30)
    ...
    await transport.close()

Every failure is a KeytoolError whose ``exit_code`` is 255 (as ssh's): ConnectError
for refused / unreachable / unknown host / connect timeout, TimedOut for a stalled
peer, DisconnectError for a peer that hung up (with its reason text; ConnectionDropped
when it did so before any packet, as ClientTransport tells), ProtocolError for a
protocol violation, HostKeyError from the checker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

# ConnectionDropped is taken from here too (keytool.copyid_connect)
from keytool.errors import ConnectionDropped as ConnectionDropped
from keytool.errors import (
    DisconnectError,
    KeytoolError,
    NegotiationError,
    ProtocolError,
    TimedOut,
    in_words,
)
from keytool.keys.base import PublicKey
from keytool.tcp import connect_error, quick_ack
from keytool.transport.config import TransportConfig
from keytool.transport.events import (
    Algorithms,
    Event,
    ExtInfoReceived,
    HostKeyToCheck,
    PayloadReceived,
    TransportReady,
)
from keytool.transport.handshake import ClientTransport

#: ``await checker(key, algorithm)`` returns to accept the server's host key and
#: raises HostKeyError to refuse it; it may prompt the user (no timeout runs meanwhile)
HostKeyChecker = Callable[[PublicKey, str], Awaitable[None]]

#: default seconds for TCP connect and for the handshake up to service accept
CONNECT_TIMEOUT = 30.0
HANDSHAKE_TIMEOUT = 60.0

# stop reading from the socket while this many payloads wait for receive()
_PAUSE_AT = 512
_RESUME_AT = 64

# RFC 4253 §11.1 reason code SSH_DISCONNECT_BY_APPLICATION
_BY_APPLICATION = 11


async def open_transport(
    host: str,
    port: int,
    config: TransportConfig | None,
    host_key_checker: HostKeyChecker,
    *,
    connect_timeout: float | None = CONNECT_TIMEOUT,
    handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
    sock: socket.socket | None = None,
    on_peer: Callable[[str], None] | None = None,
    keepalive: bool = False,
) -> Transport:
    """Connect, complete the first key exchange and the ssh-userauth service request.

    ``connect_timeout`` bounds the TCP connect (ssh's ConnectTimeout);
    ``handshake_timeout`` bounds each wait for the server during the handshake;
    ``sock``, when given, is a socket to use instead of connecting: connected, or
    with a non-blocking connect under way (``tcp.start_connect``), waited for here.
    ``on_peer`` is told the server's address once connected, before the host key is
    checked (a ProxyCommand's connection has none: ssh's words for that).
    ``keepalive``: SO_KEEPALIVE on a TCP connection (ssh's TCPKeepAlive).
    """
    config = config or TransportConfig()
    trace = config.trace
    loop = asyncio.get_running_loop()
    conn = ClientTransport(config)
    if sock is not None:
        if trace and sock.family != socket.AF_UNIX:  # not a ProxyCommand's socket pair
            trace(f"connecting to {host} port {port}")
        await _connected(sock, host, port, connect_timeout)
        _, protocol = await loop.create_connection(lambda: _Protocol(conn), sock=sock)
    else:
        if trace:
            trace(f"connecting to {host} port {port}")
        try:
            async with asyncio.timeout(connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Protocol(conn), host, port, family=socket.AF_UNSPEC
                )
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise connect_error(host, port, exc) from None
    peer = protocol.peername()
    if keepalive and peer is not None:
        protocol.keep_alive()
    if on_peer is not None:
        on_peer(str(peer[0]) if peer is not None else "<no hostip for proxy command>")
    if trace:
        if peer is not None:
            trace(f"TCP connection established to {peer[0]} port {peer[1]}")
        else:
            trace("connected through the ProxyCommand")
    try:
        check = await protocol.wait_handshake(handshake_timeout)
        if check is not None:
            await host_key_checker(check.key, check.algorithm)
            protocol.accept_host_key()
            ready = await protocol.wait_handshake(handshake_timeout)
            if ready is not None:  # pragma: no cover - one host key check per handshake
                raise ProtocolError("second host key check during the first key exchange")
    except NegotiationError as exc:
        protocol.abort()
        raise unable_to_negotiate(exc, peer) from None
    except BaseException:
        protocol.abort()
        raise
    assert protocol.ready is not None
    return Transport(protocol, protocol.ready)


def unable_to_negotiate(exc: NegotiationError, peer: object) -> NegotiationError:
    """Nothing in common with the server, in ssh's line: "Unable to negotiate with
    ADDRESS port PORT: ..." (``peer`` the socket's peer address; a ProxyCommand's
    connection has none: UNKNOWN port 65535)."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        where = f"{peer[0]} port {peer[1]}"
    else:
        where = "UNKNOWN port 65535"
    return NegotiationError(f"Unable to negotiate with {where}: {exc}")


async def _connected(sock: socket.socket, host: str, port: int, timeout: float | None) -> None:
    """Wait until ``sock``'s connect is done (at once if it is): writable, then its
    SO_ERROR says how it went. The socket is closed when it failed."""
    loop = asyncio.get_running_loop()
    writable = loop.create_future()
    fd = sock.fileno()

    def ready() -> None:
        if not writable.done():
            writable.set_result(None)

    loop.add_writer(fd, ready)
    try:
        try:
            async with asyncio.timeout(timeout):
                await writable
        finally:
            loop.remove_writer(fd)
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, os.strerror(error))
    except (OSError, TimeoutError) as exc:
        sock.close()
        raise connect_error(host, port, exc) from None
    except BaseException:
        sock.close()
        raise


class Transport:
    """An open SSH transport after ssh-userauth service accept."""

    __slots__ = ("_protocol", "_ready")

    def __init__(self, protocol: _Protocol, ready: TransportReady) -> None:
        self._protocol = protocol
        self._ready = ready

    @property
    def session_id(self) -> bytes:
        """The first exchange hash (RFC 4253 §7.2), signed in publickey auth."""
        return self._ready.session_id

    @property
    def server_sig_algs(self) -> tuple[str, ...] | None:
        """RFC 8308 §3.1 server-sig-algs, None when the server sent none (yet)."""
        return self._protocol.conn.server_sig_algs

    @property
    def extensions(self) -> Mapping[str, bytes]:
        """Every RFC 8308 extension the server announced, name -> raw value."""
        return self._protocol.conn.extensions

    @property
    def hostbound(self) -> bool:
        """The server announced publickey-hostbound@openssh.com (PROTOCOL §2.5)."""
        return self._protocol.conn.extensions.get("publickey-hostbound@openssh.com") == b"0"

    @property
    def algorithms(self) -> Algorithms:
        """What the latest key exchange negotiated."""
        return self._protocol.conn.algorithms or self._ready.algorithms

    @property
    def kex_count(self) -> int:
        """Key exchanges completed so far: 1 after the handshake, more after re-keys."""
        return self._protocol.conn.kex_count

    @property
    def server_version(self) -> str:
        return self._ready.server_version

    @property
    def host_key(self) -> PublicKey:
        return self._ready.host_key

    @property
    def host_key_proof(self) -> tuple[bytes, bytes]:
        """The first key exchange's host key blob and the server's signature of the
        exchange hash (what session-bind@openssh.com shows an agent)."""
        conn = self._protocol.conn
        return conn.host_key_blob, conn.exchange_signature

    @property
    def trace(self) -> Callable[[str], None] | None:
        """The config's trace hook, for upper layers to report their steps."""
        return self._protocol.conn.config.trace

    @property
    def is_closed(self) -> bool:
        return self._protocol.closed

    async def send(self, payload: bytes) -> None:
        """Queue one message (its number >= 50) and wait while the socket buffer is full."""
        self.send_nowait(payload)
        await self._protocol.drain()

    def send_nowait(self, payload: bytes) -> None:
        """Queue one message without waiting; call ``send`` now and then to drain."""
        protocol = self._protocol
        if protocol.error is not None:
            raise protocol.error
        protocol.conn.send_payload(payload)
        protocol.flush_soon()

    async def receive(self, timeout: float | None = None) -> bytes:
        """The next message payload from the server (number >= 50).

        Raises TimedOut after ``timeout`` seconds (None waits as long as the peer
        keeps the connection), DisconnectError when the server hung up.
        """
        protocol = self._protocol
        if protocol.payloads:
            return protocol.take()
        await protocol.wait_payload(timeout)
        return protocol.take()

    async def receive_batch(self, timeout: float | None = None) -> list[bytes]:
        """Every payload already received (at least one; waits as ``receive``)."""
        protocol = self._protocol
        if not protocol.payloads:
            await protocol.wait_payload(timeout)
        return protocol.take_all()

    async def close(self, description: str = "") -> None:
        """Send SSH_MSG_DISCONNECT (by application) and close the socket."""
        await self._protocol.close(description)

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Protocol(asyncio.Protocol):
    """Feeds socket bytes to ClientTransport and queues what comes out."""

    def __init__(self, conn: ClientTransport) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.payloads: deque[bytes] = deque()
        self.error: KeytoolError | None = None
        self.ready: TransportReady | None = None
        self.closed = False
        self._host_key: HostKeyToCheck | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused_reading = False
        #: the TCP socket whose acknowledgements go out at once (None: not TCP)
        self._acking: asyncio.trsock.TransportSocket | None = None
        self._write_waiter: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._flush_pending = False
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._acking = transport.get_extra_info("socket")
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self.error is not None:
            return
        if self._acking is not None and not quick_ack(self._acking):
            self._acking = None
        try:
            events = self.conn.receive_data(data)
        except KeytoolError as exc:
            self._fail(exc)
            return
        except Exception as exc:  # the waiters are told, not asyncio's log
            self._fail(_unexpected(exc), flush=False)
            return
        try:
            self._handle(events)
            self.flush()
        except Exception as exc:  # as above
            self._fail(_unexpected(exc), flush=False)

    def eof_received(self) -> bool:
        if self.error is None:
            try:
                self._handle(self.conn.receive_data(b""))
            except KeytoolError as exc:  # ClientTransport tells a dropped connection
                self._fail(exc)
            except Exception as exc:  # as in data_received
                self._fail(_unexpected(exc), flush=False)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.error is None:
            reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else ""
            self._fail(self.conn.connection_lost(reason), close=False)
        if not self._lost.done():
            self._lost.set_result(None)
        self._wake_writer()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_writer()

    # plumbing

    def keep_alive(self) -> None:
        """SO_KEEPALIVE on the connection's socket."""
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def peername(self) -> tuple[str, int] | None:
        """The server's address; None over a ProxyCommand (a socket pair)."""
        assert self.transport is not None
        info = self.transport.get_extra_info("peername")
        return (str(info[0]), int(info[1])) if isinstance(info, tuple) and info else None

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, PayloadReceived):
                self.payloads.append(event.payload)
            elif isinstance(event, HostKeyToCheck):
                self._host_key = event
            elif isinstance(event, TransportReady):
                self.ready = event
            elif isinstance(event, ExtInfoReceived):
                pass  # recorded by ClientTransport itself
        if (self.payloads or self._host_key or self.ready) and self._waiter is not None:
            self._wake()
        if len(self.payloads) >= _PAUSE_AT and not self._paused_reading and self.transport:
            self._paused_reading = True
            self.transport.pause_reading()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: KeytoolError, close: bool = True, flush: bool = True) -> None:
        """``flush`` False: the transport's state is in doubt (an error nobody
        expected), so nothing more of it is sent; the connection is just closed."""
        if self.error is None:
            self.error = exc
        if close and self.transport is not None:
            # a DISCONNECT the transport queued for the peer goes out before the close
            if flush:
                self.flush()
            self.transport.close()
        self._wake()
        self._wake_writer()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def flush_soon(self) -> None:
        """Flush once the running callback is done: the packets a task queues in one
        step (channel data and EOF, a reply and a window adjustment) leave in one
        socket write, and the server wakes once for them."""
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_pending = False
        self.flush()

    async def drain(self) -> None:
        if self.error is not None:
            raise self.error
        if self._writing_paused and not self.closed:
            self._write_waiter = asyncio.get_running_loop().create_future()
            await self._write_waiter
            if self.error is not None:
                raise self.error

    async def _wait(self, timeout: float | None, what: str) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._waiter
        except TimeoutError:
            raise TimedOut(f"timed out after {timeout:g}s waiting for {what}") from None
        finally:
            self._waiter = None

    async def wait_handshake(self, timeout: float | None) -> HostKeyToCheck | None:
        """Wait for the host key to check (returned) or for service accept (None)."""
        while self._host_key is None and self.ready is None:
            if self.error is not None:
                raise self.error
            await self._wait(timeout, "the server during the handshake")
        if self.error is not None and self.ready is None:
            raise self.error
        check, self._host_key = self._host_key, None
        return check

    def accept_host_key(self) -> None:
        try:
            events = self.conn.accept_host_key()
        except KeytoolError as exc:
            self._fail(exc)
            raise
        self._handle(events)
        self.flush()

    async def wait_payload(self, timeout: float | None) -> None:
        while not self.payloads:
            if self.error is not None:
                raise self.error
            await self._wait(timeout, "the server")

    def _resume_if_drained(self) -> None:
        if self._paused_reading and len(self.payloads) <= _RESUME_AT and self.transport:
            self._paused_reading = False
            self.transport.resume_reading()

    def take(self) -> bytes:
        payload = self.payloads.popleft()
        if self._paused_reading:
            self._resume_if_drained()
        return payload

    def take_all(self) -> list[bytes]:
        payloads = list(self.payloads)
        self.payloads.clear()
        if self._paused_reading:
            self._resume_if_drained()
        return payloads

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def close(self, description: str) -> None:
        if self.transport is None:
            return
        if self.error is None and not self.closed:
            with contextlib.suppress(KeytoolError):
                self.conn.disconnect(_BY_APPLICATION, description)
            self.flush()
            self.error = DisconnectError("connection closed by keytool")
        if not self.transport.is_closing():
            self.transport.close()
        try:
            async with asyncio.timeout(5):
                await self._lost
        except TimeoutError:
            self.transport.abort()


def _unexpected(exc: Exception) -> KeytoolError:
    """An error the connection's reader did not expect, as one that names it."""
    error = KeytoolError(f"the connection failed: {in_words(exc)}")
    error.__cause__ = exc
    return error

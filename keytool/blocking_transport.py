"""The blocking driver's transport: ``ClientTransport`` on a non-blocking socket, waited
on with poll(2); every wait has a deadline (see blocking.py)."""

from __future__ import annotations

import select
import time
from collections import deque

from keytool.errors import (
    DisconnectError,
    KeytoolError,
    ProtocolError,
    TimedOut,
)
from keytool.login_hostkey import HostCheck
from keytool.malloc import AFTER_BYTES, keep_freed_memory
from keytool.tcp import quick_ack
from keytool.transport.events import HostKeyToCheck, KeysChanged, PayloadReceived, TransportReady
from keytool.transport.handshake import ClientTransport

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Iterable

    from keytool.keys.base import PublicKey
    from keytool.transport.events import Algorithms, Event


# one recv takes up to this much (a 256 KiB read keeps bulk transfers cheap)
_RECV_SIZE = 256 * 1024
#: poll(2)'s flags for "readable, or gone"
POLL_IN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
# RFC 4253 §11.1 reason code SSH_DISCONNECT_BY_APPLICATION
BY_APPLICATION = 11


class BlockingTransport:
    """ClientTransport on a non-blocking socket, waited on with poll(2)."""

    def __init__(self, sock: _socket.socket, conn: ClientTransport) -> None:
        sock.setblocking(False)
        self.sock = sock
        #: acknowledgements go out at once (tcp.quick_ack), while the socket takes it
        self._acking = True
        self.conn = conn
        self.payloads: deque[bytes] = deque()
        self.error: KeytoolError | None = None
        self.ready: TransportReady | None = None
        self._host_key: HostKeyToCheck | None = None
        self._out = bytearray()  # bytes the socket has not taken yet
        self._fd = sock.fileno()
        self.heard = time.monotonic()  # when the server last sent anything
        self.keyed_at = self.heard  # when the last key exchange ended
        # bytes moved either way, until the allocator is tuned for a bulk transfer
        self._moved: int | None = 0

    # ---- the handshake

    def handshake(self, check: HostCheck, timeout: float | None) -> None:
        """Version exchange, key exchange with the host key checked by ``check``, and
        the ssh-userauth service request."""
        trace = self.conn.config.trace
        if trace:
            peer = self.sock.getpeername()
            if isinstance(peer, tuple):
                trace(f"TCP connection established to {peer[0]} port {peer[1]}")
            else:
                trace("connected through the ProxyCommand")
        self._queue()
        deadline = deadline_after(timeout)
        while self._host_key is None and self.ready is None:
            self._wait_server(deadline, timeout, "the server during the handshake")
        if self._host_key is not None:
            key = self._host_key
            self._host_key = None
            check.check(key.key, key.algorithm)  # may prompt: no timeout meanwhile
            try:
                self._handle(self.conn.accept_host_key())
            except KeytoolError as exc:
                self._fail(exc)
                raise
            self._queue()
            deadline = deadline_after(timeout)
            while self.ready is None:
                self._wait_server(deadline, timeout, "the server during the handshake")

    def host_key_only(self, timeout: float | None) -> HostKeyToCheck:
        """Version exchange and key exchange up to the server's proof of its host key
        (the exchange hash's signature checked), and no further (ssh-keyscan)."""
        self._queue()
        deadline = deadline_after(timeout)
        while self._host_key is None:
            if self.ready is not None:  # pragma: no cover - the key comes before NEWKEYS
                raise ProtocolError("the key exchange ended without a host key")
            self._wait_server(deadline, timeout, "the server's host key")
        return self._host_key

    # ---- what Login needs

    @property
    def session_id(self) -> bytes:
        assert self.ready is not None
        return self.ready.session_id

    @property
    def server_sig_algs(self) -> tuple[str, ...] | None:
        return self.conn.server_sig_algs

    @property
    def algorithms(self) -> Algorithms:
        assert self.ready is not None
        return self.conn.algorithms or self.ready.algorithms

    @property
    def host_key(self) -> PublicKey:
        assert self.ready is not None
        return self.ready.host_key

    @property
    def host_key_proof(self) -> tuple[bytes, bytes]:
        """The first key exchange's host key blob and the server's signature of the
        exchange hash (what session-bind@openssh.com shows an agent)."""
        return self.conn.host_key_blob, self.conn.exchange_signature

    def send_nowait(self, payload: bytes) -> None:
        """Queue one message; it leaves with the next ``send`` or wait."""
        if self.error is not None:
            raise self.error
        self.conn.send_payload(payload)

    async def send(self, payload: bytes) -> None:
        self.send_nowait(payload)
        self._queue()

    async def receive(self, timeout: float | None = None) -> bytes:
        return self.next_payload(timeout, "the server")

    # ---- waiting

    def next_payload(self, timeout: float | None, what: str) -> bytes:
        deadline = deadline_after(timeout)
        while not self.payloads:
            self._wait_server(deadline, timeout, what)
        return self.payloads.popleft()

    def _wait_server(self, deadline: float | None, timeout: float | None, what: str) -> None:
        if self.error is not None:
            raise self.error
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimedOut(f"timed out after {timeout:g}s waiting for {what}")
        self.wait(remaining)
        if self.error is not None and not self.payloads:
            raise self.error

    def wait(
        self, timeout: float | None, fds: Iterable[tuple[int, int]] = ()
    ) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds (None: no limit) until the server sends
        something or one of ``fds`` (descriptor, poll events) is ready; the socket's
        reads and pending writes are done here. Returns the others that are ready."""
        poller = select.poll()
        poller.register(self._fd, POLL_IN | (select.POLLOUT if self._out else 0))
        for fd, wanted in fds:
            poller.register(fd, wanted)
        try:
            ready = poller.poll(None if timeout is None else max(0, int(timeout * 1000) + 1))
        except InterruptedError:  # pragma: no cover - PEP 475 retries poll itself
            return []
        others = []
        for fd, flags in ready:
            if fd != self._fd:
                others.append((fd, flags))
                continue
            if flags & select.POLLOUT:
                self._write()
            if flags & POLL_IN:
                self._read()
        return others

    # ---- socket plumbing

    def _read(self) -> None:
        if self.error is not None:
            return
        try:
            data = self.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if self._moved is not None:
            self._count(len(data))
        if data:
            self.heard = time.monotonic()
            if self._acking and not quick_ack(self.sock):
                self._acking = False
        try:
            events = self.conn.receive_data(data)
        except KeytoolError as exc:
            self._fail(exc)
            return
        self._handle(events)
        self._queue()
        if not data:
            self._lost(None)

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, PayloadReceived):
                self.payloads.append(event.payload)
            elif isinstance(event, HostKeyToCheck):
                self._host_key = event
            elif isinstance(event, TransportReady):
                self.ready = event
            elif isinstance(event, KeysChanged):
                self.keyed_at = time.monotonic()

    def _queue(self) -> None:
        """Take what the transport has to send and write as much as the socket takes."""
        data = self.conn.data_to_send()
        if self._moved is not None and data:
            self._count(len(data))
        if data and not self._out and self.error is None:
            # the common case: the socket takes it all now, with no copy into _out
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._lost(exc)
                return
            data = data[sent:] if sent < len(data) else b""
        if data:
            self._out += data
        if self._out:
            self._write()

    def _count(self, size: int) -> None:
        assert self._moved is not None
        self._moved += size
        if self._moved >= AFTER_BYTES:
            keep_freed_memory()
            self._moved = None

    def _write(self) -> None:
        while self._out:
            try:
                sent = self.sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._lost(exc)
                return
            del self._out[:sent]

    def _lost(self, exc: OSError | None) -> None:
        """The socket failed (``exc``) or hit end of file: the error is the one
        ClientTransport gives (a connection dropped before any packet, bytes that
        were not SSH, or a plain close), as the asyncio driver's."""
        self._out.clear()
        if self.error is None:
            reason = (exc.strerror or str(exc)) if exc is not None else ""
            self.error = self.conn.connection_lost(reason)

    def _fail(self, exc: KeytoolError) -> None:
        if self.error is None:
            self.error = exc
            # a DISCONNECT the transport queued for the peer goes out before the close
            self._queue()

    def close(self) -> None:
        """Send SSH_MSG_DISCONNECT (by application), flush what we can, close."""
        if self.error is None:
            try:
                self.conn.disconnect(BY_APPLICATION, "")
                self._queue()
            except KeytoolError:
                pass
            self.error = DisconnectError("connection closed by keytool")
        self.sock.close()


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def remaining(deadline: float | None, what: str) -> float | None:
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DisconnectError(f"timed out waiting for {what}")
    return remaining

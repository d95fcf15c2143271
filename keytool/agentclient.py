"""A client for any SSH agent (keytool's or OpenSSH's) over the socket in SSH_AUTH_SOCK.

``AgentClient`` is blocking (for the CLI); ``AsyncAgentClient`` is the same over asyncio
(for the SSH client). Both raise AgentError, one line, when the agent cannot be reached
or refuses; never with key material in the message.
"""

from __future__ import annotations

import contextlib
import os
import socket

from keytool import agentproto as proto
from keytool.errors import AgentError, KeytoolError, NoAgentError
from keytool.record import Record, init

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from types import TracebackType

    from keytool.agentdest import DestConstraint
    from keytool.keys.base import PrivateKey, PublicKey

#: seconds to wait for an answer the agent gives without asking anybody (a list, an
#: add...): an agent that never answers is not waited for forever
DEFAULT_TIMEOUT = 60.0
#: requests that may wait for a human (a confirm-constrained key, a security key's
#: touch), whose answer is waited for without a limit, as ssh-add does
WAITS_FOR_A_HUMAN = frozenset((proto.SSH_AGENTC_SIGN_REQUEST,))


class AgentKey(Record):
    """A key the agent holds: its blob and comment; ``public`` parses the blob."""

    __slots__ = ("blob", "comment")
    blob: bytes
    comment: str

    def __init__(self, blob: bytes, comment: str) -> None:
        init(self, blob=blob, comment=comment)

    @property
    def public(self) -> PublicKey:
        from keytool.keys.blob import public_from_wire

        return public_from_wire(self.blob)


def socket_path(path: str | None = None) -> str:
    found = path or os.environ.get("SSH_AUTH_SOCK")
    if not found:
        raise NoAgentError(
            'no agent: SSH_AUTH_SOCK is not set (start one with: eval "$(keytool agent)")'
        )
    return found


def _connect_error(path: str, exc: OSError) -> AgentError:
    reason = exc.strerror or str(exc)
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
        return NoAgentError(f"cannot reach the agent at {path}: {reason} (is SSH_AUTH_SOCK stale?)")
    return NoAgentError(f"cannot reach the agent at {path}: {reason}")


def _expect_success(reply: bytes, what: str) -> None:
    if reply != proto.SUCCESS:
        raise AgentError(f"the agent refused to {what}")


def _sign_request(blob: bytes, data: bytes, flags: int) -> bytes:
    return proto.encode_request(proto.SignRequest(blob, data, flags))


def _add_request(
    key: PrivateKey,
    comment: str,
    lifetime: int | None,
    confirm: bool,
    destinations: tuple[DestConstraint, ...] = (),
) -> bytes:
    constraints = proto.Constraints(lifetime, confirm, destinations)
    return proto.encode_request(proto.AddIdentity(key, comment, constraints))


def _parse_identities(reply: bytes) -> list[AgentKey]:
    if reply == proto.FAILURE:
        raise AgentError("the agent refused to list its keys")
    try:
        return [AgentKey(i.key_blob, i.comment) for i in proto.decode_identities(reply)]
    except KeytoolError as exc:
        raise AgentError(f"bad answer from the agent: {exc}") from None


def _parse_signature(reply: bytes) -> bytes:
    if reply == proto.FAILURE:
        raise AgentError("the agent refused to sign")
    try:
        return proto.decode_sign_response(reply)
    except KeytoolError as exc:
        raise AgentError(f"bad answer from the agent: {exc}") from None


def _parse_query(reply: bytes) -> list[str]:
    if reply[:1] in (proto.FAILURE, proto.EXTENSION_FAILURE):
        return []
    try:
        return proto.decode_query_response(reply)
    except KeytoolError as exc:
        raise AgentError(f"bad answer from the agent: {exc}") from None


def _length(header: bytes) -> int:
    length: int = proto.LENGTH.unpack(header)[0]
    if length == 0 or length > proto.MAX_MESSAGE:
        raise AgentError(f"bad answer from the agent: a message of {length} bytes")
    return length


class AgentClient:
    """A blocking connection to an agent; one request at a time."""

    def __init__(self, path: str | None = None, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self.path = socket_path(path)
        self._timeout = timeout
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(self.path)
        except OSError as exc:
            self._sock.close()
            raise _connect_error(self.path, exc) from None

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def set_timeout(self, timeout: float | None) -> None:
        """Seconds to wait for each reply from now on (None: no limit); a request that
        may wait for a human (WAITS_FOR_A_HUMAN) has no limit whatever this says."""
        self._timeout = timeout
        self._sock.settimeout(timeout)

    def _recv_exact(self, count: int) -> bytes:
        chunks = []
        while count:
            chunk = self._sock.recv(min(count, 65536))
            if not chunk:
                raise AgentError("the agent closed the connection")
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    def call(self, payload: bytes) -> bytes:
        """Send one request payload; returns the reply payload."""
        # ssh-agent answers nobody while it asks a human about another client's
        # request, and keytool's agent asks for as long as its askpass allows
        waits = bool(payload) and payload[0] in WAITS_FOR_A_HUMAN
        try:
            self._sock.settimeout(None if waits else self._timeout)
            self._sock.sendall(proto.frame(payload))
            return self._recv_exact(_length(self._recv_exact(4)))
        except TimeoutError:
            raise AgentError("the agent did not answer in time") from None
        except OSError as exc:
            raise AgentError(f"lost the agent connection: {exc.strerror or exc}") from None

    def identities(self) -> list[AgentKey]:
        return _parse_identities(self.call(bytes([proto.SSH_AGENTC_REQUEST_IDENTITIES])))

    def sign(self, blob: bytes, data: bytes, flags: int = 0) -> bytes:
        """The wire signature blob of ``data`` by the key ``blob``."""
        return _parse_signature(self.call(_sign_request(blob, data, flags)))

    def add(
        self,
        key: PrivateKey,
        comment: str,
        lifetime: int | None = None,
        confirm: bool = False,
        destinations: tuple[DestConstraint, ...] = (),
    ) -> None:
        """Add ``key``; ``destinations`` restrict where it may be used (ssh-add -h)."""
        reply = self.call(_add_request(key, comment, lifetime, confirm, destinations))
        _expect_success(reply, "add the key")

    def remove(self, blob: bytes) -> None:
        payload = proto.encode_request(proto.RemoveIdentity(blob))
        _expect_success(self.call(payload), "remove the key")

    def update_card(
        self,
        add: bool,
        provider: str,
        pin: bytes,
        lifetime: int | None = None,
        confirm: bool = False,
        destinations: tuple[DestConstraint, ...] = (),
    ) -> None:
        """ssh-add -s / -e: the agent loads (or drops) a PKCS#11 provider's keys."""
        constraints = proto.Constraints(lifetime, confirm, destinations)
        payload = proto.encode_smartcard(add, provider, pin, constraints)
        _expect_success(self.call(payload), "add the card" if add else "remove the card")

    def remove_all(self) -> None:
        reply = self.call(bytes([proto.SSH_AGENTC_REMOVE_ALL_IDENTITIES]))
        _expect_success(reply, "remove all keys")

    def lock(self, passphrase: bytes) -> None:
        _expect_success(self.call(proto.encode_request(proto.Lock(passphrase))), "lock")

    def unlock(self, passphrase: bytes) -> None:
        _expect_success(self.call(proto.encode_request(proto.Unlock(passphrase))), "unlock")

    def extension(self, name: str, contents: bytes = b"") -> bytes:
        """The raw reply payload to an extension request."""
        return self.call(proto.encode_request(proto.Extension(name, contents)))

    def query(self) -> list[str]:
        """The extensions the agent supports (empty when it does not implement query)."""
        return _parse_query(self.extension(proto.EXT_QUERY))

    def session_bind(
        self, host_key: bytes, session_id: bytes, signature: bytes, forwarding: bool = False
    ) -> None:
        bind = proto.SessionBind(host_key, session_id, signature, forwarding)
        reply = self.extension(proto.EXT_SESSION_BIND, bind.to_wire())
        _expect_success(reply, "bind the session")


class AsyncAgentClient:
    """The same requests over asyncio, for use inside the SSH client."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import asyncio  # here: the blocking client's users never load asyncio

        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, path: str | None = None) -> AsyncAgentClient:
        import asyncio

        where = socket_path(path)
        try:
            reader, writer = await asyncio.open_unix_connection(where)
        except OSError as exc:
            raise _connect_error(where, exc) from None
        return cls(reader, writer)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def call(self, payload: bytes) -> bytes:
        import asyncio

        async with self._lock:
            try:
                self._writer.write(proto.frame(payload))
                await self._writer.drain()
                length = _length(await self._reader.readexactly(4))
                return await self._reader.readexactly(length)
            except asyncio.IncompleteReadError:
                raise AgentError("the agent closed the connection") from None
            except OSError as exc:
                raise AgentError(f"lost the agent connection: {exc.strerror or exc}") from None

    async def identities(self) -> list[AgentKey]:
        return _parse_identities(await self.call(bytes([proto.SSH_AGENTC_REQUEST_IDENTITIES])))

    async def sign(self, blob: bytes, data: bytes, flags: int = 0) -> bytes:
        return _parse_signature(await self.call(_sign_request(blob, data, flags)))

    async def add(
        self, key: PrivateKey, comment: str, lifetime: int | None = None, confirm: bool = False
    ) -> None:
        reply = await self.call(_add_request(key, comment, lifetime, confirm))
        _expect_success(reply, "add the key")

    async def query(self) -> list[str]:
        return _parse_query(await self.call(proto.encode_request(proto.Extension(proto.EXT_QUERY))))

    async def session_bind(
        self, host_key: bytes, session_id: bytes, signature: bytes, forwarding: bool = False
    ) -> None:
        bind = proto.SessionBind(host_key, session_id, signature, forwarding)
        payload = proto.encode_request(proto.Extension(proto.EXT_SESSION_BIND, bind.to_wire()))
        _expect_success(await self.call(payload), "bind the session")

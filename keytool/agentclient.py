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
from keytool.wire import string as wire_string

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


class AgentKeys(list[AgentKey]):
    """The keys of an identities answer; ``skipped`` counts the blobs of key types
    OpenSSH does not know, left out as ssh-add leaves them out."""

    skipped: int = 0


class BadAgentKeyError(AgentError):
    """A key blob in the agent's list that OpenSSH refuses to read: ssh-add -l then
    lists nothing and says ``error fetching identities: REASON``; ssh uses none of the
    agent's keys."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"error fetching identities: {reason}")
        self.reason = reason


#: ssh_err(SSH_ERR_KEY_TYPE_UNKNOWN): a blob OpenSSH's clients skip in a key list
UNKNOWN_KEY_TYPE = "unknown or unsupported key type"

# sshkey.c's (OpenSSH 9.2) key type names -> the plain key type they are read as (the
# RSA signature algorithm names and webauthn's are read as keys too)
_PLAIN_NAMES = {
    "ssh-ed25519": "ssh-ed25519",
    "sk-ssh-ed25519@openssh.com": "sk-ssh-ed25519@openssh.com",
    "ssh-rsa": "ssh-rsa",
    "rsa-sha2-256": "ssh-rsa",
    "rsa-sha2-512": "ssh-rsa",
    "ssh-dss": "ssh-dss",
    "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com": "sk-ecdsa-sha2-nistp256@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com": "sk-ecdsa-sha2-nistp256@openssh.com",
}
_CERT_NAMES = {
    "ssh-ed25519-cert-v01@openssh.com": "ssh-ed25519",
    "sk-ssh-ed25519-cert-v01@openssh.com": "sk-ssh-ed25519@openssh.com",
    "ssh-rsa-cert-v01@openssh.com": "ssh-rsa",
    "rsa-sha2-256-cert-v01@openssh.com": "ssh-rsa",
    "rsa-sha2-512-cert-v01@openssh.com": "ssh-rsa",
    "ssh-dss-cert-v01@openssh.com": "ssh-dss",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com": "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com": "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com": "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com": "sk-ecdsa-sha2-nistp256@openssh.com",
}
# the short names, taken in any case for plain keys (sshkey_type_from_name)
_SHORT_NAMES = {
    "ED25519": "ssh-ed25519",
    "ED25519-SK": "sk-ssh-ed25519@openssh.com",
    "RSA": "ssh-rsa",
    "DSA": "ssh-dss",
    "ECDSA": "ecdsa-sha2-nistp256",
    "ECDSA-SK": "sk-ecdsa-sha2-nistp256@openssh.com",
}
_CURVE_OF = {
    "ecdsa-sha2-nistp256": ("nistp256", 65),
    "ecdsa-sha2-nistp384": ("nistp384", 97),
    "ecdsa-sha2-nistp521": ("nistp521", 133),
    "sk-ecdsa-sha2-nistp256@openssh.com": ("nistp256", 65),
}


class _Refused(Exception):
    """sshkey_from_blob's error, as ssh_err() words it."""


class _SshBuf:
    """The few sshbuf reads sshkey_from_blob makes, with their errors."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.at

    def string(self) -> bytes:
        if self.left < 4:
            raise _Refused("incomplete message")
        size = int.from_bytes(self.data[self.at : self.at + 4], "big")
        if size > 0x8000000 - 4:
            raise _Refused("string is too large")
        if self.left - 4 < size:
            raise _Refused("incomplete message")
        self.at += 4 + size
        return self.data[self.at - size : self.at]

    def cstring(self) -> bytes:
        """A string with no NUL but one at its very end (which is dropped)."""
        value = self.string()
        if b"\0" in value[:-1]:
            raise _Refused("invalid format")
        return value.removesuffix(b"\0")

    def bignum(self) -> int:
        """A positive mpint of at most 16384 bits (leading zeros allowed)."""
        value = self.string()
        if value[:1] >= b"\x80":
            raise _Refused("bignum is negative")
        if len(value) > 2049 or (len(value) == 2049 and value[0]):
            raise _Refused("bignum is too large")
        return int.from_bytes(value, "big")

    def skip(self, size: int) -> None:
        if self.left < size:
            raise _Refused("incomplete message")
        self.at += size


def openssh_key_blob(blob: bytes) -> bytes:
    """``blob`` as OpenSSH reads and writes it back (sshkey_from_blob, then
    sshkey_to_blob): its key type's other names (RSA, rsa-sha2-256, ED25519...) under
    their usual one. Raises BadAgentKeyError with ssh_err()'s words for a blob OpenSSH
    refuses, the reason being UNKNOWN_KEY_TYPE for a key type it does not know."""
    try:
        return _read_blob(_SshBuf(blob), allow_cert=True)
    except _Refused as exc:
        raise BadAgentKeyError(str(exc)) from None


def _read_blob(b: _SshBuf, allow_cert: bool) -> bytes:
    start = b.at
    try:
        raw_name = b.cstring()
    except _Refused:
        raise _Refused("invalid format") from None
    name = raw_name.decode("latin-1")
    cert = name in _CERT_NAMES
    if cert and not allow_cert:
        raise _Refused("invalid certificate signing key")
    short = raw_name.upper().decode("latin-1")  # strcasecmp: ASCII letters only
    plain = _CERT_NAMES.get(name) or _PLAIN_NAMES.get(name) or _SHORT_NAMES.get(short)
    if plain is None:
        raise _Refused(UNKNOWN_KEY_TYPE)
    if cert:
        try:
            b.string()  # the nonce
        except _Refused:
            raise _Refused("invalid format") from None
    fields_at = b.at
    _read_fields(b, name, plain)
    if cert:
        _read_certificate(b)
    if b.left:
        raise _Refused("invalid format")
    if cert:
        return b.data[start:]  # a certificate is written back as it was read
    return wire_string(plain.encode("ascii")) + b.data[fields_at:]


def _read_fields(b: _SshBuf, name: str, plain: str) -> None:
    """The key's own fields (ssh_*_deserialize_public)."""
    if plain in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        if len(b.string()) != 32:
            raise _Refused("invalid format")
    elif plain in ("ssh-rsa", "ssh-dss"):
        try:
            numbers = [b.bignum() for _ in range(2 if plain == "ssh-rsa" else 4)]
        except _Refused:
            raise _Refused("invalid format") from None
        if plain == "ssh-rsa" and numbers[1].bit_length() < 1024:
            raise _Refused("Invalid key length")
    else:
        _read_ecdsa(b, name, plain)
    if plain.startswith("sk-"):
        try:
            b.cstring()  # the application
        except _Refused:
            raise _Refused("invalid format") from None


def _read_ecdsa(b: _SshBuf, name: str, plain: str) -> None:
    curve, point_size = _CURVE_OF[plain]
    if name not in _PLAIN_NAMES and name not in _CERT_NAMES:
        raise _Refused("invalid argument")  # a short name says no curve
    if b.cstring() != curve.encode("ascii"):
        raise _Refused("elliptic curve does not match")
    point = b.string()
    if not point or len(point) > 133:
        raise _Refused("elliptic curve point is too large")
    from keytool.keys.ecdsa import CURVES, EcdsaPublic

    try:
        if len(point) != point_size:
            raise KeytoolError("not a point of the curve")
        EcdsaPublic(CURVES[f"ecdsa-sha2-{curve}"], point)
    except KeytoolError:
        raise _Refused("invalid format") from None


def _read_certificate(b: _SshBuf) -> None:
    """cert_parse: the body, its CA key, and the CA's signature over the blob so far
    (checked when the CA's key is of a type keytool verifies with)."""
    try:
        b.skip(8)  # serial
        cert_type = int.from_bytes(b.data[b.at : b.at + 4], "big")
        b.skip(4)
        b.cstring()  # key id
        principals = _SshBuf(b.string())
        b.skip(16)  # valid after, valid before
        options = [_SshBuf(b.string()), _SshBuf(b.string())]  # critical, extensions
        b.string()  # reserved
        ca = b.string()
        signed = b.data[: b.at]  # a certificate is a whole blob: it starts at 0
        signature = b.string()
    except _Refused:
        raise _Refused("invalid format") from None
    if cert_type not in (1, 2):
        raise _Refused("unknown/unsupported certificate type")
    try:
        count = 0
        while principals.left:
            count += 1
            if count > 256:
                raise _Refused("invalid format")
            principals.cstring()
        for section in options:
            while section.left:
                section.string()
                section.string()
    except _Refused:
        raise _Refused("invalid format") from None
    try:
        ca_blob = _read_blob(_SshBuf(ca), allow_cert=False)
    except _Refused:
        raise _Refused("invalid certificate signing key") from None
    from keytool.keys.blob import public_from_wire

    try:
        ca_key = public_from_wire(ca_blob)
    except KeytoolError:
        return  # a DSA or security key CA: keytool has no use for its signature
    if not ca_key.verify(signature, signed):
        raise _Refused("incorrect signature")


def _parse_identities(reply: bytes) -> AgentKeys:
    """The keys of an identities answer as OpenSSH's clients take them
    (ssh_fetch_identitylist): a blob of a key type OpenSSH does not know is skipped, one
    it cannot read spoils the whole list (BadAgentKeyError)."""
    if reply == proto.FAILURE:
        raise AgentError("the agent refused to list its keys")
    try:
        identities = proto.decode_identities(reply)
    except KeytoolError as exc:
        raise AgentError(f"bad answer from the agent: {exc}") from None
    keys = AgentKeys()
    for identity in identities:
        try:
            blob = openssh_key_blob(identity.key_blob)
        except BadAgentKeyError as exc:
            if exc.reason != UNKNOWN_KEY_TYPE:
                raise
            keys.skipped += 1
            continue
        keys.append(AgentKey(blob, identity.comment))
    return keys


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

    def identities(self) -> AgentKeys:
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

    async def identities(self) -> AgentKeys:
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

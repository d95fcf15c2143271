"""The SSH agent protocol (RFC 9987, formerly draft-miller-ssh-agent; OpenSSH's PROTOCOL.agent):
message numbers, request and reply types, their encoding and decoding.

Shared by agentclient.py (which encodes requests and decodes replies) and agent/ (which
does the opposite). Pure: no sockets here. Every decoder raises only FormatError (a
KeytoolError) on bad input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from keytool.agentdest import (
    EXT_RESTRICT_DESTINATION,
    DestConstraint,
    decode_destinations,
    encode_destinations,
)
from keytool.errors import FormatError
from keytool.keys.base import PrivateKey
from keytool.keys.blob import private_from_reader
from keytool.wire import Reader, Writer

# RFC 9987 §4: a message is uint32 length then that many bytes; OpenSSH's ssh-agent and
# ssh-add refuse anything longer than 256 KiB (AGENT_MAX_LEN), and so do we.
MAX_MESSAGE = 256 * 1024
LENGTH = struct.Struct(">I")

# RFC 9987 §7.1: requests from client to agent
SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES = 9  # SSH-1's; ssh-agent still removes all keys
SSH_AGENTC_REQUEST_IDENTITIES = 11
SSH_AGENTC_SIGN_REQUEST = 13
SSH_AGENTC_ADD_IDENTITY = 17
SSH_AGENTC_REMOVE_IDENTITY = 18
SSH_AGENTC_REMOVE_ALL_IDENTITIES = 19
SSH_AGENTC_ADD_SMARTCARD_KEY = 20
SSH_AGENTC_REMOVE_SMARTCARD_KEY = 21
SSH_AGENTC_LOCK = 22
SSH_AGENTC_UNLOCK = 23
SSH_AGENTC_ADD_ID_CONSTRAINED = 25
SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED = 26
SSH_AGENTC_EXTENSION = 27

# RFC 9987 §7.1: replies from agent to client
SSH_AGENT_FAILURE = 5
SSH_AGENT_SUCCESS = 6
SSH_AGENT_IDENTITIES_ANSWER = 12
SSH_AGENT_SIGN_RESPONSE = 14
SSH_AGENT_EXTENSION_FAILURE = 28
SSH_AGENT_EXTENSION_RESPONSE = 29

# RFC 9987 §7.2: key constraints
SSH_AGENT_CONSTRAIN_LIFETIME = 1
SSH_AGENT_CONSTRAIN_CONFIRM = 2
SSH_AGENT_CONSTRAIN_MAXSIGN = 3  # PROTOCOL.agent §3: XMSS only
SSH_AGENT_CONSTRAIN_EXTENSION = 255

# RFC 9987 §7.3: signature flags
SSH_AGENT_RSA_SHA2_256 = 0x02
SSH_AGENT_RSA_SHA2_512 = 0x04

EXT_QUERY = "query"
EXT_SESSION_BIND = "session-bind@openssh.com"  # PROTOCOL.agent §1

FAILURE = bytes((SSH_AGENT_FAILURE,))
SUCCESS = bytes((SSH_AGENT_SUCCESS,))
EXTENSION_FAILURE = bytes((SSH_AGENT_EXTENSION_FAILURE,))

SMARTCARD_MESSAGES = frozenset(
    (
        SSH_AGENTC_ADD_SMARTCARD_KEY,
        SSH_AGENTC_REMOVE_SMARTCARD_KEY,
        SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED,
    )
)


def frame(payload: bytes) -> bytes:
    """One message on the wire: its length, then the payload (RFC 9987 §4)."""
    return LENGTH.pack(len(payload)) + payload


def rsa_algorithm(flags: int) -> str:
    """The RSA signature algorithm a SIGN_REQUEST's flags ask for (RFC 9987 §5.6.1).

    SHA-512 wins when both bits are set; no flag means the legacy SHA-1 ssh-rsa.
    """
    if flags & SSH_AGENT_RSA_SHA2_512:
        return "rsa-sha2-512"
    if flags & SSH_AGENT_RSA_SHA2_256:
        return "rsa-sha2-256"
    return "ssh-rsa"


# ---------------------------------------------------------------------------
# Requests


@dataclass(frozen=True, slots=True)
class Constraints:
    """Key constraints of ADD_ID_CONSTRAINED (RFC 9987 §5.2.7)."""

    lifetime: int | None = None  # seconds
    confirm: bool = False
    #: restrict-destination-v00@openssh.com: where the key may be used (empty: anywhere)
    destinations: tuple[DestConstraint, ...] = ()

    def to_wire(self) -> bytes:
        w = Writer()
        if self.lifetime is not None:
            w.byte(SSH_AGENT_CONSTRAIN_LIFETIME).uint32(self.lifetime)
        if self.confirm:
            w.byte(SSH_AGENT_CONSTRAIN_CONFIRM)
        if self.destinations:
            w.byte(SSH_AGENT_CONSTRAIN_EXTENSION).string(EXT_RESTRICT_DESTINATION)
            w.string(encode_destinations(self.destinations))
        return w.getvalue()

    def __bool__(self) -> bool:
        return self.lifetime is not None or self.confirm or bool(self.destinations)


@dataclass(frozen=True, slots=True)
class RequestIdentities:
    pass


@dataclass(frozen=True, slots=True)
class SignRequest:
    key_blob: bytes
    data: bytes = field(repr=False)
    flags: int = 0


@dataclass(frozen=True, slots=True)
class AddIdentity:
    key: PrivateKey  # its repr shows no key material
    comment: str
    constraints: Constraints = Constraints()


@dataclass(frozen=True, slots=True)
class RemoveIdentity:
    key_blob: bytes


@dataclass(frozen=True, slots=True)
class RemoveAllIdentities:
    pass


@dataclass(frozen=True, slots=True)
class Lock:
    passphrase: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Unlock:
    passphrase: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Extension:
    """RFC 9987 §5.8: the contents follow the name unwrapped (as OpenSSH sends them)."""

    name: str
    contents: bytes = b""


@dataclass(frozen=True, slots=True)
class SmartcardRequest:
    """A PKCS#11 request: always refused, its body never parsed (CVE-2023-38408)."""

    kind: int


@dataclass(frozen=True, slots=True)
class UnknownRequest:
    kind: int


Request = (
    RequestIdentities
    | SignRequest
    | AddIdentity
    | RemoveIdentity
    | RemoveAllIdentities
    | Lock
    | Unlock
    | Extension
    | SmartcardRequest
    | UnknownRequest
)


def _decode_constraints(r: Reader) -> Constraints:
    lifetime: int | None = None
    confirm = False
    destinations: tuple[DestConstraint, ...] | None = None
    while r.remaining:
        kind = r.byte()
        if kind == SSH_AGENT_CONSTRAIN_LIFETIME:
            if lifetime is not None:
                raise FormatError("malformed constraints: lifetime given twice")
            lifetime = r.uint32()
        elif kind == SSH_AGENT_CONSTRAIN_CONFIRM:
            if confirm:
                raise FormatError("malformed constraints: confirm given twice")
            confirm = True
        elif kind == SSH_AGENT_CONSTRAIN_EXTENSION:
            name = r.ascii()
            if name == EXT_RESTRICT_DESTINATION:
                if destinations:
                    raise FormatError(f"malformed constraints: {name} given twice")
                destinations = decode_destinations(r.string())
                continue
            shown = name if name.isprintable() and len(name) <= 64 else "(unprintable)"
            raise FormatError(f"unsupported key constraint extension {shown}")
        else:
            # MAXSIGN (XMSS) and anything unknown: RFC 9987 §5.2.7 says refuse the key
            raise FormatError(f"unsupported key constraint {kind}")
    return Constraints(lifetime, confirm, destinations or ())


_SIGN_HEAD = struct.Struct(">BI")


def decode_sign_request(payload: bytes) -> SignRequest:
    """SIGN_REQUEST (RFC 9987 §5.6): byte 13, string key blob, string data, uint32 flags.

    The agent's hot path: the same strict rules as Reader (no truncation, no trailing
    bytes), read with two struct calls instead of a Reader per field.
    """
    size = len(payload)
    if size < 13:
        raise FormatError("truncated sign request")
    kind, blob_len = _SIGN_HEAD.unpack_from(payload)
    if kind != SSH_AGENTC_SIGN_REQUEST:
        raise FormatError("not a sign request")
    data_at = 5 + blob_len + 4
    if data_at > size - 4:
        raise FormatError("truncated sign request")
    data_len = LENGTH.unpack_from(payload, data_at - 4)[0]
    if data_at + data_len + 4 != size:
        raise FormatError("malformed sign request: lengths do not add up")
    flags = LENGTH.unpack_from(payload, size - 4)[0]
    return SignRequest(payload[5 : 5 + blob_len], payload[data_at : data_at + data_len], flags)


def decode_request(payload: bytes) -> Request:
    """One request payload (the bytes after the length) -> a Request; FormatError if bad."""
    if not payload:
        raise FormatError("empty agent message")
    kind = payload[0]
    r = Reader(payload, "agent request")
    r.byte()
    request: Request
    if kind == SSH_AGENTC_SIGN_REQUEST:
        return decode_sign_request(payload)
    # as ssh-agent, which reads nothing after the type of these two: bytes after it
    # are not an error (a client's padding, or an old ssh-add sending SSH-1's 9)
    if kind == SSH_AGENTC_REQUEST_IDENTITIES:
        return RequestIdentities()
    if kind in (SSH_AGENTC_REMOVE_ALL_IDENTITIES, SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES):
        return RemoveAllIdentities()
    if kind in (SSH_AGENTC_ADD_IDENTITY, SSH_AGENTC_ADD_ID_CONSTRAINED):
        # RFC 9987 §5.2: string key type, key fields (as PROTOCOL.key), string comment
        key = private_from_reader(r)
        comment = r.string().decode("utf-8", "surrogateescape")
        constraints = Constraints()
        if kind == SSH_AGENTC_ADD_ID_CONSTRAINED:
            constraints = _decode_constraints(r)
        request = AddIdentity(key, comment, constraints)
    elif kind == SSH_AGENTC_REMOVE_IDENTITY:
        request = RemoveIdentity(r.string())
    elif kind == SSH_AGENTC_LOCK:
        request = Lock(r.string())
    elif kind == SSH_AGENTC_UNLOCK:
        request = Unlock(r.string())
    elif kind == SSH_AGENTC_EXTENSION:
        name = r.ascii()
        return Extension(name, r.rest())
    elif kind in SMARTCARD_MESSAGES:
        return SmartcardRequest(kind)
    else:
        return UnknownRequest(kind)
    r.done()
    return request


def encode_request(request: Request) -> bytes:
    """A Request -> its payload (no length prefix)."""
    if isinstance(request, SignRequest):
        return (
            Writer()
            .byte(SSH_AGENTC_SIGN_REQUEST)
            .string(request.key_blob)
            .string(request.data)
            .uint32(request.flags)
            .getvalue()
        )
    if isinstance(request, RequestIdentities):
        return bytes((SSH_AGENTC_REQUEST_IDENTITIES,))
    if isinstance(request, AddIdentity):
        constrained = bool(request.constraints)
        kind = SSH_AGENTC_ADD_ID_CONSTRAINED if constrained else SSH_AGENTC_ADD_IDENTITY
        w = Writer().byte(kind).raw(request.key.to_wire()).string(request.comment)
        if constrained:
            w.raw(request.constraints.to_wire())
        return w.getvalue()
    if isinstance(request, RemoveIdentity):
        return Writer().byte(SSH_AGENTC_REMOVE_IDENTITY).string(request.key_blob).getvalue()
    if isinstance(request, RemoveAllIdentities):
        return bytes((SSH_AGENTC_REMOVE_ALL_IDENTITIES,))
    if isinstance(request, Lock):
        return Writer().byte(SSH_AGENTC_LOCK).string(request.passphrase).getvalue()
    if isinstance(request, Unlock):
        return Writer().byte(SSH_AGENTC_UNLOCK).string(request.passphrase).getvalue()
    if isinstance(request, Extension):
        return (
            Writer()
            .byte(SSH_AGENTC_EXTENSION)
            .string(request.name)
            .raw(request.contents)
            .getvalue()
        )
    return bytes((request.kind,))


def encode_smartcard(
    add: bool, provider: str, pin: bytes, constraints: Constraints = Constraints()
) -> bytes:
    """ssh-add -s / -e: ask the agent to load (or drop) the keys of a PKCS#11 provider
    (RFC 9987 §5.2.5); the agent loads the provider, the client sends only its name."""
    if not add:
        kind = SSH_AGENTC_REMOVE_SMARTCARD_KEY
    elif constraints:
        kind = SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED
    else:
        kind = SSH_AGENTC_ADD_SMARTCARD_KEY
    w = Writer().byte(kind).string(provider).string(pin)
    if add and constraints:
        w.raw(constraints.to_wire())
    return w.getvalue()


@dataclass(frozen=True, slots=True)
class SessionBind:
    """PROTOCOL.agent §1: the contents of a session-bind@openssh.com extension request."""

    host_key: bytes
    session_id: bytes
    signature: bytes
    is_forwarding: bool

    @classmethod
    def from_wire(cls, contents: bytes) -> SessionBind:
        r = Reader(contents, "session-bind request")
        host_key = r.string()
        session_id = r.string()
        signature = r.string()
        forwarding = r.boolean()
        r.done()
        return cls(host_key, session_id, signature, forwarding)

    def to_wire(self) -> bytes:
        return (
            Writer()
            .string(self.host_key)
            .string(self.session_id)
            .string(self.signature)
            .boolean(self.is_forwarding)
            .getvalue()
        )


# ---------------------------------------------------------------------------
# Replies


@dataclass(frozen=True, slots=True)
class Identity:
    """One entry of IDENTITIES_ANSWER: a public key blob and its comment."""

    key_blob: bytes
    comment: str


def encode_identities(identities: list[Identity]) -> bytes:
    # RFC 9987 §5.5: uint32 nkeys, then (string key blob, string comment) each
    w = Writer().byte(SSH_AGENT_IDENTITIES_ANSWER).uint32(len(identities))
    for identity in identities:
        w.string(identity.key_blob).string(identity.comment)
    return w.getvalue()


def decode_identities(payload: bytes) -> list[Identity]:
    r = Reader(payload, "agent identities answer")
    if r.byte() != SSH_AGENT_IDENTITIES_ANSWER:
        raise FormatError("the agent did not answer with a list of identities")
    count = r.uint32()
    # each entry takes at least 8 bytes: a count beyond that is a lie, not an allocation
    if count > r.remaining // 8:
        raise FormatError("malformed agent identities answer: impossible key count")
    identities = []
    for _ in range(count):
        blob = r.string()
        comment = r.string().decode("utf-8", "surrogateescape")
        identities.append(Identity(blob, comment))
    r.done()
    return identities


_SIGN_RESPONSE_HEAD = struct.Struct(">IBI")


def encode_sign_response(signature: bytes) -> bytes:
    return Writer().byte(SSH_AGENT_SIGN_RESPONSE).string(signature).getvalue()


def framed_sign_response(signature: bytes) -> bytes:
    """frame(encode_sign_response(signature)) in one step, for the agent's hot path."""
    size = len(signature)
    return _SIGN_RESPONSE_HEAD.pack(size + 5, SSH_AGENT_SIGN_RESPONSE, size) + signature


def decode_sign_response(payload: bytes) -> bytes:
    r = Reader(payload, "agent sign response")
    if r.byte() != SSH_AGENT_SIGN_RESPONSE:
        raise FormatError("the agent did not answer with a signature")
    signature = r.string()
    r.done()
    return signature


def encode_query_response(names: list[str]) -> bytes:
    # RFC 9987 §5.8.1: EXTENSION_RESPONSE, the name "query", then one string per extension
    w = Writer().byte(SSH_AGENT_EXTENSION_RESPONSE).string(EXT_QUERY)
    for name in names:
        w.string(name)
    return w.getvalue()


def decode_query_response(payload: bytes) -> list[str]:
    r = Reader(payload, "agent query response")
    if r.byte() != SSH_AGENT_EXTENSION_RESPONSE or r.ascii() != EXT_QUERY:
        raise FormatError("the agent did not answer the query extension")
    names = []
    while r.remaining:
        names.append(r.ascii())
    return names

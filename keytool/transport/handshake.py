"""The client side of the SSH transport layer (RFC 4253) as a sans-IO state machine.

    conn = ClientTransport(config)
    send(conn.data_to_send())                # version line and KEXINIT
    for event in conn.receive_data(chunk):   # HostKeyToCheck, TransportReady, ...
        ...                                  # conn.accept_host_key() after known_hosts
    send(conn.data_to_send())

The messages each state accepts sit in ACCEPTS; anything else ends the connection with
a ProtocolError, after which every call raises that error again. Strict key exchange
(PROTOCOL §1.10, "kex-strict-*-v00@openssh.com", the Terrapin countermeasure) makes the
first key exchange's row tighter still: no IGNORE, DEBUG or UNIMPLEMENTED, the server's
KEXINIT must be its first packet, and sequence numbers restart at every NEWKEYS.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from enum import Enum, auto

from keytool.display import Logged, logged, printable
from keytool.errors import (
    ConnectionDropped,
    DisconnectError,
    FormatError,
    KeytoolError,
    NegotiationError,
    PeerDisconnect,
    ProtocolError,
)
from keytool.keys.base import PublicKey
from keytool.keys.blob import public_from_wire
from keytool.transport import kex as kexes
from keytool.transport.ciphers import (
    IMPLICIT_MAC,
    PacketCipher,
    cipher_spec,
    mac_spec,
    make_cipher,
)
from keytool.transport.config import EXT_INFO_C, KEX_STRICT_C, KEX_STRICT_S, TransportConfig
from keytool.transport.events import (
    Algorithms,
    Event,
    ExtInfoReceived,
    HostKeyToCheck,
    KeysChanged,
    PayloadReceived,
    TransportReady,
)
from keytool.transport.packets import Incoming, Outgoing
from keytool.wire import Reader, Writer

# RFC 4253 §12 and RFC 8308 §2.3 message numbers
MSG_DISCONNECT = 1
MSG_IGNORE = 2
MSG_UNIMPLEMENTED = 3
MSG_DEBUG = 4
MSG_SERVICE_REQUEST = 5
MSG_SERVICE_ACCEPT = 6
MSG_EXT_INFO = 7
MSG_KEXINIT = 20
MSG_NEWKEYS = 21
#: RFC 4250 §4.1: 1-49 transport, 50 and up user authentication and connection
FIRST_UPPER = 50
#: RFC 4252 §5.1; seen in passing: the limits start re-keys only after it
MSG_USERAUTH_SUCCESS = 52

#: transport-layer numbers RFC 4253, 4419, 5656 and 8308 define
_KNOWN = frozenset({1, 2, 3, 4, 5, 6, 7, 20, 21, 30, 31, 32, 33, 34})
#: the connection protocol's messages (RFC 4254): global requests and replies, channels
_CONNECTION = frozenset({80, 81, 82, *range(90, 101)})
_HARMLESS = frozenset({MSG_IGNORE, MSG_DEBUG, MSG_UNIMPLEMENTED})

# RFC 4253 §11.1 disconnect reason codes
REASONS = {
    1: "host not allowed to connect",
    2: "protocol error",
    3: "key exchange failed",
    4: "reserved",
    5: "MAC error",
    6: "compression error",
    7: "service not available",
    8: "protocol version not supported",
    9: "host key not verifiable",
    10: "connection lost",
    11: "by application",
    12: "too many connections",
    13: "auth cancelled by user",
    14: "no more auth methods available",
    15: "illegal user name",
}
_PROTOCOL_ERROR = 2
_KEY_EXCHANGE_FAILED = 3

#: RFC 4253 §4.2: the version line is at most 255 bytes with CR LF; lines before it
#: are tolerated (OpenSSH allows 1024 of them)
MAX_VERSION_LINE = 255
MAX_BANNER_LINES = 1024
MAX_BANNER_LINE = 8192

SERVICE = b"ssh-userauth"

#: what sshd writes to a connection it drops past MaxStartups before closing it (older
#: versions close it without a word)
MAX_STARTUPS_NOTICE = b"Exceeded MaxStartups"
#: how much of what the server sends first is kept, to tell a dropped connection
EARLY_KEPT = 256


class _Disconnected(PeerDisconnect, Logged):
    """SSH_MSG_DISCONNECT, its description escaped as ssh logs it."""


class State(Enum):
    VERSION = auto()  # waiting for the server's version line
    KEXINIT = auto()  # our KEXINIT is out, waiting for the server's
    KEX = auto()  # waiting for the kex method's reply (kex.expected)
    HOST_KEY = auto()  # waiting for accept_host_key(); incoming bytes wait too
    NEWKEYS = auto()  # our NEWKEYS is out, waiting for the server's
    SERVICE = auto()  # SERVICE_REQUEST is out, waiting for SERVICE_ACCEPT
    OPEN = auto()  # payloads flow
    CLOSED = auto()


#: what each state accepts besides DISCONNECT (and, outside strict initial kex,
#: IGNORE, DEBUG and UNIMPLEMENTED); KEX's row is the running method's message
ACCEPTS: dict[State, frozenset[int]] = {
    State.VERSION: frozenset(),
    State.KEXINIT: frozenset({MSG_KEXINIT}),
    State.KEX: frozenset(),
    State.HOST_KEY: frozenset(),
    State.NEWKEYS: frozenset({MSG_NEWKEYS}),
    State.SERVICE: frozenset({MSG_SERVICE_ACCEPT, MSG_EXT_INFO}),
    State.OPEN: frozenset({MSG_KEXINIT, MSG_EXT_INFO}),
    State.CLOSED: frozenset(),
}


def kexinit_payload(
    kex: Sequence[str],
    host_key: Sequence[str],
    ciphers: Sequence[str],
    macs: Sequence[str],
    cookie: bytes | None = None,
    compression: Sequence[str] = ("none",),
) -> bytes:
    """SSH_MSG_KEXINIT (RFC 4253 §7.1): the same ciphers, MACs and compression both
    ways, no languages, no guessed packet follows."""
    return (
        Writer()
        .byte(MSG_KEXINIT)
        .raw(os.urandom(16) if cookie is None else cookie)
        .name_list(kex)
        .name_list(host_key)
        .name_list(ciphers)
        .name_list(ciphers)
        .name_list(macs)
        .name_list(macs)
        .name_list(compression)
        .name_list(compression)
        .name_list([])
        .name_list([])
        .boolean(False)
        .uint32(0)
        .getvalue()
    )


#: ssh's words for a list with nothing in common (kex.c), by what the list names
_NO_MATCH = {
    "key exchange method": "key exchange method",
    "host key algorithm": "host key type",
    "cipher": "cipher",
    "MAC": "MAC",
    "compression": "compression method",
}


def first_common(what: str, client: Sequence[str], server: Sequence[str]) -> str:
    """RFC 4253 §7.1: the first of the client's names the server also supports; else
    NegotiationError in ssh's words ("no matching cipher found. Their offer: ..."),
    which the adapter opens with "Unable to negotiate with HOST port PORT: "."""
    for name in client:
        if name in server:
            return name
    theirs = ",".join(printable(name, 64) for name in server[:64])
    kind = _NO_MATCH[what.split(" (", 1)[0]]
    raise NegotiationError(f"no matching {kind} found. Their offer: {theirs}")


def _guessed_right(ours: _KexInit, theirs: _KexInit) -> bool:
    """Whether a key exchange packet sent on a guess (first_kex_packet_follows) guessed
    right, by RFC 4253 §7.1: both sides list the same key exchange method first and the
    same host key algorithm first. What was negotiated does not count: a server whose
    first method is only our second guessed wrong (as OpenSSH's proposals_match has it)."""

    def first(names: Sequence[str]) -> str:
        return names[0] if names else ""

    return first(ours.kex) == first(theirs.kex) and first(ours.host_key) == first(theirs.host_key)


class _KexInit:
    """The fields of a KEXINIT payload we use (RFC 4253 §7.1)."""

    __slots__ = (
        "cipher_c2s",
        "cipher_s2c",
        "comp_c2s",
        "comp_s2c",
        "follows",
        "host_key",
        "kex",
        "mac_c2s",
        "mac_s2c",
    )

    def __init__(self, payload: bytes) -> None:
        r = Reader(payload, "KEXINIT")
        r.byte()
        r.raw(16)  # cookie
        self.kex = r.name_list()
        self.host_key = r.name_list()
        self.cipher_c2s, self.cipher_s2c = r.name_list(), r.name_list()
        self.mac_c2s, self.mac_s2c = r.name_list(), r.name_list()
        self.comp_c2s, self.comp_s2c = r.name_list(), r.name_list()
        r.name_list()  # languages client to server
        r.name_list()  # languages server to client
        self.follows = r.boolean()
        r.uint32()  # reserved
        r.done()


class ClientTransport:
    """Bytes in (``receive_data``), events and bytes out (``data_to_send``)."""

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self.session_id: bytes | None = None
        self.server_version = ""
        self.server_sig_algs: tuple[str, ...] | None = None
        self.extensions: Mapping[str, bytes] = {}
        self.algorithms: Algorithms | None = None
        self.host_key: PublicKey | None = None
        #: the first key exchange's host key blob and the server's signature of the
        #: exchange hash: what ssh shows an agent in session-bind@openssh.com
        self.host_key_blob = b""
        self.exchange_signature = b""
        self.strict_kex = False
        self.kex_count = 0  # completed key exchanges
        #: USERAUTH_SUCCESS went by; like OpenSSH, the RFC 4344 limits re-key only after
        #: it (sshd answers a KEXINIT before authentication with UNIMPLEMENTED)
        self.authenticated = False
        self._state = State.VERSION
        self._error: KeytoolError | None = None
        self._out = Outgoing()
        self._in = Incoming()
        self._outbox: list[bytes] = []
        #: upper-layer payloads held during a key exchange, or until the next one when
        #: they would take the keys past their limit
        self._pending: deque[bytes] = deque()
        self._version_buffer = bytearray()
        self._banner_lines = 0
        #: the first bytes the server sent (up to EARLY_KEPT + 1 of them), and how many
        #: it sent in all: what tells a connection dropped before any packet
        self._early = bytearray()
        self._early_count = 0
        self._client_kexinit = b""
        self._server_kexinit = b""
        self._kex: kexes.Kex | None = None
        self._kex_result: kexes.KexResult | None = None
        self._next: Algorithms | None = None
        self._next_compression = ("none", "none")
        self._rekeying = False  # a key exchange after the first is running
        self._kexinit_sent = False
        self._skip_guess = False
        self._accepts = ACCEPTS[State.VERSION]
        self._upper_ok = False
        self._trace = config.trace
        self._outbox.append(config.client_version.encode("ascii") + b"\r\n")
        # the KEXINIT does not depend on the server's: send it with our version line
        self._send_kexinit()

    # the public surface

    def set_trace(self, trace: Callable[[str], None] | None) -> None:
        """Where the steps of the protocol are told from now on (~v and ~V move the
        level a client tells them at)."""
        self._trace = trace

    def data_to_send(self) -> bytes:
        """Everything queued for the server since the last call."""
        if not self._outbox:
            return b""
        data = b"".join(self._outbox)
        self._outbox.clear()
        return data

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the server; b"" means the server closed the connection
        (end of file), which raises the error ``connection_lost`` describes."""
        self._check_open()
        if self._early_count <= EARLY_KEPT:
            self._early += data[: max(0, EARLY_KEPT + 1 - len(self._early))]
        self._early_count += len(data)
        try:
            if not data:
                raise self._closed(self._closed_message())
            if self._state is State.VERSION:
                self._version_buffer += data
                if not self._read_version():
                    return []
            else:
                self._in.feed(data)
            return self._process()
        except KeytoolError as exc:
            self._fail(exc)
            raise

    def connection_lost(self, reason: str = "") -> KeytoolError:
        """The connection is gone without an end of file seen (reset, or a failed
        read or write; ``reason`` in the system's words): the error to report, which
        every call raises from now on. The error already raised, if there was one.

        Before the server's first packet the error says what it did: ConnectionDropped
        when it sent nothing, only sshd's "Exceeded MaxStartups" or only its version
        line (a server past MaxStartups: worth another try); ProtocolError when what it
        sent was no SSH version line; else (and after a packet) DisconnectError."""
        error = self._error
        if error is None:
            error = self._closed(f"connection closed: {reason}" if reason else "connection closed")
            self._fail(error)
        return error

    @property
    def first_received(self) -> bytes:
        """The first bytes the server sent (at most EARLY_KEPT + 1 of them)."""
        return bytes(self._early)

    @property
    def bytes_received(self) -> int:
        """How many bytes the server sent in all (end of file not counted)."""
        return self._early_count

    def accept_host_key(self) -> list[Event]:
        """The adapter checked the host key: finish the key exchange."""
        self._check_open()
        if self._state is not State.HOST_KEY:
            raise ProtocolError("accept_host_key() called while no host key waits")
        try:
            self._send_newkeys()
            return self._process()
        except KeytoolError as exc:
            self._fail(exc)
            raise

    def send_payload(self, payload: bytes) -> None:
        """Queue an upper-layer message (number 50 or more) for the server."""
        self._check_open()
        if not payload or payload[0] < FIRST_UPPER:
            raise ValueError("send_payload takes user-auth and connection messages only")
        if self._state is not State.OPEN or self._kexinit_sent:
            # RFC 4253 §7.1: nothing but kex messages between our KEXINIT and NEWKEYS
            self._pending.append(payload)
            return
        if not self._pack_upper(payload):
            self._pending.append(payload)

    def rekey(self) -> None:
        """Start a key exchange now (RekeyLimit's interval), if none is running and the
        user is authenticated (sshd refuses one before)."""
        self._check_open()
        if self._state is State.OPEN and self.authenticated and not self._kexinit_sent:
            self._start_rekey()

    def disconnect(self, reason: int, description: str) -> None:
        """Queue SSH_MSG_DISCONNECT and refuse further calls."""
        self._check_open()
        self._queue_disconnect(reason, description)
        self._state = State.CLOSED
        self._error = DisconnectError("connection closed by keytool")

    def start_rekey(self) -> None:
        """Start a key exchange now (RFC 4253 §9); harmless while one runs.
        OpenSSH servers accept this only after user authentication."""
        self._check_open()
        if self._state is State.OPEN and not self._kexinit_sent:
            self._start_rekey()

    @property
    def state(self) -> State:
        return self._state

    # plumbing

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error

    def _fail(self, exc: KeytoolError) -> None:
        if self._error is None:
            self._error = exc
            if self._state is not State.CLOSED and not isinstance(exc, DisconnectError):
                reason = (
                    _KEY_EXCHANGE_FAILED if isinstance(exc, NegotiationError) else _PROTOCOL_ERROR
                )
                with contextlib.suppress(KeytoolError):
                    self._queue_disconnect(reason, str(exc))
        self._state = State.CLOSED

    def _queue_disconnect(self, reason: int, description: str) -> None:
        payload = (
            Writer()
            .byte(MSG_DISCONNECT)
            .uint32(reason)
            .string(description[:200].encode("utf-8", "replace"))
            .string(b"")
            .getvalue()
        )
        self._outbox.append(self._out.pack(payload))

    def _closed_message(self) -> str:
        where = {
            State.VERSION: " before sending its version line",
            State.KEXINIT: " during key exchange",
            State.KEX: " during key exchange",
            State.HOST_KEY: " during key exchange",
            State.NEWKEYS: " during key exchange",
            State.SERVICE: " before accepting the ssh-userauth service",
        }.get(self._state, "")
        return f"connection closed by the server{where}"

    def _closed(self, message: str) -> KeytoolError:
        """The error for a connection the server ended (``message`` says where):
        classified by what the server sent, as ``connection_lost`` tells. Nothing more
        is sent (no DISCONNECT to a server that is gone)."""
        self._state = State.CLOSED
        said = bytes(self._early) if self._early_count <= EARLY_KEPT else None
        if said is not None:
            line, newline, rest = said.partition(b"\n")
            if not said.strip() or (line.startswith(b"SSH-") and newline and not rest):
                return ConnectionDropped(message)
            if said.strip() == MAX_STARTUPS_NOTICE:
                return ConnectionDropped(f"{message} (it said: {MAX_STARTUPS_NOTICE.decode()})")
        if self.server_version:
            return DisconnectError(message)
        count = self._early_count
        return ProtocolError(
            f"the server sent no SSH version line ({count} byte{'s' if count != 1 else ''} "
            "of something else, then it closed the connection: is it an SSH server?)"
        )

    def _set_state(self, state: State) -> None:
        self._state = state
        self._accepts = ACCEPTS[state]
        # RFC 4253 §7.1: the server may send upper-layer messages until its own KEXINIT
        self._upper_ok = state is State.OPEN or (state is State.KEXINIT and self._rekeying)

    def _note(self, line: str) -> None:
        if self._trace is not None:
            self._trace(line)

    # version exchange, RFC 4253 §4.2

    def _read_version(self) -> bool:
        buffer = self._version_buffer
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > MAX_BANNER_LINE:
                    raise ProtocolError(
                        "the server sent no SSH version line (is it an SSH server?)"
                    )
                return False
            line = bytes(buffer[:end]).rstrip(b"\r")
            del buffer[: end + 1]
            if line.startswith(b"SSH-"):
                break
            self._banner_lines += 1
            if self._banner_lines > MAX_BANNER_LINES or end > MAX_BANNER_LINE:
                raise ProtocolError("the server sent no SSH version line (is it an SSH server?)")
            self._note(f"server banner line: {printable(line.decode('utf-8', 'replace'), 256)}")
        if len(line) + 2 > MAX_VERSION_LINE:
            raise ProtocolError("the server's version line is longer than 255 bytes")
        try:
            version = line.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError("the server's version line is not ASCII") from None
        if not version.isprintable():
            raise ProtocolError("the server's version line has control characters")
        # RFC 4253 §5.1: 1.99 means 2.0 as well
        if not (version.startswith("SSH-2.0-") or version.startswith("SSH-1.99-")):
            raise ProtocolError(
                f"the server speaks an unsupported protocol version: {printable(version, 64)}"
            )
        self.server_version = version
        self._note(f"client version: {self.config.client_version}")
        self._note(f"server version: {version}")
        self._set_state(State.KEXINIT)
        self._in.feed(buffer)
        buffer.clear()
        return True

    # the packet loop

    def _process(self) -> list[Event]:
        events: list[Event] = []
        incoming = self._in
        while self._state is not State.HOST_KEY and self._state is not State.CLOSED:
            payload = incoming.next_payload()
            if payload is None:
                break
            if not payload:
                raise ProtocolError("the server sent an empty packet")
            number = payload[0]
            if self.authenticated and number >= FIRST_UPPER and number not in _CONNECTION:
                # RFC 4253 §11.4, as ssh answers it once logged in: UNIMPLEMENTED, and on
                self._unimplemented()
            elif number >= FIRST_UPPER and self._upper_ok:
                events.append(PayloadReceived(payload))
                if number == MSG_USERAUTH_SUCCESS and not self.authenticated:
                    self.authenticated = True
                    # zlib@openssh.com starts here, both ways (PROTOCOL §2.2)
                    incoming.start_zlib()
                    self._out.start_zlib()
                    if incoming.zlib_started or self._out.zlib_started:
                        self._note("compression: zlib from here on")
            elif self._skip_guess and 30 <= number <= 49 and self._state is State.KEX:
                self._skip_guess = False  # RFC 4253 §7: the server guessed wrong; ignore it
            elif number in self._accepts or (
                self._kex is not None and self._state is State.KEX and number == self._kex.expected
            ):
                self._dispatch(number, payload, events)
            else:
                self._other(number, payload, events)
            if (
                incoming.needs_rekey
                and self.authenticated
                and self._state is State.OPEN
                and not self._kexinit_sent
            ):
                self._start_rekey()
        return events

    def _other(self, number: int, payload: bytes, events: list[Event]) -> None:
        if number == MSG_DISCONNECT:
            self._on_disconnect(payload)
        strict_initial = self.strict_kex and self.kex_count == 0
        if number in _HARMLESS and not strict_initial:
            if number == MSG_DEBUG:
                r = Reader(payload, "DEBUG message")
                r.byte()
                r.boolean()
                # RFC 4253 §11.3 says UTF-8; any bytes are a note all the same, shown
                # as ssh -v logs it ("Remote: %.900s"), whatever always_display says
                message = r.peer_text()
                self._note(f"server debug message: {logged(message, 900)}")
            elif number == MSG_UNIMPLEMENTED:
                self._note("the server did not understand one of our messages")
            return
        if (
            number not in _KNOWN
            and number < FIRST_UPPER
            and not strict_initial
            and self._state is State.OPEN
        ):
            # RFC 4253 §11.4: answer what we do not know with UNIMPLEMENTED
            self._unimplemented()
            return
        what = "during the initial strict key exchange" if strict_initial else "here"
        raise ProtocolError(
            f"unexpected message {number} from the server {what} (state {self._state.name.lower()})"
        )

    def _unimplemented(self) -> None:
        """SSH_MSG_UNIMPLEMENTED for the packet just read (its sequence number)."""
        seq = (self._in.seq - 1) & 0xFFFFFFFF
        reply = Writer().byte(MSG_UNIMPLEMENTED).uint32(seq).getvalue()
        self._outbox.append(self._out.pack(reply))

    def _on_disconnect(self, payload: bytes) -> None:
        try:
            r = Reader(payload, "DISCONNECT")
            r.byte()
            reason = r.uint32()
            # any bytes: shown as ssh logs them ("Received disconnect ...: %.400s")
            description = r.peer_text()
        except FormatError:
            raise PeerDisconnect("disconnected by the server") from None
        name = REASONS.get(reason, f"reason {reason}")
        text = logged(description, 400)
        detail = f"{text} ({name})" if text else name
        raise _Disconnected(f"disconnected by the server: {detail}")

    def _dispatch(self, number: int, payload: bytes, events: list[Event]) -> None:
        if number == MSG_KEXINIT:
            self._on_kexinit(payload)
        elif number == MSG_NEWKEYS:
            self._on_newkeys(payload, events)
        elif number == MSG_SERVICE_ACCEPT:
            self._on_service_accept(payload, events)
        elif number == MSG_EXT_INFO:
            self._on_ext_info(payload, events)
        else:
            self._on_kex_message(number, payload, events)

    # key exchange, RFC 4253 §7

    def _send_kexinit(self) -> None:
        config = self.config
        kex_names = list(config.kex_algorithms)
        if self.kex_count == 0:
            kex_names += [EXT_INFO_C, KEX_STRICT_C]
        payload = kexinit_payload(
            kex_names,
            config.host_key_algorithms,
            config.ciphers,
            config.macs,
            compression=config.compression,
        )
        self._client_kexinit = payload
        self._server_kexinit = b""
        self._kexinit_sent = True
        self._outbox.append(self._out.pack(payload))

    def _start_rekey(self) -> None:
        self._note("re-keying (RFC 4344 limit reached or asked for)")
        self._rekeying = True
        self._send_kexinit()
        self._set_state(State.KEXINIT)

    def _on_kexinit(self, payload: bytes) -> None:
        if self._state is State.OPEN:
            # the server starts a re-key (RFC 4253 §9)
            self._note("the server started a re-key")
            self._rekeying = True
            self._send_kexinit()
        theirs = _KexInit(payload)
        self._server_kexinit = payload
        if self.kex_count == 0:
            self.strict_kex = KEX_STRICT_S in theirs.kex
            if self.strict_kex and self._in.seq != 1:
                raise ProtocolError(
                    "strict key exchange: the server's KEXINIT was not its first packet"
                )
        config = self.config
        kex_name = first_common("key exchange method", config.kex_algorithms, theirs.kex)
        host_key = first_common("host key algorithm", config.host_key_algorithms, theirs.host_key)
        cipher_out = first_common("cipher (client to server)", config.ciphers, theirs.cipher_c2s)
        cipher_in = first_common("cipher (server to client)", config.ciphers, theirs.cipher_s2c)
        mac_out = mac_in = IMPLICIT_MAC
        if not cipher_spec(cipher_out).aead:
            mac_out = first_common("MAC (client to server)", config.macs, theirs.mac_c2s)
        if not cipher_spec(cipher_in).aead:
            mac_in = first_common("MAC (server to client)", config.macs, theirs.mac_s2c)
        comp_out = first_common(
            "compression (client to server)", config.compression, theirs.comp_c2s
        )
        comp_in = first_common(
            "compression (server to client)", config.compression, theirs.comp_s2c
        )
        self._next_compression = (comp_out, comp_in)
        compression = comp_out if comp_out == comp_in else f"{comp_out} / {comp_in}"
        # RFC 4253 §7: a wrong guess by the server means its next kex packet is ignored
        self._skip_guess = theirs.follows and not _guessed_right(
            _KexInit(self._client_kexinit), theirs
        )
        self._next = Algorithms(
            kex_name, host_key, cipher_out, cipher_in, mac_out, mac_in, compression, self.strict_kex
        )
        self._note(
            f"negotiation: key exchange {kex_name}, host key {host_key},"
            f" cipher {cipher_out} / {cipher_in}, MAC {mac_out} / {mac_in},"
            f" compression {compression}, strict kex {'yes' if self.strict_kex else 'no'}"
        )
        if self._skip_guess:
            self._note("the server guessed its key exchange wrong: its next kex packet is ignored")
        context = kexes.KexContext(
            self.config.client_version.encode("ascii"),
            self.server_version.encode("ascii"),
            self._client_kexinit,
            payload,
        )
        self._kex = kexes.make_kex(kex_name, context)
        self._outbox.append(self._out.pack(self._kex.start()))
        self._set_state(State.KEX)

    def _on_kex_message(self, number: int, payload: bytes, events: list[Event]) -> None:
        kex = self._kex
        assert kex is not None and self._next is not None
        # only the message the kex expects comes here (_process): a GROUP is the first
        # (a second one, where the REPLY belongs, is an unexpected message 31)
        if isinstance(kex, kexes.DhGroupExchange) and number == kexes.KEX_DH_GEX_GROUP:
            self._outbox.append(self._out.pack(kex.group(payload)))
            return
        result = kex.finish(payload)
        key = self._verify_host_key(result, self._next.host_key)
        self._kex_result = result
        if self.session_id is None:
            self.session_id = result.exchange_hash
        if self.host_key is None:
            self.host_key = key
            self.host_key_blob = result.host_key_blob
            self.exchange_signature = result.signature
            self._set_state(State.HOST_KEY)
            events.append(HostKeyToCheck(key, self._next.host_key))
            return
        # RFC 4253 §9 lets the key change on re-key only if it verifies again;
        # keytool insists on the key the user accepted
        if key != self.host_key:
            raise ProtocolError("the server's host key changed during a re-key")
        self._send_newkeys()

    def _verify_host_key(self, result: kexes.KexResult, algorithm: str) -> PublicKey:
        try:
            key = public_from_wire(result.host_key_blob)
        except FormatError as exc:
            raise ProtocolError(f"the server's host key is unusable: {exc}") from None
        from keytool.keys.cert import key_type_of_algorithm

        if key.key_type != key_type_of_algorithm(algorithm):
            raise ProtocolError(
                f"the server sent a {key.key_type} host key for algorithm {algorithm}"
            )
        if not key.verify(result.signature, result.exchange_hash, allowed=(algorithm,)):
            raise ProtocolError(
                f"the server's {algorithm} signature of the exchange hash does not verify:"
                " it does not hold its host key"
            )
        from keytool.keys.fingerprint import fingerprint

        what = "host certificate" if key.plain is not key else "host key"
        self._note(f"{what}: {key.key_type} {fingerprint(key)} (signature verified)")
        return key

    def _send_newkeys(self) -> None:
        result, algorithms = self._kex_result, self._next
        assert result is not None and algorithms is not None
        self._outbox.append(self._out.pack(bytes((MSG_NEWKEYS,))))
        cipher = self._derive(result, algorithms.cipher_out, algorithms.mac_out, b"A", b"C", b"E")
        self._out.new_keys(
            cipher, self._rekey_limit(algorithms.cipher_out), reset_seq=self.strict_kex
        )
        self._out.compression = self._next_compression[0]
        if self.authenticated:
            self._out.restart_zlib()
        self._kexinit_sent = False
        self._set_state(State.NEWKEYS)

    def _on_newkeys(self, payload: bytes, events: list[Event]) -> None:
        if len(payload) != 1:
            raise ProtocolError("malformed NEWKEYS from the server")
        result, algorithms = self._kex_result, self._next
        assert result is not None and algorithms is not None
        cipher = self._derive(result, algorithms.cipher_in, algorithms.mac_in, b"B", b"D", b"F")
        self._in.new_keys(
            cipher, self._rekey_limit(algorithms.cipher_in), reset_seq=self.strict_kex
        )
        self._in.compression = self._next_compression[1]
        if self.authenticated:
            self._in.restart_zlib()
        first = self.kex_count == 0
        self.kex_count += 1
        self.algorithms = algorithms
        self._kex = None
        self._kex_result = None
        self._server_kexinit = b""
        events.append(KeysChanged(algorithms, rekey=not first))
        if first:
            assert self.session_id is not None
            self._note(f"session key generation done; session id {self.session_id.hex()}")
            self._outbox.append(
                self._out.pack(Writer().byte(MSG_SERVICE_REQUEST).string(SERVICE).getvalue())
            )
            self._set_state(State.SERVICE)
            return
        self._note(f"re-key {self.kex_count - 1} done")
        self._rekeying = False
        self._set_state(State.OPEN)
        self._flush_pending()

    def _derive(
        self, result: kexes.KexResult, cipher: str, mac: str, iv: bytes, key: bytes, integ: bytes
    ) -> PacketCipher:
        spec = cipher_spec(cipher)
        assert self.session_id is not None

        def make(letter: bytes, size: int) -> bytes:
            if size == 0:
                return b""
            return kexes.derive_key(
                result.hash_name,
                result.shared_secret,
                result.exchange_hash,
                self.session_id or b"",
                letter,
                size,
            )

        mac_key = b"" if spec.aead else make(integ, mac_spec(mac).key_size)
        return make_cipher(cipher, make(key, spec.key_size), make(iv, spec.iv_size), mac, mac_key)

    def _rekey_limit(self, cipher: str) -> int:
        limit = cipher_spec(cipher).rekey_bytes
        if self.config.rekey_bytes is not None:
            limit = min(limit, self.config.rekey_bytes)
        return limit

    def _pack_upper(self, payload: bytes) -> bool:
        """Pack an upper-layer payload under the current keys; False, and a re-key
        started instead, when it would take them past their limit (RekeyLimit or the
        RFC 4344 defaults): as ssh, new keys come before the packet, not after it."""
        out = self._out
        if self.authenticated and out.would_pass_limit(len(payload)):
            self._start_rekey()
            return False
        self._outbox.append(out.pack(payload))
        if self.authenticated and out.needs_rekey:
            self._start_rekey()
        return True

    def _flush_pending(self) -> None:
        """Send what waited for the key exchange, as much as the new keys' limit takes;
        the rest waits for the next key exchange, which reaching the limit starts."""
        pending = self._pending
        while pending and not self._kexinit_sent:
            if self._pack_upper(pending[0]):
                pending.popleft()

    # after the first key exchange

    def _on_service_accept(self, payload: bytes, events: list[Event]) -> None:
        r = Reader(payload, "SERVICE_ACCEPT")
        r.byte()
        service = r.string()
        r.done()
        if service != SERVICE:
            raise ProtocolError("the server accepted a service we did not ask for")
        self._note("the server accepted the ssh-userauth service")
        self._set_state(State.OPEN)
        assert self.session_id is not None
        assert self.algorithms is not None and self.host_key is not None
        events.append(
            TransportReady(
                self.session_id,
                self.server_sig_algs,
                dict(self.extensions),
                self.algorithms,
                self.server_version,
                self.host_key,
            )
        )
        self._flush_pending()

    def _on_ext_info(self, payload: bytes, events: list[Event]) -> None:
        # RFC 8308 §2.3: uint32 count, then (string name, string value) pairs
        r = Reader(payload, "EXT_INFO")
        r.byte()
        count = r.uint32()
        extensions = dict(self.extensions)
        for _ in range(count):
            name = r.ascii()
            extensions[name] = r.string()
        r.done()
        self.extensions = extensions
        if "server-sig-algs" in extensions:
            names = extensions["server-sig-algs"].decode("ascii", "replace")
            self.server_sig_algs = tuple(name for name in names.split(",") if name)
        if self._trace is not None:
            self._note(
                "server extensions: "
                + ", ".join(printable(name, 64) for name in extensions)
                + (
                    f"; server-sig-algs {','.join(self.server_sig_algs)}"
                    if self.server_sig_algs
                    else ""
                )
            )
        events.append(ExtInfoReceived(extensions))

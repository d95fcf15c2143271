"""OpenSSH's connection-sharing protocol (PROTOCOL.mux, version 4), both ends, sans-IO.

A master (``ssh -M``, ``keytool exec -M``) listens on a Unix-domain socket, the
ControlPath; each client speaking this protocol there uses the master's connection
instead of opening its own. Every message is ``uint32 length, uint32 type, body`` in
SSH wire types. A passenger session's request (``NEW_SESSION``) is followed by the
client's stdin, stdout and stderr descriptors, each passed in a message of its own
that carries one byte of data (OpenSSH's ``mm_send_fd``): that byte is in the stream
too, and ``PacketReader.take_markers`` takes it off.

Requests come from the client (``parse_request`` on the master's side, ``*_request``
builders on the client's); replies from the master (``parse_reply`` / ``*_reply``).
"""

from __future__ import annotations

import struct

from keytool.errors import FormatError
from keytool.record import Record, init
from keytool.wire import Reader, Writer

VERSION = 4

HELLO = 0x00000001
NEW_SESSION = 0x10000002
ALIVE_CHECK = 0x10000004
TERMINATE = 0x10000005
OPEN_FWD = 0x10000006
CLOSE_FWD = 0x10000007
NEW_STDIO_FWD = 0x10000008
STOP_LISTENING = 0x10000009
PROXY = 0x1000000F

S_OK = 0x80000001
S_PERMISSION_DENIED = 0x80000002
S_FAILURE = 0x80000003
S_EXIT_MESSAGE = 0x80000004
S_ALIVE = 0x80000005
S_SESSION_OPENED = 0x80000006
S_REMOTE_PORT = 0x80000007
S_TTY_ALLOC_FAIL = 0x80000008
S_PROXY = 0x8000000F

FWD_LOCAL = 1
FWD_REMOTE = 2
FWD_DYNAMIC = 3
#: a forward's port field saying that its host field is a socket path
PORT_STREAMLOCAL = 0xFFFFFFFE
#: no escape character for a session
NO_ESCAPE = 0xFFFFFFFF

#: the largest message either end takes (OpenSSH's limit on a mux packet)
MAX_PACKET = 256 * 1024
#: environment strings a session request may carry (as OpenSSH's master)
MAX_ENV = 4096

_U32 = struct.Struct(">I")


def frame(body: bytes) -> bytes:
    """One message on the socket: its length, then ``body`` (type first)."""
    return _U32.pack(len(body)) + body


class PacketReader:
    """Splits the bytes read from a mux socket into message bodies."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next(self) -> bytes | None:
        """The next whole message body, or None until more bytes come."""
        if len(self._buffer) < 4:
            return None
        length: int = _U32.unpack_from(self._buffer)[0]
        if length < 4 or length > MAX_PACKET:
            raise FormatError(f"mux message of {length} bytes")
        if len(self._buffer) < 4 + length:
            return None
        body = bytes(self._buffer[4 : 4 + length])
        del self._buffer[: 4 + length]
        return body

    def take_markers(self, count: int) -> bool:
        """Take the ``count`` bytes that came with passed descriptors, once there."""
        if len(self._buffer) < count:
            return False
        del self._buffer[:count]
        return True

    @property
    def pending(self) -> int:
        return len(self._buffer)


# ---------------------------------------------------------------- requests


class Hello(Record):
    __slots__ = ("version",)
    version: int

    def __init__(self, version: int) -> None:
        init(self, version=version)


class NewSession(Record):
    """A passenger session: the master runs ``command`` (a shell when empty, a
    subsystem with ``subsystem``) on its connection, with the client's descriptors."""

    __slots__ = (
        "command",
        "env",
        "escape_char",
        "request_id",
        "subsystem",
        "term",
        "want_agent",
        "want_tty",
        "want_x11",
    )
    request_id: int
    want_tty: bool
    want_x11: bool
    want_agent: bool
    subsystem: bool
    escape_char: int  # NO_ESCAPE for none
    term: str
    command: bytes
    env: tuple[str, ...]  # NAME=value

    def __init__(
        self,
        request_id: int,
        command: bytes,
        want_tty: bool = False,
        want_x11: bool = False,
        want_agent: bool = False,
        subsystem: bool = False,
        escape_char: int = NO_ESCAPE,
        term: str = "",
        env: tuple[str, ...] = (),
    ) -> None:
        init(
            self,
            request_id=request_id,
            command=command,
            want_tty=want_tty,
            want_x11=want_x11,
            want_agent=want_agent,
            subsystem=subsystem,
            escape_char=escape_char,
            term=term,
            env=env,
        )


class Forward(Record):
    """OPEN_FWD and CLOSE_FWD: a -L, -R or -D for the master's connection. A port of
    ``PORT_STREAMLOCAL`` makes the host beside it a socket path."""

    __slots__ = ("close", "connect_host", "connect_port", "kind", "listen_host", "listen_port")
    close: bool
    kind: int
    listen_host: str
    listen_port: int
    connect_host: str
    connect_port: int

    def __init__(
        self,
        kind: int,
        listen_host: str,
        listen_port: int,
        connect_host: str = "",
        connect_port: int = 0,
        close: bool = False,
    ) -> None:
        init(
            self,
            close=close,
            kind=kind,
            listen_host=listen_host,
            listen_port=listen_port,
            connect_host=connect_host,
            connect_port=connect_port,
        )


class StdioForward(Record):
    """ssh -W through the master: the client's stdin and stdout to host:port."""

    __slots__ = ("host", "port")
    host: str
    port: int

    def __init__(self, host: str, port: int) -> None:
        init(self, host=host, port=port)


class Request(Record):
    """A request with its id: ``kind`` is the message type, ``detail`` what it
    carries (a NewSession, Forward or StdioForward; None for the others)."""

    __slots__ = ("detail", "kind", "request_id")
    kind: int
    request_id: int
    detail: NewSession | Forward | StdioForward | None

    def __init__(
        self, kind: int, request_id: int, detail: NewSession | Forward | StdioForward | None = None
    ) -> None:
        init(self, kind=kind, request_id=request_id, detail=detail)

    @property
    def descriptors(self) -> int:
        """How many descriptors the client passes after this request."""
        if self.kind == NEW_SESSION:
            return 3
        if self.kind == NEW_STDIO_FWD:
            return 2
        return 0


def parse_hello(body: bytes) -> Hello:
    """The peer's first message; its extensions (none are defined) are skipped."""
    reader = Reader(body, "mux hello")
    kind = reader.uint32()
    if kind != HELLO:
        raise FormatError(f"expected a mux hello, got message type {kind:#010x}")
    version = reader.uint32()
    while reader.remaining:
        reader.string()
        reader.string()
    return Hello(version)


def hello_problem(body: bytes) -> str | None:
    """Why a client cannot use the master whose hello this is, in ssh's words, or
    None for a good one: another message type, another version, a bad extension (ssh
    then connects itself). FormatError when it is cut short of its type or version
    (there ssh gives up)."""
    reader = Reader(body, "mux hello")
    kind = reader.uint32()
    if kind != HELLO:
        return f"expected HELLO ({HELLO}) got {kind}"
    version = reader.uint32()
    if version != VERSION:
        return f"Unsupported multiplexing protocol version {version} (expected {VERSION})"
    try:
        while reader.remaining:
            reader.string()
            reader.string()
    except FormatError as exc:
        return f"bad hello extension: {exc}"
    return None


def parse_request(body: bytes) -> Request:
    """A client's request (after its hello); FormatError when malformed."""
    reader = Reader(body, "mux request")
    kind = reader.uint32()
    rid = reader.uint32()
    detail: NewSession | Forward | StdioForward | None = None
    if kind == NEW_SESSION:
        reader.string()  # reserved
        tty, x11, agent, subsystem = (reader.uint32() != 0 for _ in range(4))
        escape = reader.uint32()
        term = reader.text()
        command = reader.string()
        env: list[str] = []
        while reader.remaining and len(env) < MAX_ENV:
            env.append(reader.string().decode("utf-8", "surrogateescape"))
        detail = NewSession(rid, command, tty, x11, agent, subsystem, escape, term, tuple(env))
        return Request(kind, rid, detail)
    if kind in (OPEN_FWD, CLOSE_FWD):
        fwd_kind = reader.uint32()
        if fwd_kind not in (FWD_LOCAL, FWD_REMOTE, FWD_DYNAMIC):
            raise FormatError(f"unknown forward type {fwd_kind}")
        listen_host = reader.text()
        listen_port = reader.uint32()
        connect_host = reader.text()
        connect_port = reader.uint32()
        detail = Forward(
            fwd_kind, listen_host, listen_port, connect_host, connect_port, kind == CLOSE_FWD
        )
    elif kind == NEW_STDIO_FWD:
        reader.string()  # reserved
        host = reader.text()
        port = reader.uint32()
        detail = StdioForward(host, port)
    elif kind not in (ALIVE_CHECK, TERMINATE, STOP_LISTENING, PROXY):
        return Request(kind, rid)  # unknown: the master answers "unsupported request"
    reader.done()
    return Request(kind, rid, detail)


def hello() -> bytes:
    return frame(Writer().uint32(HELLO).uint32(VERSION).getvalue())


def simple_request(kind: int, rid: int) -> bytes:
    """ALIVE_CHECK, TERMINATE, STOP_LISTENING or PROXY."""
    return frame(Writer().uint32(kind).uint32(rid).getvalue())


def session_request(session: NewSession) -> bytes:
    writer = Writer().uint32(NEW_SESSION).uint32(session.request_id).string(b"")
    for flag in (session.want_tty, session.want_x11, session.want_agent, session.subsystem):
        writer.uint32(1 if flag else 0)
    writer.uint32(session.escape_char).string(session.term).string(session.command)
    for entry in session.env:
        writer.string(entry.encode("utf-8", "surrogateescape"))
    return frame(writer.getvalue())


def forward_request(rid: int, forward: Forward) -> bytes:
    writer = Writer().uint32(CLOSE_FWD if forward.close else OPEN_FWD).uint32(rid)
    writer.uint32(forward.kind).string(forward.listen_host).uint32(forward.listen_port)
    writer.string(forward.connect_host).uint32(forward.connect_port)
    return frame(writer.getvalue())


def stdio_forward_request(rid: int, host: str, port: int) -> bytes:
    writer = Writer().uint32(NEW_STDIO_FWD).uint32(rid).string(b"")
    return frame(writer.string(host).uint32(port).getvalue())


# ---------------------------------------------------------------- replies


class Reply(Record):
    """A master's message: ``kind``, the request or session id it is about
    (``ident``), and a number (pid, session id, port, exit status) or a reason."""

    __slots__ = ("ident", "kind", "reason", "value")
    kind: int
    ident: int
    value: int
    reason: str

    def __init__(self, kind: int, ident: int, value: int = 0, reason: str = "") -> None:
        init(self, kind=kind, ident=ident, value=value, reason=reason)


_WITH_VALUE = (S_EXIT_MESSAGE, S_ALIVE, S_SESSION_OPENED, S_REMOTE_PORT)
_WITH_REASON = (S_PERMISSION_DENIED, S_FAILURE)


def parse_reply(body: bytes) -> Reply:
    reader = Reader(body, "mux reply")
    kind = reader.uint32()
    ident = reader.uint32()
    if kind in _WITH_VALUE:
        return Reply(kind, ident, reader.uint32())
    if kind in _WITH_REASON:
        return Reply(kind, ident, reason=reader.string().decode("utf-8", "replace"))
    return Reply(kind, ident)


def ok_reply(rid: int) -> bytes:
    return frame(Writer().uint32(S_OK).uint32(rid).getvalue())


def error_reply(kind: int, rid: int, reason: str) -> bytes:
    """S_FAILURE or S_PERMISSION_DENIED with its reason."""
    return frame(Writer().uint32(kind).uint32(rid).string(reason).getvalue())


def value_reply(kind: int, ident: int, value: int) -> bytes:
    """S_ALIVE (pid), S_SESSION_OPENED (session id), S_REMOTE_PORT (port) or
    S_EXIT_MESSAGE (status), after the request or session id."""
    return frame(Writer().uint32(kind).uint32(ident).uint32(value & 0xFFFFFFFF).getvalue())


def tty_failed(session_id: int) -> bytes:
    return frame(Writer().uint32(S_TTY_ALLOC_FAIL).uint32(session_id).getvalue())

"""What ``keytool.transport.channels.Connection`` reports (RFC 4254): one record per
event, the ``ChannelEvent`` union of them, the port a remote forward was given
(``allocated_port``) and how a remote command ended (``ExecResult``).
"""

from __future__ import annotations

from keytool.errors import FormatError, ProtocolError
from keytool.record import Record, init
from keytool.transport.channel_messages import OPEN_FAILURE_REASONS
from keytool.wire import Reader


class ChannelOpened(Record):
    __slots__ = ("channel",)
    channel: int

    def __init__(self, channel: int) -> None:
        init(self, channel=channel)


class ChannelOpenFailed(Record):
    __slots__ = ("channel", "description", "reason")
    channel: int
    reason: int
    description: str

    def __init__(self, channel: int, reason: int, description: str) -> None:
        init(self, channel=channel, reason=reason, description=description)

    def explain(self) -> str:
        """``reason: description``, as ssh prints an open failure."""
        reason = OPEN_FAILURE_REASONS.get(self.reason, f"reason {self.reason}")
        return f"{reason}: {self.description}" if self.description else reason


class ChannelData(Record):
    __slots__ = ("channel", "data")
    channel: int
    data: bytes

    def __init__(self, channel: int, data: bytes) -> None:
        init(self, channel=channel, data=data)


class ChannelExtendedData(Record):
    """Extended data; code 1 is stderr (RFC 4254 §5.2)."""

    __slots__ = ("channel", "code", "data")
    channel: int
    code: int
    data: bytes

    def __init__(self, channel: int, code: int, data: bytes) -> None:
        init(self, channel=channel, code=code, data=data)


class ChannelEof(Record):
    __slots__ = ("channel",)
    channel: int

    def __init__(self, channel: int) -> None:
        init(self, channel=channel)


class ChannelClosed(Record):
    """Both sides have closed; the channel number is free again."""

    __slots__ = ("channel",)
    channel: int

    def __init__(self, channel: int) -> None:
        init(self, channel=channel)


class GlobalReply(Record):
    """The server's answer to our global request (§4): ``ok`` and what came with a
    success (tcpip-forward to port 0: the port allocated). Not a channel's: -1."""

    __slots__ = ("channel", "data", "ok", "request")
    channel: int
    request: str
    ok: bool
    data: bytes

    def __init__(self, request: str, ok: bool, data: bytes) -> None:
        init(self, channel=-1, request=request, ok=ok, data=data)


class ChannelOpenRequest(Record):
    """The server opens a "forwarded-tcpip" channel (§7.2): a connection came to the
    port it listens on for us; or a "forwarded-streamlocal@openssh.com" one (``path``
    set: the socket it listens on for us, PROTOCOL §2.4). Answer with ``confirm_open``
    or ``refuse_open``."""

    __slots__ = (
        "agent",
        "channel",
        "connected_address",
        "connected_port",
        "originator",
        "originator_port",
        "path",
        "x11",
    )
    channel: int
    connected_address: str
    connected_port: int
    originator: str
    originator_port: int
    path: str | None
    agent: bool  # an "auth-agent@openssh.com" channel: to our agent (ssh -A)
    x11: bool  # an "x11" channel: from an X client at the server (ssh -X)

    def __init__(
        self,
        channel: int,
        connected_address: str,
        connected_port: int,
        originator: str,
        originator_port: int,
        path: str | None = None,
        agent: bool = False,
        x11: bool = False,
    ) -> None:
        init(
            self,
            channel=channel,
            connected_address=connected_address,
            connected_port=connected_port,
            originator=originator,
            originator_port=originator_port,
            path=path,
            agent=agent,
            x11=x11,
        )


class UnaskedOpen(Record):
    """The server opened a channel of a kind we never asked for (refused already):
    an agent or X11 channel without -A or -X is what a malicious server would try."""

    __slots__ = ("channel", "kind")
    channel: int
    kind: str

    def __init__(self, kind: str) -> None:
        init(self, channel=-1, kind=kind)


class ChannelRequestReply(Record):
    """The server's answer to one of our requests that wanted a reply, in order (§5.4)."""

    __slots__ = ("channel", "ok", "request")
    channel: int
    request: str
    ok: bool

    def __init__(self, channel: int, request: str, ok: bool) -> None:
        init(self, channel=channel, request=request, ok=ok)


class ExitStatus(Record):
    __slots__ = ("channel", "status")
    channel: int
    status: int

    def __init__(self, channel: int, status: int) -> None:
        init(self, channel=channel, status=status)


class ExitSignal(Record):
    """RFC 4254 §6.10: the signal name without the "SIG" prefix."""

    __slots__ = ("channel", "core_dumped", "message", "signal")
    channel: int
    signal: str
    core_dumped: bool
    message: str

    def __init__(self, channel: int, signal: str, core_dumped: bool, message: str) -> None:
        init(self, channel=channel, signal=signal, core_dumped=core_dumped, message=message)


class WindowAdjusted(Record):
    """The server let us send more; buffered data may have gone out."""

    __slots__ = ("channel",)
    channel: int

    def __init__(self, channel: int) -> None:
        init(self, channel=channel)


class HostKeysAnnounced(Record):
    """The server listed all its host keys ("hostkeys-00@openssh.com", PROTOCOL §2.5):
    ``body`` holds their blobs, each an SSH string. Not a channel's: -1."""

    __slots__ = ("body", "channel")
    channel: int
    body: bytes

    def __init__(self, body: bytes) -> None:
        init(self, channel=-1, body=body)


ChannelEvent = (
    ChannelOpened
    | ChannelOpenFailed
    | ChannelData
    | ChannelExtendedData
    | ChannelEof
    | ChannelClosed
    | ChannelRequestReply
    | ExitStatus
    | ExitSignal
    | WindowAdjusted
    | GlobalReply
    | ChannelOpenRequest
    | UnaskedOpen
    | HostKeysAnnounced
)


class ExecResult(Record):
    """How a remote command ended: ``exit_status`` None if it died of ``exit_signal``."""

    __slots__ = ("exit_signal", "exit_status", "signal_message", "stderr", "stdout")
    exit_status: int | None
    exit_signal: str | None
    signal_message: str
    stdout: bytes
    stderr: bytes

    def __init__(
        self,
        exit_status: int | None,
        exit_signal: str | None = None,
        signal_message: str = "",
        stdout: bytes = b"",
        stderr: bytes = b"",
    ) -> None:
        init(
            self,
            exit_status=exit_status,
            exit_signal=exit_signal,
            signal_message=signal_message,
            stdout=stdout,
            stderr=stderr,
        )

    @property
    def ssh_exit_code(self) -> int:
        """What ssh itself would exit with: the status (its low 8 bits, all a process
        status holds: a server may send any uint32), or 255 without one."""
        return self.exit_status & 0xFF if self.exit_status is not None else 255


def allocated_port(reply: GlobalReply) -> int:
    """The port a server allocated for a tcpip-forward to port 0 (§7.1: uint32 port)."""
    try:
        r = Reader(reply.data, "tcpip-forward reply")
        port = r.uint32()
        r.done()
    except FormatError:
        raise ProtocolError("the server allocated a port but did not say which") from None
    if not 0 < port < 65536:
        raise ProtocolError(f"the server allocated port {port}")
    return port

"""The connection protocol, client side (RFC 4254), without I/O.

Payloads in (``receive``), events out; payloads to send wait in one outbox
(``data_to_send``), which the adapter drains after every call, because SSH sends
unasked: window adjustments, replies to the server's global and channel requests,
the close that answers the server's close.

What a client that runs commands and forwards ports needs: session channels with
exec or a subsystem, direct-tcpip channels (ssh -L, -W), and remote forwards (ssh -R):
the "tcpip-forward" global request and the "forwarded-tcpip" channels the server then
opens, which the adapter confirms or refuses once it knows whether its own connection
succeeded. Agent channels ("auth-agent@openssh.com") only once asked for with
``forward_agent`` (ssh -A), "x11" channels only once asked for with ``request_x11``
(ssh -X, -Y); any other open from the server is refused (``UnaskedOpen`` tells).

The records it reports are in ``channel_events``, the protocol's numbers and names in
``channel_messages``, a channel's bookkeeping in ``channel_state``; all are importable
from here too.
"""

from __future__ import annotations

import struct
from collections import deque

from keytool.display import logged, printable
from keytool.errors import FormatError, ProtocolError
from keytool.transport.channel_events import (
    ChannelClosed,
    ChannelData,
    ChannelEof,
    ChannelEvent,
    ChannelExtendedData,
    ChannelOpened,
    ChannelOpenFailed,
    ChannelOpenRequest,
    ChannelRequestReply,
    ExecResult,
    ExitSignal,
    ExitStatus,
    GlobalReply,
    HostKeysAnnounced,
    UnaskedOpen,
    WindowAdjusted,
    allocated_port,
)
from keytool.transport.channel_messages import (
    AUTH_AGENT,
    DEFAULT_MAX_PACKET,
    DEFAULT_WINDOW,
    DIRECT_STREAMLOCAL,
    EXTENDED_DATA_STDERR,
    FORWARDED_STREAMLOCAL,
    FORWARDED_TCPIP,
    HOSTKEYS_ANNOUNCE,
    HOSTKEYS_PROVE,
    KEEPALIVE,
    MAX_WINDOW,
    MSG_CHANNEL_CLOSE,
    MSG_CHANNEL_DATA,
    MSG_CHANNEL_EOF,
    MSG_CHANNEL_EXTENDED_DATA,
    MSG_CHANNEL_FAILURE,
    MSG_CHANNEL_OPEN,
    MSG_CHANNEL_OPEN_CONFIRMATION,
    MSG_CHANNEL_OPEN_FAILURE,
    MSG_CHANNEL_REQUEST,
    MSG_CHANNEL_SUCCESS,
    MSG_CHANNEL_WINDOW_ADJUST,
    MSG_GLOBAL_REQUEST,
    MSG_REQUEST_FAILURE,
    MSG_REQUEST_SUCCESS,
    OPEN_ADMINISTRATIVELY_PROHIBITED,
    OPEN_CONNECT_FAILED,
    OPEN_FAILURE_REASONS,
    X11,
)
from keytool.transport.channel_state import Channel, ChannelState
from keytool.wire import Reader, Writer

__all__ = [
    "AUTH_AGENT",
    "DEFAULT_MAX_PACKET",
    "DEFAULT_WINDOW",
    "DIRECT_STREAMLOCAL",
    "EXTENDED_DATA_STDERR",
    "FORWARDED_STREAMLOCAL",
    "FORWARDED_TCPIP",
    "HOSTKEYS_ANNOUNCE",
    "HOSTKEYS_PROVE",
    "KEEPALIVE",
    "MAX_WINDOW",
    "MSG_CHANNEL_CLOSE",
    "MSG_CHANNEL_DATA",
    "MSG_CHANNEL_EOF",
    "MSG_CHANNEL_EXTENDED_DATA",
    "MSG_CHANNEL_FAILURE",
    "MSG_CHANNEL_OPEN",
    "MSG_CHANNEL_OPEN_CONFIRMATION",
    "MSG_CHANNEL_OPEN_FAILURE",
    "MSG_CHANNEL_REQUEST",
    "MSG_CHANNEL_SUCCESS",
    "MSG_CHANNEL_WINDOW_ADJUST",
    "MSG_GLOBAL_REQUEST",
    "MSG_REQUEST_FAILURE",
    "MSG_REQUEST_SUCCESS",
    "OPEN_ADMINISTRATIVELY_PROHIBITED",
    "OPEN_CONNECT_FAILED",
    "OPEN_FAILURE_REASONS",
    "X11",
    "Channel",
    "ChannelClosed",
    "ChannelData",
    "ChannelEof",
    "ChannelEvent",
    "ChannelExtendedData",
    "ChannelOpenFailed",
    "ChannelOpenRequest",
    "ChannelOpened",
    "ChannelRequestReply",
    "ChannelState",
    "Connection",
    "ExecResult",
    "ExitSignal",
    "ExitStatus",
    "GlobalReply",
    "HostKeysAnnounced",
    "UnaskedOpen",
    "WindowAdjusted",
    "allocated_port",
]

# RFC 4253 §6.1 makes 32768 the smallest packet everyone handles; room for the
# DATA header (byte, uint32, uint32) is left below a peer's maximum packet size
_DATA_HEADER = 9

_U32 = struct.Struct(">I")
_U32_U32 = struct.Struct(">II")


class Connection:
    """The channels of one authenticated SSH connection (RFC 4254).

    ``auto_window``: top the window up as soon as data arrives (the adapter then has no
    backpressure but needs none for a sink that blocks); otherwise call ``consumed``."""

    def __init__(
        self,
        window: int = DEFAULT_WINDOW,
        max_packet: int = DEFAULT_MAX_PACKET,
        auto_window: bool = True,
    ) -> None:
        if not 0 < window <= MAX_WINDOW or max_packet < 1:
            raise ValueError("bad window or maximum packet size")
        self.window = window
        self.max_packet = max_packet
        self.auto_window = auto_window
        self.channels: dict[int, Channel] = {}
        #: take "forwarded-tcpip" opens from the server (we asked for remote forwards)
        self.accept_forwarded = False
        #: take "auth-agent@openssh.com" opens (we asked for agent forwarding)
        self.accept_agent = False
        #: take "x11" opens (we asked for X11 forwarding)
        self.accept_x11 = False
        self._global_pending: deque[str] = deque()
        self._outbox: list[bytes] = []
        self._next_id = 0
        self._broken = False

    # ---- outbox

    def data_to_send(self) -> list[bytes]:
        """Payloads to send, in order; the outbox is emptied."""
        out, self._outbox = self._outbox, []
        return out

    # ---- our requests

    def _channel(self, channel: int) -> Channel:
        if self._broken:
            raise ProtocolError("the connection failed on a protocol error")
        chan = self.channels.get(channel)
        if chan is None:
            raise ProtocolError(f"no channel {channel}")
        return chan

    def _open_channel(self, channel: int) -> Channel:
        chan = self._channel(channel)
        if chan.state is not ChannelState.OPEN:
            raise ProtocolError(f"channel {channel} is {chan.state.value}, not open")
        return chan

    def open_session(self) -> int:
        """Open a "session" channel (§6.1); ``ChannelOpened`` follows. Returns its number."""
        return self._open("session", b"")

    def open_direct_tcpip(
        self, host: str, port: int, originator: str = "127.0.0.1", originator_port: int = 0
    ) -> int:
        """Open a "direct-tcpip" channel (§7.2): the server connects to ``host:port``
        and the channel carries that connection (``ssh -W``, ProxyJump)."""
        # string host to connect, uint32 port, string originator address, uint32 its port
        extra = (
            Writer().string(host).uint32(port).string(originator).uint32(originator_port).getvalue()
        )
        return self._open("direct-tcpip", extra)

    def open_direct_streamlocal(self, path: str) -> int:
        """Open a "direct-streamlocal@openssh.com" channel (PROTOCOL §2.4): the server
        connects to the Unix-domain socket ``path``."""
        # string socket path, string reserved, uint32 reserved
        return self._open(DIRECT_STREAMLOCAL, Writer().string(path).string("").uint32(0).getvalue())

    def streamlocal_forward(self, path: str) -> None:
        """Ask the server to listen on the Unix-domain socket ``path`` and open a
        "forwarded-streamlocal@openssh.com" channel for each connection (PROTOCOL
        §2.4); a ``GlobalReply`` follows."""
        self._global("streamlocal-forward@openssh.com", Writer().string(path).getvalue())
        self.accept_forwarded = True

    def tcpip_forward(self, address: str, port: int) -> None:
        """Ask the server to listen on ``address:port`` (port 0: one it picks) and
        open a "forwarded-tcpip" channel for each connection (§7.1); a
        ``GlobalReply`` follows."""
        # string address to bind, uint32 port number to bind
        self._global("tcpip-forward", Writer().string(address).uint32(port).getvalue())
        self.accept_forwarded = True

    def cancel_forward(self, address: str, port: int, path: str | None = None) -> None:
        """Ask the server to stop listening for a -R: "cancel-tcpip-forward" (§7.1) or,
        for a socket, "cancel-streamlocal-forward@openssh.com" (PROTOCOL §2.4); a
        ``GlobalReply`` follows."""
        if path is not None:
            body = Writer().string(path).getvalue()
            self._global("cancel-streamlocal-forward@openssh.com", body)
        else:
            self._global("cancel-tcpip-forward", Writer().string(address).uint32(port).getvalue())

    def keepalive(self) -> None:
        """Ask the server for any answer (ssh's ServerAliveInterval); a ``GlobalReply``
        for "keepalive@openssh.com" follows, a failure from most servers."""
        self._global(KEEPALIVE, b"")

    def prove_host_keys(self, body: bytes) -> None:
        """Ask the server to prove it holds the host keys whose blobs ``body`` lists
        ("hostkeys-prove-00@openssh.com", PROTOCOL §2.5); a ``GlobalReply`` follows,
        its data the signatures."""
        self._global(HOSTKEYS_PROVE, body)

    def _global(self, name: str, body: bytes) -> None:
        if self._broken:
            raise ProtocolError("the connection failed on a protocol error")
        # §4: string request name, boolean want reply, specifics
        self._outbox.append(
            Writer().byte(MSG_GLOBAL_REQUEST).string(name).boolean(True).raw(body).getvalue()
        )
        self._global_pending.append(name)

    def confirm_open(self, channel: int) -> None:
        """Accept a channel the server opened (``ChannelOpenRequest``)."""
        chan = self._accepting(channel)
        chan.state = ChannelState.OPEN
        # §5.1: uint32 recipient, uint32 sender, uint32 initial window, uint32 max packet
        self._outbox.append(
            bytes((MSG_CHANNEL_OPEN_CONFIRMATION,))
            + _U32_U32.pack(chan.remote_id, chan.local_id)
            + _U32_U32.pack(chan.local_window, chan.local_max_packet)
        )
        self._flush(chan)

    def refuse_open(self, channel: int, reason: int, description: str) -> None:
        """Refuse a channel the server opened (``ChannelOpenRequest``)."""
        chan = self._accepting(channel)
        self._outbox.append(_open_failure(chan.remote_id, reason, description))
        self._free(chan)

    def _accepting(self, channel: int) -> Channel:
        chan = self._channel(channel)
        if chan.state is not ChannelState.ACCEPTING:
            raise ProtocolError(f"channel {channel} is {chan.state.value}, not awaiting an answer")
        return chan

    def _open(self, kind: str, extra: bytes) -> int:
        if self._broken:
            raise ProtocolError("the connection failed on a protocol error")
        local_id = self._next_id
        self._next_id += 1
        self.channels[local_id] = Channel(local_id, kind, self.window, self.max_packet)
        # §5.1: string type, uint32 sender channel, uint32 initial window, uint32 max
        # packet, then what the type adds
        self._outbox.append(
            Writer()
            .byte(MSG_CHANNEL_OPEN)
            .string(kind)
            .uint32(local_id)
            .uint32(self.window)
            .uint32(self.max_packet)
            .raw(extra)
            .getvalue()
        )
        return local_id

    def _request(self, channel: int, request: str, want_reply: bool, body: bytes = b"") -> None:
        chan = self._open_channel(channel)
        if chan.close_received:
            raise ProtocolError(f"channel {channel} is closed by the server")
        # §5.4: uint32 recipient, string request type, boolean want reply, specifics
        self._outbox.append(
            Writer()
            .byte(MSG_CHANNEL_REQUEST)
            .uint32(chan.remote_id)
            .string(request)
            .boolean(want_reply)
            .raw(body)
            .getvalue()
        )
        if want_reply:
            chan.pending_requests.append(request)

    def exec(self, channel: int, command: str | bytes, want_reply: bool = True) -> None:
        """Run ``command`` (§6.5)."""
        self._request(channel, "exec", want_reply, Writer().string(command).getvalue())

    def pty(
        self,
        channel: int,
        term: str,
        size: tuple[int, int, int, int],
        modes: bytes,
        want_reply: bool = True,
    ) -> None:
        """Ask for a pseudo-terminal (§6.2): ``size`` is (columns, rows, width and
        height in pixels), ``modes`` the encoded terminal modes (§8)."""
        # string TERM, uint32 columns, uint32 rows, uint32 width px, uint32 height px,
        # string encoded terminal modes
        cols, rows, width, height = size
        body = Writer().string(term).uint32(cols).uint32(rows).uint32(width).uint32(height)
        self._request(channel, "pty-req", want_reply, body.string(modes).getvalue())

    def forward_agent(self, channel: int) -> None:
        """Ask that the session's programs may use our agent ("auth-agent-req@openssh.com",
        PROTOCOL.agent): the server then opens "auth-agent@openssh.com" channels."""
        self._request(channel, "auth-agent-req@openssh.com", False)
        self.accept_agent = True

    def request_x11(self, channel: int, protocol: str, cookie_hex: str, screen: int) -> None:
        """Ask that X clients of the session may reach our display (§6.3.1, "x11-req",
        a reply wanted): the server then opens "x11" channels, whose X clients show
        ``cookie_hex`` (a fake cookie, see keytool.x11). Not a single connection."""
        body = Writer().boolean(False).string(protocol).string(cookie_hex).uint32(screen)
        self._request(channel, "x11-req", True, body.getvalue())
        self.accept_x11 = True

    def shell(self, channel: int, want_reply: bool = True) -> None:
        """Start the user's login shell (§6.5)."""
        self._request(channel, "shell", want_reply)

    def send_break(self, channel: int, milliseconds: int = 1000) -> None:
        """A BREAK for the remote terminal (RFC 4335), as ssh's ~B sends it."""
        self._request(channel, "break", False, Writer().uint32(milliseconds).getvalue())

    def window_change(self, channel: int, size: tuple[int, int, int, int]) -> None:
        """The terminal's new size (§6.7): columns, rows, width and height in pixels."""
        cols, rows, width, height = size
        body = Writer().uint32(cols).uint32(rows).uint32(width).uint32(height).getvalue()
        self._request(channel, "window-change", False, body)

    def subsystem(self, channel: int, name: str, want_reply: bool = True) -> None:
        """Start a subsystem such as "sftp" (§6.5)."""
        self._request(channel, "subsystem", want_reply, Writer().string(name).getvalue())

    def setenv(
        self, channel: int, name: str | bytes, value: str | bytes, want_reply: bool = False
    ) -> None:
        """Pass one environment variable (§6.4); servers usually refuse most."""
        self._request(channel, "env", want_reply, Writer().string(name).string(value).getvalue())

    def send(self, channel: int, data: bytes, code: int = 0) -> None:
        """Queue ``data`` (or extended data with ``code``); it goes out as the server's
        window and maximum packet size allow (§5.2)."""
        chan = self._open_channel(channel)
        if chan.eof_wanted:
            raise ProtocolError(f"channel {channel}: data after EOF")
        if code:
            raise ProtocolError("a client sends no extended data")
        if data:
            chan.outgoing.append(memoryview(bytes(data) if not isinstance(data, bytes) else data))
            chan.outgoing_size += len(data)
            self._flush(chan)

    def buffered(self, channel: int) -> int:
        """Bytes queued for ``channel`` that wait for window space."""
        chan = self.channels.get(channel)
        return chan.outgoing_size if chan is not None else 0

    def no_more_output(self, channel: int) -> None:
        """OpenSSH's "eow@openssh.com" (no reply wanted): whoever read the channel's
        output here went away; sshd stops reading the command's output."""
        self._request(channel, "eow@openssh.com", False)

    def send_eof(self, channel: int) -> None:
        """No more data from us (§5.3); sent after the queued data."""
        chan = self._channel(channel)
        if chan.state is not ChannelState.OPEN or chan.eof_wanted:
            return
        chan.eof_wanted = True
        self._flush(chan)

    def close(self, channel: int) -> None:
        """Close the channel (§5.3); ``ChannelClosed`` follows the server's close."""
        chan = self._channel(channel)
        if chan.state is ChannelState.ACCEPTING:
            self.refuse_open(channel, OPEN_CONNECT_FAILED, "closed by the client")
        elif chan.state is ChannelState.OPEN:
            chan.state = ChannelState.CLOSING
            chan.outgoing.clear()
            chan.outgoing_size = 0
            self._outbox.append(bytes((MSG_CHANNEL_CLOSE,)) + _U32.pack(chan.remote_id))
        elif chan.state is ChannelState.OPENING:
            # the close goes out once the open is confirmed
            chan.state = ChannelState.CLOSING

    def consumed(self, channel: int, count: int) -> None:
        """The adapter has used ``count`` bytes; with auto_window off, this reopens the window."""
        chan = self.channels.get(channel)
        if chan is None or chan.state is not ChannelState.OPEN or count <= 0:
            return
        self._maybe_adjust(chan, count)

    def _maybe_adjust(self, chan: Channel, count: int) -> None:
        # Adjust in large steps, as OpenSSH does, not for every packet: once half the
        # window has been used, give the used part back.
        chan.credit += count
        if chan.credit >= chan.window_size // 2 and not chan.close_received:
            # §5.2: uint32 recipient channel, uint32 bytes to add
            self._outbox.append(
                bytes((MSG_CHANNEL_WINDOW_ADJUST,)) + _U32_U32.pack(chan.remote_id, chan.credit)
            )
            chan.local_window += chan.credit
            chan.credit = 0

    def _flush(self, chan: Channel) -> None:
        if chan.state is not ChannelState.OPEN:
            return
        limit = max(1, chan.remote_max_packet - _DATA_HEADER) if chan.remote_max_packet else 1
        header = bytes((MSG_CHANNEL_DATA,)) + _U32.pack(chan.remote_id)
        while chan.outgoing and chan.remote_window > 0:
            head = chan.outgoing[0]
            size = min(len(head), chan.remote_window, limit)
            piece = head if size == len(head) else head[:size]
            if size == len(head):
                chan.outgoing.popleft()
            else:
                chan.outgoing[0] = head[size:]
            chan.outgoing_size -= size
            chan.remote_window -= size
            # §5.2: uint32 recipient channel, string data
            self._outbox.append(header + _U32.pack(size) + piece)
        if chan.eof_wanted and not chan.outgoing and not chan.eof_sent:
            chan.eof_sent = True
            self._outbox.append(bytes((MSG_CHANNEL_EOF,)) + _U32.pack(chan.remote_id))

    def _free(self, chan: Channel) -> None:
        chan.state = ChannelState.CLOSED
        del self.channels[chan.local_id]

    # ---- the server's messages

    def receive(self, payload: bytes) -> list[ChannelEvent]:
        """One connection-protocol payload (message numbers 80 to 100)."""
        if self._broken:
            raise ProtocolError("the connection failed on a protocol error")
        try:
            return self._receive(payload)
        except FormatError as exc:
            self._broken = True
            text = str(exc)  # a Reader's error says "malformed connection message" already
            if not text.startswith("malformed"):
                text = f"malformed connection message: {text}"
            raise ProtocolError(text) from None
        except ProtocolError:
            self._broken = True
            raise

    def _receive(self, payload: bytes) -> list[ChannelEvent]:
        if not payload:
            raise ProtocolError("empty message")
        kind = payload[0]
        if kind == MSG_CHANNEL_DATA:
            # the hot path, decoded by hand: uint32 recipient, string data
            if len(payload) < 9:
                raise FormatError("truncated channel data")
            recipient, size = _U32_U32.unpack_from(payload, 1)
            if size != len(payload) - 9:
                raise FormatError("channel data length does not match the packet")
            chan = self._recipient(recipient)
            return self._incoming(chan, payload[9:], 0)
        r = Reader(payload, "connection message")
        r.byte()
        if kind == MSG_GLOBAL_REQUEST:
            return self._global_request(r)
        if kind == MSG_CHANNEL_OPEN:
            return self._open_request(r)
        if kind in (MSG_REQUEST_SUCCESS, MSG_REQUEST_FAILURE):
            if not self._global_pending:
                raise ProtocolError("reply to a global request we never made")
            # §4: a success may carry request-specific data (tcpip-forward: the port)
            return [GlobalReply(self._global_pending.popleft(), kind == MSG_REQUEST_SUCCESS,
                                r.rest())]  # fmt: skip
        if not MSG_CHANNEL_OPEN_CONFIRMATION <= kind <= MSG_CHANNEL_FAILURE:
            raise ProtocolError(f"unexpected message {kind} in the connection protocol")
        chan = self._recipient(r.uint32())
        if kind == MSG_CHANNEL_OPEN_CONFIRMATION:
            return self._confirmed(chan, r)
        if kind == MSG_CHANNEL_OPEN_FAILURE:
            return self._open_failed(chan, r)
        if chan.state in (ChannelState.OPENING, ChannelState.ACCEPTING):
            raise ProtocolError(f"message {kind} for channel {chan.local_id} before it opened")
        if kind == MSG_CHANNEL_WINDOW_ADJUST:
            add = r.uint32()
            r.done()
            if chan.remote_window + add > MAX_WINDOW:
                raise ProtocolError("the server's window grew past 2^32 - 1")
            chan.remote_window += add
            self._flush(chan)
            return [WindowAdjusted(chan.local_id)]
        if kind == MSG_CHANNEL_EXTENDED_DATA:
            code = r.uint32()
            data = r.string()
            r.done()
            return self._incoming(chan, data, code)
        if kind == MSG_CHANNEL_EOF:
            r.done()
            if chan.eof_received:
                return []  # said twice: nothing more to learn (ssh passes it over too)
            chan.eof_received = True
            return [ChannelEof(chan.local_id)]
        if kind == MSG_CHANNEL_CLOSE:
            r.done()
            if chan.close_received:
                raise ProtocolError(f"two CLOSEs on channel {chan.local_id}")
            chan.close_received = True
            if chan.state is ChannelState.OPEN:
                # §5.3: answer a CLOSE with a CLOSE
                chan.state = ChannelState.CLOSING
                chan.outgoing.clear()
                chan.outgoing_size = 0
                self._outbox.append(bytes((MSG_CHANNEL_CLOSE,)) + _U32.pack(chan.remote_id))
            self._free(chan)
            return [ChannelClosed(chan.local_id)]
        if kind == MSG_CHANNEL_REQUEST:
            return self._channel_request(chan, r)
        # MSG_CHANNEL_SUCCESS / MSG_CHANNEL_FAILURE
        r.done()
        if not chan.pending_requests:
            raise ProtocolError(f"reply on channel {chan.local_id} to no request")
        request = chan.pending_requests.popleft()
        return [ChannelRequestReply(chan.local_id, request, kind == MSG_CHANNEL_SUCCESS)]

    def _recipient(self, number: int) -> Channel:
        chan = self.channels.get(number)
        if chan is None:
            raise ProtocolError(f"message for channel {number}, which is not open")
        return chan

    def _confirmed(self, chan: Channel, r: Reader) -> list[ChannelEvent]:
        # §5.1: uint32 sender channel, uint32 initial window, uint32 maximum packet size
        remote_id, window, max_packet = r.uint32(), r.uint32(), r.uint32()
        if chan.kind == "session":
            r.done()
        if chan.remote_max_packet:
            raise ProtocolError(f"channel {chan.local_id} confirmed twice")
        if max_packet == 0:
            raise ProtocolError("the server's maximum packet size is 0")
        chan.remote_id, chan.remote_window, chan.remote_max_packet = remote_id, window, max_packet
        if chan.state is ChannelState.CLOSING:
            # closed by us while opening: close now
            self._outbox.append(bytes((MSG_CHANNEL_CLOSE,)) + _U32.pack(remote_id))
            return []
        chan.state = ChannelState.OPEN
        self._flush(chan)
        return [ChannelOpened(chan.local_id)]

    def _open_failed(self, chan: Channel, r: Reader) -> list[ChannelEvent]:
        # §5.1: uint32 reason code, string description, string language tag
        reason = r.uint32()
        description = r.peer_text()  # any bytes, as OpenSSH takes it
        r.string()
        r.done()
        if chan.state not in (ChannelState.OPENING, ChannelState.CLOSING) or chan.remote_max_packet:
            raise ProtocolError(f"open failure for channel {chan.local_id}, which is open")
        self._free(chan)
        # as ssh logs it ("channel N: open failed: REASON: TEXT")
        return [ChannelOpenFailed(chan.local_id, reason, logged(description, 500))]

    def _incoming(self, chan: Channel, data: bytes, code: int) -> list[ChannelEvent]:
        if chan.state in (ChannelState.OPENING, ChannelState.ACCEPTING):
            raise ProtocolError(f"data on channel {chan.local_id} before it opened")
        if chan.eof_received and code:
            raise ProtocolError(f"extended data on channel {chan.local_id} after EOF")
        size = len(data)
        if size > chan.local_window:
            raise ProtocolError(f"the server sent past channel {chan.local_id}'s window")
        if size > chan.local_max_packet:
            raise ProtocolError(
                f"the server sent {size} bytes in one packet on channel {chan.local_id}, "
                f"more than the {chan.local_max_packet} allowed"
            )
        chan.local_window -= size
        if chan.eof_received:
            # as OpenSSH: data after EOF is dropped, its window given back as used
            self._maybe_adjust(chan, size)
            return []
        if chan.state is ChannelState.CLOSING:
            return []  # we closed: §5.3 lets data still arrive; it is dropped
        if self.auto_window:
            self._maybe_adjust(chan, size)
        if code:
            return [ChannelExtendedData(chan.local_id, code, data)]
        return [ChannelData(chan.local_id, data)]

    def _channel_request(self, chan: Channel, r: Reader) -> list[ChannelEvent]:
        request = r.ascii()
        want_reply = r.boolean()
        events: list[ChannelEvent] = []
        if request == "exit-status":
            # §6.10: uint32 exit status
            status = r.uint32()
            r.done()
            events.append(ExitStatus(chan.local_id, status))
        elif request == "exit-signal":
            # §6.10: string signal name (no "SIG"), boolean core dumped, string message, lang
            # the name is one of §6.10's (ASCII); the message is for people: any bytes
            signal = r.ascii()
            core = r.boolean()
            message = r.peer_text()
            r.string()
            r.done()
            events.append(
                ExitSignal(chan.local_id, printable(signal, 32), core, logged(message, 500))
            )
        # anything else (keepalive@openssh.com, eow@openssh.com...) is not for us
        if want_reply and chan.state is ChannelState.OPEN:
            ok = bool(events)
            reply = MSG_CHANNEL_SUCCESS if ok else MSG_CHANNEL_FAILURE
            self._outbox.append(bytes((reply,)) + _U32.pack(chan.remote_id))
        return events

    def _global_request(self, r: Reader) -> list[ChannelEvent]:
        # §4: string request name, boolean want reply, specifics. keepalive@openssh.com
        # wants a reply and gets REQUEST_FAILURE, as from OpenSSH's client;
        # hostkeys-00@openssh.com (PROTOCOL §2.5) wants none and becomes an event.
        name = r.ascii()
        if r.boolean():
            self._outbox.append(bytes((MSG_REQUEST_FAILURE,)))
            return []
        if name == HOSTKEYS_ANNOUNCE:
            return [HostKeysAnnounced(r.rest())]
        return []

    def _open_request(self, r: Reader) -> list[ChannelEvent]:
        # §5.1: string channel type, uint32 sender channel, uint32 initial window,
        # uint32 maximum packet size, then what the type adds
        kind = r.ascii()
        sender = r.uint32()
        asked = (
            (kind in (FORWARDED_TCPIP, FORWARDED_STREAMLOCAL) and self.accept_forwarded)
            or (kind == AUTH_AGENT and self.accept_agent)
            or (kind == X11 and self.accept_x11)
        )
        if not asked:
            # nothing else was asked for (the agent only with -A, X11 with -X): refused
            self._outbox.append(
                _open_failure(
                    sender, OPEN_ADMINISTRATIVELY_PROHIBITED, "open refused by the client"
                )
            )
            return [UnaskedOpen(printable(kind, 64))]
        window, max_packet = r.uint32(), r.uint32()
        path: str | None = None
        address, port, originator, originator_port = "", 0, "", 0
        if kind == AUTH_AGENT:
            pass  # PROTOCOL.agent: nothing more
        elif kind == X11:
            # §6.3.2: string originator address, uint32 originator port
            originator, originator_port = r.peer_text(), r.uint32()
        elif kind == FORWARDED_STREAMLOCAL:
            # PROTOCOL §2.4: string socket path, string reserved; a path is bytes
            path = r.peer_text()
            r.string()
        else:
            # §7.2: string address that was connected, uint32 port that was connected,
            # string originator IP address, uint32 originator port. Any bytes, as
            # OpenSSH: an address that is no forward of ours is refused by the caller
            address, port = r.peer_text(), r.uint32()
            originator, originator_port = r.peer_text(), r.uint32()
        r.done()
        if max_packet == 0:
            raise ProtocolError("the server's maximum packet size is 0")
        local_id = self._next_id
        self._next_id += 1
        chan = Channel(local_id, kind, self.window, self.max_packet)
        chan.state = ChannelState.ACCEPTING
        chan.remote_id, chan.remote_window, chan.remote_max_packet = sender, window, max_packet
        self.channels[local_id] = chan
        return [
            ChannelOpenRequest(
                local_id,
                printable(address, 256),
                port,
                printable(originator, 64),
                originator_port,
                path,
                kind == AUTH_AGENT,
                kind == X11,
            )
        ]


def _open_failure(recipient: int, reason: int, description: str) -> bytes:
    # §5.1: uint32 recipient channel, uint32 reason code, string description, string language
    return (
        Writer()
        .byte(MSG_CHANNEL_OPEN_FAILURE)
        .uint32(recipient)
        .uint32(reason)
        .string(description)
        .string("")
        .getvalue()
    )

"""The channels the server opens to us (``keytool.tunnels``): connections to a -R
port or socket (a SOCKS request first for a -R with no target), the server's
programs to our agent (-A) and X clients to our display (-X/-Y, their first packet
checked). Each is confirmed once our own non-blocking connect succeeds, or refused.
"""

from __future__ import annotations

import errno
import os
import socket
import time

from keytool.display import printable
from keytool.errors import FormatError
from keytool.forwardspec import RemoteDynamicForward, permitted_open
from keytool.socks import Handshake
from keytool.transport import channels as ch
from keytool.tunnels_relay import Relay, Tunnel, error_reason
from keytool.x11 import DisplayError, Setup, Verdict, display_addresses

# the label of the server's channels to our agent (-A)
_AGENT_LABEL = "from the server to our agent"


class Inbound(Relay):
    """The server's channels: connected on here, then relayed."""

    def _forwarded(self, event: ch.ChannelOpenRequest) -> None:
        """A connection came to a port the server listens on for us: connect on."""
        number = event.channel
        if event.agent:
            self._to_agent(number)
            return
        if event.x11:
            self._to_display(event)
            return
        if event.path is not None:
            forward = self._by_path.get(event.path)
            source = f"{printable(event.path, 256)} at the server"
        else:
            forward = self._by_port.get(event.connected_port)
            source = f"{event.originator} port {event.originator_port} at the server"
        if forward is None:
            self.conn.refuse_open(number, ch.OPEN_ADMINISTRATIVELY_PROHIBITED, "no such forward")
            return
        if isinstance(forward, RemoteDynamicForward):
            # as ssh: confirmed at once, as the SOCKS request comes over the channel
            self.conn.confirm_open(number)
            self._socks_channels[number] = (Handshake(), source)
            self.trace(f"port forwarding: SOCKS at the server: channel {number} from {source}")
            return
        label = f"from {source} to {forward.target}"
        addresses: list[tuple[int, object]]
        if forward.target_path is not None:
            addresses = [(socket.AF_UNIX, forward.target_path)]
        else:
            try:
                infos = socket.getaddrinfo(forward.host, forward.port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                reason = error_reason(exc)
                self._refuse(number, label, f"cannot resolve {forward.host}: {reason}")
                return
            addresses = [(i[0], i[4]) for i in infos]
        self.trace(f"port forwarding: connection {label}: connecting (channel {number})")
        self._connect_channel(number, label, addresses)

    def _socks_event(self, event: ch.ChannelEvent) -> None:
        """-R port alone: what comes on a channel before its SOCKS request is whole.
        As ssh: the connection is made, then the request granted; when it cannot be
        made, or PermitRemoteOpen forbids it, the channel is closed without an answer."""
        number = event.channel
        handshake, source = self._socks_channels[number]
        if not isinstance(event, ch.ChannelData):
            if isinstance(event, ch.ChannelEof | ch.ChannelClosed):
                del self._socks_channels[number]
                if number in self.conn.channels:
                    self.conn.close(number)
            return
        self.conn.consumed(number, len(event.data))
        try:
            handshake.feed(event.data)
        except FormatError as exc:
            self.trace(f"port forwarding: SOCKS at the server: channel {number}: {exc}")
            self._socks_done(number, handshake.data_to_send())
            return
        answer = handshake.data_to_send()
        if answer:
            self.conn.send(number, answer)
        if handshake.request is None:
            return
        del self._socks_channels[number]
        host, port = handshake.request
        label = f"from {source} to {host} port {port}"
        if not permitted_open(host, port, self.permit_remote_open):
            self.trace(f"port forwarding: {label}: not in PermitRemoteOpen")
            self._socks_done(number, b"")
            return
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            infos = []
        self.trace(f"port forwarding: connection {label}: connecting (channel {number})")
        tunnel = self._connect_channel(
            number, label, [(i[0], i[4]) for i in infos], confirmed=(host, port)
        )
        if tunnel is not None:
            tunnel.reply = handshake.reply(True)
            tunnel.out += handshake.rest

    def _socks_done(self, number: int, last: bytes) -> None:
        """A SOCKS channel that goes nowhere: its last words, then closed."""
        self._socks_channels.pop(number, None)
        if number in self.conn.channels:
            if last:
                self.conn.send(number, last)
            self.conn.close(number)

    def _to_agent(self, number: int) -> None:
        """-A: a program at the server uses our agent: connect to it for the channel."""
        label = _AGENT_LABEL
        if self.agent_socket is None:
            self._refuse(number, label, "no agent to forward to")
            return
        self.trace(f"agent forwarding: channel {number}: connecting to our agent")
        self._connect_channel(number, label, [(socket.AF_UNIX, self.agent_socket)])

    def _to_display(self, event: ch.ChannelOpenRequest) -> None:
        """-X: an X client at the server opened a connection: connect to our display;
        its first packet is checked before it gets there (``_x11_setup``)."""
        number = event.channel
        x11 = self.x11
        source = f"{event.originator} port {event.originator_port}"
        label = f"X11 connection from {source} at the server"
        if x11 is None:
            self.conn.refuse_open(number, ch.OPEN_ADMINISTRATIVELY_PROHIBITED, "no X11 display")
            return
        if x11.refuse_at is not None and time.monotonic() >= x11.refuse_at:
            self.trace("Rejected X11 connection after ForwardX11Timeout expired")  # ssh's -v
            self.conn.refuse_open(number, ch.OPEN_ADMINISTRATIVELY_PROHIBITED, "X11 timed out")
            return
        try:
            addresses = display_addresses(x11.display)
        except DisplayError as exc:
            self.conn.refuse_open(number, ch.OPEN_CONNECT_FAILED, str(exc))
            self.say(str(exc))
            return
        family, address = addresses[0]
        if family == socket.AF_UNIX:
            where = str(address)
        else:
            host = x11.display.partition(":")[0]
            where = f"{host} port {address[1]}"  # type: ignore[index]
        self.trace(f"X11 forwarding: channel {number}: {label}, to display {x11.display}")
        tunnel = self._connect_channel(number, label, addresses, where)
        if tunnel is not None:
            tunnel.setup = Setup(x11.cookies)

    def _x11_setup(self, tunnel: Tunnel, data: bytes) -> bytes:
        """The X client's first bytes: held until its connection setup is whole, then
        passed on with the real cookie in place of the fake one; or the connection is
        closed, as ssh closes it, when the cookie is not ours or the time is up."""
        assert tunnel.setup is not None and self.x11 is not None
        refuse_at = self.x11.refuse_at
        if refuse_at is not None and time.monotonic() >= refuse_at:
            self.trace("Rejected X11 connection after ForwardX11Timeout expired")
            self._abort(tunnel)
            return b""
        verdict, out = tunnel.setup.feed(data)
        if verdict is Verdict.MORE:
            return b""
        if verdict is Verdict.REJECTED:
            self.trace(f"X11 forwarding: channel {tunnel.number}: {tunnel.setup.reason}")
            self.say("X11 connection rejected because of wrong authentication.")  # ssh's
            self._abort(tunnel)
            return b""
        tunnel.setup = None
        self.trace(f"X11 forwarding: channel {tunnel.number}: authenticated, real cookie in")
        return out

    def _connect_channel(
        self,
        number: int,
        label: str,
        addresses: list[tuple[int, object]],
        where: str = "",
        confirmed: tuple[str, int] | None = None,
    ) -> Tunnel | None:
        """Start connecting to the first of ``addresses`` that takes it, for the
        server's channel ``number`` (confirmed once connected, see ``_connected``).
        ``where``: an X11 display's, for ssh's words when it cannot be reached;
        ``confirmed``: the host and port of a SOCKS request whose channel is open
        already (closed, in ssh's words, when no address takes it)."""
        if confirmed is not None:
            where = f"{confirmed[0]} port {confirmed[1]}"
        sock, error = _start_connect(addresses, "no address")
        if sock is None:
            self._refuse(number, label, error, where, confirmed is not None)
            return None
        tunnel = Tunnel(sock, number, label)
        tunnel.connecting = True
        tunnel.addresses = addresses
        tunnel.where = where
        tunnel.confirmed = confirmed is not None
        self._by_channel[number] = tunnel
        self._by_fd[sock.fileno()] = tunnel
        return tunnel

    def _connected(self, tunnel: Tunnel) -> None:
        if tunnel.number is None:  # the channel closed meanwhile
            self._drop(tunnel)
            return
        code = tunnel.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            # that address refused: the next one, or give up
            self._by_fd.pop(tunnel.sock.fileno(), None)
            tunnel.sock.close()
            sock, error = _start_connect(tunnel.addresses, os.strerror(code))
            if sock is None:
                del self._by_channel[tunnel.number]
                self._refuse(tunnel.number, tunnel.label, error, tunnel.where, tunnel.confirmed)
                return
            tunnel.sock = sock
            self._by_fd[sock.fileno()] = tunnel
            return
        tunnel.connecting = False
        tunnel.opened = True
        if not tunnel.confirmed:
            self.conn.confirm_open(tunnel.number)
        if tunnel.reply:
            self.conn.send(tunnel.number, tunnel.reply)
        self.trace(f"port forwarding: channel {tunnel.number} connected ({tunnel.label})")
        self._maybe_shut(tunnel)  # the server's EOF came while we connected

    def _refuse(
        self, number: int, label: str, error: str, where: str = "", confirmed: bool = False
    ) -> None:
        if confirmed:  # a SOCKS request's channel, open already: closed, in ssh's words
            if number in self.conn.channels:
                self.conn.close(number)
            self.say(f"connect_to {where}: failed.")
            return
        self.conn.refuse_open(number, ch.OPEN_CONNECT_FAILED, error)
        if label == _AGENT_LABEL:  # as ssh: only a debug line, the server's program says
            self.trace(f"agent forwarding: channel {number}: cannot connect to our agent: {error}")
        elif where:  # an X11 display: ssh's words
            self.say(f"connect {where}: {error}")
        else:
            self.say(f"port forwarding ({label}): cannot connect: {error}")


def _start_connect(
    addresses: list[tuple[int, object]], error: str
) -> tuple[socket.socket | None, str]:
    """A non-blocking connect under way to the first of ``addresses`` that takes one
    (those tried are taken off the list), or None and why the last one failed."""
    while addresses:
        family, address = addresses.pop(0)
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            error = exc.strerror or str(exc)
            continue
        sock.setblocking(False)
        try:
            code = sock.connect_ex(address)  # type: ignore[arg-type]
        except (OSError, ValueError) as exc:  # a path too long for a socket address
            sock.close()
            error = error_reason(exc)
            continue
        if code in (0, errno.EINPROGRESS):
            return sock, error
        sock.close()
        error = os.strerror(code)
    return None, error

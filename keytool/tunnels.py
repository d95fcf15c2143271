"""Port forwarding for the blocking driver.

- ``-L``: listening sockets here; each connection accepted on one becomes a
  "direct-tcpip" channel (RFC 4254 §7.2) that the server connects on to the forward's
  host and port.
- ``-D``: listening sockets too, but each connection first says, in SOCKS 4 or 5
  (keytool/socks.py), where it goes; the direct-tcpip channel goes there.
- ``-R``: "tcpip-forward" requests (§7.1) make the server listen; each connection
  there comes as a "forwarded-tcpip" channel, which is confirmed once our own
  connection to the forward's host and port is made (non-blocking), or refused.
- Unix-domain sockets (OpenSSH's PROTOCOL §2.4): a -L or -D listening on a socket
  path here (created under StreamLocalBindMask, a stale one removed first with
  StreamLocalBindUnlink, and removed when keytool stops listening); a -L whose target
  is a path on the server ("direct-streamlocal@openssh.com"); a -R listening on a
  path at the server ("streamlocal-forward@openssh.com", its connections coming as
  "forwarded-streamlocal@openssh.com" channels); a -R whose target is a path here.
- ``-A``: the server's "auth-agent@openssh.com" channels connect to our agent.
- ``-X``/``-Y``: the server's "x11" channels connect to our display; the X client's
  first packet passes through ``keytool.x11.Setup`` (fake cookie checked, the real
  one put in its place) before the X server sees a byte of it.

``Forwards`` does no waiting of its own: the driver's poll(2) loop asks it which
descriptors to watch (``watch``), hands it those that are ready (``ready``) and the
channel events of its channels (``handle``). Flow control is end to end: a local
socket is read only while its channel has window to send into, and the server's
window is given back only for bytes the local socket has taken.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import time

from keytool.display import printable
from keytool.errors import FormatError, KeytoolError
from keytool.files import unix_listener
from keytool.forwardspec import (
    DynamicForward,
    LocalForward,
    RemoteDynamicForward,
    RemoteForward,
    permitted_open,
)
from keytool.socks import Handshake
from keytool.transport import channels as ch
from keytool.x11 import DisplayError, Setup, Verdict, display_addresses

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from keytool.x11 import Forwarding as X11Forwarding

    Say = Callable[[str], None]
    #: told whether the server took a -R asked for later, and the port it gave
    Answered = Callable[[bool, int], None]

# one recv from a local socket takes up to this much
_READ_SIZE = 256 * 1024
_LISTEN_BACKLOG = 128
_IN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
# a loopback address of a family the machine does not have is skipped, as ssh does
_NO_FAMILY = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT)
# the longest socket path (sun_path, with its NUL)
_SUN_PATH = 108
# the label of the server's channels to our agent (-A)
_AGENT_LABEL = "from the server to our agent"


def _remove_own(path: str, made: tuple[int, int]) -> None:
    """Remove the socket file we made at ``path``, unless another one is there now."""
    with contextlib.suppress(OSError):
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) == made:
            os.unlink(path)


class _Tunnel:
    """One accepted connection and its channel."""

    __slots__ = (
        "addresses",
        "confirmed",
        "connecting",
        "label",
        "local_eof",
        "number",
        "opened",
        "out",
        "peer",
        "remote_eof",
        "reply",
        "setup",
        "shut",
        "sock",
        "socks",
        "where",
    )

    def __init__(
        self, sock: socket.socket, number: int | None, label: str, socks: Handshake | None = None
    ) -> None:
        self.sock = sock
        self.number = number  # None once the channel is gone (-D: until it is asked for)
        self.socks = socks  # -D: the SOCKS negotiation, until the channel is open
        self.peer: tuple[str, int] = ("127.0.0.1", 0)  # -D: who connected
        self.label = label
        self.opened = False
        self.out = bytearray()  # from the server, not yet taken by the local socket
        self.local_eof = False
        self.remote_eof = False
        self.shut = False  # our write side of the local socket is shut down
        self.connecting = False  # -R: our connect is under way, the channel unanswered
        self.addresses: list[tuple[int, object]] = []  # -R: left to try
        self.confirmed = False  # -R port alone: the channel was confirmed before the connect
        self.reply = b""  # -R port alone: the SOCKS answer, sent once connected
        self.setup: Setup | None = None  # -X: the X client's first packet, until checked
        self.where = ""  # -X: the display's socket or host and port, in ssh's words


class Forwards:
    """The ``-L``, ``-D`` and ``-R`` forwards of one connection."""

    def __init__(
        self,
        conn: ch.Connection,
        forwards: Sequence[LocalForward],
        gateway_ports: bool,
        trace: Say,
        say: Say,
        remote: Sequence[RemoteForward] = (),
        bind_mask: int = 0o177,
        bind_unlink: bool = False,
        agent_socket: str | None = None,
        exit_on_failure: bool = False,
        x11: X11Forwarding | None = None,
        permit_remote_open: tuple[str, ...] = (),
        quiet: bool = False,
        announce: Say | None = None,
    ) -> None:
        self.conn = conn
        #: the port the server picked for a -R 0, said as ssh says it (no prefix: a
        #: script's ``awk '/Allocated port/ {print $3}'`` finds it)
        self.announce = announce or say
        #: LogLevel QUIET, FATAL or ERROR (ssh -q): notices such as the port the
        #: server picked for a -R 0 are not said (warnings and errors still are)
        self.quiet = quiet
        #: PermitRemoteOpen: where a SOCKS proxy at the server's end (-R port) may go
        self.permit_remote_open = permit_remote_open
        #: -R port alone: its channels whose SOCKS request is still coming, and from where
        self._socks_channels: dict[int, tuple[Handshake, str]] = {}
        self.x11 = x11  # ssh -X: the display the server's "x11" channels reach
        # ExitOnForwardFailure: a forward that cannot be set up ends it all; else it
        # is said and the rest goes on, as ssh
        self.exit_on_failure = exit_on_failure
        self.agent_socket = agent_socket  # ssh -A: the agent the server's channels reach
        self.bind_mask = bind_mask  # StreamLocalBindMask: the umask of our socket files
        self.bind_unlink = bind_unlink  # StreamLocalBindUnlink: replace a stale one
        #: socket files we made (their device and inode), removed when we stop if
        #: still ours: another forwarder may have replaced one (StreamLocalBindUnlink)
        self._paths: dict[str, tuple[int, int]] = {}
        self.forwards = tuple(forwards)
        self.remote = tuple(remote)
        # tcpip-forward requests sent, each with who is told of the answer (None: the
        # command line's, said or fatal as ExitOnForwardFailure has it)
        self._unanswered: list[tuple[RemoteForward | None, Answered | None]] = []
        self._by_port: dict[int, RemoteForward] = {}  # the server listens on these
        self._by_path: dict[str, RemoteForward] = {}  # ... and on these sockets
        self.gateway_ports = gateway_ports
        self.trace = trace
        self.say = say
        self._listeners: dict[int, tuple[socket.socket, LocalForward]] = {}
        #: when an accept failure was last said: out of descriptors, each try fails
        #: again; as ssh, it is said at most once a second
        self._accept_said = -1.0
        self._by_channel: dict[int, _Tunnel] = {}
        self._by_fd: dict[int, _Tunnel] = {}
        self._unflushed: list[_Tunnel] = []

    # ---- listening

    def listen(self) -> None:
        """Bind and listen for every forward, as ssh: an address that cannot be bound
        is said in ssh's words and the others go on; a forward with no address at all
        has failed. Then, with ExitOnForwardFailure, any failed forward is a
        KeytoolError (every socket opened is closed); without it, ssh's "Could not
        request local forwarding." is said when none could be set up."""
        failed = sum(not self._listen(forward) for forward in self.forwards)
        if failed and self.exit_on_failure:
            self.close()
            raise KeytoolError("Could not request local forwarding.")
        if failed and failed == len(self.forwards):
            self.say("Could not request local forwarding.")

    def _listen(self, forward: LocalForward) -> bool:
        """Listen for one -L or -D; False (said) when no address could be bound."""
        flag = "-D" if isinstance(forward, DynamicForward) else "-L"
        if forward.listen_path is not None:
            return self._listen_unix(forward, forward.listen_path)
        bound = 0
        for host in forward.bind_hosts(self.gateway_ports):
            shown = "*" if host is None else host
            try:
                infos = socket.getaddrinfo(
                    host, forward.listen_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
                )
            except (socket.gaierror, UnicodeError) as exc:
                if host != "::1":
                    self.say(f"getaddrinfo({shown}): {_reason(exc)}")
                continue
            for family, kind, proto, _, address in infos:
                try:
                    sock = socket.socket(family, kind, proto)
                except OSError as exc:
                    if exc.errno not in _NO_FAMILY:
                        self.say(f"socket {_bracketed(address)}: {exc.strerror}")
                    continue
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if family == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    sock.bind(address)
                    sock.listen(_LISTEN_BACKLOG)
                    sock.setblocking(False)
                except OSError as exc:
                    sock.close()
                    if not (exc.errno in _NO_FAMILY and host in ("::1", None)):
                        self.say(f"bind {_bracketed(address)}: {exc.strerror}")  # ssh's
                    continue
                self._listeners[sock.fileno()] = (sock, forward)
                bound += 1
                self.trace(f"port forwarding: listening on {_where(address)}, {_to(forward)}")
        if not bound:  # ssh's words
            self.say(f"cannot listen to port: {forward.listen_port}")
            self.trace(f"port forwarding: no address for {flag} {forward.describe()}")
        return bound > 0

    def _listen_unix(self, forward: LocalForward, path: str) -> bool:
        if "\0" in path:  # no file has such a name (the system's calls refuse it)
            self.say(f"cannot bind to path {path!r}: a NUL byte in the path")
            return False
        if self.bind_unlink:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if len(os.fsencode(path)) >= _SUN_PATH:  # ssh's words
            self.say(f'path "{path}" too long for Unix domain socket')
            return False
        try:
            sock = unix_listener(path, self.bind_mask, _LISTEN_BACKLOG)
        except (OSError, ValueError) as exc:
            self.say(f"cannot bind to path {path}: {_reason(exc)}")  # ssh's words
            return False
        sock.setblocking(False)
        try:
            made = os.lstat(path)
            self._paths[path] = (made.st_dev, made.st_ino)
        except OSError:  # gone already: nothing of ours to remove later
            pass
        self._listeners[sock.fileno()] = (sock, forward)
        self.trace(f"port forwarding: listening on {path}, {_to(forward)}")
        return True

    def request_remote(self) -> None:
        """Ask the server to listen for every -R; ``waiting_remote`` until it answers."""
        for forward in self.remote:
            self._ask_remote(forward, None)

    def ask_remote(self, forward: RemoteForward) -> None:
        """Ask for one more -R as the command line's are (ssh's ~C): the server's
        answer is said, or fatal with ExitOnForwardFailure."""
        self._ask_remote(forward, None)

    @property
    def remote_listening(self) -> list[RemoteForward]:
        """The -R forwards the server listens for now."""
        return [*self._by_port.values(), *self._by_path.values()]

    def _ask_remote(self, forward: RemoteForward, answered: Answered | None) -> None:
        if forward.listen_path is not None:
            self.conn.streamlocal_forward(forward.listen_path)
        else:
            self.conn.tcpip_forward(forward.request_address(), forward.listen_port)
        self._unanswered.append((forward, answered))

    # ---- forwards added and taken away while the connection runs (a shared
    #      connection's clients ask for them: ssh -O forward, -O cancel)

    def add_local(self, forward: LocalForward) -> None:
        """Listen for one more -L or -D (one already there: nothing to do, as ssh's
        master); a KeytoolError when it cannot."""
        if forward in self.forwards:
            return
        if not self._listen(forward):
            raise KeytoolError(f"Port forwarding failed for {forward.describe()}")
        self.forwards = (*self.forwards, forward)

    def cancel_local(self, forward: LocalForward) -> bool:
        """Stop listening for a -L or -D (its connections go on); False if there is
        no such forward."""
        found = False
        for fd, (sock, listening) in list(self._listeners.items()):
            if listening == forward:
                sock.close()
                del self._listeners[fd]
                found = True
        if found and forward.listen_path is not None and forward.listen_path in self._paths:
            _remove_own(forward.listen_path, self._paths.pop(forward.listen_path))
        if found:
            self.forwards = tuple(f for f in self.forwards if f != forward)
        return found

    def add_remote(self, forward: RemoteForward, answered: Answered) -> None:
        """Ask the server to listen for one more -R; ``answered`` is told how it went.
        One the server listens for already is answered at once (with its port), as
        ssh's master does."""
        if forward.listen_path is not None and self._by_path.get(forward.listen_path) == forward:
            answered(True, 0)
            return
        for port, listening in self._by_port.items():
            if listening == forward:
                answered(True, port)
                return
        self._ask_remote(forward, answered)

    def cancel_remote(self, forward: RemoteForward) -> bool:
        """Ask the server to stop listening for a -R; False if there is no such one."""
        if forward.listen_path is not None:
            if self._by_path.pop(forward.listen_path, None) is None:
                return False
            self.conn.cancel_forward("", 0, forward.listen_path)
        else:
            ports = [p for p, f in self._by_port.items() if f == forward]
            if not ports:
                return False
            del self._by_port[ports[0]]
            self.conn.cancel_forward(forward.request_address(), ports[0])
        self._unanswered.append((None, None))  # its answer changes nothing
        return True

    @property
    def waiting_remote(self) -> bool:
        return bool(self._unanswered)

    def _answered(self, reply: ch.GlobalReply) -> None:
        forward, answered = self._unanswered.pop(0)
        if forward is None:
            return  # a cancel
        if answered is not None:
            if reply.ok:
                port = forward.listen_port
                if port == 0 and forward.listen_path is None:
                    port = ch.allocated_port(reply)
                if forward.listen_path is not None:
                    self._by_path[forward.listen_path] = forward
                else:
                    self._by_port[port] = forward
                self.trace(f"port forwarding: the server listens for -R {forward.describe()}")
                answered(True, port)
            else:
                answered(False, 0)
            return
        if not reply.ok:
            where = (
                f"path {forward.listen_path}"
                if forward.listen_path is not None
                else f"port {forward.listen_port}"
            )
            # ssh's words: fatal with ExitOnForwardFailure, else said and on we go
            if self.exit_on_failure:
                raise KeytoolError(f"remote port forwarding failed for listen {where}")
            self.say(f"Warning: remote port forwarding failed for listen {where}")
            return
        if forward.listen_path is not None:
            self._by_path[forward.listen_path] = forward
            self.trace(
                f"port forwarding: the server listens on {forward.listen_path}, "
                f"to {forward.target} here"
            )
            return
        port = forward.listen_port
        if port == 0:
            port = ch.allocated_port(reply)
            target = forward.target_path or f"{forward.host}:{forward.port}"
            if not self.quiet:
                self.announce(f"Allocated port {port} for remote forward to {target}")
        self._by_port[port] = forward
        self.trace(
            f"port forwarding: the server listens on {forward.request_address() or '*'} "
            f"port {port}, to {forward.target} here"
        )

    def stop_listening(self) -> None:
        for sock, _ in self._listeners.values():
            sock.close()
        self._listeners.clear()
        for path, made in self._paths.items():
            _remove_own(path, made)
        self._paths.clear()
        # opens the server still sends for -R (and -A) are refused from now on
        self.conn.accept_forwarded = False
        self.conn.accept_agent = False
        self.conn.accept_x11 = False

    @property
    def active(self) -> bool:
        """A forwarded connection is still open."""
        return bool(self._by_fd)

    #: forwards alone are never done before the connection (a shared connection's
    #: master is: ``Multiplexer.done``)
    done = False

    def wake_in(self) -> float | None:
        """No timer of their own (the driver's loop asks)."""
        return None

    # ---- what the driver's loop calls

    def watch(self) -> list[tuple[int, int]]:
        """The descriptors to poll, with the events wanted."""
        wanted = [(fd, _IN) for fd in self._listeners]
        conn = self.conn
        for fd, tunnel in self._by_fd.items():
            if tunnel.connecting:
                wanted.append((fd, select.POLLOUT))
                continue
            if tunnel.socks is not None and tunnel.number is None:
                wanted.append((fd, _IN))  # the SOCKS request is still coming
                continue
            flags = 0
            number = self._live(tunnel)
            if (
                number is not None
                and tunnel.opened
                and not tunnel.local_eof
                and conn.buffered(number) <= ch.DEFAULT_WINDOW
            ):
                flags |= _IN
            if tunnel.out:
                flags |= select.POLLOUT
            if flags:
                wanted.append((fd, flags))
        return wanted

    def ready(self, fd: int, flags: int) -> None:
        listener = self._listeners.get(fd)
        if listener is not None:
            self._accept(*listener)
            return
        tunnel = self._by_fd.get(fd)
        if tunnel is None:
            return
        if tunnel.connecting:
            self._connected(tunnel)
            return
        if tunnel.socks is not None and tunnel.number is None:
            self._negotiate(tunnel)
            return
        if flags & select.POLLOUT and tunnel.out:
            self._write(tunnel)
        if tunnel.sock.fileno() >= 0 and flags & _IN:
            self._read(tunnel)

    def handle(self, event: ch.ChannelEvent) -> bool:
        """Take ``event`` if it is about one of our channels (or our global requests)."""
        if isinstance(event, ch.GlobalReply):
            if not self._unanswered:
                return False
            self._answered(event)
            return True
        if isinstance(event, ch.ChannelOpenRequest):
            self._forwarded(event)
            return True
        if event.channel in self._socks_channels:
            self._socks_event(event)
            return True
        tunnel = self._by_channel.get(event.channel)
        if tunnel is None:
            return False
        number = event.channel
        if isinstance(event, ch.ChannelData | ch.ChannelExtendedData):
            if isinstance(event, ch.ChannelData):
                data = event.data if tunnel.setup is None else self._x11_setup(tunnel, event.data)
                # written by flush, after the batch: one send for many packets
                tunnel.out += data
                self._unflushed.append(tunnel)
            else:
                self.conn.consumed(number, len(event.data))
        elif isinstance(event, ch.ChannelOpened):
            tunnel.opened = True
            self.trace(f"port forwarding: channel {number} connected ({tunnel.label})")
            if tunnel.socks is not None:
                socks, tunnel.socks = tunnel.socks, None
                if not _send_small(tunnel.sock, socks.reply(True)):
                    self._abort(tunnel)
                elif socks.rest:
                    self.conn.send(number, socks.rest)
        elif isinstance(event, ch.ChannelOpenFailed):
            self.say(
                f"port forwarding ({tunnel.label}): the server did not connect: {event.explain()}"
            )
            if tunnel.socks is not None:
                _send_small(tunnel.sock, tunnel.socks.reply(False))
            tunnel.number = None
            del self._by_channel[number]
            self._drop(tunnel)
        elif isinstance(event, ch.ChannelEof):
            tunnel.remote_eof = True
            self._maybe_shut(tunnel)
        elif isinstance(event, ch.WindowAdjusted):
            self._maybe_close(tunnel)  # the last of our data may have gone out now
        elif isinstance(event, ch.ChannelClosed):
            self.trace(f"port forwarding: channel {number} closed ({tunnel.label})")
            tunnel.number = None
            del self._by_channel[number]
            tunnel.remote_eof = True
            if tunnel.connecting:  # nothing to deliver to: the channel is gone
                del tunnel.out[:]
            elif tunnel.out:
                self._write(tunnel)
            if not tunnel.out:
                self._drop(tunnel)
        return True

    def flush(self) -> None:
        """Write what the events handled since the last call brought."""
        unflushed, self._unflushed = self._unflushed, []
        for tunnel in unflushed:
            if tunnel.out and tunnel.sock.fileno() >= 0:
                self._write(tunnel)

    def close(self) -> None:
        """Close every socket (the connection is going away)."""
        self.stop_listening()
        for tunnel in list(self._by_fd.values()):
            tunnel.sock.close()
        self._by_fd.clear()
        self._by_channel.clear()

    # ---- the sockets

    def _accept(self, listener: socket.socket, forward: LocalForward) -> None:
        while True:
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, a reset in the backlog
                now = time.monotonic()
                if now - self._accept_said >= 1:
                    self._accept_said = now
                    self.say(f"port forwarding: accept failed: {exc.strerror}")
                return
            sock.setblocking(False)
            origin = peer[0] if isinstance(peer, tuple) else "127.0.0.1"
            origin_port = peer[1] if isinstance(peer, tuple) else 0
            if isinstance(forward, DynamicForward):
                tunnel = _Tunnel(sock, None, f"from {origin} port {origin_port}", Handshake())
                tunnel.peer = (origin, origin_port)
                self._by_fd[sock.fileno()] = tunnel
                continue
            source = forward.listen_path or f"{origin} port {origin_port}"
            label = f"from {source} to {forward.target}"
            try:
                if forward.target_path is not None:
                    number = self.conn.open_direct_streamlocal(forward.target_path)
                else:
                    number = self.conn.open_direct_tcpip(
                        forward.host, forward.port, origin, origin_port
                    )
            except KeytoolError:
                sock.close()
                raise
            self.trace(f"port forwarding: connection {label}: opening channel {number}")
            tunnel = _Tunnel(sock, number, label)
            self._by_channel[number] = tunnel
            self._by_fd[sock.fileno()] = tunnel

    def _negotiate(self, tunnel: _Tunnel) -> None:
        """-D: the SOCKS client's next bytes; once it has said where, open the channel."""
        socks = tunnel.socks
        assert socks is not None
        try:
            data = tunnel.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(tunnel)
            return
        if not data:
            self._drop(tunnel)  # gone before it asked for anything
            return
        try:
            socks.feed(data)
        except FormatError as exc:
            _send_small(tunnel.sock, socks.data_to_send())
            self.say(f"port forwarding ({tunnel.label}): {exc}")
            self._drop(tunnel)
            return
        if not _send_small(tunnel.sock, socks.data_to_send()):
            self._drop(tunnel)
            return
        if socks.request is None:
            return
        host, port = socks.request
        number = self.conn.open_direct_tcpip(host, port, *tunnel.peer)
        tunnel.number = number
        tunnel.label = f"{tunnel.label} to {host} port {port}"
        self._by_channel[number] = tunnel
        self.trace(f"port forwarding: connection {tunnel.label}: opening channel {number}")

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
                reason = _reason(exc)
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

    def _x11_setup(self, tunnel: _Tunnel, data: bytes) -> bytes:
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
    ) -> _Tunnel | None:
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
        tunnel = _Tunnel(sock, number, label)
        tunnel.connecting = True
        tunnel.addresses = addresses
        tunnel.where = where
        tunnel.confirmed = confirmed is not None
        self._by_channel[number] = tunnel
        self._by_fd[sock.fileno()] = tunnel
        return tunnel

    def _connected(self, tunnel: _Tunnel) -> None:
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

    def _live(self, tunnel: _Tunnel) -> int | None:
        """The tunnel's channel number, if the channel is still there: the server's
        CLOSE frees it in the connection before its event reaches ``handle``."""
        number = tunnel.number
        return number if number is not None and number in self.conn.channels else None

    def _read(self, tunnel: _Tunnel) -> None:
        number = self._live(tunnel)
        if number is None or tunnel.local_eof:
            return
        try:
            data = tunnel.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._abort(tunnel)
            return
        if data:
            self.conn.send(number, data)
            return
        tunnel.local_eof = True
        self.conn.send_eof(number)
        self._maybe_close(tunnel)

    def _write(self, tunnel: _Tunnel) -> None:
        sent = 0
        try:
            while sent < len(tunnel.out):
                sent += tunnel.sock.send(memoryview(tunnel.out)[sent:])
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            del tunnel.out[:]
            self._abort(tunnel)
            return
        del tunnel.out[:sent]
        if tunnel.number is not None:
            self.conn.consumed(tunnel.number, sent)
            self._maybe_shut(tunnel)
        elif not tunnel.out:
            self._drop(tunnel)  # the channel closed before everything was written

    def _maybe_shut(self, tunnel: _Tunnel) -> None:
        if tunnel.connecting:
            return  # once connected (see _connected)
        if tunnel.remote_eof and not tunnel.out and not tunnel.shut:
            tunnel.shut = True
            with contextlib.suppress(OSError):
                tunnel.sock.shutdown(socket.SHUT_WR)
            self._maybe_close(tunnel)

    def _maybe_close(self, tunnel: _Tunnel) -> None:
        # both ways done, and what we queued for the channel sent (a close would drop
        # what still waits for the server's window): close the channel; the server's
        # CLOSE then drops the socket
        number = self._live(tunnel)
        if (
            tunnel.local_eof
            and tunnel.shut
            and number is not None
            and not self.conn.buffered(number)
        ):
            self.conn.close(number)

    def _abort(self, tunnel: _Tunnel) -> None:
        """The local socket failed (reset, gone): close the channel and the socket."""
        number = self._live(tunnel)
        if number is not None:
            self.conn.close(number)
            tunnel.local_eof = True
        self._drop(tunnel, keep_channel=tunnel.number is not None)

    def _drop(self, tunnel: _Tunnel, keep_channel: bool = False) -> None:
        fd = tunnel.sock.fileno()
        tunnel.sock.close()
        self._by_fd.pop(fd, None)
        if not keep_channel and tunnel.number is not None:
            self._by_channel.pop(tunnel.number, None)


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
            error = _reason(exc)
            continue
        if code in (0, errno.EINPROGRESS):
            return sock, error
        sock.close()
        error = os.strerror(code)
    return None, error


def _send_small(sock: socket.socket, data: bytes) -> bool:
    """Send a few bytes (a SOCKS reply) at once: a new connection's buffer takes them."""
    if not data:
        return True
    try:
        return sock.send(data) == len(data)
    except OSError:
        return False


def _reason(exc: Exception) -> str:
    """What went wrong, in the system's words when it has some."""
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _to(forward: LocalForward) -> str:
    if isinstance(forward, DynamicForward):
        return "a SOCKS proxy (-D)"
    return f"to {forward.target} through the server"


def _bracketed(address: tuple[object, ...]) -> str:
    """An address as ssh's bind errors show it: ``[host]:port``."""
    return f"[{address[0]}]:{address[1]}"


def _where(address: tuple[object, ...]) -> str:
    return f"{address[0]} port {address[1]}"

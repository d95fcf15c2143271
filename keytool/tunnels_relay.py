"""The state of a connection's forwards, and the relaying of bytes between a local
socket and its channel (``keytool.tunnels``).

``Tunnel`` is one connection and its channel; ``Relay`` holds every forward's state
(``Forwards.__init__``) and moves bytes both ways, end to end flow-controlled: a local
socket is read only while its channel has window, and the server's window is given
back only for bytes the local socket has taken. The classes that build on it:
``Inbound`` (keytool/tunnels_inbound.py), ``RemoteListen`` (tunnels_remote.py),
``LocalListen`` (tunnels_local.py) and ``Forwards`` (tunnels.py).
"""

from __future__ import annotations

import contextlib
import socket

from keytool.forwardspec import LocalForward, RemoteForward
from keytool.socks import Handshake
from keytool.transport import channels as ch
from keytool.x11 import Setup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from keytool.x11 import Forwarding as X11Forwarding

    Say = Callable[[str], None]
    #: told whether the server took a -R asked for later, and the port it gave
    Answered = Callable[[bool, int], None]

# one recv from a local socket takes up to this much
READ_SIZE = 256 * 1024


class Tunnel:
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


class Relay:
    """The forwards' state, and the bytes between each local socket and its channel."""

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
        self._by_channel: dict[int, Tunnel] = {}
        self._by_fd: dict[int, Tunnel] = {}
        self._unflushed: list[Tunnel] = []

    # ---- the sockets

    def _live(self, tunnel: Tunnel) -> int | None:
        """The tunnel's channel number, if the channel is still there: the server's
        CLOSE frees it in the connection before its event reaches ``handle``."""
        number = tunnel.number
        return number if number is not None and number in self.conn.channels else None

    def _read(self, tunnel: Tunnel) -> None:
        number = self._live(tunnel)
        if number is None or tunnel.local_eof:
            return
        try:
            data = tunnel.sock.recv(READ_SIZE)
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

    def _write(self, tunnel: Tunnel) -> None:
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

    def _maybe_shut(self, tunnel: Tunnel) -> None:
        if tunnel.connecting:
            return  # once connected (see _connected)
        if tunnel.remote_eof and not tunnel.out and not tunnel.shut:
            tunnel.shut = True
            with contextlib.suppress(OSError):
                tunnel.sock.shutdown(socket.SHUT_WR)
            self._maybe_close(tunnel)

    def _maybe_close(self, tunnel: Tunnel) -> None:
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

    def _abort(self, tunnel: Tunnel) -> None:
        """The local socket failed (reset, gone): close the channel and the socket."""
        number = self._live(tunnel)
        if number is not None:
            self.conn.close(number)
            tunnel.local_eof = True
        self._drop(tunnel, keep_channel=tunnel.number is not None)

    def _drop(self, tunnel: Tunnel, keep_channel: bool = False) -> None:
        fd = tunnel.sock.fileno()
        tunnel.sock.close()
        self._by_fd.pop(fd, None)
        if not keep_channel and tunnel.number is not None:
            self._by_channel.pop(tunnel.number, None)


def send_small(sock: socket.socket, data: bytes) -> bool:
    """Send a few bytes (a SOCKS reply) at once: a new connection's buffer takes them."""
    if not data:
        return True
    try:
        return sock.send(data) == len(data)
    except OSError:
        return False


def error_reason(exc: Exception) -> str:
    """What went wrong, in the system's words when it has some."""
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)

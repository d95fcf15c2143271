"""The master's side of connection sharing (ControlMaster, ``keytool exec -M``), for the
blocking driver.

keytool listens on the ControlPath socket (made under umask 177 at a temporary name,
then linked into place, so nobody connects to a socket not yet listening); each client
there (OpenSSH's ssh, or keytool exec) speaks PROTOCOL.mux (``keytool.muxproto``) and
uses this connection instead of opening its own:

- a passenger session: the client passes its stdin, stdout and stderr; a session
  channel runs its command (a shell, a subsystem) with its environment (what our
  SendEnv lets through) and, if asked, a pseudo-terminal of its terminal's size and
  modes; its output goes straight to the client's descriptors and its exit status
  back in an exit message; ``~.`` ends a terminal session, as in ssh's;
- ``-W`` (stdio forwarding): the client's stdin and stdout to a host and port;
- ``-O check`` (our pid), ``-O exit`` (the master ends), ``-O stop`` (no new
  clients), ``-O forward`` / ``-O cancel`` (-L, -D and -R added to or taken from this
  connection's forwards, ``keytool.tunnels.Forwards``; a -R with no target, connect
  port 0, is a SOCKS proxy at the server's end).

Only processes of our own user (or root) are served: the peer's uid is checked on
every connection, as ssh does. A client that sends something malformed is dropped
with one line; the master and every other session go on.

Like ``Forwards``, ``Multiplexer`` does no waiting of its own: the driver's poll loop
asks it what to watch and hands it what is ready and the channel events of its
channels. It stands in for the connection's ``Forwards`` there, passing them what is
theirs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import time
from collections.abc import Callable, Sequence

from keytool import muxproto as mux
from keytool import sigwake
from keytool import ttymodes as tty
from keytool.errors import FormatError, KeytoolError
from keytool.files import unix_listener
from keytool.forwardspec import (
    DynamicForward,
    LocalForward,
    RemoteDynamicForward,
    RemoteForward,
)
from keytool.patterns import match_pattern
from keytool.transport import channels as ch
from keytool.ttymodes import Escapes, encode_modes
from keytool.tunnels import Forwards
from keytool.x11 import Forwarding as X11Forwarding

Say = Callable[[str], None]
Ask = Callable[[str], bool]

_IN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
_READ_SIZE = 64 * 1024
# a pipe or terminal takes this much without blocking once it polls writable
_PIPE_BUF = 4096
# a client's messages and descriptors are read in pieces this large
_CONTROL_READ = 16 * 1024
_UCRED = struct.Struct("3i")
# descriptors a client may have passed and not yet had taken (a session takes 3)
_MAX_PASSED = 8


class _Session:
    """A passenger session (or a -W forward) of one client: its channel and the
    client's descriptors."""

    __slots__ = (
        "blocking",
        "closed",
        "escapes",
        "exit_status",
        "fds",
        "input_done",
        "local",
        "number",
        "opened",
        "outputs",
        "request",
        "size",
        "stdio",
    )

    def __init__(self, number: int, fds: list[int], request: mux.Request) -> None:
        self.number = number
        self.fds = fds  # stdin, stdout[, stderr]
        self.request = request
        self.stdio = request.kind == mux.NEW_STDIO_FWD
        self.opened = False
        self.closed = False  # the channel is gone; what it sent is still being written
        self.input_done = False
        self.exit_status: int | None = None
        self.outputs = (bytearray(), bytearray())  # for stdout, stderr
        # bytes of ours in each (ssh's words, escape echoes): no window credit for them
        self.local = [0, 0]
        self.escapes: Escapes | None = None
        self.size: tuple[int, int, int, int] | None = None  # its terminal's, last sent
        # the descriptors' blocking flags as the client had them (restored at the end)
        self.blocking: list[tuple[int, bool]] = []

    def say(self, text: bytes) -> None:
        """Words of ours on the client's stderr, among what the server sends there."""
        self.outputs[1].extend(text)
        self.local[1] += len(text)


class _Control:
    """One client on the control socket."""

    __slots__ = ("closing", "fds", "hello", "out", "paused", "reader", "session", "sock", "waiting")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = mux.PacketReader()
        self.fds: list[int] = []  # descriptors passed and not yet taken
        self.out = bytearray()
        self.hello = False
        self.paused = False  # a channel open is under way: its reply comes first
        self.waiting: mux.Request | None = None  # a request whose descriptors are due
        self.session: _Session | None = None
        self.closing = False  # close once ``out`` is written


class Multiplexer:
    """The mux listener and its clients, beside the connection's forwards."""

    def __init__(
        self,
        conn: ch.Connection,
        forwards: Forwards,
        path: str,
        host: str,
        trace: Say,
        say: Say,
        ask: Ask | None = None,
        send_env: Sequence[str] = (),
        persist: int | None = None,
        set_env: Sequence[str] = (),
        rekey: Callable[[], None] | None = None,
    ) -> None:
        self.conn = conn
        self.forwards = forwards
        self.path = path
        self.host = host
        self.trace = trace
        self.say = say
        self.ask = ask  # ControlMaster ask / autoask: the user allows each session
        self.send_env = tuple(send_env)
        self.set_env = tuple(set_env)  # our SetEnv: sent for every client's session too
        self.rekey = rekey  # a key exchange now (a client's ~R)
        self.persist = persist  # ControlPersist: None (no), 0 (forever) or seconds
        self.terminated = False  # -O exit
        self._listener: socket.socket | None = None
        self._controls: dict[int, _Control] = {}
        self._sessions: dict[int, _Session] = {}  # by channel
        self._draining: list[_Session] = []  # closed, their last output still going out
        # the client descriptors watched: their session, and 0 (stdin) 1 (stdout) 2 (stderr)
        self._watched: dict[int, tuple[_Session, int]] = {}
        self._idle_since = time.monotonic()
        self._wakeup: tuple[int, int] | None = None
        self._previous_winch: object = None

    # ---- what Forwards' users need of it

    @property
    def agent_socket(self) -> str | None:
        return self.forwards.agent_socket

    @property
    def x11(self) -> X11Forwarding | None:
        return self.forwards.x11

    def request_remote(self) -> None:
        self.forwards.request_remote()

    @property
    def waiting_remote(self) -> bool:
        return self.forwards.waiting_remote

    @property
    def active(self) -> bool:
        """A shared session, or a forwarded connection, is still open."""
        return bool(self._sessions) or self.forwards.active

    @property
    def done(self) -> bool:
        """Told to exit (-O exit), or ControlPersist's idle time is up."""
        if self.terminated:
            return True
        if not self.persist or self.active:
            return False
        return time.monotonic() - self._idle_since >= self.persist

    def wake_in(self) -> float | None:
        """Seconds until ``done`` may turn true by itself (ControlPersist)."""
        if not self.persist or self.active:
            return None
        return max(0.0, self._idle_since + self.persist - time.monotonic())

    # ---- listening

    def listen(self) -> bool:
        """Listen on the ControlPath; False when a socket is there already (the
        connection then goes on without sharing, as ssh's does)."""
        temporary = f"{self.path}.{os.urandom(8).hex()}"
        try:
            sock = unix_listener(temporary, 0o177, 64)
        except (OSError, ValueError) as exc:
            reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            raise KeytoolError(
                f"cannot listen on the control socket {temporary}: {reason}"
            ) from None
        try:
            os.link(temporary, self.path)
        except OSError as exc:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if exc.errno != errno.EEXIST:
                raise KeytoolError(
                    f"cannot put the control socket at {self.path}: {exc.strerror}"
                ) from None
            return False
        os.unlink(temporary)
        sock.setblocking(False)
        self._listener = sock
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self._wakeup = (read, write)
        self._previous_winch = signal.signal(signal.SIGWINCH, self._on_winch)
        # the pipe is written by the signal's C-level handler too: a SIGWINCH that comes
        # just before the loop's poll(2) (its Python handler not yet run, so nothing
        # written by ``_on_winch``) wakes it all the same, instead of waiting in poll
        # until something else happens
        sigwake.push(write)
        self.trace(f"connection sharing: listening on {self.path}")
        return True

    def stop_listening(self) -> None:
        """No new clients (nor forwarded connections); those there go on."""
        self.forwards.stop_listening()
        self._stop_mux_listener()

    def _stop_mux_listener(self) -> None:
        if self._listener is None:
            return
        self._listener.close()
        self._listener = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def close(self) -> None:
        """The connection is going away: every client and descriptor is let go."""
        self._stop_mux_listener()
        for control in list(self._controls.values()):
            self._drop(control)
        self.forwards.close()
        if self._wakeup is not None:
            signal.signal(signal.SIGWINCH, self._previous_winch)  # type: ignore[arg-type]
            sigwake.pop(self._wakeup[1])
            for fd in self._wakeup:
                os.close(fd)
            self._wakeup = None

    def _on_winch(self, signum: int, frame: object) -> None:
        # a client's terminal changed size: it tells us so (ssh's mux clients relay
        # SIGWINCH to the master); our own terminal's handler, if any, runs too
        if self._wakeup is not None:
            with contextlib.suppress(OSError):
                os.write(self._wakeup[1], b"w")
        previous = self._previous_winch
        if callable(previous):
            previous(signum, frame)

    # ---- what the driver's loop calls

    def watch(self) -> list[tuple[int, int]]:
        wanted = self.forwards.watch()
        if self._listener is not None:
            wanted.append((self._listener.fileno(), _IN))
        if self._wakeup is not None:
            wanted.append((self._wakeup[0], _IN))
        for fd, control in self._controls.items():
            flags = select.POLLOUT if control.out else 0
            if not control.closing:
                flags |= _IN
            wanted.append((fd, flags))
        self._watched = {}
        for session in [*self._sessions.values(), *self._draining]:
            number = session.number
            if (
                session.opened
                and not session.closed
                and not session.input_done
                and number in self.conn.channels
                and self.conn.buffered(number) <= ch.DEFAULT_WINDOW
            ):
                wanted.append((session.fds[0], _IN))
                self._watched[session.fds[0]] = (session, 0)
            for index, pending in enumerate(session.outputs):
                if pending:
                    wanted.append((session.fds[1 + index], select.POLLOUT))
                    self._watched[session.fds[1 + index]] = (session, 1 + index)
        return wanted

    def ready(self, fd: int, flags: int) -> None:
        if self._listener is not None and fd == self._listener.fileno():
            self._accept()
            return
        if self._wakeup is not None and fd == self._wakeup[0]:
            # a signal came (perhaps not SIGWINCH: any handled one is told here): the
            # sizes are read from the terminals themselves, whether or not the
            # handler has run yet
            with contextlib.suppress(BlockingIOError):
                while os.read(fd, 64):
                    pass
            self._resized()
            return
        control = self._controls.get(fd)
        if control is not None:
            if flags & select.POLLOUT:
                self._write_control(control)
            if fd in self._controls and flags & _IN:
                self._read_control(control)
            return
        watched = self._watched.get(fd)
        if watched is None:
            self.forwards.ready(fd, flags)
            return
        session, role = watched
        if not session.fds:
            return  # let go since the poll
        if role == 0:
            self._read_input(session)
        elif session.outputs[role - 1]:
            self._write_output(session, role - 1)

    def handle(self, event: ch.ChannelEvent) -> bool:
        session = self._sessions.get(event.channel)
        if session is None:
            return self.forwards.handle(event)
        number = event.channel
        if isinstance(event, ch.ChannelData):
            session.outputs[0].extend(event.data)
        elif isinstance(event, ch.ChannelExtendedData):
            if event.code == ch.EXTENDED_DATA_STDERR and len(session.fds) > 2:
                session.outputs[1].extend(event.data)
            elif number in self.conn.channels:
                self.conn.consumed(number, len(event.data))
        elif isinstance(event, ch.ChannelOpened):
            self._opened(session)
        elif isinstance(event, ch.ChannelOpenFailed):
            control = self._control_of(session)
            if control is not None:  # told first: the end of the session lets it go
                refused = "Session open refused by peer"  # OpenSSH's master's words
                self._reply(
                    control, mux.error_reply(mux.S_FAILURE, session.request.request_id, refused)
                )
                control.paused = False
                # what it asked meanwhile is answered before it is let go
                self._serve(control)
            self._end_session(session, send_exit=False)
        elif isinstance(event, ch.ChannelRequestReply):
            self._request_answered(session, event)
        elif isinstance(event, ch.ExitStatus):
            session.exit_status = event.status
        elif isinstance(event, ch.ChannelEof):
            # what came is written out; the close follows. A client's -W ends with the
            # far end's EOF, as ssh's stdio channels do ("force drain"): its stdin is
            # not waited for
            if session.stdio and not session.input_done and event.channel in self.conn.channels:
                session.input_done = True
                self.conn.send_eof(event.channel)
        elif isinstance(event, ch.ChannelClosed):
            self._end_session(session, send_exit=True)
        return True

    def flush(self) -> None:
        self.forwards.flush()
        for session in [*self._sessions.values(), *self._draining]:
            for index in (0, 1):
                if session.outputs[index] and session.fds:
                    self._write_output(session, index)
        for control in list(self._controls.values()):
            if control.out:
                self._write_control(control)

    # ---- the control sockets

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.say(f"connection sharing: accept failed: {exc.strerror}")
                return
            try:
                _, uid, _ = _UCRED.unpack(
                    sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
                )
            except OSError:
                sock.close()
                continue
            if uid != 0 and uid != os.getuid():
                # ssh's words
                self.say(f"multiplex uid mismatch: peer euid {uid} != uid {os.getuid()}")
                sock.close()
                continue
            sock.setblocking(False)
            control = _Control(sock)
            self._controls[sock.fileno()] = control
            self.trace("connection sharing: a client connected")
            self._reply(control, mux.hello())

    def _read_control(self, control: _Control) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(control.sock, _CONTROL_READ, 4)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(control)
            return
        control.fds.extend(fds)
        if len(control.fds) > _MAX_PASSED:  # more than any request takes: not a client
            self.say("connection sharing: a client passed too many descriptors; dropped")
            self._drop(control)
            return
        if not data:
            self._drop(control)
            return
        control.reader.feed(data)
        self._serve(control)

    def _serve(self, control: _Control) -> None:
        """What the client sent and we have not yet acted on, taken now; a malformed
        message drops that client alone, with one line (as ssh's master)."""
        try:
            self._process(control)
        except FormatError as exc:
            self.say(f"connection sharing: a client sent {exc}; dropped")
            self._drop(control)

    def _process(self, control: _Control) -> None:
        while control.sock.fileno() >= 0 and not control.closing:
            if control.waiting is not None:
                request = control.waiting
                count = request.descriptors
                if len(control.fds) < count:
                    return
                if not control.reader.take_markers(count):
                    return
                control.waiting = None
                fds, control.fds = control.fds[:count], control.fds[count:]
                self._start_session(control, request, fds)
                continue
            if control.paused:
                return
            body = control.reader.next()
            if body is None:
                return
            if not control.hello:
                hello = mux.parse_hello(body)
                if hello.version != mux.VERSION:
                    raise FormatError(f"mux protocol version {hello.version}, not {mux.VERSION}")
                control.hello = True
                continue
            self._request(control, mux.parse_request(body))

    def _request(self, control: _Control, request: mux.Request) -> None:
        rid = request.request_id
        kind = request.kind
        if request.descriptors:
            control.waiting = request
        elif kind == mux.ALIVE_CHECK:
            self._reply(control, mux.value_reply(mux.S_ALIVE, rid, os.getpid()))
        elif kind == mux.TERMINATE:
            if self.ask is not None and not self.ask(
                f"Terminate shared connection to {self.host}? "
            ):
                self._reply(
                    control, mux.error_reply(mux.S_PERMISSION_DENIED, rid, "Permission denied")
                )
                return
            self.trace("connection sharing: a client asked the master to exit")
            self._reply(control, mux.ok_reply(rid))
            self._write_control(control)
            self.terminated = True
        elif kind == mux.STOP_LISTENING:
            self.trace("connection sharing: a client asked the master to stop listening")
            self._stop_mux_listener()
            self._reply(control, mux.ok_reply(rid))
        elif kind in (mux.OPEN_FWD, mux.CLOSE_FWD):
            assert isinstance(request.detail, mux.Forward)
            self._forward(control, rid, request.detail)
        else:
            reason = "proxy mode is not supported" if kind == mux.PROXY else "unsupported request"
            self._reply(control, mux.error_reply(mux.S_FAILURE, rid, reason))

    def _reply(self, control: _Control, data: bytes) -> None:
        control.out += data
        self._write_control(control)

    def _write_control(self, control: _Control) -> None:
        sent = 0
        try:
            while sent < len(control.out):
                sent += control.sock.send(memoryview(control.out)[sent:])
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            del control.out[:]
            self._drop(control)
            return
        del control.out[:sent]
        if control.closing and not control.out and control.session is None:
            self._drop(control)

    def _drop(self, control: _Control) -> None:
        """The client is gone (or is let go): its session's channel is closed."""
        fd = control.sock.fileno()
        self._controls.pop(fd, None)
        control.sock.close()
        for passed in control.fds:
            with contextlib.suppress(OSError):
                os.close(passed)
        control.fds.clear()
        session = control.session
        if session is not None:
            control.session = None
            if session.number in self.conn.channels:
                self.conn.close(session.number)
            self._release(session)

    def _control_of(self, session: _Session) -> _Control | None:
        for control in self._controls.values():
            if control.session is session:
                return control
        return None

    # ---- forwards asked for by a client (-O forward, -O cancel, and -L/-R/-D given
    #      with a session)

    def _forward(self, control: _Control, rid: int, request: mux.Forward) -> None:
        try:
            forward = _forward_spec(request)
        except FormatError as exc:
            self._reply(control, mux.error_reply(mux.S_FAILURE, rid, str(exc)))
            return
        if request.close:
            if isinstance(forward, RemoteForward):
                found = self.forwards.cancel_remote(forward)
            else:
                found = self.forwards.cancel_local(forward)
            if found:
                self._reply(control, mux.ok_reply(rid))
            else:
                self._reply(control, mux.error_reply(mux.S_FAILURE, rid, "port not forwarded"))
            return
        if isinstance(forward, RemoteForward):

            def answered(ok: bool, port: int) -> None:
                if control.sock.fileno() < 0:
                    return
                if not ok:
                    where = forward.listen_path or f"port {forward.listen_port}"
                    reason = f"remote port forwarding failed for listen {where}"
                    self._reply(control, mux.error_reply(mux.S_FAILURE, rid, reason))
                elif forward.listen_port == 0 and forward.listen_path is None:
                    self._reply(control, mux.value_reply(mux.S_REMOTE_PORT, rid, port))
                else:
                    self._reply(control, mux.ok_reply(rid))

            self.forwards.add_remote(forward, answered)
            return
        try:
            self.forwards.add_local(forward)
        except KeytoolError as exc:
            self._reply(control, mux.error_reply(mux.S_FAILURE, rid, str(exc)))
            return
        self._reply(control, mux.ok_reply(rid))

    # ---- sessions

    def _start_session(self, control: _Control, request: mux.Request, fds: list[int]) -> None:
        rid = request.request_id
        if control.session is not None:  # as ssh's master: one per client
            _close_all(fds)
            self._reply(
                control, mux.error_reply(mux.S_FAILURE, rid, "Multiple sessions not supported")
            )
            return
        ask = self.ask if request.kind == mux.NEW_SESSION else None
        if ask is not None and not ask(f"Allow shared connection to {self.host}? "):
            _close_all(fds)
            denied = mux.error_reply(mux.S_PERMISSION_DENIED, rid, "Permission denied")
            self._reply(control, denied)
            return
        detail = request.detail
        if isinstance(detail, mux.StdioForward):
            where = f"{detail.host} port {detail.port}"
            self.trace(f"connection sharing: a client forwards its stdio to {where}")
            number = self.conn.open_direct_tcpip(detail.host, detail.port)
        else:
            assert isinstance(detail, mux.NewSession)
            shown = detail.command.decode("utf-8", "replace") or "a shell"
            self.trace(f"connection sharing: a client's session: {shown}")
            number = self.conn.open_session()
        session = _Session(number, fds, request)
        tty = isinstance(detail, mux.NewSession) and detail.want_tty
        if tty and isinstance(detail, mux.NewSession) and detail.escape_char < 256:
            session.escapes = Escapes(detail.escape_char, shared=True)  # NO_ESCAPE: past 255
        for fd in fds:
            blocking = os.get_blocking(fd)
            session.blocking.append((fd, blocking))
            if not os.isatty(fd):  # as ssh: a terminal stays blocking (it is the user's)
                with contextlib.suppress(OSError):
                    os.set_blocking(fd, False)
        control.session = session
        control.paused = True  # nothing more from it until the channel is open
        self._sessions[number] = session

    def _opened(self, session: _Session) -> None:
        session.opened = True
        control = self._control_of(session)
        number = session.number
        detail = session.request.detail
        if isinstance(detail, mux.NewSession):
            conn = self.conn
            x11 = self.forwards.x11
            if detail.want_x11 and x11 is not None:  # as ssh's master: to its own display
                conn.request_x11(number, *x11.request())
            if detail.want_agent and self.forwards.agent_socket is not None:
                conn.forward_agent(number)
            # as ssh's master: the client's variables our SendEnv lets through, then
            # our own SetEnv
            sent = [entry for entry in detail.env if self._sendable(entry)]
            for entry in [*sent, *self.set_env]:
                name, sep, value = entry.partition("=")
                if sep:
                    conn.setenv(number, name.encode("utf-8", "surrogateescape"),
                                value.encode("utf-8", "surrogateescape"))  # fmt: skip
            if detail.want_tty:
                stdin = session.fds[0]
                try:
                    modes = encode_modes(termios.tcgetattr(stdin))
                except termios.error:  # as ssh's master: a zeroed termios's modes
                    modes = encode_modes([0, 0, 0, 0, 0, 0, [0] * 32])
                session.size = _window(stdin)
                conn.pty(number, detail.term, session.size, modes)  # as ssh: empty stays so
            if detail.subsystem:
                conn.subsystem(number, detail.command.decode("utf-8", "replace"))
            elif detail.command:
                conn.exec(number, detail.command)
            else:
                conn.shell(number)
        if control is not None:
            self._reply(
                control, mux.value_reply(mux.S_SESSION_OPENED, session.request.request_id, number)
            )
            control.paused = False
            self._serve(control)

    def _sendable(self, entry: str) -> bool:
        """A client's NAME=value that our SendEnv's patterns let through."""
        name = entry.partition("=")[0]
        return any(match_pattern(name, pattern) for pattern in self.send_env)

    def _request_answered(self, session: _Session, reply: ch.ChannelRequestReply) -> None:
        if reply.ok:
            return
        control = self._control_of(session)
        if reply.request == "pty-req":
            if control is not None:
                self._reply(control, mux.tty_failed(session.number))
            return
        if reply.request == "x11-req":  # ssh's master's words, on the client's stderr
            session.say(b"X11 forwarding request failed\r\n")
            return
        if reply.request in ("exec", "shell", "subsystem") and session.number in self.conn.channels:
            self.say(f"connection sharing: the server refused the client's {reply.request} request")
            self.conn.close(session.number)

    def _read_input(self, session: _Session) -> None:
        number = session.number
        if number not in self.conn.channels:
            return
        try:
            data = os.read(session.fds[0], _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            session.input_done = True
            self.conn.send_eof(number)
            return
        if session.escapes is not None:
            escapes = session.escapes
            data, actions = escapes.feed(data)
            for action in actions:
                if self._escape(session, action, escapes.char):
                    return
        if data:
            self.conn.send(number, data)

    def _escape(self, session: _Session, action: str, char: int) -> bool:
        """An escape typed in a client's terminal session, as ssh's master takes it:
        ``~.`` ends this session alone (True), the others as in ``blocking``."""
        conn, number = self.conn, session.number
        shared = tty.help_text(char, shared=True)
        text = shared if action == tty.HELP else tty.echo(char, action, shared=True)
        if action == tty.LIST:
            text += tty.open_channels((n, c.kind) for n, c in sorted(conn.channels.items()))
        # ssh's master closes the session at once on ~.: its echo never reaches the client
        if text and len(session.fds) > 2 and action != tty.DISCONNECT:
            session.say(text.encode())
        if action == tty.DISCONNECT:
            session.input_done = True
            conn.close(number)
            return True
        if action == tty.BREAK:
            conn.send_break(number)
        elif action == tty.REKEY and self.rekey is not None:
            self.rekey()
        return False

    def _write_output(self, session: _Session, index: int) -> None:
        pending = session.outputs[index]
        fd = session.fds[1 + index]
        try:
            # a terminal stays blocking: no more than it takes at once
            written = os.write(fd, pending[:_PIPE_BUF] if os.isatty(fd) else pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            written = len(pending)  # the client's output is gone: drop it, as ssh
        del pending[:written]
        # ours counted as written first: the server may be credited late, never early
        ours = min(written, session.local[index])
        session.local[index] -= ours
        if not session.closed and session.number in self.conn.channels and written > ours:
            self.conn.consumed(session.number, written - ours)
        if session.closed and not any(session.outputs):
            self._finish(session)

    def _resized(self) -> None:
        for session in self._sessions.values():
            if session.size is None or session.number not in self.conn.channels:
                continue
            size = _window(session.fds[0])
            if size != session.size:
                session.size = size
                self.conn.window_change(session.number, size)

    def _end_session(self, session: _Session, send_exit: bool) -> None:
        """The channel closed: what it sent is written out, then the client is told how
        the command ended (an exit status; none for a signal, as ssh) and let go."""
        self._sessions.pop(session.number, None)
        session.closed = True
        control = self._control_of(session)
        status = session.exit_status
        if send_exit and control is not None and status is not None and not session.stdio:
            self._reply(control, mux.value_reply(mux.S_EXIT_MESSAGE, session.number, status))
        if any(session.outputs) and session.fds:
            self._draining.append(session)
        else:
            self._finish(session)

    def _finish(self, session: _Session) -> None:
        control = self._control_of(session)
        self._release(session)
        if control is not None:
            control.session = None
            control.closing = True
            self._write_control(control)
        if not self._sessions:
            self._idle_since = time.monotonic()

    def _release(self, session: _Session) -> None:
        if self._sessions.get(session.number) is session:
            del self._sessions[session.number]
        if session in self._draining:
            self._draining.remove(session)
        for fd, blocking in session.blocking:
            with contextlib.suppress(OSError):
                os.set_blocking(fd, blocking)
        _close_all(session.fds)
        session.fds = []
        session.blocking = []
        if not self._sessions:
            self._idle_since = time.monotonic()


def _forward_spec(request: mux.Forward) -> LocalForward:
    """The forward a client's OPEN_FWD or CLOSE_FWD names."""
    for name in (request.listen_host, request.connect_host):
        if "\0" in name:  # no host or socket path has one: the system's calls refuse it
            raise FormatError(f"a NUL byte in the forward's address {name!r}")
    listen_path = request.listen_host if request.listen_port == mux.PORT_STREAMLOCAL else None
    target_path = request.connect_host if request.connect_port == mux.PORT_STREAMLOCAL else None
    bind: str | None = None
    if listen_path is None:
        bind = request.listen_host or None
        if request.listen_port > 65535:
            raise FormatError(f"bad listen port {request.listen_port}")
    listen_port = 0 if listen_path is not None else request.listen_port
    if request.kind == mux.FWD_DYNAMIC:
        return DynamicForward(bind, listen_port, listen_path)
    if request.kind == mux.FWD_REMOTE and target_path is None and request.connect_port == 0:
        return _remote_dynamic(bind, listen_port, listen_path)
    if target_path is None and not 0 < request.connect_port < 65536:
        raise FormatError(f"bad connect port {request.connect_port}")
    host = "" if target_path is not None else request.connect_host
    port = 0 if target_path is not None else request.connect_port
    if request.kind == mux.FWD_REMOTE:
        return RemoteForward(bind, listen_port, host, port, listen_path, target_path)
    return LocalForward(bind, listen_port, host, port, listen_path, target_path)


def _remote_dynamic(bind: str | None, port: int, listen_path: str | None) -> RemoteForward:
    """A -R with no target (connect port 0; its host "socks" from ssh's client, or
    empty): a SOCKS proxy at the server's end."""
    if listen_path is not None:
        raise FormatError("a remote SOCKS forward listens on a port, not a socket path")
    return RemoteDynamicForward(bind, port)


def _window(fd: int) -> tuple[int, int, int, int]:
    """A terminal's columns, rows and pixel size (80x24 when it cannot be told)."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return 80, 24, 0, 0
    rows, cols, width, height = struct.unpack("HHHH", packed)
    return cols or 80, rows or 24, width, height


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)

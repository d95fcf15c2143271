"""The ControlMaster's passenger sessions (``Multiplexer``'s third base): a session (or
-W forward) started on the client's descriptors, the server's answers to its requests,
its input sent (``~`` escapes taken in a terminal session), its output written to the
client with the window given back, its terminal's size followed, and its end told to
the client (the exit status) once all it sent is written."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import termios
import time

from keytool import muxproto as mux
from keytool import ttymodes as tty
from keytool.muxmaster_clients import Control, Session
from keytool.muxmaster_control import ControlSockets, close_all
from keytool.patterns import match_pattern
from keytool.transport import channels as ch
from keytool.ttymodes import Escapes

_READ_SIZE = 64 * 1024
# a pipe or terminal takes this much without blocking once it polls writable
_PIPE_BUF = 4096


class Sessions(ControlSockets):
    """The clients' sessions and -W forwards, on their channels."""

    # ---- sessions

    def _start_session(self, control: Control, request: mux.Request, fds: list[int]) -> None:
        rid = request.request_id
        if control.session is not None:  # as ssh's master: one per client
            close_all(fds)
            self._reply(
                control, mux.error_reply(mux.S_FAILURE, rid, "Multiple sessions not supported")
            )
            return
        ask = self.ask if request.kind == mux.NEW_SESSION else None
        if ask is not None and not ask(f"Allow shared connection to {self.host}? "):
            close_all(fds)
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
        session = Session(number, fds, request)
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

    def _sendable(self, entry: str) -> bool:
        """A client's NAME=value that our SendEnv's patterns let through."""
        name = entry.partition("=")[0]
        return any(match_pattern(name, pattern) for pattern in self.send_env)

    def _request_answered(self, session: Session, reply: ch.ChannelRequestReply) -> None:
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

    def _read_input(self, session: Session) -> None:
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

    def _escape(self, session: Session, action: str, char: int) -> bool:
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

    def _write_output(self, session: Session, index: int) -> None:
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
            size = window(session.fds[0])
            if size != session.size:
                session.size = size
                self.conn.window_change(session.number, size)

    def _end_session(self, session: Session, send_exit: bool) -> None:
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

    def _finish(self, session: Session) -> None:
        control = self._control_of(session)
        self._release(session)
        if control is not None:
            control.session = None
            control.closing = True
            self._write_control(control)
        if not self._sessions:
            self._idle_since = time.monotonic()


def window(fd: int) -> tuple[int, int, int, int]:
    """A terminal's columns, rows and pixel size (80x24 when it cannot be told)."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return 80, 24, 0, 0
    rows, cols, width, height = struct.unpack("HHHH", packed)
    return cols or 80, rows or 24, width, height

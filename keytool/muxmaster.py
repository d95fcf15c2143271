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

The parts: the clients' records (``Control``, ``Session``) in
keytool/muxmaster_clients.py; then ``Multiplexer``'s bases, each building on the one
before: its state and the ControlPath listener in muxmaster_listen.py, the control
sockets in muxmaster_control.py, the sessions in muxmaster_sessions.py, the clients'
requests in muxmaster_requests.py. ``Multiplexer`` itself, here, is what the driver's
loop calls (and a session's channel opened).
"""

from __future__ import annotations

import contextlib
import os
import select
import termios

from keytool import muxproto as mux
from keytool.muxmaster_clients import Session
from keytool.muxmaster_listen import Ask, Say
from keytool.muxmaster_requests import Requests
from keytool.muxmaster_sessions import window
from keytool.transport import channels as ch
from keytool.ttymodes import encode_modes

__all__ = ["Ask", "Multiplexer", "Say"]


_IN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


class Multiplexer(Requests):
    """The mux listener and its clients, beside the connection's forwards."""

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

    # ---- sessions

    def _opened(self, session: Session) -> None:
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
                session.size = window(stdin)
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

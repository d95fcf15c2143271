"""The ControlMaster's control sockets (``Multiplexer``'s second base): a client
accepted (our own user's, or root's, alone), replies written to it, a client dropped
with its session's channel, a session's descriptors given back and closed, and every
client let go when the connection ends."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time
from collections.abc import Sequence

from keytool import muxproto as mux
from keytool import sigwake
from keytool.muxmaster_clients import Control, Session
from keytool.muxmaster_listen import Listening

_UCRED = struct.Struct("3i")


class ControlSockets(Listening):
    """The clients' control sockets, and the letting go of clients and sessions."""

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
            control = Control(sock)
            self._controls[sock.fileno()] = control
            self.trace("connection sharing: a client connected")
            self._reply(control, mux.hello())

    def _reply(self, control: Control, data: bytes) -> None:
        control.out += data
        self._write_control(control)

    def _write_control(self, control: Control) -> None:
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

    def _drop(self, control: Control) -> None:
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

    def _control_of(self, session: Session) -> Control | None:
        for control in self._controls.values():
            if control.session is session:
                return control
        return None

    def _release(self, session: Session) -> None:
        if self._sessions.get(session.number) is session:
            del self._sessions[session.number]
        if session in self._draining:
            self._draining.remove(session)
        for fd, blocking in session.blocking:
            with contextlib.suppress(OSError):
                os.set_blocking(fd, blocking)
        close_all(session.fds)
        session.fds = []
        session.blocking = []
        if not self._sessions:
            self._idle_since = time.monotonic()


def close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)

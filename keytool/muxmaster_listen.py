"""The ControlMaster's state and its listening (the first of ``Multiplexer``'s bases):
the clients and sessions it keeps, what the connection's users ask of its forwards
(passed on to ``Forwards``), whether it is done (-O exit, ControlPersist), the
ControlPath socket (made at a temporary name, then linked into place) and the pipe
that a SIGWINCH writes to, so a client's new terminal size wakes the loop."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence

from keytool import sigwake
from keytool.errors import KeytoolError
from keytool.files import unix_listener
from keytool.muxmaster_clients import Control, Session
from keytool.transport import channels as ch
from keytool.tunnels import Forwards
from keytool.x11 import Forwarding as X11Forwarding

Say = Callable[[str], None]
Ask = Callable[[str], bool]


class Listening:
    """The master's state, what Forwards' users need of it, and the ControlPath
    listener."""

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
        self._controls: dict[int, Control] = {}
        self._sessions: dict[int, Session] = {}  # by channel
        self._draining: list[Session] = []  # closed, their last output still going out
        # the client descriptors watched: their session, and 0 (stdin) 1 (stdout) 2 (stderr)
        self._watched: dict[int, tuple[Session, int]] = {}
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

    def _on_winch(self, signum: int, frame: object) -> None:
        # a client's terminal changed size: it tells us so (ssh's mux clients relay
        # SIGWINCH to the master); our own terminal's handler, if any, runs too
        if self._wakeup is not None:
            with contextlib.suppress(OSError):
                os.write(self._wakeup[1], b"w")
        previous = self._previous_winch
        if callable(previous):
            previous(signum, frame)

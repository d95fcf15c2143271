"""The local terminal of a session with a pseudo-terminal (``keytool exec -t``, or a
shell): its modes and size for the pty-req, raw mode while the session runs (restored
whatever happens), and a descriptor that becomes readable when the window is resized
(SIGWINCH), for the driver's poll loop."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import termios
import tty
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from keytool import sigwake
from keytool.ttymodes import Escapes, encode_modes

#: times ssh asks "Accept updated hostkeys?" before taking it as no
_ASK_TRIES = 3


def terminal_name(set_env: Sequence[str] = ()) -> str:
    """The terminal's name for the pty-req, as ssh picks it: the value of SetEnv's
    first TERM entry unless that is empty, else $TERM here (unset: an empty name)."""
    for entry in set_env:
        name, sep, value = entry.partition("=")
        if sep and name == "TERM":
            return value or os.environ.get("TERM", "")
    return os.environ.get("TERM", "")


class LocalTerminal:
    def __init__(
        self,
        fd: int = 0,
        escape: int | None = ord("~"),
        required: bool = False,
        set_env: Sequence[str] = (),
    ) -> None:
        """``set_env``: SetEnv's entries, whose TERM names the terminal (as in ssh)."""
        self.fd = fd
        self.required = required  # asked for (-t, RequestTTY): no terminal, no session
        self.term = terminal_name(set_env)
        self._saved: list[Any] | None = None
        try:
            self.modes = encode_modes(termios.tcgetattr(fd))
        except termios.error:
            self.modes = encode_modes(None)
        self.escapes = Escapes(escape) if escape is not None else None
        #: EnableEscapeCommandline: ~C opens ssh's command line; PermitLocalCommand: its !
        self.has_command_line = False
        self.local_commands = False
        self._wakeup: tuple[int, int] | None = None
        self._previous: object = None

    def size(self) -> tuple[int, int, int, int]:
        """Columns, rows, width and height in pixels, as the terminal tells them (all
        0 when there is none to ask, as ssh sends them for -tt)."""
        try:
            packed = fcntl.ioctl(self.fd, termios.TIOCGWINSZ, b"\0" * 8)
        except OSError:
            return 0, 0, 0, 0
        rows, cols, width, height = struct.unpack("HHHH", packed)
        return cols, rows, width, height

    @property
    def resized_fd(self) -> int:
        """Readable once the window changed size since ``resized()`` last said so."""
        assert self._wakeup is not None
        return self._wakeup[0]

    def resized(self) -> bool:
        """Whether the window changed size (since the last call)."""
        if self._wakeup is None:
            return False
        seen = b""
        with contextlib.suppress(BlockingIOError):
            while data := os.read(self._wakeup[0], 64):
                seen += data
        # our handler's b"w", or the number of the signal that the C-level handler
        # writes (signal.set_wakeup_fd: for every signal handled, SIGWINCH or not)
        return b"w" in seen or bytes([signal.SIGWINCH]) in seen

    def ask_host_keys(self, lines: list[str]) -> bool:
        """UpdateHostKeys ask, as ssh asks in a session: the terminal itself again for
        the question (three tries), then raw once more."""
        from keytool.hostcheck import question_prompter

        shown = [
            "The server has updated its host keys.",
            "These changes were verified by the server's existing trusted key.",
            *lines,
        ]
        self._cooked()
        # the driver reads our stdin without blocking: the question's answer must block
        blocking = os.get_blocking(self.fd)
        os.set_blocking(self.fd, True)
        try:
            os.write(2, "".join(f"{line}\n" for line in shown).encode())
            ask = question_prompter()
            for _ in range(_ASK_TRIES):
                answer = ask("Accept updated hostkeys? (yes/no): ") if ask else None
                if answer is None or answer.strip().lower() == "no":
                    return False
                if answer.strip().lower() == "yes":
                    return True
                os.write(2, b'Please enter "yes" or "no"\n')
            return False
        finally:
            os.set_blocking(self.fd, blocking)
            self._raw()

    @contextlib.contextmanager
    def command_line(self) -> Iterator[None]:
        """ssh's ~C command line: the terminal itself again (a line is typed, shown as
        typed, and what it did is said) and ^C ignored, as ssh's; raw after."""
        self._cooked()
        blocking = os.get_blocking(self.fd)
        os.set_blocking(self.fd, True)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            os.set_blocking(self.fd, blocking)
            self._raw()

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        """The terminal itself again meanwhile (a LocalCommand runs), raw after."""
        self._cooked()
        try:
            yield
        finally:
            self._raw()

    def restore(self) -> None:
        """The terminal itself again for good (ssh's ~&: what goes on in the background
        leaves it so)."""
        self._cooked()
        self._saved = None

    def _cooked(self) -> None:
        if self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def _raw(self) -> None:
        if self._saved is not None:
            with contextlib.suppress(termios.error):
                tty.setraw(self.fd, termios.TCSADRAIN)

    def _on_winch(self, _signum: int, _frame: FrameType | None) -> None:
        if self._wakeup is not None:
            with contextlib.suppress(OSError):
                os.write(self._wakeup[1], b"w")

    def __enter__(self) -> LocalTerminal:
        """Raw mode (as ssh's: no echo, no line editing, no signals, no output
        processing: the remote terminal does all that) and the resize watch."""
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self._wakeup = (read, write)
        self._previous = signal.signal(signal.SIGWINCH, self._on_winch)
        # Python runs ``_on_winch`` between bytecodes: a SIGWINCH that comes just
        # before the driver's poll(2) would wait there for something else to happen.
        # The signal's C-level handler writes to the pipe too, and so wakes it
        sigwake.push(write)
        try:
            self._saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSADRAIN)
        except termios.error:
            self._saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        signal.signal(signal.SIGWINCH, self._previous)  # type: ignore[arg-type]
        if self._wakeup is not None:
            sigwake.pop(self._wakeup[1])
            for fd in self._wakeup:
                os.close(fd)
            self._wakeup = None

"""Terminal adapter: passphrase and password prompts, yes/no questions, SSH_ASKPASS.

SSH_ASKPASS_REQUIRE works as in ssh(1): ``never`` never runs the askpass program,
``prefer`` runs it when there is a display (DISPLAY or WAYLAND_DISPLAY), ``force``
runs it even on a terminal; unset, it runs only without a terminal and with a display.
The terminal is the controlling one (/dev/tty), whatever stdin is: ssh asks there, so
``tar c . | keytool exec host tar x`` still asks for a password.

Answers are kept as the bytes typed or printed (surrogate escapes): a password or
passphrase need not be UTF-8.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from keytool.errors import AskpassError, KeytoolError


def has_terminal() -> bool:
    """A controlling terminal to ask on (stdin may be a pipe: ssh asks on /dev/tty)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def _display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def askpass_program(interactive: bool) -> str | None:
    program = os.environ.get("SSH_ASKPASS")
    require = os.environ.get("SSH_ASKPASS_REQUIRE", "").lower()  # as ssh: any case
    if not program or require == "never":
        return None
    if require == "force":
        return program
    # as ssh's read_passphrase: "prefer" needs a display as much as the default does
    if _display() and (require == "prefer" or not interactive):
        return program
    return None


def run_askpass(program: str, prompt: str, confirm: bool = False) -> str | None:
    """Ask through the askpass program; None when the user cancels."""
    import subprocess

    env = dict(os.environ)
    if confirm:
        env["SSH_ASKPASS_PROMPT"] = "confirm"
    try:
        result = subprocess.run(
            [program, prompt], capture_output=True, env=env, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise AskpassError(f"cannot run the askpass program {program}: {reason}") from None
    if result.returncode != 0:
        return None
    # as ssh: the answer ends at the first carriage return or newline, and its bytes
    # are kept as they are
    text = result.stdout.decode("utf-8", "surrogateescape")
    return text.split("\n", 1)[0].split("\r", 1)[0]


def is_yes(answer: str | None) -> bool:
    """A confirmation given, as ssh's ask_permission reads it: an empty answer or
    "yes" in any case, nothing around it (None: cancelled)."""
    return answer is not None and (answer == "" or (answer.isascii() and answer.lower() == "yes"))


def open_prompt(prompt: str, hidden: bool, nonblocking: bool = False) -> tuple[int, Any] | None:
    """The controlling terminal opened on a descriptor of its own (a text file opened
    "r+" on a terminal fails as it turns from writing to reading), its echo off when
    ``hidden`` (the modes to give back returned with it), and the prompt written as
    ssh's read_passphrase writes it: a carriage return first, so it starts the line
    whatever was typed ahead. None without a terminal."""
    import termios

    flags = os.O_RDWR | os.O_NOCTTY | (os.O_NONBLOCK if nonblocking else 0)
    try:
        fd = os.open("/dev/tty", flags)
    except OSError:
        return None
    saved = None
    try:
        if hidden:
            with contextlib.suppress(termios.error):
                saved = termios.tcgetattr(fd)
        if saved is not None:
            quiet = list(saved)
            quiet[3] &= ~(termios.ECHO | termios.ECHONL)
            termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
        os.write(fd, b"\r" + prompt.encode("utf-8", "replace"))
    except (OSError, termios.error):  # in the background, stopped and gone on: SIGTTOU
        close_prompt(fd, saved)
        return None
    return fd, saved


def close_prompt(fd: int, saved: Any) -> None:
    """The echo given back (and the Enter typed, not echoed, shown), the terminal closed."""
    import termios

    with contextlib.suppress(OSError, termios.error):
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
            os.write(fd, b"\n")
    os.close(fd)


def typed_line(line: bytes | bytearray) -> str | None:
    """What was typed, its bytes kept (a passphrase need not be UTF-8); None for none."""
    if not line:
        return None
    return line.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "surrogateescape")


def ask_terminal(prompt: str, hidden: bool = False) -> str | None:
    """A line typed on the controlling terminal (ssh asks there, not on stdin), kept as
    its bytes; None without a terminal or at end of input. ``hidden``: not echoed, and
    as OpenSSH's readpassphrase the echo comes back whatever happens: a signal that
    comes meanwhile (SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGALRM) takes effect once it
    is back (as it would have: the program ends, or its handler runs); one that stops
    us (SIGTSTP, SIGTTIN, SIGTTOU) stops us with the echo on, and the prompt is asked
    again when we go on."""
    if not hidden:
        return _read_line(prompt, False, _Caught())
    while True:
        with _catching() as caught:
            answer = _read_line(prompt, True, caught)
        if not caught.signals:
            return answer
        _flush_output()
        for signum in sorted(caught.signals):
            signal.raise_signal(signum)  # its own handling now: ends us, or runs it
        if caught.signals.isdisjoint(_STOPPING):
            return None  # one whose handling does not end us: no answer, as no line


#: as readpassphrase: the signals caught at a hidden prompt, the echo given back before
#: they take effect; those that stop us ask again once we go on
_ENDING: tuple[int, ...] = (
    signal.SIGALRM,
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
)
_STOPPING: frozenset[int] = frozenset((signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU))


class _Interrupted(BaseException):
    """A signal came while the terminal was read: the read given up."""


class _Caught:
    """The signals caught at a prompt; ``reading``: one ends the read at once."""

    def __init__(self) -> None:
        self.signals: set[int] = set()
        self.reading = False

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.add(signum)
        if self.reading:
            self.reading = False
            raise _Interrupted


@contextlib.contextmanager
def _catching() -> Iterator[_Caught]:
    """The prompt's signals caught meanwhile (not one ignored by whoever started us:
    it stays ignored), their handling as it was given back after. Only the main thread
    can catch signals; another reads as it would without."""
    caught = _Caught()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous: dict[int, Any] = {}
    try:
        for signum in (*_ENDING, *sorted(_STOPPING)):
            handling = signal.getsignal(signum)
            if handling is signal.SIG_IGN or handling is None:
                continue
            previous[signum] = signal.signal(signum, caught.handle)
        yield caught
    finally:
        for signum, handling in previous.items():
            signal.signal(signum, handling)


def _read_line(prompt: str, hidden: bool, caught: _Caught) -> str | None:
    """One prompt and the line typed; a signal caught while it is read (``caught``)
    ends the read, the terminal given back all the same."""
    opened = open_prompt(prompt, hidden)
    if opened is None:
        return None
    fd, saved = opened
    line = bytearray()
    try:
        try:
            caught.reading = True
            if caught.signals:  # came while the prompt was written
                raise _Interrupted
            while not line.endswith(b"\n"):
                chunk = os.read(fd, 1024)
                if not chunk:
                    break
                line += chunk
        finally:
            caught.reading = False
    except (_Interrupted, OSError):
        return None
    finally:
        close_prompt(fd, saved)
    return typed_line(line)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


def ask_twice(prompt: str, missing: str) -> tuple[str, str]:
    """A new passphrase and its confirmation, asked as ssh-keygen asks them (the
    terminal, SSH_ASKPASS, or two lines of stdin without a terminal); ``missing`` is
    the error when nothing can answer."""
    try:
        first = read_secret(prompt, "a passphrase", stdin=True)
        second = read_secret("Enter same passphrase again: ", "a passphrase", stdin=True)
    except KeytoolError:
        if has_terminal():
            raise
        raise KeytoolError(missing) from None
    return first, second


def read_secret(
    prompt: str, purpose: str = "a passphrase", echo: bool = False, stdin: bool = False
) -> str:
    """Read a secret from the terminal or SSH_ASKPASS; a clear error when neither is
    there. ``echo``: the server asked for the answer to be shown as typed (a
    keyboard-interactive prompt that is no secret), as ssh shows it. ``stdin``: as
    ssh-keygen and ssh-add ask (read_passphrase's RP_ALLOW_STDIN): with stdin not a
    terminal, SSH_ASKPASS when there is a display for it; with no terminal at all, a
    line of stdin is the answer. Without it, as ssh: the terminal, else askpass."""
    interactive = has_terminal()
    piped = stdin and not _stdin_is_terminal()
    program = askpass_program(interactive and not piped)
    if program is not None:
        answer = run_askpass(program, prompt)
        if answer is None:
            raise KeytoolError(f"{purpose} was not given (askpass cancelled)")
        return answer
    if not interactive and stdin:
        return _stdin_line(prompt, purpose)
    if not interactive:
        raise KeytoolError(f"{purpose} is needed but there is no terminal to ask on")
    answer = ask_terminal(prompt, hidden=not echo)
    if answer is None:
        raise KeytoolError(f"{purpose} was not given")
    return answer


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and os.isatty(sys.stdin.fileno())
    except (OSError, ValueError):
        return False


def _stdin_line(prompt: str, purpose: str) -> str:
    """One line of stdin, the prompt on stderr (as readpassphrase without a tty)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    try:
        line = sys.stdin.buffer.readline() if sys.stdin else b""
    except OSError:
        line = b""
    if not line:
        raise KeytoolError(f"{purpose} was not given")
    return line.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "surrogateescape")

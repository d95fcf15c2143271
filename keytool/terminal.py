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
from collections.abc import Callable, Iterator
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
    return answer_of(result.stdout)


#: OpenSSH keeps an answer typed (readpassphrase) or printed by the askpass program
#: (ssh_askpass) in a buffer of 1024 bytes, a C string: 1023 bytes at most
ANSWER_LIMIT = 1023


def answer_of(data: bytes | bytearray) -> str:
    """What OpenSSH takes of a line typed or an askpass program's output: up to the
    first carriage return, newline or NUL, at most ANSWER_LIMIT bytes of it, its bytes
    kept as they are (a passphrase need not be UTF-8). A passphrase typed here then
    opens the key ssh-keygen made with the same one typed, however long."""
    end = len(data)
    for stop in b"\r\n\0":
        found = data.find(stop, 0, end)
        if found >= 0:
            end = found
    return bytes(data[: min(end, ANSWER_LIMIT)]).decode("utf-8", "surrogateescape")


def ask_permission(prompt: str) -> bool:
    """A confirmation asked as ssh's ask_permission asks it (RP_USE_ASKPASS): through
    the askpass program alone, on a display or when forced, never on the terminal; no
    program to ask is a no."""
    program = askpass_program(interactive=False)
    if program is None:
        return False
    return is_yes(run_askpass(program, prompt, confirm=True))


def is_yes(answer: str | None) -> bool:
    """A confirmation given, as ssh's ask_permission reads it: an empty answer or
    "yes" in any case, nothing around it (None: cancelled)."""
    return answer is not None and (answer == "" or (answer.isascii() and answer.lower() == "yes"))


def open_prompt(
    prompt: str, hidden: bool, caught: Caught, nonblocking: bool = False
) -> tuple[int, Any] | None:
    """The controlling terminal opened on a descriptor of its own (a text file opened
    "r+" on a terminal fails as it turns from writing to reading), its echo off when
    ``hidden`` (the modes to give back returned with it), and the prompt written as
    ssh's read_passphrase writes it: a carriage return first, so it starts the line
    whatever was typed ahead. None without a terminal, or when a signal ``caught``
    stopped the writing (in the background with TOSTOP set: SIGTTOU)."""
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
        write_interruptibly(fd, b"\r" + prompt.encode("utf-8", "replace"), caught)
    except (OSError, termios.error, Interrupted):  # in the background: SIGTTOU
        close_prompt(fd, saved, caught)
        return None
    return fd, saved


def write_interruptibly(fd: int, data: bytes, caught: Caught) -> None:
    """``data`` written to the terminal; a signal caught meanwhile ends the write with
    Interrupted (a write the terminal refuses in the background, TOSTOP set, would else
    be retried, and signalled, for ever)."""
    caught.reading = True
    try:
        os.write(fd, data)
    finally:
        caught.reading = False


def close_prompt(fd: int, saved: Any, caught: Caught) -> None:
    """The echo given back (and the Enter typed, not echoed, shown), the terminal closed."""
    import termios

    with contextlib.suppress(OSError, termios.error, Interrupted):
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
            write_interruptibly(fd, b"\n", caught)
    os.close(fd)


def typed_line(line: bytes | bytearray) -> str | None:
    """What was typed, as readpassphrase takes it (``answer_of``); None for nothing
    (end of input at once)."""
    if not line:
        return None
    return answer_of(line)


def ask_terminal(prompt: str, hidden: bool = False) -> str | None:
    """A line typed on the controlling terminal (ssh asks there, not on stdin), kept as
    its bytes; None without a terminal or at end of input. ``hidden``: not echoed. As
    OpenSSH's readpassphrase, hidden or not: a signal that comes meanwhile (SIGTERM,
    SIGHUP, SIGINT, SIGQUIT, SIGALRM) takes effect once the echo is back (as it would
    have: the program ends, or its handler runs); one that stops us (SIGTSTP, SIGTTIN,
    SIGTTOU) stops us with the echo on, and the prompt is asked again when we go on."""
    while True:
        with catching(ENDING) as caught:
            answer = _read_line(prompt, hidden, caught)
        if not caught.signals:
            return answer
        if not take_effect(caught.signals):
            return None  # one whose handling does not end us: no answer, as no line


#: as readpassphrase: the signals caught at a prompt, the echo given back before they
#: take effect; those that stop us ask again once we go on
ENDING: tuple[int, ...] = (
    signal.SIGALRM,
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
)
STOPPING: frozenset[int] = frozenset((signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU))


def take_effect(signals: set[int]) -> bool:
    """The signals caught at a prompt, its terminal given back, handled now as they
    would have been (the handling they had is back): whether one stopped us, and the
    prompt is to be asked again."""
    _flush_output()
    for signum in sorted(signals):
        signal.raise_signal(signum)  # its own handling now: ends us, stops us, or runs it
    return not signals.isdisjoint(STOPPING)


class Interrupted(BaseException):
    """A signal came while the terminal was read: the read given up."""


class Caught:
    """The signals caught at a prompt; ``reading``: one ends the read or write at once
    (one of the terminal in the background would else be retried, and signalled, for
    ever); ``wake``: called for one that comes meanwhile."""

    def __init__(self) -> None:
        self.signals: set[int] = set()
        self.reading = False
        self.wake: Callable[[], None] | None = None

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.add(signum)
        if self.reading:
            self.reading = False
            raise Interrupted
        if self.wake is not None:
            self.wake()


@contextlib.contextmanager
def catching(ending: tuple[int, ...], untouched: bool = False) -> Iterator[Caught]:
    """The signals ``ending`` and STOPPING caught while a prompt is up (not one ignored
    by whoever started us: it stays ignored; with ``untouched``, only those left to
    their default action: a program's own handler goes on handling its signal), their
    handling as it was given back after. Only the main thread can catch signals;
    another reads as it would without."""
    caught = Caught()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous: dict[int, Any] = {}
    try:
        for signum in (*ending, *sorted(STOPPING)):
            handling = signal.getsignal(signum)
            if handling is signal.SIG_IGN or handling is None:
                continue
            if untouched and handling is not signal.SIG_DFL:
                continue
            previous[signum] = signal.signal(signum, caught.handle)
        yield caught
    finally:
        for signum, handling in previous.items():
            signal.signal(signum, handling)


def _read_line(prompt: str, hidden: bool, caught: Caught) -> str | None:
    """One prompt and the line typed; a signal caught while it is read (``caught``)
    ends the read, the terminal given back all the same."""
    opened = open_prompt(prompt, hidden, caught)
    if opened is None:
        return None
    fd, saved = opened
    line = bytearray()
    try:
        try:
            caught.reading = True
            if caught.signals:  # came while the prompt was written
                raise Interrupted
            while not line.endswith(b"\n"):
                chunk = os.read(fd, 1024)
                if not chunk:
                    break
                line += chunk
        finally:
            caught.reading = False
    except (Interrupted, OSError):
        return None
    finally:
        close_prompt(fd, saved, caught)
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
    return answer_of(line)

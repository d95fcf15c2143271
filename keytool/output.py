"""Standard output of the commands that change files (gen, passwd, comment,
known-hosts): what becomes of stdout never stops the change.

ssh-keygen prints through a stdio buffer, so a pipe closed by its reader (``| head``,
``| true``) or a full disk behind stdout is found when the buffer is written out, at
exit, after its files are saved. ``keeps_changes`` gives a command the same order
whatever Python's buffering (with PYTHONUNBUFFERED each line is written at once): a
failure to print is kept, stdout then goes to /dev/null (nothing printed after it,
nor the flush at exit, fails again), and the failure is raised when the command has
returned: a broken pipe then ends keytool with 141, as it ends any command, and
another failure (a full disk) is said in one line, after the files are written.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, ParamSpec, TextIO, TypeVar, cast

_P = ParamSpec("_P")
_R = TypeVar("_R")


def on_terminal() -> bool:
    """stdout is a terminal: a line is shown at once there, as stdio shows it; elsewhere
    it waits in the buffer (a question is flushed wherever stdout goes)."""
    try:
        return sys.stdout.isatty()
    except (OSError, ValueError):
        return False


class KeptFailure:
    """sys.stdout while a command changes files: a failure to write is kept, not raised."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.failure: OSError | None = None

    def write(self, text: str) -> int:
        if self.failure is None:
            try:
                return self.stream.write(text)
            except OSError as exc:
                self._failed(exc)
        return len(text)

    def flush(self) -> None:
        if self.failure is None:
            try:
                self.stream.flush()
            except OSError as exc:
                self._failed(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def _failed(self, exc: OSError) -> None:
        self.failure = exc
        drop_stdout(self.stream)


def drop_stdout(stream: TextIO) -> None:
    """Once writing to ``stream`` (stdout) failed: what is still in its buffer, and
    whatever comes after, goes to /dev/null, so that no later write or flush (the
    interpreter's at exit included) fails again with a message of its own."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)
    except (OSError, ValueError):
        pass


def keeps_changes(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """``command`` with stdout's failures kept until it has returned (see above); an
    error of its own is said instead, stdout's then dropped."""

    @functools.wraps(command)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        kept = KeptFailure(sys.stdout)
        sys.stdout = cast("TextIO", kept)
        try:
            result = command(*args, **kwargs)
        finally:
            sys.stdout = kept.stream
            kept.flush()
        if kept.failure is not None:
            raise kept.failure
        return result

    return run


def confirm_overwrite(name: str | os.PathLike[str]) -> bool:
    """ssh-keygen's question before it writes over a file (a key, a signature), as its
    confirm_overwrite asks it: on stdout, flushed wherever stdout goes, the answer read
    from stdin as its fgets into three bytes reads it (at most two characters of a
    line, the rest left for the next question, so ``echo y | keytool gen ...`` answers
    it); yes only for an answer starting with y or Y."""
    print(f"{os.fspath(name)} already exists.")
    print("Overwrite (y/n)? ", end="", flush=True)
    try:
        answer = sys.stdin.readline(2) if sys.stdin is not None else ""
    except (OSError, UnicodeDecodeError):
        answer = ""
    return answer[:1] in ("y", "Y")


def end_by(signum: int) -> NoReturn:
    """End by the signal ``signum`` itself, its default action, once what is written is
    out: as OpenSSH's tools end on ^C or SIGTERM, so that a shell running us in a loop
    sees the signal and stops too (an exit status of 130 does not stop it). The signal's
    default action comes first: another one while the output is flushed ends us then."""
    import contextlib
    import signal

    signal.signal(signum, signal.SIG_DFL)
    for stream in (sys.stdout, sys.stderr):
        # RuntimeError: called from a signal's handler while the stream was being written
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            stream.flush()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # a signal whose default action does not end us

"""The one wake-up descriptor of the process (``signal.set_wakeup_fd``), shared.

Python runs a signal's handler in the main thread between bytecodes: a signal that
comes just before a wait in poll(2) or a read does not interrupt it, and its handler
waits with it. The signal's C-level handler writes the signal's number to the
wake-up descriptor at once, so a wait that watches it sees the signal. A process has
one: the drivers that want it (a terminal session, a connection-sharing master, a
master's client) each push their pipe's write end and pop it when done, in any order;
the newest one still there gets the bytes."""

from __future__ import annotations

import signal

_pushed: list[int] = []
#: what was set before the first push (another event loop's, say), put back at the end
_before = -1


def push(fd: int) -> None:
    """Signals handled from now on write to ``fd`` (non-blocking: a full pipe is fine)."""
    global _before
    previous = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    if not _pushed:
        _before = previous
    _pushed.append(fd)


def pop(fd: int) -> None:
    """``fd`` (about to be closed) no longer gets the bytes: the newest other one does."""
    if fd not in _pushed:
        return
    _pushed.remove(fd)
    try:
        signal.set_wakeup_fd(_pushed[-1] if _pushed else _before, warn_on_full_buffer=False)
    except (ValueError, OSError):  # that one is gone
        signal.set_wakeup_fd(-1)

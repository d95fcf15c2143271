"""ssh's ServerAliveInterval and ServerAliveCountMax, without I/O: when to ask the
server whether it is there, and when to give it up. The blocking driver of
``keytool exec`` and the asyncio client of ``copy-id`` both keep one."""

from __future__ import annotations

import time


class ServerAlive:
    """ssh's ServerAliveInterval and ServerAliveCountMax, as its client loop keeps
    them: after ``interval`` seconds without a packet from the server, a keepalive
    request; when more than ``count_max`` of them in a row went unanswered, the server
    is given up. Any packet from the server starts the count again."""

    def __init__(self, interval: float, count_max: int) -> None:
        self.interval = interval
        self.count_max = count_max
        self._asked_at = time.monotonic()  # the last keepalive, or the start
        self._heard: float | None = None
        self._unanswered = 0

    def _next(self, heard: float) -> float:
        if heard != self._heard:  # the server spoke since: count again from there
            self._heard = heard
            self._unanswered = 0
        return max(heard, self._asked_at) + self.interval

    def wait_limit(self, timeout: float | None, heard: float) -> float:
        """``timeout``, cut short to when the next check is due."""
        left = max(0.0, self._next(heard) - time.monotonic())
        return left if timeout is None else min(timeout, left)

    def due(self, heard: float) -> bool:
        return time.monotonic() >= self._next(heard)

    def given_up(self) -> bool:
        """One more check: True when the server has been silent too long, else a
        keepalive is to be sent now."""
        self._unanswered += 1
        self._asked_at = time.monotonic()
        return self._unanswered > self.count_max

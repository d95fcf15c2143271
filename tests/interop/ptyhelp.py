"""A program on a terminal of its own (a pty) for the tests of prompts: what it
writes is kept, its status waited for, and whether it waits in a read of the terminal
(a signal then reaches a prompt that is really up) is told."""

from __future__ import annotations

import os
import pty
import select
import signal
import termios
import time
from collections.abc import Sequence
from pathlib import Path


class Pty:
    """A program on a terminal of its own; what it writes is kept."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.execvpe(argv[0], list(argv), env)
        self.out = b""
        self.status: int | None = None
        self.reaped = False  # waited for (its status, or killed past a timeout)

    def read_until(self, text: bytes, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while text not in self.out and time.monotonic() < end:
            if not self._read(0.1):
                return False
        return text in self.out

    def read_for(self, wait: float) -> None:
        """Keep what it writes within ``wait`` seconds (or until its end)."""
        self._read(wait)

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], wait)
        if ready:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            self.out += chunk
        return True

    def echo(self) -> bool:
        return bool(termios.tcgetattr(self.fd)[3] & termios.ECHO)

    def wait(self, timeout: float, kill: bool = True) -> int | None:
        """The exit status, or None if it runs past ``timeout`` (then it is killed,
        unless ``kill`` is false)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                while self._read(0.05):
                    pass
                self.status = os.waitstatus_to_exitcode(status)
                self.reaped = True
                return self.status
            self._read(0.05)
        if not kill:
            return None
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.reaped = True
        return None

    def close(self) -> None:
        if not self.reaped:
            self.wait(0)
        os.close(self.fd)


def reading_terminal(pid: int, timeout: float = 60) -> bool:
    """Whether ``pid`` waits in a read of the terminal, within ``timeout``: the prompt
    is written before the read starts, and a signal in between is seen by
    readpassphrase only once something is typed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if Path(f"/proc/{pid}/wchan").read_text() == "wait_woken":
                return True
        except OSError:
            return False
        time.sleep(0.01)
    return False

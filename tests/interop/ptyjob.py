"""A program run as a shell with job control runs it, for the tests of ^Z at a prompt:
in a process group of its own, in the foreground of a terminal of its own (a pty), so
that a stop signal stops it (one is ignored in an orphaned process group). This shell
never changes the terminal's modes (bash gives its own back after a stop): those seen
while the program is stopped are the ones it left. What becomes of the program
(stopped, continued, ended) comes on a pipe of its own, apart from what it writes."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import sys
import termios
import time
from collections.abc import Sequence

#: the shell: argv[1] is the pipe to report on, argv[2] "fg" or "bg" (a background job,
#: TOSTOP set: it may not write to the terminal), the rest the program; the states are
#: lines "pgid N", "stopped SIGNAL", "continued", "ended STATUS" (-N: killed by N)
SHELL = """
import contextlib, os, signal, sys, termios
report = int(sys.argv[1])
control = (signal.SIGTTOU, signal.SIGTSTP, signal.SIGINT, signal.SIGQUIT)
for number in control:
    signal.signal(number, signal.SIG_IGN)
if sys.argv[2] == "bg":
    modes = termios.tcgetattr(0)
    modes[3] |= termios.TOSTOP
    termios.tcsetattr(0, termios.TCSANOW, modes)
pid = os.fork()
if pid == 0:
    os.close(report)
    os.setpgid(0, 0)
    if sys.argv[2] == "fg":
        os.tcsetpgrp(0, os.getpid())
    for number in (*control, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL)
    os.execvp(sys.argv[3], sys.argv[3:])
with contextlib.suppress(OSError):
    os.setpgid(pid, pid)
os.write(report, b"pgid %d\\n" % pid)
while True:
    _, status = os.waitpid(pid, os.WUNTRACED | os.WCONTINUED)
    if os.WIFSTOPPED(status):
        os.write(report, b"stopped %d\\n" % os.WSTOPSIG(status))
    elif os.WIFCONTINUED(status):
        os.write(report, b"continued\\n")
    else:
        os.write(report, b"ended %d\\n" % os.waitstatus_to_exitcode(status))
        break
"""


class Job:
    """``argv`` as a shell's foreground job on a terminal of its own (``background``:
    a background job, the terminal's TOSTOP set); what it writes is kept in ``out``."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], background: bool = False) -> None:
        reports, report = os.pipe()
        self.shell, self.fd = pty.fork()
        if self.shell == 0:  # pragma: no cover - the child
            os.set_inheritable(report, True)
            where = "bg" if background else "fg"
            shell = [sys.executable, "-c", SHELL, str(report), where, *argv]
            os.execve(sys.executable, shell, env)
        os.close(report)
        self.reports = reports
        self.out = b""
        self._said = b""
        self.ended: int | None = None
        self.pgid = 0
        first = self.state(60)
        if first is None or not first.startswith("pgid "):
            self.close()  # the shell and its terminal not left behind
            raise AssertionError(f"the job did not start: {first!r} {self.out!r}")
        self.pgid = int(first.split()[1])

    def _pump(self, wait: float) -> None:
        """What it writes and what the shell says within ``wait`` seconds, kept."""
        ready, _, _ = select.select([self.fd, self.reports], [], [], wait)
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal gone: everything that had it ended
                chunk = b""
            if fd == self.fd:
                self.out += chunk
            else:
                self._said += chunk

    def read_until(self, text: bytes, count: int = 1, timeout: float = 60) -> bool:
        """Whether it has written ``text`` ``count`` times within ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while self.out.count(text) < count and time.monotonic() < end:
            self._pump(0.05)
        return self.out.count(text) >= count

    def state(self, timeout: float = 60) -> str | None:
        """What became of it next ("stopped 20", "continued", "ended 0"), or None when
        nothing did within ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while b"\n" not in self._said and time.monotonic() < end:
            self._pump(0.05)
        if b"\n" not in self._said:
            return None
        line, self._said = self._said.split(b"\n", 1)
        said = line.decode()
        if said.startswith("ended "):
            self.ended = int(said.split()[1])
        return said

    def wait(self, timeout: float = 60) -> int | None:
        """Its exit status (-N: killed by signal N), or None while it has not ended."""
        end = time.monotonic() + timeout
        while self.ended is None and time.monotonic() < end:
            self.state(max(end - time.monotonic(), 0))
        if self.ended is not None:
            self._drain(min(5.0, max(end - time.monotonic(), 0.5)))
        return self.ended

    def _drain(self, timeout: float) -> None:
        """Its last words: what is left on the terminal, read until the terminal is
        gone (the shell ends right after the job) or ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], max(end - time.monotonic(), 0))
            if not ready:
                return
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # gone: everything was read
                return
            if not chunk:
                return
            self.out += chunk

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def echo(self) -> bool:
        return bool(termios.tcgetattr(self.fd)[3] & termios.ECHO)

    def cont(self) -> None:
        """SIGCONT to the job, as a shell's fg (the job still in the foreground)."""
        os.killpg(self.pgid, signal.SIGCONT)

    def close(self) -> None:
        """The job killed if it still runs, the shell waited for."""
        if self.ended is None:
            with contextlib.suppress(ProcessLookupError):
                if self.pgid:
                    os.killpg(self.pgid, signal.SIGKILL)
                else:  # it never said its job started: the shell itself
                    os.kill(self.shell, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.shell, 0)
        os.close(self.fd)
        os.close(self.reports)

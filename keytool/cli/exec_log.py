"""Where keytool exec's own lines go: ssh's -E (a file) and -y (syslog)."""

from __future__ import annotations

import io
import os
import sys


def log_to(path: str) -> None:
    """ssh -E: our own lines (errors, notices, -v's steps) are appended to ``path``
    (made 0600) instead of stderr; the remote command's stderr stays on ours."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:  # ssh's words and status
        print(f"Couldn't open logfile {path}: {exc.strerror}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    sys.stderr.flush()
    sys.stderr = open(fd, "w", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115


class SyslogWriter(io.TextIOBase):
    """ssh -y: each line of ours a syslog message (facility USER, as ssh's default
    SyslogFacility), nothing on stderr; the remote command's stderr stays on ours."""

    def __init__(self) -> None:
        import syslog

        syslog.openlog("keytool", syslog.LOG_PID, syslog.LOG_USER)
        self._syslog = syslog
        self._pending = ""

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return -1  # not the terminal's stderr: ~? and ~v say so, as with -E

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line:
                self._syslog.syslog(self._syslog.LOG_INFO, line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._syslog.syslog(self._syslog.LOG_INFO, line)


def log_to_syslog() -> None:
    sys.stderr.flush()
    sys.stderr = SyslogWriter()

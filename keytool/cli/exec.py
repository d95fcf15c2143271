"""keytool exec: run a command on a server, like ``ssh user@host CMD``.

The remote command's stdout and stderr are relayed as they come, our stdin goes to
it, and keytool exits with its exit status (255 for connection, protocol and
authentication errors, and when the command died of a signal, as ssh does).
With -v, each step of the connection is told as it happens.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from keytool.errors import KeytoolError

if TYPE_CHECKING:
    import socket

    from keytool.session import ConnectOptions

#: bound on the TCP connect when ConnectTimeout is not set, so it never hangs
CONNECT_TIMEOUT = 60.0

# stdin is read in pieces this large (it then travels in packets of the server's size)
_READ_SIZE = 64 * 1024


def _say(line: str) -> None:
    sys.stderr.write(f"keytool: {line}\n")
    sys.stderr.flush()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def run(
    destination: str | None,
    command: list[str],
    port: int | None = None,
    identity: list[str] | None = None,
    option: list[str] | None = None,
    config_file: str | None = None,
    login: str | None = None,
    verbose: int = 0,
    no_stdin: bool = False,
) -> int:
    if not destination:
        raise KeytoolError("usage: keytool exec [options] [user@]host [--] command ...")
    if not command:
        raise KeytoolError("keytool exec needs a command to run (no interactive shell)")
    try:
        code = _connect_and_run(
            destination,
            command,
            port,
            identity or [],
            option or [],
            config_file,
            login,
            verbose,
            no_stdin,
        )
    except KeytoolError as exc:
        exc.exit_code = 255  # ssh's status for every failure of its own
        raise
    # The command is done and its output written: leave now. Tearing the interpreter
    # down (modules, the event loop's leftovers) costs tens of milliseconds, and
    # whole-process time is what a user of ``keytool exec`` in a loop pays.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _connect_and_run(
    destination: str,
    command: list[str],
    port: int | None,
    identity: list[str],
    option: list[str],
    config_file: str | None,
    login: str | None,
    verbose: int,
    no_stdin: bool,
) -> int:
    from keytool import tcp
    from keytool.destination import resolve_command_line

    trace = _say if verbose else None
    resolved = resolve_command_line(
        destination,
        port=port,
        identity_files=identity,
        options=option,
        config_file=config_file,
        login=login,
        warn=trace,
    )
    # Connect first, then load the SSH machinery: the server starts its side of the
    # connection (sshd forks and execs a session process) while Python imports.
    if trace:
        trace(f"connecting to {resolved.hostname} port {resolved.port}")
    timeout = float(resolved.connect_timeout) if resolved.connect_timeout else CONNECT_TIMEOUT
    sock = tcp.connect(resolved.hostname, resolved.port, timeout)
    try:
        from keytool.aio import asyncio  # asyncio without its TLS imports
        from keytool.session import options_from_config

        options = options_from_config(resolved, trace)
        return asyncio.run(_main(options, command, no_stdin, sock))
    finally:
        sock.close()


async def _main(
    options: ConnectOptions, command: list[str], no_stdin: bool, sock: socket.socket
) -> int:
    from keytool.session import connect

    # ssh joins the words with spaces and the remote shell splits them again
    # and sends them as the bytes given, UTF-8 or not
    remote_command = " ".join(command).encode("utf-8", "surrogateescape")
    client = await connect(options, sock=sock)
    try:
        reader = _StdinReader(no_stdin)
        try:
            result = await client.exec(
                remote_command,
                reader.read,
                lambda data: _write_all(1, data),
                lambda data: _write_all(2, data),
            )
        finally:
            reader.close()
    finally:
        await client.close()
    return result.ssh_exit_code


class _StdinReader:
    """Our stdin, read without blocking the event loop: pipes, terminals and sockets
    through the loop's reader callbacks; regular files and /dev/null (which epoll
    cannot watch, and which never block) by plain reads."""

    def __init__(self, disabled: bool) -> None:
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._fd = -1 if disabled or sys.stdin is None else 0
        self._watched = False
        self._ready: asyncio.Event = asyncio.Event()

    async def read(self) -> bytes:
        """The next piece of stdin; b"" at its end."""
        while self._fd >= 0:
            if not self._watched:
                try:
                    self._loop.add_reader(self._fd, self._ready.set)
                    self._watched = True
                except (OSError, ValueError):
                    return self._read_plain()
            await self._ready.wait()
            self._ready.clear()
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                continue  # a spurious wake-up on a non-blocking stdin
            except OSError:
                data = b""
            if not data:
                self._stop()
            return data
        return b""

    def _read_plain(self) -> bytes:
        try:
            data = os.read(self._fd, _READ_SIZE)
        except OSError:
            data = b""
        if not data:
            self._stop()
        return data

    def _stop(self) -> None:
        self.close()
        self._fd = -1

    def close(self) -> None:
        if self._watched:
            self._loop.remove_reader(self._fd)
            self._watched = False

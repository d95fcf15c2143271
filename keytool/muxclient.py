"""The client's side of connection sharing: ``keytool exec`` through a master's
ControlPath socket (OpenSSH's ssh -M, or keytool's), and ssh's ``-O`` commands.

A session through the master passes our stdin, stdout and stderr to it and waits:
the master writes the command's output straight to them and, at the end, sends its
exit status, which becomes ours (255 if the master went away first, as ssh). Our
terminal is raw meanwhile when a pseudo-terminal was asked for; a window size change
is signalled to the master (SIGWINCH), which reads the new size from our terminal.

A master that fails the hello exchange (``MasterUnusable``), or goes away before a
session is open (``MasterLost``), is given up on: as ssh's, the caller then connects
itself; an ``-O`` command fails instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import sys
from collections.abc import Sequence

from keytool import muxproto as mux
from keytool import sigwake
from keytool.errors import FormatError, KeytoolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    Say = Callable[[str], None]

#: how long the master may take to answer a request (not a session's end)
REPLY_TIMEOUT = 60.0
#: the longest socket path (sun_path, with its NUL)
_SUN_PATH = 108


class MuxError(KeytoolError):
    """The master refused or failed a request; the message is ssh's."""


class MasterLost(KeytoolError):
    """Nothing more could be read from the master (it closed, the read failed, or
    it did not answer in time)."""


class MasterUnusable(KeytoolError):
    """The hello exchange with the master failed: as ssh's mux client, a session (or
    a -W) then goes on a connection of its own."""


#: ssh's words
HELLO_FAILED = "master hello exchange failed"


def connect_control(path: str, master: str, session: bool, trace: Say) -> socket.socket | None:
    """A connection to the master at ``path``. For a session (``session``), None when
    there is no master to use (the caller connects itself; a stale socket is removed
    first unless ControlMaster is no, as ssh); for an -O command that is an error."""
    if len(os.fsencode(path)) >= _SUN_PATH:  # ssh's words
        raise KeytoolError(f"ControlPath too long ('{path}' >= {_SUN_PATH} bytes)")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if not session:
            raise KeytoolError(f"Control socket connect({path[:100]}): {reason}") from None
        if exc.errno == errno.ECONNREFUSED and master != "no":
            trace(f"connection sharing: stale control socket {path}: removed")
            with contextlib.suppress(OSError):
                os.unlink(path)
        elif exc.errno == errno.ENOENT:
            trace(f'connection sharing: control socket "{path}" does not exist')
        else:
            print(f"Control socket connect({path[:100]}): {reason}", file=sys.stderr)
        return None
    trace(f"connection sharing: connected to the master at {path}")
    return sock


class MuxClient:
    """One conversation with a master (after the hello exchange)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._reader = mux.PacketReader()
        self._next_id = 0
        sock.settimeout(REPLY_TIMEOUT)
        try:
            self._hello()
        except BaseException:
            sock.close()
            raise

    def _hello(self) -> None:
        """Hellos exchanged; MasterUnusable where ssh's client connects itself (the
        master gone, or not speaking version 4), a KeytoolError where it gives up."""
        try:
            self.sock.sendall(mux.hello())
        except OSError:
            raise MasterUnusable(HELLO_FAILED) from None
        try:
            body = self._packet()
        except MasterLost:
            raise MasterUnusable(HELLO_FAILED) from None
        try:
            problem = mux.hello_problem(body)
        except FormatError as exc:
            raise KeytoolError(f"the master sent {exc}") from None
        if problem is not None:
            raise MasterUnusable(f"{HELLO_FAILED}: {problem}")

    def close(self) -> None:
        self.sock.close()

    # ---- plumbing

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise KeytoolError(f"write to the master failed: {exc.strerror or exc}") from None

    def _packet(self, wait: bool = False, signals: _Signals | None = None) -> bytes:
        """The master's next message; MasterLost when none can be read. ``signals``:
        those caught meanwhile, whose handlers run as they come (``_Signals.wait``)."""
        self.sock.settimeout(None if wait else REPLY_TIMEOUT)
        while True:
            try:
                body = self._reader.next()
            except FormatError as exc:
                raise KeytoolError(f"the master sent {exc}") from None
            if body is not None:
                return body
            if signals is not None:
                signals.wait(self.sock)
            try:
                data = self.sock.recv(16 * 1024)
            except TimeoutError:
                raise MasterLost("the master did not answer") from None
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            except OSError as exc:
                raise MasterLost(f"read from master failed: {exc.strerror or exc}") from None
            if not data:
                raise _MasterGone("the master closed the connection")
            self._reader.feed(data)

    def _reply(self, rid: int) -> mux.Reply:
        try:
            reply = mux.parse_reply(self._packet())
        except FormatError as exc:
            raise KeytoolError(f"the master sent {exc}") from None
        if reply.ident != rid:  # ssh's words
            raise KeytoolError(f"out of sequence reply: my id {rid} theirs {reply.ident}")
        return reply

    def _rid(self) -> int:
        rid = self._next_id
        self._next_id += 1
        return rid

    # ---- requests

    def alive(self) -> int:
        """The master's pid (-O check)."""
        rid = self._rid()
        self._send(mux.simple_request(mux.ALIVE_CHECK, rid))
        reply = self._reply(rid)
        if reply.kind != mux.S_ALIVE:
            raise MuxError(f"master alive check failed: {reply.reason or hex(reply.kind)}")
        return reply.value

    def terminate(self) -> None:
        """-O exit."""
        rid = self._rid()
        self._send(mux.simple_request(mux.TERMINATE, rid))
        try:
            reply = self._reply(rid)
        except _MasterGone:
            return  # gone at once: that is what was asked
        if reply.kind == mux.S_PERMISSION_DENIED:
            raise MuxError(f"Master refused termination request: {reply.reason}")
        if reply.kind != mux.S_OK:
            raise MuxError(f"termination request failed: {reply.reason}")

    def stop_listening(self) -> None:
        """-O stop."""
        rid = self._rid()
        self._send(mux.simple_request(mux.STOP_LISTENING, rid))
        reply = self._reply(rid)
        if reply.kind == mux.S_PERMISSION_DENIED:
            raise MuxError(f"Master refused stop listening request: {reply.reason}")
        if reply.kind != mux.S_OK:
            raise MuxError(f"stop listening request failed: {reply.reason}")

    def forward(self, request: mux.Forward) -> int | None:
        """-O forward / -O cancel (and the forwards given with a session): the port the
        server picked for a -R to port 0, else None."""
        rid = self._rid()
        self._send(mux.forward_request(rid, request))
        reply = self._reply(rid)
        if reply.kind == mux.S_REMOTE_PORT and not request.close:
            return reply.value
        if reply.kind == mux.S_OK:
            return None
        if reply.kind == mux.S_PERMISSION_DENIED:
            raise MuxError(f"Master refused forwarding request: {reply.reason}")
        raise MuxError(f"Master refused forwarding request: {reply.reason or hex(reply.kind)}")

    def session(
        self,
        request: mux.NewSession,
        fds: Sequence[int],
        master_pid: int,
        raw: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
    ) -> int | None:
        """Run a session through the master with our descriptors ``fds``; its exit
        status (255 when the master ended it without one). None when the master
        refused it (we then connect ourselves, as ssh does). ``raw`` puts our terminal
        in raw mode for the session (a pseudo-terminal was asked for)."""
        rid = request.request_id
        self._send(mux.session_request(request))
        for fd in fds:
            try:
                socket.send_fds(self.sock, [b"\0"], [fd])
            except OSError as exc:
                raise KeytoolError(f"send fds failed: {exc.strerror or exc}") from None
        reply = self._reply(rid)
        if reply.kind == mux.S_PERMISSION_DENIED:
            print(f"Master refused session request: {reply.reason}", file=sys.stderr)
            return None
        if reply.kind != mux.S_SESSION_OPENED:
            print(f"session request failed: {reply.reason or hex(reply.kind)}", file=sys.stderr)
            return None
        session_id = reply.value
        status = 255
        with _Signals(master_pid) as signals:
            context = raw() if raw is not None else contextlib.nullcontext()
            with context:
                status = self._wait(session_id, signals)
        return 255 if signals.caught else status

    def next_id(self) -> int:
        """The id for the next request built outside (a session's)."""
        return self._rid()

    def _wait(self, session_id: int, signals: _Signals) -> int:
        status: int | None = None
        while True:
            try:
                body = self._packet(wait=True, signals=signals)
            except KeytoolError:
                break
            try:
                reply = mux.parse_reply(body)
            except FormatError as exc:
                raise KeytoolError(f"the master sent {exc}") from None
            if reply.kind == mux.S_EXIT_MESSAGE and reply.ident == session_id:
                if status is not None:
                    raise KeytoolError("exitval sent twice")  # ssh's words
                status = reply.value
            elif reply.kind == mux.S_TTY_ALLOC_FAIL:
                continue
            elif reply.kind in (mux.S_FAILURE, mux.S_PERMISSION_DENIED):
                raise KeytoolError(f"master returned error: {reply.reason}")
        if signals.caught or status is None:
            return 255
        return status & 0xFF

    def stdio_forward(self, host: str, port: int, fds: Sequence[int]) -> int:
        """-W through the master: our stdin and stdout to ``host:port``."""
        rid = self._rid()
        self._send(mux.stdio_forward_request(rid, host, port))
        for fd in fds:
            socket.send_fds(self.sock, [b"\0"], [fd])
        reply = self._reply(rid)
        if reply.kind == mux.S_PERMISSION_DENIED:  # ssh's words
            raise KeytoolError(f"Master refused stdio forwarding request: {reply.reason}")
        if reply.kind != mux.S_SESSION_OPENED:
            raise KeytoolError(f"Stdio forwarding request failed: {reply.reason}")
        with _Signals(0) as signals:
            while True:
                try:
                    self._packet(wait=True, signals=signals)
                except KeytoolError:
                    break
        return 255 if signals.caught else 0


class _MasterGone(MasterLost):
    """The master closed the control connection."""


class _Signals:
    """While a session runs through the master: SIGHUP, SIGINT and SIGTERM end our
    wait (status 255, as ssh's mux client), SIGWINCH is passed on to the master,
    which then reads our terminal's new size.

    Python runs a signal's handler in the main thread between bytecodes: one that
    comes just before a blocking read of the control socket would wait until the
    master sends something (a resize not passed on, a ^C not taken, for the whole
    session). So the wait is a poll(2) of the socket and of a pipe that the signal's
    C-level handler writes to (``signal.set_wakeup_fd``)."""

    def __init__(self, master_pid: int) -> None:
        self.master_pid = master_pid
        self.caught = 0
        self._saved: dict[int, object] = {}
        self._wakeup: tuple[int, int] | None = None

    def wait(self, sock: socket.socket) -> None:
        """Until ``sock`` is readable; the handlers of the signals that come meanwhile
        run (one of them may raise ``_Interrupted``)."""
        if self._wakeup is None:
            return
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(self._wakeup[0], select.POLLIN)
        while True:
            ready = dict(poller.poll())
            if self._wakeup[0] in ready:
                # the signal's handler runs at the latest as this loop goes round
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wakeup[0], 64):
                        pass
            if sock.fileno() in ready:
                return

    def _stop(self, signum: int, _frame: object) -> None:
        self.caught = signum
        raise _Interrupted()

    def _relay(self, signum: int, _frame: object) -> None:
        if self.master_pid > 0:
            with contextlib.suppress(OSError):
                os.kill(self.master_pid, signum)

    def __enter__(self) -> _Signals:
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self._wakeup = (read, write)
        sigwake.push(write)
        for number in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
            self._saved[number] = signal.signal(number, self._stop)
        self._saved[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, self._relay)
        return self

    def __exit__(self, *exc: object) -> bool:
        for number, handler in self._saved.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        if self._wakeup is not None:
            sigwake.pop(self._wakeup[1])
            for fd in self._wakeup:
                os.close(fd)
            self._wakeup = None
        return isinstance(exc[1], _Interrupted)


class _Interrupted(KeytoolError):
    """A signal ended the wait for the master."""

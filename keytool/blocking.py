"""The blocking driver of the SSH client, for ``keytool exec``: one socket, poll(2),
no event loop.

A single command on a single connection needs no scheduler, and loading asyncio is a
good share of a short command's whole run. This driver feeds the same sans-IO
machines as the asyncio one (``ClientTransport``, ``channels.Connection``) and runs
the same authentication steps (``keytool.login.Login``): their coroutines never
suspend here, because every ``send`` and ``receive`` below blocks on the socket
instead, so ``run_blocking`` drives one to its end in a single step::

    client = connect(options, sock)                # key exchange, host check, login
    result = client.exec(b"uname -a", stdin_fd=0)  # streams to fds 1 and 2
    client.close()

Every wait for the server has a timeout (``options.timeout``) except, as in ssh, the
wait for a running command's output; there ServerAliveInterval asks the server, as ssh
does, whether it is still there.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque

from keytool import ttymodes as tty
from keytool.blocking_transport import (
    POLL_IN,
    BlockingTransport,
    deadline_after,
    remaining,
)
from keytool.display import Logged, safe
from keytool.errors import (
    DisconnectError,
    KeytoolError,
    NegotiationError,
    ProtocolError,
)
from keytool.login import Login
from keytool.login_hostkey import HostCheck
from keytool.options import ConnectOptions, Prompts
from keytool.serveralive import ServerAlive
from keytool.transport import channels as ch
from keytool.transport.channels import ExecResult
from keytool.transport.handshake import ClientTransport

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Coroutine, Iterable, Sequence
    from typing import Any, TypeVar

    from keytool.agentclient import AgentClient, AgentKey
    from keytool.cmdline import Command
    from keytool.keys.base import PrivateKey
    from keytool.localtty import LocalTerminal
    from keytool.muxmaster import Multiplexer
    from keytool.transport.config import TransportConfig
    from keytool.tunnels import Forwards

    #: what the driver serves beside a session: the forwards, or a shared
    #: connection's master (which holds the forwards)
    Served = Forwards | Multiplexer

    T = TypeVar("T")

# stdin is read in pieces this large (it then travels in packets of the server's size)
_READ_SIZE = 64 * 1024
# ssh's words when the server gives no pseudo-terminal (raw mode: CR LF)
_PTY_REFUSED = "PTY allocation request failed on channel {}\r\n"
_X11_REFUSED = "X11 forwarding request failed on channel {}\r\n"
#: ssh's LogLevels in order (DEBUG is DEBUG1)
_LEVELS = ("QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG1", "DEBUG2", "DEBUG3")


def _trace_to_stderr(line: str) -> None:
    """-v's steps once ~v turned them on (keytool exec's own words)."""
    sys.stderr.write(f"keytool: {line}\r\n")
    sys.stderr.flush()


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends (its awaits all block)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a coroutine suspended under the blocking driver")


class _OpenRefused(ProtocolError, Logged):
    """The server refused to open a channel; its words already escaped (``logged``)."""


# ---------------------------------------------------------------- the agent


class _Agent:
    """The blocking agent client behind the coroutine interface Login uses."""

    def __init__(self, client: AgentClient) -> None:
        self._client = client

    async def identities(self) -> list[AgentKey]:
        return self._client.identities()

    async def session_bind(self, host_key: bytes, session_id: bytes, signature: bytes) -> None:
        self._client.session_bind(host_key, session_id, signature)

    async def sign(self, blob: bytes, data: bytes, flags: int = 0) -> bytes:
        self._client.set_timeout(None)  # a confirm-constrained key waits for a human
        return self._client.sign(blob, data, flags)

    async def add(
        self, key: PrivateKey, comment: str, lifetime: int | None = None, confirm: bool = False
    ) -> None:
        self._client.add(key, comment, lifetime, confirm)

    async def close(self) -> None:
        self._client.close()


async def connect_agent(path: str | None, timeout: float) -> _Agent:
    from keytool.agentclient import AgentClient

    return _Agent(AgentClient(path, timeout))


# ---------------------------------------------------------------- the client


class BlockingClient(Login):
    """One connection: verified host, user authentication, then one command."""

    transport: BlockingTransport

    def __init__(
        self,
        transport: BlockingTransport,
        options: ConnectOptions,
        prompts: Prompts,
        allow_password: bool = True,
        host_trusted: bool = False,
    ) -> None:
        super().__init__(transport, options, prompts, connect_agent, allow_password, host_trusted)
        # ~v and ~V move the LogLevel at run time: from DEBUG1 up, -v's steps are told
        level = "DEBUG1" if options.log_level == "DEBUG" else options.log_level
        if options.trace is not None and _LEVELS.index(level) < _LEVELS.index("DEBUG1"):
            level = "DEBUG1"
        self._level = level
        self._sink = options.trace or _trace_to_stderr
        self.trace = self._told
        transport.conn.set_trace(self._told)  # its steps, too, at the level of the moment
        self._pending: deque[ch.ChannelEvent] = deque()
        #: a message the channels refused: raised once what came before it is handled
        self._refused: KeytoolError | None = None
        self._alive = (
            ServerAlive(options.server_alive_interval, options.server_alive_count_max)
            if options.server_alive_interval > 0
            else None
        )

    def _told(self, line: str) -> None:
        """A step of the connection, told at LogLevel DEBUG1 and up (-v, or ~v)."""
        if _LEVELS.index(self._level) >= _LEVELS.index("DEBUG1"):
            self._sink(line)

    def _loglevel(self, action: str) -> str:
        """~v or ~V: the LogLevel one up or down, as ssh's (QUIET to DEBUG3); its name,
        as ssh names it, or "" when our own lines do not go to stderr (-E)."""
        step = 1 if action == tty.LOUDER else -1
        index = min(max(_LEVELS.index(self._level) + step, 0), len(_LEVELS) - 1)
        self._level = _LEVELS[index]
        self.options = self.options.replace(log_level=self._level)
        if sys.stderr is None or sys.stderr.fileno() != 2:
            return ""
        return "DEBUG" if self._level == "DEBUG1" else self._level  # ssh's name for it

    def _send_queued(self) -> None:
        for payload in self.conn.data_to_send():
            self.transport.send_nowait(payload)
        self.transport._queue()

    def _events(
        self, timeout: float | None, fds: Iterable[tuple[int, int]] = ()
    ) -> list[tuple[int, int]]:
        """Wait as ``BlockingTransport.wait``; channel events of what came are then in
        ``self._pending``. Returns the ready ones of ``fds``."""
        transport = self.transport
        if self._refused is not None and not self._pending:
            raise self._refused
        alive = self._alive
        if alive is not None:
            timeout = alive.wait_limit(timeout, transport.heard)
        interval = self.options.transport.rekey_interval
        if interval:
            due = max(0.0, transport.keyed_at + interval - time.monotonic())
            timeout = due if timeout is None else min(timeout, due)
        ready = [] if transport.payloads else transport.wait(timeout, fds)
        while transport.payloads and self._refused is None:
            try:
                events = self.conn.receive(transport.payloads.popleft())
            except KeytoolError as exc:
                # output and statuses that came before it are still delivered (as ssh
                # writes them): the error ends the session once they are handled
                self._refused = exc
                transport.payloads.clear()
                break
            for event in events:
                if self.host_key_event(event):
                    self._send_queued()
                elif isinstance(event, ch.UnaskedOpen):
                    self._unasked(event.kind)
                elif not (isinstance(event, ch.GlobalReply) and event.request == ch.KEEPALIVE):
                    self._pending.append(event)
        error = self._refused or transport.error
        if error is not None and not self._pending:
            raise error
        if interval and time.monotonic() >= transport.keyed_at + interval:
            self.trace("connection: RekeyLimit's time is up: new keys")
            transport.keyed_at = time.monotonic()  # once per interval, however it goes
            transport.conn.rekey()
            transport._queue()
        if alive is not None and alive.due(transport.heard):
            if alive.given_up():
                raise DisconnectError(f"Timeout, server {self.options.host} not responding.")
            self.trace("connection: no word from the server: asking whether it is there")
            self.conn.keepalive()
            self._send_queued()
        return ready

    def finish_host_key_update(self) -> None:
        """Wait (as long as any wait for the server) for the answer to a proof request
        still out, so a quick command does not cut the update short."""
        update = self.host_keys
        if update is None or not update.waiting:
            return
        deadline = deadline_after(self.options.timeout)
        try:
            while update.waiting:
                self._events(remaining(deadline, "the server's host key proofs"))
        except KeytoolError as exc:
            self.trace(f"host keys: {exc}; known_hosts left as it is")

    def exec(
        self,
        command: bytes,
        stdin_fd: int | None,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
        forwards: Served | None = None,
        env: Sequence[tuple[bytes, bytes]] = (),
        terminal: LocalTerminal | None = None,
        shell: bool = False,
        subsystem: bool = False,
    ) -> ExecResult:
        """Run ``command`` (or, with ``shell``, the user's login shell; with
        ``subsystem``, the subsystem ``command`` names): our
        ``stdin_fd`` (None: no input) goes to it; its output to ``stdout_fd`` and
        ``stderr_fd`` as it comes. ``forwards`` (listening already) are served
        meanwhile. ``env`` is offered to the server first, as ssh's SendEnv and SetEnv
        (the server takes what its AcceptEnv allows). With ``terminal``, a
        pseudo-terminal is asked for first, its size follows the local window's, and
        ssh's escapes (``~.``) are read from our input."""
        if not self.authenticated:
            raise KeytoolError("not authenticated")
        number = self.conn.open_session()
        return self._relay(
            number,
            command,
            stdin_fd,
            stdout_fd,
            stderr_fd,
            forwards=forwards,
            env=env,
            terminal=terminal,
            shell=shell,
            subsystem=subsystem,
        )

    def request_forwards(self, forwards: Served) -> None:
        """-R: ask the server to listen for each, and wait for its answers (a refusal
        is a KeytoolError), as long as any other wait for the server."""
        if not self.authenticated:
            raise KeytoolError("not authenticated")
        forwards.request_remote()
        self._send_queued()
        deadline = deadline_after(self.options.timeout)
        while True:
            for event in self._drain():
                forwards.handle(event)
            forwards.flush()
            self._send_queued()
            if not forwards.waiting_remote:
                return
            wait = remaining(deadline, "the server to answer the port forwarding requests")
            for fd, flags in self._events(wait, forwards.watch()):
                forwards.ready(fd, flags)

    def serve(self, forwards: Served, listening: bool = True) -> None:
        """Serve ``forwards``: while ``listening``, until the connection ends (ssh -N)
        or a shared connection's master is done; otherwise only the connections (and
        shared sessions) already open, until they close."""
        if not self.authenticated:
            raise KeytoolError("not authenticated")
        if not listening:
            forwards.stop_listening()
        self._send_queued()
        while (listening or forwards.active) and not forwards.done:
            for event in self._drain():
                forwards.handle(event)
            forwards.flush()
            self._send_queued()
            if not (listening or forwards.active) or forwards.done:
                break
            for fd, flags in self._events(forwards.wake_in(), forwards.watch()):
                forwards.ready(fd, flags)
            self._send_queued()

    def forward(self, host: str, port: int, stdin_fd: int | None, stdout_fd: int = 1) -> None:
        """``ssh -W``: the server connects to ``host:port``; our ``stdin_fd`` goes
        there and what comes back to ``stdout_fd``, until either side closes."""
        if not self.authenticated:
            raise KeytoolError("not authenticated")
        self.trace(f"forwarding: asking the server to connect to {host} port {port}")
        number = self.conn.open_direct_tcpip(host, port)
        self._relay(number, None, stdin_fd, stdout_fd, 2, f"{host} port {port}")

    def _relay(
        self,
        number: int,
        command: bytes | None,
        stdin_fd: int | None,
        stdout_fd: int,
        stderr_fd: int,
        target: str = "",
        forwards: Served | None = None,
        env: Sequence[tuple[bytes, bytes]] = (),
        terminal: LocalTerminal | None = None,
        shell: bool = False,
        subsystem: bool = False,
    ) -> ExecResult:
        """Move bytes between our descriptors and channel ``number``, a session that
        runs ``command`` or (None) a forwarded connection to ``target``; and serve
        ``forwards`` meanwhile."""
        conn = self.conn
        timeout = self.options.timeout
        self._send_queued()
        shown = command.decode("utf-8", "replace") if command is not None else ""
        started = False  # the server agreed to run the command, or connected
        input_fd = stdin_fd
        exit_status: int | None = None
        exit_signal: tuple[str, str] | None = None
        eof = False
        deadline = deadline_after(timeout)
        closing: float | None = None
        # whether whoever reads our stdout and stderr is still there: once one went
        # away (EPIPE), what would go to it is dropped, as ssh drops it
        output = errors = True
        while True:
            events = self._drain()
            for index, event in enumerate(events):
                if forwards is not None and event.channel != number:
                    forwards.handle(event)
                elif isinstance(event, ch.ChannelData):
                    if output and not _write_all(stdout_fd, event.data, command is not None):
                        output = False
                        self._output_gone(number)
                    if number in conn.channels:  # else it closed in the same batch
                        conn.consumed(number, len(event.data))
                elif isinstance(event, ch.ChannelExtendedData):
                    if event.code == ch.EXTENDED_DATA_STDERR and errors:
                        errors = _write_all(stderr_fd, event.data, True)
                    if number in conn.channels:
                        conn.consumed(number, len(event.data))
                elif isinstance(event, ch.ChannelOpened):
                    if command is None:
                        self.trace(f"forwarding: channel {number} connected to {target}")
                        started = True
                        if input_fd is None:
                            conn.send_eof(number)
                    else:
                        self.trace(f"encrypted communication: session channel {number} opened")
                        x11 = forwards.x11 if forwards is not None else None
                        if x11 is not None:
                            self.trace(
                                "X11 forwarding: asking for it with authentication spoofing "
                                f"(a fake {x11.cookies.protocol} cookie)"
                            )
                            conn.request_x11(number, *x11.request())
                        if forwards is not None and forwards.agent_socket is not None:
                            self.trace("agent forwarding: the session may use our agent (-A)")
                            conn.forward_agent(number)
                        for name, value in env:  # RFC 4254 §6.4, no reply wanted (as ssh)
                            shown_name = name.decode("utf-8", "replace")
                            self.trace(f"command execution: sending environment {shown_name}")
                            conn.setenv(number, name, value)
                        if terminal is not None:
                            cols, rows, _, _ = size = terminal.size()
                            self.trace(
                                f"command execution: asking for a pseudo-terminal "
                                f"({terminal.term}, {cols}x{rows})"
                            )
                            conn.pty(number, terminal.term, size, terminal.modes)
                        if shell:
                            self.trace("command execution: starting the login shell")
                            conn.shell(number)
                        elif subsystem:
                            self.trace(f"command execution: starting subsystem {shown}")
                            conn.subsystem(number, shown)
                        else:
                            self.trace(f"command execution: sending command (encrypted): {shown}")
                            conn.exec(number, command)
                elif isinstance(event, ch.ChannelOpenFailed):
                    what = "a session channel" if command is not None else f"to connect to {target}"
                    # the server's words are escaped as ssh logs them: printed as they are
                    raise _OpenRefused(f"the server refused {safe(what)}: {event.explain()}")
                elif isinstance(event, ch.ChannelRequestReply) and event.request == "x11-req":
                    if not event.ok:  # as ssh: said, and the session goes on without it
                        _write_all(stderr_fd, _X11_REFUSED.format(number).encode())
                elif isinstance(event, ch.ChannelRequestReply) and event.request == "pty-req":
                    if not event.ok and terminal is not None and terminal.required:
                        # asked for by -t or RequestTTY: as ssh, its refusal ends it all
                        raise ProtocolError(_PTY_REFUSED.format(number).rstrip())
                    if not event.ok:  # as ssh: said, and the session goes on without one
                        _write_all(stderr_fd, _PTY_REFUSED.format(number).encode())
                elif isinstance(event, ch.ChannelRequestReply):
                    if not event.ok and shell:
                        raise ProtocolError("the server refused to start a shell")
                    if not event.ok and subsystem:  # ssh's words
                        raise ProtocolError(f"subsystem request failed on channel {number}")
                    if not event.ok:
                        raise ProtocolError(f"the server refused to run the command: {shown}")
                    started = True
                    if input_fd is None and number in conn.channels:
                        conn.send_eof(number)
                elif isinstance(event, ch.ExitStatus):
                    exit_status = event.status
                elif isinstance(event, ch.ExitSignal):
                    exit_signal = (event.signal, event.message)
                elif isinstance(event, ch.ChannelEof):
                    eof = True
                    if command is None and input_fd is not None and number in conn.channels:
                        # as ssh's -W (its channel's "force drain"): the far end's EOF
                        # ends the forward; stdin is not waited for
                        input_fd = None
                        conn.send_eof(number)
                elif isinstance(event, ch.ChannelClosed):
                    # what came after it (for forwards) is handled by the next loop
                    self._pending.extendleft(reversed(events[index + 1 :]))
                    self._send_queued()
                    if command is None:
                        return ExecResult(0)
                    return self._finished(exit_status, exit_signal)
            if forwards is not None:
                forwards.flush()
                if forwards.done:  # a shared connection's client told the master to exit
                    self.trace("connection sharing: the master exits")
                    return ExecResult(255)
            self._send_queued()
            # every wait has a timeout but the one for a running command's output
            if not started:
                waiting = "start the command" if command is not None else f"connect to {target}"
                wait = remaining(deadline, f"the server to {waiting}")
            elif eof and (exit_status is not None or exit_signal is not None):
                closing = closing or deadline_after(timeout)
                wait = remaining(closing, "the channel to close")
            else:
                wait = None
            reading = (
                input_fd is not None
                and started
                and number in conn.channels
                and conn.buffered(number) <= ch.DEFAULT_WINDOW
            )
            watched = [(input_fd, POLL_IN)] if reading and input_fd is not None else []
            if forwards is not None:
                watched += forwards.watch()
            if terminal is not None:
                watched.append((terminal.resized_fd, POLL_IN))
            ready = self._events(wait, watched)
            if terminal is not None and terminal.resized() and number in conn.channels:
                conn.window_change(number, terminal.size())
            if forwards is not None:
                for fd, flags in ready:
                    if fd != input_fd:
                        forwards.ready(fd, flags)
                self._send_queued()
            if any(fd == input_fd for fd, _ in ready) and input_fd is not None:
                if number not in conn.channels:
                    continue
                data = _read_input(input_fd)
                if data is None:
                    continue  # a spurious wake-up on a non-blocking stdin
                if data and terminal is not None and terminal.escapes is not None:
                    escapes = terminal.escapes
                    data, actions = escapes.feed(data)
                    backgrounded = False
                    for action in actions:
                        if action == tty.BACKGROUND:
                            backgrounded = self._background(
                                escapes.char, stderr_fd, terminal, forwards
                            )
                            if backgrounded:
                                break
                        elif self._escape(
                            action, escapes.char, number, stderr_fd, terminal, forwards
                        ):
                            return ExecResult(255)
                    if backgrounded:
                        # as ssh's ~&: an EOF character for the session, then its end of input
                        conn.send(number, data + b"\x04")
                        input_fd = None
                        conn.send_eof(number)
                        continue
                    if not data:
                        continue
                if data:
                    conn.send(number, data)
                else:
                    input_fd = None
                    conn.send_eof(number)

    def _output_gone(self, number: int) -> None:
        """Whoever read the session's output went away: as ssh, the server is told
        ("eow@openssh.com", no reply wanted), and the session goes on. OpenSSH's sshd
        then stops reading the command's output: a command that writes again dies of
        SIGPIPE; one that does not ends with its own status."""
        self.trace(f"channel {number}: our output went away: no more output wanted")
        ready = self.transport.ready
        # a request of OpenSSH's own, sent to OpenSSH only, as ssh does
        openssh = ready is not None and "OpenSSH" in ready.server_version
        if number in self.conn.channels and openssh:
            self.conn.no_more_output(number)

    def _escape(
        self,
        action: str,
        char: int,
        number: int,
        stderr_fd: int,
        terminal: LocalTerminal | None = None,
        forwards: Served | None = None,
    ) -> bool:
        """An escape typed at the terminal (ssh's, ``keytool.ttymodes``): its words on
        stderr, as ssh's, and what it asks for; True to close the connection (~.)."""
        conn = self.conn
        command_line = terminal is not None and terminal.has_command_line
        if action == tty.COMMAND_LINE and command_line and terminal is not None:
            self._command_line(terminal, forwards, stderr_fd)
            return False
        if action == tty.HELP:
            on_stderr = sys.stderr is not None and sys.stderr.fileno() == 2
            text = tty.help_text(char, command_line=command_line, log_on_stderr=on_stderr)
        elif action in (tty.LOUDER, tty.QUIETER):
            text = tty.echo(char, action, level=self._loglevel(action))
        else:
            text = tty.echo(char, action)
        if action == tty.LIST:
            text += tty.open_channels((n, c.kind) for n, c in sorted(conn.channels.items()))
        if text:
            _write_all(stderr_fd, text.encode())
        if action == tty.DISCONNECT:
            self.trace("escape ~.: closing the connection")
            return True
        if action == tty.BREAK and number in conn.channels:
            conn.send_break(number)
        elif action == tty.REKEY:
            self.rekey()
        elif action == tty.SUSPEND and terminal is not None:
            import signal

            # as ssh: the terminal itself again, and stopped as a job; raw once continued
            with terminal.suspended():
                os.kill(os.getpid(), signal.SIGTSTP)
        return False

    def _background(
        self,
        char: int,
        stderr_fd: int,
        terminal: LocalTerminal | None,
        forwards: Served | None,
    ) -> bool:
        """~&, as ssh's: the terminal itself again, no new forwarded connections, and
        on in the background (the caller gets its prompt back, status 0); True in the
        process that goes on."""
        if terminal is not None:
            terminal.restore()
        if forwards is not None:
            forwards.stop_listening()
        _write_all(stderr_fd, tty.echo(char, tty.BACKGROUND).encode())
        self.trace("escape ~&: on in the background")
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:  # ssh's words
            _write_all(stderr_fd, f"fork: {exc.strerror}\r\n".encode())
            return False
        if pid:
            os._exit(0)
        return True

    def _command_line(
        self, terminal: LocalTerminal, forwards: Served | None, stderr_fd: int
    ) -> None:
        """ssh's ~C command line (EnableEscapeCommandline yes): a line read at the
        ``ssh>`` prompt, then the forward added or cancelled, in ssh's words."""
        from keytool import cmdline
        from keytool.terminal import ask_terminal

        with terminal.command_line():  # as ssh's: its words said before raw mode again
            line = ask_terminal(cmdline.PROMPT)
            command = cmdline.parse(line or "", terminal.local_commands)
            self.trace(f"escape ~C: {command.kind}")
            words = list(command.words)
            if command.kind == cmdline.LOCAL_COMMAND:
                self._run_local(command.command)
            elif forwards is not None and command.kind not in (cmdline.SAY, cmdline.NOTHING):
                from keytool.tunnels import Forwards

                # a shared connection's master holds the forwards too
                tunnels = forwards if isinstance(forwards, Forwards) else forwards.forwards
                words.append(self._forward_command(command, tunnels))
            _write_all(stderr_fd, "".join(f"{word}\r\n" for word in words).encode())

    @staticmethod
    def _forward_command(command: Command, forwards: Forwards) -> str:
        """One forward added or cancelled by the command line: ssh's words for it."""
        from keytool import cmdline
        from keytool.forwardspec import RemoteForward

        if command.kind == cmdline.LOCAL and command.forward is not None:
            try:
                forwards.add_local(command.forward)
            except KeytoolError:
                return cmdline.FAILED
            return cmdline.FORWARDING
        if command.kind == cmdline.REMOTE and isinstance(command.forward, RemoteForward):
            forwards.ask_remote(command.forward)
            return cmdline.FORWARDING
        if command.kind == cmdline.CANCEL_REMOTE:
            found = [f for f in forwards.remote_listening if cmdline.matches(f, command)]
            if found and forwards.cancel_remote(found[0]):
                return cmdline.CANCELED
            return cmdline.UNKNOWN
        found_local = [f for f in forwards.forwards if cmdline.matches(f, command)]
        if found_local and forwards.cancel_local(found_local[0]):
            return cmdline.CANCELED
        return cmdline.UNKNOWN

    @staticmethod
    def _run_local(command: str) -> None:
        """~C's !command (PermitLocalCommand yes): run with our shell, as ssh's (the
        terminal is itself meanwhile)."""
        import subprocess

        if not command:
            return
        shell = os.environ.get("SHELL") or "/bin/sh"
        try:
            subprocess.run([shell, "-c", command], check=False)
        except OSError as exc:  # ssh's words
            sys.stderr.write(f'Couldn\'t execute {shell} -c "{command}": {exc.strerror}\n')

    def rekey(self) -> None:
        """A key exchange now (ssh's ~R)."""
        self.trace("escape ~R: new keys")
        self.transport.conn.rekey()
        self.transport._queue()

    def _unasked(self, kind: str) -> None:
        """The server opened an agent or X11 channel we never asked for (refused): as
        ssh, a warning; any other kind only for -v."""
        what = {ch.X11: "X11", ch.AUTH_AGENT: "agent"}.get(kind)
        if what is None or not self.options.shows_errors:
            self.trace(f"connection: refused the server's unasked {kind} channel")
            return
        sys.stderr.write(
            f"Warning: ssh server tried {what} forwarding.\r\n"
            "Warning: this is probably a break-in attempt by a malicious server.\r\n"
        )
        sys.stderr.flush()

    def _drain(self) -> list[ch.ChannelEvent]:
        events = list(self._pending)
        self._pending.clear()
        return events

    def _finished(self, status: int | None, signal: tuple[str, str] | None) -> ExecResult:
        if signal is not None and status is None:
            self.trace(f"command execution: remote command killed by signal {signal[0]}")
            return ExecResult(None, signal[0], signal[1])
        self.trace(f"command execution: exit status {status}")
        return ExecResult(status)

    def close(self) -> None:
        self.transport.close()


def _read_input(fd: int) -> bytes | None:
    """The next piece of our input; b"" at its end, None if nothing is there yet."""
    try:
        return os.read(fd, _READ_SIZE)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _write_all(fd: int, data: bytes, may_go: bool = False) -> bool:
    """``data`` written to ``fd``; False when its reader went away (EPIPE) and
    ``may_go`` says the caller goes on without it, else BrokenPipeError."""
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except BrokenPipeError:
        if may_go:
            return False
        raise  # the reader went away: exit quietly, as a pipeline expects
    except OSError as exc:
        where = "standard output" if fd == 1 else "standard error" if fd == 2 else f"fd {fd}"
        raise KeytoolError(f"cannot write to {where}: {exc.strerror or exc}") from None
    return True


# ---------------------------------------------------------------- connecting


def peer_address(sock: _socket.socket) -> str:
    """The server's IP address, as ssh shows it in the host key question (a
    ProxyCommand's socket has none: ssh's words then)."""
    try:
        peer = sock.getpeername()
    except OSError:
        peer = None
    if isinstance(peer, tuple) and peer and isinstance(peer[0], str):
        return peer[0]
    return "<no hostip for proxy command>"


def connect(
    options: ConnectOptions, sock: _socket.socket, prompts: Prompts | None = None
) -> BlockingClient:
    """Key exchange and host verification on the connected ``sock``, then user
    authentication."""
    prompts = prompts or Prompts(options.batch_mode)
    host = HostCheck(options, prompts)
    host.address = peer_address(sock)
    config: TransportConfig = host.config
    try:
        peer: object = sock.getpeername()
    except OSError:
        peer = None
    transport = BlockingTransport(sock, ClientTransport(config))
    try:
        transport.handshake(host, options.handshake_timeout)
        client = BlockingClient(transport, options, prompts, host.allow_password, host.trusted)
        run_blocking(client.authenticate())
    except NegotiationError as exc:
        from keytool.client import unable_to_negotiate

        transport.close()
        raise unable_to_negotiate(exc, peer) from None
    except BaseException:
        transport.close()
        raise
    return client

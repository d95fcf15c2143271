"""The SSH client over asyncio: host verification, user authentication, channels.

Built on ``keytool.client.open_transport`` (TCP, key exchange, the ssh-userauth
service), ``keytool.login_hostkey`` and ``keytool.login`` (host check and the
authentication steps, shared with the blocking driver of ``keytool exec``) and the
sans-IO ``transport.channels``::

    client = await open_connection(options)      # host key verified, not logged in
    accepted = await client.query_key(key)        # optional: would this key do?
    await client.authenticate()                   # agent, key files, password...
    result = await client.run("uname -a")          # or exec() to stream, open_sftp()
    await client.close()

``connect(options)`` does the first and third steps. Every wait for the server has
a timeout (``options.timeout``), but a running command's output, which may rightly
take long, is waited for as ssh does: as long as the connection lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from keytool.errors import (
    AuthError,
    DisconnectError,
    KeytoolError,
    ProtocolError,
    TimedOut,
    in_words,
)
from keytool.login import Login
from keytool.options import (
    ConnectOptions,
    Prompts,
    options_from_config,
)
from keytool.serveralive import ServerAlive
from keytool.transport import channels as ch
from keytool.transport.channels import ExecResult

if TYPE_CHECKING:
    from keytool.agentclient import AsyncAgentClient
    from keytool.client import Transport
    from keytool.keys.base import PublicKey
    from keytool.transport.sftp import Sftp

__all__ = [
    "Channel",
    "Client",
    "ConnectOptions",
    "ExecResult",
    "Prompts",
    "connect",
    "open_connection",
    "options_from_config",
]


async def connect_agent(path: str | None, timeout: float) -> AsyncAgentClient:
    """The agent at ``path`` (None: SSH_AUTH_SOCK), over asyncio."""
    from keytool.agentclient import AsyncAgentClient

    return await asyncio.wait_for(AsyncAgentClient.connect(path), timeout)


# ---------------------------------------------------------------- channels


# ---------------------------------------------------------------- channels


class Channel:
    """One session channel: async reads of stdout/stderr, writes to stdin."""

    def __init__(self, client: Client, number: int) -> None:
        self._client = client
        self.number = number
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._replies: deque[asyncio.Future[bool]] = deque()
        self._incoming: deque[tuple[int, bytes]] = deque()  # (0 stdout | 1 stderr, data)
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self.eof_received = False
        self.closed = False
        self.exit_status: int | None = None
        self.exit_signal: tuple[str, bool, str] | None = None
        self._closed_event = asyncio.Event()
        self._error: KeytoolError | None = None

    # driven by the client's pump

    def _on_event(self, event: ch.ChannelEvent) -> None:
        if isinstance(event, ch.ChannelData):
            self._incoming.append((0, event.data))
            self._readable.set()
        elif isinstance(event, ch.ChannelExtendedData):
            if event.code == ch.EXTENDED_DATA_STDERR:
                self._incoming.append((1, event.data))
                self._readable.set()
            else:
                self._client.conn.consumed(self.number, len(event.data))
        elif isinstance(event, ch.WindowAdjusted):
            self._writable.set()
        elif isinstance(event, ch.ChannelOpened):
            if not self._opened.done():
                self._opened.set_result(None)
        elif isinstance(event, ch.ChannelOpenFailed):
            if not self._opened.done():
                self._opened.set_exception(
                    ProtocolError(f"the server refused a session channel: {event.explain()}")
                )
            self._finish()
        elif isinstance(event, ch.ChannelRequestReply):
            if self._replies:
                future = self._replies.popleft()
                if not future.done():
                    future.set_result(event.ok)
        elif isinstance(event, ch.ExitStatus):
            self.exit_status = event.status
        elif isinstance(event, ch.ExitSignal):
            self.exit_signal = (event.signal, event.core_dumped, event.message)
        elif isinstance(event, ch.ChannelEof):
            self.eof_received = True
            self._readable.set()
        elif isinstance(event, ch.ChannelClosed):
            self.eof_received = True
            self._finish()

    def _finish(self) -> None:
        self.closed = True
        self._readable.set()
        self._writable.set()
        self._closed_event.set()
        for future in self._replies:
            if not future.done():
                future.set_exception(ProtocolError("the channel closed before the reply"))
        self._replies.clear()

    def _fail(self, error: KeytoolError) -> None:
        self._error = error
        if not self._opened.done():
            self._opened.set_exception(error)
            self._opened.exception()  # mark retrieved
        for future in self._replies:
            if not future.done():
                future.set_exception(error)
        self._replies.clear()
        self.closed = True
        self._readable.set()
        self._writable.set()
        self._closed_event.set()

    # the API

    async def wait_open(self, timeout: float | None) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._opened), timeout)
        except TimeoutError:
            raise DisconnectError("timed out waiting for the server to open a channel") from None

    async def request(self, kind: str, argument: str | bytes, timeout: float | None) -> bool:
        """exec or subsystem with want-reply; True when the server agreed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._replies.append(future)
        conn = self._client.conn
        if kind == "exec":
            conn.exec(self.number, argument)
        else:
            conn.subsystem(self.number, str(argument))
        await self._client.flush()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise DisconnectError(f"timed out waiting for the server to start the {kind}") from None

    async def read(self) -> tuple[int, bytes]:
        """The next piece of output: (0, stdout bytes) or (1, stderr bytes); (0, b"") at
        EOF. Reading gives the window back to the server."""
        while not self._incoming:
            if self._error is not None:
                raise self._error
            if self.eof_received or self.closed:
                return 0, b""
            self._readable.clear()
            await self._readable.wait()
        stream, data = self._incoming.popleft()
        if not self.closed:
            self._client.conn.consumed(self.number, len(data))
            self._client.flush_nowait()
        return stream, data

    async def read_stdout(self) -> bytes:
        """The next stdout bytes, b"" at EOF; stderr read meanwhile is dropped."""
        while True:
            stream, data = await self.read()
            if stream == 0:
                return data

    async def write(self, data: bytes) -> None:
        """Send ``data``, waiting while the server's window is full."""
        if self._error is not None:
            raise self._error
        if self.closed:
            raise DisconnectError("the channel is closed")
        conn = self._client.conn
        conn.send(self.number, data)
        await self._client.flush()
        # backpressure: do not run ahead of the server's window by more than a window
        while conn.buffered(self.number) > ch.DEFAULT_WINDOW and not self.closed:
            self._writable.clear()
            await self._writable.wait()
            if self._error is not None:
                raise self._error

    async def send_eof(self) -> None:
        if not self.closed and self.number in self._client.conn.channels:
            self._client.conn.send_eof(self.number)
            await self._client.flush()

    async def close(self) -> None:
        if not self.closed and self.number in self._client.conn.channels:
            self._client.conn.close(self.number)
            await self._client.flush()

    async def wait_closed(self, timeout: float | None = None) -> None:
        try:
            await asyncio.wait_for(self._closed_event.wait(), timeout)
        except TimeoutError:
            raise DisconnectError("timed out waiting for the channel to close") from None
        if self._error is not None:
            raise self._error

    def result(self, stdout: bytes = b"", stderr: bytes = b"") -> ExecResult:
        if self.exit_signal is not None and self.exit_status is None:
            name, _, message = self.exit_signal
            return ExecResult(None, name, message, stdout, stderr)
        return ExecResult(self.exit_status, None, "", stdout, stderr)


# ---------------------------------------------------------------- the client


async def _no_input() -> bytes:
    return b""


class Client(Login):
    """One SSH connection: verified host, then user authentication, then channels."""

    transport: Transport

    def __init__(
        self,
        transport: Transport,
        options: ConnectOptions,
        prompts: Prompts,
        allow_password: bool = True,
        host_trusted: bool = False,
    ) -> None:
        super().__init__(transport, options, prompts, connect_agent, allow_password, host_trusted)
        self._channels: dict[int, Channel] = {}
        self._pump_task: asyncio.Task[None] | None = None
        self._error: KeytoolError | None = None

    def _authenticated(self) -> None:
        super()._authenticated()
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    # ---- the connection protocol

    async def _pump(self) -> None:
        """Read every payload after authentication and route channel events; with
        ServerAliveInterval, ask a silent server whether it is there, as ssh does, and
        give it up when it leaves more than ServerAliveCountMax of those unanswered."""
        options = self.options
        try:
            alive = (
                ServerAlive(options.server_alive_interval, options.server_alive_count_max)
                if options.server_alive_interval > 0
                else None
            )
            heard = time.monotonic()
            while True:
                if alive is None:
                    payloads = await self.transport.receive_batch(timeout=None)
                else:
                    try:
                        payloads = await self.transport.receive_batch(alive.wait_limit(None, heard))
                    except TimedOut:
                        if alive.due(heard):
                            if alive.given_up():
                                raise DisconnectError(
                                    f"Timeout, server {options.host} not responding."
                                ) from None
                            self.trace("connection: the server is silent; asking it (keepalive)")
                            self.conn.keepalive()
                            self.flush_nowait()
                        continue
                    heard = time.monotonic()
                conn = self.conn
                channels = self._channels
                for payload in payloads:
                    for event in conn.receive(payload):
                        if event.channel < 0 and self.host_key_event(event):
                            continue
                        channel = channels.get(event.channel)
                        if channel is not None:
                            channel._on_event(event)
                            if isinstance(event, ch.ChannelClosed | ch.ChannelOpenFailed):
                                channels.pop(event.channel, None)
                self.flush_nowait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # told to every channel waiting on it
            # whatever ends the reader (a file that cannot be opened: no descriptor
            # free; memory running out) ends the channels waiting on it, at once
            error = (
                exc
                if isinstance(exc, KeytoolError)
                else KeytoolError(f"the connection's reader stopped: {in_words(exc)}")
            )
            if error is not exc:
                error.__cause__ = exc
            self._error = error
            for channel in list(self._channels.values()):
                channel._fail(error)

    def flush_nowait(self) -> None:
        for payload in self.conn.data_to_send():
            self.transport.send_nowait(payload)

    async def open_channel(self) -> Channel:
        if not self.authenticated:
            raise AuthError("not authenticated")
        if self._error is not None:
            raise self._error
        number = self.conn.open_session()
        channel = Channel(self, number)
        self._channels[number] = channel
        await self.flush()
        await channel.wait_open(self.options.timeout)
        self.trace(f"encrypted communication: session channel {number} opened")
        return channel

    async def exec(
        self,
        command: str | bytes,
        stdin: Callable[[], Awaitable[bytes]] | None = None,
        stdout: Callable[[bytes], None] | None = None,
        stderr: Callable[[bytes], None] | None = None,
    ) -> ExecResult:
        """Run ``command``, streaming: ``stdin()`` is awaited for input until it returns
        b""; output goes to ``stdout``/``stderr`` as it comes (collected in the result
        when they are None)."""
        channel = await self.open_channel()
        shown = command if isinstance(command, str) else command.decode("utf-8", "replace")
        self.trace(f"command execution: sending command (encrypted): {shown}")
        if not await channel.request("exec", command, self.options.timeout):
            await channel.close()
            raise ProtocolError(f"the server refused to run the command: {shown}")
        out: list[bytes] = []
        err: list[bytes] = []
        sinks = (stdout or out.append, stderr or err.append)
        feeder = asyncio.get_running_loop().create_task(self._feed(channel, stdin or _no_input))
        # the input failing while the channel is open (not by its end) fails the channel
        # at once: the command may wait for that input, and the reader for its output
        stopped = KeytoolError("the command's input stopped")

        def fed(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None and not channel.closed:
                channel._fail(stopped)
                if channel.number in self.conn.channels:
                    self.conn.close(channel.number)
                    self.flush_nowait()

        feeder.add_done_callback(fed)
        try:
            try:
                while True:
                    stream, data = await channel.read()
                    if not data:
                        break
                    sinks[stream](data)
                timeout = None if channel.exit_status is None else self.options.timeout
                await channel.wait_closed(timeout)
            except KeytoolError as exc:
                if exc is not stopped:
                    raise
        finally:
            if not feeder.done():
                feeder.cancel()
            await asyncio.wait([feeder])
            failure = None if feeder.cancelled() else feeder.exception()
            await channel.close()
        # the input's own error, as it was raised (a KeytoolError that only says the
        # channel had ended is the reader's to tell, and it did)
        if failure is not None and (
            channel._error is stopped or not isinstance(failure, KeytoolError)
        ):
            raise failure
        result = channel.result(b"".join(out), b"".join(err))
        if result.exit_signal:
            self.trace(f"command execution: remote command killed by signal {result.exit_signal}")
        else:
            self.trace(f"command execution: exit status {result.exit_status}")
        return result

    async def _feed(self, channel: Channel, stdin: Callable[[], Awaitable[bytes]]) -> None:
        while not channel.closed:
            data = await stdin()
            if not data:
                break
            await channel.write(data)
        await channel.send_eof()

    async def run(self, command: str | bytes, input: bytes = b"") -> ExecResult:
        """Run ``command`` with ``input`` on its stdin; collect its output."""
        sent = False

        async def feed() -> bytes:
            nonlocal sent
            if sent:
                return b""
            sent = True
            return input

        return await self.exec(command, feed)

    async def open_sftp(self) -> Sftp:
        """An SFTP session (``keytool.transport.sftp.Sftp``) on the "sftp" subsystem."""
        from keytool.transport.sftp import Sftp

        channel = await self.open_channel()
        if not await channel.request("subsystem", "sftp", self.options.timeout):
            await channel.close()
            raise ProtocolError("the server refused the sftp subsystem")
        timeout = self.options.timeout

        async def receive() -> bytes:
            try:
                return await asyncio.wait_for(channel.read_stdout(), timeout)
            except TimeoutError:
                raise DisconnectError(
                    f"timed out after {timeout:g}s waiting for the SFTP server"
                ) from None

        sftp = Sftp(channel.write, receive, channel.close)
        await sftp.start()
        self.trace("sftp subsystem started")
        return sftp

    async def close(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, KeytoolError):
                await self._pump_task
        await self.transport.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# ---------------------------------------------------------------- connecting


async def open_connection(
    options: ConnectOptions, prompts: Prompts | None = None, sock: socket.socket | None = None
) -> Client:
    """TCP (unless ``sock`` is already connected), key exchange and host key
    verification; not yet authenticated."""
    from keytool.client import open_transport
    from keytool.login_hostkey import HostCheck

    prompts = prompts or Prompts(options.batch_mode)
    host = HostCheck(options, prompts)
    if sock is None and options.proxy_command is not None:
        from keytool.tcp import proxy_connect

        if options.trace:
            options.trace(f"executing proxy command: {options.proxy_command}")
        sock = proxy_connect(options.proxy_command)

    async def check(key: PublicKey, algorithm: str) -> None:
        # a question on the terminal asked without holding the event loop up when the
        # prompts can (copy-id's fleet: the other hosts go on meanwhile)
        await host.check_async(key, algorithm)

    def peer(address: str) -> None:
        host.address = address

    transport = await open_transport(
        options.host,
        options.port,
        host.config,
        check,
        connect_timeout=options.connect_timeout,
        handshake_timeout=options.handshake_timeout,
        sock=sock,
        on_peer=peer,
        keepalive=options.tcp_keep_alive and options.proxy_command is None,
    )
    return Client(
        transport, options, prompts, allow_password=host.allow_password, host_trusted=host.trusted
    )


async def connect(
    options: ConnectOptions, prompts: Prompts | None = None, sock: socket.socket | None = None
) -> Client:
    """Connect, verify the host and authenticate."""
    client = await open_connection(options, prompts, sock)
    try:
        await client.authenticate()
    except BaseException:
        await client.close()
        raise
    return client

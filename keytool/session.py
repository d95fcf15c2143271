"""The SSH client's upper half: host verification, user authentication, channels.

Built on ``keytool.client.open_transport`` (TCP, key exchange, the ssh-userauth
service) and the sans-IO ``transport.auth`` and ``transport.channels`` machines::

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
import os
import socket
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from keytool.destination import resolve_command_line
from keytool.errors import (
    AgentError,
    AuthError,
    DisconnectError,
    HostKeyError,
    KeytoolError,
    ProtocolError,
    TimedOut,
)
from keytool.keys.base import PrivateKey, PublicKey
from keytool.record import Record, init
from keytool.transport import auth as ua
from keytool.transport import channels as ch
from keytool.transport.config import TransportConfig

if TYPE_CHECKING:
    from pathlib import Path

    from keytool.agentclient import AsyncAgentClient
    from keytool.client import Transport
    from keytool.sshconfig import ResolvedConfig
    from keytool.transport.sftp import Sftp

Trace = Callable[[str], None]

DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
DEFAULT_TIMEOUT = 60.0


# ---------------------------------------------------------------- options and prompts


class Prompts:
    """How the client talks to the user; tests and scripts replace it.

    ``secret`` asks for a passphrase or password (the terminal, or SSH_ASKPASS with
    SSH_ASKPASS_REQUIRE as ssh does); ``show`` prints server text such as banners."""

    def __init__(self, batch_mode: bool = False) -> None:
        self.batch_mode = batch_mode

    def can_ask(self) -> bool:
        if self.batch_mode:
            return False
        from keytool import terminal

        return terminal.has_terminal() or terminal._askpass_program(False) is not None

    def secret(self, prompt: str, purpose: str) -> str:
        if self.batch_mode:
            raise KeytoolError(f"{purpose} is needed but BatchMode is set")
        from keytool import terminal

        return terminal.read_secret(prompt, purpose)

    def show(self, text: str) -> None:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """Everything ``connect`` needs; the CLI fills it from -o, -F and ~/.ssh/config."""

    host: str  # the host to connect to (after HostName)
    user: str
    port: int = 22
    host_key_alias: str | None = None  # the name looked up in known_hosts, if not host
    identity_files: tuple[str, ...] = ()  # -i / IdentityFile; none: ssh's default files
    identities_only: bool = False
    agent: bool = True  # use SSH_AUTH_SOCK
    agent_socket: str | None = None
    password_authentication: bool = True
    kbd_interactive_authentication: bool = True
    pubkey_authentication: bool = True
    batch_mode: bool = False
    password: str | None = None  # given by a script (never logged)
    user_known_hosts: tuple[str, ...] = DEFAULT_KNOWN_HOSTS
    global_known_hosts: tuple[str, ...] = DEFAULT_GLOBAL_KNOWN_HOSTS
    strict_host_key_checking: str = "ask"
    hash_known_hosts: bool = False
    expected_host_key: str | None = None  # "SHA256:..." pin checked before anything else
    connect_timeout: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_auth_tries: int = ua.DEFAULT_MAX_AUTH_TRIES
    password_prompts: int = ua.DEFAULT_PASSWORD_PROMPTS
    transport: TransportConfig = field(default_factory=TransportConfig)
    trace: Trace | None = field(default=None, compare=False)


# ---------------------------------------------------------------- signers


class _Candidate(Record):
    """An identity with what signs for it: the agent, or a key file loaded on demand."""

    __slots__ = ("identity", "in_agent", "path")
    identity: ua.Identity
    path: Path | None
    in_agent: bool

    def __init__(self, identity: ua.Identity, path: Path | None, in_agent: bool) -> None:
        init(self, identity=identity, path=path, in_agent=in_agent)


class _Keys:
    """The agent connection and key files behind the identities."""

    def __init__(self, options: ConnectOptions, prompts: Prompts, trace: Trace) -> None:
        self.options = options
        self.prompts = prompts
        self.trace = trace
        self.agent: AsyncAgentClient | None = None
        self.loaded: dict[bytes, PrivateKey] = {}

    async def collect(self) -> list[_Candidate]:
        from pathlib import Path  # here: keytool exec imports this module on its start-up path

        from keytool.sshconfig import DEFAULT_IDENTITY_FILES

        options = self.options

        explicit = [Path(p).expanduser() for p in options.identity_files]
        files: list[tuple[ua.Identity, Path]] = []
        for path, is_explicit in [(p, True) for p in explicit] or [
            (Path(p).expanduser(), False) for p in DEFAULT_IDENTITY_FILES
        ]:
            identity = self._file_identity(path, is_explicit)
            if identity is not None:
                files.append((identity, path))
        agent_ids: list[ua.Identity] = []
        if options.agent and (options.agent_socket or os.environ.get("SSH_AUTH_SOCK")):
            agent_ids = await self._agent_identities()
        order = ua.order_identities(
            [i for i, _ in files if i.explicit],
            agent_ids,
            [i for i, _ in files if not i.explicit],
            options.identities_only,
        )
        paths = {i.key.to_wire(): p for i, p in files}
        agent_blobs = {i.key.to_wire() for i in agent_ids}
        return [
            _Candidate(i, paths.get(i.key.to_wire()), i.key.to_wire() in agent_blobs) for i in order
        ]

    def _file_identity(self, path: Path, explicit: bool) -> ua.Identity | None:
        from keytool.keyfiles import public_of_file

        if not path.exists():
            if explicit:
                self.trace(f"identity file {path} not accessible: no such file")
                sys.stderr.write(
                    f"Warning: Identity file {path} not accessible: No such file or directory.\n"
                )
            return None
        try:
            listed = public_of_file(path)
        except KeytoolError as exc:
            self.trace(f"identity file {path} skipped: {exc}")
            return None
        return ua.Identity(listed.key, str(path), explicit)

    async def _agent_identities(self) -> list[ua.Identity]:
        from keytool.agentclient import AsyncAgentClient

        try:
            agent = await asyncio.wait_for(
                AsyncAgentClient.connect(self.options.agent_socket), self.options.timeout
            )
            self.agent = agent
            keys = await asyncio.wait_for(agent.identities(), self.options.timeout)
        except (AgentError, TimeoutError) as exc:
            self.trace(f"agent not used: {exc or 'timed out'}")
            return []
        found: list[ua.Identity] = []
        for key in keys:
            try:
                found.append(ua.Identity(key.public, "agent"))
            except KeytoolError:
                continue  # a key type we do not handle (a certificate, FIDO...)
        self.trace(f"agent holds {len(found)} usable key{'s' if len(found) != 1 else ''}")
        return found

    async def sign(self, candidate: _Candidate, algorithm: str, data: bytes) -> bytes | None:
        """The signature, or None when this key cannot sign after all (passphrase
        refused, agent refused): the caller then moves on to the next method."""
        blob = candidate.identity.key.to_wire()
        if candidate.in_agent and self.agent is not None:
            from keytool.agentproto import SSH_AGENT_RSA_SHA2_256, SSH_AGENT_RSA_SHA2_512

            flags = {
                "rsa-sha2-256": SSH_AGENT_RSA_SHA2_256,
                "rsa-sha2-512": SSH_AGENT_RSA_SHA2_512,
            }.get(algorithm, 0)
            try:
                # no timeout: a confirm-constrained key waits for a human
                return await self.agent.sign(blob, data, flags)
            except AgentError as exc:
                self.trace(f"agent could not sign: {exc}")
                if candidate.path is None:
                    return None
        key = self.loaded.get(blob)
        if key is None:
            if candidate.path is None:
                return None
            key = self._load(candidate.path)
            if key is None:
                return None
            self.loaded[blob] = key
        return key.sign(data, algorithm)

    def _load(self, path: Path) -> PrivateKey | None:
        from keytool.keyfiles import load_private_file

        def ask(p: Path) -> bytes:
            return self.prompts.secret(
                f"Enter passphrase for key '{p}': ", f"the passphrase for {p}"
            ).encode("utf-8")

        try:
            key, _ = load_private_file(path, ask=ask)
        except KeytoolError as exc:
            self.trace(f"key {path} not used: {exc}")
            sys.stderr.write(f"keytool: key {path} not used: {exc}\n")
            return None
        return key

    async def close(self) -> None:
        if self.agent is not None:
            await self.agent.close()


# ---------------------------------------------------------------- results


class ExecResult(Record):
    """How a remote command ended: ``exit_status`` None if it died of ``exit_signal``."""

    __slots__ = ("exit_signal", "exit_status", "signal_message", "stderr", "stdout")
    exit_status: int | None
    exit_signal: str | None
    signal_message: str
    stdout: bytes
    stderr: bytes

    def __init__(
        self,
        exit_status: int | None,
        exit_signal: str | None = None,
        signal_message: str = "",
        stdout: bytes = b"",
        stderr: bytes = b"",
    ) -> None:
        init(
            self,
            exit_status=exit_status,
            exit_signal=exit_signal,
            signal_message=signal_message,
            stdout=stdout,
            stderr=stderr,
        )

    @property
    def ssh_exit_code(self) -> int:
        """What ssh itself would exit with: the status, or 255 without one."""
        return self.exit_status if self.exit_status is not None else 255


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
                    ProtocolError(
                        f"the server refused a session channel: {event.description} "
                        f"(reason {event.reason})"
                    )
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


class Client:
    """One SSH connection: verified host, then user authentication, then channels."""

    def __init__(
        self,
        transport: Transport,
        options: ConnectOptions,
        prompts: Prompts,
        allow_password: bool = True,
    ) -> None:
        self.transport = transport
        self.options = options
        self.prompts = prompts
        self.trace: Trace = options.trace or (lambda _line: None)
        self.allow_password = allow_password
        self.auth = ua.UserAuth(options.user, transport.session_id)
        self.conn = ch.Connection(auto_window=False)
        self.authenticated = False
        self.methods: tuple[str, ...] | None = None  # from the last failure
        self.banners: list[str] = []
        self._channels: dict[int, Channel] = {}
        self._pump_task: asyncio.Task[None] | None = None
        self._error: KeytoolError | None = None
        self._query_failures = 0  # refused key queries count towards MaxAuthTries

    # ---- authentication

    async def _auth_reply(self) -> ua.AuthEvent:
        """The next reply to our request; banners are shown and skipped."""
        while True:
            payload = await self.transport.receive(timeout=self.options.timeout)
            if payload and payload[0] >= ch.MSG_GLOBAL_REQUEST:
                # a global request may arrive at any time (RFC 4254 §4)
                self.conn.receive(payload)
                await self.flush()
                continue
            event = self.auth.receive(payload)
            if isinstance(event, ua.AuthBanner):
                self.banners.append(event.message)
                if not self.options.batch_mode:
                    self.prompts.show(event.message)
                continue
            return event

    async def _learn_methods(self) -> ua.AuthEvent:
        await self.transport.send(self.auth.none())
        event = await self._auth_reply()
        if isinstance(event, ua.AuthFailure):
            self.methods = event.methods
            self.trace(f"authentication: the server accepts: {', '.join(event.methods)}")
        return event

    async def learn_methods(self) -> tuple[str, ...]:
        """The methods the server takes, asked once with "none" (RFC 4252 §5.2); lets a
        caller do that round trip early, while it waits for something else."""
        if self.methods is None and not self.authenticated:
            event = await self._learn_methods()
            if isinstance(event, ua.AuthSuccess):
                self._authenticated()
        return self.methods or ()

    async def query_key(self, key: PublicKey) -> bool:
        """Would the server accept ``key`` for this user? Asked without signing (a
        publickey query, RFC 4252 §7), before authenticating. A refusal counts as a
        failed attempt on the server (MaxAuthTries)."""
        if self.authenticated:
            raise AuthError("already authenticated: keys can only be queried before")
        # no "none" request first: a refusal lists the methods just as well (§5.1)
        if self.methods is not None and "publickey" not in self.methods:
            return False
        algorithm = ua.signature_algorithm_for(key, self._server_sig_algs())
        if algorithm is None:
            return False
        await self.transport.send(self.auth.publickey(key, algorithm, sign=False))
        event = await self._auth_reply()
        if isinstance(event, ua.KeyAccepted):
            self.trace(f"the server would accept {key.key_type} key (queried, not signed)")
            return True
        if isinstance(event, ua.AuthFailure):
            self.methods = event.methods
            self._query_failures += 1
            return False
        raise ProtocolError(f"unexpected answer to a key query: {type(event).__name__}")

    def _server_sig_algs(self) -> frozenset[str] | None:
        algs = self.transport.server_sig_algs
        return frozenset(algs) if algs is not None else None

    async def authenticate(self, keys_only: Sequence[PrivateKey] | None = None) -> None:
        """Log in: the "none" method first to learn what the server takes, then keys
        (explicit, agent, default files), keyboard-interactive and password as allowed.

        ``keys_only``: try just these in-memory keys (copy-id's verification)."""
        if self.authenticated:
            return
        options = self.options
        trace = self.trace
        keys = _Keys(options, self.prompts, trace)
        plan: ua.AuthPlan | None = None
        allowed: Sequence[str] = self.methods or ()
        try:
            if self.methods is None:
                event = await self._learn_methods()
                if isinstance(event, ua.AuthSuccess):
                    trace("authenticated with method none")
                    self._authenticated()
                    return
            if keys_only is not None:
                candidates = [
                    _Candidate(ua.Identity(k.public, "given key", True), None, False)
                    for k in keys_only
                ]
                memory = {k.public.to_wire(): k for k in keys_only}
                keys.loaded.update(memory)
            elif options.pubkey_authentication:
                candidates = await keys.collect()
            else:
                candidates = []
            by_blob = {c.identity.key.to_wire(): c for c in candidates}
            can_prompt = options.password is not None or self.prompts.can_ask()
            plan = ua.AuthPlan(
                [c.identity for c in candidates],
                password=(
                    options.password_authentication
                    and self.allow_password
                    and can_prompt
                    and keys_only is None
                ),
                keyboard_interactive=(
                    options.kbd_interactive_authentication
                    and self.allow_password
                    and can_prompt
                    and keys_only is None
                ),
                max_tries=options.max_auth_tries,
                password_prompts=options.password_prompts,
                server_sig_algs=self._server_sig_algs(),
                failures=self._query_failures,
            )
            allowed = self.methods or ()
            while True:
                step = plan.next_step(allowed)
                if step is None:
                    raise plan.error(options.user, options.host, allowed)
                if isinstance(step, ua.TryKey):
                    outcome = await self._try_key(
                        step, by_blob[step.identity.key.to_wire()], keys, plan
                    )
                elif isinstance(step, ua.TryKeyboardInteractive):
                    outcome = await self._try_kbdint(plan)
                else:
                    outcome = await self._try_password(plan)
                if outcome is True:
                    self._authenticated()
                    return
                if isinstance(outcome, ua.AuthFailure):
                    allowed = outcome.methods
                    if outcome.partial:
                        trace(
                            "authentication: partial success; the server now wants: "
                            + ", ".join(allowed)
                        )
        except DisconnectError as exc:
            if plan is None or isinstance(exc, TimedOut):
                raise
            # the server hung up during authentication (MaxAuthTries, LoginGraceTime...)
            reason = str(exc).split(": ", 1)[-1]
            raise AuthError(
                f"{plan.error(options.user, options.host, allowed)}; {reason}"
            ) from None
        finally:
            await keys.close()

    async def authenticate_with_key(self, key: PrivateKey) -> bool:
        """Log in with ``key`` alone, its signature sent at once without a query first
        (RFC 4252 §7): for a key that should be installed (copy-id's verification),
        one request. False when the server refuses it."""
        if self.authenticated:
            return True
        algorithm = ua.signature_algorithm_for(key.public, self._server_sig_algs())
        if algorithm is None:
            return False
        from keytool.keys.fingerprint import fingerprint

        label = f"{key.public.label} {fingerprint(key.public)}"
        self.trace(f"authentication (public key): signing with {label} ({algorithm}) at once")
        needed = self.auth.publickey_signed(key.public, algorithm)
        await self.transport.send(self.auth.send_signature(key.sign(needed.data, algorithm)))
        event = await self._auth_reply()
        if isinstance(event, ua.AuthSuccess):
            self.trace(f"verification: authenticated with public key {label}")
            self._authenticated()
            return True
        if isinstance(event, ua.AuthFailure):
            self.methods = event.methods
            self.trace("authentication (public key): the server refused the key")
            return False
        raise ProtocolError(f"unexpected answer to a signature: {type(event).__name__}")

    async def _try_key(
        self, step: ua.TryKey, candidate: _Candidate, keys: _Keys, plan: ua.AuthPlan
    ) -> bool | ua.AuthFailure | None:
        from keytool.keys.fingerprint import fingerprint

        identity = step.identity
        label = f"{identity.key.label} {fingerprint(identity.key)} ({identity.source})"
        self.trace(
            f"authentication (public key): offering public key: {label}, signature {step.algorithm}"
        )
        await self.transport.send(self.auth.publickey(identity.key, step.algorithm))
        event = await self._auth_reply()
        if isinstance(event, ua.AuthFailure):
            plan.failed(f"publickey {label}")
            self.trace("authentication (public key): the server refused the key")
            return event
        if not isinstance(event, ua.SignatureNeeded):
            raise ProtocolError(f"unexpected answer to a key offer: {type(event).__name__}")
        self.trace(
            "authentication (public key): the server has this public key; proving we hold "
            "the private key by signing the session id and the request"
        )
        signature = await keys.sign(candidate, step.algorithm, event.data)
        if signature is None:
            self.auth.cancel_signature()
            plan.tried.append(f"publickey {label} (could not sign)")
            return None
        await self.transport.send(self.auth.send_signature(signature))
        event = await self._auth_reply()
        if isinstance(event, ua.AuthSuccess):
            self.trace(
                "verification: the server checked the signature; "
                f"authenticated with public key {label}"
            )
            return True
        if isinstance(event, ua.AuthFailure):
            if event.partial:
                self.trace(f"public key {label} accepted as one step of several")
                return event
            plan.failed(f"publickey {label} (signature refused)")
            return event
        raise ProtocolError(f"unexpected answer to a signature: {type(event).__name__}")

    def _ask(self, prompt: str, what: str) -> str | None:
        try:
            return self.prompts.secret(prompt, what)
        except KeytoolError as exc:
            self.trace(f"no {what}: {exc}")
            return None

    async def _try_password(self, plan: ua.AuthPlan) -> bool | ua.AuthFailure | None:
        options = self.options
        if options.password is not None:
            password: str | None = options.password
            plan.password_prompts = 1  # a given password is tried once
        else:
            password = self._ask(f"{options.user}@{options.host}'s password: ", "password")
        if password is None:
            plan.password = False
            return None
        self.trace("authentication: trying password")
        await self.transport.send(self.auth.password(password))
        event = await self._auth_reply()
        if isinstance(event, ua.AuthSuccess):
            self.trace("verification: authenticated with password")
            return True
        if isinstance(event, ua.PasswordChangeRequired):
            plan.password = False
            plan.failed("password (expired: change it on the server first)")
            return None
        if isinstance(event, ua.AuthFailure):
            if not event.partial:
                plan.failed("password")
                if options.password is None:
                    self.prompts.show("Permission denied, please try again.")
            return event
        raise ProtocolError(f"unexpected answer to a password: {type(event).__name__}")

    async def _try_kbdint(self, plan: ua.AuthPlan) -> bool | ua.AuthFailure | None:
        self.trace("authentication: trying keyboard-interactive")
        await self.transport.send(self.auth.keyboard_interactive())
        gave_given_password = False
        while True:
            event = await self._auth_reply()
            if isinstance(event, ua.AuthSuccess):
                self.trace("verification: authenticated with keyboard-interactive")
                return True
            if isinstance(event, ua.AuthFailure):
                if not event.partial:
                    plan.failed("keyboard-interactive")
                return event
            if not isinstance(event, ua.InfoRequest):
                raise ProtocolError(f"unexpected keyboard-interactive message: {event}")
            if event.name or event.instruction:
                self.prompts.show("\n".join(t for t in (event.name, event.instruction) if t))
            answers: list[str] = []
            for prompt in event.prompts:
                if (
                    self.options.password is not None
                    and not prompt.echo
                    and not gave_given_password
                ):
                    # a script's password answers the one hidden prompt
                    answers.append(self.options.password)
                    gave_given_password = True
                    continue
                if self.options.password is not None:
                    answer = None
                else:
                    answer = self._ask(
                        f"({self.options.user}@{self.options.host}) {prompt.text}",
                        "keyboard-interactive answer",
                    )
                if answer is None:
                    plan.keyboard_interactive = False
                    answers = []
                    break
                answers.append(answer)
            if len(answers) != len(event.prompts):
                # cannot answer: send empty answers so the server fails the attempt
                answers = [""] * len(event.prompts)
            await self.transport.send(self.auth.info_response(answers))

    def _authenticated(self) -> None:
        self.authenticated = True
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    # ---- the connection protocol

    async def _pump(self) -> None:
        """Read every payload after authentication and route channel events."""
        try:
            while True:
                payloads = await self.transport.receive_batch(timeout=None)
                conn = self.conn
                channels = self._channels
                for payload in payloads:
                    for event in conn.receive(payload):
                        channel = channels.get(event.channel)
                        if channel is not None:
                            channel._on_event(event)
                            if isinstance(event, ch.ChannelClosed | ch.ChannelOpenFailed):
                                channels.pop(event.channel, None)
                self.flush_nowait()
        except KeytoolError as exc:
            self._error = exc
            for channel in list(self._channels.values()):
                channel._fail(exc)
        except asyncio.CancelledError:
            raise

    def flush_nowait(self) -> None:
        for payload in self.conn.data_to_send():
            self.transport.send_nowait(payload)

    async def flush(self) -> None:
        payloads = self.conn.data_to_send()
        if not payloads:
            return
        for payload in payloads[:-1]:
            self.transport.send_nowait(payload)
        await self.transport.send(payloads[-1])

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
        try:
            while True:
                stream, data = await channel.read()
                if not data:
                    break
                sinks[stream](data)
            await channel.wait_closed(None if channel.exit_status is None else self.options.timeout)
        finally:
            if not feeder.done():
                feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, KeytoolError):
                await feeder
            await channel.close()
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
    from keytool.keys.fingerprint import fingerprint

    prompts = prompts or Prompts(options.batch_mode)
    trace: Trace = options.trace or (lambda _line: None)
    decision_box: list[bool] = [True]

    async def check(key: PublicKey, algorithm: str) -> None:
        if options.expected_host_key is not None:
            if fingerprint(key) != options.expected_host_key.strip():
                raise HostKeyError(
                    f"host key for {options.host} is {fingerprint(key)}, "
                    f"not the expected {options.expected_host_key.strip()}"
                )
            trace("host key matches the expected fingerprint")
            return
        decision_box[0] = _verify_host(options, prompts, key, trace)

    config = options.transport
    if options.trace is not None and config.trace is None:
        config = config._replace(trace=options.trace)
    if options.expected_host_key is None:
        from keytool import hostcheck

        known = hostcheck.known_types_for(
            options.host_key_alias or options.host,
            options.port,
            options.user_known_hosts,
            options.global_known_hosts,
        )
        if known:
            ordered = hostcheck.prefer_known_algorithms(config.host_key_algorithms, known)
            config = config._replace(host_key_algorithms=ordered)
    transport = await open_transport(
        options.host,
        options.port,
        config,
        check,
        connect_timeout=options.connect_timeout,
        handshake_timeout=options.timeout,
        sock=sock,
    )
    return Client(transport, options, prompts, allow_password=decision_box[0])


def _verify_host(options: ConnectOptions, prompts: Prompts, key: PublicKey, trace: Trace) -> bool:
    from keytool import hostcheck
    from keytool.knownhosts import Known

    prompt = None if options.batch_mode else hostcheck.tty_prompter()
    decision = hostcheck.verify_host_key(
        options.host_key_alias or options.host,
        options.port,
        key,
        user_files=options.user_known_hosts,
        global_files=options.global_known_hosts,
        strict=options.strict_host_key_checking,
        hash_known_hosts=options.hash_known_hosts,
        prompt=prompt,
    )
    for message in decision.messages:
        prompts.show(message)
    if isinstance(decision.status, Known):
        trace(f"host key found in known_hosts at {decision.status.entry.where}")
    elif decision.added_to is not None:
        trace(f"host key added to {decision.added_to}")
    return decision.allow_password_auth


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


# ---------------------------------------------------------------- from the command line


def options_from_command_line(
    destination: str,
    *,
    port: int | None = None,
    identity_files: Sequence[str] = (),
    options: Sequence[str] = (),
    config_file: str | None = None,
    login: str | None = None,
    trace: Trace | None = None,
    warn: Callable[[str], None] | None = None,
) -> ConnectOptions:
    """ssh's command line (-l, -p, -i, -o, -F and the destination) and its config files,
    resolved as ssh does (first value wins; -o and flags before the files)."""
    resolved = resolve_command_line(
        destination,
        port=port,
        identity_files=identity_files,
        options=options,
        config_file=config_file,
        login=login,
        warn=warn,
    )
    return options_from_config(resolved, trace)


def options_from_config(resolved: ResolvedConfig, trace: Trace | None = None) -> ConnectOptions:
    """ConnectOptions from a resolved ssh configuration."""
    from keytool import sshconfig
    from keytool.transport import config as tconfig

    transport = TransportConfig(
        kex_algorithms=sshconfig.apply_algorithm_list(resolved.kex_algorithms, tconfig.DEFAULT_KEX),
        host_key_algorithms=sshconfig.apply_algorithm_list(
            resolved.host_key_algorithms, tconfig.DEFAULT_HOST_KEY
        ),
        ciphers=sshconfig.apply_algorithm_list(resolved.ciphers, tconfig.DEFAULT_CIPHERS),
        macs=sshconfig.apply_algorithm_list(resolved.macs, tconfig.DEFAULT_MACS),
        trace=trace,
    )
    preferred = resolved.preferred_authentications
    return ConnectOptions(
        host=resolved.hostname,
        user=resolved.user,
        port=resolved.port,
        host_key_alias=None,
        identity_files=resolved.identity_files if resolved.identity_files_given else (),
        identities_only=resolved.identities_only,
        password_authentication=resolved.password_authentication and "password" in preferred,
        kbd_interactive_authentication=(
            resolved.kbd_interactive_authentication and "keyboard-interactive" in preferred
        ),
        pubkey_authentication=resolved.pubkey_authentication and "publickey" in preferred,
        batch_mode=resolved.batch_mode,
        user_known_hosts=resolved.user_known_hosts_files,
        global_known_hosts=resolved.global_known_hosts_files,
        strict_host_key_checking=resolved.strict_host_key_checking,
        hash_known_hosts=resolved.hash_known_hosts,
        connect_timeout=float(resolved.connect_timeout) if resolved.connect_timeout else None,
        password_prompts=resolved.number_of_password_prompts,
        transport=transport,
        trace=trace,
    )

"""User authentication, whichever driver moves the bytes.

``Login`` runs RFC 4252 over a transport that has ``session_id``,
``server_sig_algs`` and two coroutines, ``send(payload)`` and ``receive(timeout)``:
the "none" request to learn the methods, then keys (explicit, agent, default files),
keyboard-interactive and password, in the order ``transport.auth.AuthPlan`` decides.
The asyncio client (keytool.session) and the blocking one (keytool.blocking) both
subclass it, so the authentication steps exist once.

The host key check is in keytool.login_hostkey, the identities and what signs for them
in keytool.login_keys.
"""

from __future__ import annotations

from keytool.display import as_logged, shown
from keytool.errors import (
    AuthError,
    DisconnectError,
    KeytoolError,
    ProtocolError,
    TimedOut,
)
from keytool.login_keys import Candidate, Keys
from keytool.options import ConnectOptions, Prompts
from keytool.transport import auth as ua
from keytool.transport import channels as ch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Protocol

    from keytool.hostupdate import HostKeyUpdate
    from keytool.keys.base import PrivateKey, PublicKey
    from keytool.login_keys import AgentConnector
    from keytool.transport.events import Algorithms

    Trace = Callable[[str], None]

    class Link(Protocol):
        """What Login needs of a transport after the ssh-userauth service accept."""

        @property
        def session_id(self) -> bytes: ...

        @property
        def server_sig_algs(self) -> tuple[str, ...] | None: ...

        @property
        def host_key_proof(self) -> tuple[bytes, bytes]: ...

        @property
        def algorithms(self) -> Algorithms: ...

        def send_nowait(self, payload: bytes) -> None: ...

        async def send(self, payload: bytes) -> None: ...

        async def receive(self, timeout: float | None = None) -> bytes: ...


def _host_key_update(
    transport: Link, options: ConnectOptions, prompts: Prompts, trusted: bool
) -> HostKeyUpdate | None:
    """UpdateHostKeys for this connection, or None when it is off or may not run: as
    ssh, only for a host key trusted through the user's own known_hosts."""
    if options.update_host_keys == "no" or not trusted or options.expected_host_key:
        return None
    from keytool.hostupdate import HostKeyUpdate

    return HostKeyUpdate(options, prompts, transport.session_id, transport.algorithms.host_key)


def _no_trace(_line: str) -> None:
    pass


class Login:
    """User authentication on a verified transport; the drivers add the channels."""

    def __init__(
        self,
        transport: Link,
        options: ConnectOptions,
        prompts: Prompts,
        agents: AgentConnector,
        allow_password: bool = True,
        host_trusted: bool = False,
    ) -> None:
        self.transport = transport
        self.options = options
        self.prompts = prompts
        self.agents = agents
        self.trace: Trace = options.trace or _no_trace
        self.allow_password = allow_password
        self.auth = ua.UserAuth(options.user, transport.session_id)
        self.conn = ch.Connection(auto_window=False)
        self.authenticated = False
        self.methods: tuple[str, ...] | None = None  # from the last failure
        self.banners: list[str] = []
        self._query_failures = 0  # refused key queries count towards MaxAuthTries
        #: keys the server refused when queried, by blob: not offered again in this
        #: connection (as ssh never offers a key twice), and named in "tried:"
        self._refused_queries: dict[bytes, str] = {}
        #: a given password (options.password) was refused once: it is not sent again,
        #: by password or keyboard-interactive (a fixed answer cannot get better, and
        #: each refusal may count towards a lock-out such as pam_faillock)
        self._given_password_refused = False
        #: the attempt sent and not answered yet: named if the server hangs up on it
        self._under_way: str | None = None
        self.host_keys = _host_key_update(transport, options, prompts, host_trusted)

    def host_key_event(self, event: ch.ChannelEvent) -> bool:
        """Take an UpdateHostKeys event (True): the server's list of its host keys, to
        which a proof request may be queued on ``conn``, or the answer to that."""
        if isinstance(event, ch.HostKeysAnnounced):
            update = self.host_keys
            if update is None:
                self.trace("host keys: the server listed its host keys (UpdateHostKeys is off)")
                return True
            try:
                request = update.announced(event.body)
            except KeytoolError as exc:
                self.trace(f"host keys: {exc}; known_hosts left as it is")
                return True
            if request is not None:
                self.conn.prove_host_keys(request)
            return True
        if isinstance(event, ch.GlobalReply) and event.request == ch.HOSTKEYS_PROVE:
            if self.host_keys is not None:
                self.host_keys.answered(event.ok, event.data)
            return True
        return False

    async def flush(self) -> None:
        """Send what the connection layer queued (replies, window adjustments)."""
        payloads = self.conn.data_to_send()
        if not payloads:
            return
        for payload in payloads[:-1]:
            self.transport.send_nowait(payload)
        await self.transport.send(payloads[-1])

    def _authenticated(self) -> None:
        """Called once authentication succeeded; drivers start their channel work."""
        self.authenticated = True

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
                if self.options.shows_info:  # BatchMode or not, as ssh
                    self.prompts.show(shown(event.message, keep=_LINE_BREAKS))
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
            return False  # in already (a server that asks nothing): nothing to learn
        # no "none" request first: a refusal lists the methods just as well (§5.1)
        if self.methods is not None and "publickey" not in self.methods:
            return False
        accepted = self.options.pubkey_algorithms
        algorithm = ua.signature_algorithm_for(key, self._server_sig_algs(), accepted)
        if algorithm is None:
            return False
        await self.transport.send(self.auth.publickey(key, algorithm, sign=False))
        event = await self._auth_reply()
        if isinstance(event, ua.KeyAccepted):
            self.trace(f"the server would accept {key.key_type} key (queried, not signed)")
            return True
        if isinstance(event, ua.AuthFailure):
            from keytool.keys.fingerprint import fingerprint

            self.methods = event.methods
            self._query_failures += 1
            self._refused_queries[key.to_wire()] = (
                f"publickey {key.label} {fingerprint(key)} (queried: refused)"
            )
            return False
        if isinstance(event, ua.AuthSuccess):
            # the server let us in on a query: it asks nothing of anyone, so it says
            # nothing of this key either
            self.trace("the server let us in without authentication")
            self._authenticated()
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
        host_key, signature = self.transport.host_key_proof
        binding = (host_key, self.transport.session_id, signature)
        keys = Keys(options, self.prompts, trace, self.agents, binding)
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
                    Candidate(ua.Identity(k.public, "given key", True), None, None)
                    for k in keys_only
                ]
                memory = {k.public.plain.to_wire(): k for k in keys_only}
                keys.loaded.update(memory)
            elif options.pubkey_authentication:
                candidates = await keys.collect()
            else:
                candidates = []
            refused = self._refused_queries
            for candidate in candidates:
                if candidate.identity.key.to_wire() in refused:
                    trace(
                        f"authentication (public key): {candidate.identity.source} not offered: "
                        "the server refused its key when queried"
                    )
            candidates = [c for c in candidates if c.identity.key.to_wire() not in refused]
            by_blob = {c.identity.key.to_wire(): c for c in candidates}
            given_refused = self._given_password_refused
            can_prompt = options.password is not None or self.prompts.can_ask()
            # as ssh, keyboard-interactive is tried unless BatchMode is set, even with no
            # terminal and no askpass: a round may ask nothing (a push to a phone, a
            # notice), and one that asks is answered with empty strings (_try_kbdint)
            batch = options.batch_mode or self.prompts.batch_mode
            plan = ua.AuthPlan(
                [c.identity for c in candidates],
                password=(
                    options.password_authentication
                    and self.allow_password
                    and can_prompt
                    and keys_only is None
                    and not given_refused
                ),
                keyboard_interactive=(
                    options.kbd_interactive_authentication
                    and self.allow_password
                    and (options.password is not None or not batch)
                    and keys_only is None
                    and not given_refused
                ),
                max_tries=options.max_auth_tries,
                password_prompts=options.password_prompts,
                server_sig_algs=self._server_sig_algs(),
                failures=self._query_failures,
                accepted=options.pubkey_algorithms,
                methods=options.auth_methods,
            )
            # the queries were attempts too: "tried:" names them first
            plan.tried.extend(refused.values())
            allowed = self.methods or ()
            while True:
                self._under_way = None
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
            attempts = list(plan.tried)
            if self._under_way is not None:
                attempts.append(f"{self._under_way} (the server hung up instead of answering)")
            tried = "; ".join(attempts) or "nothing yet"
            raise AuthError(
                f"{options.user}@{options.host}: the server ended the connection during "
                f"authentication: {reason}; tried: {tried}"
            ) from None
        finally:
            await keys.close()

    async def authenticate_with_key(self, key: PrivateKey) -> bool:
        """Log in with ``key`` alone, its signature sent at once without a query first
        (RFC 4252 §7): for a key that should be installed (copy-id's verification),
        one request. False when the server refuses it."""
        if self.authenticated:
            return True
        accepted = self.options.pubkey_algorithms
        algorithm = ua.signature_algorithm_for(key.public, self._server_sig_algs(), accepted)
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
        self, step: ua.TryKey, candidate: Candidate, keys: Keys, plan: ua.AuthPlan
    ) -> bool | ua.AuthFailure | None:
        from keytool.keys.cert import Certificate
        from keytool.keys.fingerprint import fingerprint

        identity = step.identity
        key = identity.key
        label = f"{key.label} {fingerprint(key)} ({identity.source})"
        if isinstance(key, Certificate):
            self.trace(
                f"authentication (public key): offering certificate: {label}, "
                f"ID {key.key_id!r} serial {key.serial} CA {key.ca.label} "
                f"{fingerprint(key.ca)}, algorithm {step.algorithm}"
            )
        else:
            self.trace(
                f"authentication (public key): offering public key: {label}, "
                f"signature {step.algorithm}"
            )
        self._under_way = f"publickey {label}"
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
                plan.tried.append(f"publickey {label} (accepted; more was asked)")
                return event
            plan.failed(f"publickey {label} (signature refused)")
            return event
        raise ProtocolError(f"unexpected answer to a signature: {type(event).__name__}")

    async def _ask(self, prompt: str, what: str, echo: bool = False) -> str | None:
        from keytool.errors import AskpassError
        from keytool.prompting import LoopPrompts

        try:
            if isinstance(self.prompts, LoopPrompts):
                # asked through the event loop: the other hosts of a fleet go on
                return await self.prompts.ask(prompt, what, echo)
            return self.prompts.secret(prompt, what, echo)
        except AskpassError as exc:
            # as ssh: an askpass program that cannot run is said, not only traced
            self.prompts.show(f"keytool: {exc}")
            return None
        except KeytoolError as exc:
            self.trace(f"no {what}: {exc}")
            return None

    async def _try_password(self, plan: ua.AuthPlan) -> bool | ua.AuthFailure | None:
        options = self.options
        if options.password is not None:
            password: str | None = options.password
            plan.password_prompts = 1  # a given password is tried once
        else:
            if plan.passwords_asked > 1:
                # as ssh: said before asking again, so not after the last refusal
                self.prompts.show("Permission denied, please try again.")
            password = await self._ask(f"{options.user}@{options.host}'s password: ", "password")
        if password is None:
            plan.password = False
            return None
        self.trace("authentication: trying password")
        self._under_way = "password"
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
            if event.partial:
                plan.tried.append("password (accepted; more was asked)")
            else:
                plan.failed("password")
                if options.password is not None:
                    self._given_password_refused_by(plan)
            return event
        raise ProtocolError(f"unexpected answer to a password: {type(event).__name__}")

    def _given_password_refused_by(self, plan: ua.AuthPlan) -> None:
        """The given password (--password-file) was refused: it is sent once, whichever
        method carried it, as a fixed answer cannot get better on a retry."""
        self.trace("authentication: the given password was refused; not sent again")
        self._given_password_refused = True
        plan.password = False
        plan.keyboard_interactive = False

    async def _try_kbdint(self, plan: ua.AuthPlan) -> bool | ua.AuthFailure | None:
        self.trace("authentication: trying keyboard-interactive")
        self._under_way = "keyboard-interactive"
        await self.transport.send(self.auth.keyboard_interactive())
        gave_given_password = False
        left_blank = False
        while True:
            event = await self._auth_reply()
            if isinstance(event, ua.AuthSuccess):
                self.trace("verification: authenticated with keyboard-interactive")
                return True
            if isinstance(event, ua.AuthFailure):
                if event.partial:
                    plan.tried.append("keyboard-interactive (accepted; more was asked)")
                elif left_blank:
                    plan.failed("keyboard-interactive (no terminal or askpass: empty answers)")
                else:
                    plan.failed("keyboard-interactive")
                    if gave_given_password:
                        self._given_password_refused_by(plan)
                return event
            if not isinstance(event, ua.InfoRequest):
                raise ProtocolError(f"unexpected keyboard-interactive message: {event}")
            plan.info_request_seen = True
            if (event.name or event.instruction) and self.options.shows_info:
                # as ssh says them (its log at INFO, escaped as logged): not with -q
                said = (
                    as_logged(t, keep=_LINE_BREAKS) for t in (event.name, event.instruction) if t
                )
                self.prompts.show("\n".join(said))
            answers: list[str] = []
            if event.prompts and self.options.password is None and not self.prompts.can_ask():
                # as ssh's read_passphrase with nothing to read from: each prompt gets an
                # empty answer, and the server counts the round as a failed attempt
                self.trace(
                    f"keyboard-interactive: {len(event.prompts)} prompt(s) and no terminal "
                    "or askpass to ask on: sending empty answers"
                )
                left_blank = True
                await self.transport.send(self.auth.info_response([""] * len(event.prompts)))
                continue
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
                    text = shown(prompt.text, keep=_LINE_BREAKS)
                    answer = await self._ask(
                        f"({self.options.user}@{self.options.host}) {text}",
                        "keyboard-interactive answer",
                        prompt.echo,
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


#: kept as they are when a server's text is shown (its lines, as ssh prints them)
_LINE_BREAKS = "\n\t\r"

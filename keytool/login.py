"""Host verification and user authentication, whichever driver moves the bytes.

``Login`` runs RFC 4252 over a transport that has ``session_id``,
``server_sig_algs`` and two coroutines, ``send(payload)`` and ``receive(timeout)``:
the "none" request to learn the methods, then keys (explicit, agent, default files),
keyboard-interactive and password, in the order ``transport.auth.AuthPlan`` decides.
The asyncio client (keytool.session) and the blocking one (keytool.blocking) both
subclass it, so the authentication steps exist once.

``host_check`` builds what the key exchange needs to verify the server's host key:
the algorithms known_hosts has for it first, and the check itself (RevokedHostKeys,
known_hosts, StrictHostKeyChecking, a pinned fingerprint).
"""

from __future__ import annotations

import os
import sys

from keytool.display import as_logged, shown
from keytool.errors import (
    AgentError,
    AuthError,
    DisconnectError,
    HostKeyError,
    HostKeyPinError,
    KeytoolError,
    ProtocolError,
    TimedOut,
)
from keytool.options import ConnectOptions, Prompts
from keytool.record import Record, init
from keytool.transport import auth as ua
from keytool.transport import channels as ch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from typing import Protocol

    from keytool.agentclient import AgentKey
    from keytool.hostcheck import HostKeyDecision, Prompter
    from keytool.hostupdate import HostKeyUpdate
    from keytool.keys.base import PrivateKey, PublicKey
    from keytool.keys.cert import Certificate
    from keytool.knownhosts import KnownHost
    from keytool.transport.config import TransportConfig
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

    class Agent(Protocol):
        """An agent connection, as the driver provides it."""

        async def identities(self) -> list[AgentKey]: ...

        async def session_bind(
            self, host_key: bytes, session_id: bytes, signature: bytes
        ) -> None: ...

        async def sign(self, blob: bytes, data: bytes, flags: int = 0) -> bytes: ...

        async def add(
            self, key: PrivateKey, comment: str, lifetime: int | None = None, confirm: bool = False
        ) -> None: ...

        async def close(self) -> None: ...

    #: connects to the agent at the socket path (None: SSH_AUTH_SOCK) within a timeout
    AgentConnector = Callable[[str | None, float], Awaitable[Agent]]


# ---------------------------------------------------------------- the host key


def _loopback(address: str | None) -> bool:
    """A loopback address (127.0.0.0/8, ::1, or IPv4's in IPv6); None (a ProxyCommand's
    connection) is not."""
    if address is None:
        return False
    import ipaddress

    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def too_short(key: PublicKey, required: int) -> bool:
    """An RSA key (or certificate) shorter than RequiredRSASize."""
    return key.plain.key_type == "ssh-rsa" and key.bits < required


class HostCheck:
    """The transport config to offer (host key algorithms known_hosts has for this
    host first) and the check of the key the server shows (``check(key, algorithm)``
    returns to accept, raises HostKeyError to refuse; it may prompt on the terminal).
    ``allow_password`` is False after accepting a changed key with checking off, as
    ssh then refuses password authentication. ``trusted`` is True when the key was
    found in the user's own known_hosts or confirmed by the user at the question: as
    ssh, only then may UpdateHostKeys change the files."""

    def __init__(self, options: ConnectOptions, prompts: Prompts) -> None:
        self.options = options
        self.prompts = prompts
        self.allow_password = True
        self.trusted = False
        #: the answers to host key questions given so far (``check_async``)
        self._answers: list[str | None] | None = None
        self._asked = 0
        #: the server's address, shown in the host key question as ssh shows it (the
        #: drivers set it once connected; a ProxyCommand has none)
        self.address: str | None = None
        config = options.transport
        if options.trace is not None and config.trace is None:
            config = config._replace(trace=options.trace)
        if options.expected_host_key is None:
            from keytool import hostcheck

            files = (options.user_known_hosts, options.global_known_hosts)
            known, authority = hostcheck.host_key_hints_for(*options.known_hosts_name(), *files)
            host = options.known_hosts_name()[0]
            extra = self._command_entries("ORDER", host, None)
            if extra:
                # as ssh 9.2: the command's lines are matched against the host name
                # alone here (%H has no port), whatever the port
                more, by_authority = hostcheck.host_key_hints_for(host, 22, (), (), extra)
                known = [*known, *more]
                authority = authority or by_authority
            if known or authority:
                ordered = hostcheck.order_host_key_algorithms(
                    config.host_key_algorithms, known, authority
                )
                config = config._replace(host_key_algorithms=ordered)
        self.config: TransportConfig = config

    def _command_entries(
        self, invocation: str, host_name: str, key: PublicKey | None
    ) -> list[KnownHost]:
        """KnownHostsCommand's known_hosts lines, when there is one (ssh runs it before
        the key exchange, ORDER, and to check the key, HOSTNAME)."""
        options = self.options
        if not options.known_hosts_command:
            return []
        from keytool import hostcheck

        say = self.prompts.show if options.shows_errors else self._trace
        self._trace(f"host key: asking KnownHostsCommand ({invocation})")
        return hostcheck.command_entries(
            options.known_hosts_command, invocation, host_name, key, options.fingerprint_hash, say
        )

    def _trace(self, line: str) -> None:
        if self.options.trace is not None:
            self.options.trace(line)

    async def check_async(self, key: PublicKey, algorithm: str) -> None:
        """``check``, with a question on the terminal asked without blocking the event
        loop (``prompting.LoopPrompts``): the check is run again with the answers
        given so far until it needs no new one (it writes nothing before the last)."""
        from keytool.prompting import LoopPrompts

        if not isinstance(self.prompts, LoopPrompts):
            self.check(key, algorithm)
            return
        self._answers = []
        try:
            while True:
                self._asked = 0
                try:
                    self.check(key, algorithm)
                    return
                except _NeedAnswer as need:
                    self._answers.append(await self.prompts.question(need.prompt))
        finally:
            self._answers = None

    def _question_prompter(self) -> Prompter | None:
        from keytool import hostcheck

        if self.options.batch_mode:
            return None
        found = hostcheck.question_prompter()
        if found is None or self._answers is None:
            return found
        answers = self._answers

        def replay(prompt: str) -> str | None:
            if self._asked < len(answers):
                self._asked += 1
                return answers[self._asked - 1]
            raise _NeedAnswer(prompt)

        return replay

    def check(self, key: PublicKey, algorithm: str) -> None:
        from keytool.keys.fingerprint import fingerprint

        options = self.options
        if too_short(key, options.required_rsa_size):  # ssh's words, before all else
            raise HostKeyError("Bad server host key: Invalid key length")
        if options.revoked_host_keys:
            from keytool import hostcheck

            hostcheck.check_revoked_host_key(
                *options.known_hosts_name(), key, options.revoked_host_keys
            )
            self._trace(f"host key not revoked by {', '.join(options.revoked_host_keys)}")
        if (
            options.expected_host_key is None
            and options.no_host_authentication_for_localhost
            and options.host_key_alias is None
            and _loopback(self.address)
        ):
            # as ssh: the key of a server on this machine (a home folder shared over
            # NFS sees another "localhost" from each machine) is taken unchecked, and
            # nothing is written for it
            self._trace("host key: taken unchecked, loopback (NoHostAuthenticationForLocalhost)")
            return
        if options.expected_host_key is not None:
            if fingerprint(key) != options.expected_host_key.strip():
                raise HostKeyPinError(
                    f"host key for {options.host} is {fingerprint(key)}, "
                    f"not the expected {options.expected_host_key.strip()}",
                    key.key_type,
                )
            self._trace("host key matches the expected fingerprint")
            self._record_pinned(key)
            return
        if key.plain is not key:
            self.allow_password = self._verify_certificate(key)
            return
        self.allow_password = self._verify(key)

    def _record_pinned(self, key: PublicKey) -> None:
        """A key the user pinned by its fingerprint is as good as a "yes" to ssh's
        question: recorded in known_hosts when the host is not there yet, so the next
        login knows it. Not under StrictHostKeyChecking=yes, which never records; a
        host known with another key keeps its line (the pin is for this run only)."""
        from keytool import hostcheck

        options = self.options
        if options.strict_host_key_checking == "yes" or key.plain is not key:
            return
        try:
            decision = hostcheck.verify_host_key(
                *options.known_hosts_name(),
                key,
                user_files=options.user_known_hosts,
                global_files=options.global_known_hosts,
                strict="accept-new",
                hash_known_hosts=options.hash_known_hosts,
                hash_name=options.fingerprint_hash,
                recordable=hostcheck.recordable_name(options.host),
            )
        except KeytoolError as exc:  # known with another key, revoked, not recordable
            from keytool.hostcheck import FAILED

            lines = [line for line in str(exc).splitlines() if line.strip() and line != FAILED]
            reason = lines[-1] if lines else "refused"
            self._trace(f"host key not recorded in known_hosts: {reason}")
            return
        self._report(decision)

    def _verify(self, key: PublicKey) -> bool:
        from keytool import hostcheck

        options = self.options
        prompt = self._question_prompter()
        extra = self._command_entries("HOSTNAME", _lookup_name(options), key)
        decision = hostcheck.verify_host_key(
            *options.known_hosts_name(),
            key,
            user_files=options.user_known_hosts,
            global_files=options.global_known_hosts,
            strict=options.strict_host_key_checking,
            hash_known_hosts=options.hash_known_hosts,
            prompt=prompt,
            address=self.address,
            visual=options.visual_host_key,
            hash_name=options.fingerprint_hash,
            extra=extra,
            recordable=hostcheck.recordable_name(options.host),
        )
        self.trusted = _trusted(decision, options)
        return self._report(decision)

    def _verify_certificate(self, key: PublicKey) -> bool:
        """A host certificate: a @cert-authority line, or else its key as a plain key."""
        from keytool import hostcheck
        from keytool.keys.cert import Certificate, key_type_of_algorithm

        assert isinstance(key, Certificate)
        options = self.options
        self._trace(f"server host certificate: {hostcheck.describe_certificate(key)}")
        self._trace(f"server host certificate principals: {', '.join(key.principals)}")
        host, port = options.known_hosts_name()
        extra = self._command_entries("HOSTNAME", _lookup_name(options), key)
        plain_type = key.key.key_type
        decision = hostcheck.verify_host_certificate(
            host,
            port,
            key,
            principal=host,
            ca_algorithms=options.ca_signature_algorithms,
            plain_allowed=any(
                key_type_of_algorithm(a) == plain_type for a in self.config.host_key_algorithms
            ),
            user_files=options.user_known_hosts,
            global_files=options.global_known_hosts,
            strict=options.strict_host_key_checking,
            hash_known_hosts=options.hash_known_hosts,
            prompt=self._question_prompter(),
            extra=extra,
            recordable=hostcheck.recordable_name(options.host),
        )
        return self._report(decision)

    def _report(self, decision: HostKeyDecision) -> bool:
        from keytool.knownhosts import Known

        if self.options.shows_errors:
            for message in decision.messages:
                self.prompts.show(message)
        if self.options.shows_info:
            for message in decision.info:
                self.prompts.show(message)
        for note in decision.notes:
            self._trace(note)
        if isinstance(decision.status, Known):
            self._trace(f"host key found in known_hosts at {decision.status.entry.where}")
        elif decision.added_to is not None:
            self._trace(f"host key added to {decision.added_to}")
        return decision.allow_password_auth


class _NeedAnswer(Exception):
    """The host key check needs an answer not given yet (``HostCheck.check_async``)."""

    def __init__(self, prompt: str) -> None:
        super().__init__(prompt)
        self.prompt = prompt


def _host_key_update(
    transport: Link, options: ConnectOptions, prompts: Prompts, trusted: bool
) -> HostKeyUpdate | None:
    """UpdateHostKeys for this connection, or None when it is off or may not run: as
    ssh, only for a host key trusted through the user's own known_hosts."""
    if options.update_host_keys == "no" or not trusted or options.expected_host_key:
        return None
    from keytool.hostupdate import HostKeyUpdate

    return HostKeyUpdate(options, prompts, transport.session_id, transport.algorithms.host_key)


def _trusted(decision: HostKeyDecision, options: ConnectOptions) -> bool:
    from keytool.knownhosts import Known

    if isinstance(decision.status, Known):
        user_files = {os.path.expanduser(f) for f in options.user_known_hosts}
        return decision.status.entry.source in user_files
    # a new key added: trusted only when the user said yes to the question
    return decision.added_to is not None and options.strict_host_key_checking == "ask"


# ---------------------------------------------------------------- signers


class _Candidate(Record):
    """An identity with what signs for it: the agent (``agent_blob``, the key the agent
    knows: the identity itself, or for a certificate possibly its certified key), or a
    private key file loaded on demand (``path``; for a certificate, its key's file)."""

    __slots__ = ("agent_blob", "identity", "path")
    identity: ua.Identity
    path: str | None
    agent_blob: bytes | None

    def __init__(self, identity: ua.Identity, path: str | None, agent_blob: bytes | None) -> None:
        init(self, identity=identity, path=path, agent_blob=agent_blob)


#: certificate files read, by path: (the file's identity when read, the certificate
#: or why it is not used); a fleet run parses (and checks the CA signature of) each once
_CERTIFICATES: dict[str, tuple[tuple[int, ...], Certificate | str]] = {}


def _certificate_file(path: str) -> Certificate | str | None:
    """The user certificate in ``path``, why the file is not one, or None when there
    is no such file."""
    from keytool import files
    from keytool.hostcheck import file_stamp
    from keytool.keys.cert import Certificate
    from keytool.keys.pubfile import parse_public_text

    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        stamp: tuple[int, ...] = ()  # read_file below says why
    else:
        stamp = file_stamp(info)
    cached = _CERTIFICATES.get(path)
    if cached is not None and stamp and cached[0] == stamp:
        return cached[1]
    found: Certificate | str
    try:
        key, _ = parse_public_text(files.read_file(path, "certificate"))
    except KeytoolError as exc:
        found = f"certificate {path} not used: {exc}"
    else:
        if not isinstance(key, Certificate):
            found = f"{path} holds a {key.key_type} key, not a certificate: not used"
        elif key.is_host:
            found = f"certificate {path} not used: it is a host certificate"
        else:
            found = key
    if stamp:
        if len(_CERTIFICATES) > 16:
            _CERTIFICATES.clear()
        _CERTIFICATES[path] = (stamp, found)
    return found


class _Keys:
    """The agent connection and key files behind the identities."""

    def __init__(
        self,
        options: ConnectOptions,
        prompts: Prompts,
        trace: Trace,
        agents: AgentConnector,
        binding: tuple[bytes, bytes, bytes] | None = None,
    ) -> None:
        self.options = options
        self.prompts = prompts
        self.trace = trace
        self.agents = agents
        #: (host key blob, session identifier, the server's signature of it) for
        #: session-bind@openssh.com
        self.binding = binding
        self.agent: Agent | None = None
        self.loaded: dict[bytes, PrivateKey] = {}
        #: identity files that hold a public key only (the agent signs for them)
        self.public_only: set[str] = set()

    async def collect(self) -> list[_Candidate]:
        from keytool.sshconfig import DEFAULT_IDENTITY_FILES, account_home, expand_home

        options = self.options
        expand = os.path.expanduser
        explicit = [expand(p) for p in options.identity_files]
        # as ssh: the default identities are in the home of the password database,
        # not $HOME (as its config and known_hosts are, and as -G shows them)
        home = account_home()
        files: list[tuple[ua.Identity, str | None]] = []
        for path, is_explicit in [(p, True) for p in explicit] or [
            (expand_home(p, home), False) for p in DEFAULT_IDENTITY_FILES
        ]:
            identity = self._file_identity(path, is_explicit)
            if identity is None:
                continue
            if not options.certificate_files:
                # ssh loads KEY-cert.pub with KEY when no CertificateFile is given; the
                # certificate is offered first (a server trusting the CA may not list
                # the key itself)
                cert = self._neighbour_certificate(path, identity)
                if cert is not None:
                    files.append((cert, path))
            files.append((identity, path))
        certs = self._certificate_files(files)
        agent_ids: list[ua.Identity] = []
        if options.agent and (options.agent_socket or os.environ.get("SSH_AUTH_SOCK")):
            agent_ids = await self._agent_identities()
        if self.public_only:
            held = {i.key.to_wire() for i in agent_ids}
            kept: list[tuple[ua.Identity, str | None]] = []
            for identity, where in files:
                if where not in self.public_only:
                    kept.append((identity, where))
                elif identity.key.to_wire() in held:
                    kept.append((identity, None))  # the agent signs; no file can
                else:
                    self.trace(f"identity file {where} skipped: a public key, not in the agent")
            files = kept
        order = ua.order_identities(
            [*(i for i, _ in certs), *(i for i, _ in files if i.explicit)],
            agent_ids,
            [i for i, _ in files if not i.explicit],
            options.identities_only,
        )
        paths = {i.key.to_wire(): p for i, p in [*certs, *files] if p is not None}
        agent_blobs = {i.key.to_wire() for i in agent_ids}

        def agent_blob(key: PublicKey) -> bytes | None:
            for blob in (key.to_wire(), key.plain.to_wire()):
                if blob in agent_blobs:
                    return blob
            return None

        return [_Candidate(i, paths.get(i.key.to_wire()), agent_blob(i.key)) for i in order]

    def _read_certificate(self, path: str) -> Certificate | None:
        """A user certificate from a ``*-cert.pub`` file; None (and why, with -v) when
        the file is not one, nothing said when there is no such file."""
        found = _certificate_file(path)
        if isinstance(found, str):
            self.trace(found)
            return None
        return found

    def _neighbour_certificate(self, path: str, identity: ua.Identity) -> ua.Identity | None:
        """KEY-cert.pub next to identity file KEY, when it certifies KEY's key."""
        cert_path = f"{path}-cert.pub"
        cert = self._read_certificate(cert_path)
        if cert is None:
            return None
        if cert.key != identity.key:
            self.trace(f"certificate {cert_path} not used: it certifies another key than {path}")
            return None
        return self._certificate_identity(cert, cert_path, identity.explicit)

    def _certificate_identity(self, cert: Certificate, path: str, explicit: bool) -> ua.Identity:
        from keytool.hostcheck import describe_certificate

        self.trace(f"certificate {path}: {describe_certificate(cert)}")
        return ua.Identity(cert, path, explicit)

    def _certificate_files(
        self, files: Sequence[tuple[ua.Identity, str | None]]
    ) -> list[tuple[ua.Identity, str | None]]:
        """CertificateFile certificates, each with the private key file of the key it
        certifies: an identity file holding that key, or the file the certificate is
        named after (KEY for KEY-cert.pub); None when only an agent can sign."""
        found: list[tuple[ua.Identity, str | None]] = []
        for raw in self.options.certificate_files:
            path = os.path.expanduser(raw)
            if not os.path.exists(path):
                self.trace(f"certificate file {path} not accessible: no such file")
                continue
            cert = self._read_certificate(path)
            if cert is None:
                continue
            key_path = next((p for i, p in files if i.key == cert.key), None)
            if key_path is None:
                for suffix in ("-cert.pub", "-cert", ".pub"):
                    named = path[: -len(suffix)] if path.endswith(suffix) else None
                    if named and os.path.exists(named):
                        key_path = named
                        break
            found.append((self._certificate_identity(cert, path, True), key_path))
        return found

    def _file_identity(self, path: str, explicit: bool) -> ua.Identity | None:
        from keytool.keyfiles import ListedKey, public_of_file

        if not os.path.exists(path):
            if explicit:
                self.trace(f"identity file {path} not accessible: no such file")
                if self.options.shows_info:  # as ssh says it, when it comes to the key
                    sys.stderr.write(f"no such identity: {path}: No such file or directory\n")
            return None
        try:
            listed = public_of_file(path)
        except KeytoolError as exc:
            _unless_out_of_files(exc)
            key = _public_key_file(path)
            if key is None:
                # as ssh, which says so whether the file was named or a default one
                self.trace(f"identity file {path} skipped: {exc}")
                why = "invalid format" if os.access(path, os.R_OK) else "Permission denied"
                sys.stderr.write(f'Load key "{path}": {why}\n')
                return None
            # a public key alone (IdentityFile KEY.pub), as ssh takes it: it picks
            # the agent's key to sign with, and nothing else can sign for it
            self.public_only.add(path)
            listed = ListedKey(key, None)
        if too_short(listed.key, self.options.required_rsa_size):  # exec said it already
            self.trace(f"identity file {path} skipped: RSA shorter than RequiredRSASize")
            return None
        return ua.Identity(listed.key, path, explicit)

    async def _agent_identities(self) -> list[ua.Identity]:
        try:
            self.agent = await self.agents(self.options.agent_socket, self.options.timeout)
            await self._bind(self.agent)
            keys = await self.agent.identities()
        except (AgentError, TimeoutError) as exc:
            _unless_out_of_files(exc)
            self.trace(f"agent not used: {exc or 'timed out'}")
            return []
        found: list[ua.Identity] = []
        for key in keys:
            if too_short(key.public, self.options.required_rsa_size):
                self.trace(f"agent key ignored: RSA of {key.public.bits} bits (RequiredRSASize)")
                continue
            try:
                found.append(ua.Identity(key.public, "agent"))
            except KeytoolError:
                continue  # a key type we do not handle (FIDO...)
        self.trace(f"agent holds {len(found)} usable key{'s' if len(found) != 1 else ''}")
        return found

    async def _bind(self, agent: Agent) -> None:
        """Tell the agent which host and session its keys are for, before asking it for
        anything (session-bind@openssh.com, as ssh does): an agent holding keys
        restricted to some destinations (ssh-add -h) lists and signs with them only
        for those. An agent that refuses (or does not know the extension) is still
        used, as ssh uses it."""
        if self.binding is None or not self.binding[0]:
            return
        host_key, session_id, signature = self.binding
        try:
            await agent.session_bind(host_key, session_id, signature)
        except AgentError as exc:
            _unless_out_of_files(exc)
            self.trace(f"agent not bound to this session: {exc}")
            return
        self.trace("agent bound to the host key and session")

    async def sign(self, candidate: _Candidate, algorithm: str, data: bytes) -> bytes | None:
        """The signature, or None when this key cannot sign after all (passphrase
        refused, agent refused): the caller then moves on to the next method."""
        from keytool.keys.cert import plain_name

        # a certificate's signature is its key's, made with the plain algorithm
        plain_algorithm = plain_name(algorithm)
        if candidate.agent_blob is not None and self.agent is not None:
            from keytool.agentproto import SSH_AGENT_RSA_SHA2_256, SSH_AGENT_RSA_SHA2_512

            flags = {
                "rsa-sha2-256": SSH_AGENT_RSA_SHA2_256,
                "rsa-sha2-512": SSH_AGENT_RSA_SHA2_512,
            }.get(plain_algorithm, 0)
            try:
                # no timeout: a confirm-constrained key waits for a human
                return await self.agent.sign(candidate.agent_blob, data, flags)
            except AgentError as exc:
                _unless_out_of_files(exc)
                self.trace(f"agent could not sign: {exc}")
                if candidate.path is None:
                    return None
        wanted = candidate.identity.key.plain
        blob = wanted.to_wire()
        key = self.loaded.get(blob)
        if key is None:
            if candidate.path is None:
                return None
            loaded = self._load(candidate.path)
            if loaded is None:
                return None
            key, comment = loaded
            if key.public.plain != wanted:
                self.trace(f"key {candidate.path} does not match {candidate.identity.source}")
                sys.stderr.write(
                    f"keytool: key {candidate.path} not used: it is not the key of "
                    f"{candidate.identity.source}\n"
                )
                return None
            self.loaded[blob] = key
            await self._add_to_agent(candidate.path, key, comment)
        return key.sign(data, plain_algorithm)

    async def _add_to_agent(self, path: str, key: PrivateKey, comment: str) -> None:
        """AddKeysToAgent, as ssh: a key loaded from its file to sign goes to the agent
        (asked first with "ask"; with "confirm", each use is to be confirmed there;
        for the lifetime given). No agent, or one that refuses: a trace line."""
        mode, lifetime = self.options.add_keys_to_agent
        if mode == "no" or not self.options.agent:
            return
        shown = comment or path
        if mode == "ask":
            from keytool.terminal import ask_permission

            # as ssh's ask_permission: through the askpass program alone (a display, or
            # SSH_ASKPASS_REQUIRE=force), never on the terminal; nobody to ask is a no
            question = f"Add key {path} ({shown}) to agent?"
            try:
                if not ask_permission(question):  # it waits for the answer, as ssh
                    return
            except KeytoolError as exc:
                self.trace(f"key {path} not added to the agent: {exc}")
                return
        confirm = mode == "confirm"
        try:
            if self.agent is not None:
                await self.agent.add(key, shown, lifetime, confirm)
            else:
                agent = await self.agents(self.options.agent_socket, self.options.timeout)
                try:
                    await agent.add(key, shown, lifetime, confirm)
                finally:
                    await agent.close()
        except (KeytoolError, OSError) as exc:
            self.trace(f"key {path} not added to the agent: {exc}")
            return
        self.trace(f"key {path} added to the agent")

    def _load(self, path: str) -> tuple[PrivateKey, str] | None:
        from keytool.errors import PassphraseError, WrongPassphraseError
        from keytool.keyfiles import load_private_file

        def ask(p: str | os.PathLike[str]) -> bytes:
            answer = self.prompts.secret(
                f"Enter passphrase for key '{p}': ", f"the passphrase for {p}"
            )
            if not answer:
                # as ssh: an empty answer passes on to the next key
                raise PassphraseError("no passphrase given")
            return answer.encode("utf-8", "surrogateescape")

        # as ssh: a wrong passphrase is asked again, NumberOfPasswordPrompts times
        for attempt in range(1, max(1, self.options.password_prompts) + 1):
            try:
                key, comment = load_private_file(path, ask=ask)
            except WrongPassphraseError as exc:
                if attempt < self.options.password_prompts:
                    self.trace(f"key {path}: bad passphrase, asked again")
                    continue
                self._not_used(path, exc)
                return None
            except KeytoolError as exc:
                _unless_out_of_files(exc)
                self._not_used(path, exc)
                return None
            return key, comment
        return None

    def _not_used(self, path: str, exc: KeytoolError) -> None:
        self.trace(f"key {path} not used: {exc}")
        sys.stderr.write(f"keytool: key {path} not used: {exc}\n")

    async def close(self) -> None:
        if self.agent is not None:
            await self.agent.close()


def _no_trace(_line: str) -> None:
    pass


# ---------------------------------------------------------------- user authentication


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
        keys = _Keys(options, self.prompts, trace, self.agents, binding)
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
                    _Candidate(ua.Identity(k.public, "given key", True), None, None)
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
        self, step: ua.TryKey, candidate: _Candidate, keys: _Keys, plan: ua.AuthPlan
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


def _lookup_name(options: ConnectOptions) -> str:
    """The server's name as known_hosts records it (``[host]:port`` off port 22)."""
    from keytool.knownhosts import lookup_name

    return lookup_name(*options.known_hosts_name())


def _public_key_file(path: str) -> PublicKey | None:
    """The key of a public key file (KEY.pub given as an identity), else None."""
    from keytool import files
    from keytool.keys.pubfile import parse_public_text

    try:
        key, _ = parse_public_text(files.read_file(path, "public key"))
    except KeytoolError:
        return None
    return key


def _unless_out_of_files(exc: BaseException) -> None:
    """A step that cannot be done is passed over (no agent, a key file unreadable), but
    not for the process having no file descriptor free: that is said, not taken for
    a missing agent or key (the login would end in a refusal that is not the server's)."""
    from keytool.tcp import OUT_OF_FILES, out_of_files

    if out_of_files(exc):
        raise KeytoolError(f"{OUT_OF_FILES} (raise the limit with ulimit -n)") from exc

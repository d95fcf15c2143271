"""The signers behind the identities login offers: ``Keys`` holds the agent
connection and the key files (explicit, default, their certificates), and gives each
identity with what signs for it (``Candidate``: the agent, or a private key file
loaded on demand).
"""

from __future__ import annotations

import os
import sys

from keytool.errors import AgentError, KeytoolError
from keytool.login_hostkey import too_short
from keytool.options import ConnectOptions, Prompts
from keytool.record import Record, init
from keytool.transport import auth as ua

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from typing import Protocol

    from keytool.agentclient import AgentKey
    from keytool.keys.base import PrivateKey, PublicKey
    from keytool.keys.cert import Certificate

    Trace = Callable[[str], None]

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


class Candidate(Record):
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


class Keys:
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

    async def collect(self) -> list[Candidate]:
        from keytool.sshconfig_resolved import DEFAULT_IDENTITY_FILES
        from keytool.sshconfig_words import account_home, expand_home

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

        return [Candidate(i, paths.get(i.key.to_wire()), agent_blob(i.key)) for i in order]

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
        from keytool.hostcert import describe_certificate

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
            try:
                public = key.public
                if too_short(public, self.options.required_rsa_size):
                    self.trace(f"agent key ignored: RSA of {public.bits} bits (RequiredRSASize)")
                    continue
                found.append(ua.Identity(public, "agent"))
            except KeytoolError:
                continue  # a key type we do not handle (DSA, FIDO...)
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

    async def sign(self, candidate: Candidate, algorithm: str, data: bytes) -> bytes | None:
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

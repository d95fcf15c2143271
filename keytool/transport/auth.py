"""User authentication, client side (RFC 4252), without I/O.

Two pure parts:

* ``UserAuth`` turns requests into payloads and the server's replies into events. It
  never signs: when the server accepts a key (SSH_MSG_USERAUTH_PK_OK) it hands back a
  ``SignatureNeeded`` event with the RFC 4252 §7 data, and takes the signature through
  ``send_signature()``, so an agent or a key file can sign.
* ``AuthPlan`` decides what to try next from the methods the server still allows, with
  the server's MaxAuthTries in mind, and remembers what was tried for the final error.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from keytool.display import logged, printable
from keytool.errors import AuthError, FormatError, ProtocolError
from keytool.keys.base import PublicKey
from keytool.keys.blob import public_from_wire
from keytool.record import Record, init
from keytool.transport.config import DEFAULT_PUBKEY
from keytool.wire import Reader, Writer

# RFC 4252 §6 and RFC 4256 §3.2: message numbers of the authentication protocol
MSG_USERAUTH_REQUEST = 50
MSG_USERAUTH_FAILURE = 51
MSG_USERAUTH_SUCCESS = 52
MSG_USERAUTH_BANNER = 53
# 60 and 61 mean different things per method (RFC 4252 §7, §8; RFC 4256 §3.2)
MSG_USERAUTH_PK_OK = 60
MSG_USERAUTH_PASSWD_CHANGEREQ = 60
MSG_USERAUTH_INFO_REQUEST = 60
MSG_USERAUTH_INFO_RESPONSE = 61

SERVICE = "ssh-connection"

# OpenSSH's default PreferredAuthentications, less the methods we never do
PREFERRED_METHODS = ("publickey", "keyboard-interactive", "password")
DEFAULT_MAX_AUTH_TRIES = 6  # sshd_config(5) MaxAuthTries
DEFAULT_PASSWORD_PROMPTS = 3  # ssh_config(5) NumberOfPasswordPrompts

# RSA signature algorithms, best first (RFC 8332 §3)
RSA_SHA2 = ("rsa-sha2-512", "rsa-sha2-256")


# ---------------------------------------------------------------- events


class AuthBanner(Record):
    """SSH_MSG_USERAUTH_BANNER: text the server wants shown before login (RFC 4252 §5.4),
    as sent (bytes that are not UTF-8 as surrogate escapes): escape it to show it."""

    __slots__ = ("message",)
    message: str

    def __init__(self, message: str) -> None:
        init(self, message=message)


class AuthSuccess(Record):
    """SSH_MSG_USERAUTH_SUCCESS: the connection protocol starts now."""

    __slots__ = ()


class AuthFailure(Record):
    """SSH_MSG_USERAUTH_FAILURE: the request failed (or, if ``partial``, succeeded as one
    step of several); ``methods`` may continue."""

    __slots__ = ("methods", "partial")
    methods: tuple[str, ...]
    partial: bool

    def __init__(self, methods: tuple[str, ...], partial: bool) -> None:
        init(self, methods=methods, partial=partial)


class SignatureNeeded(Record):
    """The server would accept ``key``: sign ``data`` with ``algorithm`` and pass the
    signature blob to ``UserAuth.send_signature``."""

    __slots__ = ("algorithm", "data", "key")
    key: PublicKey
    algorithm: str
    data: bytes

    def __init__(self, key: PublicKey, algorithm: str, data: bytes) -> None:
        init(self, key=key, algorithm=algorithm, data=data)


class KeyAccepted(Record):
    """Answer to a query made with ``sign=False``: the server would accept ``key``."""

    __slots__ = ("algorithm", "key")
    key: PublicKey
    algorithm: str

    def __init__(self, key: PublicKey, algorithm: str) -> None:
        init(self, key=key, algorithm=algorithm)


class Prompt(Record):
    __slots__ = ("echo", "text")
    text: str
    echo: bool

    def __init__(self, text: str, echo: bool) -> None:
        init(self, text=text, echo=echo)


class InfoRequest(Record):
    """SSH_MSG_USERAUTH_INFO_REQUEST (RFC 4256 §3.2): answer each prompt, in order. The
    texts are as sent (bytes that are not UTF-8 as surrogate escapes): escape to show."""

    __slots__ = ("instruction", "name", "prompts")
    name: str
    instruction: str
    prompts: tuple[Prompt, ...]

    def __init__(self, name: str, instruction: str, prompts: tuple[Prompt, ...]) -> None:
        init(self, name=name, instruction=instruction, prompts=prompts)


class PasswordChangeRequired(Record):
    """SSH_MSG_USERAUTH_PASSWD_CHANGEREQ (RFC 4252 §8): the password has expired."""

    __slots__ = ("prompt",)
    prompt: str

    def __init__(self, prompt: str) -> None:
        init(self, prompt=prompt)


AuthEvent = (
    AuthBanner
    | AuthSuccess
    | AuthFailure
    | SignatureNeeded
    | KeyAccepted
    | InfoRequest
    | PasswordChangeRequired
)


# ---------------------------------------------------------------- the state machine


class State(enum.Enum):
    IDLE = "idle"  # nothing outstanding
    NONE = "none"
    PUBKEY_QUERY = "publickey query"
    SIGNING = "waiting for our signature"
    PUBKEY_SIGNED = "publickey"
    PASSWORD = "password"
    KBDINT = "keyboard-interactive"
    ANSWERING = "waiting for our answers"
    DONE = "authenticated"
    FAILED = "failed"


_FINAL = {MSG_USERAUTH_FAILURE, MSG_USERAUTH_SUCCESS, MSG_USERAUTH_BANNER}

# which messages each state accepts; anything else is a protocol violation
ACCEPTS: dict[State, frozenset[int]] = {
    State.IDLE: frozenset({MSG_USERAUTH_BANNER}),
    State.NONE: frozenset(_FINAL),
    # a server that asks nothing of anyone answers a query with SUCCESS
    State.PUBKEY_QUERY: frozenset(_FINAL | {MSG_USERAUTH_PK_OK}),
    State.SIGNING: frozenset({MSG_USERAUTH_BANNER}),
    State.PUBKEY_SIGNED: frozenset(_FINAL),
    State.PASSWORD: frozenset(_FINAL | {MSG_USERAUTH_PASSWD_CHANGEREQ}),
    State.KBDINT: frozenset(_FINAL | {MSG_USERAUTH_INFO_REQUEST}),
    State.ANSWERING: frozenset({MSG_USERAUTH_BANNER}),
    State.DONE: frozenset(),
    State.FAILED: frozenset(),
}


class UserAuth:
    """RFC 4252 requests out, events in. One request is outstanding at a time (§5)."""

    __slots__ = (
        "_algorithm",
        "_key",
        "_prompts",
        "_query_only",
        "service",
        "session_id",
        "state",
        "username",
    )

    def __init__(self, username: str, session_id: bytes, service: str = SERVICE) -> None:
        self.username = username
        self.session_id = session_id
        self.service = service
        self.state = State.IDLE
        self._key: PublicKey | None = None
        self._algorithm = ""
        self._query_only = False
        self._prompts = 0

    # ---- requests

    def _begin(self, state: State) -> None:
        if self.state is State.FAILED:
            raise ProtocolError("authentication already failed on a protocol error")
        if self.state is not State.IDLE:
            raise ProtocolError(f"cannot start a new request while in state {self.state.value}")
        self.state = state

    def _request(self, method: str) -> Writer:
        # RFC 4252 §5: byte 50, string user name, string service name, string method name
        return (
            Writer()
            .byte(MSG_USERAUTH_REQUEST)
            .string(self.username)
            .string(self.service)
            .string(method)
        )

    def none(self) -> bytes:
        """The "none" method (§5.2): it fails, and the failure lists the methods."""
        self._begin(State.NONE)
        return self._request("none").getvalue()

    def publickey(self, key: PublicKey, algorithm: str, *, sign: bool = True) -> bytes:
        """Ask whether ``key`` would be accepted (§7, the boolean FALSE form).

        With ``sign`` a positive answer becomes a ``SignatureNeeded`` event; without it,
        a ``KeyAccepted`` event and nothing is signed (copy-id asks this way)."""
        if algorithm not in key.signature_algorithms:
            raise AuthError(f"a {key.key_type} key cannot sign with {algorithm}")
        self._begin(State.PUBKEY_QUERY)
        self._key, self._algorithm, self._query_only = key, algorithm, not sign
        return (
            self._request("publickey")
            .boolean(False)
            .string(algorithm)
            .string(key.to_wire())
            .getvalue()
        )

    def signature_data(self, key: PublicKey, algorithm: str) -> bytes:
        """What the signature covers (RFC 4252 §7): session id, then the request itself."""
        return (
            Writer()
            .string(self.session_id)
            .byte(MSG_USERAUTH_REQUEST)
            .string(self.username)
            .string(self.service)
            .string("publickey")
            .boolean(True)
            .string(algorithm)
            .string(key.to_wire())
            .getvalue()
        )

    def publickey_signed(self, key: PublicKey, algorithm: str) -> SignatureNeeded:
        """Sign without asking first: the signed request may be sent directly (§7);
        one round trip instead of two for a key known to be installed (copy-id's
        verification). Returns what to sign; ``send_signature`` makes the request."""
        if algorithm not in key.signature_algorithms:
            raise AuthError(f"a {key.key_type} key cannot sign with {algorithm}")
        self._begin(State.SIGNING)
        self._key, self._algorithm, self._query_only = key, algorithm, False
        return SignatureNeeded(key, algorithm, self.signature_data(key, algorithm))

    def send_signature(self, signature: bytes) -> bytes:
        """The signed request, after a ``SignatureNeeded`` event."""
        if self.state is not State.SIGNING or self._key is None:
            raise ProtocolError("no signature was asked for")
        self.state = State.PUBKEY_SIGNED
        return (
            self._request("publickey")
            .boolean(True)
            .string(self._algorithm)
            .string(self._key.to_wire())
            .string(signature)
            .getvalue()
        )

    def cancel_signature(self) -> None:
        """Signing failed on our side (agent refused, passphrase not given): go back to
        idle so another method can be tried. Nothing was sent."""
        if self.state is State.SIGNING:
            self.state = State.IDLE

    def password(self, password: str) -> bytes:
        """The "password" method (§8)."""
        self._begin(State.PASSWORD)
        return self._request("password").boolean(False).string(password).getvalue()

    def keyboard_interactive(self, submethods: str = "") -> bytes:
        """The "keyboard-interactive" method (RFC 4256 §3.1): language, submethods."""
        self._begin(State.KBDINT)
        return self._request("keyboard-interactive").string("").string(submethods).getvalue()

    def info_response(self, answers: Sequence[str]) -> bytes:
        """SSH_MSG_USERAUTH_INFO_RESPONSE (RFC 4256 §3.4): one answer per prompt."""
        if self.state is not State.ANSWERING:
            raise ProtocolError("no keyboard-interactive prompts to answer")
        if len(answers) != self._prompts:
            raise AuthError(f"{self._prompts} answers needed, {len(answers)} given")
        self.state = State.KBDINT
        out = Writer().byte(MSG_USERAUTH_INFO_RESPONSE).uint32(len(answers))
        for answer in answers:
            out.string(answer)
        return out.getvalue()

    # ---- replies

    def receive(self, payload: bytes) -> AuthEvent:
        """One server message (a whole payload, message number first)."""
        if self.state is State.FAILED:
            raise ProtocolError("authentication already failed on a protocol error")
        try:
            return self._receive(payload)
        except (ProtocolError, FormatError) as exc:
            self.state = State.FAILED
            if isinstance(exc, ProtocolError):
                raise
            # the Reader's words name the message already ("malformed authentication
            # message: ..."); the one key blob parsed is ours, checked equal first
            raise ProtocolError(str(exc)) from None

    def _receive(self, payload: bytes) -> AuthEvent:
        r = Reader(payload, "authentication message")
        kind = r.byte()
        if kind not in ACCEPTS[self.state]:
            raise ProtocolError(
                f"unexpected message {kind} during authentication ({self.state.value})"
            )
        if kind == MSG_USERAUTH_BANNER:
            # RFC 4252 §5.4: string message (UTF-8), string language tag; any bytes
            # come, as sshd sends its Banner file as it is
            message = r.peer_text()
            r.string()
            r.done()
            # all of it (the packet bounds it), as sent: login.py escapes it as ssh does
            return AuthBanner(message)
        if kind == MSG_USERAUTH_SUCCESS:
            r.done()
            self.state = State.DONE
            return AuthSuccess()
        if kind == MSG_USERAUTH_FAILURE:
            # RFC 4252 §5.1: name-list authentications that can continue, boolean partial
            methods = tuple(r.name_list())
            partial = r.boolean()
            r.done()
            self.state = State.IDLE
            return AuthFailure(methods, partial)
        # message 60: its meaning depends on the outstanding request
        if self.state is State.PUBKEY_QUERY:
            return self._pk_ok(r)
        if self.state is State.PASSWORD:
            prompt = r.peer_text()
            r.string()
            r.done()
            self.state = State.IDLE
            return PasswordChangeRequired(printable(prompt, len(prompt), "\n\t\r"))
        return self._info_request(r)

    def _pk_ok(self, r: Reader) -> AuthEvent:
        # RFC 4252 §7: string algorithm name, string key blob, echoing the query
        algorithm = r.ascii()
        blob = r.string()
        r.done()
        key = self._key
        assert key is not None
        if algorithm != self._algorithm or blob != key.to_wire():
            raise ProtocolError("the server accepted a key we did not offer")
        public_from_wire(blob)  # well-formed, as it is ours
        if self._query_only:
            self.state = State.IDLE
            return KeyAccepted(key, algorithm)
        self.state = State.SIGNING
        return SignatureNeeded(key, algorithm, self.signature_data(key, algorithm))

    def _info_request(self, r: Reader) -> AuthEvent:
        # RFC 4256 §3.2: name, instruction, language, int num-prompts, (prompt, echo)*;
        # texts for the user, in any bytes (PAM's words, a device's): login.py escapes them
        name = r.peer_text()
        instruction = r.peer_text()
        r.string()
        count = r.uint32()
        # each prompt takes at least 5 bytes; a huge count is a lie about the payload
        if count * 5 > r.remaining:
            raise ProtocolError(f"keyboard-interactive request claims {count} prompts")
        prompts = []
        for _ in range(count):
            text = r.peer_text()
            prompts.append(Prompt(text, r.boolean()))
        r.done()
        self.state = State.ANSWERING
        self._prompts = count
        return InfoRequest(name, instruction, tuple(prompts))


# ---------------------------------------------------------------- what to try next


#: signature algorithms of RSA keys: RFC 8332's, and SHA-1 ssh-rsa (only if accepted)
RSA_ALGORITHMS = (*RSA_SHA2, "ssh-rsa")


def signature_algorithm_for(
    key: PublicKey,
    server_sig_algs: frozenset[str] | None,
    accepted: Sequence[str] = DEFAULT_PUBKEY,
) -> str | None:
    """The algorithm name of a publickey request for ``key``, or None when none may be
    used. ``accepted`` is PubkeyAcceptedAlgorithms, in its order of preference.

    Any key but RSA signs with its own type, if accepted. RSA takes the first accepted
    of rsa-sha2-512, rsa-sha2-256 and ssh-rsa (SHA-1, only when a user adds it) that
    server-sig-algs lists (RFC 8308 §3.1); without that list, the first accepted (a
    server that knows RFC 8332 takes rsa-sha2-512; ssh would fall back to ssh-rsa,
    which OpenSSH refuses since 8.8). An RSA certificate takes the certificate form of
    that choice (rsa-sha2-512-cert-v01@openssh.com), as ssh chooses it."""
    if key.plain.key_type != "ssh-rsa":
        return key.key_type if key.key_type in accepted else None
    from keytool.keys.cert import cert_name

    certificate = key.plain is not key
    for algorithm in accepted:
        if algorithm not in RSA_ALGORITHMS:
            continue
        if server_sig_algs is not None and algorithm not in server_sig_algs:
            continue
        if not certificate:
            return algorithm
        if cert_name(algorithm) in accepted:
            return cert_name(algorithm)
    return None


def unusable(key: PublicKey, accepted: Sequence[str]) -> str:
    """Why signature_algorithm_for found nothing for ``key``."""
    if key.plain.key_type == "ssh-rsa" and any(a in RSA_ALGORITHMS for a in accepted):
        why = "the server takes no RSA signature algorithm PubkeyAcceptedAlgorithms allows"
        if "ssh-rsa" not in accepted:
            why += " (for SHA-1 ssh-rsa, -o PubkeyAcceptedAlgorithms=+ssh-rsa)"
        return why
    return f"{key.key_type} is not in PubkeyAcceptedAlgorithms"


class Identity(Record):
    """A public key we may offer, and where it comes from (for messages: a path or "agent")."""

    __slots__ = ("explicit", "key", "source")
    key: PublicKey
    source: str
    explicit: bool  # named with -i / IdentityFile

    def __init__(self, key: PublicKey, source: str, explicit: bool = False) -> None:
        init(self, key=key, source=source, explicit=explicit)


class TryKey(Record):
    __slots__ = ("algorithm", "identity")
    identity: Identity
    algorithm: str

    def __init__(self, identity: Identity, algorithm: str) -> None:
        init(self, identity=identity, algorithm=algorithm)


class TryPassword(Record):
    """Ask for a password and send it."""

    __slots__ = ()


class TryKeyboardInteractive(Record):
    """Start keyboard-interactive and answer its prompts."""

    __slots__ = ()


Step = TryKey | TryPassword | TryKeyboardInteractive


def order_identities(
    explicit: Iterable[Identity],
    agent: Iterable[Identity],
    defaults: Iterable[Identity],
    identities_only: bool,
) -> list[Identity]:
    """Keys to offer, in order: explicit (-i) keys first; then, unless IdentitiesOnly,
    the agent's other keys; then default identity files. The same key once only."""
    ordered: list[Identity] = []
    seen: set[bytes] = set()
    agent_list = list(agent)
    agent_blobs = {identity.key.to_wire() for identity in agent_list}
    groups: list[Iterable[Identity]] = [explicit]
    if not identities_only:
        groups.append(agent_list)
    groups.append(defaults)
    for group in groups:
        for identity in group:
            blob = identity.key.to_wire()
            if blob in seen:
                continue
            seen.add(blob)
            if identity.source != "agent" and blob in agent_blobs:
                # a file key the agent holds: the agent signs, no passphrase needed
                identity = Identity(
                    identity.key, f"{identity.source} (in agent)", identity.explicit
                )
            ordered.append(identity)
    return ordered


class AuthPlan:
    """Chooses the next method, counting failures against the server's MaxAuthTries.

    sshd counts every failed request but the first "none", and disconnects with 'Too
    many authentication failures' when the count reaches MaxAuthTries. Keys stop one
    short of that, and one more short when a password or keyboard-interactive prompt
    may follow, so that the prompt still gets its turn."""

    __slots__ = (
        "_kbdints",
        "_next_key",
        "_passwords",
        "accepted",
        "failures",
        "identities",
        "info_request_seen",
        "keyboard_interactive",
        "max_tries",
        "methods",
        "password",
        "password_prompts",
        "server_sig_algs",
        "skipped",
        "tried",
    )

    def __init__(
        self,
        identities: list[Identity],
        password: bool = False,  # we can ask for a password
        keyboard_interactive: bool = False,
        max_tries: int = DEFAULT_MAX_AUTH_TRIES,
        password_prompts: int = DEFAULT_PASSWORD_PROMPTS,
        server_sig_algs: frozenset[str] | None = None,
        failures: int = 0,  # already counted by the server (refused key queries)
        accepted: Sequence[str] = DEFAULT_PUBKEY,  # PubkeyAcceptedAlgorithms
        methods: Sequence[str] = PREFERRED_METHODS,  # PreferredAuthentications, in order
    ) -> None:
        self.identities = identities
        self.methods = tuple(m for m in methods if m in PREFERRED_METHODS)
        #: the server asked something by keyboard-interactive: as ssh, that method is
        #: tried again only then (sshd with no PAM offers it and never asks; each try
        #: would count towards MaxAuthTries, and the password would never be asked)
        self.info_request_seen = False
        self.password = password
        self.keyboard_interactive = keyboard_interactive
        self.max_tries = max_tries
        self.password_prompts = password_prompts
        self.server_sig_algs = server_sig_algs
        self.accepted = accepted
        self.failures = failures
        self.tried: list[str] = []
        self.skipped: list[str] = []
        self._next_key = 0
        self._passwords = 0
        self._kbdints = 0

    @property
    def passwords_asked(self) -> int:
        """Password attempts so far, the one under way included."""
        return self._passwords

    def _key_budget(self, allowed: Sequence[str]) -> int:
        """How many failures keys may reach: sshd disconnects at the MaxAuthTries-th
        failure (auth2.c), so one less, and one less again when a password or
        keyboard-interactive prompt may follow."""
        later = (self.password and "password" in allowed) or (
            self.keyboard_interactive and "keyboard-interactive" in allowed
        )
        return self.max_tries - 1 - (1 if later else 0)

    def next_step(self, allowed: Sequence[str]) -> Step | None:
        """The next thing to try, given the methods the last failure allowed; None when
        nothing is left."""
        for method in self.methods:
            if method not in allowed:
                continue
            if method == "publickey":
                step = self._next_key_step(allowed)
                if step is not None:
                    return step
            elif method == "keyboard-interactive":
                if (
                    self.keyboard_interactive
                    and self._kbdints < self.password_prompts
                    and (self._kbdints == 0 or self.info_request_seen)
                    and self.failures < self.max_tries
                ):
                    self._kbdints += 1
                    return TryKeyboardInteractive()
            elif (
                method == "password"
                and self.password
                and self._passwords < self.password_prompts
                and self.failures < self.max_tries
            ):
                self._passwords += 1
                return TryPassword()
        return None

    def _next_key_step(self, allowed: Sequence[str]) -> TryKey | None:
        while self._next_key < len(self.identities):
            if self.failures >= self._key_budget(allowed):
                left = len(self.identities) - self._next_key
                self.skipped.append(
                    f"{left} more key{'s' if left > 1 else ''} not offered "
                    f"(the server allows {self.max_tries} attempts; use -i and IdentitiesOnly)"
                )
                self._next_key = len(self.identities)
                return None
            identity = self.identities[self._next_key]
            self._next_key += 1
            algorithm = signature_algorithm_for(identity.key, self.server_sig_algs, self.accepted)
            if algorithm is None:
                self.skipped.append(f"{identity.source}: {unusable(identity.key, self.accepted)}")
                continue
            return TryKey(identity, algorithm)
        return None

    def failed(self, what: str) -> None:
        """Record a refused attempt (it counts towards MaxAuthTries)."""
        self.failures += 1
        self.tried.append(what)

    def error(self, username: str, host: str, allowed: Sequence[str]) -> AuthError:
        tried = "; ".join(self.tried) if self.tried else "nothing we could offer"
        # ssh's words first ("user@host: Permission denied (publickey,password)."), then
        # what was tried
        # (the user and host escaped as ssh's log lines escape them: \ooo)
        who = f"{logged(username, 100)}@{logged(host, 100)}"
        text = f"{who}: Permission denied ({','.join(allowed)}); tried: {tried}"
        if self.skipped:
            text += "; " + "; ".join(self.skipped)
        return AuthError(text)

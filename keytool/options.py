"""What the SSH client is told: ConnectOptions (from ssh's command line and config
files) and Prompts (how it asks the user for passwords and passphrases).

Shared by both drivers of the client: the asyncio one (keytool.session, for copy-id
and fleets) and the blocking one (keytool.blocking, for ``keytool exec``). Nothing
here imports asyncio, nor cryptography before a connection is set up.
"""

from __future__ import annotations

import os
import sys

from keytool.errors import KeytoolError
from keytool.record import Record, init
from keytool.transport.auth import DEFAULT_MAX_AUTH_TRIES, DEFAULT_PASSWORD_PROMPTS
from keytool.transport.config import (
    DEFAULT_CA_SIGNATURE_ALGORITHMS,
    DEFAULT_PUBKEY,
    TransportConfig,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Container

    from keytool.sshconfig_resolved import ResolvedConfig

    Trace = Callable[[str], None]

DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
DEFAULT_TIMEOUT = 60.0


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

        return terminal.has_terminal() or terminal.askpass_program(False) is not None

    def secret(self, prompt: str, purpose: str, echo: bool = False) -> str:
        if self.batch_mode:
            raise KeytoolError(f"{purpose} is needed but BatchMode is set")
        from keytool import terminal

        return terminal.read_secret(prompt, purpose, echo)

    def show(self, text: str) -> None:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()


class ConnectOptions(Record):
    """Everything a connection needs; the CLI fills it from -o, -F and ~/.ssh/config.

    ``host`` is the host to connect to (after HostName); ``host_key_alias`` the name
    looked up in known_hosts, if not host (HostKeyAlias: as written, without the port,
    as ssh does); ``identity_files`` -i / IdentityFile (none:
    ssh's default files); ``certificate_files`` CertificateFile (none: each identity
    file's ``-cert.pub`` neighbour, as ssh); ``ca_signature_algorithms`` what a host
    certificate's CA may sign with (CASignatureAlgorithms); ``password`` one given
    by a script (never logged);
    ``expected_host_key`` a "SHA256:..." pin; ``revoked_host_keys`` RevokedHostKeys
    files (KRLs or key lists), checked before anything else;
    ``proxy_command`` ProxyCommand, tokens expanded: its stdin and stdout are the
    connection (``tcp.proxy_connect``)."""

    __slots__ = (
        "add_keys_to_agent",
        "agent",
        "agent_socket",
        "auth_methods",
        "batch_mode",
        "ca_signature_algorithms",
        "certificate_files",
        "connect_timeout",
        "expected_host_key",
        "fingerprint_hash",
        "global_known_hosts",
        "hash_known_hosts",
        "host",
        "host_key_alias",
        "identities_only",
        "identity_files",
        "kbd_interactive_authentication",
        "known_hosts_command",
        "log_level",
        "max_auth_tries",
        "no_host_authentication_for_localhost",
        "password",
        "password_authentication",
        "password_prompts",
        "port",
        "proxy_command",
        "pubkey_algorithms",
        "pubkey_authentication",
        "required_rsa_size",
        "revoked_host_keys",
        "server_alive_count_max",
        "server_alive_interval",
        "strict_host_key_checking",
        "tcp_keep_alive",
        "timeout",
        "trace",
        "transport",
        "update_host_keys",
        "user",
        "user_known_hosts",
        "visual_host_key",
    )
    host: str
    user: str
    port: int
    host_key_alias: str | None
    identity_files: tuple[str, ...]
    identities_only: bool
    agent: bool
    agent_socket: str | None
    password_authentication: bool
    kbd_interactive_authentication: bool
    pubkey_authentication: bool
    auth_methods: tuple[str, ...]  # PreferredAuthentications: the order to try them in
    batch_mode: bool
    password: str | None
    user_known_hosts: tuple[str, ...]
    global_known_hosts: tuple[str, ...]
    strict_host_key_checking: str
    hash_known_hosts: bool
    expected_host_key: str | None
    connect_timeout: float | None
    timeout: float
    max_auth_tries: int
    password_prompts: int
    proxy_command: str | None
    transport: TransportConfig
    trace: Trace | None
    certificate_files: tuple[str, ...]
    ca_signature_algorithms: tuple[str, ...]
    revoked_host_keys: tuple[str, ...]
    known_hosts_command: tuple[str, ...]  # KnownHostsCommand's words (sshconfig_words' marks)
    server_alive_interval: float  # seconds without a word from the server; 0: never ask
    server_alive_count_max: int  # keepalives it may leave unanswered
    visual_host_key: bool  # VisualHostKey: show the host key's randomart
    add_keys_to_agent: tuple[str, int | None]  # AddKeysToAgent: yes/no/ask/confirm, lifetime
    log_level: str  # LogLevel: below INFO, ssh's notices (and banners) are not shown
    pubkey_algorithms: tuple[str, ...]  # PubkeyAcceptedAlgorithms, in order of preference
    fingerprint_hash: str  # FingerprintHash: what host key fingerprints are shown in
    update_host_keys: str  # UpdateHostKeys: yes, no or ask (keytool.hostupdate)
    tcp_keep_alive: bool  # TCPKeepAlive: SO_KEEPALIVE on a TCP connection
    no_host_authentication_for_localhost: bool  # a loopback server's key goes unchecked
    required_rsa_size: int  # RequiredRSASize: shorter RSA host keys refused, user keys skipped

    def __init__(
        self,
        host: str,
        user: str,
        port: int = 22,
        host_key_alias: str | None = None,
        identity_files: tuple[str, ...] = (),
        identities_only: bool = False,
        agent: bool = True,
        agent_socket: str | None = None,
        password_authentication: bool = True,
        kbd_interactive_authentication: bool = True,
        pubkey_authentication: bool = True,
        batch_mode: bool = False,
        password: str | None = None,
        user_known_hosts: tuple[str, ...] = DEFAULT_KNOWN_HOSTS,
        global_known_hosts: tuple[str, ...] = DEFAULT_GLOBAL_KNOWN_HOSTS,
        strict_host_key_checking: str = "ask",
        hash_known_hosts: bool = False,
        expected_host_key: str | None = None,
        connect_timeout: float | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_auth_tries: int = DEFAULT_MAX_AUTH_TRIES,
        password_prompts: int = DEFAULT_PASSWORD_PROMPTS,
        proxy_command: str | None = None,
        transport: TransportConfig | None = None,
        trace: Trace | None = None,
        certificate_files: tuple[str, ...] = (),
        ca_signature_algorithms: tuple[str, ...] = DEFAULT_CA_SIGNATURE_ALGORITHMS,
        revoked_host_keys: tuple[str, ...] = (),
        known_hosts_command: tuple[str, ...] = (),
        server_alive_interval: float = 0,
        server_alive_count_max: int = 3,
        visual_host_key: bool = False,
        add_keys_to_agent: tuple[str, int | None] = ("no", None),
        log_level: str = "INFO",
        pubkey_algorithms: tuple[str, ...] = DEFAULT_PUBKEY,
        fingerprint_hash: str = "sha256",
        update_host_keys: str = "no",
        tcp_keep_alive: bool = True,
        no_host_authentication_for_localhost: bool = False,
        required_rsa_size: int = 1024,
        auth_methods: tuple[str, ...] = ("publickey", "keyboard-interactive", "password"),
    ) -> None:
        init(
            self,
            auth_methods=auth_methods,
            host=host,
            user=user,
            port=port,
            host_key_alias=host_key_alias,
            identity_files=identity_files,
            identities_only=identities_only,
            agent=agent,
            agent_socket=agent_socket,
            password_authentication=password_authentication,
            kbd_interactive_authentication=kbd_interactive_authentication,
            pubkey_authentication=pubkey_authentication,
            batch_mode=batch_mode,
            password=password,
            user_known_hosts=user_known_hosts,
            global_known_hosts=global_known_hosts,
            strict_host_key_checking=strict_host_key_checking,
            hash_known_hosts=hash_known_hosts,
            expected_host_key=expected_host_key,
            connect_timeout=connect_timeout,
            timeout=timeout,
            max_auth_tries=max_auth_tries,
            password_prompts=password_prompts,
            proxy_command=proxy_command,
            transport=transport if transport is not None else TransportConfig(),
            trace=trace,
            certificate_files=certificate_files,
            ca_signature_algorithms=ca_signature_algorithms,
            revoked_host_keys=revoked_host_keys,
            known_hosts_command=known_hosts_command,
            server_alive_interval=server_alive_interval,
            server_alive_count_max=server_alive_count_max,
            visual_host_key=visual_host_key,
            add_keys_to_agent=add_keys_to_agent,
            log_level=log_level,
            pubkey_algorithms=pubkey_algorithms,
            fingerprint_hash=fingerprint_hash,
            update_host_keys=update_host_keys,
            tcp_keep_alive=tcp_keep_alive,
            no_host_authentication_for_localhost=no_host_authentication_for_localhost,
            required_rsa_size=required_rsa_size,
        )

    @property
    def shows_info(self) -> bool:
        """ssh's notices (logit) are shown: LogLevel INFO or more."""
        return self.log_level not in ("QUIET", "FATAL", "ERROR")

    @property
    def shows_errors(self) -> bool:
        return self.log_level not in ("QUIET", "FATAL")

    def __repr__(self) -> str:
        # a password given by a script never reaches a log or a traceback
        shown = ", ".join(
            f"{name}={'***' if name == 'password' and value else value!r}"
            for name, value in zip(self._names(), self._fields(), strict=True)
        )
        return f"ConnectOptions({shown})"

    @property
    def handshake_timeout(self) -> float:
        """Each wait for the server until the ssh-userauth service accept: ssh's
        ConnectTimeout covers the SSH handshake and key exchange as well as TCP."""
        return self.connect_timeout or self.timeout

    def known_hosts_name(self) -> tuple[str, int]:
        """Host and port as known_hosts records this server: ``[host]:port`` unless
        the port is 22, or the HostKeyAlias as it stands."""
        if self.host_key_alias:
            return self.host_key_alias, 22
        return self.host, self.port

    def replace(self, **changes: object) -> ConnectOptions:
        """A copy with ``changes`` applied (as ``dataclasses.replace``)."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"ConnectOptions has no field {', '.join(sorted(unknown))}")
        fields: dict[str, object] = dict(zip(self._names(), self._fields(), strict=True))
        fields.update(changes)
        return ConnectOptions(**fields)  # type: ignore[arg-type]


def _implemented(
    names: tuple[str, ...], known: Container[str], keyword: str, trace: Trace | None
) -> tuple[str, ...]:
    """``names`` without those keytool does not implement (ssh knows them: sntrup761,
    umac, the CBC ciphers...): left out of the offer, so that a server that has them
    first picks the next one, as it would with ssh; none left is an error."""
    kept = tuple(name for name in names if name in known)
    left_out = [name for name in names if name not in known]
    if left_out and trace is not None:
        trace(f"{keyword}: {','.join(left_out)} left out: keytool does not implement them")
    if not kept:
        failed = KeytoolError(f"{keyword}: keytool implements none of {','.join(names)}")
        failed.exit_code = 255
        raise failed
    return kept


def options_from_config(resolved: ResolvedConfig, trace: Trace | None = None) -> ConnectOptions:
    """ConnectOptions from a resolved ssh configuration; FormatError when an identity or
    certificate file's path cannot be expanded (as ssh, when it comes to load them)."""
    from keytool import sshconfig_resolved

    if resolved.path_error is not None:
        from keytool.errors import FormatError

        raise FormatError(resolved.path_error)
    from keytool.transport import config as tconfig
    from keytool.transport.ciphers import CIPHERS, MACS
    from keytool.transport.kex import KEX_METHODS

    def offered(
        spec: str | None,
        default: tuple[str, ...],
        known: Container[str],
        keyword: str,
        kind: str,
    ) -> tuple[str, ...]:
        listed = sshconfig_resolved.apply_algorithm_list(spec, default, kind)
        return _implemented(listed, known, keyword, trace)

    transport = TransportConfig(
        kex_algorithms=offered(
            resolved.kex_algorithms, tconfig.DEFAULT_KEX, KEX_METHODS, "KexAlgorithms", "kex"
        ),
        host_key_algorithms=sshconfig_resolved.apply_algorithm_list(
            resolved.host_key_algorithms, tconfig.DEFAULT_HOST_KEY, "key-sig"
        ),
        ciphers=offered(resolved.ciphers, tconfig.DEFAULT_CIPHERS, CIPHERS, "Ciphers", "cipher"),
        macs=offered(resolved.macs, tconfig.DEFAULT_MACS, MACS, "MACs", "mac"),
        trace=trace,
        compression=("zlib@openssh.com", "none") if resolved.compression else ("none",),
        rekey_bytes=resolved.rekey_limit[0] or None,
        rekey_interval=float(resolved.rekey_limit[1]) or None,
    )
    preferred = resolved.preferred_authentications
    agent, agent_socket = _agent_choice(resolved.identity_agent)
    return ConnectOptions(
        host=resolved.hostname,
        user=resolved.user,
        port=resolved.port,
        host_key_alias=resolved.host_key_alias,
        agent=agent,
        agent_socket=agent_socket,
        identity_files=resolved.identity_files if resolved.identity_files_given else (),
        identities_only=resolved.identities_only,
        password_authentication=resolved.password_authentication and "password" in preferred,
        kbd_interactive_authentication=(
            resolved.kbd_interactive_authentication and "keyboard-interactive" in preferred
        ),
        pubkey_authentication=resolved.pubkey_authentication and "publickey" in preferred,
        auth_methods=preferred,
        batch_mode=resolved.batch_mode,
        user_known_hosts=resolved.user_known_hosts_files,
        global_known_hosts=resolved.global_known_hosts_files,
        strict_host_key_checking=resolved.strict_host_key_checking,
        hash_known_hosts=resolved.hash_known_hosts,
        connect_timeout=float(resolved.connect_timeout) if resolved.connect_timeout else None,
        password_prompts=resolved.number_of_password_prompts,
        proxy_command=sshconfig_resolved.proxy_command(resolved),
        transport=transport,
        trace=trace,
        certificate_files=resolved.certificate_files,
        ca_signature_algorithms=sshconfig_resolved.apply_algorithm_list(
            resolved.ca_signature_algorithms, tconfig.DEFAULT_CA_SIGNATURE_ALGORITHMS, "sig"
        ),
        revoked_host_keys=resolved.revoked_host_keys,
        known_hosts_command=resolved.known_hosts_argv,
        server_alive_interval=float(resolved.server_alive_interval),
        server_alive_count_max=resolved.server_alive_count_max,
        visual_host_key=resolved.visual_host_key,
        add_keys_to_agent=resolved.add_keys_to_agent,
        log_level=resolved.log_level,
        pubkey_algorithms=sshconfig_resolved.apply_algorithm_list(
            resolved.pubkey_accepted_algorithms, tconfig.DEFAULT_PUBKEY, "key-sig"
        ),
        fingerprint_hash=resolved.fingerprint_hash,
        update_host_keys=resolved.update_host_keys,
        tcp_keep_alive=resolved.tcp_keep_alive,
        no_host_authentication_for_localhost=resolved.no_host_authentication_for_localhost,
        required_rsa_size=resolved.required_rsa_size,
    )


def _agent_choice(identity_agent: str | None) -> tuple[bool, str | None]:
    """IdentityAgent as ssh reads it: whether to use an agent, and its socket (None:
    SSH_AUTH_SOCK's). "$NAME" names a variable holding the socket; unset, no agent."""
    if identity_agent is None or identity_agent == "SSH_AUTH_SOCK":
        return True, None
    if identity_agent == "none":
        return False, None
    if identity_agent.startswith("$"):
        socket = os.environ.get(identity_agent[1:])
        return (True, socket) if socket else (False, None)
    return True, identity_agent

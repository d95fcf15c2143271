"""The records around ``resolve()``: ConfigSource (one config file's text, what it reads),
ResolvedConfig (what ssh would use for one host, what it gives) with ssh's defaults for
it, and what a client derives from a ResolvedConfig: the proxy command (ProxyJump as
keytool run through the hops), a jump host's parts, an algorithm list applied to
keytool's default one."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from keytool.patterns import match_pattern
from keytool.record import Record, init
from keytool.sshconfig_values import parse_jump_host
from keytool.sshconfig_words import expand_tokens

DEFAULT_PORT = 22
#: ssh's default identities (OpenSSH 9), tried only when no IdentityFile is given
DEFAULT_IDENTITY_FILES = (
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
)
DEFAULT_USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
DEFAULT_PREFERRED_AUTHENTICATIONS = (
    "gssapi-with-mic",
    "hostbased",
    "publickey",
    "keyboard-interactive",
    "password",
)


class ConfigSource(Record):
    """One config file's text. ``system`` marks /etc/ssh files (for relative Includes)."""

    __slots__ = ("name", "system", "text")
    name: str
    text: str
    system: bool

    def __init__(self, name: str, text: str, system: bool = False) -> None:
        init(self, name=name, text=text, system=system)


#: reads the files an Include names: (pattern as written, from a system file?) -> sources
IncludeReader = Callable[[str, bool], Sequence[ConfigSource]]


class ResolvedConfig(Record):
    """What ssh would use for one host (compare ``ssh -G``). Paths are expanded."""

    __slots__ = (
        "add_keys_to_agent",
        "address_family",
        "agent_forwarding",
        "batch_mode",
        "bind_address",
        "bind_interface",
        "ca_signature_algorithms",
        "canonical_domains",
        "certificate_files",
        "ciphers",
        "compression",
        "config_file",
        "connect_timeout",
        "connection_attempts",
        "control_master",
        "control_path",
        "control_persist",
        "dynamic_forwards",
        "enable_escape_commandline",
        "escape_char",
        "exit_on_forward_failure",
        "fingerprint_hash",
        "fork_after_authentication",
        "forward_agent",
        "forward_kinds",
        "forward_x11",
        "forward_x11_timeout",
        "forward_x11_trusted",
        "gateway_ports",
        "global_known_hosts_files",
        "hash_known_hosts",
        "host",
        "host_key_algorithms",
        "host_key_alias",
        "hostname",
        "identities_only",
        "identity_agent",
        "identity_files",
        "identity_files_given",
        "ip_qos",
        "kbd_interactive_authentication",
        "kex_algorithms",
        "known_hosts_argv",
        "known_hosts_command",
        "local_command",
        "local_command_error",
        "local_command_written",
        "local_forwards",
        "log_level",
        "macs",
        "no_host_authentication_for_localhost",
        "notices",
        "number_of_password_prompts",
        "password_authentication",
        "path_error",
        "permit_local_command",
        "permit_remote_open",
        "port",
        "preferred_authentications",
        "proxy_command",
        "proxy_jump",
        "pubkey_accepted_algorithms",
        "pubkey_authentication",
        "rekey_limit",
        "remote_command",
        "remote_forwards",
        "request_tty",
        "required_rsa_size",
        "revoked_host_keys",
        "send_env",
        "server_alive_count_max",
        "server_alive_interval",
        "session_type",
        "set_env",
        "stdin_null",
        "stream_local_bind_mask",
        "stream_local_bind_unlink",
        "strict_host_key_checking",
        "tcp_keep_alive",
        "update_host_keys",
        "user",
        "user_known_hosts_files",
        "visual_host_key",
        "warnings",
        "xauth_location",
    )
    host: str  # as given on the command line (what Host patterns matched)
    hostname: str
    user: str
    port: int
    identity_files: tuple[str, ...]
    identities_only: bool
    user_known_hosts_files: tuple[str, ...]
    global_known_hosts_files: tuple[str, ...]
    strict_host_key_checking: str  # "yes", "ask", "accept-new" or "no"
    no_host_authentication_for_localhost: bool  # a loopback server's key goes unchecked
    connect_timeout: int | None  # seconds; None (unset) or 0: the system's TCP timeout
    password_authentication: bool
    pubkey_authentication: bool
    kbd_interactive_authentication: bool
    batch_mode: bool
    hash_known_hosts: bool
    preferred_authentications: tuple[str, ...]
    number_of_password_prompts: int
    kex_algorithms: str | None  # as written, +/-/^ included; see apply_algorithm_list
    ciphers: str | None
    macs: str | None
    host_key_algorithms: str | None
    server_alive_interval: int  # seconds; 0 = off
    server_alive_count_max: int  # keepalives unanswered before giving up
    remote_command: str | None  # RemoteCommand, its tokens expanded (as ssh -G shows it)
    set_env: tuple[str, ...]  # SetEnv NAME=VALUE entries, sent with the command
    send_env: tuple[str, ...]  # SendEnv patterns: our variables sent with the command
    visual_host_key: bool  # VisualHostKey: the host key's randomart with its fingerprint
    add_keys_to_agent: tuple[str, int | None]  # AddKeysToAgent: yes/no/ask/confirm, lifetime
    log_level: str  # LogLevel, one of LOG_LEVELS
    pubkey_accepted_algorithms: str | None  # as written, +/-/^ included
    fingerprint_hash: str  # FingerprintHash: one of fingerprint.HASH_NAMES
    connection_attempts: int  # ConnectionAttempts: connect tries, a second apart
    update_host_keys: str  # UpdateHostKeys: "yes", "no" or "ask", its default applied
    stream_local_bind_mask: int  # StreamLocalBindMask: umask of our forwarding sockets
    request_tty: str  # RequestTTY: "auto", "yes", "no" or "force"
    escape_char: int | None  # EscapeChar: its byte; None for "none"
    enable_escape_commandline: bool  # EnableEscapeCommandline: ~C's command line
    forward_agent: str  # ForwardAgent: "no", "yes", a socket path (expanded) or "$VAR"
    # ... and whether it is on, which ssh keeps apart from the socket (-A with a path
    # in the configuration forwards that socket, -a with one forwards none); None: on
    # unless forward_agent is "no"
    agent_forwarding: bool | None
    stdin_null: bool  # StdinNull (-n): stdin from /dev/null
    ip_qos: tuple[int | None, int | None]  # IPQoS: the TOS of a terminal session, of others
    required_rsa_size: int  # RequiredRSASize: RSA keys shorter are refused (host) or skipped
    permit_remote_open: tuple[str, ...]  # PermitRemoteOpen: () any, ("none",), host:port
    tcp_keep_alive: bool  # TCPKeepAlive: SO_KEEPALIVE on the connection (yes by default)
    forward_x11: bool  # ForwardX11 (-X, -Y)
    forward_x11_trusted: bool  # ForwardX11Trusted (-Y): the X server's trust, or untrusted
    forward_x11_timeout: int  # ForwardX11Timeout in seconds (untrusted only; 0: never)
    xauth_location: str  # XAuthLocation: the xauth program
    compression: bool  # Compression: zlib@openssh.com offered first
    address_family: str  # AddressFamily: "any", "inet" or "inet6"
    rekey_limit: tuple[int, int]  # RekeyLimit: bytes and seconds (0: the cipher's, never)
    control_master: str  # ControlMaster: "no", "yes", "ask", "auto" or "autoask"
    control_path: str | None  # ControlPath, ~ and tokens expanded; None: unset or "none"
    control_persist: int | None  # ControlPersist: None for no, 0 for yes (forever), seconds
    bind_address: str | None  # BindAddress: the local address to connect from
    bind_interface: str | None  # BindInterface: an interface whose address to connect from
    stream_local_bind_unlink: bool  # StreamLocalBindUnlink: remove a stale socket first
    identity_files_given: bool  # False: identity_files are ssh's defaults
    # an IdentityFile or CertificateFile that cannot be expanded (an unknown %-token, a
    # ${NAME} unset, ~user of no user): what is wrong, said only when connecting, as ssh
    # expands them only to load them (-G shows them as written)
    path_error: str | None
    canonical_domains: tuple[str, ...]  # CanonicalDomains (keytool does not canonicalize)
    warnings: tuple[str, ...]  # Match skipped, unknown keywords, ... (not printed here)
    notices: tuple[str, ...]  # what ssh says at its default log level (load prints them)
    host_key_alias: str | None  # the name known_hosts records the key under, as written
    identity_agent: str | None  # IdentityAgent: a socket path, "none", "SSH_AUTH_SOCK", "$VAR"
    known_hosts_command: str | None  # KnownHostsCommand as written (ssh -G shows it so)
    # ... as its words, each argument's tokens expanded but the ones known only when it
    # runs (%H %I %K %f %t), left as RUNTIME_TOKENS' marks for hostcheck to fill in
    known_hosts_argv: tuple[str, ...]
    local_command: str | None  # LocalCommand, its tokens expanded (run with the user's shell)
    local_command_written: str | None  # LocalCommand as written (ssh -G shows it so)
    local_command_error: str | None  # why its tokens could not be expanded (said on connecting)
    permit_local_command: bool  # PermitLocalCommand: whether LocalCommand runs at all
    proxy_command: str | None  # as written, tokens unexpanded (as ssh -G shows it); None: off
    proxy_jump: str | None  # as written; of ProxyJump and ProxyCommand, ssh takes the first
    config_file: str | None  # -F, as given (a jump host's keytool reads it too)
    local_forwards: tuple[str, ...]  # LocalForward lines as -L specs, in order
    remote_forwards: tuple[str, ...]  # RemoteForward lines as -R specs, in order
    dynamic_forwards: tuple[str, ...]  # DynamicForward lines as -D specs, in order
    #: "localforward" or "dynamicforward" for each of those two kinds' forwards, in the
    #: order read (as ssh keeps them, in one list); () when not known
    forward_kinds: tuple[str, ...]
    gateway_ports: bool  # GatewayPorts: forwards without a bind address listen everywhere
    exit_on_forward_failure: bool  # ExitOnForwardFailure: a forward that fails ends it all
    session_type: str  # SessionType: "default", "none" (ssh -N) or "subsystem"
    fork_after_authentication: bool  # ssh -f: on into the background once logged in
    certificate_files: tuple[str, ...]  # CertificateFile, expanded, in order
    ca_signature_algorithms: str | None  # CASignatureAlgorithms as written (+/-/^ included)
    revoked_host_keys: tuple[str, ...]  # RevokedHostKeys files, expanded; () for none

    def __init__(
        self,
        host: str,
        hostname: str,
        user: str,
        port: int,
        identity_files: tuple[str, ...],
        identities_only: bool,
        user_known_hosts_files: tuple[str, ...],
        global_known_hosts_files: tuple[str, ...],
        strict_host_key_checking: str,
        connect_timeout: int | None,
        password_authentication: bool,
        pubkey_authentication: bool,
        kbd_interactive_authentication: bool,
        batch_mode: bool,
        hash_known_hosts: bool,
        preferred_authentications: tuple[str, ...],
        number_of_password_prompts: int,
        kex_algorithms: str | None,
        ciphers: str | None,
        macs: str | None,
        host_key_algorithms: str | None,
        server_alive_interval: int,
        identity_files_given: bool,
        warnings: tuple[str, ...],
        host_key_alias: str | None = None,
        path_error: str | None = None,
        canonical_domains: tuple[str, ...] = (),
        identity_agent: str | None = None,
        known_hosts_command: str | None = None,
        known_hosts_argv: tuple[str, ...] = (),
        local_command: str | None = None,
        permit_local_command: bool = False,
        local_command_written: str | None = None,
        local_command_error: str | None = None,
        proxy_command: str | None = None,
        proxy_jump: str | None = None,
        config_file: str | None = None,
        server_alive_count_max: int = 3,
        local_forwards: tuple[str, ...] = (),
        remote_forwards: tuple[str, ...] = (),
        dynamic_forwards: tuple[str, ...] = (),
        forward_kinds: tuple[str, ...] = (),
        gateway_ports: bool = False,
        exit_on_forward_failure: bool = False,
        session_type: str = "default",
        fork_after_authentication: bool = False,
        certificate_files: tuple[str, ...] = (),
        ca_signature_algorithms: str | None = None,
        revoked_host_keys: tuple[str, ...] = (),
        remote_command: str | None = None,
        set_env: tuple[str, ...] = (),
        send_env: tuple[str, ...] = (),
        visual_host_key: bool = False,
        add_keys_to_agent: tuple[str, int | None] = ("no", None),
        log_level: str = "INFO",
        pubkey_accepted_algorithms: str | None = None,
        fingerprint_hash: str = "sha256",
        connection_attempts: int = 1,
        update_host_keys: str = "no",
        stream_local_bind_mask: int = 0o177,
        stream_local_bind_unlink: bool = False,
        request_tty: str = "auto",
        escape_char: int | None = 0x7E,
        enable_escape_commandline: bool = False,
        forward_agent: str = "no",
        stdin_null: bool = False,
        ip_qos: tuple[int | None, int | None] = (0x48, 0x20),
        required_rsa_size: int = 1024,
        permit_remote_open: tuple[str, ...] = (),
        tcp_keep_alive: bool = True,
        no_host_authentication_for_localhost: bool = False,
        forward_x11: bool = False,
        forward_x11_trusted: bool = False,
        forward_x11_timeout: int = 1200,
        xauth_location: str = "/usr/bin/xauth",
        compression: bool = False,
        address_family: str = "any",
        bind_address: str | None = None,
        bind_interface: str | None = None,
        rekey_limit: tuple[int, int] = (0, 0),
        control_master: str = "no",
        control_path: str | None = None,
        control_persist: int | None = None,
        notices: tuple[str, ...] = (),
        agent_forwarding: bool | None = None,
    ) -> None:
        init(
            self,
            host=host,
            hostname=hostname,
            user=user,
            port=port,
            identity_files=identity_files,
            identities_only=identities_only,
            user_known_hosts_files=user_known_hosts_files,
            global_known_hosts_files=global_known_hosts_files,
            strict_host_key_checking=strict_host_key_checking,
            connect_timeout=connect_timeout,
            password_authentication=password_authentication,
            pubkey_authentication=pubkey_authentication,
            kbd_interactive_authentication=kbd_interactive_authentication,
            batch_mode=batch_mode,
            hash_known_hosts=hash_known_hosts,
            preferred_authentications=preferred_authentications,
            number_of_password_prompts=number_of_password_prompts,
            kex_algorithms=kex_algorithms,
            ciphers=ciphers,
            macs=macs,
            host_key_algorithms=host_key_algorithms,
            server_alive_interval=server_alive_interval,
            server_alive_count_max=server_alive_count_max,
            remote_command=remote_command,
            set_env=set_env,
            send_env=send_env,
            visual_host_key=visual_host_key,
            add_keys_to_agent=add_keys_to_agent,
            log_level=log_level,
            pubkey_accepted_algorithms=pubkey_accepted_algorithms,
            fingerprint_hash=fingerprint_hash,
            connection_attempts=connection_attempts,
            update_host_keys=update_host_keys,
            stream_local_bind_mask=stream_local_bind_mask,
            stream_local_bind_unlink=stream_local_bind_unlink,
            request_tty=request_tty,
            escape_char=escape_char,
            enable_escape_commandline=enable_escape_commandline,
            forward_agent=forward_agent,
            stdin_null=stdin_null,
            ip_qos=ip_qos,
            required_rsa_size=required_rsa_size,
            permit_remote_open=permit_remote_open,
            tcp_keep_alive=tcp_keep_alive,
            no_host_authentication_for_localhost=no_host_authentication_for_localhost,
            forward_x11=forward_x11,
            forward_x11_trusted=forward_x11_trusted,
            forward_x11_timeout=forward_x11_timeout,
            xauth_location=xauth_location,
            compression=compression,
            address_family=address_family,
            bind_address=bind_address,
            bind_interface=bind_interface,
            rekey_limit=rekey_limit,
            control_master=control_master,
            control_path=control_path,
            control_persist=control_persist,
            notices=notices,
            agent_forwarding=agent_forwarding,
            identity_files_given=identity_files_given,
            warnings=warnings,
            host_key_alias=host_key_alias,
            path_error=path_error,
            canonical_domains=canonical_domains,
            identity_agent=identity_agent,
            known_hosts_command=known_hosts_command,
            known_hosts_argv=known_hosts_argv,
            local_command=local_command,
            permit_local_command=permit_local_command,
            local_command_written=local_command_written,
            local_command_error=local_command_error,
            proxy_command=proxy_command,
            proxy_jump=proxy_jump,
            config_file=config_file,
            local_forwards=local_forwards,
            remote_forwards=remote_forwards,
            dynamic_forwards=dynamic_forwards,
            forward_kinds=forward_kinds,
            gateway_ports=gateway_ports,
            exit_on_forward_failure=exit_on_forward_failure,
            session_type=session_type,
            fork_after_authentication=fork_after_authentication,
            certificate_files=certificate_files,
            ca_signature_algorithms=ca_signature_algorithms,
            revoked_host_keys=revoked_host_keys,
        )


def proxy_command(resolved: ResolvedConfig) -> str | None:
    """The command to run for ``resolved``'s connection, its tokens (%h %p %r %n)
    expanded: ProxyCommand, or for ProxyJump keytool itself as ssh runs ssh, ``exec -W
    '[%h]:%p'`` to the last jump host, through the hops before it."""
    command = resolved.proxy_command
    if resolved.proxy_jump is not None:
        command = _jump_command(resolved.proxy_jump, resolved.config_file)
    if command is None:
        return None
    tokens = {"h": resolved.hostname, "p": str(resolved.port), "r": resolved.user}
    tokens["n"] = resolved.host
    return expand_tokens(command, tokens, "ProxyCommand")


def _jump_command(jump: str, config_file: str | None) -> str:
    import shlex
    import sys

    before, _, last = jump.rpartition(",")
    user, host, port = parse_jump_host(last)
    args = [sys.executable, "-m", "keytool", "exec"]
    if config_file is not None:
        args += ["-F", config_file]
    if user:
        args += ["-l", user]
    if port is not None:
        args += ["-p", str(port)]
    if before:
        args += ["-o", f"ProxyJump={before}"]
    args += ["-W", "[%h]:%p", host]
    # the tokens of "[%h]:%p" are expanded with the rest; any other % is meant as one
    return " ".join(
        shlex.quote(arg if arg == "[%h]:%p" else arg.replace("%", "%%")) for arg in args
    )


#: the algorithm lists ssh 9.2 puts together from its defaults once the configuration
#: is read (fill_default_options), in its order: ResolvedConfig's field, ssh's name of
#: it, keytool's default, the kind of names
ASSEMBLED = (
    ("ciphers", "ciphers", "DEFAULT_CIPHERS", "cipher"),
    ("macs", "macs", "DEFAULT_MACS", "mac"),
    ("kex_algorithms", "kex_algorithms", "DEFAULT_KEX", "kex"),
    ("pubkey_accepted_algorithms", "pubkey_accepted_algos", "DEFAULT_PUBKEY", "key-sig"),
    ("ca_signature_algorithms", "ca_sign_algorithms", "DEFAULT_CA_SIGNATURE_ALGORITHMS", "sig"),
)


def unassembled(resolved: ResolvedConfig) -> tuple[str, str] | None:
    """The first of the ASSEMBLED lists that ssh fails to put together: a list of names
    (or one after + or ^) that comes to nothing ("CASignatureAlgorithms ,", a
    certificate type there), which ssh says as an error (in the words returned) and
    leaves unset, with every list after it left as written. Its field, and the words."""
    from keytool.transport import config as tconfig

    for field, name, default, kind in ASSEMBLED:
        spec = getattr(resolved, field)
        if not spec or spec[0] == "-":
            continue
        if not apply_algorithm_list(spec, getattr(tconfig, default), kind):
            return field, f"fill_default_options: {name}: invalid argument"
    return None


def apply_algorithm_list(
    spec: str | None, default: Sequence[str], kind: str | None = None
) -> tuple[str, ...]:
    """An algorithm option against keytool's default list, as ssh's kex_assemble_names
    does it: ``+a,b`` appends, ``-a*,b`` removes (wildcards allowed), ``^a,b`` puts
    first; anything else replaces the list. The names of the list made so (but a ``-``
    one's) are patterns, each giving the names ``kind`` (as ``-Q`` names it; "sig" for
    CASignatureAlgorithms, which takes no certificate types) has that match it, in
    ssh's order, each name once. None (not set) is the default list."""
    if spec is None or spec == "":
        return tuple(default)
    names = [name for name in spec[1:].split(",") if name] if spec[0] in "+-^" else []
    if spec[0] == "-":
        return tuple(d for d in default if not any(match_pattern(d, n) for n in names))
    if spec[0] == "+":
        wanted = [*default, *names]
    elif spec[0] == "^":
        wanted = [*names, *default]
    else:
        wanted = [name for name in spec.split(",") if name]
    from keytool.sshconfig_values import every_algorithm

    everything = every_algorithm(kind) if kind is not None else None
    result: list[str] = []
    for pattern in wanted:
        if everything is None:
            matching = [pattern]
        else:
            matching = [name for name in everything if match_pattern(name, pattern)]
        result += [name for name in matching if name not in result]
    return tuple(result)

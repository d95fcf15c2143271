"""ssh_config(5), the part users rely on: pure ``resolve()`` and a thin ``load()``.

How ssh reads it, and so how ``resolve`` does:

- ``-o`` options come first, then each file in order (``~/.ssh/config`` then
  ``/etc/ssh/ssh_config``, or only the ``-F`` file); for each keyword the first value
  obtained wins, except IdentityFile which accumulates (duplicates dropped).
- Lines before any ``Host`` apply to every host. ``Host`` takes space-separated patterns
  (``*``, ``?``, ``!negation``) matched, case-sensitively, against the host name as
  typed on the command line; HostName is then lowercased as ssh does.
- ``Keyword value``, ``Keyword=value``, ``Keyword = value``; keywords are
  case-insensitive; values may be quoted with ``"`` or ``'``; ``#`` starts a comment.
- ``Include`` reads more files (globs; relative names are under ``~/.ssh`` for user
  files and ``/etc/ssh`` for the system file), in the context of the block it is in.

As ssh, every line of a file is parsed and checked, in a block that applies or not
(and in a file included from one): a bad value or an unknown keyword (unless an
earlier IgnoreUnknown names it) is counted, and the file refused at its end in ssh's
words. ``~/.ssh/config`` and every included file are refused if another user may
write them ("Bad owner or permissions"). Bytes that are not UTF-8 are kept as read.

Deliberate differences from ssh:

- OpenSSH keywords keytool has no use for are ignored silently, except a few that
  change where or how ssh connects (CanonicalizeHostname, ...), which warn (-v).
"""

from __future__ import annotations

import functools
import os
import pwd
from collections.abc import Callable, Iterator, Mapping, Sequence

from keytool.errors import FormatError, KeyFileError, KeytoolError
from keytool.patterns import ascii_lower, match_any, match_pattern
from keytool.record import Record, init

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
MAX_INCLUDE_DEPTH = 16  # ssh's READCONF_MAX_DEPTH: an Include loop must end somewhere


class ConfigFatal(FormatError):
    """An error that ends the reading at once, as ssh's fatal(): a file refused whole
    (its owner, a bad line counted to its end), where other bad lines are counted."""


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
        "batch_mode",
        "bind_address",
        "bind_interface",
        "ca_signature_algorithms",
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
        "local_forwards",
        "log_level",
        "macs",
        "no_host_authentication_for_localhost",
        "notices",
        "number_of_password_prompts",
        "password_authentication",
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
    warnings: tuple[str, ...]  # Match skipped, unknown keywords, ... (not printed here)
    notices: tuple[str, ...]  # what ssh says at its default log level (load prints them)
    host_key_alias: str | None  # the name known_hosts records the key under, as written
    identity_agent: str | None  # IdentityAgent: a socket path, "none", "SSH_AUTH_SOCK", "$VAR"
    known_hosts_command: str | None  # KnownHostsCommand as written (ssh -G shows it so)
    # ... as its words, each argument's tokens expanded but the ones known only when it
    # runs (%H %I %K %f %t), left as RUNTIME_TOKENS' marks for hostcheck to fill in
    known_hosts_argv: tuple[str, ...]
    local_command: str | None  # LocalCommand, its tokens expanded (run with the user's shell)
    permit_local_command: bool  # PermitLocalCommand: whether LocalCommand runs at all
    proxy_command: str | None  # as written, tokens unexpanded (as ssh -G shows it); None: off
    proxy_jump: str | None  # as written; of ProxyJump and ProxyCommand, ssh takes the first
    config_file: str | None  # -F, as given (a jump host's keytool reads it too)
    local_forwards: tuple[str, ...]  # LocalForward lines as -L specs, in order
    remote_forwards: tuple[str, ...]  # RemoteForward lines as -R specs, in order
    dynamic_forwards: tuple[str, ...]  # DynamicForward lines as -D specs, in order
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
        identity_agent: str | None = None,
        known_hosts_command: str | None = None,
        known_hosts_argv: tuple[str, ...] = (),
        local_command: str | None = None,
        permit_local_command: bool = False,
        proxy_command: str | None = None,
        proxy_jump: str | None = None,
        config_file: str | None = None,
        server_alive_count_max: int = 3,
        local_forwards: tuple[str, ...] = (),
        remote_forwards: tuple[str, ...] = (),
        dynamic_forwards: tuple[str, ...] = (),
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
            identity_files_given=identity_files_given,
            warnings=warnings,
            host_key_alias=host_key_alias,
            identity_agent=identity_agent,
            known_hosts_command=known_hosts_command,
            known_hosts_argv=known_hosts_argv,
            local_command=local_command,
            permit_local_command=permit_local_command,
            proxy_command=proxy_command,
            proxy_jump=proxy_jump,
            config_file=config_file,
            local_forwards=local_forwards,
            remote_forwards=remote_forwards,
            dynamic_forwards=dynamic_forwards,
            gateway_ports=gateway_ports,
            exit_on_forward_failure=exit_on_forward_failure,
            session_type=session_type,
            fork_after_authentication=fork_after_authentication,
            certificate_files=certificate_files,
            ca_signature_algorithms=ca_signature_algorithms,
            revoked_host_keys=revoked_host_keys,
        )


# --- tokenising a line -------------------------------------------------------------


def split_args(text: str, where: str) -> list[str]:
    """Arguments as ssh splits them: whitespace, '"' or "'" quotes, backslash escapes,
    ``#`` at the start of an argument ends the line."""
    args: list[str] = []
    i = 0
    length = len(text)
    while i < length:
        while i < length and text[i] in " \t\r\n":
            i += 1
        if i >= length:
            break
        if text[i] == "#":
            break
        current: list[str] = []
        quote = ""
        while i < length:
            char = text[i]
            if quote:
                if char == quote:
                    quote = ""
                elif char == "\\" and i + 1 < length and text[i + 1] in (quote, "\\"):
                    i += 1
                    current.append(text[i])
                else:
                    current.append(char)
            elif char in "\"'":
                quote = char
            elif char == "\\" and i + 1 < length and text[i + 1] in "\\\"' ":
                i += 1
                current.append(text[i])
            elif char in " \t\r\n":
                break
            else:
                current.append(char)
            i += 1
        if quote:
            raise FormatError(f"{where}: unterminated quote")
        args.append("".join(current))
    return args


def quote_arg(value: str) -> str:
    """``value`` quoted so that split_args reads it back as one argument, exactly."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_line(line: str, where: str) -> tuple[str, list[str]] | None:
    """``Keyword args`` / ``Keyword=args`` -> (lowercase keyword, args); None if empty."""
    text = line.strip(" \t\r\n")
    if not text or text.startswith("#"):
        return None
    end = 0
    while end < len(text) and text[end] not in " \t=":
        end += 1
    keyword = text[:end].lower()
    rest = text[end:].lstrip(" \t")
    if rest.startswith("="):
        rest = rest[1:]
    if not keyword:
        raise FormatError(f"{where}: missing keyword")
    if keyword in _RAW:
        # the rest of the line as written, quotes and all: a shell reads it later
        return keyword, [rest] if rest else []
    return keyword, split_args(rest, where)


#: keywords whose value is the rest of the line, untouched (as ssh keeps them)
_RAW = frozenset({"proxycommand", "remotecommand", "knownhostscommand", "localcommand"})


# --- values --------------------------------------------------------------------------

_TIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str, where: str) -> int:
    """sshd_config(5) TIME FORMATS: ``90``, ``1m30s``, ``2h``; seconds. (Read by hand:
    this runs before ``keytool exec`` connects, and loading re would delay that.)"""
    total = 0
    digits = ""
    for char in value:
        if "0" <= char <= "9":
            digits += char
        elif digits and char.lower() in _TIME_UNITS:
            total += int(digits) * _TIME_UNITS[char.lower()]
            digits = ""
        else:
            raise FormatError(f"{where}: invalid time value {value!r}")
    if not value:
        raise FormatError(f"{where}: invalid time value {value!r}")
    total += int(digits) if digits else 0
    if total > 2**31 - 1:
        raise FormatError(f"{where}: time value {value!r} is too large")
    return total


def _flag(value: str, where: str) -> bool:
    lowered = value.lower()
    if lowered in ("yes", "true"):
        return True
    if lowered in ("no", "false"):
        return False
    raise FormatError(f"{where}: expected yes or no, not {value!r}")


def _strict(value: str, where: str) -> str:
    lowered = value.lower()
    if lowered in ("yes", "true"):
        return "yes"
    if lowered in ("no", "false", "off"):
        return "no"
    if lowered in ("ask", "accept-new"):
        return lowered
    raise FormatError(
        f"{where}: StrictHostKeyChecking must be yes, ask, accept-new or no, not {value!r}"
    )


def _port(value: str, where: str) -> int:
    from keytool.ports import a2port

    port = a2port(value)  # a service name too, as ssh takes it
    if port is None or port == 0:
        raise FormatError(f"{where}: Bad port '{value}'.")  # ssh's words
    return port


def _count(value: str, where: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise FormatError(f"{where}: expected a number, not {value!r}")
    return int(value)


#: ssh_config(5) LogLevel values, quietest first
LOG_LEVELS = ("QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3")


def _log_level(value: str, where: str) -> str:
    level = value.upper()
    if level == "SILENT":  # QUIET's other name (the one ssh -G shows)
        return "QUIET"
    if level not in LOG_LEVELS:
        raise FormatError(f"{where}: unknown LogLevel {value!r}")
    return level


def _attempts(value: str, where: str) -> int:
    count = _count(value, where)
    if count < 1:  # ssh: "Invalid number of ConnectionAttempts"
        raise FormatError(f"{where}: ConnectionAttempts must be at least 1")
    return count


def _one_of(keyword: str, *choices: str) -> Callable[[str, str], str]:
    """A converter taking one of ``choices`` (any case), as written in lower case."""

    def convert(value: str, where: str) -> str:
        lowered = value.lower()
        if lowered not in choices:
            listed = f"{', '.join(choices[:-1])} or {choices[-1]}"
            raise FormatError(f"{where}: {keyword} must be {listed}, not {value!r}")
        return lowered

    return convert


_fingerprint_hash = _one_of("FingerprintHash", "md5", "sha1", "sha256", "sha384", "sha512")
_address_family = _one_of("AddressFamily", "any", "inet", "inet6")
_session_type = _one_of("SessionType", "default", "none", "subsystem")


def _request_tty(value: str, where: str) -> str:
    lowered = value.lower()
    words = {"yes": "yes", "true": "yes", "no": "no", "false": "no", "force": "force"}
    if lowered == "auto" or lowered in words:
        return words.get(lowered, "auto")
    raise FormatError(f"{where}: RequestTTY must be yes, no, force or auto, not {value!r}")


def escape_char(value: str, where: str) -> int | str:
    """EscapeChar / ssh -e: "none", one character, or ``^X`` (a control character);
    "none" stays a string."""
    if value == "none":
        return "none"
    if len(value) == 1 and ord(value) < 256:
        return ord(value)
    if len(value) == 2 and value[0] == "^" and 64 <= ord(value[1]) < 128:
        return ord(value[1]) & 31
    raise FormatError(f"{where}: Bad escape character {value!r}")


def _octal_mask(value: str, where: str) -> int:
    if not value or len(value) > 4 or any(c not in "01234567" for c in value):
        raise FormatError(f"{where}: expected an octal mask such as 0177, not {value!r}")
    return int(value, 8)


def _yes_no_ask(value: str, where: str) -> str:
    lowered = value.lower()
    if lowered in ("yes", "true"):
        return "yes"
    if lowered in ("no", "false"):
        return "no"
    if lowered == "ask":
        return "ask"
    raise FormatError(f"{where}: expected yes, no or ask, not {value!r}")


def _control_master(value: str, where: str) -> str:
    """ControlMaster, any case: yes (or true), no (or false), ask, auto or autoask."""
    lowered = value.lower()
    words = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}
    if lowered in ("ask", "auto", "autoask") or lowered in words:
        return words.get(lowered, lowered)
    raise FormatError(
        f"{where}: ControlMaster must be yes, no, ask, auto or autoask, not {value!r}"
    )


def _control_path(value: str, where: str) -> str:
    """ControlPath as written (expanded once the host is known); ssh refuses it empty."""
    if not value:
        raise FormatError(f"{where}: ControlPath needs a value")
    return value


def _control_persist(value: str, where: str) -> int | None:
    """ControlPersist: None for no (or false), 0 for yes (or true), else a time in
    seconds, "0" being yes again. The words are lower case only, as ssh reads them."""
    if value in ("no", "false"):
        return None
    if value in ("yes", "true"):
        return 0
    try:
        return parse_time(value, where)
    except FormatError:
        raise FormatError(
            f"{where}: ControlPersist must be yes, no or a time such as 10m, not {value!r}"
        ) from None


_FLAG_WORDS = ("yes", "no", "true", "false")


def _agent_path(value: str, where: str) -> str:
    """ForwardAgent's socket or IdentityAgent, checked as ssh checks them when it
    reads them: every ``${NAME}`` set, and a legacy ``$NAME`` a valid name alone."""
    at = value.find("${")
    while at >= 0:
        end = value.find("}", at + 2)
        if end < 0 or value[at + 2 : end] not in os.environ:  # ssh's words
            raise FormatError(f"{where}: Invalid environment expansion {value}.")
        at = value.find("${", end)
    if value.startswith("$") and not value.startswith("${") and not _env_name(value[1:]):
        raise FormatError(f"{where}: Invalid environment name {value}.")  # ssh's words
    return value


def _proxy_jump(value: str, where: str) -> str:
    """ProxyJump, every hop checked when read, as ssh does; "none" (any case) kept so."""
    if value.lower() == "none":
        return "none"
    for hop in value.split(","):
        try:
            parse_jump_host(hop)
        except FormatError:
            raise FormatError(f'{where}: Invalid ProxyJump "{value}"') from None  # ssh's words
    return value


def _pubkey(value: str, where: str) -> bool:
    # OpenSSH 8.9+ also takes unbound/host-bound here: both mean "on"
    if value.lower() in ("unbound", "host-bound"):
        return True
    return _flag(value, where)


#: IPQoS's names of TOS values, as ssh knows them (its misc.c order: the first name of
#: a value is the one ssh -G shows); None is "none", leave the socket's as it is
IP_QOS_NAMES: tuple[tuple[str, int | None], ...] = (
    ("none", None),
    ("af11", 0x28), ("af12", 0x30), ("af13", 0x38), ("af21", 0x48), ("af22", 0x50),
    ("af23", 0x58), ("af31", 0x68), ("af32", 0x70), ("af33", 0x78), ("af41", 0x88),
    ("af42", 0x90), ("af43", 0x98), ("cs0", 0x00), ("cs1", 0x20), ("cs2", 0x40),
    ("cs3", 0x60), ("cs4", 0x80), ("cs5", 0xA0), ("cs6", 0xC0), ("cs7", 0xE0),
    ("ef", 0xB8), ("le", 0x04), ("lowdelay", 0x10), ("throughput", 0x08),
    ("reliability", 0x04),
)  # fmt: skip


def _ip_qos_one(value: str, where: str) -> int | None:
    for name, tos in IP_QOS_NAMES:
        if value.lower() == name:
            return tos
    try:
        number = int(value, 0)
    except ValueError:
        number = -1
    if not 0 <= number <= 255:
        raise FormatError(f"{where}: Bad IPQoS value: {value}")  # ssh's words
    return number


def _ip_qos(args: list[str], where: str) -> tuple[int | None, int | None]:
    """IPQoS INTERACTIVE [BULK]: one value serves both."""
    if not args or len(args) > 2:
        raise FormatError(f"{where}: IPQoS takes one or two values")
    interactive = _ip_qos_one(args[0], where)
    return interactive, _ip_qos_one(args[1], where) if len(args) == 2 else interactive


def _ip_qos_value(found: tuple[object, str] | None) -> tuple[int | None, int | None]:
    value = found[0] if found is not None else None
    if isinstance(value, tuple) and len(value) == 2:
        return value[0], value[1]
    return 0x48, 0x20  # upstream OpenSSH's af21 and cs1


def ip_qos_name(tos: int | None) -> str:
    """ssh -G's word for a TOS value (its first name, else 0xNN)."""
    for name, value in IP_QOS_NAMES:
        if value == tos:
            return name
    return f"0x{tos:02x}"


def _rsa_size(value: str, where: str) -> int:
    """RequiredRSASize: bits, at least OpenSSH's floor of 1024."""
    if not value.isdigit() or not 1024 <= int(value) <= 16384:
        raise FormatError(f"{where}: RequiredRSASize {value!r} is not a size from 1024 to 16384")
    return int(value)


# keyword -> (how many arguments: 1 or "many", converter or None for a plain string)
_Converter = Callable[[str, str], object]
_ONE: dict[str, _Converter | None] = {
    "hostname": None,
    "user": None,
    "port": _port,
    "identitiesonly": _flag,
    "stricthostkeychecking": _strict,
    "connecttimeout": parse_time,
    "passwordauthentication": _flag,
    "pubkeyauthentication": _pubkey,
    "kbdinteractiveauthentication": _flag,
    "batchmode": _flag,
    "visualhostkey": _flag,
    "loglevel": _log_level,
    "fingerprinthash": _fingerprint_hash,
    "updatehostkeys": _yes_no_ask,
    "streamlocalbindmask": _octal_mask,
    "streamlocalbindunlink": _flag,
    "requesttty": _request_tty,
    "forwardagent": lambda v, w: v if v.lower() in _FLAG_WORDS else _agent_path(v, w),
    "stdinnull": _flag,
    "requiredrsasize": _rsa_size,
    "tcpkeepalive": _flag,
    "nohostauthenticationforlocalhost": _flag,
    "forwardx11": _flag,
    "forwardx11trusted": _flag,
    "forwardx11timeout": parse_time,
    "xauthlocation": None,
    "compression": _flag,
    "addressfamily": _address_family,
    "bindaddress": None,
    "bindinterface": None,
    "escapechar": escape_char,
    "enableescapecommandline": _flag,
    "verifyhostkeydns": _yes_no_ask,
    "connectionattempts": _attempts,
    "hashknownhosts": _flag,
    "preferredauthentications": None,
    "numberofpasswordprompts": _count,
    "kexalgorithms": lambda v, w: _algorithms(v, w, "kex", "Bad SSH2 KexAlgorithms '{}'."),
    "ciphers": lambda v, w: _algorithms(v, w, "cipher", "Bad SSH2 cipher spec '{}'."),
    "macs": lambda v, w: _algorithms(v, w, "mac", "Bad SSH2 MAC spec '{}'."),
    "hostkeyalgorithms": lambda v, w: _algorithms(v, w, "key-sig", "Bad key types '{}'."),
    "pubkeyacceptedalgorithms": lambda v, w: _algorithms(v, w, "key-sig", "Bad key types '{}'."),
    "casignaturealgorithms": lambda v, w: _algorithms(v, w, "key-sig", "Bad key types '{}'."),
    "serveraliveinterval": parse_time,
    "serveralivecountmax": _count,
    "hostkeyalias": None,
    "identityagent": lambda v, w: _agent_path(v, w),
    "knownhostscommand": None,
    "localcommand": None,
    "permitlocalcommand": _flag,
    "proxycommand": None,
    "remotecommand": None,
    "proxyjump": lambda v, w: _proxy_jump(v, w),
    "gatewayports": _flag,
    "exitonforwardfailure": _flag,
    "clearallforwardings": _flag,
    "sessiontype": _session_type,
    "forkafterauthentication": _flag,
    "controlmaster": _control_master,
    "controlpath": _control_path,
    "controlpersist": _control_persist,
}
_MANY = ("userknownhostsfile", "globalknownhostsfile")
_FORWARDS = {
    "localforward": "LocalForward",
    "remoteforward": "RemoteForward",
    "dynamicforward": "DynamicForward",
}
_ALIASES = {
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "skeyauthentication": "kbdinteractiveauthentication",
    "tisauthentication": "kbdinteractiveauthentication",
    "dsaauthentication": "pubkeyauthentication",
    "identityfile2": "identityfile",
    "keepalive": "tcpkeepalive",
    "hostbasedkeytypes": "hostbasedacceptedalgorithms",
    "smartcarddevice": "pkcs11provider",
}
#: keywords ssh 9.2 takes and ignores, saying so only at debug level
_DEPRECATED = frozenset(
    {
        "cipher",
        "fallbacktorsh",
        "globalknownhostsfile2",
        "rhostsauthentication",
        "userknownhostsfile2",
        "useroaming",
        "usersh",
        "useprivilegedport",
        "useblacklistedkeys",  # Debian's
    }
)
#: keywords ssh 9.2 takes and ignores with an error-level notice (not a bad line)
_UNSUPPORTED = frozenset(
    {
        "afstokenpassing",
        "kerberosauthentication",
        "kerberostgtpassing",
        "rsaauthentication",
        "rhostsrsaauthentication",
        "compressionlevel",
    }
)

#: OpenSSH keywords keytool does not use; these change where or how ssh connects, so
#: ignoring them is worth a warning
_UNSUPPORTED_WARN = frozenset(
    {
        "canonicalizehostname",
        "checkhostip",
        "pkcs11provider",
    }
)
#: the rest of OpenSSH 9's client keywords: accepted and ignored without a word
_OPENSSH_OTHER = frozenset(
    [
        "canonicaldomains",
        "canonicalizefallbacklocal",
        "canonicalizemaxdots",
        "canonicalizepermittedcnames",
        "enablesshkeysign",
        "gssapiauthentication",
        "gssapiclientidentity",
        "gssapidelegatecredentials",
        "gssapikeyexchange",
        "gssapirenewalforcesrekey",
        "gssapiserveridentity",
        "gssapitrustdns",
        "gssapikexalgorithms",
        "hostbasedacceptedalgorithms",
        "hostbasedkeytypes",
        "hostbasedauthentication",
        "kbdinteractivedevices",
        "logverbose",
        "proxyusefdpass",
        "securitykeyprovider",
        "syslogfacility",
        "tunnel",
        "tunneldevice",
        "obscurekeystroketiming",
        "channeltimeout",
        "tag",
        "protocol",
    ]
)


#: names OpenSSH 9.2 knows that keytool does not implement: a list naming them is taken
#: as ssh takes it (a server that picks one ends the connection with one line); an
#: unknown name is refused as by ssh
OPENSSH_ONLY_ALGORITHMS = {
    "cipher": ("3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc"),
    "mac": (
        "hmac-md5", "hmac-md5-96", "hmac-md5-96-etm@openssh.com", "hmac-md5-etm@openssh.com",
        "hmac-sha1", "hmac-sha1-96", "hmac-sha1-96-etm@openssh.com", "hmac-sha1-etm@openssh.com",
        "umac-128-etm@openssh.com", "umac-128@openssh.com", "umac-64-etm@openssh.com",
        "umac-64@openssh.com",
    ),
    "kex": (
        "diffie-hellman-group-exchange-sha1", "diffie-hellman-group1-sha1",
        "diffie-hellman-group14-sha1", "diffie-hellman-group18-sha512",
        "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com",
    ),
    "key-sig": (
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
        "sk-ssh-ed25519-cert-v01@openssh.com", "sk-ssh-ed25519@openssh.com", "ssh-dss",
        "ssh-dss-cert-v01@openssh.com", "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    ),
}  # fmt: skip


def _algorithms(value: str, where: str, kind: str, message: str) -> str:
    """An algorithm list as ssh checks it when it reads it: after a ``+`` or ``^``, or
    alone, every name one ssh knows (wildcards only after ``-``, which may name anything)."""
    try:
        check_algorithms(value, kind)
    except FormatError:
        raise FormatError(f"{where}: {message.format(value)}") from None
    return value


def check_algorithms(value: str, kind: str) -> None:
    """FormatError unless every name of the list is one ssh knows (``kind`` as ``-Q``
    names it); a ``-`` list may name anything."""
    if value.startswith("-"):
        return
    from keytool.transport.query import query

    known = {*query(kind), *OPENSSH_ONLY_ALGORITHMS[kind]}
    names = value[1:] if value[:1] in "+^" else value
    unknown = [name for name in names.split(",") if name and name not in known]
    if unknown:
        raise FormatError(f"unknown {kind} name {unknown[0]!r}")


def _permit_remote_open(args: list[str], where: str) -> tuple[str, ...]:
    """PermitRemoteOpen: "any" (kept as ()), "none", or host:port entries, as ssh
    takes them (any and none alone)."""
    from keytool.forwardspec import split_permit

    if not args:
        raise FormatError(f"{where}: missing PermitRemoteOpen specification")
    lowered = [a.lower() for a in args]
    if "any" in lowered or "none" in lowered:
        if len(args) > 1:
            raise FormatError(f"{where}: PermitRemoteOpen takes any or none alone")
        return () if lowered[0] == "any" else ("none",)
    for entry in args:
        try:
            split_permit(entry)
        except FormatError as exc:
            raise FormatError(f"{where}: {exc}") from None
    return tuple(args)


# --- tokens and ~ ---------------------------------------------------------------------


#: KnownHostsCommand's tokens known only when it runs: marks (NUL cannot be in a
#: config line) that stand for them until then
RUNTIME_TOKENS = {name: f"\0{name}" for name in "HIKft"}


def expand_tokens(
    value: str, tokens: dict[str, str], where: str, env: Mapping[str, str] | None = None
) -> str:
    """ssh_config TOKENS: ``%h`` and friends from ``tokens``; ``%%`` is a percent sign.
    With ``env``, also ENVIRONMENT VARIABLES: ``${NAME}`` is its value (one pass, as
    ssh: what a variable holds is not expanded again)."""
    if "%" not in value and (env is None or "${" not in value):
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if env is not None and value.startswith("${", i):
            end = value.find("}", i + 2)
            if end < 0:
                raise FormatError(f"{where}: unterminated ${{ in {value!r}")
            name = value[i + 2 : end]
            if name not in env:
                raise FormatError(f"{where}: environment variable {name!r} has no value")
            out.append(env[name])
            i = end + 1
            continue
        if char != "%":
            out.append(char)
            i += 1
            continue
        if i + 1 >= len(value):
            raise FormatError(f"{where}: '%' at the end of {value!r}")
        token = value[i + 1]
        if token == "%":
            out.append("%")
        elif token in tokens:
            out.append(tokens[token])
        else:
            raise FormatError(f"{where}: unknown token %{token} in {value!r}")
        i += 2
    return "".join(out)


def _env_name(name: str) -> bool:
    """An environment variable's name as ssh accepts one: letters, digits and _."""
    return name != "" and name.isascii() and all(c.isalnum() or c == "_" for c in name)


def tilde_expand(value: str, home: str, where: str) -> str:
    """A leading ``~`` as ssh's tilde_expand_filename has it: ``~``, ``~/`` and
    ``~/path`` are under ``home``, ``~user`` and ``~user/path`` under that user's home
    directory, with one slash after the directory (``~`` alone is ``home/``)."""
    if not value.startswith("~"):
        return value
    user, _, path = value[1:].partition("/")
    directory = home
    if user:
        try:
            directory = pwd.getpwnam(user).pw_dir
        except (KeyError, ValueError):
            raise FormatError(f"{where}: no such user {user!r} in {value!r}") from None
    separator = "" if directory.endswith("/") else "/"
    return directory + separator + path.lstrip("/")


@functools.cache
def own_account() -> pwd.struct_passwd:
    """This process's entry in the password database, looked up once: a fleet's hosts
    would each read the database again, and with no file descriptor free the lookup
    fails (pwd then says "not found"). No entry is ssh's error."""
    try:
        return pwd.getpwuid(os.getuid())
    except KeyError:
        raise KeytoolError(f"No user exists for uid {os.getuid()}") from None


def account_home() -> str:
    """The home directory in the password database: the one ssh's ``~`` names (its
    config, known_hosts, default identities), whatever $HOME says."""
    return own_account().pw_dir


def expand_home(value: str, home: str) -> str:
    """A leading ``~`` or ``~/`` is the user's home (``~otheruser`` is left as written)."""
    if value == "~":
        return home
    if value.startswith("~/"):
        return home.rstrip("/") + value[1:]
    return value


# --- resolving ------------------------------------------------------------------------


class _State:
    """Mutable while reading; frozen into ResolvedConfig at the end."""

    __slots__ = (
        "final",
        "host",
        "identity_files",
        "ignore_unknown",
        "include",
        "local",
        "notices",
        "values",
        "wants_final",
        "warnings",
    )
    host: str
    include: IncludeReader | None
    values: dict[str, tuple[object, str]]
    identity_files: list[tuple[str, str]]
    ignore_unknown: list[str]
    warnings: list[str]
    notices: list[str]  # what ssh says at its default log level (not a bad line)
    #: the local user, home, uid and host name (Match localuser, exec's tokens)
    local: tuple[str, str, int | None, str]
    final: bool  # the final pass (Match final)
    wants_final: bool  # a Match line asked for one

    def __init__(
        self,
        host: str,
        include: IncludeReader | None,
        values: dict[str, tuple[object, str]],
        identity_files: list[tuple[str, str]],
        ignore_unknown: list[str],
        warnings: list[str],
    ) -> None:
        self.host = host
        self.include = include
        self.values = values
        self.identity_files = identity_files
        self.ignore_unknown = ignore_unknown
        self.warnings = warnings
        self.notices = []
        self.local = ("", "", None, "")
        self.final = False
        self.wants_final = False


def _lines(source: ConfigSource) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(source.text.split("\n"), start=1):
        yield f"{source.name} line {number}", line


def _apply(state: _State, keyword: str, args: list[str], where: str, strict: bool) -> None:
    """One active line: first value wins (IdentityFile accumulates)."""
    keyword = _ALIASES.get(keyword, keyword)
    if keyword in _ONE:
        if not args:
            raise FormatError(f"{where}: {keyword} needs a value")
        if len(args) > 1:  # ssh's words
            raise FormatError(f"{where}: keyword {keyword} extra arguments at end of line")
        convert = _ONE[keyword]
        value: object = args[0] if convert is None else convert(args[0], where)
        state.values.setdefault(keyword, (value, where))
    elif keyword == "revokedhostkeys":
        _revoked_host_keys(state, args, where)
    elif keyword == "addkeystoagent":
        state.values.setdefault(keyword, (_add_keys_to_agent(args, where), where))
    elif keyword == "rekeylimit":
        state.values.setdefault(keyword, (_rekey_limit(args, where), where))
    elif keyword == "setenv":
        _set_env(state, args, where)
    elif keyword == "sendenv":
        _send_env(state, args, where)
    elif keyword in _MANY:
        if not args:
            raise FormatError(f"{where}: {keyword} needs a value")
        state.values.setdefault(keyword, (tuple(args), where))
    elif keyword == "ipqos":
        state.values.setdefault(keyword, (_ip_qos(args, where), where))
    elif keyword == "permitremoteopen":
        state.values.setdefault(keyword, (_permit_remote_open(args, where), where))
    elif keyword == "identityfile":
        if len(args) != 1:
            raise FormatError(f"{where}: IdentityFile takes one path")
        if all(raw != args[0] for raw, _ in state.identity_files):
            state.identity_files.append((args[0], where))
    elif keyword == "certificatefile":
        # accumulates, as IdentityFile
        if len(args) != 1:
            raise FormatError(f"{where}: CertificateFile takes one path")
        listed = state.values.get(keyword, ((), where))[0]
        assert isinstance(listed, tuple)
        if args[0] not in listed:
            state.values[keyword] = ((*listed, args[0]), where)
    elif keyword in _FORWARDS:
        # accumulate, as IdentityFile; each kept as one -L / -R / -D spec
        from keytool.forwardspec import parse_forward_option

        if keyword == "localforward" and len(args) == 1:  # ssh's words
            raise FormatError(f"{where}: Missing target argument.")
        taken = 1 if keyword == "dynamicforward" else 2
        try:
            spec = parse_forward_option(_FORWARDS[keyword], args[:taken])
        except FormatError:
            raise FormatError(f"{where}: Bad forwarding specification.") from None
        if len(args) > taken:  # ssh's words
            raise FormatError(f"{where}: keyword {keyword} extra arguments at end of line")
        known = state.values.get(keyword, ((), where))[0]
        assert isinstance(known, tuple)
        if spec not in known:
            state.values[keyword] = ((*known, spec), where)
    elif keyword == "ignoreunknown":
        if "ignoreunknown" not in state.values:
            state.values["ignoreunknown"] = ((), where)
            state.ignore_unknown.extend(",".join(args).split(","))
    elif keyword in _UNSUPPORTED_WARN:
        state.warnings.append(f"{where}: {keyword} is not supported by keytool; ignored")
    elif keyword in _OPENSSH_OTHER:
        pass
    elif keyword in _DEPRECATED:  # ssh's words, at its debug level
        state.warnings.append(f'{where}: Deprecated option "{keyword}"')
    elif keyword in _UNSUPPORTED:  # ssh's words, at its error level: not a bad line
        state.notices.append(f'{_ssh_where(where)}: Unsupported option "{keyword}"')
    elif strict:
        raise FormatError(f"{where}: unknown option {keyword!r}")
    elif any(match_pattern(keyword, p.lower()) for p in state.ignore_unknown if p):
        state.warnings.append(f'{where}: Ignored unknown option "{keyword}"')
    else:  # ssh's words (a colon after the file's name, this once)
        name, _, number = where.rpartition(" line ")
        raise FormatError(f"{name}: line {number}: Bad configuration option: {keyword}")


def _ssh_where(where: str) -> str:
    """ssh's "FILE line N" for a -o option too ("command-line line 0")."""
    return "command-line line 0" if where.startswith("command-line option ") else where


def _add_keys_to_agent(args: list[str], where: str) -> tuple[str, int | None]:
    """AddKeysToAgent yes|no|ask|confirm, "confirm TIME", or a TIME alone (yes, for that
    long): the mode and the lifetime."""
    modes = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}
    modes.update(ask="ask", confirm="confirm")
    unsupported = FormatError(f"{where}: unsupported option")  # ssh's words
    if not args or len(args) > 2:
        raise unsupported
    mode = modes.get(args[0].lower())
    if len(args) == 2:
        if mode != "confirm":
            raise unsupported
        try:
            return mode, parse_time(args[1], where)
        except FormatError:
            raise FormatError(f"{where}: invalid time value.") from None
    if mode is None:
        try:
            return "yes", parse_time(args[0], where)
        except FormatError:
            raise unsupported from None
    return mode, None


_SCALES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _rekey_limit(args: list[str], where: str) -> tuple[int, int]:
    """RekeyLimit BYTES [INTERVAL]: bytes with an optional K, M, G or T (powers of
    1024) or "default" (0: the cipher's own limit); the interval a time, or "none"."""
    if not args or len(args) > 2:
        raise FormatError(f"{where}: RekeyLimit takes an amount of data and a time")
    amount = args[0].lower()
    if amount == "default":
        limit = 0
    else:
        digits, unit = amount.rstrip("kmgt"), amount[len(amount.rstrip("kmgt")) :]
        if not digits.isdigit() or len(unit) > 1:  # ssh's words
            raise FormatError(f"{where}: Bad number '{args[0]}': Invalid argument")
        limit = int(digits) * _SCALES[unit]
        if 0 < limit < 16:
            raise FormatError(f"{where}: RekeyLimit too small")
    seconds = 0
    if len(args) == 2 and args[1] != "none":
        seconds = parse_time(args[1], where)
    return limit, seconds


def _rekey_limit_value(found: tuple[object, str] | None) -> tuple[int, int]:
    value = found[0] if found is not None else None
    if isinstance(value, tuple) and len(value) == 2:
        return int(value[0]), int(value[1])
    return 0, 0


def _add_keys_value(found: tuple[object, str] | None) -> tuple[str, int | None]:
    value = found[0] if found is not None else None
    if not isinstance(value, tuple) or len(value) != 2:
        return "no", None
    lifetime = value[1]
    return str(value[0]), lifetime if isinstance(lifetime, int) else None


def _set_env(state: _State, args: list[str], where: str) -> None:
    """SetEnv NAME=VALUE...: the first line wins whole, as in ssh (and within it the
    first value of a name)."""
    if not args:
        raise FormatError(f"{where}: SetEnv needs NAME=VALUE")
    found: dict[str, str] = {}
    for arg in args:
        name, eq, _ = arg.partition("=")
        if not eq:
            raise FormatError(f"{where}: Invalid SetEnv.")  # ssh's words
        found.setdefault(name, arg)
    state.values.setdefault("setenv", (tuple(found.values()), where))


def _send_env(state: _State, args: list[str], where: str) -> None:
    """SendEnv PATTERN...: patterns of our variables to send; they accumulate over the
    lines, and "-PATTERN" takes out those listed so far that it matches, as in ssh."""
    if not args:
        raise FormatError(f"{where}: SendEnv needs a pattern")
    listed = state.values.get("sendenv", ((), where))[0]
    assert isinstance(listed, tuple)
    patterns = list(listed)
    for arg in args:
        if arg.startswith("-"):
            patterns = [p for p in patterns if not match_pattern(p, arg[1:])]
        elif arg not in patterns:
            patterns.append(arg)
    state.values["sendenv"] = (tuple(patterns), where)


def _revoked_host_keys(state: _State, args: list[str], where: str) -> None:
    """RevokedHostKeys FILE...: the first line wins, as for the known hosts files;
    "none" (alone) means no file, overriding the lines after it."""
    if not args:
        raise FormatError(f"{where}: RevokedHostKeys needs a file")
    if any(arg == "" for arg in args):
        raise FormatError(f"{where}: RevokedHostKeys has an empty file name")
    if any(arg.lower() == "none" for arg in args):
        if len(args) > 1:
            raise FormatError(f'{where}: RevokedHostKeys "none" must stand alone')
        args = []
    state.values.setdefault("revokedhostkeys", (tuple(args), where))


def _read(
    state: _State, source: ConfigSource, active: bool, depth: int, never: bool = False
) -> None:
    """One file, every line parsed and checked, as ssh does, whether its block applies
    or not; a bad line is counted and the file refused at its end with them all.
    ``never``: a file included from a block that does not apply, read for its errors."""
    bad: list[str] = []
    for where, line in _lines(source):
        try:
            active = _read_line(state, source, line, where, active, depth, never)
        except ConfigFatal:
            raise
        except FormatError as exc:
            bad.append(str(exc))
    if bad:  # ssh's words
        bad.append(f"{source.name}: terminating, {len(bad)} bad configuration options")
        raise ConfigFatal("\n".join(bad))


def _read_line(
    state: _State, source: ConfigSource, line: str, where: str, active: bool, depth: int,
    never: bool,
) -> bool:  # fmt: skip
    """One line of a file; whether the lines after it apply."""
    parsed = split_line(line, where)
    if parsed is None:
        return active
    keyword, args = parsed
    if not args:  # ssh's words, whatever the keyword
        raise FormatError(f'{where}: no argument after keyword "{keyword}"')
    if keyword == "host":
        if any(arg == "" for arg in args):
            raise FormatError(f"{where}: keyword host empty argument")
        # in the final pass, the host name (HostName, lower case) is what Host matches
        return not never and match_any(
            _final_host(state, where) if state.final else state.host, args
        )
    if keyword == "match":
        found = _match(state, args, where)
        return found and not never
    if keyword == "include":
        _include(state, args, source.system, where, depth, never or not active)
        return active
    if active:
        _apply(state, keyword, args, where, strict=False)
    else:
        # checked all the same, as ssh does: a bad line in another host's block
        # refuses the file
        scratch = _State(state.host, None, {}, [], list(state.ignore_unknown), [])
        _apply(scratch, keyword, args, where, strict=False)
    return active


def _percent_c(local_hostname: str, host: str, port: object, user: object) -> str:
    """%C: the SHA-1 of the local host name, host, port and user, hashed as their bytes
    (those that are not UTF-8 too), as ssh hashes them."""
    import hashlib  # only for %C: otherwise it would load before ``keytool exec`` connects

    seed = f"{local_hostname}{host}{port}{user}"
    return hashlib.sha1(seed.encode("utf-8", "surrogateescape")).hexdigest()


def _final_host(state: _State, where: str) -> str:
    """The host name as ssh has it in its final pass: HostName (%h expanded) or the
    name given, in lower case."""
    raw = state.values.get("hostname", (None, ""))[0]
    host = expand_tokens(raw, {"h": state.host}, where) if isinstance(raw, str) else state.host
    return ascii_lower(host)


def _match(state: _State, args: list[str], where: str) -> bool:
    """A Match line: whether its block applies (and whether it asks for a final pass)."""
    from keytool.sshmatch import MatchContext, matches

    local_user, home, uid, local_hostname = state.local
    given = state.host
    host = given
    raw = state.values.get("hostname", (None, ""))[0]
    if isinstance(raw, str):
        host = expand_tokens(raw, {"h": given}, where)
    if state.final:
        host = ascii_lower(host)  # as ssh has it by then
    user = state.values.get("user", (local_user, ""))[0]
    context = MatchContext(given, host, str(user), local_user, state.final)
    port = state.values.get("port", (DEFAULT_PORT, ""))[0]

    def run(command: str) -> bool:
        import subprocess

        tokens = {"L": local_hostname.split(".")[0], "d": home, "h": host, "l": local_hostname}
        tokens.update(n=given, p=str(port), r=str(user), u=local_user)
        alias = state.values.get("hostkeyalias", (host, ""))[0]
        tokens["k"] = str(alias)
        if uid is not None:
            tokens["i"] = str(uid)
        tokens["C"] = _percent_c(local_hostname, host, port, user)
        expanded = expand_tokens(command, tokens, where)
        shell = os.environ.get("SHELL") or "/bin/sh"
        try:
            done = subprocess.run(
                [shell, "-c", expanded], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
            )
        except OSError as exc:
            raise FormatError(f"{where}: Match exec {expanded!r}: {exc.strerror}") from None
        return done.returncode == 0

    found, wants_final = matches(args, where, context, run)
    state.wants_final = state.wants_final or wants_final
    return found


def _include(
    state: _State, patterns: list[str], system: bool, where: str, depth: int, never: bool
) -> None:
    if depth >= MAX_INCLUDE_DEPTH:
        raise ConfigFatal("Too many recursive configuration includes")  # ssh's words
    for pattern in patterns:
        if pattern == "":
            raise FormatError(f"{where}: keyword include empty argument")
        if pattern.startswith("~") and system:  # ssh's words
            raise FormatError(f"{where}: bad include path {pattern}.")
    if state.include is None:
        state.warnings.append(f"{where}: Include not followed")
        return
    for pattern in patterns:
        for included in state.include(pattern, system):
            # the included file starts in the including block's state; its own Host
            # lines change that only inside it. From a block that does not apply, it
            # is read all the same (and checked), nothing in it applying
            _read(state, included, not never, depth + 1, never)


def resolve(
    sources: str | Sequence[ConfigSource],
    host: str,
    overrides: Sequence[str] = (),
    *,
    user: str,
    home: str,
    uid: int | None = None,
    local_hostname: str = "",
    include: IncludeReader | None = None,
) -> ResolvedConfig:
    """Resolve the options for ``host`` (as typed) from config texts; no file access.

    ``overrides`` are ``-o`` options (``"Port=2222"``, ``"IdentityFile ~/k"``), and the
    client turns ``-p``, ``-l`` and ``-i`` into such lines too; they win over files.
    ``user`` and ``home`` are the local user's (for defaults, ``~`` and ``%u``/``%d``);
    ``include`` reads Include'd files (the loader passes one; without it, Include is
    skipped with a warning). Raises FormatError for a bad value or a bad ``-o``.
    """
    if isinstance(sources, str):
        sources = [ConfigSource("config", sources)]
    state = _State(host, include, {}, [], [], [])
    state.local = (user, home, uid, local_hostname)
    for number, option in enumerate(overrides, start=1):
        where = f"command-line option {number}"
        parsed = split_line(option, where)
        if parsed is None:
            raise FormatError(f"{where}: empty option")
        keyword, args = parsed
        if keyword in ("host", "match", "include"):
            raise FormatError(f"{where}: {keyword} is not allowed in -o")
        _apply(state, keyword, args, where, strict=True)
    for source in sources:
        _read(state, source, True, 0)
    if state.wants_final:
        # as ssh: the files are read again (what is set stays set) with "final" true
        state.final = True
        for source in sources:
            _read(state, source, True, 0)
        state.warnings = list(dict.fromkeys(state.warnings))
    return _finish(state, user, home, uid, local_hostname)


def _finish(
    state: _State, local_user: str, home: str, uid: int | None, local_hostname: str
) -> ResolvedConfig:
    values = state.values

    def where(keyword: str) -> str:
        return values[keyword][1] if keyword in values else "default"

    def text(keyword: str, default: str) -> str:
        value = values.get(keyword, (default, ""))[0]
        return value if isinstance(value, str) else default

    def number(keyword: str, default: int) -> int:
        value = values.get(keyword, (default, ""))[0]
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    def flag(keyword: str, default: bool) -> bool:
        value = values.get(keyword, (default, ""))[0]
        return value if isinstance(value, bool) else default

    def paths(keyword: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = values.get(keyword, (default, ""))[0]
        return tuple(str(v) for v in value) if isinstance(value, tuple) else default

    def optional(keyword: str) -> str | None:
        return text(keyword, "") or None

    original = state.host
    # only a HostName line is expanded: a typed host name is taken as it is
    hostname = original
    if "hostname" in values:
        hostname = expand_tokens(text("hostname", original), {"h": original}, where("hostname"))
    hostname = ascii_lower(hostname)
    remote_user = text("user", local_user)
    port = number("port", DEFAULT_PORT)
    tokens = {
        "d": home,
        "u": local_user,
        "h": hostname,
        "r": remote_user,
        "p": str(port),
        "n": original,
        "l": local_hostname,
        "L": local_hostname.split(".")[0],
    }
    if uid is not None:
        tokens["i"] = str(uid)
    # %k: HostKeyAlias, else the host as typed (ssh 9.2 takes it wherever it takes %h)
    key_alias = optional("hostkeyalias")
    tokens["k"] = ascii_lower(key_alias) if key_alias is not None else original

    def with_tokens(
        raw: str,
        place: str,
        env: Mapping[str, str] | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        if "%C" in raw and "C" not in tokens:
            tokens["C"] = _percent_c(local_hostname, hostname, port, remote_user)
        return expand_tokens(raw, {**tokens, **extra} if extra else tokens, place, env)

    def path(raw: str, place: str) -> str:
        # ~user too, as ssh expands it
        expanded = tilde_expand(raw, home, place) if raw[:2] not in ("~", "~/") else raw
        return with_tokens(expand_home(expanded, home), place, os.environ)

    given = bool(state.identity_files)
    identity_raw = state.identity_files or [(p, "default") for p in DEFAULT_IDENTITY_FILES]
    identity_files = tuple(path(raw, place) for raw, place in identity_raw)
    certificate_files = tuple(
        path(raw, where("certificatefile")) for raw in paths("certificatefile", ())
    )
    user_known = tuple(
        path(raw, where("userknownhostsfile"))
        for raw in paths("userknownhostsfile", DEFAULT_USER_KNOWN_HOSTS)
    )
    global_known = tuple(
        path(raw, where("globalknownhostsfile"))
        for raw in paths("globalknownhostsfile", DEFAULT_GLOBAL_KNOWN_HOSTS)
    )
    revoked = tuple(path(raw, where("revokedhostkeys")) for raw in paths("revokedhostkeys", ()))
    agent = optional("identityagent")
    if agent is not None:
        # "none", "SSH_AUTH_SOCK" and "$NAME" (a variable holding the path, read when
        # connecting) stand as written; anything else is a path, expanded as one
        if agent.startswith("$") and not agent.startswith("${"):
            if not _env_name(agent[1:]):
                raise FormatError(f"{where('identityagent')}: invalid environment name {agent}")
        else:
            agent = path(agent, where("identityagent"))
    forward_agent = optional("forwardagent") or "no"
    if forward_agent.lower() in ("yes", "true", "no", "false"):
        forward_agent = "yes" if forward_agent.lower() in ("yes", "true") else "no"
    elif not (forward_agent.startswith("$") and not forward_agent.startswith("${")):
        # a path (${VAR}s in it expanded); "$NAME" alone names a variable holding one
        forward_agent = path(forward_agent, where("forwardagent"))
    remote_command = optional("remotecommand")
    if remote_command is not None:  # its tokens, as ssh expands them (no ~, no ${})
        remote_command = with_tokens(remote_command, where("remotecommand"))
    control_path = optional("controlpath")
    if control_path is not None and control_path.lower() == "none":
        control_path = None
    elif control_path is not None:
        # as ssh 9.2: ~ first, then its tokens (%k too: HostKeyAlias, else the host as
        # typed) and ${VAR}s
        place = where("controlpath")
        control_path = with_tokens(tilde_expand(control_path, home, place), place, os.environ)
    known_hosts_command = optional("knownhostscommand")
    known_hosts_argv: tuple[str, ...] = ()
    if known_hosts_command is not None and known_hosts_command.lower() == "none":
        known_hosts_command = None
    elif known_hosts_command is not None:
        # as ssh 9.2: split into words first (quotes kept together), then each word
        # but the program gets its tokens and ${VAR}s
        import shlex

        place = where("knownhostscommand")
        try:
            words = shlex.split(known_hosts_command)
        except ValueError:
            raise FormatError(f"{place}: KnownHostsCommand contains invalid quotes") from None
        known_hosts_argv = tuple(
            word if index == 0 else with_tokens(word, place, os.environ, RUNTIME_TOKENS)
            for index, word in enumerate(words)
        )
    local_command = optional("localcommand")
    if local_command is not None:  # as ssh: its tokens (%T: no tunnel, NONE), no ~ or ${}
        extra = {"T": "NONE"}
        local_command = with_tokens(local_command, where("localcommand"), None, extra)
    preferred = optional("preferredauthentications")
    # unset: None; 0 is kept as 0 (ssh -G shows it), which is no timeout of ssh's own too
    found = values.get("connecttimeout")
    timeout = number("connecttimeout", 0) if found is not None else None
    batch = flag("batchmode", False)

    return ResolvedConfig(
        host=original,
        hostname=hostname,
        user=remote_user,
        port=port,
        identity_files=identity_files,
        identities_only=flag("identitiesonly", False),
        user_known_hosts_files=user_known,
        global_known_hosts_files=global_known,
        strict_host_key_checking=text("stricthostkeychecking", "ask"),
        connect_timeout=timeout,
        password_authentication=flag("passwordauthentication", True),
        pubkey_authentication=flag("pubkeyauthentication", True),
        kbd_interactive_authentication=flag("kbdinteractiveauthentication", True),
        batch_mode=batch,
        hash_known_hosts=flag("hashknownhosts", False),
        preferred_authentications=(
            tuple(preferred.split(",")) if preferred else DEFAULT_PREFERRED_AUTHENTICATIONS
        ),
        number_of_password_prompts=number("numberofpasswordprompts", 3),
        kex_algorithms=optional("kexalgorithms"),
        ciphers=optional("ciphers"),
        macs=optional("macs"),
        host_key_algorithms=optional("hostkeyalgorithms"),
        # as ssh: BatchMode alone turns on keepalives every 300 s, so a dead server
        # cannot hang an unattended run
        server_alive_interval=number("serveraliveinterval", 300 if batch else 0),
        server_alive_count_max=number("serveralivecountmax", 3),
        identity_files_given=given,
        warnings=tuple(state.warnings),
        notices=tuple(state.notices),
        # ssh lowercases it, as the host name, and takes it as written otherwise
        host_key_alias=ascii_lower(optional("hostkeyalias") or "") or None,
        identity_agent=agent,
        known_hosts_command=known_hosts_command,
        known_hosts_argv=known_hosts_argv,
        local_command=local_command,
        permit_local_command=flag("permitlocalcommand", False),
        proxy_command=_proxy(values, "proxycommand", "proxyjump"),
        proxy_jump=_proxy(values, "proxyjump", "proxycommand"),
        local_forwards=() if flag("clearallforwardings", False) else paths("localforward", ()),
        remote_forwards=() if flag("clearallforwardings", False) else paths("remoteforward", ()),
        dynamic_forwards=() if flag("clearallforwardings", False) else paths("dynamicforward", ()),
        gateway_ports=flag("gatewayports", False),
        exit_on_forward_failure=flag("exitonforwardfailure", False),
        session_type=text("sessiontype", "default"),
        fork_after_authentication=flag("forkafterauthentication", False),
        certificate_files=certificate_files,
        ca_signature_algorithms=optional("casignaturealgorithms"),
        revoked_host_keys=revoked,
        remote_command=remote_command,
        set_env=paths("setenv", ()),
        send_env=paths("sendenv", ()),
        visual_host_key=flag("visualhostkey", False),
        add_keys_to_agent=_add_keys_value(values.get("addkeystoagent")),
        log_level=text("loglevel", "INFO"),
        pubkey_accepted_algorithms=optional("pubkeyacceptedalgorithms"),
        fingerprint_hash=text("fingerprinthash", "sha256"),
        connection_attempts=number("connectionattempts", 1),
        update_host_keys=_update_host_keys_value(values),
        stream_local_bind_mask=number("streamlocalbindmask", 0o177),
        stream_local_bind_unlink=flag("streamlocalbindunlink", False),
        request_tty=text("requesttty", "auto"),
        escape_char=_escape_char_value(values),
        enable_escape_commandline=flag("enableescapecommandline", False),
        forward_agent=forward_agent,
        stdin_null=flag("stdinnull", False),
        ip_qos=_ip_qos_value(values.get("ipqos")),
        required_rsa_size=number("requiredrsasize", 1024),
        permit_remote_open=paths("permitremoteopen", ()),
        tcp_keep_alive=flag("tcpkeepalive", True),
        no_host_authentication_for_localhost=flag("nohostauthenticationforlocalhost", False),
        forward_x11=flag("forwardx11", False),
        forward_x11_trusted=flag("forwardx11trusted", False),
        forward_x11_timeout=number("forwardx11timeout", 1200),
        xauth_location=text("xauthlocation", "/usr/bin/xauth"),
        compression=flag("compression", False),
        address_family=text("addressfamily", "any"),
        bind_address=optional("bindaddress"),
        bind_interface=optional("bindinterface"),
        rekey_limit=_rekey_limit_value(values.get("rekeylimit")),
        control_master=text("controlmaster", "no"),
        control_path=control_path,
        control_persist=_control_persist_value(values.get("controlpersist")),
    )


def _control_persist_value(found: tuple[object, str] | None) -> int | None:
    value = found[0] if found is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _escape_char_value(values: dict[str, tuple[object, str]]) -> int | None:
    given = values.get("escapechar")
    if given is None or not isinstance(given[0], int):
        return None if given is not None else 0x7E  # "none", or ssh's default ~
    return given[0]


def _update_host_keys_value(values: dict[str, tuple[object, str]]) -> str:
    """UpdateHostKeys as written; unset, ssh's default: on unless VerifyHostKeyDNS is,
    or UserKnownHostsFile names anything but ~/.ssh/known_hosts (as written)."""
    given = values.get("updatehostkeys")
    if given is not None and isinstance(given[0], str):
        return given[0]
    dns = values.get("verifyhostkeydns")
    if dns is not None and dns[0] != "no":
        return "no"
    files = values.get("userknownhostsfile")
    if files is not None and files[0] != ("~/.ssh/known_hosts",):
        return "no"
    return "yes"


def _proxy(values: dict[str, tuple[object, str]], keyword: str, other: str) -> str | None:
    """ProxyCommand or ProxyJump as written, unless "none" or the other one came first:
    ssh takes whichever of the two it read first."""
    value = values.get(keyword)
    if value is None or not isinstance(value[0], str) or value[0].lower() == "none":
        return None
    before = values.get(other)
    # as ssh 9.2: a ProxyJump of "none" does not stand in a later ProxyCommand's way
    if before is not None and not (other == "proxyjump" and str(before[0]).lower() == "none"):
        order = list(values)  # in the order first seen
        if order.index(other) < order.index(keyword):
            return None
    return value[0]


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


def parse_jump_host(text: str) -> tuple[str | None, str, int | None]:
    """One ProxyJump hop, ``[user@]host[:port]`` or ``ssh://[user@]host[:port]``."""
    rest = text[len("ssh://") :].rstrip("/") if text.startswith("ssh://") else text
    user, _, hostport = rest.rpartition("@")
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    elif hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
    else:
        host, port = hostport, ""
    from keytool.ports import a2port

    number = a2port(port) if port else None  # a service name too, as ssh takes it
    if not host or (port and not number):
        raise FormatError(f"ProxyJump: bad jump host {text!r}")
    return user or None, host, number


def apply_algorithm_list(spec: str | None, default: Sequence[str]) -> tuple[str, ...]:
    """An algorithm option against keytool's default list, as ssh_config(5) describes:
    ``+a,b`` appends, ``-a*,b`` removes (wildcards allowed), ``^a,b`` puts first;
    anything else replaces the list. None (not set) is the default list."""
    if spec is None or spec == "":
        return tuple(default)
    names = [name for name in spec[1:].split(",") if name] if spec[0] in "+-^" else []
    if spec[0] == "+":
        return tuple(default) + tuple(n for n in names if n not in default)
    if spec[0] == "-":
        return tuple(d for d in default if not any(match_pattern(d, n) for n in names))
    if spec[0] == "^":
        return tuple(names) + tuple(d for d in default if d not in names)
    return tuple(name for name in spec.split(",") if name)


# --- the loader: the only part that touches files ----------------------------------

SYSTEM_CONFIG = "/etc/ssh/ssh_config"
USER_CONFIG = "~/.ssh/config"


def _read_source(path: str, system: bool, check_owner: bool = False) -> ConfigSource:
    """A config file's text, every byte kept (one that is not UTF-8 stands as a
    surrogate escape, as ssh reads bytes). ``check_owner``: as ssh for ~/.ssh/config and
    every included file, refuse one another user may have written (not owned by us or
    root, or group- or world-writable): its ProxyCommand would run as us."""
    from keytool import files

    try:
        fd, info = files._open_regular(path, "config file")
        if check_owner and not _safe_owner(info):
            os.close(fd)
            raise ConfigFatal(f"Bad owner or permissions on {path}")  # ssh's words
        data = files._read_all(fd, path, "config file", files.MAX_TEXT_FILE_SIZE)
    except KeyFileError as exc:
        raise KeyFileError(f"cannot read config file {exc}") from None
    return ConfigSource(path, data.decode("utf-8", "surrogateescape"), system)


def _safe_owner(info: os.stat_result) -> bool:
    """Whether only we (or root) may write a config file, as ssh decides it: owned by
    us or root, not world-writable, and group-writable only for a group of which the
    owner is the one member (Debian's ssh allows that much; a private group)."""
    import grp

    uid = os.getuid()
    if info.st_uid not in (0, uid) or info.st_mode & 0o002:
        return False
    if not info.st_mode & 0o020:
        return True
    try:
        group = grp.getgrgid(info.st_gid)
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        return False
    members = 0
    for account in pwd.getpwall():
        if account.pw_gid == info.st_gid:
            members += 1
            if account.pw_uid != uid:
                return False
    if group.gr_mem:
        members += 1
        if group.gr_mem != [owner]:
            return False
    return members > 0


def _include_reader(home: str) -> IncludeReader:
    def read(pattern: str, system: bool) -> list[ConfigSource]:
        import glob  # only for Include, off keytool exec's start-up path

        expanded = tilde_expand(pattern, home, "Include") if pattern.startswith("~") else pattern
        if not os.path.isabs(expanded):
            base = os.path.dirname(SYSTEM_CONFIG) if system else os.path.join(home, ".ssh")
            expanded = os.path.join(base, expanded)
        # a pattern matching nothing is fine, as for ssh; every file found is checked
        # as ssh checks an included file, whichever config named it
        return [
            _read_source(name, system, check_owner=True)
            for name in sorted(glob.glob(expanded))
            if not os.path.isdir(name)
        ]

    return read


def load(
    host: str,
    *,
    config_file: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    user: str | None = None,
    home: str | None = None,
) -> ResolvedConfig:
    """Read the config files as ssh does and resolve ``host``.

    ``config_file`` is ``-F``: None reads ~/.ssh/config then /etc/ssh/ssh_config (each
    if present), ``"none"`` reads nothing, anything else only that file (which must
    exist). ``user``/``home`` default to the local account's (as ssh, from the password
    database rather than $HOME).
    """
    account = own_account()
    user = user if user is not None else account.pw_name
    home = home if home is not None else account.pw_dir
    sources: list[ConfigSource] = []
    if config_file is None:
        user_config = expand_home(USER_CONFIG, home)
        if os.path.exists(user_config):  # as ssh: checked who may write it (not -F's)
            sources.append(_read_source(user_config, False, check_owner=True))
        if os.path.exists(SYSTEM_CONFIG):
            sources.append(_read_source(SYSTEM_CONFIG, True))
    elif str(config_file) != "none":
        sources.append(_read_source(expand_home(str(config_file), home), False))
    resolved = resolve(
        sources,
        host,
        overrides,
        user=user,
        home=home,
        uid=os.getuid(),
        local_hostname=os.uname().nodename,  # gethostname(2) on Linux
        include=_include_reader(home),
    )
    if resolved.log_level != "QUIET":
        import sys

        for notice in resolved.notices:
            print(notice, file=sys.stderr)
    if config_file is None:
        return resolved
    return resolved._replace(config_file=str(config_file))

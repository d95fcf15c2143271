"""The state of one reading of ssh_config(5) (ConfigState: the values found so far, first
one wins) and its finishing into a ResolvedConfig (finish_config): defaults filled in, the
host name, paths, commands and ControlPath expanded (tokens, ``~``, ``${NAME}``), as
ssh -G shows them."""

from __future__ import annotations

import os
from collections.abc import Mapping

from keytool.errors import FormatError
from keytool.patterns import ascii_lower
from keytool.sshconfig_resolved import (
    DEFAULT_GLOBAL_KNOWN_HOSTS,
    DEFAULT_IDENTITY_FILES,
    DEFAULT_PORT,
    DEFAULT_PREFERRED_AUTHENTICATIONS,
    DEFAULT_USER_KNOWN_HOSTS,
    IncludeReader,
    ResolvedConfig,
)
from keytool.sshconfig_values import ip_qos_value
from keytool.sshconfig_words import (
    RUNTIME_TOKENS,
    env_name,
    expand_home,
    expand_tokens,
    percent_c,
    tilde_expand,
)


class ConfigState:
    """Mutable while reading; frozen into ResolvedConfig at the end."""

    __slots__ = (
        "final",
        "final_host",
        "forward_keys",
        "forward_order",
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
    #: the host name fixed before the final pass (HostName lines in it change nothing)
    final_host: str | None
    wants_final: bool  # a Match line asked for one
    #: each forward keyword's forwards so far, as ssh tells them apart (forward_equals)
    forward_keys: dict[str, set[str]]
    #: the forward keywords of the forwards added, in the order read (ssh keeps -L and
    #: -D forwards in one list, in that order: its -G shows them so)
    forward_order: list[str]

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
        self.forward_keys = {}
        self.forward_order = []
        self.local = ("", "", None, "")
        self.final = False
        self.final_host = None
        self.wants_final = False


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


def _domains(found: tuple[object, str] | None) -> tuple[str, ...]:
    value = found[0] if found is not None else ()
    return tuple(str(v) for v in value) if isinstance(value, tuple) else ()


def finish_config(
    state: ConfigState,
    local_user: str,
    home: str,
    uid: int | None,
    local_hostname: str,
    defer_key_paths: bool = False,
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

    def kept(keyword: str) -> str | None:  # empty too (-b '', -B '', -S '', as ssh)
        value = values.get(keyword, (None, ""))[0]
        return value if isinstance(value, str) else None

    original = state.host
    # as ssh: fixed before a final pass, whatever HostName lines that pass has
    final_host = state.final_host
    hostname = final_host if final_host is not None else first_pass_host(state)
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
            tokens["C"] = percent_c(local_hostname, hostname, port, remote_user)
        return expand_tokens(raw, {**tokens, **extra} if extra else tokens, place, env)

    def path(raw: str, place: str) -> str:
        # ~user too, as ssh expands it
        expanded = tilde_expand(raw, home, place) if raw[:2] not in ("~", "~/") else raw
        return with_tokens(expand_home(expanded, home), place, os.environ)

    path_errors: list[str] = []

    def key_path(raw: str, place: str) -> str:
        # as ssh: expanded only to load the key; one that cannot be is shown as
        # written, and said to be wrong only when connecting
        try:
            return path(raw, place)
        except FormatError as exc:
            if not defer_key_paths:
                raise
            path_errors.append(str(exc))
            return raw

    given = bool(state.identity_files)
    identity_raw = state.identity_files or [(p, "default") for p in DEFAULT_IDENTITY_FILES]
    identity_files = tuple(key_path(raw, place) for raw, place in identity_raw)
    certificate_files = tuple(
        key_path(raw, where("certificatefile")) for raw in paths("certificatefile", ())
    )
    user_known = tuple(
        path(raw, where("userknownhostsfile"))
        for raw in paths("userknownhostsfile", DEFAULT_USER_KNOWN_HOSTS)
    )
    # as ssh 9.2: only ~ is expanded (when connecting), neither ${NAME} nor %-tokens
    global_known = tuple(
        tilde_expand(raw, home, where("globalknownhostsfile"))
        for raw in paths("globalknownhostsfile", DEFAULT_GLOBAL_KNOWN_HOSTS)
    )
    revoked = tuple(path(raw, where("revokedhostkeys")) for raw in paths("revokedhostkeys", ()))
    agent = optional("identityagent")
    if agent is not None:
        # "none", "SSH_AUTH_SOCK" and "$NAME" (a variable holding the path, read when
        # connecting) stand as written; anything else is a path, expanded as one
        if agent.startswith("$") and not agent.startswith("${"):
            if not env_name(agent[1:]):
                raise FormatError(f"{where('identityagent')}: invalid environment name {agent}")
        else:
            agent = path(agent, where("identityagent"))
    # as ssh: whether to forward (the first yes, no or socket) and the socket (the first
    # one named) are kept apart; -G shows the socket when there is one, on or off
    forward_agent = optional("forwardagent") or "no"
    forward_agent = "yes" if forward_agent.lower() in ("yes", "true") else "no"
    agent_forwarding: bool | None = None
    agent_path = optional("forwardagentpath")
    if agent_path is not None:
        agent_forwarding = forward_agent == "yes"
        forward_agent = agent_path
        if not (agent_path.startswith("$") and not agent_path.startswith("${")):
            # a path (${VAR}s in it expanded); "$NAME" alone names a variable holding one
            forward_agent = path(agent_path, where("forwardagentpath"))
    remote_command = optional("remotecommand")
    if remote_command is not None and remote_command.lower() == "none":
        remote_command = None  # as ssh: "none" (any case) unsets it
    elif remote_command is not None:  # its tokens, as ssh expands them (no ~, no ${})
        remote_command = with_tokens(remote_command, where("remotecommand"))
    control_path = kept("controlpath")
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
    if local_command is not None and local_command.lower() == "none":
        local_command = None  # as ssh: "none" (any case) unsets it
    local_command_written, local_command_error = local_command, None
    if local_command is not None:  # as ssh: its tokens (%T: no tunnel, NONE), no ~ or ${},
        # when it connects (ssh -G shows it as written, a bad token and all)
        try:
            local_command = with_tokens(local_command, where("localcommand"), None, {"T": "NONE"})
        except FormatError as exc:
            local_command, local_command_error = None, str(exc)
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
        local_command_written=local_command_written,
        local_command_error=local_command_error,
        proxy_command=_proxy(values, "proxycommand", "proxyjump"),
        proxy_jump=_proxy(values, "proxyjump", "proxycommand"),
        local_forwards=() if flag("clearallforwardings", False) else paths("localforward", ()),
        remote_forwards=() if flag("clearallforwardings", False) else paths("remoteforward", ()),
        dynamic_forwards=() if flag("clearallforwardings", False) else paths("dynamicforward", ()),
        forward_kinds=()
        if flag("clearallforwardings", False)
        else tuple(k for k in state.forward_order if k != "remoteforward"),
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
        agent_forwarding=agent_forwarding,
        path_error=path_errors[0] if path_errors else None,
        canonical_domains=_domains(values.get("canonicaldomains")),
        stdin_null=flag("stdinnull", False),
        ip_qos=ip_qos_value(values.get("ipqos")),
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
        bind_address=kept("bindaddress"),
        bind_interface=kept("bindinterface"),
        rekey_limit=_rekey_limit_value(values.get("rekeylimit")),
        control_master=text("controlmaster", "no"),
        control_path=control_path,
        control_persist=_control_persist_value(values.get("controlpersist")),
    )


def is_address(name: str, family: object = "any") -> bool:
    """Whether ``name`` is a numeric address, as ssh's is_addr decides (getaddrinfo
    with AI_NUMERICHOST, in the AddressFamily asked for): ssh does not lowercase one."""

    return address_form(name, family) is not None


def address_form(name: str, family: object = "any") -> str | None:
    """``name`` as ssh writes a numeric address once it has read it (its resolve_addr:
    getaddrinfo with AI_NUMERICHOST in the AddressFamily asked for, then getnameinfo
    with NI_NUMERICHOST): 127.1, 0x7f.1 and 2130706433 are 127.0.0.1, 0:0::1 is ::1.
    None when it is no address."""
    import _socket  # not socket: its imports (enum, selectors) would slow exec's start

    families = {"inet": _socket.AF_INET, "inet6": _socket.AF_INET6}
    try:
        found = _socket.getaddrinfo(
            name,
            "22",
            families.get(str(family).lower(), _socket.AF_UNSPEC),
            _socket.SOCK_STREAM,
            0,
            _socket.AI_NUMERICHOST | _socket.AI_NUMERICSERV,
        )
        flags = _socket.NI_NUMERICHOST | _socket.NI_NUMERICSERV
        return _socket.getnameinfo(found[0][4], flags)[0]
    except (OSError, UnicodeError, ValueError, IndexError):
        return None


def first_pass_host(state: ConfigState) -> str:
    """The host name as ssh has it after its first pass: HostName (its %h expanded), else
    the name given; in lower case unless it is an address, which ssh writes its own way
    (127.1 is 127.0.0.1; only a difference in case is left as written)."""
    found = state.values.get("hostname")
    host = state.host
    if found is not None and isinstance(found[0], str):
        host = expand_tokens(found[0], {"h": state.host}, found[1])
    family = state.values.get("addressfamily", ("any", ""))[0]
    address = address_form(host, family)
    if address is None:
        return ascii_lower(host)
    return host if ascii_lower(address) == ascii_lower(host) else address


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

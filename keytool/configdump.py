"""``keytool exec -G``: the configuration for a host as ``ssh -G`` prints it, pure.

One ``keyword value`` line each, in ssh 9.2's order and words (``true``/``false``
where ssh says so, ``none`` for no ConnectTimeout, ControlPersist in seconds...),
for every keyword keytool acts on; the ones it does not (GSSAPI, hostbased
authentication, CanonicalizeHostname, tunnels...) are left out rather than shown
with values that would mean nothing here. Values are keytool's own where they differ
from ssh's: the algorithm lists are what keytool offers (its defaults with the
config's +/-/^ applied), and paths are shown expanded (an IdentityFile or
CertificateFile that cannot be is shown as written, as ssh shows them all).
CanonicalDomains is shown, checked as ssh checks it, though keytool does not
canonicalize.
"""

from __future__ import annotations

from keytool.forwardspec import parse_dynamic_forward, parse_local_forward, parse_remote_forward
from keytool.sshconfig_resolved import (
    ASSEMBLED,
    DEFAULT_PREFERRED_AUTHENTICATIONS,
    ResolvedConfig,
    apply_algorithm_list,
    unassembled,
)
from keytool.sshconfig_values import ip_qos_name, parse_jump_host
from keytool.transport import config as tconfig

#: the LogLevels below INFO, at which ssh turns UpdateHostKeys ask off
_UNHEARD = ("QUIET", "FATAL", "ERROR")

# ssh's words for the settings it keeps as numbers (readconf.c's multistate tables)
_TRUE_FALSE = {"yes": "true", "no": "false"}


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _escape(char: int | None) -> str:
    """EscapeChar as ssh shows it (vis(3) with VIS_WHITE)."""
    if char is None:
        return "none"
    if char in (0x20, 0x09, 0x0A):
        return f"\\{char:03o}"
    if char < 0x20:
        return "\\^" + chr(char + 0x40)
    if char == 0x7F:
        return "\\^?"
    if char == 0x5C:  # vis(3) doubles a backslash
        return "\\\\"
    return chr(char)


def _proxy_jump(jump: str) -> str:
    """ProxyJump as ssh -G shows it: the hops before the last as written, the last one
    as ssh parsed it (no ssh://, a numeric address in brackets)."""
    before, comma, last = jump.rpartition(",")
    user, host, port = parse_jump_host(last)
    numeric = ":" in host or all(c in "0123456789." for c in host)
    shown = f"[{host}]" if numeric else host
    return f"{before}{comma}{user + '@' if user else ''}{shown}{':' + str(port) if port else ''}"


def _add_keys(mode: str, lifetime: int | None) -> str:
    if lifetime:  # ssh names confirm, and only confirm, with a lifetime
        return f"{' confirm' if mode == 'confirm' else ''} {lifetime}"
    return " " + _TRUE_FALSE.get(mode, mode)


def _dynamic_labels(r: ResolvedConfig) -> list[str]:
    """ssh 9.2's dynamicforward lines: its -L and -D forwards are one list, in the order
    read, and a local forward to a socket has no target host, which its dump takes for
    a dynamic forward too (-L 1234:/path, -D 1234:/path), in its place among them."""
    kinds = r.forward_kinds
    if len(kinds) != len(r.local_forwards) + len(r.dynamic_forwards):  # order not known
        kinds = ("dynamicforward",) * len(r.dynamic_forwards)
        kinds += ("localforward",) * len(r.local_forwards)
    local = iter(r.local_forwards)
    dynamic = iter(r.dynamic_forwards)
    labels = []
    for kind in kinds:
        if kind == "dynamicforward":
            labels.append(parse_dynamic_forward(next(dynamic)).describe())
            continue
        forward = parse_local_forward(next(local))
        if forward.target_path is not None:
            labels.append(forward.listen_label)
    return labels


def _update_host_keys(r: ResolvedConfig, command_given: bool | None) -> str:
    """UpdateHostKeys as ssh leaves it before -G shows it: ask turned off (no) with
    ControlPersist and a ControlPath, with a command (given, a RemoteCommand, or no
    terminal asked for) and at a LogLevel below INFO, where no question is heard."""
    if r.update_host_keys != "ask":
        return r.update_host_keys
    sharing = r.control_persist is not None and r.control_path is not None
    command = command_given is True or r.remote_command is not None or r.request_tty == "no"
    return "no" if sharing or command or r.log_level in _UNHEARD else "ask"


def dump(resolved: ResolvedConfig, command_given: bool | None = None) -> list[str]:
    """ssh -G's lines for ``resolved``. ``command_given``: whether the command line gave
    a command to run (None: not known), as ssh refuses ForkAfterAuthentication with
    nothing to run before -G's first line, and turns UpdateHostKeys ask off with one."""
    r = resolved
    if (
        r.fork_after_authentication
        and command_given is False
        and r.remote_command is None
        and r.session_type != "none"
    ):
        if r.log_level == "QUIET":  # as ssh's fatal(): nothing said, status 255
            raise SystemExit(255)
        from keytool.errors import KeytoolError

        raise KeytoolError("Cannot fork into background without a command to execute.")
    spec = r.host_key_algorithms
    if (
        spec
        and spec[0] != "-"
        and not apply_algorithm_list(spec, tconfig.DEFAULT_HOST_KEY, "key-sig")
    ):
        # as ssh 9.2, which puts this list together first (its default depends on the
        # known host keys) and dies, before any line, when it comes to nothing
        from keytool.errors import KeytoolError

        raise KeytoolError("dump_client_config: expand HostKeyAlgorithms: invalid argument")
    strict = r.strict_host_key_checking
    lists = {
        "ciphers": apply_algorithm_list(r.ciphers, tconfig.DEFAULT_CIPHERS, "cipher"),
        "hostkeyalgorithms": apply_algorithm_list(
            r.host_key_algorithms, tconfig.DEFAULT_HOST_KEY, "key-sig"
        ),
        "kexalgorithms": apply_algorithm_list(r.kex_algorithms, tconfig.DEFAULT_KEX, "kex"),
        "casignaturealgorithms": apply_algorithm_list(
            r.ca_signature_algorithms, tconfig.DEFAULT_CA_SIGNATURE_ALGORITHMS, "sig"
        ),
        "macs": apply_algorithm_list(r.macs, tconfig.DEFAULT_MACS, "mac"),
        "pubkeyacceptedalgorithms": apply_algorithm_list(
            r.pubkey_accepted_algorithms, tconfig.DEFAULT_PUBKEY, "key-sig"
        ),
    }
    shown: dict[str, str | None] = {key: ",".join(value) for key, value in lists.items()}
    failed = unassembled(r)
    if failed is not None:
        # as ssh 9.2: a list that comes to nothing is left unset (no line), and the
        # lists it would have put together after it stay as written (unset: no line)
        after = [field for field, *_ in ASSEMBLED]
        for field in after[after.index(failed[0]) :]:
            keyword = field.replace("_", "")  # ca_signature_algorithms: casignature...
            shown[keyword] = None if field == failed[0] else getattr(r, field)
    out: list[tuple[str, str]] = [
        ("host", r.host),
        ("user", r.user),
        ("hostname", r.hostname),
        ("port", str(r.port)),
        # flags
        ("addressfamily", r.address_family),
        ("batchmode", _yes(r.batch_mode)),
        ("compression", _yes(r.compression)),
        ("controlmaster", _TRUE_FALSE.get(r.control_master, r.control_master)),
        ("exitonforwardfailure", _yes(r.exit_on_forward_failure)),
        ("fingerprinthash", r.fingerprint_hash.upper()),
        ("forwardx11", _yes(r.forward_x11)),
        ("forwardx11trusted", _yes(r.forward_x11_trusted)),
        ("gatewayports", _yes(r.gateway_ports)),
        ("hashknownhosts", _yes(r.hash_known_hosts)),
        ("identitiesonly", _yes(r.identities_only)),
        ("kbdinteractiveauthentication", _yes(r.kbd_interactive_authentication)),
        (
            "nohostauthenticationforlocalhost",
            _yes(r.no_host_authentication_for_localhost),
        ),
        ("passwordauthentication", _yes(r.password_authentication)),
        ("permitlocalcommand", _yes(r.permit_local_command)),
        ("pubkeyauthentication", "true" if r.pubkey_authentication else "false"),
        ("requesttty", _TRUE_FALSE.get(r.request_tty, r.request_tty)),
        ("sessiontype", r.session_type),
        ("stdinnull", _yes(r.stdin_null)),
        ("forkafterauthentication", _yes(r.fork_after_authentication)),
        ("streamlocalbindunlink", _yes(r.stream_local_bind_unlink)),
        ("stricthostkeychecking", _TRUE_FALSE.get(strict, strict)),
        ("tcpkeepalive", _yes(r.tcp_keep_alive)),
        ("visualhostkey", _yes(r.visual_host_key)),
        (
            "updatehostkeys",
            _TRUE_FALSE.get(_update_host_keys(r, command_given), r.update_host_keys),
        ),
        ("enableescapecommandline", _yes(r.enable_escape_commandline)),
        # numbers
        ("connectionattempts", str(r.connection_attempts)),
        ("forwardx11timeout", str(r.forward_x11_timeout)),
        ("numberofpasswordprompts", str(r.number_of_password_prompts)),
        ("serveralivecountmax", str(r.server_alive_count_max)),
        ("serveraliveinterval", str(r.server_alive_interval)),
        ("requiredrsasize", str(r.required_rsa_size)),
    ]
    strings = [
        ("bindaddress", r.bind_address),
        ("bindinterface", r.bind_interface),
        ("ciphers", shown["ciphers"]),
        ("controlpath", r.control_path),
        ("hostkeyalgorithms", ",".join(lists["hostkeyalgorithms"])),
        ("hostkeyalias", r.host_key_alias),
        ("identityagent", r.identity_agent),
        ("kexalgorithms", shown["kexalgorithms"]),
        ("casignaturealgorithms", shown["casignaturealgorithms"]),
        ("localcommand", r.local_command_written),
        ("remotecommand", r.remote_command),
        ("loglevel", {"DEBUG1": "DEBUG", "QUIET": "SILENT"}.get(r.log_level, r.log_level)),
        ("macs", shown["macs"]),
        (
            "preferredauthentications",
            ",".join(r.preferred_authentications)
            if r.preferred_authentications != DEFAULT_PREFERRED_AUTHENTICATIONS
            else None,
        ),
        ("pubkeyacceptedalgorithms", shown["pubkeyacceptedalgorithms"]),
        ("revokedhostkeys", " ".join(r.revoked_host_keys) or None),
        ("xauthlocation", r.xauth_location),
        ("knownhostscommand", r.known_hosts_command),
    ]
    out += [(keyword, value) for keyword, value in strings if value is not None]
    local = [parse_local_forward(s) for s in r.local_forwards]
    out += [("dynamicforward", label) for label in _dynamic_labels(r)]
    out += [("localforward", f.describe()) for f in local]
    out += [("remoteforward", parse_remote_forward(s).describe()) for s in r.remote_forwards]
    out += [("identityfile", path) for path in r.identity_files]
    out += [("certificatefile", path) for path in r.certificate_files]
    out.append(("canonicaldomains", " ".join(r.canonical_domains) or "none"))
    out.append(("globalknownhostsfile", " ".join(r.global_known_hosts_files)))
    out.append(("userknownhostsfile", " ".join(r.user_known_hosts_files)))
    out += [("sendenv", pattern) for pattern in r.send_env]
    out += [("setenv", entry) for entry in r.set_env]
    permits = r.permit_remote_open
    out.append(("permitremoteopen", " ".join(permits) if permits else "any"))
    lines = [f"{keyword} {value}" for keyword, value in out]
    lines.append("addkeystoagent" + _add_keys(*r.add_keys_to_agent))
    agent = r.forward_agent
    lines.append(f"forwardagent {agent}")
    timeout = "none" if r.connect_timeout is None else str(r.connect_timeout)
    lines.append(f"connecttimeout {timeout}")
    persist = r.control_persist
    lines.append(f"controlpersist {'no' if persist is None else persist or 'yes'}")
    lines.append(f"escapechar {_escape(r.escape_char)}")
    lines.append(f"ipqos {ip_qos_name(r.ip_qos[0])} {ip_qos_name(r.ip_qos[1])}")
    lines.append(f"rekeylimit {r.rekey_limit[0]} {r.rekey_limit[1]}")
    lines.append(f"streamlocalbindmask 0{r.stream_local_bind_mask:o}")
    if r.proxy_jump is not None:
        lines.append(f"proxyjump {_proxy_jump(r.proxy_jump)}")
    elif r.proxy_command is not None:
        lines.append(f"proxycommand {r.proxy_command}")
    return lines

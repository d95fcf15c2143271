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

The rest is in the modules beside this one: sshconfig_words (a line's words, tokens and
``~``), sshconfig_values (each keyword's value, the keyword tables), sshconfig_resolved
(ConfigSource, ResolvedConfig and what a client derives from it) and sshconfig_finish
(the state of a reading, finished into a ResolvedConfig).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator, Sequence

from keytool.display import logged
from keytool.errors import FormatError, KeyFileError
from keytool.patterns import ascii_lower, match_any, match_pattern
from keytool.sshconfig_finish import ConfigState, finish_config, first_pass_host
from keytool.sshconfig_resolved import (
    DEFAULT_PORT,
    ConfigSource,
    IncludeReader,
    ResolvedConfig,
    unassembled,
)
from keytool.sshconfig_values import (
    ALIASES,
    DEPRECATED,
    EMPTY_ANY_REFUSED,
    EMPTY_REFUSED,
    FORWARDS,
    MANY,
    ONE,
    OPENSSH_OTHER,
    UNSUPPORTED,
    UNSUPPORTED_WARN,
    integer_value,
    parse_add_keys_to_agent,
    parse_ip_qos,
    parse_permit_remote_open,
    parse_rekey_limit,
    proxy_jump,
)
from keytool.sshconfig_words import (
    FROM_FLAG,
    expand_home,
    expand_tokens,
    own_account,
    percent_c,
    split_line,
    tilde_expand,
)

MAX_INCLUDE_DEPTH = 16  # ssh's READCONF_MAX_DEPTH: an Include loop must end somewhere


class ConfigFatal(FormatError):
    """An error that ends the reading at once, as ssh's fatal(): a file refused whole
    (its owner, a bad line counted to its end), where other bad lines are counted."""


# --- resolving ------------------------------------------------------------------------


def _lines(source: ConfigSource) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(source.text.split("\n"), start=1):
        yield f"{source.name} line {number}", line


def _apply(
    state: ConfigState, keyword: str, args: list[str], where: str, strict: bool,
    from_flag: bool = False,
) -> None:  # fmt: skip
    """One active line: first value wins (IdentityFile accumulates). ``strict``: an -o
    line (or a flag's, ``from_flag``: its value may be empty, as ssh's getopt takes it)."""
    keyword = ALIASES.get(keyword, keyword)
    if not from_flag and args:  # ssh's words for a value it refuses empty
        said = EMPTY_REFUSED.get(keyword) if args[0] == "" else None
        if said is None and "" in args:
            said = EMPTY_ANY_REFUSED.get(keyword)
        if said is not None:
            raise FormatError(f"{where}: {said}")
    if keyword in _CHECKED:
        # a keyword keytool does not use, its value checked as ssh checks it
        checked = _check_other(keyword, args, where)
        if keyword == "canonicalizehostname":  # it asks for the final pass
            state.values.setdefault(keyword, (checked, where))
    if keyword in ONE:
        if not args:
            raise FormatError(f"{where}: {logged(keyword)} needs a value")
        if len(args) > 1:  # ssh's words
            raise FormatError(f"{where}: keyword {logged(keyword)} extra arguments at end of line")
        convert = ONE[keyword]
        # a flag's empty value (-b '', -B '', -S '', -l '') is taken as it is, as ssh's getopt
        value: object = args[0]
        if convert is not None and not (from_flag and args[0] == ""):
            value = convert(args[0], where)
        if keyword == "proxyjump" and strict:  # -o: its names checked too, as ssh
            value = proxy_jump(args[0], where, command_line=True)
        if keyword == "forwardagent" and isinstance(value, str) and not _is_flag(value):
            # as ssh: a socket turns forwarding on unless a value before said yes or
            # no, and is kept apart from that flag (the first socket named wins)
            state.values.setdefault("forwardagentpath", (value, where))
            value = "yes"
        state.values.setdefault(keyword, (value, where))
    elif keyword == "revokedhostkeys":
        _revoked_host_keys(state, args, where)
    elif keyword == "canonicaldomains":
        _canonical_domains(state, args, where)
    elif keyword == "addkeystoagent":
        state.values.setdefault(keyword, (parse_add_keys_to_agent(args, where), where))
    elif keyword == "rekeylimit":
        state.values.setdefault(keyword, (parse_rekey_limit(args, where), where))
    elif keyword == "setenv":
        _set_env(state, args, where)
    elif keyword == "sendenv":
        _send_env(state, args, where)
    elif keyword in MANY:
        if not args:
            raise FormatError(f"{where}: {logged(keyword)} needs a value")
        state.values.setdefault(keyword, (tuple(args), where))
    elif keyword == "ipqos":
        state.values.setdefault(keyword, (parse_ip_qos(args, where), where))
    elif keyword == "permitremoteopen":
        state.values.setdefault(keyword, (parse_permit_remote_open(args, where), where))
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
    elif keyword in FORWARDS:
        # accumulate, as IdentityFile; each kept as one -L / -R / -D spec
        from keytool.forwardspec import parse_forward_option

        if not args or args[0] == "":  # ssh's words, here and below
            raise FormatError(f"{where}: Missing argument.")
        if keyword == "localforward" and (len(args) == 1 or args[1] == ""):
            raise FormatError(f"{where}: Missing target argument.")
        taken = 1 if keyword == "dynamicforward" else 2
        try:
            spec, key = parse_forward_option(FORWARDS[keyword], args[:taken])
        except FormatError:
            raise FormatError(f"{where}: Bad forwarding specification.") from None
        if len(args) > taken:
            raise FormatError(f"{where}: keyword {logged(keyword)} extra arguments at end of line")
        if keyword == "dynamicforward" and key.startswith("LocalForward "):
            keyword = "localforward"  # port:/path: a LocalForward, as ssh reads it
        known = state.values.get(keyword, ((), where))[0]
        assert isinstance(known, tuple)
        keys = state.forward_keys.setdefault(keyword, set())
        if key not in keys:  # a forward already there is not added again, as ssh
            keys.add(key)
            state.forward_order.append(keyword)
            state.values[keyword] = ((*known, spec), where)
    elif keyword == "ignoreunknown":
        if "ignoreunknown" not in state.values:
            state.values["ignoreunknown"] = ((), where)
            state.ignore_unknown.extend(",".join(args).split(","))
    elif keyword in UNSUPPORTED_WARN:
        state.warnings.append(f"{where}: {logged(keyword)} is not supported by keytool; ignored")
    elif keyword in OPENSSH_OTHER:
        pass
    elif keyword in DEPRECATED:  # ssh's words, at its debug level
        state.warnings.append(f'{where}: Deprecated option "{logged(keyword)}"')
    elif keyword in UNSUPPORTED:  # ssh's words, at its error level: not a bad line
        state.notices.append(f'{_ssh_where(where)}: Unsupported option "{logged(keyword)}"')
    elif strict:
        raise FormatError(f"{where}: unknown option '{logged(keyword)}'")
    elif any(match_pattern(keyword, p.lower()) for p in state.ignore_unknown if p):
        state.warnings.append(f'{where}: Ignored unknown option "{logged(keyword)}"')
    else:  # ssh's words (a colon after the file's name, this once)
        name, _, number = where.rpartition(" line ")
        raise FormatError(f"{name}: line {number}: Bad configuration option: {logged(keyword)}")


_FLAGS = ("yes", "true", "no", "false")


def _is_flag(value: str) -> bool:
    return value.lower() in _FLAGS


#: keywords keytool does not use whose values ssh 9.2 checks as it reads them: the values
#: each may take (None: any one value; "int": a number; "*": any number of values)
_CHECKED: dict[str, tuple[str, ...] | str | None] = {
    "canonicalizehostname": (*_FLAGS, "always"),
    "canonicalizefallbacklocal": _FLAGS,
    "checkhostip": _FLAGS,
    "enablesshkeysign": _FLAGS,
    "gssapiauthentication": _FLAGS,
    "gssapidelegatecredentials": _FLAGS,
    "gssapikeyexchange": _FLAGS,
    "gssapirenewalforcesrekey": _FLAGS,
    "gssapitrustdns": _FLAGS,
    "hostbasedauthentication": _FLAGS,
    "proxyusefdpass": _FLAGS,
    "tunnel": (*_FLAGS, "point-to-point", "ethernet"),
    "canonicalizemaxdots": "int",
    "canonicalizepermittedcnames": "*",
    "syslogfacility": "facility",
    "tunneldevice": "tun",
    "pkcs11provider": None,
    "securitykeyprovider": None,
    "kbdinteractivedevices": None,
    "gssapiclientidentity": None,
    "gssapiserveridentity": None,
}
_FACILITIES = ("daemon", "user", "auth", "authpriv", *(f"local{n}" for n in range(8)))


def _check_other(keyword: str, args: list[str], where: str) -> str:
    """The value of a keyword keytool ignores, checked as ssh 9.2 checks it (in its
    words); for a yes/no keyword, "yes", "no" (or the other value) as ssh takes it."""
    import re

    kind = _CHECKED[keyword]
    value = args[0]
    if kind == "*":
        if any(arg.lower() == "none" for arg in args) and len(args) > 1:  # ssh's words
            raise FormatError(
                f'{where}: keyword {logged(keyword)} "none" argument must appear alone.'
            )
        if value.lower() != "none":
            for arg in args:
                if ":" not in arg:
                    raise FormatError(f'{where}: Invalid permitted CNAME "{logged(arg)}"')
        return value
    if isinstance(kind, tuple):
        lowered = value.lower()
        if lowered not in kind:
            raise FormatError(f'{where}: unsupported option "{logged(value)}".')
        value = {"true": "yes", "false": "no"}.get(lowered, lowered)
    elif kind == "int":
        integer_value(value, where)
    elif kind == "facility":
        if value.lower() not in _FACILITIES:
            raise FormatError(f"{where}: unsupported log facility '{logged(value)}'")
    elif kind == "tun":
        unit = r"(any|[0-9]+)"
        if not re.fullmatch(rf"{unit}(:{unit})?", value.lower()):
            raise FormatError(f"{where}: Bad tun device.")
    if len(args) > 1:  # ssh's words
        raise FormatError(f"{where}: keyword {logged(keyword)} extra arguments at end of line")
    return value


def _ssh_where(where: str) -> str:
    """ssh's "FILE line N" for a -o option too ("command-line line 0")."""
    return "command-line line 0" if where.startswith("command-line option ") else where


def _set_env(state: ConfigState, args: list[str], where: str) -> None:
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


def _send_env(state: ConfigState, args: list[str], where: str) -> None:
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


#: the most CanonicalDomains ssh keeps (MAX_CANON_DOMAINS)
_MAX_DOMAINS = 32


def _canonical_domains(state: ConfigState, args: list[str], where: str) -> None:
    """CanonicalDomains as ssh 9.2 reads it: each name checked (and lowered, a dot at
    its end dropped) whether the line applies or not, "none" only alone; the first
    line wins whole."""
    first = "canonicaldomains" not in state.values
    domains: list[str] = []
    for index, arg in enumerate(args):
        if arg == "":  # ssh's words, here and below
            raise FormatError(f"{where}: keyword canonicaldomains empty argument")
        if arg.lower() == "none" and len(args) > 1:
            raise FormatError(
                f'{where}: keyword canonicaldomains "none" argument must appear alone.'
            )
        domains.append(valid_domain(arg, where))
        if first and index >= _MAX_DOMAINS:
            raise FormatError(f"{where}: too many hostname suffixes.")
    if first:
        state.values["canonicaldomains"] = (tuple(domains), where)


def valid_domain(name: str, where: str) -> str:
    """ssh's valid_domain(name, makelower): the name lowered, a dot at its end dropped;
    FormatError in ssh's words (the name as far as it had lowered it) when it is no
    domain name: a letter or digit first, then letters, digits, '.', '-' and '_',
    never two dots together."""

    def shown(upto: int) -> str:
        text = ascii_lower(name[: upto + 1]) + name[upto + 1 :]
        return logged(text.encode("utf-8", "surrogateescape")[:100].decode("utf-8", "replace"))

    def ascii_alnum(char: str) -> bool:
        return char.isascii() and char.isalnum()

    if not ascii_alnum(name[0]):
        raise FormatError(f'{where}: domain name "{shown(-1)}" starts with invalid character')
    last = ""
    for index, char in enumerate(ascii_lower(name)):
        if last == "." and char == ".":
            raise FormatError(
                f'{where}: domain name "{shown(index)}" contains consecutive separators'
            )
        if char not in ".-_" and not ascii_alnum(char):
            raise FormatError(f'{where}: domain name "{shown(index)}" contains invalid characters')
        last = char
    lowered = ascii_lower(name)
    return lowered[:-1] if lowered.endswith(".") else lowered


def _revoked_host_keys(state: ConfigState, args: list[str], where: str) -> None:
    """RevokedHostKeys FILE: one file, as ssh reads it (the first line wins); "none"
    (any case) means no file, overriding the lines after it."""
    if not args or args[0] == "":
        raise FormatError(f"{where}: Missing argument.")  # ssh's words
    if len(args) > 1:  # ssh's words
        raise FormatError(f"{where}: keyword revokedhostkeys extra arguments at end of line")
    files = () if args[0].lower() == "none" else (args[0],)
    state.values.setdefault("revokedhostkeys", (files, where))


def _read(
    state: ConfigState, source: ConfigSource, active: bool, depth: int, never: bool = False
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
    state: ConfigState, source: ConfigSource, line: str, where: str, active: bool, depth: int,
    never: bool,
) -> bool:  # fmt: skip
    """One line of a file; whether the lines after it apply."""
    parsed = split_line(line, where)
    if parsed is None:
        return active
    keyword, args = parsed
    if not args:  # ssh's words, whatever the keyword
        raise FormatError(f'{where}: no argument after keyword "{logged(keyword)}"')
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
        scratch = ConfigState(state.host, None, {}, [], list(state.ignore_unknown), [])
        _apply(scratch, keyword, args, where, strict=False)
    return active


def _final_host(state: ConfigState, where: str) -> str:
    """The host name as ssh has it in its final pass: fixed before it (HostName with %h
    expanded, or the name given; lower case unless an address), whatever HostName lines
    the final pass has."""
    if state.final_host is None:
        state.final_host = first_pass_host(state)
    return state.final_host


def _match(state: ConfigState, args: list[str], where: str) -> bool:
    """A Match line: whether its block applies (and whether it asks for a final pass)."""
    from keytool.sshmatch import MatchContext, matches

    local_user, home, uid, local_hostname = state.local
    given = state.host
    host = given
    raw = state.values.get("hostname", (None, ""))[0]
    if isinstance(raw, str):
        host = expand_tokens(raw, {"h": given}, where)
    if state.final:
        host = _final_host(state, where)  # as ssh has it by then
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
        tokens["C"] = percent_c(local_hostname, host, port, user)
        expanded = expand_tokens(command, tokens, where)
        shell = os.environ.get("SHELL") or "/bin/sh"
        try:
            done = subprocess.run(
                [shell, "-c", expanded], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
            )
        except OSError as exc:
            raise FormatError(f"{where}: Match exec '{logged(expanded)}': {exc.strerror}") from None
        return done.returncode == 0

    found, wants_final = matches(args, where, context, run)
    state.wants_final = state.wants_final or wants_final
    return found


def _include(
    state: ConfigState, patterns: list[str], system: bool, where: str, depth: int, never: bool
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
    defer_key_paths: bool = False,
) -> ResolvedConfig:
    """Resolve the options for ``host`` (as typed) from config texts; no file access.

    ``overrides`` are ``-o`` options (``"Port=2222"``, ``"IdentityFile ~/k"``), and the
    client turns ``-p``, ``-l`` and ``-i`` into such lines too; they win over files.
    ``user`` and ``home`` are the local user's (for defaults, ``~`` and ``%u``/``%d``);
    ``include`` reads Include'd files (the loader passes one; without it, Include is
    skipped with a warning). Raises FormatError for a bad value or a bad ``-o``.
    ``defer_key_paths``: an IdentityFile or CertificateFile that cannot be expanded is
    kept as written, with its error in ``path_error`` (as ssh, which expands them only
    to load them: -G shows them), rather than raised.
    """
    if isinstance(sources, str):
        sources = [ConfigSource("config", sources)]
    state = ConfigState(host, include, {}, [], [], [])
    state.local = (user, home, uid, local_hostname)
    for number, option in enumerate(overrides, start=1):
        where = f"command-line option {number}"
        from_flag = option.startswith(FROM_FLAG)  # a flag's value, empty or not
        parsed = split_line(option.removeprefix(FROM_FLAG), where)
        if parsed is None:
            raise FormatError(f"{where}: empty option")
        keyword, args = parsed
        if keyword in ("host", "match", "include"):
            raise FormatError(f"{where}: {logged(keyword)} is not allowed in -o")
        if not args and not from_flag:  # ssh's words, as for a file's line
            raise FormatError(f'{where}: no argument after keyword "{logged(keyword)}"')
        _apply(state, keyword, args or [""], where, strict=True, from_flag=from_flag)
    for source in sources:
        _read(state, source, True, 0)
    canonicalize = state.values.get("canonicalizehostname", ("no", ""))[0]
    if state.wants_final or canonicalize != "no":
        # as ssh: the files are read again (what is set stays set) with "final" true,
        # when a Match line asked for it or CanonicalizeHostname is on (keytool does
        # not canonicalize, but "Match canonical" blocks apply as in ssh's final pass).
        # The host name is fixed first: a HostName line of the final pass changes nothing
        state.final_host = first_pass_host(state)
        state.final = True
        for source in sources:
            _read(state, source, True, 0)
        state.warnings = list(dict.fromkeys(state.warnings))
    resolved = finish_config(state, user, home, uid, local_hostname, defer_key_paths)
    _check_jump_loop(resolved)
    return resolved


def _check_jump_loop(resolved: ResolvedConfig) -> None:
    """As ssh: a ProxyJump whose last hop is the host itself (same name, port and user)
    is refused, in its words."""
    if resolved.proxy_jump is None:
        return
    from keytool.sshconfig_values import parse_jump_host

    try:
        jump_user, jump_host, jump_port = parse_jump_host(resolved.proxy_jump.split(",")[-1])
    except FormatError:
        return
    same_user = (jump_user or resolved.user) == resolved.user
    same_port = (jump_port or DEFAULT_PORT) == resolved.port
    if jump_host == resolved.hostname and same_port and same_user:
        raise ConfigFatal(f"jumphost loop via {jump_host}")


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
        defer_key_paths=True,  # as ssh: said when connecting, shown as written by -G
    )
    if resolved.log_level != "QUIET":
        import sys

        for notice in resolved.notices:
            print(notice, file=sys.stderr)
        failed = unassembled(resolved)
        if failed is not None:  # ssh's words, at its error level
            print(failed[1], file=sys.stderr)
    if config_file is None:
        return resolved
    return resolved._replace(config_file=str(config_file))

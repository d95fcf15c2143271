"""ssh's flags as keytool exec takes them: which of two given last counts, -t and -T
as RequestTTY, -p, -W, and the flags that stand for configuration lines (-i, -L,
-R, -D, -J, -c, -m, -g, -q) as those lines, in the order given."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from keytool.errors import KeytoolError


def status_255(error: KeytoolError) -> KeytoolError:
    error.exit_code = 255
    return error


def last_given(order: list[str] | None, **flags: bool) -> str | None:
    """Which of the ``flags`` given was given last, as ssh lets the last one count;
    None when none was. Without the order, the first named of those given."""
    given = [dest for dest, on in flags.items() if on]
    for dest in reversed(order or []):
        if dest in given:
            return dest
    return given[0] if given else None


def tty_flags(order: list[str] | None, options: list[str], tty: int, no_tty: bool) -> str | None:
    """RequestTTY as ssh's -t and -T leave it, read in the order given: -T (and -N, -W)
    says no, -t says yes, or force when it was yes already (-tt; -o RequestTTY=yes
    before it): -N -t is yes, -t -N no. An
    -o before them all sets where they start, as ssh's first value counts; the flags
    win over any -o. None when neither flag was given."""
    if not (tty or no_tty):
        return None
    if order is None or not {"tty", "no_tty"} & set(order):  # not known: -T wins, -tt forces
        return "no" if no_tty else "force" if tty > 1 else "yes"
    state: str | None = None
    for dest, value, _readable in _in_order(order, options, "requesttty"):
        if dest == "option":
            if state is None and value is not None:
                state = _REQUEST_TTY.get(value.lower())
        elif dest in ("no_tty", "no_command", "forward"):  # -N and -W say no too
            state = "no"
        elif dest == "tty":
            state = "force" if state == "yes" else "yes"
    return state


def session_flags(
    order: list[str] | None, options: list[str], no_command: bool, subsystem: bool
) -> str | None:
    """SessionType as ssh's -N, -s and -W leave it, read in the order given (with the
    -o options, whose first SessionType counts if it comes before them): -N after -s
    (or an -o SessionType other than none) and -s after -N or -W (or one other than
    subsystem) are refused, in ssh's words and with its status. None when neither -N
    nor -s was given, or none of them set it."""
    if order is None or not {"no_command", "subsystem"} & set(order):
        if no_command and subsystem:  # the order not known
            raise status_255(KeytoolError("Cannot specify -s with -N/SessionType"))
        return "none" if no_command else "subsystem" if subsystem else None
    state: str | None = None
    for dest, value, readable in _in_order(order, options, "sessiontype"):
        if dest == "option":
            if not readable:
                return state  # refused later, in the words of the configuration's reader
            if value is not None and state is None:
                state = value.lower()
                if state not in ("default", "none", "subsystem"):
                    return None  # refused later, as above
        elif dest == "no_command":
            if state not in (None, "none"):  # ssh's words
                raise status_255(KeytoolError("Cannot specify -N with -s/SessionType"))
            state = "none"
        elif dest == "subsystem":
            if state not in (None, "subsystem"):
                raise status_255(KeytoolError("Cannot specify -s with -N/SessionType"))
            state = "subsystem"
        elif dest == "forward":  # -W: no session, whatever came before
            state = "none"
    return state


def _in_order(
    order: list[str], options: list[str], keyword: str
) -> Iterator[tuple[str, str | None, bool]]:
    """Each flag of ``order`` in turn, with, for an -o, the first value it gives
    ``keyword`` (None when it sets another keyword) and whether it could be read at all
    (one that cannot is refused later, in the words of the configuration's reader)."""
    from keytool.errors import FormatError
    from keytool.sshconfig_words import split_line

    given = iter(options)
    for dest in order:
        if dest != "option":
            yield dest, None, True
            continue
        try:
            line = split_line(next(given, ""), "command line")
        except FormatError:
            yield dest, None, False
            continue
        found = line is not None and line[0] == keyword and bool(line[1])
        yield dest, line[1][0] if line is not None and found else None, True


#: RequestTTY's values as ssh reads them
_REQUEST_TTY = {
    "yes": "yes", "true": "yes", "no": "no", "false": "no", "force": "force", "auto": "auto"
}  # fmt: skip


def first_port(given: list[str]) -> int | None:
    """As ssh: the first -p counts, and a port that is not 1 to 65535 is refused."""
    if not given:
        return None
    from keytool.ports import a2port

    text = given[0]
    port = a2port(text)  # a service name too (-p ssh), as ssh takes it
    if port is None or port == 0:
        error = KeytoolError(f"Bad port '{text}'")  # ssh's words
        error.exit_code = 255
        raise error
    return port


def flag_options(
    jump: str | None, cipher: str | None, mac: str | None, gateway: bool, quiet: bool
) -> list[str]:
    """ssh's flags that stand for ssh_config keywords (-J, -c, -m, -g, -q), as -o
    options; they come before any -o given, as ssh takes them."""
    options = ["LogLevel=QUIET"] if quiet else []
    options += ["GatewayPorts=yes"] if gateway else []
    given = (("ProxyJump", jump), ("Ciphers", cipher), ("MACs", mac))
    return options + [f"{keyword}={value}" for keyword, value in given if value is not None]


def host_port(text: str) -> tuple[str, int]:
    """-W's HOST:PORT ([ADDRESS]:PORT for IPv6), as ssh takes it: a ProxyJump hop's
    form, with a port and without a user."""
    from keytool.errors import FormatError
    from keytool.sshconfig_values import parse_jump_host

    try:
        user, host, port = parse_jump_host(text)
    except FormatError:
        user, port = None, None
    if user is not None or port is None or text.startswith("ssh://"):
        raise status_255(KeytoolError(f"Bad stdio forwarding specification '{text}'"))
    return host, port


#: the flags that stand for configuration lines, and their keywords
_FLAG_KEYWORDS = {
    "identity": "IdentityFile",
    "local_forward": "LocalForward",
    "remote_forward": "RemoteForward",
    "dynamic_forward": "DynamicForward",
}


def flags_in_place(
    options: list[str], order: list[str] | None, flags: dict[str, list[str]]
) -> tuple[list[str], list[str] | None]:
    """-i, -L, -R and -D as the configuration lines they stand for, each among the -o
    options where it was given, as ssh reads them one by one (``order``: the dests as
    given; the options made of other flags come first, before the -o ones); and the
    order with them as -o's. Without the order, they come before every option."""
    given = order is not None and order.count("option") <= len(options)
    if order is not None and given:
        options = _flag_settings(options, len(options) - order.count("option"), order)
        walk = ["option"] * (len(options) - order.count("option")) + order
    else:
        walk = [dest for dest in _FLAG_KEYWORDS for _ in flags[dest]]
        walk += ["option"] * len(options)
    values = {dest: iter(flags[dest]) for dest in _FLAG_KEYWORDS}
    left = iter(options)
    lines: list[str] = []
    placed: list[str] = []
    for dest in walk:
        if dest not in _FLAG_KEYWORDS and dest != "option":
            placed.append(dest)
            continue
        value = next(left if dest == "option" else values[dest], None)
        line = value if dest == "option" or value is None else _flag_line(dest, value)
        if line is not None:
            lines.append(line)
            placed.append("option")
    return lines, placed if given else None


#: LogLevel's values, quietest first, as -v counts up from where -q left it
_LEVELS = ("QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG1", "DEBUG2", "DEBUG3")


def log_level_flags(order: list[str]) -> str | None:
    """LogLevel as ssh's -q and -v leave it, read in the order given: -q is QUIET, the
    first -v DEBUG1 and each later one a level up from where it is (-v -q -v: FATAL),
    to DEBUG3 at most. None when neither was given."""
    level: int | None = None
    verbose = False
    for dest in order:
        if dest == "quiet":
            level = 0
        elif dest == "verbose" and not verbose:
            verbose, level = True, _LEVELS.index("DEBUG1")
        elif dest == "verbose" and level is not None:
            level = min(level + 1, len(_LEVELS) - 1)
    return None if level is None else _LEVELS[level]


def _flag_settings(options: list[str], made: int, order: list[str]) -> list[str]:
    """The options made of flags (the first ``made``), as ssh leaves the settings the
    flags stand for: one LogLevel for -q and -v together, in the order given, and the
    RequestTTY of -t and -T read with -N (the last made, tty_flags's) alone."""
    head, tail = options[:made], options[made:]
    tty = [line for line in head if line.startswith("RequestTTY=")]
    if len(tty) > 1:
        head = [line for line in head if not line.startswith("RequestTTY=") or line == tty[-1]]
    level = log_level_flags(order)
    if level is not None and any(line.startswith("LogLevel=") for line in head):
        head = [f"LogLevel={level}"] + [line for line in head if not line.startswith("LogLevel=")]
    return head + tail


def _flag_line(dest: str, value: str) -> str | None:
    """The configuration line of the flag ``dest`` given ``value``; None for an -i that
    names no file there, which ssh leaves out (saying so on stderr, whatever -E, -y or
    -q say), so that the default identities count again when no other is named."""
    from keytool.display import logged
    from keytool.errors import FormatError
    from keytool.forwardspec import (
        DynamicForward,
        RemoteDynamicForward,
        expand_spec,
        parse_dynamic_spec,
        parse_local_forward,
        parse_remote_forward,
    )
    from keytool.sshconfig_words import quote_arg

    if dest == "identity":
        from keytool.sshconfig_words import account_home, tilde_expand

        try:  # ~ as ssh expands it here: the account's home directory, not $HOME
            path = tilde_expand(value, account_home(), "-i")
        except FormatError:  # ssh's words
            name = value[1:].partition("/")[0]
            raise KeytoolError(f"tilde_expand: No such user {name}") from None
        try:
            os.stat(path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.write(
                    2,
                    f"Warning: Identity file {path} not accessible: {exc.strerror}.\n".encode(
                        "utf-8", "surrogateescape"
                    ),
                )
            return None
        return f"IdentityFile={quote_arg(path)}"
    parse = {
        "local_forward": parse_local_forward,
        "remote_forward": parse_remote_forward,
        "dynamic_forward": parse_dynamic_spec,
    }[dest]
    try:  # as ssh's parse_forward: the spec's ${NAME}s first
        expanded = expand_spec(value)
    except FormatError as exc:
        kind = dest.partition("_")[0]
        raise KeytoolError(
            f"Bad {kind} forwarding specification '{logged(value)}' ({exc})"
        ) from None
    try:
        forward = parse(expanded)
    except FormatError as exc:
        raise KeytoolError(str(exc)) from None
    # a SOCKS proxy at the server's end is a RemoteForward line of one value, as is a
    # socket path alone (-R /path: the server listens there, ssh connects on to "socks")
    socks = forward.host == "socks" and forward.port == 0 and forward.target_path is None
    if isinstance(forward, RemoteDynamicForward) or (dest == "remote_forward" and socks):
        return f"RemoteForward={forward.listen_label}"
    if dest == "dynamic_forward" and not isinstance(forward, DynamicForward):
        # -D port:/path: the -L it means, as ssh reads it
        return f"LocalForward={forward.describe()}"
    return f"{_FLAG_KEYWORDS[dest]}={forward.describe()}"


#: the flags ssh checks as its getopt reads them, each time given
_CHECKED = (
    "option", "port", "cipher", "mac", "escape", "jump", "forward", "control_command",
    "local_forward", "remote_forward", "dynamic_forward",
)  # fmt: skip
_MUX_COMMANDS = ("check", "forward", "cancel", "exit", "stop", "proxy")


def getopt_checks(order: list[str] | None, options: list[str], given: dict[str, list[str]]) -> None:
    """What ssh's getopt refuses as it reads each flag, in the order given, with its
    words and status 255, before any destination is looked at: the first -p, each -c,
    -m, -e, -L, -R and -D, -J (once only, and not after an -o ProxyCommand or
    ProxyJump), -W and -O (once each, and not together). An -o that cannot be read
    ends the checks: the configuration's reader refuses it later, in its words, as ssh
    would have there. Without the order, flag by flag."""
    from keytool.errors import FormatError
    from keytool.sshconfig_words import split_line

    values = {dest: iter(given.get(dest, [])) for dest in _CHECKED}
    values["option"] = iter(options)
    if order is None:
        order = [dest for dest in _CHECKED if dest != "option" for _ in given.get(dest, [])]
    port = jump = proxy = stdio = mux = False
    for dest in order:
        if dest not in values:
            continue
        value = next(values[dest], None)
        if value is None:
            continue
        if dest == "option":
            try:
                line = split_line(value, "command line")
            except FormatError:
                return
            if line is None or not line[1]:
                continue
            keyword, args = line[0], line[1]
            if keyword == "proxycommand":
                proxy = True
            elif keyword == "proxyjump" and not (proxy or jump):  # the first counts
                jump, proxy = True, args[0].lower() != "none"
        elif dest == "port":  # the first -p alone
            if not port:
                first_port([value])
            port = True
        elif dest in ("cipher", "mac"):
            _check_algorithms(value, dest)
        elif dest == "escape":
            check_escape(value)
        elif dest == "jump":
            if jump:  # ssh's words
                raise status_255(
                    KeytoolError(
                        "Only a single -J option is permitted "
                        "(use commas to separate multiple jump hops)"
                    )
                )
            if proxy:
                raise status_255(KeytoolError("Cannot specify -J with ProxyCommand"))
            check_jump(value)
            jump = proxy = True
        elif dest == "forward":
            if stdio:
                raise status_255(KeytoolError("stdio forward already specified"))
            if mux:
                raise status_255(KeytoolError("Cannot specify stdio forward with -O"))
            host_port(value)
            stdio = True
        elif dest == "control_command":
            if stdio:
                raise status_255(KeytoolError("Cannot specify multiplexing command with -W"))
            if mux:
                raise status_255(KeytoolError("Multiplexing command already specified"))
            if value not in _MUX_COMMANDS:
                raise status_255(KeytoolError("Invalid multiplex command."))
            mux = True
        elif dest in _FLAG_KEYWORDS:  # -L, -R, -D: as ssh parses them, ${NAME}s expanded
            try:
                _flag_line(dest, value)
            except KeytoolError as exc:
                raise status_255(exc) from None


def _check_algorithms(value: str, kind: str) -> None:
    """-c and -m as ssh 9.2 checks them, in its words: -c takes + and ^ but not -, -m
    none of them."""
    from keytool.errors import FormatError
    from keytool.sshconfig_values import check_algorithms

    try:
        if value[:1] == "-" or (kind == "mac" and value[:1] in "+^"):
            raise FormatError(value)
        check_algorithms(value, kind)
    except FormatError:
        raise status_255(KeytoolError(f"Unknown {kind} type '{value}'")) from None


def check_escape(value: str) -> None:
    """-e as ssh reads it: ``^`` and a character from @ to DEL, one byte, or none;
    anything else refused in its words (even when a later -e is good)."""
    data = value.encode("utf-8", "surrogateescape")
    if len(data) == 1 or value == "none":
        return
    if len(data) == 2 and data[0] == ord("^") and 64 <= data[1] < 128:
        return
    raise status_255(KeytoolError(f"Bad escape character '{value}'."))


#: what ssh's -J refuses in a hop's host name and user name
_HOST_BAD = set("'`\"$\\;&<>|(){}")
_USER_BAD = set("'`\";&<>|(){}")


def _name_bad(name: str, bad: set[str]) -> bool:
    return name[:1] == "-" or any(c in bad or ord(c) < 32 or ord(c) == 127 for c in name)


def check_jump(value: str) -> None:
    """-J as ssh's parse_jump reads it: a ``#`` and what follows left out, then every
    comma-separated hop ``[user@]host[:port]`` or an ssh:// URI, its host and user
    names without a leading ``-`` or a shell's special character; "Invalid -J
    argument" otherwise, after the name it found bad (ssh's words)."""
    from keytool.display import logged
    from keytool.errors import FormatError
    from keytool.sshconfig_values import parse_jump_host

    text = value.partition("#")[0].rstrip()
    if value.lower() == "none":
        return
    invalid = status_255(KeytoolError("Invalid -J argument"))
    for hop in reversed(text.split(",")):  # as ssh: from the last hop
        try:
            user, host, _ = parse_jump_host(hop)
        except FormatError:
            raise invalid from None
        uri = hop.startswith("ssh://")
        if (":" in host and "[" not in hop) or (uri and _name_bad(host, _HOST_BAD)):
            raise invalid  # an IPv6 address unbracketed; a URI's host as ssh takes it
        for what, name, bad in (("username", user, _USER_BAD), ("hostname", host, _HOST_BAD)):
            if name is not None and _name_bad(name, bad):
                with contextlib.suppress(OSError):
                    line = f'parse_jump: invalid {what} "{logged(name)}"\n'
                    os.write(2, line.encode("utf-8", "surrogateescape"))
                raise invalid

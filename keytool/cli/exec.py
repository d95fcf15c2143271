"""keytool exec: run a command on a server, like ``ssh user@host CMD``.

The remote command's stdout and stderr are relayed as they come, our stdin goes to
it, and keytool exits with its exit status (255 for connection, protocol and
authentication errors, and when the command died of a signal, as ssh does).
With -v, each step of the connection is told as it happens.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

from keytool.errors import KeytoolError, UsageError
from keytool.output import end_by

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable

    from keytool.blocking import BlockingClient, Served
    from keytool.localtty import LocalTerminal
    from keytool.sshconfig_resolved import ResolvedConfig
    from keytool.tunnels import Forwards
    from keytool.x11 import Forwarding as X11Forwarding

#: bound on the TCP connect when ConnectTimeout is not set, so it never hangs
CONNECT_TIMEOUT = 60.0
#: the agent to forward must take a connection within this, or is not forwarded
AGENT_CONNECT_TIMEOUT = 10.0


def _say(line: str) -> None:
    sys.stderr.write(f"keytool: {line}\n")
    sys.stderr.flush()


def run(
    destination: str | None,
    command: list[str],
    port: list[str] | None = None,
    identity: list[str] | None = None,
    option: list[str] | None = None,
    config_file: str | None = None,
    login: list[str] | None = None,
    verbose: int = 0,
    no_stdin: bool = False,
    forward: str | None = None,
    local_forward: list[str] | None = None,
    no_command: bool = False,
    background: bool = False,
    remote_forward: list[str] | None = None,
    dynamic_forward: list[str] | None = None,
    jump: str | None = None,
    cipher: str | None = None,
    mac: str | None = None,
    gateway: bool = False,
    quiet: bool = False,
    no_tty: bool = False,
    query: str | None = None,
    tty: int = 0,
    escape: str | None = None,
    subsystem: bool = False,
    agent_forwarding: bool = False,
    no_agent_forwarding: bool = False,
    compress: bool = False,
    ipv4: bool = False,
    ipv6: bool = False,
    bind_address: str | None = None,
    master: int = 0,
    control_path: str | None = None,
    control_command: str | None = None,
    log_file: str | None = None,
    x11: bool = False,
    x11_trusted: bool = False,
    no_x11: bool = False,
    version: bool = False,
    print_config: bool = False,
    bind_interface: str | None = None,
    given_order: list[str] | None = None,
    syslog: bool = False,
    no_gssapi_delegation: bool = False,
    gssapi: bool = False,
) -> int:
    del no_gssapi_delegation, gssapi  # no GSSAPI here: nothing to turn on or off
    if log_file is not None:
        _log_to(log_file)
    if syslog:  # as ssh -y: it wins over -E, whose file is made all the same
        _log_to_syslog()
    if version:  # as ssh -V: on stderr, and nothing else done
        from cryptography.hazmat.backends.openssl import backend

        from keytool import __version__

        print(f"keytool_{__version__}, {backend.openssl_version_text()}", file=sys.stderr)
        return 0
    first_port = _first_port(port or [])
    first_login = login[0] if login else None  # as ssh: the first -l
    if query is not None:
        from keytool.transport.query import query as algorithms

        try:
            print("\n".join(algorithms(query)))
        except KeytoolError as exc:
            exc.exit_code = 255
            raise
        return 0
    if control_command not in (None, "check", "forward", "cancel", "exit", "stop", "proxy"):
        error = KeytoolError("Invalid multiplex command.")  # ssh's words, before all else
        error.exit_code = 255
        raise error
    if not destination:  # optional only for -Q
        raise UsageError("exec: Missing argument 'destination' (see keytool exec --help)")
    for value, kind, what in ((cipher, "cipher", "cipher"), (mac, "mac", "mac")):
        if value is not None:  # -c and -m as ssh checks them, in its words
            from keytool.errors import FormatError
            from keytool.sshconfig_values import check_algorithms

            try:
                check_algorithms(value, kind)
            except FormatError:
                raise _status_255(KeytoolError(f"Unknown {what} type '{value}'")) from None
    request_tty = _tty_flags(given_order, option or [], tty, no_tty)
    option = [*flag_options(jump, cipher, mac, gateway, quiet), *(option or [])]
    if request_tty is not None:
        option.insert(0, f"RequestTTY={request_tty}")
    if escape is not None:
        option.insert(0, f"EscapeChar={escape}")
    if compress:
        option.insert(0, "Compression=yes")
    family = _last_given(given_order, ipv6=ipv6, ipv4=ipv4)  # as ssh: the last one
    if family is not None:
        option.insert(0, f"AddressFamily={'inet6' if family == 'ipv6' else 'inet'}")
    if bind_address is not None:
        option.insert(0, f"BindAddress={bind_address}")
    if bind_interface is not None:
        option.insert(0, f"BindInterface={bind_interface}")
    # as ssh: the last of -x, -X and -Y (-Y trusts all the same), of -a and -A
    forward_x11 = _last_given(given_order, no_x11=no_x11, x11=x11, x11_trusted=x11_trusted)
    if forward_x11 is not None:
        option.insert(0, f"ForwardX11={'no' if forward_x11 == 'no_x11' else 'yes'}")
        if x11_trusted:
            option.insert(0, "ForwardX11Trusted=yes")
    forward_agent = _last_given(
        given_order, no_agent_forwarding=no_agent_forwarding, agent_forwarding=agent_forwarding
    )
    if forward_agent is not None:
        option.insert(
            0, f"ForwardAgent={'no' if forward_agent == 'no_agent_forwarding' else 'yes'}"
        )
    if master:  # as ssh: each -M turns yes into ask and anything else into yes
        option.insert(0, f"ControlMaster={'yes' if master % 2 else 'ask'}")
    if control_path is not None:  # the last -S, as written (quoted: it may hold spaces)
        from keytool.sshconfig_words import quote_arg

        option.insert(0, f"ControlPath={quote_arg(control_path)}")
    if subsystem:
        if no_command:  # ssh's words
            raise KeytoolError("Cannot specify -N with -s/SessionType")
        if not command:
            raise _status_255(KeytoolError("You must specify a subsystem to invoke."))
        option.insert(0, "SessionType=subsystem")
    target = None
    if forward is not None:
        if background:
            raise _status_255(KeytoolError("-W forwards stdin and stdout: it takes no -f"))
        target = _host_port(forward)
        # as ssh: -W means no session (a command or -N changes nothing) and no other
        # forwards (ClearAllForwardings)
        command, no_command = [], False
        local_forward = remote_forward = dynamic_forward = None
        option.insert(0, "ClearAllForwardings=yes")
    elif no_command and command:
        raise KeytoolError("-N runs no command: give a command or -N, not both")
    if print_config:  # as ssh -G shows them: the flags that stand for settings
        shown = ["StdinNull=yes"] if no_stdin or background else []  # -f implies -n
        if no_command or target is not None:
            shown += ["SessionType=none", "RequestTTY=no"]
        if target is not None:
            shown.append("ExitOnForwardFailure=yes")
        if background and command:
            shown.append("ForkAfterAuthentication=yes")
        if verbose:
            shown.append(f"LogLevel={('DEBUG1', 'DEBUG2', 'DEBUG3')[min(verbose, 3) - 1]}")
        option[:0] = shown
    # as ssh: SIGTERM, SIGHUP, SIGINT and SIGQUIT end the connection the way every
    # other end does (the terminal restored, a master's control socket removed); once
    # logged in, silently with status 255 (SIGTERM with -N: 0, as ssh 9.2), before
    # that by the signal itself, as ssh dies of it while it connects
    import signal

    def killed(signum: int, frame: object) -> None:
        raise _Killed(signum)

    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
        # as ssh: one ignored by whoever started us stays ignored (nohup keytool exec ...)
        if signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, killed)
    try:
        code = _connect_and_run(
            destination,
            command,
            first_port,
            identity or [],
            option or [],
            config_file,
            first_login,
            verbose,
            no_stdin,
            target,
            local_forward or [],
            no_command,
            background,
            remote_forward or [],
            dynamic_forward or [],
            control_command=control_command,
            print_config=print_config,
            given_order=given_order,
        )
    except KeytoolError as exc:
        exc.exit_code = 255  # ssh's status for every failure of its own
        raise
    except _Killed as exc:
        if not _Killed.logged_in:
            end_by(exc.signum)
        code = 0 if exc.signum == signal.SIGTERM and no_command else 255
    except BrokenPipeError:  # whoever reads our output went away: as ssh, 255
        code = 255
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    # The command is done and its output written: leave now. Tearing the interpreter
    # down (modules, the event loop's leftovers) costs tens of milliseconds, and
    # whole-process time is what a user of ``keytool exec`` in a loop pays.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class _Killed(BaseException):
    """SIGTERM, SIGHUP, SIGINT or SIGQUIT came: unwinds the connection as any end does."""

    #: the user is authenticated: from then on, as in ssh's client loop, a signal ends
    #: the connection with status 255 rather than killing us
    logged_in = False

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _status_255(error: KeytoolError) -> KeytoolError:
    error.exit_code = 255
    return error


def _last_given(order: list[str] | None, **flags: bool) -> str | None:
    """Which of the ``flags`` given was given last, as ssh lets the last one count;
    None when none was. Without the order, the first named of those given."""
    given = [dest for dest, on in flags.items() if on]
    for dest in reversed(order or []):
        if dest in given:
            return dest
    return given[0] if given else None


def _tty_flags(order: list[str] | None, options: list[str], tty: int, no_tty: bool) -> str | None:
    """RequestTTY as ssh's -t and -T leave it, read in the order given: -T says no, -t
    says yes, or force when it was yes already (-tt; -o RequestTTY=yes before it). An
    -o before them all sets where they start, as ssh's first value counts; the flags
    win over any -o. None when neither flag was given."""
    if not (tty or no_tty):
        return None
    if order is None or not {"tty", "no_tty"} & set(order):  # not known: -T wins, -tt forces
        return "no" if no_tty else "force" if tty > 1 else "yes"
    from keytool.errors import FormatError
    from keytool.sshconfig_words import split_line

    state: str | None = None
    given = iter(options)
    for dest in order:
        if dest == "option":
            try:
                line = split_line(next(given, ""), "command line")
            except FormatError:
                line = None  # refused later, in the words of the configuration's reader
            if state is None and line is not None and line[0] == "requesttty" and line[1]:
                state = _REQUEST_TTY.get(line[1][0].lower())
        elif dest == "no_tty":
            state = "no"
        elif dest == "tty":
            state = "force" if state == "yes" else "yes"
    return state


#: RequestTTY's values as ssh reads them
_REQUEST_TTY = {
    "yes": "yes", "true": "yes", "no": "no", "false": "no", "force": "force", "auto": "auto"
}  # fmt: skip


def _first_port(given: list[str]) -> int | None:
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


def _log_to(path: str) -> None:
    """ssh -E: our own lines (errors, notices, -v's steps) are appended to ``path``
    (made 0600) instead of stderr; the remote command's stderr stays on ours."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:  # ssh's words and status
        print(f"Couldn't open logfile {path}: {exc.strerror}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    sys.stderr.flush()
    sys.stderr = open(fd, "w", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115


class _SyslogWriter(io.TextIOBase):
    """ssh -y: each line of ours a syslog message (facility USER, as ssh's default
    SyslogFacility), nothing on stderr; the remote command's stderr stays on ours."""

    def __init__(self) -> None:
        import syslog

        syslog.openlog("keytool", syslog.LOG_PID, syslog.LOG_USER)
        self._syslog = syslog
        self._pending = ""

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return -1  # not the terminal's stderr: ~? and ~v say so, as with -E

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line:
                self._syslog.syslog(self._syslog.LOG_INFO, line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._syslog.syslog(self._syslog.LOG_INFO, line)


def _log_to_syslog() -> None:
    sys.stderr.flush()
    sys.stderr = _SyslogWriter()


def flag_options(
    jump: str | None, cipher: str | None, mac: str | None, gateway: bool, quiet: bool
) -> list[str]:
    """ssh's flags that stand for ssh_config keywords (-J, -c, -m, -g, -q), as -o
    options; they come before any -o given, as ssh takes them."""
    options = ["LogLevel=QUIET"] if quiet else []
    options += ["GatewayPorts=yes"] if gateway else []
    given = (("ProxyJump", jump), ("Ciphers", cipher), ("MACs", mac))
    return options + [f"{keyword}={value}" for keyword, value in given if value is not None]


def _host_port(text: str) -> tuple[str, int]:
    """-W's HOST:PORT ([ADDRESS]:PORT for IPv6), as ssh takes it: a ProxyJump hop's
    form, with a port and without a user."""
    from keytool.errors import FormatError
    from keytool.sshconfig_values import parse_jump_host

    try:
        user, host, port = parse_jump_host(text)
    except FormatError:
        user, port = None, None
    if user is not None or port is None or text.startswith("ssh://"):
        raise _status_255(KeytoolError(f"Bad stdio forwarding specification '{text}'"))
    return host, port


#: the flags that stand for configuration lines, and their keywords
_FLAG_KEYWORDS = {
    "identity": "IdentityFile",
    "local_forward": "LocalForward",
    "remote_forward": "RemoteForward",
    "dynamic_forward": "DynamicForward",
}


def _flags_in_place(
    options: list[str], order: list[str] | None, flags: dict[str, list[str]]
) -> tuple[list[str], list[str] | None]:
    """-i, -L, -R and -D as the configuration lines they stand for, each among the -o
    options where it was given, as ssh reads them one by one (``order``: the dests as
    given; the options made of other flags come first, before the -o ones); and the
    order with them as -o's. Without the order, they come before every option."""
    given = order is not None and order.count("option") <= len(options)
    if order is not None and given:
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


def _flag_line(dest: str, value: str) -> str | None:
    """The configuration line of the flag ``dest`` given ``value``; None for an -i that
    names no file there, which ssh leaves out (saying so on stderr, whatever -E, -y or
    -q say), so that the default identities count again when no other is named."""
    from keytool.errors import FormatError
    from keytool.forwardspec import (
        RemoteDynamicForward,
        parse_dynamic_forward,
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
        "dynamic_forward": parse_dynamic_forward,
    }[dest]
    try:
        forward = parse(value)
    except FormatError as exc:
        raise KeytoolError(str(exc)) from None
    # a SOCKS proxy at the server's end is a RemoteForward line of one value
    shown = (
        forward.listen_label if isinstance(forward, RemoteDynamicForward) else forward.describe()
    )
    return f"{_FLAG_KEYWORDS[dest]}={shown}"


def _connect_and_run(
    destination: str,
    command: list[str],
    port: int | None,
    identity: list[str],
    option: list[str],
    config_file: str | None,
    login: str | None,
    verbose: int,
    no_stdin: bool,
    target: tuple[str, int] | None = None,
    local_forward: list[str] | None = None,
    no_command: bool = False,
    background: bool = False,
    remote_forward: list[str] | None = None,
    dynamic_forward: list[str] | None = None,
    control_command: str | None = None,
    print_config: bool = False,
    given_order: list[str] | None = None,
) -> int:
    from keytool import sshconfig_resolved, tcp
    from keytool.cli import argv_text
    from keytool.destination import resolve_command_line

    trace = _say if verbose else None
    # the destination and -l as the bytes typed, as ssh takes them in any locale
    destination = argv_text(destination)
    login = None if login is None else argv_text(login)
    flags = {
        "identity": identity,
        "local_forward": local_forward or [],
        "remote_forward": remote_forward or [],
        "dynamic_forward": dynamic_forward or [],
    }
    option, given_order = _flags_in_place(option, given_order, flags)
    # -o lines as the bytes typed, read as a config file's lines are (User=...)
    option = [argv_text(line) for line in option]
    resolved = resolve_command_line(
        destination,
        port=port,
        options=option,
        config_file=config_file,
        login=login,
        warn=trace,
        given_order=given_order,
    )
    if print_config:  # ssh -G: the configuration, and no connection
        from keytool.configdump import dump

        sys.stdout.write("".join(f"{line}\n" for line in dump(resolved)))
        return 0
    if target is not None:
        forwards = False
        no_session = fork = False
    else:
        fork = background or resolved.fork_after_authentication
        forwards = bool(
            resolved.local_forwards or resolved.remote_forwards or resolved.dynamic_forwards
        )
        no_session = no_command or resolved.session_type == "none"
        if resolved.remote_command is not None and not no_session:
            if command:  # ssh's words
                raise KeytoolError("Cannot execute command-line and remote command.")
            command = [resolved.remote_command]
        if fork or resolved.stdin_null:
            no_stdin = True  # as ssh -f and StdinNull: the session reads nothing
    agent_socket = None if no_session or target is not None else _agent_to_forward(resolved)
    want_x11 = resolved.forward_x11 and not no_session and target is None
    # served by the forwarding machinery
    forwards = forwards or agent_socket is not None or want_x11
    shell = target is None and not command and not no_session
    if control_command is not None:
        from keytool.cli import sharing

        return sharing.control(control_command, resolved, trace or _quiet)
    if shell and fork:  # ssh's words
        raise KeytoolError("Cannot fork into background without a command to execute.")
    want_tty = _wants_tty(resolved, shell, target is not None or no_session, no_stdin)
    # ssh joins the words with spaces and the remote shell splits them again
    # and sends them as the bytes given, UTF-8 or not
    remote_command = " ".join(command).encode("utf-8", "surrogateescape")
    master = False
    if resolved.control_path is not None:
        from keytool.cli import sharing

        if sharing.tries_master(resolved):  # a master already there serves us
            entries = sharing.environment_entries(_environment(resolved))
            shared = _through_master(
                resolved, trace or _quiet, remote_command, want_tty, no_stdin, entries,
                target, no_session,
            )  # fmt: skip
            if shared is not None:
                return shared
        master = target is None and sharing.wants_master(resolved)
        forwards = forwards or master  # a master is served by the forwarding machinery
    # Connect first, then load the SSH machinery: the server starts its side of the
    # connection (sshd forks and execs a session process) while Python imports.
    proxy = sshconfig_resolved.proxy_command(resolved)
    sock: _socket.socket
    if proxy is not None:
        if trace:
            trace(f"executing proxy command: {proxy}")
        sock = tcp.proxy_connect(proxy)
    else:
        if trace:
            trace(f"connecting to {resolved.hostname} port {resolved.port}")
        timeout = float(resolved.connect_timeout) if resolved.connect_timeout else CONNECT_TIMEOUT
        attempts = resolved.connection_attempts
        family = tcp.FAMILIES.get(resolved.address_family, 0)
        sock = tcp.connect(
            resolved.hostname,
            resolved.port,
            timeout,
            attempts,
            trace,
            family=family,
            bind_address=resolved.bind_address,
            keepalive=resolved.tcp_keep_alive,
            bind_interface=resolved.bind_interface,
            say=_say_plain if resolved.log_level not in ("QUIET", "FATAL", "ERROR") else None,
        )
    tcp.set_tos(sock, resolved.ip_qos[0])  # as ssh: interactive until logged in
    try:
        if resolved.required_rsa_size > 1024:
            _short_identities(resolved)
        from keytool.blocking import connect
        from keytool.options import options_from_config

        options = options_from_config(resolved, trace)
        persist = master and resolved.control_persist is not None
        if options.update_host_keys == "ask" and (
            persist or not (shell and want_tty and not options.batch_mode and options.shows_info)
        ):
            # as ssh: asked only in an interactive shell session on a terminal (not
            # for a command, -N, -T or -W, nor in BatchMode or below LogLevel INFO),
            # and never by a master that goes on in the background (ControlPersist)
            options = options.replace(update_host_keys="no")

        client = connect(options, sock)
        _Killed.logged_in = True
        # the host key changed and checking is off: as ssh, nothing a man in the middle
        # could use (the password was held back by the login itself)
        cancelled = not client.allow_password and (
            options.password_authentication or options.kbd_interactive_authentication
        )
        if agent_socket is not None and not client.allow_password:
            _say_plain("Agent forwarding is disabled to avoid man-in-the-middle attacks.")
            agent_socket = None
            cancelled = True
        if agent_socket is not None and not _agent_reachable(agent_socket, client.trace):
            agent_socket = None  # as ssh: no agent here, none asked for at the server
        # a master forwards X11 for its clients' sessions too, to its own display
        want_x11 = want_x11 or (master and resolved.forward_x11)
        if want_x11 and not client.allow_password:  # nor our display, for anyone
            _say_plain("X11 forwarding is disabled to avoid man-in-the-middle attacks.")
            want_x11 = False
            cancelled = True
        has_ports = resolved.local_forwards or resolved.remote_forwards
        if (has_ports or resolved.dynamic_forwards) and not client.allow_password:
            _say_plain("Port forwarding is disabled to avoid man-in-the-middle attacks.")
            resolved = resolved._replace(local_forwards=(), remote_forwards=(), dynamic_forwards=())
            cancelled = True
        if cancelled and resolved.exit_on_forward_failure:  # ssh's words and status
            _say_plain("Error: forwarding disabled due to host key check failure")
            return 255
        x11 = _x11_forwarding(resolved, client.trace) if want_x11 else None
        # IPQoS, as ssh decides it: a session with a terminal or X11 is interactive; no
        # session at all is, unless it is a connection-sharing master
        if target is None and not no_session:
            interactive = want_tty or x11 is not None
        else:
            interactive = resolved.control_master == "no"
        tcp.set_tos(sock, resolved.ip_qos[0 if interactive else 1])
        try:
            stdin = None if no_stdin or sys.stdin is None else 0
            if target is not None:
                _local_command(resolved)
                client.forward(*target, stdin)
                return 0
            env = _environment(resolved)
            # ControlPersist: the master goes to the background and this session runs
            # through it, as a client of its own (which sees to the terminal)
            detach = master and resolved.control_persist is not None and not fork and not no_session
            if want_tty and not detach:
                # ~C's command line adds forwards: the forwarding machinery serves it
                forwards = forwards or resolved.enable_escape_commandline
                return _with_terminal(
                    client, resolved, remote_command, stdin, env, shell, forwards, no_session,
                    agent_socket, master, x11,
                )  # fmt: skip
            if not forwards and not no_session:
                _local_command(resolved)
                if fork:
                    _to_background()
                subsystem = resolved.session_type == "subsystem"
                result = client.exec(
                    remote_command, stdin, env=env, shell=shell, subsystem=subsystem
                )
                return result.ssh_exit_code
            return _with_forwards(
                client, resolved, no_session, remote_command, stdin, fork, env,
                agent_socket=agent_socket, master=master,
                passenger=(want_tty, no_stdin) if detach else None, x11=x11,
            )  # fmt: skip
        finally:
            client.finish_host_key_update()
            client.close()
    finally:
        sock.close()


def _local_command(resolved: ResolvedConfig, terminal: LocalTerminal | None = None) -> None:
    """PermitLocalCommand yes: LocalCommand, run as ssh runs it (``$SHELL -c``, else
    /bin/sh; our stdin, stdout and stderr; waited for, its status not looked at)."""
    command = resolved.local_command
    if not resolved.permit_local_command or not command:
        return
    import contextlib
    import subprocess

    shell = os.environ.get("SHELL") or "/bin/sh"
    sys.stdout.flush()
    sys.stderr.flush()
    with terminal.suspended() if terminal is not None else contextlib.nullcontext():
        try:
            subprocess.run([shell, "-c", command], check=False)
        except OSError as exc:  # ssh's words
            _say_plain(f'Couldn\'t execute {shell} -c "{command}": {exc.strerror}')


def _quiet(line: str) -> None:
    """No trace (without -v)."""


def _say_plain(line: str) -> None:
    """A line in ssh's words, without keytool's prefix."""
    print(line, file=sys.stderr)


def _agent_to_forward(resolved: ResolvedConfig) -> str | None:
    """The agent socket ForwardAgent names: SSH_AUTH_SOCK's for yes, a variable's for
    $VAR, or a path; None when off or there is none (as ssh: said, and no forwarding)."""
    setting = resolved.forward_agent
    if setting == "no":
        return None
    if setting == "yes" or setting.startswith("$"):
        name = "SSH_AUTH_SOCK" if setting == "yes" else setting[1:]
        return os.environ.get(name) or None
    if not os.path.exists(setting):
        _say_plain(f'Cannot forward agent socket path "{setting}": No such file or directory')
        return None
    return setting


def _agent_reachable(path: str, trace: Callable[[str], None]) -> bool:
    """Whether the agent to forward answers a connection now, as the session is set up:
    ssh asks for agent forwarding only then (the reason a -v line)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(AGENT_CONNECT_TIMEOUT)
        try:
            sock.connect(path)
        except (OSError, ValueError) as exc:  # ValueError: a path too long for a socket
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            trace(
                f"agent forwarding: not asked for: cannot connect to the agent at {path}: {reason}"
            )
            return False
    return True


def _short_identities(resolved: ResolvedConfig) -> None:
    """RequiredRSASize: ssh's line for each identity file whose RSA key is shorter, said
    as ssh loads them (connected, before the key exchange); login_keys.py skips them."""
    from keytool.keyfiles import public_of_file
    from keytool.login_hostkey import too_short

    for path in resolved.identity_files:
        if not os.path.exists(path):
            continue
        try:
            key = public_of_file(path).key
        except KeytoolError:
            continue
        if too_short(key, resolved.required_rsa_size):
            _say_plain(f'load pubkey "{path}": Invalid key length')


def _x11_forwarding(resolved: ResolvedConfig, trace: Callable[[str], None]) -> X11Forwarding | None:
    """ForwardX11: the display and its cookies (xauth's real one, a fake one for the
    server); None, said in ssh's words where ssh says it, when it cannot be had."""
    from keytool.xauth import forwarding

    say = _say_plain if resolved.log_level not in ("QUIET", "FATAL") else _quiet
    return forwarding(
        os.environ.get("DISPLAY"),
        resolved.xauth_location,
        resolved.forward_x11_trusted,
        resolved.forward_x11_timeout,
        say,
        trace,
    )


def _wants_tty(resolved: ResolvedConfig, shell: bool, no_session: bool, no_stdin: bool) -> bool:
    """Whether to ask for a pseudo-terminal, as ssh decides: RequestTTY yes or force,
    or a shell unless it is no; never without a session; and, unless forced, only when
    our stdin is a terminal (else ssh's notice)."""
    request = resolved.request_tty
    wanted = request in ("yes", "force") or (shell and request != "no")
    if no_session:
        return False
    stdin_tty = not no_stdin and sys.stdin is not None and os.isatty(0)
    if not stdin_tty and request != "force":
        if wanted and resolved.log_level not in ("QUIET", "FATAL", "ERROR"):
            _say_plain("Pseudo-terminal will not be allocated because stdin is not a terminal.")
        return False
    return wanted


def _with_terminal(
    client: BlockingClient,
    resolved: ResolvedConfig,
    command: bytes,
    stdin: int | None,
    env: list[tuple[bytes, bytes]],
    shell: bool,
    forwards: bool,
    no_session: bool,
    agent_socket: str | None,
    master: bool = False,
    x11: X11Forwarding | None = None,
) -> int:
    """The session with a pseudo-terminal: our terminal raw meanwhile (restored after,
    whatever happens), its size followed, ssh's escapes read from the keyboard; then
    ssh's "Connection to HOST closed." """
    from keytool.localtty import LocalTerminal

    if not forwards:
        _local_command(resolved)  # before the terminal turns raw, as ssh
    required = resolved.request_tty in ("yes", "force")
    with LocalTerminal(0, resolved.escape_char, required, resolved.set_env) as terminal:
        terminal.has_command_line = resolved.enable_escape_commandline
        terminal.local_commands = resolved.permit_local_command
        if client.host_keys is not None:
            client.host_keys.ask = terminal.ask_host_keys
        if forwards:
            code = _with_forwards(
                client, resolved, no_session, command, stdin, False, env, terminal, shell,
                agent_socket, master, x11=x11,
            )  # fmt: skip
        else:
            result = client.exec(
                command,
                stdin,
                env=env,
                terminal=terminal,
                shell=shell,
                subsystem=resolved.session_type == "subsystem",
            )
            code = result.ssh_exit_code
    if resolved.log_level not in ("QUIET", "FATAL", "ERROR"):
        # as ssh writes it, once the terminal is itself again
        sys.stderr.write(f"Connection to {resolved.hostname} closed.\r\n")
        sys.stderr.flush()
    return code


def _with_forwards(
    client: BlockingClient,
    resolved: ResolvedConfig,
    no_session: bool,
    command: bytes,
    stdin: int | None,
    fork: bool,
    env: list[tuple[bytes, bytes]],
    terminal: LocalTerminal | None = None,
    shell: bool = False,
    agent_socket: str | None = None,
    master: bool = False,
    passenger: tuple[bool, bool] | None = None,
    x11: X11Forwarding | None = None,
) -> int:
    """-L forwards listen, and -R forwards are asked of the server, once the user is
    authenticated, as in ssh. With -N they are served until the connection ends; with a
    command, while it runs and then until the connections already forwarded close (new
    ones are no longer taken).

    With ``master``, the connection is shared on the ControlPath too (the forwards
    then go on as long as it serves clients). With ``passenger`` (ControlPersist,
    and whether the session wants a terminal and has no stdin), the master goes to
    the background and this process runs the session through it."""
    from keytool.forwardspec import (
        parse_dynamic_forward,
        parse_local_forward,
        parse_remote_forward,
    )
    from keytool.tunnels import Forwards

    local = [parse_local_forward(spec) for spec in resolved.local_forwards]
    local += [parse_dynamic_forward(spec) for spec in resolved.dynamic_forwards]
    remote = [parse_remote_forward(spec) for spec in resolved.remote_forwards]
    forwards = Forwards(
        client.conn,
        local,
        resolved.gateway_ports,
        client.trace,
        _say,
        remote,
        bind_mask=resolved.stream_local_bind_mask,
        bind_unlink=resolved.stream_local_bind_unlink,
        agent_socket=agent_socket,
        exit_on_failure=resolved.exit_on_forward_failure,
        x11=x11,
        permit_remote_open=resolved.permit_remote_open,
        quiet=resolved.log_level in ("QUIET", "FATAL", "ERROR"),
        announce=_say_plain,
    )
    forwards.listen()
    if remote:
        try:
            client.request_forwards(forwards)
        except BaseException:
            forwards.close()
            raise
    served: Served = forwards
    if master:
        served = _share(client, resolved, forwards)
    _local_command(resolved, terminal)  # as ssh: the forwards listen, the session to come
    if served is not forwards and resolved.control_persist is not None:
        if passenger is not None:
            _detach_master(resolved, command, env, *passenger)
            no_session = True  # the master in the background: no session of its own
        else:
            fork = True  # -N or -f with ControlPersist: the master goes to the background
    if fork:
        # after listening: a port in use is still told to the caller
        _to_background(no_session, client.options.trace is not None)
    try:
        if no_session:
            client.serve(served)  # until the connection ends (or a master is done)
            return 0
        result = client.exec(
            command,
            stdin,
            forwards=served,
            env=env,
            terminal=terminal,
            shell=shell,
            subsystem=resolved.session_type == "subsystem",
        )
        if served.active:
            client.trace("port forwarding: waiting for forwarded connections to close")
        client.serve(served, listening=False)
        return result.ssh_exit_code
    finally:
        served.close()


def _share(client: BlockingClient, resolved: ResolvedConfig, forwards: Forwards) -> Served:
    """The connection shared on the ControlPath (``keytool.muxmaster``), or, when a
    socket is there already, not (ssh's words say so), as ssh does."""
    from keytool.muxmaster import Multiplexer

    assert resolved.control_path is not None
    from keytool.terminal import ask_permission

    ask = ask_permission if resolved.control_master in ("ask", "autoask") else None
    served = Multiplexer(
        client.conn,
        forwards,
        resolved.control_path,
        resolved.host,
        client.trace,
        _say,
        ask,
        resolved.send_env,
        resolved.control_persist,
        resolved.set_env,
        client.rekey,
    )
    if not served.listen():
        _say_plain(f"ControlSocket {resolved.control_path} already exists, disabling multiplexing")
        return forwards
    return served


def _through_master(
    resolved: ResolvedConfig,
    trace: Callable[[str], None],
    command: bytes,
    want_tty: bool,
    no_stdin: bool,
    entries: list[str],
    target: tuple[str, int] | None,
    no_session: bool,
) -> int | None:
    """The session (or -W) through the master at the ControlPath: its status, or None
    to connect ourselves: no master there, it refused, or, as ssh's client, it failed
    the hello exchange or went away before the session was open (said in a line)."""
    from keytool.cli import sharing
    from keytool.muxclient import MasterLost, MasterUnusable

    try:
        return sharing.through_master(
            resolved, trace, command, want_tty, no_stdin, entries, target, no_session
        )
    except MasterUnusable as exc:
        problem = str(exc)
    except MasterLost as exc:
        if target is not None:  # -W: as ssh, not tried again
            raise
        problem = str(exc)
    if resolved.log_level not in ("QUIET", "FATAL"):
        _say(problem)
    return None


def _detach_master(
    resolved: ResolvedConfig,
    command: bytes,
    env: list[tuple[bytes, bytes]],
    want_tty: bool,
    no_stdin: bool,
) -> None:
    """ControlPersist: this process forks; the child returns and serves as the master
    in the background (stdio on /dev/null, a session of its own); the parent runs the
    session through it, as ssh's client would, and exits with its status."""
    from keytool.cli import sharing

    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork():
        entries = sharing.environment_entries(env)
        try:
            status = sharing.through_master(resolved, _quiet, command, want_tty, no_stdin, entries)
        except KeytoolError as exc:
            _say(str(exc))
            status = None
        if status is None:
            _say_plain("Failed to connect to new control master")
            status = 255
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _environment(resolved: ResolvedConfig) -> list[tuple[bytes, bytes]]:
    """What ssh offers the server before the command: our variables that SendEnv's
    patterns match, in our environment's order and as their bytes, then SetEnv's
    entries."""
    from keytool.patterns import match_pattern

    sent = [
        (name, value)
        for name, value in os.environb.items()
        if any(
            match_pattern(name.decode("utf-8", "surrogateescape"), pattern)
            for pattern in resolved.send_env
        )
    ]
    for entry in resolved.set_env:
        name, _, value = entry.partition("=")
        sent.append(
            (name.encode("utf-8", "surrogateescape"), value.encode("utf-8", "surrogateescape"))
        )
    return sent


def _to_background(no_session: bool = False, keep_stderr: bool = False) -> None:
    """ssh -f: the caller gets its prompt back (exit status 0) once the user is
    authenticated and the forwards listen; a child in a session of its own goes on,
    stdin from /dev/null. A command's output still goes where ours went; with no
    session (-N), as ssh, stdout and stderr (kept with -v) go to /dev/null too, so a
    caller reading them is not kept waiting by the background process."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork():
        os._exit(0)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    if no_session:
        os.dup2(null, 1)
        if not keep_stderr:
            os.dup2(null, 2)
    os.close(null)

"""keytool exec's connection: the configuration resolved, the TCP connection (or
ProxyCommand), login, and the session chosen: a command, a terminal, -W, forwards,
or a master's client."""

from __future__ import annotations

import os
import sys

from keytool.cli.exec_flags import flags_in_place, log_level_flags
from keytool.cli.exec_serve import (
    environment,
    local_command,
    say,
    say_nothing,
    say_plain,
    through_master,
    to_background,
    with_forwards,
    with_terminal,
)
from keytool.errors import KeytoolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable

    from keytool.sshconfig_resolved import ResolvedConfig
    from keytool.x11 import Forwarding as X11Forwarding


#: bound on the TCP connect when ConnectTimeout is not set, so it never hangs
CONNECT_TIMEOUT = 60.0


#: the agent to forward must take a connection within this, or is not forwarded
AGENT_CONNECT_TIMEOUT = 10.0


class Killed(BaseException):
    """SIGTERM, SIGHUP, SIGINT or SIGQUIT came: unwinds the connection as any end does."""

    #: the user is authenticated: from then on, as in ssh's client loop, a signal ends
    #: the connection with status 255 rather than killing us
    logged_in = False

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: the lines of flags whose value ssh takes empty (-b '', -B '', -S '')
_EMPTY_FLAGS = ("BindAddress=", "BindInterface=", "ControlPath=")


def _subsystem(option: list[str]) -> bool:
    """Whether the first SessionType of the -o lines is subsystem (as ssh, the first
    one counts; a line that does not parse is left to the configuration reader)."""
    from keytool.errors import FormatError
    from keytool.sshconfig_words import FROM_FLAG, split_line

    for line in option:
        try:
            parsed = split_line(line.removeprefix(FROM_FLAG), "-o")
        except FormatError:
            continue
        if parsed is not None and parsed[0] == "sessiontype" and parsed[1]:
            return parsed[1][0].lower() == "subsystem"
    return False


def _no_subsystem() -> KeytoolError:
    from keytool.cli.exec_flags import status_255

    return status_255(KeytoolError("You must specify a subsystem to invoke."))  # ssh's words


def connect_and_run(
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
    agent_flag: bool | None = None,
) -> int:
    from keytool import sshconfig_resolved, tcp
    from keytool.cli import argv_text
    from keytool.destination import resolve_command_line

    # -v's steps as ssh's debug lines: from LogLevel DEBUG1 up, as -v and -q leave it
    # while the configuration is read (-v -q: none), then as it is once read
    flag_level = log_level_flags(given_order) if given_order is not None else None
    before = verbose and (flag_level is None or flag_level.startswith("DEBUG"))
    trace = say if before else None
    # the destination and -l as the bytes typed, as ssh takes them in any locale
    destination = argv_text(destination)
    login = None if login is None else argv_text(login)
    flags = {
        "identity": identity,
        "local_forward": local_forward or [],
        "remote_forward": remote_forward or [],
        "dynamic_forward": dynamic_forward or [],
    }
    from keytool.sshconfig_words import FROM_FLAG

    # -b, -B and -S as ssh's getopt takes them: an empty value too (the made lines first)
    made = len(option) - given_order.count("option") if given_order is not None else 0
    option = [
        FROM_FLAG + line if at < made and line.startswith(_EMPTY_FLAGS) else line
        for at, line in enumerate(option)
    ]
    option, given_order = flags_in_place(option, given_order, flags)
    if login == "":  # -l '': an empty user, as ssh takes it, a line where -l was given
        place = 0
        if given_order is not None and "login" in given_order:
            at = given_order.index("login")
            place = given_order[:at].count("option")
            given_order = [*given_order[:at], "option", *given_order[at + 1 :]]
        option.insert(place, f'{FROM_FLAG}User=""')
        login = None
    # -o lines as the bytes typed, read as a config file's lines are (User=...)
    option = [argv_text(line) for line in option]
    # as ssh: SessionType subsystem from -o with no subsystem named is refused once the
    # -o lines are read, before the config files (their errors, theirs after it)
    bare = not command and not no_command and target is None and _subsystem(option)
    try:
        resolved = resolve_command_line(
            destination,
            port=port,
            options=option,
            config_file=config_file,
            login=login,
            warn=trace,
            given_order=given_order,
        )
    except KeytoolError as exc:
        if bare and not str(exc).startswith("command-line option"):
            raise _no_subsystem() from None
        raise
    if bare:
        raise _no_subsystem()
    if agent_flag is not None:  # -A or -a: on or off, a socket named in the config kept
        shown = resolved.forward_agent
        if shown in ("yes", "no"):
            shown = "yes" if agent_flag else "no"
        resolved = resolved._replace(forward_agent=shown, agent_forwarding=agent_flag)
    trace = say if resolved.log_level.startswith("DEBUG") else None
    if resolved.connection_attempts <= 0:  # ssh's words, once the config is read
        if resolved.log_level == "QUIET":  # as ssh's fatal(): said at no level
            return 255
        raise KeytoolError("Invalid number of ConnectionAttempts")
    if print_config:  # ssh -G: the configuration, and no connection
        from keytool.configdump import dump

        # as ssh: -f (or the setting) with nothing to run is refused before the first line
        lines = dump(resolved, command_given=bool(command))
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        return 0
    if resolved.local_command_error is not None:  # its tokens, expanded to run it
        raise KeytoolError(resolved.local_command_error)
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

        return sharing.control(control_command, resolved, trace or say_nothing)
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
            entries = sharing.environment_entries(environment(resolved))
            shared = through_master(
                resolved, trace or say_nothing, remote_command, want_tty, no_stdin, entries,
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
            say=say_plain if resolved.log_level not in ("QUIET", "FATAL", "ERROR") else None,
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
        Killed.logged_in = True
        # the host key changed and checking is off: as ssh, nothing a man in the middle
        # could use (the password was held back by the login itself)
        cancelled = not client.allow_password and (
            options.password_authentication or options.kbd_interactive_authentication
        )
        if agent_socket is not None and not client.allow_password:
            say_plain("Agent forwarding is disabled to avoid man-in-the-middle attacks.")
            agent_socket = None
            cancelled = True
        if agent_socket is not None and not _agent_reachable(agent_socket, client.trace):
            agent_socket = None  # as ssh: no agent here, none asked for at the server
        # a master forwards X11 for its clients' sessions too, to its own display
        want_x11 = want_x11 or (master and resolved.forward_x11)
        if want_x11 and not client.allow_password:  # nor our display, for anyone
            say_plain("X11 forwarding is disabled to avoid man-in-the-middle attacks.")
            want_x11 = False
            cancelled = True
        has_ports = resolved.local_forwards or resolved.remote_forwards
        if (has_ports or resolved.dynamic_forwards) and not client.allow_password:
            say_plain("Port forwarding is disabled to avoid man-in-the-middle attacks.")
            resolved = resolved._replace(local_forwards=(), remote_forwards=(), dynamic_forwards=())
            cancelled = True
        if cancelled and resolved.exit_on_forward_failure:  # ssh's words and status
            say_plain("Error: forwarding disabled due to host key check failure")
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
                local_command(resolved)
                client.forward(*target, stdin)
                return 0
            env = environment(resolved)
            # ControlPersist: the master goes to the background and this session runs
            # through it, as a client of its own (which sees to the terminal)
            detach = master and resolved.control_persist is not None and not fork and not no_session
            if want_tty and not detach:
                # ~C's command line adds forwards: the forwarding machinery serves it
                forwards = forwards or resolved.enable_escape_commandline
                return with_terminal(
                    client, resolved, remote_command, stdin, env, shell, forwards, no_session,
                    agent_socket, master, x11,
                )  # fmt: skip
            if not forwards and not no_session:
                local_command(resolved)
                if fork:
                    to_background()
                subsystem = resolved.session_type == "subsystem"
                result = client.exec(
                    remote_command, stdin, env=env, shell=shell, subsystem=subsystem
                )
                return result.ssh_exit_code
            return with_forwards(
                client, resolved, no_session, remote_command, stdin, fork, env,
                agent_socket=agent_socket, master=master,
                passenger=(want_tty, no_stdin) if detach else None, x11=x11,
            )  # fmt: skip
        finally:
            client.finish_host_key_update()
            client.close()
    finally:
        sock.close()


def _agent_to_forward(resolved: ResolvedConfig) -> str | None:
    """The agent socket ForwardAgent names: SSH_AUTH_SOCK's for yes, a variable's for
    $VAR, or a path; None when off or there is none (as ssh: said, and no forwarding).
    -A and -a turn it on or off, a socket the configuration names kept (as ssh)."""
    setting = resolved.forward_agent
    on = resolved.agent_forwarding
    if not (setting != "no" if on is None else on):
        return None
    if setting in ("yes", "no") or setting.startswith("$"):
        name = "SSH_AUTH_SOCK" if setting in ("yes", "no") else setting[1:]
        return os.environ.get(name) or None
    if not os.path.exists(setting):
        say_plain(f'Cannot forward agent socket path "{setting}": No such file or directory')
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
            say_plain(f'load pubkey "{path}": Invalid key length')


def _x11_forwarding(resolved: ResolvedConfig, trace: Callable[[str], None]) -> X11Forwarding | None:
    """ForwardX11: the display and its cookies (xauth's real one, a fake one for the
    server); None, said in ssh's words where ssh says it, when it cannot be had."""
    from keytool.xauth import forwarding

    say = say_plain if resolved.log_level not in ("QUIET", "FATAL") else say_nothing
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
            say_plain("Pseudo-terminal will not be allocated because stdin is not a terminal.")
        return False
    return wanted

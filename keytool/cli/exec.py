"""keytool exec: run a command on a server, like ``ssh user@host CMD``.

The remote command's stdout and stderr are relayed as they come, our stdin goes to
it, and keytool exits with its exit status (255 for connection, protocol and
authentication errors, and when the command died of a signal, as ssh does).
With -v, each step of the connection is told as it happens.
"""

from __future__ import annotations

import contextlib
import os
import sys

from keytool.cli.exec_connect import Killed, connect_and_run
from keytool.cli.exec_flags import (
    first_port,
    flag_options,
    getopt_checks,
    host_port,
    last_given,
    session_flags,
    status_255,
    tty_flags,
)
from keytool.cli.exec_log import log_to, log_to_syslog
from keytool.errors import KeytoolError, UsageError
from keytool.output import end_by


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
    forward: list[str] | None = None,
    local_forward: list[str] | None = None,
    no_command: bool = False,
    background: bool = False,
    remote_forward: list[str] | None = None,
    dynamic_forward: list[str] | None = None,
    jump: list[str] | None = None,
    cipher: list[str] | None = None,
    mac: list[str] | None = None,
    gateway: bool = False,
    quiet: bool = False,
    no_tty: bool = False,
    query: str | None = None,
    tty: int = 0,
    escape: list[str] | None = None,
    subsystem: bool = False,
    agent_forwarding: bool = False,
    no_agent_forwarding: bool = False,
    compress: bool = False,
    ipv4: bool = False,
    ipv6: bool = False,
    bind_address: str | None = None,
    master: int = 0,
    control_path: str | None = None,
    control_command: list[str] | None = None,
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
    if version:  # as ssh -V: on stderr, and nothing else done
        from cryptography.hazmat.backends.openssl import backend

        from keytool import __version__

        print(f"keytool_{__version__}, {backend.openssl_version_text()}", file=sys.stderr)
        return 0
    first_login = login[0] if login else None  # as ssh: the first -l
    if query is not None:
        from keytool.transport.query import query as algorithms

        first_port(port or [])  # as ssh: a -p before -Q is checked
        try:
            print("\n".join(algorithms(query)))
        except KeytoolError as exc:
            exc.exit_code = 255
            raise
        return 0
    # as ssh's getopt: -N, -s and -W against each other and -o SessionType, as given
    session = session_flags(given_order, option or [], no_command, subsystem)
    # as ssh's getopt: each flag checked as it comes, before the destination is
    given = {
        "port": port or [], "cipher": cipher or [], "mac": mac or [], "escape": escape or [],
        "jump": jump or [], "forward": forward or [], "control_command": control_command or [],
        "local_forward": local_forward or [], "remote_forward": remote_forward or [],
        "dynamic_forward": dynamic_forward or [],
    }  # fmt: skip
    getopt_checks(given_order, option or [], given)
    port_given = first_port(port or [])
    if not destination:  # optional only for -Q
        raise UsageError("exec: Missing argument 'destination' (see keytool exec --help)")
    # as ssh: its log goes to -E's file (or syslog) once the command line is read
    if log_file is not None:
        log_to(log_file)
    if syslog:  # as ssh -y: it wins over -E, whose file is made all the same
        log_to_syslog()
    # each checked above: the last -c, -m and -e count, one -J, -W and -O at most
    last_jump, last_cipher, last_mac, last_escape, stdio, control = (
        values[-1] if values else None
        for values in (jump, cipher, mac, escape, forward, control_command)
    )
    if last_jump is not None:  # as ssh's parse_jump: a comment and the blanks before it cut
        last_jump = last_jump.partition("#")[0].rstrip()
    request_tty = tty_flags(given_order, option or [], tty, no_tty)
    option = [*flag_options(last_jump, last_cipher, last_mac, gateway, quiet), *(option or [])]
    if request_tty is not None:
        option.insert(0, f"RequestTTY={request_tty}")
    if last_escape is not None:
        option.insert(0, f"EscapeChar={last_escape}")
    if compress:
        option.insert(0, "Compression=yes")
    family = last_given(given_order, ipv6=ipv6, ipv4=ipv4)  # as ssh: the last one
    if family is not None:
        option.insert(0, f"AddressFamily={'inet6' if family == 'ipv6' else 'inet'}")
    if bind_address is not None:
        option.insert(0, f"BindAddress={bind_address}")
    if bind_interface is not None:
        option.insert(0, f"BindInterface={bind_interface}")
    # as ssh: the last of -x, -X and -Y (-Y trusts all the same), of -a and -A
    forward_x11 = last_given(given_order, no_x11=no_x11, x11=x11, x11_trusted=x11_trusted)
    if forward_x11 is not None:
        option.insert(0, f"ForwardX11={'no' if forward_x11 == 'no_x11' else 'yes'}")
        if x11_trusted:
            option.insert(0, "ForwardX11Trusted=yes")
    # -A and -a turn forwarding on or off, as ssh, whatever ForwardAgent says, and leave
    # the socket it names (applied once the configuration is read)
    forward_agent = last_given(
        given_order, no_agent_forwarding=no_agent_forwarding, agent_forwarding=agent_forwarding
    )
    agent_flag = None if forward_agent is None else forward_agent == "agent_forwarding"
    if master:  # as ssh: each -M turns yes into ask and anything else into yes
        option.insert(0, f"ControlMaster={'yes' if master % 2 else 'ask'}")
    if control_path is not None:  # the last -S, as written (quoted: it may hold spaces)
        from keytool.sshconfig_words import quote_arg

        option.insert(0, f"ControlPath={quote_arg(control_path)}")
    if subsystem and session == "subsystem":  # not after -W, which means no session
        if not command:  # ssh's words
            raise status_255(KeytoolError("You must specify a subsystem to invoke."))
        option.insert(0, "SessionType=subsystem")
    target = None
    if stdio is not None:
        if background and not print_config:  # ssh -G shows -f -W as it is
            raise status_255(KeytoolError("-W forwards stdin and stdout: it takes no -f"))
        target = host_port(stdio)
        # as ssh: -W means no session (a command or -N changes nothing) and no other
        # forwards (ClearAllForwardings)
        command, no_command = [], False
        local_forward = remote_forward = dynamic_forward = None
        option.insert(0, "ClearAllForwardings=yes")
    elif no_command and command:
        raise KeytoolError("-N runs no command: give a command or -N, not both")
    if verbose:  # as ssh: -v is LogLevel DEBUG1 and up (read with -q, in the order given)
        option.insert(0, f"LogLevel={('DEBUG1', 'DEBUG2', 'DEBUG3')[min(verbose, 3) - 1]}")
    if print_config:  # as ssh -G shows them: the flags that stand for settings
        shown = ["StdinNull=yes"] if no_stdin or background else []  # -f implies -n
        if no_command or target is not None:
            shown += ["SessionType=none", "RequestTTY=no"]
        if target is not None:
            shown.append("ExitOnForwardFailure=yes")
        if background:
            shown.append("ForkAfterAuthentication=yes")
        option[:0] = shown
    # as ssh: SIGTERM, SIGHUP, SIGINT and SIGQUIT end the connection the way every
    # other end does (the terminal restored, a master's control socket removed); once
    # logged in, silently with status 255 (SIGTERM with -N: 0, as ssh 9.2), before
    # that by the signal itself, as ssh dies of it while it connects
    import signal

    def killed(signum: int, frame: object) -> None:
        raise Killed(signum)

    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
        # as ssh: one ignored by whoever started us stays ignored (nohup keytool exec ...)
        if signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, killed)
    try:
        code = connect_and_run(
            destination,
            command,
            port_given,
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
            control_command=control,
            print_config=print_config,
            given_order=given_order,
            agent_flag=agent_flag,
        )
    except KeytoolError as exc:
        exc.exit_code = 255  # ssh's status for every failure of its own
        raise
    except Killed as exc:
        if not Killed.logged_in:
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

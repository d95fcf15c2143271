"""keytool exec's sessions once logged in: on a terminal, with forwards (and as a
connection-sharing master), through a master, and going to the background."""

from __future__ import annotations

import os
import sys

from keytool.errors import KeytoolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from keytool.blocking import BlockingClient, Served
    from keytool.localtty import LocalTerminal
    from keytool.sshconfig_resolved import ResolvedConfig
    from keytool.tunnels import Forwards
    from keytool.x11 import Forwarding as X11Forwarding


def say(line: str) -> None:
    sys.stderr.write(f"keytool: {line}\n")
    sys.stderr.flush()


def say_nothing(line: str) -> None:
    """No trace (without -v)."""


def say_plain(line: str) -> None:
    """A line in ssh's words, without keytool's prefix."""
    print(line, file=sys.stderr)


def local_command(resolved: ResolvedConfig, terminal: LocalTerminal | None = None) -> None:
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
            say_plain(f'Couldn\'t execute {shell} -c "{command}": {exc.strerror}')


def with_terminal(
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
        local_command(resolved)  # before the terminal turns raw, as ssh
    required = resolved.request_tty in ("yes", "force")
    with LocalTerminal(0, resolved.escape_char, required, resolved.set_env) as terminal:
        terminal.has_command_line = resolved.enable_escape_commandline
        terminal.local_commands = resolved.permit_local_command
        if client.host_keys is not None:
            client.host_keys.ask = terminal.ask_host_keys
        if forwards:
            code = with_forwards(
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


def with_forwards(
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
        say,
        remote,
        bind_mask=resolved.stream_local_bind_mask,
        bind_unlink=resolved.stream_local_bind_unlink,
        agent_socket=agent_socket,
        exit_on_failure=resolved.exit_on_forward_failure,
        x11=x11,
        permit_remote_open=resolved.permit_remote_open,
        quiet=resolved.log_level in ("QUIET", "FATAL", "ERROR"),
        announce=say_plain,
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
        served = share(client, resolved, forwards)
    local_command(resolved, terminal)  # as ssh: the forwards listen, the session to come
    if served is not forwards and resolved.control_persist is not None:
        if passenger is not None:
            detach_master(resolved, command, env, *passenger)
            no_session = True  # the master in the background: no session of its own
        else:
            fork = True  # -N or -f with ControlPersist: the master goes to the background
    if fork:
        # after listening: a port in use is still told to the caller
        to_background(no_session, client.options.trace is not None)
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


def share(client: BlockingClient, resolved: ResolvedConfig, forwards: Forwards) -> Served:
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
        say,
        ask,
        resolved.send_env,
        resolved.control_persist,
        resolved.set_env,
        client.rekey,
    )
    if not served.listen():
        say_plain(f"ControlSocket {resolved.control_path} already exists, disabling multiplexing")
        return forwards
    return served


def through_master(
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
        say(problem)
    return None


def detach_master(
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
            status = sharing.through_master(
                resolved, say_nothing, command, want_tty, no_stdin, entries
            )
        except KeytoolError as exc:
            say(str(exc))
            status = None
        if status is None:
            say_plain("Failed to connect to new control master")
            status = 255
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def environment(resolved: ResolvedConfig) -> list[tuple[bytes, bytes]]:
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


def to_background(no_session: bool = False, keep_stderr: bool = False) -> None:
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

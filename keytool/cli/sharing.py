"""Connection sharing for ``keytool exec``, as ssh's ControlMaster, ControlPath and
ControlPersist (and -M, -S, -O) work:

- with a ControlPath and ControlMaster no, auto or autoask, a session first tries the
  master listening there (``through_master``); with none, keytool connects itself;
- with ControlMaster yes, ask, auto or autoask, the connection keytool makes becomes a
  master (``keytool.muxmaster``) for later clients, keytool's or ssh's;
- ControlPersist keeps that master in the background after the first session, for
  the time given (or until ``-O exit``); the first session itself goes through it;
- ``-O check|exit|stop|forward|cancel`` talk to a running master (``control``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import termios
import tty
from collections.abc import Callable, Iterator, Sequence

from keytool import muxproto as mux
from keytool.errors import KeytoolError
from keytool.forwardspec import (
    LocalForward,
    parse_dynamic_forward,
    parse_local_forward,
    parse_remote_forward,
)
from keytool.muxclient import MuxClient, MuxError, connect_control

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keytool.sshconfig_resolved import ResolvedConfig

    Say = Callable[[str], None]

#: the -O commands ssh knows
COMMANDS = ("check", "forward", "cancel", "exit", "stop", "proxy")


def check_command(command: str) -> None:
    if command not in COMMANDS:  # ssh's words
        raise KeytoolError("Invalid multiplex command.")


def wants_master(resolved: ResolvedConfig) -> bool:
    """This connection becomes a master (ControlMaster yes, ask, auto or autoask)."""
    return resolved.control_path is not None and resolved.control_master != "no"


def tries_master(resolved: ResolvedConfig) -> bool:
    """A master is tried first (ControlMaster no, auto or autoask, with a path)."""
    return resolved.control_path is not None and resolved.control_master in (
        "no",
        "auto",
        "autoask",
    )


def _shown(resolved: ResolvedConfig) -> bool:
    return resolved.log_level not in ("QUIET", "FATAL", "ERROR")


def control(command: str, resolved: ResolvedConfig, trace: Say) -> int:
    """``-O command``: what ssh -O does, in its words."""
    path = resolved.control_path
    if path is None:
        raise KeytoolError('No ControlPath specified for "-O" command')
    if command == "proxy":
        raise KeytoolError("-O proxy is not supported")
    sock = connect_control(path, resolved.control_master, False, trace)
    assert sock is not None
    client = MuxClient(sock)
    try:
        if command == "check":
            pid = client.alive()
            sys.stderr.write(f"Master running (pid={pid})\r\n")
        elif command == "exit":
            client.terminate()
            if resolved.log_level != "QUIET":
                sys.stderr.write("Exit request sent.\r\n")
        elif command == "stop":
            client.stop_listening()
            if resolved.log_level != "QUIET":
                sys.stderr.write("Stop listening request sent.\r\n")
        elif command == "forward":
            for request in forwards_of(resolved):
                port = client.forward(request)
                if port is not None:  # a -R to port 0: the port the server picked
                    print(port)
        else:
            for request in forwards_of(resolved, cancel=True):
                try:
                    client.forward(request)
                except MuxError as exc:  # said; as ssh, -O cancel still exits 0
                    print(exc, file=sys.stderr)
    finally:
        client.close()
    return 0


def forwards_of(resolved: ResolvedConfig, cancel: bool = False) -> list[mux.Forward]:
    """The -L, -D and -R of the configuration, as a master is asked for them."""
    requests = [
        _request(mux.FWD_LOCAL, parse_local_forward(spec), cancel)
        for spec in resolved.local_forwards
    ]
    requests += [
        _request(mux.FWD_DYNAMIC, parse_dynamic_forward(spec), cancel)
        for spec in resolved.dynamic_forwards
    ]
    requests += [
        _request(mux.FWD_REMOTE, parse_remote_forward(spec), cancel)
        for spec in resolved.remote_forwards
    ]
    return requests


def _request(kind: int, forward: LocalForward, cancel: bool) -> mux.Forward:
    """As ssh's mux client puts a forward: a socket path with the port -2; no bind
    address is "", an empty one (every address) "*"."""
    if forward.listen_path is not None:
        listen, listen_port = forward.listen_path, mux.PORT_STREAMLOCAL
    else:
        bind = forward.bind_address
        listen = "" if bind is None else "*" if bind == "" else bind
        listen_port = forward.listen_port
    if kind == mux.FWD_DYNAMIC:  # as ssh: "socks", which OpenSSH's master wants non-empty
        target, target_port = forward.host, 0
    elif forward.target_path is not None:
        target, target_port = forward.target_path, mux.PORT_STREAMLOCAL
    else:
        target, target_port = forward.host, forward.port
    return mux.Forward(kind, listen, listen_port, target, target_port, cancel)


def through_master(
    resolved: ResolvedConfig,
    trace: Say,
    command: bytes,
    want_tty: bool,
    no_stdin: bool,
    env: Sequence[str],
    target: tuple[str, int] | None = None,
    no_session: bool = False,
) -> int | None:
    """The session (or -W) through the master at the ControlPath: its exit status, or
    None when there is no master to use (or it refused): the caller connects itself."""
    path = resolved.control_path
    assert path is not None
    sock = connect_control(path, resolved.control_master, True, trace)
    if sock is None:
        return None
    client = MuxClient(sock)
    try:
        pid = client.alive()
        for forward in forwards_of(resolved):
            try:
                port = client.forward(forward)
            except MuxError as exc:  # as ssh: said, and we connect ourselves
                print(exc, file=sys.stderr)
                return None
            if port is not None:  # ssh says it only with -v
                trace(f"Allocated port {port} for remote forward")
        if no_session:
            return 0  # the forwards are the master's now
        with _stdin(no_stdin) as stdin:
            if target is not None:
                return client.stdio_forward(*target, [stdin, 1])
            from keytool.localtty import terminal_name

            term = terminal_name(resolved.set_env)
            escape = resolved.escape_char
            request = mux.NewSession(
                client.next_id(),
                command,
                want_tty=want_tty,
                want_x11=resolved.forward_x11,
                want_agent=_agent_on(resolved),
                subsystem=resolved.session_type == "subsystem",
                escape_char=mux.NO_ESCAPE if escape is None else escape,
                term=term,
                env=tuple(env),
            )
            status = client.session(request, [stdin, 1, 2], pid, _raw if want_tty else None)
    finally:
        client.close()
    if status is not None and want_tty and _shown(resolved):
        sys.stderr.write(f"Shared connection to {resolved.hostname} closed.\r\n")
    return status


def _agent_on(resolved: ResolvedConfig) -> bool:
    """Whether the session asks for agent forwarding, as ssh's mux client: the flag
    ForwardAgent (or -A, -a) set, apart from the socket it may name (ForwardAgent no
    before a socket leaves it off, though -G shows the socket)."""
    if resolved.agent_forwarding is not None:
        return resolved.agent_forwarding
    return resolved.forward_agent != "no"


@contextlib.contextmanager
def _stdin(no_stdin: bool) -> Iterator[int]:
    """Our stdin, or /dev/null for -n (as ssh passes it)."""
    if not no_stdin:
        yield 0
        return
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        yield null
    finally:
        os.close(null)


@contextlib.contextmanager
def _raw() -> Iterator[None]:
    """Our terminal raw while the master's session has a pseudo-terminal."""
    try:
        saved = termios.tcgetattr(0)
        tty.setraw(0, termios.TCSADRAIN)
    except termios.error:
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def environment_entries(sent: Sequence[tuple[bytes, bytes]]) -> list[str]:
    """SendEnv's and SetEnv's variables as NAME=value strings, for the master."""
    return [
        f"{name.decode('utf-8', 'surrogateescape')}={value.decode('utf-8', 'surrogateescape')}"
        for name, value in sent
    ]

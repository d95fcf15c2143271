"""The agent as a process: socket setup, detaching, environment lines, signals, -k and
command mode. Everything here is OS plumbing; the protocol lives in server.py."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import resource
import shlex
import signal
import socket
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from agent.keyring import Keyring, boot_clock
from agent.server import AgentServer
from keytool.errors import AgentError, KeytoolError
from keytool.files import unix_listener

log = logging.getLogger("keytool.agent")

Shell = Literal["sh", "csh", "fish"]
PR_SET_DUMPABLE = 4  # linux/prctl.h
DEFAULT_ASKPASS = "/usr/bin/ssh-askpass"  # where Debian's ssh-askpass packages put it
WANTED_FILES = 8192  # file descriptors: 1000+ concurrent clients, with room to spare


@dataclass(frozen=True, slots=True)
class AgentOptions:
    bind: str | None = None
    foreground: bool = False  # -D
    debug: bool = False  # -d: foreground, log to stderr
    lifetime: int | None = None  # -t: default lifetime of added keys, seconds
    fingerprint_hash: str = "sha256"  # -E (fingerprint.HASH_NAMES), in confirmations
    shell: Shell = "sh"
    command: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Listener:
    sock: socket.socket
    path: str
    folder: str | None  # the fresh directory we made for it, removed at exit


def detect_shell(
    csh: bool = False, sh: bool = False, environ: dict[str, str] | None = None, fish: bool = False
) -> Shell:
    """-c, -s and --fish win; otherwise ssh-agent's rule: csh lines when $SHELL ends in
    "csh", else sh lines (a fish user's login shell does not decide: a script that runs
    ``eval "$(keytool agent)"`` is no fish script)."""
    if csh:
        return "csh"
    if sh:
        return "sh"
    if fish:
        return "fish"
    if (environ if environ is not None else os.environ).get("SHELL", "").endswith("csh"):
        return "csh"
    return "sh"


def quote(shell: Shell, path: str) -> str:
    """``path`` as a word the shell reads back unchanged: as it is when it holds nothing
    a shell would split or expand (as ssh-agent prints it), else in single quotes; for
    csh each "!" also escaped, since single quotes do not stop its history expansion;
    for fish each "\\" and "'" escaped with a backslash, as fish reads single quotes."""
    quoted = shlex.quote(path)
    if quoted == path:
        return path
    if shell == "fish":
        return "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return quoted.replace("!", "\\!") if shell == "csh" else quoted


def env_lines(shell: Shell, path: str, pid: int) -> str:
    path = quote(shell, path)
    if shell == "csh":
        return f"setenv SSH_AUTH_SOCK {path};\nsetenv SSH_AGENT_PID {pid};\necho Agent pid {pid};\n"
    if shell == "fish":
        return (
            f"set -gx SSH_AUTH_SOCK {path};\nset -gx SSH_AGENT_PID {pid};\necho Agent pid {pid};\n"
        )
    return (
        f"SSH_AUTH_SOCK={path}; export SSH_AUTH_SOCK;\n"
        f"SSH_AGENT_PID={pid}; export SSH_AGENT_PID;\n"
        f"echo Agent pid {pid};\n"
    )


def foreground_lines(shell: Shell, path: str, pid: int) -> str:
    """What -D and -d print: the socket alone, as ssh-agent (there is no process to
    kill later: it ends with the terminal's ^C)."""
    path = quote(shell, path)
    if shell == "csh":
        return f"setenv SSH_AUTH_SOCK {path};\necho Agent pid {pid};\n"
    if shell == "fish":
        return f"set -gx SSH_AUTH_SOCK {path};\necho Agent pid {pid};\n"
    return f"SSH_AUTH_SOCK={path}; export SSH_AUTH_SOCK;\necho Agent pid {pid};\n"


def kill_lines(shell: Shell, pid: int) -> str:
    if shell == "csh":
        return f"unsetenv SSH_AUTH_SOCK;\nunsetenv SSH_AGENT_PID;\necho Agent pid {pid} killed;\n"
    if shell == "fish":
        return f"set -e SSH_AUTH_SOCK;\nset -e SSH_AGENT_PID;\necho Agent pid {pid} killed;\n"
    return f"unset SSH_AUTH_SOCK;\nunset SSH_AGENT_PID;\necho Agent pid {pid} killed;\n"


#: the kernel's ceiling for pid_max (PID_MAX_LIMIT, 2^22 on 64-bit Linux); a larger
#: number would overflow kill(2)'s pid_t
PID_MAX_LIMIT = 4 * 1024 * 1024


#: what C's isspace() takes in the C locale: strtonum skips these before the number
_C_SPACE = " \t\n\v\f\r"


def parse_agent_pid(raw: str) -> int:
    """SSH_AGENT_PID read as ssh-agent reads it (strtonum, from 2 to INT_MAX): blanks,
    a sign, then ASCII digits and nothing else; AgentError in ssh-agent's words."""
    text = raw.lstrip(_C_SPACE)
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not all("0" <= c <= "9" for c in digits):
        why = "invalid"
    else:
        number = int(text, 10)
        # a number past kill(2)'s pid_t, or past any pid the kernel gives, names no
        # process: said at once rather than left to kill(2)
        why = "too small" if number < 2 else "too large" if number > PID_MAX_LIMIT else ""
        if not why:
            return number
    raise AgentError(f'SSH_AGENT_PID="{raw}", which is not a good PID: {why}')


def kill_agent(shell: Shell) -> str:
    """-k: stop the agent named by SSH_AGENT_PID; returns the lines that unset the env."""
    raw = os.environ.get("SSH_AGENT_PID")
    if raw is None:
        raise AgentError("SSH_AGENT_PID is not set, cannot kill the agent")
    pid = parse_agent_pid(raw)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise AgentError(f"no agent runs with pid {pid} (SSH_AGENT_PID is stale)") from None
    except PermissionError:
        raise AgentError(f"not allowed to stop process {pid}") from None
    return kill_lines(shell, pid)


#: the longest path a Unix socket's address holds (sun_path less its NUL)
_MAX_SOCKET_PATH = 107


def _too_long(path: str) -> bool:
    return len(os.fsencode(path)) > _MAX_SOCKET_PATH


def _refuse_live_socket(path: str) -> None:
    """Make way for our socket at ``path``: a socket there is removed only when a
    connection to it is refused (ECONNREFUSED: a stale socket nobody listens on, which
    ssh-agent would refuse to replace). Anything else (an agent answers, or is too busy
    to take one more connection, or the probe is not allowed) leaves it alone."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise AgentError(f"{path} exists and is not a socket; not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # never blocks: a listener whose backlog is full answers EAGAIN at once
        probe.setblocking(False)
        probe.connect(path)
    except ConnectionRefusedError:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise AgentError(f"cannot listen on {path}: {exc.strerror or exc}") from None
        return
    except FileNotFoundError:
        return  # removed meanwhile
    except OSError as exc:
        raise AgentError(
            f"cannot listen on {path}: Address already in use"
            f" (a socket that may be live: {exc.strerror or exc})"
        ) from None
    finally:
        probe.close()
    raise AgentError(f"{path}: an agent is already listening on this socket")


def listen(bind: str | None) -> Listener:
    """The agent's socket, mode 0600; without -a in a fresh 0700 directory as ssh-agent."""
    folder: str | None = None
    if bind:
        path = os.path.abspath(bind)
        if _too_long(path):
            # refused before anything at that path is looked at
            raise AgentError(f"cannot listen on {path}: too long for a Unix domain socket")
        _refuse_live_socket(path)
    else:
        # absolute, whatever $TMPDIR is: the agent leaves its working directory for "/"
        # and must still find its socket and folder to remove them
        folder = os.path.abspath(tempfile.mkdtemp(prefix="ssh-"))  # mode 0700
        path = os.path.join(folder, f"agent.{os.getpid()}")
        if _too_long(path) and os.path.dirname(folder) != "/tmp":
            # a $TMPDIR too deep for a socket's name: /tmp, where ssh-agent would make it
            os.rmdir(folder)
            folder = tempfile.mkdtemp(prefix="ssh-", dir="/tmp")
            path = os.path.join(folder, f"agent.{os.getpid()}")
    try:
        sock = unix_listener(path, 0o177, 1024)
    except OSError as exc:
        if folder:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        raise AgentError(f"cannot listen on {path}: {exc.strerror or exc}") from None
    return Listener(sock, path, folder)


def cleanup(listener: Listener) -> None:
    listener.sock.close()
    with contextlib.suppress(OSError):
        os.unlink(listener.path)
    if listener.folder:
        with contextlib.suppress(OSError):
            os.rmdir(listener.folder)


def harden() -> None:
    """No core dumps and no ptrace by other processes of the user (key material)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_DUMPABLE) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError):
        log.warning("prctl is not available; the agent stays dumpable")
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = WANTED_FILES if hard == resource.RLIM_INFINITY else min(WANTED_FILES, hard)
        if soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def askpass_confirm(prompt: str) -> bool:
    """The confirm constraint: ask through SSH_ASKPASS, as ssh-agent; no askpass = no."""
    from keytool import terminal

    program = os.environ.get("SSH_ASKPASS")
    if not program and os.access(DEFAULT_ASKPASS, os.X_OK):
        program = DEFAULT_ASKPASS
    require = os.environ.get("SSH_ASKPASS_REQUIRE", "").lower()
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not program or require == "never" or not (display or require == "force"):
        # as ssh-agent (readpass.c): askpass only on a display, or when forced
        log.info("confirmation needed but there is no askpass to show: refusing")
        return False
    try:
        answer = terminal.run_askpass(program, prompt, confirm=True)
    except KeytoolError as exc:
        log.warning("confirmation failed: %s", exc)
        return False
    return terminal.is_yes(answer)


def _detach(keep_stderr: bool = False) -> None:
    os.setsid()
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1) if keep_stderr else (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


#: the status an agent ends with, as ssh-agent's cleanup_exit(2): on a signal, or when
#: the command it was started for is over
STOPPED = 2


def new_keyring(options: AgentOptions) -> Keyring:
    """The keyring an agent serves: lifetimes on the boot clock (keyring.boot_clock)."""
    return Keyring(
        boot_clock, options.lifetime, askpass_confirm, fingerprint_hash=options.fingerprint_hash
    )


def serve(listener: Listener, options: AgentOptions, watch_pid: int | None = None) -> NoReturn:
    """Run the agent until a signal (or, in command mode, the command's end), then end
    the process at once: a confirmation still asked in a worker thread must not keep
    it (and the keys it holds) alive until the askpass program ends."""
    status = STOPPED
    try:
        harden()
        keyring = new_keyring(options)
        interactive = options.foreground or options.debug
        asyncio.run(_serve(keyring, listener, watch_pid, interactive))
    except KeytoolError as exc:
        log.error("%s", exc)
        status = 1
    except Exception as exc:  # the socket is removed all the same
        log.error("agent failed: %s", exc)
        status = 1
    finally:
        cleanup(listener)
        log.info("agent stopped; socket removed")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(status)


async def _serve(
    keyring: Keyring, listener: Listener, watch_pid: int | None, interactive: bool
) -> None:
    loop = asyncio.get_running_loop()
    server = AgentServer(keyring, listener.sock)
    await server.start()
    stop = asyncio.Event()
    # as ssh-agent: ^C ends only an agent in the foreground (-d, -D)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stopping = (signal.SIGTERM, signal.SIGHUP, *((signal.SIGINT,) if interactive else ()))
    for signum in stopping:
        loop.add_signal_handler(signum, stop.set)
    pidfd = -1
    if watch_pid is not None:
        # command mode: the agent lives as long as the command (our former parent)
        try:
            pidfd = os.pidfd_open(watch_pid)
            loop.add_reader(pidfd, stop.set)
        except (OSError, AttributeError):
            loop.call_soon(_poll_parent, loop, watch_pid, stop)
        if not _alive(watch_pid):
            stop.set()
    log.info("agent listening on %s", listener.path)
    await stop.wait()
    server.close()
    if pidfd >= 0:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _poll_parent(loop: asyncio.AbstractEventLoop, pid: int, stop: asyncio.Event) -> None:
    if not _alive(pid):
        stop.set()
    else:
        loop.call_later(1.0, _poll_parent, loop, pid, stop)


def _log_to_stderr(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("keytool agent: %(message)s"))
    root = logging.getLogger("keytool")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)


def _log_to_syslog() -> None:
    """A detached agent has no stderr: warnings (refused peers, failed confirmations) go
    to syslog's auth facility, as ssh-agent's do."""
    import logging.handlers

    if not os.path.exists("/dev/log"):
        return
    try:
        handler = logging.handlers.SysLogHandler(
            "/dev/log", logging.handlers.SysLogHandler.LOG_AUTH
        )
    except OSError:
        return
    handler.setFormatter(logging.Formatter(f"keytool-agent[{os.getpid()}]: %(message)s"))
    root = logging.getLogger("keytool")
    root.handlers.clear()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def run(options: AgentOptions) -> int:
    """``keytool agent``: returns the exit status for the process that printed the env."""
    _log_to_stderr(options.debug)
    listener = listen(options.bind)
    if options.command:
        return _command_mode(listener, options)
    if options.foreground or options.debug:
        try:
            sys.stdout.write(foreground_lines(options.shell, listener.path, os.getpid()))
            sys.stdout.flush()
        except OSError:
            # it will not serve (a reader gone ends it with 141, as ssh-agent, which
            # leaves its socket): no socket left that nobody listens on
            cleanup(listener)
            raise
        serve(listener, options)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = _fork_ignoring_sigint()
    if pid:
        listener.sock.close()
        try:
            sys.stdout.write(env_lines(options.shell, listener.path, pid))
            sys.stdout.flush()
        except BrokenPipeError:
            raise  # as ssh-agent, whose reader went away: the agent goes on
        except OSError:
            # the lines that name the agent were not written (a full disk): the user
            # cannot use it, nor stop it, so it is stopped here (ssh-agent leaves it)
            _stop_agent(pid, listener)
            raise
        return 0
    _detach()
    _log_to_syslog()
    serve(listener, options)


def _stop_agent(pid: int, listener: Listener) -> None:
    """The agent just started ended, and its socket and folder removed (it may have
    died of the signal before it could)."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(ChildProcessError, InterruptedError):
        os.waitpid(pid, 0)
    cleanup(listener)


def _fork_ignoring_sigint() -> int:
    """os.fork, the child ignoring SIGINT from its first instant (a detached agent is
    not ended by ^C, as ssh-agent's); the parent's handling is left as it was."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    return pid


def _command_mode(listener: Listener, options: AgentOptions) -> int:
    """ssh-agent's ``ssh-agent command``: this process becomes the command, a child the
    agent, which stops when the command ends."""
    command_pid = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = _fork_ignoring_sigint()
    if pid == 0:
        _detach(keep_stderr=options.debug)
        if not options.debug:
            _log_to_syslog()
        serve(listener, options, watch_pid=command_pid)
    listener.sock.close()
    os.environ["SSH_AUTH_SOCK"] = listener.path
    os.environ["SSH_AGENT_PID"] = str(pid)
    try:
        os.execvp(options.command[0], list(options.command))
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        cleanup(listener)  # the agent may not have had time to
        raise AgentError(f"cannot run {options.command[0]}: {exc.strerror or exc}") from None

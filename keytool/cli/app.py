"""Entry point: the one place errors become exit codes."""

from __future__ import annotations

import importlib
import io
import os
import sys

from keytool.cli.spec import Command
from keytool.errors import KeytoolError, UsageError

#: the commands in ssh-keygen's place: a failure is its status, 255 (its fatal()), where
#: keytool's other commands say 1; a status a command sets on purpose is kept
SSH_KEYGEN_COMMANDS = frozenset(
    ("gen", "fingerprint", "pub", "passwd", "comment", "export", "import", "cert", "sign")
)


def invoke(command: Command, values: dict[str, object]) -> int:
    module_name, _, function_name = command.target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    try:
        result = function(**values)
    except KeytoolError as exc:
        own = "exit_code" in vars(exc)  # set on purpose by the command
        if command.name in SSH_KEYGEN_COMMANDS and not own and type(exc).exit_code == 1:
            exc.exit_code = 255
        raise
    return int(result or 0)


def _run(argv: list[str]) -> int:
    from keytool.cli import fastparse

    parsed = fastparse.parse(argv)
    if parsed is not None:
        return invoke(*parsed)
    from keytool.cli.typer_app import run

    return run(argv)


def _standard_fds() -> None:
    """A closed stdin, stdout or stderr is /dev/null (as OpenSSH's sanitise_stdfd): a
    file opened later must not take its number and receive what is printed, and
    ``cmd >&-`` does the work in silence rather than fail."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115


def _failure_status(args: list[str]) -> int:
    """The status of a failure the command did not see coming (memory, a library that
    cannot be loaded): 255 for those in ssh-keygen's place and for exec, as ssh-keygen's
    and ssh's fatal(), else 1, as the command's other failures."""
    name = args[0] if args else ""
    return 255 if name in SSH_KEYGEN_COMMANDS or name == "exec" else 1


def _load_failure(exc: ImportError) -> str | None:
    """What stopped a compiled module from loading (too little memory to map it, a
    library missing), in one line; None for any other ImportError."""
    from importlib.machinery import EXTENSION_SUFFIXES

    path = exc.path or ""
    if not path.endswith(tuple(EXTENSION_SUFFIXES)) and not path.endswith(".so"):
        return None
    reason = str(exc.msg or exc)
    if reason.startswith(f"{path}: "):
        reason = reason[len(path) + 2 :]  # the loader names the file first
    return f"cannot load {path}: {reason}"


#: what Python sets LC_CTYPE to when it coerces a C locale (PEP 538)
_COERCED_CTYPES = frozenset((b"C.UTF-8", b"C.utf8", b"UTF-8"))


def _undo_locale_coercion() -> None:
    """Python turns a C or POSIX locale (or one it cannot load) into C.UTF-8 at start
    by setting LC_CTYPE in the environment (PEP 538). The environment goes back to the
    user's, as ssh keeps it for SendEnv, ProxyCommand, LocalCommand, askpass and the
    agent; the process's own locale (display.utf8_locale reads it) stays as Python set
    it. What the user had is in /proc/self/environ, which setenv does not change."""
    current = os.environb.get(b"LC_CTYPE")
    if current not in _COERCED_CTYPES:
        return
    try:
        with open("/proc/self/environ", "rb") as initial:
            entries = initial.read().split(b"\0")
    except OSError:
        return  # not Linux, or no /proc: left as Python made it
    given = next((e[len(b"LC_CTYPE=") :] for e in entries if e.startswith(b"LC_CTYPE=")), None)
    if given == current:
        return  # the user's own
    if given is None:
        del os.environb[b"LC_CTYPE"]  # unset for children too
    else:
        os.environb[b"LC_CTYPE"] = given


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    _undo_locale_coercion()
    _standard_fds()
    # text read from bytes that are not UTF-8 (a key comment, a host name) is printed
    # as those bytes, as OpenSSH's tools print them
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="surrogateescape")
    try:
        code = _run(args)
    except KeytoolError as exc:
        from keytool.display import Logged, safe

        # a peer's words already escaped as ssh logs them stay as they are
        message = str(exc) if isinstance(exc, Logged) else safe(str(exc))
        print(f"keytool: {message}", file=sys.stderr)
        code = exc.exit_code
        if isinstance(exc, UsageError) and args[:1] == ["exec"]:
            code = 255  # as ssh: exec's other statuses are the remote command's
    except KeyboardInterrupt:
        import signal

        if args[:1] != ["exec"]:  # ssh says nothing (it is not logged in yet)
            print("keytool: interrupted", file=sys.stderr)
        from keytool.output import end_by

        end_by(signal.SIGINT)
    except BrokenPipeError:
        code = 141
    except OSError as exc:  # an I/O failure nothing above turned into a KeytoolError
        print(f"keytool: {exc.strerror or exc}", file=sys.stderr)
        code = 1
    except MemoryError:  # a low memory limit (ulimit -v): one line, no traceback
        print("keytool: out of memory", file=sys.stderr)
        code = _failure_status(args)
    except ImportError as exc:
        reason = _load_failure(exc)
        if reason is None:
            raise  # a module of ours missing a name: a bug, its traceback shown
        print(f"keytool: {reason}", file=sys.stderr)
        code = _failure_status(args)
    raise SystemExit(_flushed(code))


def _flushed(code: int) -> int:
    """``code``, once what is left in stdout's buffer is written. A reader gone (``|
    head``, ``| true``) found only now ends keytool as it ends ssh-keygen there (141,
    by SIGPIPE, with nothing said); another failure (a full disk) is one line."""
    if sys.stdout is None or sys.stdout.closed:
        return code
    try:
        sys.stdout.flush()
    except OSError as exc:
        from keytool.output import drop_stdout

        drop_stdout(sys.stdout)
        if code:  # failed already, and said so (perhaps this very failure)
            return code
        if isinstance(exc, BrokenPipeError):
            return 141
        print(f"keytool: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return code

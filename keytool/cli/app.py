"""Entry point: the one place errors become exit codes."""

from __future__ import annotations

import importlib
import io
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
    import os

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


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    _standard_fds()
    # text read from bytes that are not UTF-8 (a key comment, a host name) is printed
    # as those bytes, as OpenSSH's tools print them
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="surrogateescape")
    try:
        code = _run(args)
    except KeytoolError as exc:
        from keytool.display import safe

        print(f"keytool: {safe(str(exc))}", file=sys.stderr)
        code = exc.exit_code
        if isinstance(exc, UsageError) and args[:1] == ["exec"]:
            code = 255  # as ssh: exec's other statuses are the remote command's
    except KeyboardInterrupt:
        if args[:1] == ["exec"]:  # as ssh, before it is logged in: ended by the signal
            import signal

            from keytool.cli.exec import die_of

            die_of(signal.SIGINT)
        print("keytool: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 141
    except OSError as exc:  # an I/O failure nothing above turned into a KeytoolError
        print(f"keytool: {exc.strerror or exc}", file=sys.stderr)
        code = 1
    sys.stdout.flush() if not sys.stdout.closed else None
    raise SystemExit(code)

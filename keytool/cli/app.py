"""Entry point: the one place errors become exit codes."""

from __future__ import annotations

import importlib
import io
import sys

from keytool.cli.spec import Command
from keytool.errors import KeytoolError


def invoke(command: Command, values: dict[str, object]) -> int:
    module_name, _, function_name = command.target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(**values)
    return int(result or 0)


def _run(argv: list[str]) -> int:
    from keytool.cli import fastparse

    parsed = fastparse.parse(argv)
    if parsed is not None:
        return invoke(*parsed)
    from keytool.cli.typer_app import run

    return run(argv)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
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
    except KeyboardInterrupt:
        print("keytool: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 141
    except OSError as exc:  # an I/O failure nothing above turned into a KeytoolError
        print(f"keytool: {exc.strerror or exc}", file=sys.stderr)
        code = 1
    sys.stdout.flush() if not sys.stdout.closed else None
    raise SystemExit(code)

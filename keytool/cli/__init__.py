"""The command line: a declarative command table (spec.py), a fast parser for it
(fastparse.py), the Typer app built from the same table (typer_app.py), and one
module per subcommand holding its ``run``."""

from __future__ import annotations

from keytool.errors import KeytoolError


def secret_bytes(value: str) -> bytes:
    """A passphrase from the command line as the very bytes given, as ssh-keygen takes
    it (Python decoded argv with surrogateescape; a non-UTF-8 byte survives)."""
    return value.encode("utf-8", "surrogateescape")


def one_line_text(value: str, what: str) -> str:
    """A comment or name from the command line on one line, or a clear error (a newline
    would split a .pub or authorized_keys line in two). Bytes that are not UTF-8 are
    kept as given (surrogateescape), as ssh-keygen writes what it is given."""
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise KeytoolError(f"{what} is not UTF-8 text") from None
    if "\n" in value or "\r" in value:
        raise KeytoolError(f"{what} must be one line")
    return value

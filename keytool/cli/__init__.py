"""The command line: a declarative command table (spec.py), a fast parser for it
(fastparse.py), the Typer app built from the same table (typer_app.py), and one
module per subcommand holding its ``run``."""

from __future__ import annotations

import os

from keytool.errors import KeytoolError


def argv_bytes(value: str) -> bytes:
    """A command-line string as the very bytes typed, as OpenSSH's tools take their
    arguments (Python decoded argv with the locale's encoding and surrogateescape:
    os.fsencode is its exact inverse, in any locale)."""
    return os.fsencode(value)


def argv_text(value: str) -> str:
    """A command-line string as keytool holds the text of a file or a peer: its bytes
    read as UTF-8, the bytes that are not UTF-8 as surrogate escapes. In a UTF-8 or C
    locale that is the string as given; in a Latin-1 one a typed 0xE9 stays that byte."""
    return argv_bytes(value).decode("utf-8", "surrogateescape")


def secret_bytes(value: str) -> bytes:
    """A passphrase from the command line as the very bytes given, as ssh-keygen takes
    it (a byte that is not UTF-8 survives, in any locale)."""
    return argv_bytes(value)


def one_line_text(value: str, what: str) -> str:
    """A comment or name from the command line on one line, or a clear error (a newline
    would split a .pub or authorized_keys line in two). Bytes that are not UTF-8 are
    kept as given (surrogateescape), as ssh-keygen writes what it is given."""
    try:
        value = argv_text(value)
    except UnicodeEncodeError:
        raise KeytoolError(f"{what} is not UTF-8 text") from None
    if "\n" in value or "\r" in value:
        raise KeytoolError(f"{what} must be one line")
    return value

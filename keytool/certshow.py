"""Certificates as ``ssh-keygen -L`` shows them, byte for byte: the per-file header,
the fields, the options, the validity window in local time; and the one-line
validity text ssh-keygen's "Signed user key" message ends with."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from keytool.errors import FormatError
from keytool.keys.cert import (
    FLAG_EXTENSIONS,
    FLAG_OPTIONS,
    FOREVER,
    STRING_OPTIONS,
    Certificate,
    Option,
)
from keytool.record import Record, init

_INDENT = " " * 8
_OPTION_INDENT = " " * 16


def format_time(seconds: int) -> str:
    """A certificate time in local time, ``%Y-%m-%dT%H:%M:%S``."""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(min(seconds, 2**63 - 1)))
    except (OverflowError, OSError, ValueError):
        return "UNKNOWN-TIME"


def format_validity(cert: Certificate) -> str:
    """``forever``, ``after T``, ``before T`` or ``from T to T``."""
    if cert.valid_after == 0 and cert.valid_before == FOREVER:
        return "forever"
    if cert.valid_after == 0:
        return f"before {format_time(cert.valid_before)}"
    if cert.valid_before == FOREVER:
        return f"after {format_time(cert.valid_after)}"
    return f"from {format_time(cert.valid_after)} to {format_time(cert.valid_before)}"


def _option_lines(options: Sequence[Option], critical: bool) -> Iterator[str]:
    for option in options:
        head = f"{_OPTION_INDENT}{option.name}"
        known_flag = option.name in (FLAG_OPTIONS if critical else FLAG_EXTENSIONS)
        if critical and option.name in STRING_OPTIONS:
            value = option.value
            if value is None:
                raise FormatError(f"option {option.name} is corrupt: not one string free of NUL")
            # any bytes but NUL, printed as they are, as ssh-keygen does
            yield f"{head} {value}"
        elif known_flag:
            if option.data:
                raise FormatError(f"option {option.name} is corrupt: a flag with data")
            yield head
        elif option.data:
            yield f"{head} UNKNOWN OPTION: {option.data.hex()} (len {len(option.data)})"
        else:
            yield f"{head} UNKNOWN FLAG OPTION"


def describe(cert: Certificate, hash_name: str = "sha256") -> str:
    """The lines ``ssh-keygen -L`` prints under a certificate's header, with a final
    newline."""
    from keytool.keys.fingerprint import fingerprint

    ca = cert.ca
    lines = [
        f"Type: {cert.key_type} {cert.kind} certificate",
        f"Public key: {cert.label} {fingerprint(cert, hash_name)}",
        f"Signing CA: {ca.label} {fingerprint(ca, hash_name)} (using {cert.signature_type})",
        f'Key ID: "{cert.key_id}"',
        f"Serial: {cert.serial}",
        f"Valid: {format_validity(cert)}",
    ]
    out = [_INDENT + line for line in lines]
    principals = "".join(f"\n{_OPTION_INDENT}{name}" for name in cert.principals)
    out.append(f"{_INDENT}Principals: {principals or '(none)'}")
    for title, options, critical in (
        ("Critical Options", cert.critical, True),
        ("Extensions", cert.extensions, False),
    ):
        if not options:
            out.append(f"{_INDENT}{title}: (none)")
        else:
            out.append(f"{_INDENT}{title}: ")
            out.extend(_option_lines(options, critical))
    return "\n".join(out) + "\n"


class Listing(Record):
    """What -L found in a file: the text for stdout, the complaints for stderr (one per
    line that is not a certificate), whether any certificate was shown."""

    __slots__ = ("errors", "shown", "text")
    text: str
    errors: list[str]
    shown: bool

    def __init__(self, text: str, errors: list[str], shown: bool) -> None:
        init(self, text=text, errors=errors, shown=shown)


def _read_line(raw: bytes) -> Certificate | str:
    """The certificate on one line (after leading blanks), or why there is none."""
    from keytool.fields import split_blank_bytes
    from keytool.keys.pubfile import decode_key

    fields = split_blank_bytes(raw, 2)  # the words as ssh-keygen cuts them
    if len(fields) < 2:
        return "invalid key: invalid format"
    try:
        key = decode_key(fields[0].decode("ascii"), fields[1].decode("ascii"))
    except UnicodeDecodeError:
        return "invalid key: invalid format"
    except FormatError as exc:
        return f"invalid key: {exc}"
    if not isinstance(key, Certificate):
        return "is not a certificate"
    return key


def list_certificates(data: bytes, path: str, from_stdin: bool, hash_name: str) -> Listing:
    """``ssh-keygen -L -f PATH`` of a file's bytes: a ``PATH:`` header for a certificate
    on the first line of a file, ``PATH:LINE:`` for any other (and for stdin, named
    ``(stdin)``); blank lines and lines that are no certificate are complained about,
    comment lines skipped."""
    lines = data.split(b"\n")
    last_has_newline = lines[-1] == b""
    if last_has_newline:
        lines.pop()
    out: list[str] = []
    errors: list[str] = []
    for number, raw in enumerate(lines, 1):
        stripped = raw.lstrip(b" \t")
        ends_file = number == len(lines) and not last_has_newline
        if stripped.startswith(b"#") or (not stripped and ends_file):
            continue
        found = _read_line(stripped)
        if isinstance(found, str):
            separator = " " if found.startswith("is ") else ": "
            errors.append(f"{path}:{number}{separator}{found}")
            continue
        header = f"{path}:" if number == 1 and not from_stdin else f"{path}:{number}:"
        try:
            body = describe(found, hash_name)
        except FormatError as exc:
            # ssh-keygen stops there and fails, after what it has shown
            errors.append(f"{path}:{number}: {exc}")
            return Listing("".join(out), errors, False)
        out.append(f"{header}\n{body}")
    return Listing("".join(out), errors, bool(out))

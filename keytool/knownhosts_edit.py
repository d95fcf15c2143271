"""known_hosts edited as ``ssh-keygen -F``, ``-R`` and ``-H`` edit it; pure (bytes in,
bytes out), so the files are written by the caller, atomically.

Lines are matched as ssh looks a host up: a plain line's patterns (``*``, ``?``,
``!``) or a hashed line's HMAC, against the name as given (``host`` for port 22,
``[host]:port`` otherwise). The key on a line is not decoded, so lines of key types
keytool does not use (ssh-dss, security keys) are found and removed like any other.

- ``find``: every matching line, markers included (``-F``).
- ``remove``: matching lines without a marker go; ``@cert-authority`` and ``@revoked``
  lines stay, as with ssh-keygen, which never deletes them for ``-R``.
- ``invalid_lines``: lines ssh cannot read; the file is then not rewritten.
- ``hash_all``: each plain name of a line without a marker becomes a line of its own
  with a hashed name (HashKnownHosts); patterns cannot be hashed and stay as written.

The rewritten file is what ssh-keygen writes: every kept line as it was, each ending
in a newline.
"""

from __future__ import annotations

from keytool.errors import FormatError, UnsupportedKeyError
from keytool.knownhosts import HASH_MAGIC, MARKERS, hash_name, hosts_match, parse_line
from keytool.record import Record, init

_WILDCARDS = frozenset("*?!")


class Found(Record):
    """One line naming the host: its number (from 1), marker ("" for none), text."""

    __slots__ = ("line", "marker", "number")
    number: int
    marker: str
    line: str

    def __init__(self, number: int, marker: str, line: str) -> None:
        init(self, number=number, marker=marker, line=line)


def split_lines(text: bytes) -> list[str]:
    lines = text.decode("utf-8", "surrogateescape").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def line_fields(line: str) -> tuple[str, str, str] | None:
    """(marker, hosts, the rest) of a key line; None for comments, blanks and lines
    too short to be one."""
    parts = line.split(None, 1)
    if not parts or parts[0].startswith("#"):
        return None
    marker = ""
    if parts[0].startswith("@"):
        if parts[0] not in MARKERS or len(parts) < 2:
            return None
        marker = parts[0]
        parts = parts[1].split(None, 1)
    if len(parts) < 2 or len(parts[1].split()) < 2:
        return None
    return marker, parts[0], parts[1].strip()


def invalid_lines(text: bytes) -> list[int]:
    """Numbers of the lines ssh would not read (ssh-keygen then refuses to rewrite the
    file: a line it cannot read would not survive). Key types keytool does not use
    are valid."""
    bad = []
    for number, line in enumerate(split_lines(text), start=1):
        try:
            parse_line(line, number)  # bytes that are not UTF-8 are no reason (ssh reads them)
        except UnsupportedKeyError:
            continue
        except FormatError:
            bad.append(number)
    return bad


def find(text: bytes, name: str) -> list[Found]:
    found = []
    for number, line in enumerate(split_lines(text), start=1):
        fields = line_fields(line)
        if fields is not None and hosts_match(fields[1], name):
            found.append(Found(number, fields[0], line))
    return found


def remove(text: bytes, name: str) -> tuple[bytes, list[Found]]:
    """The file without the lines for ``name`` (markers kept), and those lines."""
    kept: list[str] = []
    removed: list[Found] = []
    for number, line in enumerate(split_lines(text), start=1):
        fields = line_fields(line)
        if fields is not None and not fields[0] and hosts_match(fields[1], name):
            removed.append(Found(number, "", line))
        else:
            kept.append(line)
    return "".join(f"{line}\n" for line in kept).encode("utf-8", "surrogateescape"), removed


def hash_all(text: bytes) -> tuple[bytes, int]:
    """The file with every plain host name hashed, and how many names were hashed."""
    out: list[str] = []
    hashed = 0
    for line in split_lines(text):
        fields = line_fields(line)
        if fields is None or fields[0] or fields[1].startswith(HASH_MAGIC):
            out.append(line)
            continue
        names = fields[1].split(",")
        if any(_WILDCARDS & set(name) for name in names) or "" in names:
            out.append(line)  # a pattern cannot be hashed: kept as it is
            continue
        for name in names:
            out.append(f"{hash_name(name.lower())} {fields[2]}")
            hashed += 1
    return "".join(f"{line}\n" for line in out).encode("utf-8", "surrogateescape"), hashed


def marker_label(marker: str) -> str:
    """How ssh-keygen -F labels a line's marker."""
    return {"@cert-authority": "CA", "@revoked": "REVOKED"}.get(marker, "")

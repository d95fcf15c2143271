"""known_hosts edited as ``ssh-keygen -F``, ``-R`` and ``-H`` edit it; pure (bytes in,
bytes out), so the files are written by the caller, atomically.

Lines are matched as ssh looks a host up: a plain line's patterns (``*``, ``?``,
``!``) or a hashed line's HMAC, against the name as given (``host`` for port 22,
``[host]:port`` otherwise). The key on a line is not decoded, so lines of key types
keytool does not use (ssh-dss, security keys) are found and removed like any other.

- ``find``: every matching line, markers included (``-F``).
- ``remove``: matching lines without a marker go; ``@cert-authority`` and ``@revoked``
  lines stay, as with ssh-keygen, which never deletes them for ``-R``.
- ``invalid_lines``: lines ssh-keygen cannot read; the file is then not rewritten.
- ``fingerprint_line``: what ``ssh-keygen -lF`` shows for a line found (its key
  decoded, the only place here that decodes one).
- ``hash_all``: each plain name of a line without a marker becomes a line of its own
  with a hashed name (HashKnownHosts); patterns cannot be hashed and stay as written.

The rewritten file is what ssh-keygen writes: every kept line as it was, each ending
in a newline.
"""

from __future__ import annotations

from keytool.errors import FormatError, UnsupportedKeyError
from keytool.knownhosts import HASH_MAGIC, MARKERS, ascii_lower, hash_name, hosts_match
from keytool.record import Record, init

_WILDCARDS = frozenset("*?!")

#: the key type names OpenSSH reads in known_hosts (sshkey.c's table, XMSS left out):
#: a line of another type is one ssh-keygen cannot read; a damaged key after a known
#: type is kept as written, as ssh-keygen keeps it
_PLAIN_TYPES = (
    "ssh-ed25519", "sk-ssh-ed25519@openssh.com", "ssh-rsa", "rsa-sha2-256", "rsa-sha2-512",
    "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com", "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
)  # fmt: skip
KNOWN_TYPES = frozenset(
    (
        *_PLAIN_TYPES,
        *(f"{t.split('@')[0]}-cert-v01@openssh.com" for t in _PLAIN_TYPES if "webauthn" not in t),
        *("RSA", "DSA", "ECDSA", "ED25519", "ECDSA-SK", "ED25519-SK"),
        *("RSA-CERT", "DSA-CERT", "ECDSA-CERT", "ED25519-CERT", "ECDSA-SK-CERT", "ED25519-SK-CERT"),
    )
)


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


def _known_type(fields: tuple[str, str, str]) -> bool:
    return fields[2].split(None, 1)[0] in KNOWN_TYPES


def invalid_lines(text: bytes) -> list[int]:
    """Numbers of the lines ssh-keygen cannot read, for which it refuses to rewrite the
    file: a marker it does not know, no key, a key type OpenSSH does not have. Key
    types keytool does not use (ssh-dss, security keys) are valid, and so is a damaged
    key after a known type: ssh-keygen keeps such a line as it is."""
    bad = []
    for number, line in enumerate(split_lines(text), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        fields = line_fields(line)
        if fields is None or not _known_type(fields):
            bad.append(number)
    return bad


def find(text: bytes, name: str) -> list[Found]:
    """The lines naming ``name``, as ``ssh-keygen -F`` lists them (not the lines of a
    key type it cannot read)."""
    found = []
    for number, line in enumerate(split_lines(text), start=1):
        fields = line_fields(line)
        if fields is not None and _known_type(fields) and hosts_match(fields[1], name):
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


class Hashed(Record):
    """What ``hash_all`` made: the new file, how many names it hashed, and the lines
    (number, host field) left as they were because they hold a pattern."""

    __slots__ = ("count", "patterns", "text")
    text: bytes
    count: int
    patterns: tuple[tuple[int, str], ...]

    def __init__(self, text: bytes, count: int, patterns: tuple[tuple[int, str], ...]) -> None:
        init(self, text=text, count=count, patterns=patterns)


def hash_all(text: bytes) -> Hashed:
    """The file with every plain host name hashed."""
    out: list[str] = []
    hashed = 0
    patterns: list[tuple[int, str]] = []
    for number, line in enumerate(split_lines(text), start=1):
        fields = line_fields(line)
        if fields is None or fields[0] or fields[1].startswith(HASH_MAGIC):
            out.append(line)
            continue
        names = fields[1].split(",")
        if any(_WILDCARDS & set(name) for name in names) or "" in names:
            out.append(line)  # a pattern cannot be hashed: kept as it is
            patterns.append((number, fields[1]))
            continue
        for name in names:
            out.append(f"{hash_name(ascii_lower(name))} {fields[2]}")
            hashed += 1
    data = "".join(f"{line}\n" for line in out).encode("utf-8", "surrogateescape")
    return Hashed(data, hashed, tuple(patterns))


def marker_label(marker: str) -> str:
    """How ssh-keygen -F labels a line's marker."""
    return {"@cert-authority": "CA", "@revoked": "REVOKED"}.get(marker, "")


def fingerprint_line(line: str, host: str, digest: str) -> str | None:
    """``ssh-keygen -lF``'s line for a known_hosts line: the host as asked, the key's
    type, its fingerprint, the line's comment; None for a key that cannot be read."""
    from keytool.keys.blob import UNSUPPORTED_LABELS
    from keytool.keys.fingerprint import blob_fingerprint, fingerprint
    from keytool.keys.pubfile import decode_blob, decode_key

    fields = line_fields(line)
    if fields is None:
        return None
    words = fields[2].split(None, 2)
    comment = f" {words[2]}" if len(words) > 2 else ""
    try:
        key = decode_key(words[0], words[1])
    except UnsupportedKeyError:  # DSA and security keys: named by their blob
        try:
            blob = decode_blob(words[1])
        except FormatError:
            return None
        label = UNSUPPORTED_LABELS.get(words[0], words[0])
        return f"{host} {label} {blob_fingerprint(blob, digest)}{comment}"
    except FormatError:
        return None
    return f"{host} {key.label} {fingerprint(key, digest)}{comment}"

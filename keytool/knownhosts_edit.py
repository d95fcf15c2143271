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

Large files: ``find`` takes the file's bytes as blocks of whole lines
(``knownhosts.line_blocks``), so a caller may read it as it goes; ``find`` and
``remove`` look only at lines whose text may name the host (``knownhosts.LineFinder``)
and ``remove`` keeps the others as slices of the file, not as lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from keytool.errors import FormatError, UnsupportedKeyError
from keytool.fields import c_line, first_word, skip_blanks, split_blanks
from keytool.knownhosts import (
    HASH_MAGIC,
    LineFinder,
    hash_name,
    host_needles,
    hosts_match,
    marker_word,
    text_blocks,
)
from keytool.patterns import ascii_lower
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


def line_fields(line: str) -> tuple[str, str, str] | None:
    """(marker, hosts, the rest) of a key line, its words cut as ssh-keygen cuts them
    (``knownhosts.parse_line``: at spaces and tabs only); the rest (key and comment) is
    as written, a CRLF line's carriage return included, as ssh-keygen -H writes it
    back. None for comments, blanks and lines too short to be one (a blank line of a
    CRLF file is one of those: ssh-keygen cannot read it). The line ends at its first
    NUL, as the C string ssh-keygen reads."""
    text = skip_blanks(c_line(line))
    if not text or text.startswith("#"):
        return None
    try:
        marker, text = marker_word(text)
    except FormatError:
        return None
    hosts, rest = first_word(text)
    if len(split_blanks(rest, 2)) < 2:
        return None
    return marker, hosts, rest


def _known_type(fields: tuple[str, str, str]) -> bool:
    return first_word(fields[2])[0] in KNOWN_TYPES


def _block_lines(text: bytes | Iterable[bytes]) -> Iterator[tuple[int, str]]:
    """(number from 1, line) of every line (split at newlines, a last newline ending
    the last line), block by block: no list of the file's lines."""
    blocks = text_blocks(text) if isinstance(text, bytes) else text
    first = 1
    for block in blocks:
        lines = block.decode("utf-8", "surrogateescape").split("\n")
        if lines[-1] == "":
            lines.pop()
        yield from enumerate(lines, start=first)
        first += len(lines)


def invalid_lines(text: bytes | Iterable[bytes]) -> list[int]:
    """Numbers of the lines ssh-keygen cannot read, for which it refuses to rewrite the
    file: a marker it does not know, no key, a key type OpenSSH does not have. Key
    types keytool does not use (ssh-dss, security keys) are valid, and so is a damaged
    key after a known type: ssh-keygen keeps such a line as it is."""
    bad = []
    for number, line in _block_lines(text):
        words = skip_blanks(c_line(line))
        if not words or words.startswith("#"):
            continue
        fields = line_fields(line)
        if fields is None or not _known_type(fields):
            bad.append(number)
    return bad


def _named_lines(
    blocks: Iterable[bytes], name: str
) -> Iterator[tuple[int, int, int, str, tuple[str, str, str]]]:
    """(start, end, number, line, fields) of each key line whose hosts match ``name``,
    start and end counted from the first block's start; the other lines are neither
    split nor decoded."""
    finder = LineFinder(host_needles([name]))
    first = 1
    base = 0
    for block in blocks:
        for index, start, end in finder.find(block):
            line = block[start:end].decode("utf-8", "surrogateescape")
            fields = line_fields(line)
            if fields is not None and hosts_match(fields[1], name):
                yield base + start, base + end, first + index, line, fields
        first += block.count(b"\n")
        base += len(block)


def find(text: bytes | Iterable[bytes], name: str) -> list[Found]:
    """The lines naming ``name``, as ``ssh-keygen -F`` lists them (not the lines of a
    key type it cannot read), each up to its first NUL as ssh-keygen prints it.
    ``text``: the file, or its ``line_blocks``."""
    blocks = text_blocks(text) if isinstance(text, bytes) else text
    return [
        Found(number, fields[0], c_line(line))
        for _, _, number, line, fields in _named_lines(blocks, name)
        if _known_type(fields)
    ]


def remove(text: bytes, name: str) -> tuple[bytes, list[Found]]:
    """The file without the lines for ``name`` (markers kept), and those lines."""
    removed: list[Found] = []
    cuts: list[tuple[int, int]] = []  # (start, end) in ``text`` of each line removed
    for start, end, number, line, fields in _named_lines(text_blocks(text), name):
        if not fields[0]:
            removed.append(Found(number, "", line))
            cuts.append((start, end + 1))
    return keep_all_but(text, cuts), removed


def keep_all_but(text: bytes, cuts: Iterable[tuple[int, int]], tail: bytes = b"") -> bytes:
    """``text`` without the spans ``cuts`` (in order), each line ending in a newline
    (the last one gets its own when it lacks it), as ssh-keygen rewrites a file; then
    ``tail``."""
    view = memoryview(text)
    pieces: list[memoryview | bytes] = []
    kept = 0
    for start, end in cuts:
        pieces.append(view[kept:start])
        kept = end
    pieces.append(view[kept:])
    last = next((piece for piece in reversed(pieces) if len(piece)), b"\n")
    if last[-1:] != b"\n":
        pieces.append(b"\n")
    pieces.append(tail)
    return b"".join(pieces)


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
    """The file with every plain host name hashed (made a few thousand lines at a
    time: no list of the file's lines)."""
    out: list[bytes] = []
    lines: list[str] = []
    hashed = 0
    patterns: list[tuple[int, str]] = []
    for number, line in _block_lines(text):
        if len(lines) >= 4096:
            out.append(_joined(lines))
            lines = []
        fields = line_fields(line)
        if fields is None or fields[1].startswith(HASH_MAGIC):
            lines.append(line)
            continue
        if fields[0]:
            # a marked line is never hashed; one with a pattern is named, as by ssh-keygen
            lines.append(line)
            if not _WILDCARDS.isdisjoint(fields[1]):
                patterns.append((number, fields[1]))
            continue
        names = fields[1].split(",")
        if any(_WILDCARDS & set(name) for name in names) or "" in names:
            lines.append(line)  # a pattern cannot be hashed: kept as it is
            patterns.append((number, fields[1]))
            continue
        for name in names:
            lines.append(f"{hash_name(ascii_lower(name))} {fields[2]}")
            hashed += 1
    out.append(_joined(lines))
    return Hashed(b"".join(out), hashed, tuple(patterns))


def _joined(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode("utf-8", "surrogateescape")


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
    words = split_blanks(fields[2], 2)
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

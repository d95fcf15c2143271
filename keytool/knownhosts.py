"""known_hosts files, pure (sshd(8) SSH_KNOWN_HOSTS FILE FORMAT): parse, match, decide.

Nothing here reads or writes files; keytool/hostcheck.py is the adapter that does, and
that asks the user.

A line is ``[marker] patterns keytype base64 [comment]``. Patterns are comma-separated
with ``*``/``?`` wildcards and ``!`` negation, matched case-insensitively as ssh does;
a port other than 22 is written ``[host]:port``. A hashed line holds a single
``|1|base64(salt)|base64(HMAC-SHA1(salt, name))`` instead (HashKnownHosts).

Markers: ``@revoked`` makes the key refused for the hosts it names. ``@cert-authority``
names a CA trusted to certify host keys for the hosts it names (same patterns, same
``[host]:port`` rule as a plain line): a server presenting a host certificate
(``*-cert-v01@openssh.com``) signed by that CA is accepted when the certificate is
valid for it (``check_certificate``). Such a line never matches a plain host key: a
server presenting the CA's own key as its host key is not "known" through it, and a
certificate is never known through a plain line, only its certified key is (OpenSSH
behaves the same). ``@revoked`` naming the CA or the certified key refuses a
certificate; certificates themselves are never written to known_hosts.

Large files: ``scan`` reads a file's bytes block by block (``line_blocks``) and
decodes only the lines that name the host, as ssh does; a line can only name it when
its text holds the name (ASCII case folded), a wildcard or a hashed entry, which
``LineFinder`` looks for without splitting the other lines. Each hashed entry then
costs one HMAC-SHA1.

Lines are bytes, as ssh reads them: decoded with surrogate escapes, so a line holding
a byte that is not UTF-8 (in a name, a comment) is read, and written back as it was.
Each is read as the C string ssh reads: up to its first NUL (``fields.c_line``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

from keytool.errors import FormatError, UnsupportedKeyError
from keytool.fields import (
    b64_decode,
    blank_or_line_end,
    c_line,
    first_word,
    skip_blanks,
    split_blanks,
)
from keytool.keys.base import PublicKey
from keytool.keys.pubfile import decode_key, format_public_line
from keytool.patterns import ascii_lower, match_any, match_pattern
from keytool.record import Record, init

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keytool.keys.cert import Certificate

MARKERS = ("@cert-authority", "@revoked")
HASH_MAGIC = "|1|"
# OpenSSH's hashed names use HMAC-SHA1 with a salt as long as the digest (20 bytes)
SALT_SIZE = hashlib.sha1().digest_size
DEFAULT_PORT = 22
#: known_hosts files larger than this are not used by the client (ssh reads any size;
#: a fleet's of 200,000 hosts is over 20 MB), nor rewritten by known-hosts -R and -H,
#: which hold the file in memory; known-hosts -F reads any size, as ssh-keygen
MAX_FILE_SIZE = 256 * 1024 * 1024
#: how much of a file is looked at at once when scanning it
BLOCK_SIZE = 1024 * 1024


class KnownHost(Record):
    __slots__ = ("comment", "hosts", "key", "line_number", "marker", "source")
    marker: str  # "", "@cert-authority" or "@revoked"
    hosts: str  # comma-separated patterns, or one hashed |1|salt|hash entry
    key: PublicKey
    comment: str
    line_number: int
    source: str  # the file it came from, for messages ("FILE:LINE")

    def __init__(
        self,
        marker: str,
        hosts: str,
        key: PublicKey,
        comment: str,
        line_number: int = 0,
        source: str = "",
    ) -> None:
        init(
            self,
            marker=marker,
            hosts=hosts,
            key=key,
            comment=comment,
            line_number=line_number,
            source=source,
        )

    @property
    def is_hashed(self) -> bool:
        return self.hosts.startswith(HASH_MAGIC)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line_number}"


class ParseWarning(Record):
    """A line skipped as malformed; ssh skips such lines too, so it is not fatal. Line
    0: the whole file was not read (``message`` says why)."""

    __slots__ = ("line_number", "message", "source")
    source: str
    line_number: int
    message: str

    def __init__(self, source: str, line_number: int, message: str) -> None:
        init(self, source=source, line_number=line_number, message=message)

    def __str__(self) -> str:
        return f"{self.source}:{self.line_number}: {self.message}"


def _split_hashed(hosts: str) -> tuple[bytes, bytes]:
    """``|1|salt|hash`` -> (salt, digest); FormatError when it is not well-formed. ssh
    matches a hashed name by comparing its text with the one it makes from the salt
    and the name, so both parts must be the canonical base64 of their bytes, white
    space included: a part ssh could never have written matches no host."""
    parts = hosts[len(HASH_MAGIC) :].split("|")
    if len(parts) != 2:
        raise FormatError("invalid known_hosts line: malformed hashed host name")
    try:
        salt = b64_decode(parts[0], skip_space=False)
        digest = b64_decode(parts[1], skip_space=False)
    except ValueError:
        raise FormatError("invalid known_hosts line: bad base64 in hashed host name") from None
    if len(salt) != SALT_SIZE or len(digest) != SALT_SIZE:
        raise FormatError("invalid known_hosts line: hashed host name of the wrong size")
    return salt, digest


def parse_line(line: str, line_number: int = 0) -> KnownHost | None:
    """One known_hosts line; None for blank lines and comments; FormatError if malformed.

    Read as ssh reads it: words stand apart by spaces and tabs only (any other white
    space is part of a word), only spaces and tabs are skipped at the line's start, a
    marker is followed by a space, and the key is read as sshkey_read reads it
    (``keys.pubfile``). A blank line of a CRLF file holds no entry. The line ends at
    its first NUL, as the C string ssh reads: what follows is not read at all."""
    line = c_line(line)
    if blank_or_line_end(line):
        return None
    text = skip_blanks(line)
    if text.startswith("#"):
        return None
    marker, rest = marker_word(text)
    hosts, rest = first_word(rest)
    if not rest:
        raise FormatError("invalid known_hosts line: expected 'hosts type base64'")
    if hosts.startswith(HASH_MAGIC):
        _split_hashed(hosts)
    fields = split_blanks(rest, 2)
    if len(fields) < 2:
        raise FormatError("invalid known_hosts line: expected 'hosts type base64'")
    key = decode_key(fields[0], fields[1])
    return KnownHost(marker, hosts, key, fields[2] if len(fields) > 2 else "", line_number)


def marker_word(text: str) -> tuple[str, str]:
    """(marker, the rest after it and its blanks) of a line's text (its leading blanks
    skipped); ("", text) when it has none. As ssh reads a marker: it ends at the line's
    first space, or at its first tab when the line holds no space at all, so
    ``@revoked<TAB>host ssh-ed25519 KEY`` is no marker while a line of tabs alone has
    one; anything else starting with ``@`` (an unknown marker, a second marker) makes
    the line a bad one (FormatError), as does a marker with nothing after it."""
    if not text.startswith("@"):
        return "", text
    end = text.find(" ")
    if end < 0:
        end = text.find("\t")
    word = text[:end] if end > 0 else text
    if end < 0 or word not in MARKERS:
        raise FormatError(f"invalid known_hosts line: unknown marker {word[:32]!r}")
    rest = skip_blanks(text[end:])
    if rest.startswith("@"):
        raise FormatError("invalid known_hosts line: a second marker")
    if blank_or_line_end(rest):
        raise FormatError("invalid known_hosts line: marker without hosts")
    return word, rest


def parse(text: str | bytes, source: str = "") -> tuple[list[KnownHost], list[ParseWarning]]:
    """Every usable entry of a known_hosts file, and a warning per malformed line.

    Lines whose key type keytool does not support (ssh-dss, security keys) are skipped
    without a warning: they are valid for ssh, just of no use to us. Never raises.
    """
    raw_lines: Iterable[str | bytes] = (
        text.split(b"\n") if isinstance(text, bytes) else text.split("\n")
    )
    entries: list[KnownHost] = []
    warnings: list[ParseWarning] = []
    for number, raw in enumerate(raw_lines, start=1):
        line = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
        _add_entry(line, number, source, entries, warnings)
    return entries, warnings


def _add_entry(
    line: str, number: int, source: str, entries: list[KnownHost], warnings: list[ParseWarning]
) -> None:
    """One line's entry onto ``entries`` (none for a comment, a blank or a key type we
    do not know, as ssh skips them), or a warning for a line that cannot be read."""
    try:
        entry = parse_line(line, number)
    except UnsupportedKeyError:
        return
    except FormatError as exc:
        warnings.append(ParseWarning(source, number, f"{exc}; line skipped"))
        return
    if entry is not None:
        entries.append(
            KnownHost(entry.marker, entry.hosts, entry.key, entry.comment, number, source)
        )


def line_blocks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` (a file's bytes as read) again, cut after a newline: each block holds
    whole lines (the last block's last line lacks its newline when the file's does)."""
    pending: list[bytes] = []
    for chunk in chunks:
        cut = chunk.rfind(b"\n") + 1
        if not cut:
            pending.append(chunk)
            continue
        if pending:
            pending.append(chunk[:cut])
            yield b"".join(pending)
        else:
            yield chunk if cut == len(chunk) else chunk[:cut]
        pending = [chunk[cut:]] if cut < len(chunk) else []
    if pending:
        yield b"".join(pending)


def text_blocks(text: bytes, size: int = BLOCK_SIZE) -> Iterator[bytes]:
    """A file's bytes held in memory, as ``line_blocks`` of about ``size`` bytes."""
    start = 0
    while start < len(text):
        cut = text.find(b"\n", start + size) + 1 or len(text)
        yield text[start:cut]
        start = cut


class LineFinder:
    """Finds the lines of a block that hold any of ``needles`` (ASCII case folded when
    ``fold``): the lines that may be wanted, all others passed over at the speed of a
    substring search. An empty needle finds every line."""

    __slots__ = ("fold", "needles")

    def __init__(self, needles: Iterable[bytes], fold: bool = True) -> None:
        self.fold = fold
        self.needles = tuple(dict.fromkeys(n.lower() if fold else n for n in needles))

    def find(self, block: bytes) -> Iterator[tuple[int, int, int]]:
        """(line index in the block from 0, start, end without the newline) of each
        line holding a needle, in order."""
        text = block.lower() if self.fold else block
        size = len(text)
        # where each needle is next found at or after ``pos`` (size: nowhere further)
        ahead = [-1] * len(self.needles)
        pos = index = 0
        while pos < size:
            found = size
            for i, needle in enumerate(self.needles):
                at = ahead[i]
                if at < pos:
                    at = text.find(needle, pos)
                    ahead[i] = at = size if at < 0 else at
                found = min(found, at)
            if found >= size:
                return
            start = text.rfind(b"\n", pos, found) + 1 or pos
            end = text.find(b"\n", found)
            end = size if end < 0 else end
            index += text.count(b"\n", pos, start)
            yield index, start, end
            index += 1
            pos = end + 1


def host_needles(names: Iterable[str]) -> list[bytes]:
    """What the text of a line naming one of ``names`` must hold: the name itself, a
    wildcard or a hashed entry (a negation only takes a match away)."""
    wanted = [ascii_lower(name).encode("utf-8", "surrogateescape") for name in names]
    return [*wanted, HASH_MAGIC.encode(), b"*", b"?"]


def host_field(text: str) -> str | None:
    """The host field of a key line (after its marker, if any); None for comments,
    blanks and a marker alone. The line ends at a NUL, as for ``parse_line``."""
    words = split_blanks(c_line(text), 2)
    if not words or words[0].startswith("#"):
        return None
    if words[0].startswith("@"):
        return words[1] if len(words) > 1 else None
    return words[0]


def scan(
    blocks: Iterable[bytes], names: Sequence[str], source: str = ""
) -> tuple[list[KnownHost], list[ParseWarning]]:
    """The entries ``parse`` finds in the file that ``blocks`` (``line_blocks``) hold,
    only those whose hosts match one of ``names`` (lookup names), and a warning per
    such line that is malformed. Lines naming none of them are not decoded: memory
    and time go to the host's lines, not the file's. Never raises."""
    finder = LineFinder(host_needles(names))
    wanted = [ascii_lower(name) for name in names]
    matches = _matcher(wanted)
    entries: list[KnownHost] = []
    warnings: list[ParseWarning] = []
    first = 1
    for block in blocks:
        for index, start, end in finder.find(block):
            number = first + index
            line = block[start:end].decode("utf-8", "surrogateescape")
            hosts = host_field(line)
            if hosts is not None and matches(hosts):
                _add_entry(line, number, source, entries, warnings)
        first += block.count(b"\n")
    return entries, warnings


def _matcher(names: Sequence[str]) -> Callable[[str], bool]:
    """``hosts_match`` of a host field against any of ``names`` (lowered), a hashed
    entry's salt and hash decoded once for all of them."""
    encoded = [name.encode("utf-8", "surrogateescape") for name in names]

    plain = frozenset(names)

    def matches(hosts: str) -> bool:
        if not hosts.startswith(HASH_MAGIC):
            patterns = ascii_lower(hosts).split(",")
            if _plain_names(hosts):  # names only: no pattern to match, a set to meet
                return not plain.isdisjoint(patterns)
            return any(match_any(name, patterns) for name in names)
        try:
            salt, digest = _split_hashed(hosts)
        except FormatError:
            return False
        return any(hmac.compare_digest(hmac.digest(salt, name, "sha1"), digest) for name in encoded)

    return matches


def _plain_names(hosts: str) -> bool:
    """A host field that only lists names: no wildcard, no negation, not hashed."""
    return not ("*" in hosts or "?" in hosts or "!" in hosts or hosts.startswith(HASH_MAGIC))


class HostIndex:
    """Entries by the names their host fields list, so that a lookup among the lines
    of many hosts (a fleet's) looks only at those that may name its host: a hashed
    line, or one with a wildcard or a negation, may name any host and is looked at
    for every lookup. ``candidates`` keeps the file's order."""

    __slots__ = ("_any", "_by_name", "entries")

    def __init__(self, entries: Sequence[KnownHost]) -> None:
        self.entries = tuple(entries)
        self._by_name: dict[str, list[int]] = {}
        self._any: list[int] = []
        for index, entry in enumerate(self.entries):
            if not _plain_names(entry.hosts):
                self._any.append(index)
                continue
            for name in set(ascii_lower(entry.hosts).split(",")):
                self._by_name.setdefault(name, []).append(index)

    def candidates(self, names: Iterable[str]) -> list[KnownHost]:
        """The entries that may name one of ``names`` (lookup names): a superset of
        what ``matching_entries`` keeps for them."""
        picked = set(self._any)
        for name in names:
            picked.update(self._by_name.get(ascii_lower(name), ()))
        return [self.entries[index] for index in sorted(picked)]


def scan_key(blocks: Iterable[bytes], key: PublicKey, source: str = "") -> list[KnownHost]:
    """Plain lines holding ``key`` under any name (``entries_with_key`` over a file's
    ``line_blocks``): only lines whose text holds the key's base64 are decoded."""
    b64 = base64.b64encode(key.to_wire())
    # all but the last quantum: a shorter needle, still found in every line writing it
    finder = LineFinder([b64[:-4] or b64], fold=False)
    found: list[KnownHost] = []
    first = 1
    for block in blocks:
        for index, start, end in finder.find(block):
            line = block[start:end].decode("utf-8", "surrogateescape")
            try:
                entry = parse_line(line, first + index)
            except FormatError:  # UnsupportedKeyError too
                continue
            if entry is not None and entry.marker == "" and entry.key == key:
                found.append(
                    KnownHost("", entry.hosts, entry.key, entry.comment, first + index, source)
                )
        first += block.count(b"\n")
    return found


def lookup_name(host: str, port: int = DEFAULT_PORT) -> str:
    """The name a host is recorded under: ``host`` for port 22, else ``[host]:port``.

    Lowercased, as ssh lowercases the host name before it looks it up.
    """
    host = ascii_lower(host)
    return host if port == DEFAULT_PORT else f"[{host}]:{port}"


def hash_name(name: str, salt: bytes | None = None) -> str:
    """``|1|salt|hash`` for ``name`` (a lookup_name), with a fresh random salt by default."""
    if salt is None:
        salt = os.urandom(SALT_SIZE)
    digest = hmac.digest(salt, name.encode("utf-8", "surrogateescape"), "sha1")
    return f"{HASH_MAGIC}{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def hosts_match(hosts: str, name: str) -> bool:
    """Does a line's host field (patterns or one hashed name) cover ``name``?"""
    name = ascii_lower(name)
    if hosts.startswith(HASH_MAGIC):
        try:
            salt, digest = _split_hashed(hosts)
        except FormatError:
            return False
        mine = hmac.new(salt, name.encode("utf-8", "surrogateescape"), hashlib.sha1).digest()
        return hmac.compare_digest(mine, digest)
    return match_any(name, ascii_lower(hosts).split(","))


def matching_entries(entries: Iterable[KnownHost], host: str, port: int) -> list[KnownHost]:
    """Every line naming this host, any marker and any key (what ``ssh-keygen -F`` lists)."""
    name = lookup_name(host, port)
    return [entry for entry in entries if hosts_match(entry.hosts, name)]


def host_key_hints(entries: Iterable[KnownHost], host: str, port: int) -> tuple[list[str], bool]:
    """What orders the host key algorithms for the host, in one pass over its lines:
    the key types already known for it (plain lines, file order, no repeats), and
    whether a ``@cert-authority`` line names it.

    A client should put these first in its host key algorithm list, as ssh does: a
    server that offers several host keys then shows the one we know, not a "changed"
    one, and a host with a trusted CA shows its certificate.
    """
    seen: list[str] = []
    authority = False
    for entry in matching_entries(entries, host, port):
        if entry.marker == "" and entry.key.key_type not in seen:
            seen.append(entry.key.key_type)
        elif entry.marker == "@cert-authority":
            authority = True
    return seen, authority


class Known(Record):
    """The key is on this line for this host."""

    __slots__ = ("entry",)
    entry: KnownHost

    def __init__(self, entry: KnownHost) -> None:
        init(self, entry=entry)


class Unknown(Record):
    """No key at all is recorded for this host."""

    __slots__ = ()


class Changed(Record):
    """Other keys are recorded for this host and the server's key is none of them."""

    __slots__ = ("entries",)
    entries: tuple[KnownHost, ...]

    def __init__(self, entries: tuple[KnownHost, ...]) -> None:
        init(self, entries=entries)


class Revoked(Record):
    """The server's key is marked ``@revoked`` for this host."""

    __slots__ = ("entry",)
    entry: KnownHost

    def __init__(self, entry: KnownHost) -> None:
        init(self, entry=entry)


HostKeyStatus = Known | Unknown | Changed | Revoked


def check(entries: Iterable[KnownHost], host: str, port: int, key: PublicKey) -> HostKeyStatus:
    """Decide what the known_hosts entries say about ``key`` served by ``host:port``.

    A revoked key loses whatever else is recorded. Any recorded key that matches wins
    over the others (a host may have one line per key type, or several). Otherwise,
    when any plain key is recorded for the host, even of another type, the key has
    changed: OpenSSH 9 reports a changed host key in that case too, since a server
    switching key types is as suspicious as one switching keys. ``@cert-authority``
    lines take no part: certificates are ``check_certificate``'s.
    """
    lines = matching_entries(entries, host, port)
    for entry in lines:
        if entry.marker == "@revoked" and entry.key == key:
            return Revoked(entry)
    plain = [entry for entry in lines if entry.marker == ""]
    for entry in plain:
        if entry.key == key:
            return Known(entry)
    if not plain:
        return Unknown()
    same_type = [e for e in plain if e.key.key_type == key.key_type]
    other_type = [e for e in plain if e.key.key_type != key.key_type]
    return Changed(tuple(same_type + other_type))


class Certified(Record):
    """The key is a host certificate valid for this host, signed by the CA of this
    ``@cert-authority`` line."""

    __slots__ = ("entry",)
    entry: KnownHost

    def __init__(self, entry: KnownHost) -> None:
        init(self, entry=entry)


class CertificateRefused(Record):
    """The certificate does not make the host known: ``reason`` says why. ``entry`` is
    the ``@cert-authority`` line naming its CA for this host when there is one (the CA
    is trusted here, the certificate is not valid), None when no line names its CA."""

    __slots__ = ("entry", "reason")
    reason: str
    entry: KnownHost | None

    def __init__(self, reason: str, entry: KnownHost | None = None) -> None:
        init(self, reason=reason, entry=entry)


CertificateStatus = Certified | CertificateRefused | Revoked


def certificate_problem(
    cert: Certificate, principal: str, now: int, ca_algorithms: Sequence[str]
) -> str | None:
    """Why a host certificate is not valid for ``principal`` at ``now``, or None; the
    checks of OpenSSH's sshkey_cert_check_host: a host certificate, within its validity
    window, listing the name (principals may be wildcard patterns), with no critical
    option (none is defined for hosts), signed with an algorithm CASignatureAlgorithms
    allows."""
    reason = cert.problem(host=True, now=now)
    if reason is not None:
        return reason
    if not any(match_pattern(principal, listed) for listed in cert.principals):
        return f"{principal} is not among its principals ({', '.join(cert.principals)})"
    if cert.critical:
        names = ", ".join(option.name for option in cert.critical)
        return f"it has critical options ({names}), which host certificates cannot have"
    if cert.signature_type not in ca_algorithms:
        return f"its CA signed it with {cert.signature_type}, which CASignatureAlgorithms refuses"
    return None


def check_certificate(
    entries: Iterable[KnownHost],
    host: str,
    port: int,
    cert: Certificate,
    *,
    principal: str,
    now: int,
    ca_algorithms: Sequence[str],
) -> CertificateStatus:
    """Decide what the known_hosts entries say about a host certificate served by
    ``host:port`` (recorded under ``host``; ``principal`` is the name it must list).

    A ``@revoked`` line for the host naming the CA key, the certified key or the
    certificate refuses it, whatever else is recorded. Otherwise a ``@cert-authority``
    line for the host naming its CA, and the certificate's own checks
    (``certificate_problem``), decide. The caller may then fall back to the certified
    key as a plain key, as ssh does."""
    lines = matching_entries(entries, host, port)
    for entry in lines:
        if entry.marker == "@revoked" and entry.key.plain in (cert.key, cert.ca):
            return Revoked(entry)
    authority = next(
        (e for e in lines if e.marker == "@cert-authority" and e.key.plain == cert.ca), None
    )
    if authority is None:
        return CertificateRefused(f"no @cert-authority line for {lookup_name(host, port)} names it")
    reason = certificate_problem(cert, principal, now, ca_algorithms)
    if reason is not None:
        return CertificateRefused(reason, authority)
    return Certified(authority)


def entries_with_key(entries: Iterable[KnownHost], key: PublicKey) -> list[KnownHost]:
    """Plain lines holding ``key`` under any host name (for "also known as" notes)."""
    return [entry for entry in entries if entry.marker == "" and entry.key == key]


def format_entry(
    host: str, port: int, key: PublicKey, hashed: bool = False, salt: bytes | None = None
) -> str:
    """The line ssh appends for a newly accepted host key (no newline)."""
    name = lookup_name(host, port)
    return f"{hash_name(name, salt) if hashed else name} {format_public_line(key)}"


def append_entry(existing: bytes, line: str) -> bytes:
    """``existing`` file bytes with ``line`` added, the old bytes kept exactly.

    A last line without its newline gets one first, or the new entry would be glued
    onto it and both lines lost.
    """
    separator = b"\n" if existing and not existing.endswith(b"\n") else b""
    return existing + separator + line.encode("utf-8", "surrogateescape") + b"\n"


def describe_names(entries: Sequence[KnownHost]) -> list[str]:
    """``FILE:LINE: names`` for each entry; a hashed one shows as ``[hashed name]``."""
    return [
        f"{entry.where}: {'[hashed name]' if entry.is_hashed else entry.hosts}" for entry in entries
    ]

"""UpdateHostKeys, pure: what known_hosts should become once the server has told us all
of its host keys (OpenSSH PROTOCOL §2.5).

After user authentication sshd sends the global request "hostkeys-00@openssh.com"
listing every host key it has. The client compares them with the user's known_hosts
files for this host: keys it lacks are "new", keys the files hold for the host that the
server no longer lists are "old" (deprecated). New keys are added only once the server
proved it holds their private halves: the client asks with
"hostkeys-prove-00@openssh.com" (the new keys' blobs) and the server answers with one
signature per key, over ``string "hostkeys-prove-00@openssh.com" || string session
identifier || string key blob``. Then, as ssh does, the host's lines in the first user
file become exactly the server's keys (lines already holding one of them stay as they
are; the others go; missing keys are appended), and the host's lines in the other user
files go.

As ssh, nothing is changed when a line for the host is a pattern, a list of more than
two names, or has a marker (@cert-authority, @revoked); when one of the server's keys
is known under another name; or when a key to remove is known under another name. And
(keytool's own caution) when a line for the host holds a key type keytool cannot read:
ssh would delete such a line, keytool keeps the file as it is.

Files are bytes in, bytes out here; ``keytool.hostupdate`` reads and writes them. Only
the lines whose text may name the host, or holds one of the keys in question, are
split and decoded (``knownhosts.LineFinder``); the rewritten file is the old one's
bytes less the lines removed, not a list of its lines.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence

from keytool.errors import FormatError, UnsupportedKeyError
from keytool.fields import split_blanks
from keytool.keys.base import PublicKey
from keytool.keys.blob import public_from_wire
from keytool.keys.pubfile import decode_blob, format_public_line
from keytool.knownhosts import LineFinder, hash_name, host_needles, hosts_match, text_blocks
from keytool.knownhosts_edit import keep_all_but, line_fields
from keytool.record import Record, init
from keytool.transport.channels import HOSTKEYS_PROVE
from keytool.wire import Reader, Writer

#: signature algorithms an RSA key's proof may use when the session's host key is not
#: RSA (with an RSA host key, the proof must use the session's own algorithm)
PROOF_RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256")
_RSA_HOST_KEY_ALGORITHMS = ("ssh-rsa", "rsa-sha2-256", "rsa-sha2-512")


def announced_keys(body: bytes, accepted: Sequence[str]) -> tuple[list[PublicKey], list[str]]:
    """The keys of a hostkeys-00 request that the client would accept as host keys
    (``accepted``: its HostKeyAlgorithms), and notes on the ones left out.

    Keys of a type keytool cannot read, certificates and keys HostKeyAlgorithms does
    not name are passed over; a malformed list or a key listed twice is a FormatError.
    """
    r = Reader(body, "the server's host key list")
    keys: list[PublicKey] = []
    notes: list[str] = []
    while r.remaining:
        blob = r.string()
        try:
            key = public_from_wire(blob)
        except UnsupportedKeyError as exc:
            notes.append(f"a host key keytool cannot read: {exc}")
            continue
        except FormatError as exc:
            notes.append(f"a malformed host key: {exc}")
            continue
        if key.plain is not key:
            notes.append(f"a {key.key_type} certificate: not for known_hosts")
            continue
        if not _accepted(key, accepted):
            notes.append(f"a {key.key_type} key, which HostKeyAlgorithms does not name")
            continue
        if key in keys:
            raise FormatError(f"the server listed its {key.key_type} host key twice")
        keys.append(key)
    return keys, notes


def _accepted(key: PublicKey, accepted: Sequence[str]) -> bool:
    if key.key_type == "ssh-rsa":
        return any(a in accepted for a in ("rsa-sha2-256", "rsa-sha2-512", "ssh-rsa"))
    return key.key_type in accepted


class Plan(Record):
    """What the files say of the server's keys: ``new`` ones (on no line for the host),
    ``old`` ones (on a line for the host, not the server's), and ``blocked``, why the
    files must not be changed ("" when they may)."""

    __slots__ = ("blocked", "keys", "new", "old")
    keys: tuple[PublicKey, ...]
    new: tuple[PublicKey, ...]
    old: tuple[PublicKey, ...]
    blocked: str

    def __init__(
        self,
        keys: tuple[PublicKey, ...],
        new: tuple[PublicKey, ...],
        old: tuple[PublicKey, ...],
        blocked: str = "",
    ) -> None:
        init(self, keys=keys, new=new, old=old, blocked=blocked)

    @property
    def changes(self) -> bool:
        return bool(self.new or self.old)


def _complex(hosts: str) -> bool:
    """A host field ssh never writes: a wildcard, or more than ``host,address``."""
    if "*" in hosts or "?" in hosts:
        return True
    return hosts.count(",") > 1


class _Line(Record):
    """A key line as written: its key only decoded when the line names the host."""

    __slots__ = ("blob", "hosts", "key_type", "marker", "number")
    number: int
    marker: str
    hosts: str
    key_type: str
    blob: bytes

    def __init__(self, number: int, marker: str, hosts: str, key_type: str, blob: bytes) -> None:
        init(self, number=number, marker=marker, hosts=hosts, key_type=key_type, blob=blob)

    def key(self) -> PublicKey | None:
        """The key; None for a type keytool cannot read; FormatError if malformed."""
        try:
            key = public_from_wire(self.blob)
        except UnsupportedKeyError:
            return None
        if key.key_type != self.key_type:
            raise FormatError(f"the line says {self.key_type} but holds {key.key_type}")
        return key


def _key_line(number: int, text: bytes) -> _Line | None:
    """A key line as ssh reads it; None for a line ssh could not read either (kept in
    the file, never taken for the host's)."""
    fields = line_fields(text.decode("utf-8", "surrogateescape"))
    if fields is None:
        return None
    marker, hosts, rest = fields
    key_type, b64 = split_blanks(rest, 2)[:2]  # line_fields saw both words
    try:
        blob = decode_blob(b64)
    except FormatError:
        return None
    return _Line(number, marker, hosts, key_type, blob)


def _found_lines(text: bytes, finder: LineFinder) -> Iterator[tuple[int, int, _Line]]:
    """(start, end, line) of each key line of ``text`` that ``finder`` finds."""
    first = 1
    base = 0
    for block in text_blocks(text):
        for index, start, end in finder.find(block):
            line = _key_line(first + index, block[start:end])
            if line is not None:
                yield base + start, base + end, line
        first += block.count(b"\n")
        base += len(block)


def _holding(text: bytes, blobs: Iterable[bytes], name: str) -> Iterator[_Line]:
    """The key lines of ``text`` holding one of ``blobs`` whose hosts do not match
    ``name``."""
    wanted = set(blobs)
    # a line holding a key holds its base64, all of it but maybe the last quantum
    needles = [base64.b64encode(blob)[:-4] for blob in wanted]
    for _, _, line in _found_lines(text, LineFinder(needles, fold=False)):
        if line.blob in wanted and not hosts_match(line.hosts, name):
            yield line


def plan(files: Sequence[tuple[str, bytes]], name: str, keys: Sequence[PublicKey]) -> Plan:
    """Compare the server's ``keys`` with the user's known_hosts ``files`` (path, bytes)
    for ``name`` (``host`` or ``[host]:port``)."""
    server = {key.to_wire(): key for key in keys}
    matched: set[bytes] = set()
    old: dict[bytes, PublicKey] = {}
    # why the files must stay as they are: the first reason in file order wins
    problems: list[tuple[int, int, str]] = []
    host_lines = LineFinder(host_needles([name]))
    for order, (path, text) in enumerate(files):
        for _, _, line in _found_lines(text, host_lines):
            if not hosts_match(line.hosts, name):
                continue
            where = f"{path}:{line.number}"
            try:
                key = line.key()
            except FormatError:
                continue  # ssh passes over a line it cannot read, and keeps it
            if key is None:
                problems.append((order, line.number, f"{where} holds a key keytool cannot read"))
            elif line.marker:
                problems.append(
                    (order, line.number, f"{where} is a {line.marker} line for the host")
                )
            elif _complex(line.hosts):
                problems.append(
                    (order, line.number, f"{where} names the host by a pattern or a list")
                )
            elif line.blob in server:
                matched.add(line.blob)
            else:
                old.setdefault(line.blob, key)
        for line in _holding(text, server, name):
            where = f"{path}:{line.number}"
            reason = f"the server's {line.key_type} key is at {where}, another name"
            problems.append((order, line.number, reason))
            break
    new = tuple(key for blob, key in server.items() if blob not in matched)
    blocked = min(problems)[2] if problems else ""
    if not blocked and old:
        for path, text in files:
            for line in _holding(text, old, name):
                blocked = f"a key to remove is at {path}:{line.number} too, for another name"
                break
            if blocked:
                break
    return Plan(tuple(server.values()), new, tuple(old.values()), blocked)


# ---------------------------------------------------------------- the proof


def prove_request(keys: Sequence[PublicKey]) -> bytes:
    """The specifics of our hostkeys-prove-00 request: the new keys' blobs."""
    w = Writer()
    for key in keys:
        w.string(key.to_wire())
    return w.getvalue()


def signed_data(session_id: bytes, key: PublicKey) -> bytes:
    return Writer().string(HOSTKEYS_PROVE).string(session_id).string(key.to_wire()).getvalue()


def check_proofs(
    reply: bytes, session_id: bytes, keys: Sequence[PublicKey], host_key_algorithm: str
) -> tuple[list[PublicKey], list[PublicKey]]:
    """The server's answer to our prove request for ``keys``: one signature each, in
    order. Returns (proved keys, RSA keys whose proof used an algorithm we do not take
    for them: left out, as ssh leaves them). A missing, malformed or wrong signature is
    a FormatError: then nothing is to be changed."""
    r = Reader(reply, "the server's host key proofs")
    rsa_session = host_key_algorithm if host_key_algorithm in _RSA_HOST_KEY_ALGORITHMS else None
    proved: list[PublicKey] = []
    disregarded: list[PublicKey] = []
    for key in keys:
        signature = r.string()
        try:
            algorithm = Reader(signature, "signature").ascii()
        except FormatError:
            raise FormatError(f"the proof for the {key.key_type} host key is malformed") from None
        allowed: tuple[str, ...] | None = None
        if key.key_type == "ssh-rsa":
            if rsa_session is None:
                if algorithm not in PROOF_RSA_ALGORITHMS:
                    disregarded.append(key)
                    continue
            else:
                allowed = (rsa_session,)
        if not key.verify(signature, signed_data(session_id, key), allowed):
            raise FormatError(f"the proof for the {key.key_type} host key is not valid")
        proved.append(key)
    r.done()
    return proved, disregarded


# ---------------------------------------------------------------- the new file


class Change(Record):
    """One edit of ``replace_entries``: a line removed (its number) or a key added."""

    __slots__ = ("added", "key", "line")
    added: bool
    key: PublicKey
    line: int  # the removed line's number; 0 for an added key

    def __init__(self, added: bool, key: PublicKey, line: int = 0) -> None:
        init(self, added=added, key=key, line=line)


def replace_entries(
    text: bytes, name: str, keys: Sequence[PublicKey], hashed: bool
) -> tuple[bytes, list[Change]]:
    """``text`` with the host's plain lines reduced to ``keys`` (as ssh's
    hostfile_replace_entries): a line for ``name`` holding one of them stays as it is,
    any other line for it goes; keys on no such line are appended (with a hashed name
    when ``hashed``). Markers, comments, other hosts' and unreadable lines stay."""
    wanted = {key.to_wire() for key in keys}
    changes: list[Change] = []
    present: set[bytes] = set()
    cuts: list[tuple[int, int]] = []
    for start, end, entry in _found_lines(text, LineFinder(host_needles([name]))):
        if entry.marker or not hosts_match(entry.hosts, name):
            continue
        if entry.blob in wanted:
            present.add(entry.blob)
            continue
        try:
            key = entry.key()
        except FormatError:
            key = None
        if key is not None:
            changes.append(Change(False, key, entry.number))
            cuts.append((start, end + 1))
    added: list[str] = []
    for key in keys:
        if key.to_wire() not in present:
            shown = hash_name(name) if hashed else name
            added.append(f"{shown} {format_public_line(key)}\n")
            changes.append(Change(True, key))
    tail = "".join(added).encode("utf-8", "surrogateescape")
    return keep_all_but(text, cuts, tail), changes

"""OpenSSH key revocation lists (PROTOCOL.krl): read, build and write the binary
format, and tell whether a key or certificate is revoked as sshd's RevokedKeys does.

No I/O here: ``parse`` takes the file's bytes, ``to_bytes`` returns them, and the
clock is the caller's (``Krl.generated``).

What a KRL holds (PROTOCOL.krl §1-5): a header, then sections revoking certificates
by serial number (lists, ranges, bitmaps) or key ID under one CA key or under any CA,
plain keys by their blob, and plain keys by their SHA-1 or SHA-256 fingerprint.

Decisions where OpenSSH's versions differ:
- Signature sections (§6) are read and skipped, never checked, as OpenSSH 9.4 and
  later do (9.2 checked them against the key inside the section, which proves
  nothing without a trusted key; ssh-keygen never wrote them). They must come last,
  as §6 says. Rewriting a KRL drops them.
- Extension sections (§5, §2.5): a non-critical one is skipped, a critical one makes
  the KRL unusable, as OpenSSH 9.4 and later read them.
"""

from __future__ import annotations

import bisect

from keytool.errors import FormatError, KeytoolError
from keytool.keys.base import PublicKey
from keytool.wire import Reader, Writer

MAGIC = b"SSHKRL\n\0"
FORMAT_VERSION = 1

SECTION_CERTIFICATES = 1
SECTION_EXPLICIT_KEY = 2
SECTION_FINGERPRINT_SHA1 = 3
SECTION_SIGNATURE = 4
SECTION_FINGERPRINT_SHA256 = 5
SECTION_EXTENSION = 255

CERT_SERIAL_LIST = 0x20
CERT_SERIAL_RANGE = 0x21
CERT_SERIAL_BITMAP = 0x22
CERT_KEY_ID = 0x23
CERT_EXTENSION = 0x39

MAX_SERIAL = (1 << 64) - 1
SHA1_SIZE = 20
SHA256_SIZE = 32
# OpenSSH reads a bitmap with sshbuf's bignum reader, which refuses more than 16384
# bits (SSHBUF_MAX_BIGNUM bytes, one leading zero byte allowed on top)
BITMAP_MAX_BITS = 16384
_BITMAP_MAX_BYTES = BITMAP_MAX_BITS // 8

# section sizes in bytes, for choosing the smallest encoding of a run of serials
_SECTION_HEADER = 1 + 4  # type byte, length
_RANGE_COST = _SECTION_HEADER + 16
_BITMAP_HEADER = _SECTION_HEADER + 8 + 4  # offset, mpint length


class SerialSet:
    """Revoked serial numbers as sorted, disjoint, non-adjacent ranges (lo, hi)."""

    __slots__ = ("_his", "_los", "_pending")

    def __init__(self) -> None:
        self._los: list[int] = []
        self._his: list[int] = []
        self._pending: list[tuple[int, int]] = []

    def add(self, lo: int, hi: int) -> None:
        # serial 0 means "no serial" (ssh-keygen's default), so it cannot be revoked
        if not 0 < lo <= hi <= MAX_SERIAL:
            raise KeytoolError(f"invalid serial range {lo}-{hi}: serials run 1 to {MAX_SERIAL}")
        self._pending.append((lo, hi))

    def _settle(self) -> None:
        if not self._pending:
            return
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted([*zip(self._los, self._his, strict=True), *self._pending]):
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        self._los = [lo for lo, _ in merged]
        self._his = [hi for _, hi in merged]
        self._pending = []

    def ranges(self) -> list[tuple[int, int]]:
        self._settle()
        return list(zip(self._los, self._his, strict=True))

    def __contains__(self, serial: object) -> bool:
        if not isinstance(serial, int):
            return False
        self._settle()
        at = bisect.bisect_right(self._los, serial) - 1
        return at >= 0 and serial <= self._his[at]

    def __bool__(self) -> bool:
        return bool(self._pending or self._los)


class CertScope:
    """The certificates one CA issued (``ca`` its key blob), or any CA's (``ca`` None)."""

    __slots__ = ("ca", "key_ids", "serials")

    def __init__(self, ca: bytes | None) -> None:
        self.ca = ca
        self.serials = SerialSet()
        self.key_ids: set[bytes] = set()


class Krl:
    """A key revocation list: built by ``revoke*`` calls or read by ``parse``."""

    __slots__ = (
        "comment",
        "flags",
        "generated",
        "keys",
        "scopes",
        "sha1s",
        "sha256s",
        "signatures",
        "version",
    )

    def __init__(self, version: int = 0, generated: int = 0, comment: str = "") -> None:
        self.version = version
        self.generated = generated  # seconds since 1970; 0: not set yet
        self.flags = 0
        self.comment = comment
        self.scopes: list[CertScope] = []
        self.keys: set[bytes] = set()  # plain key blobs
        self.sha1s: set[bytes] = set()
        self.sha256s: set[bytes] = set()
        self.signatures = 0  # signature sections read (and not checked)

    # ---- building

    def scope(self, ca: PublicKey | bytes | None, create: bool = True) -> CertScope | None:
        blob = ca.to_wire() if isinstance(ca, PublicKey) else ca
        for scope in self.scopes:
            if scope.ca == blob:
                return scope
        if not create:
            return None
        scope = CertScope(blob)
        self.scopes.append(scope)
        return scope

    def _scope(self, ca: PublicKey | bytes | None) -> CertScope:
        found = self.scope(ca)
        assert found is not None
        return found

    def revoke_serials(self, ca: PublicKey | bytes | None, lo: int, hi: int | None = None) -> None:
        """Certificates of ``ca`` (None: of any CA) with serial ``lo`` to ``hi``."""
        self._scope(ca).serials.add(lo, lo if hi is None else hi)

    def revoke_key_id(self, ca: PublicKey | bytes | None, key_id: bytes | str) -> None:
        if isinstance(key_id, str):
            key_id = key_id.encode("utf-8", "surrogateescape")
        if b"\0" in key_id:
            raise KeytoolError("a key ID cannot hold a NUL byte")
        self._scope(ca).key_ids.add(key_id)

    def revoke_key_explicit(self, key: PublicKey) -> None:
        """The key itself (a certificate's certified key), by its whole blob."""
        self.keys.add(key.plain.to_wire())

    def revoke_sha1(self, digest: bytes) -> None:
        if len(digest) != SHA1_SIZE:
            raise KeytoolError(f"a SHA1 fingerprint is {SHA1_SIZE} bytes, not {len(digest)}")
        self.sha1s.add(bytes(digest))

    def revoke_sha256(self, digest: bytes) -> None:
        if len(digest) != SHA256_SIZE:
            raise KeytoolError(f"a SHA256 fingerprint is {SHA256_SIZE} bytes, not {len(digest)}")
        self.sha256s.add(bytes(digest))

    def revoke(self, key: PublicKey) -> None:
        """As ssh-keygen -k takes a key line: a certificate by its serial under its own
        CA (by its key ID when it has no serial), a plain key by its blob."""
        from keytool.keys.cert import Certificate

        if not isinstance(key, Certificate):
            self.revoke_key_explicit(key)
        elif key.serial == 0:
            self.revoke_key_id(key.ca, key.key_id)
        else:
            self.revoke_serials(key.ca, key.serial)

    # ---- asking

    def revocation(self, key: PublicKey) -> str | None:
        """Why ``key`` is revoked, or None. A certificate is revoked when its serial or
        key ID is listed under its CA or under any CA, when its certified key is, or
        when its CA key is (krl.c's ssh_krl_check_key)."""
        from keytool.keys.cert import Certificate

        reason = self._revocation(key)
        if reason is None and isinstance(key, Certificate):
            ca_reason = self._revocation(key.ca)
            if ca_reason is not None:
                reason = f"its CA key: {ca_reason}"
        return reason

    def is_revoked(self, key: PublicKey) -> bool:
        return self.revocation(key) is not None

    def _revocation(self, key: PublicKey) -> str | None:
        from keytool.keys.cert import Certificate
        from keytool.keys.fingerprint import raw_digest

        if self.sha1s and raw_digest(key, "sha1") in self.sha1s:
            return "its SHA1 fingerprint is revoked"
        if self.sha256s and raw_digest(key, "sha256") in self.sha256s:
            return "its SHA256 fingerprint is revoked"
        if key.plain.to_wire() in self.keys:
            return "the key is revoked"
        if not isinstance(key, Certificate):
            return None
        # the ID as the certificate's bytes: one that is not UTF-8 came in as escapes
        key_id = key.key_id.encode("utf-8", "surrogateescape")
        for ca in (key.ca.to_wire(), None):
            scope = self.scope(ca, create=False)
            if scope is None:
                continue
            where = "any CA" if ca is None else "its CA"
            if key_id in scope.key_ids:
                return f"key ID {key.key_id!r} is revoked for {where}"
            # serial 0 is "no serial": only a key ID can revoke such a certificate
            if key.serial != 0 and key.serial in scope.serials:
                return f"serial {key.serial} is revoked for {where}"
        return None


# ---- reading


def _cstring(r: Reader, what: str) -> bytes:
    value = r.string()
    if b"\0" in value:
        raise FormatError(f"malformed KRL: NUL byte in {what}")
    return value


def _ca_blob(blob: bytes) -> bytes:
    """A certificates section's CA key, checked as OpenSSH parses it. A key of a type
    OpenSSH has and keytool has not (DSA, security keys) is kept as it is: no
    certificate keytool reads can name it, and a rewrite keeps it."""
    from keytool.keys.blob import UNSUPPORTED, public_from_wire
    from keytool.keys.cert import plain_name

    name = Reader(blob, "KRL CA key").string().decode("ascii", "replace")
    if plain_name(name) in UNSUPPORTED:
        return blob
    try:
        public_from_wire(blob)
    except FormatError as exc:
        raise FormatError(f"malformed KRL: its CA key does not parse ({exc})") from None
    return blob


def _extension(r: Reader, where: str) -> None:
    """PROTOCOL.krl §2.5 and §5: skip an optional extension, refuse a critical one."""
    name = _cstring(r, "extension name")
    critical = r.boolean()
    r.string()
    r.done()
    if critical:
        shown = name.decode("utf-8", "replace")
        raise FormatError(f"KRL has a critical {where} extension keytool does not know: {shown!r}")


def _bitmap(r: Reader, serials: SerialSet) -> None:
    """PROTOCOL.krl §2.3: bit N set revokes serial offset + N."""
    offset = r.uint64()
    body = r.string()
    if body and body[0] & 0x80:
        raise FormatError("malformed KRL: negative serial bitmap")
    if len(body) > _BITMAP_MAX_BYTES + 1 or (len(body) == _BITMAP_MAX_BYTES + 1 and body[0]):
        raise FormatError(f"malformed KRL: serial bitmap over {BITMAP_MAX_BITS} bits")
    bits = int.from_bytes(body, "big")
    if not bits:
        return
    if offset + bits.bit_length() - 1 > MAX_SERIAL:
        raise FormatError("malformed KRL: serial bitmap runs past the largest serial")
    while bits:
        low = (bits & -bits).bit_length() - 1
        run = bits >> low
        ones = ((run ^ (run + 1)) >> 1).bit_length()
        try:
            serials.add(offset + low, offset + low + ones - 1)
        except KeytoolError:
            raise FormatError("malformed KRL: serial bitmap revokes serial 0") from None
        bits &= ~(((1 << ones) - 1) << low)


def _certificates(r: Reader, krl: Krl) -> None:
    """PROTOCOL.krl §2: one CA's (or any CA's) revoked serials and key IDs. The scope
    is the KRL's only once something is revoked in it, as krl.c makes it: a section
    with nothing in it (an empty bitmap, only its reserved string) leaves no trace."""
    ca = r.string()
    r.string()  # reserved
    scope = CertScope(_ca_blob(ca) if ca else None)
    while r.remaining:
        kind = r.byte()
        with r.nested("KRL certificate section") as part:
            if kind == CERT_SERIAL_LIST:
                while part.remaining:
                    serial = part.uint64()
                    if serial == 0:
                        raise FormatError("malformed KRL: serial 0 in a serial list")
                    scope.serials.add(serial, serial)
            elif kind == CERT_SERIAL_RANGE:
                lo, hi = part.uint64(), part.uint64()
                if not 0 < lo <= hi:
                    raise FormatError(f"malformed KRL: serial range {lo}-{hi}")
                scope.serials.add(lo, hi)
            elif kind == CERT_SERIAL_BITMAP:
                _bitmap(part, scope.serials)
            elif kind == CERT_KEY_ID:
                while part.remaining:
                    scope.key_ids.add(_cstring(part, "key ID"))
            elif kind == CERT_EXTENSION:
                _extension(part, "certificate section")
            else:
                raise FormatError(f"malformed KRL: unknown certificate section type {kind}")
    _adopt(krl, scope)


def _adopt(krl: Krl, scope: CertScope) -> None:
    """A section's revocations into ``krl``: into its CA's scope if it has one, as a
    new scope at the end if anything is revoked in it."""
    if not scope.serials and not scope.key_ids:
        return
    found = krl.scope(scope.ca, create=False)
    if found is None:
        krl.scopes.append(scope)
        return
    for lo, hi in scope.serials.ranges():
        found.serials.add(lo, hi)
    found.key_ids |= scope.key_ids


def _blobs(r: Reader, target: set[bytes], size: int | None, what: str) -> None:
    while r.remaining:
        blob = r.string()
        if size is not None and len(blob) != size:
            raise FormatError(f"malformed KRL: a {what} of {len(blob)} bytes, not {size}")
        target.add(blob)


def parse(data: bytes) -> Krl:
    """A KRL file's bytes -> Krl; anything malformed is a FormatError."""
    if not data.startswith(MAGIC):
        raise FormatError("not a KRL: it does not start with SSHKRL")
    r = Reader(data, "KRL")
    r.raw(len(MAGIC))
    version = r.uint32()
    if version != FORMAT_VERSION:
        raise FormatError(f"KRL format version {version} is not supported (only 1)")
    krl = Krl(version=r.uint64(), generated=r.uint64())
    krl.flags = r.uint64()
    r.string()  # reserved
    krl.comment = _cstring(r, "comment").decode("utf-8", "surrogateescape")
    while r.remaining:
        kind = r.byte()
        if kind == SECTION_SIGNATURE:
            r.string()  # signing key
            r.string()  # signature
            krl.signatures += 1
            continue
        if krl.signatures:
            raise FormatError("malformed KRL: a section after its signature")
        with r.nested("KRL section") as section:
            if kind == SECTION_CERTIFICATES:
                _certificates(section, krl)
            elif kind == SECTION_EXPLICIT_KEY:
                _blobs(section, krl.keys, None, "key")
            elif kind == SECTION_FINGERPRINT_SHA1:
                _blobs(section, krl.sha1s, SHA1_SIZE, "SHA1 fingerprint")
            elif kind == SECTION_FINGERPRINT_SHA256:
                _blobs(section, krl.sha256s, SHA256_SIZE, "SHA256 fingerprint")
            elif kind == SECTION_EXTENSION:
                _extension(section, "KRL")
            else:
                raise FormatError(f"malformed KRL: unknown section type {kind}")
    return krl


# ---- writing


# a gap of fewer bits than a list entry's 64 is cheaper inside a bitmap
_BITMAP_GAP = 64
# a run longer than this costs more as bitmap bits than as one range section
_BITMAP_RUN = 8 * _RANGE_COST


def _clusters(ranges: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Runs close enough together to share one bitmap; a long run stands alone."""
    clusters: list[list[tuple[int, int]]] = []
    for lo, hi in ranges:
        last = clusters[-1] if clusters else None
        if (
            last is not None
            and lo - last[-1][1] - 1 < _BITMAP_GAP
            and hi - lo < _BITMAP_RUN
            and last[-1][1] - last[-1][0] < _BITMAP_RUN
            and hi - last[0][0] < BITMAP_MAX_BITS - 8
        ):
            last.append((lo, hi))
        else:
            clusters.append([(lo, hi)])
    return clusters


def _serial_sections(out: Writer, ranges: list[tuple[int, int]]) -> None:
    """Serial runs as list, range and bitmap sections (PROTOCOL.krl §2.1-2.3): runs
    close together share a bitmap when that is smaller than a list entry or a range
    for each; consecutive list entries share one list section."""
    listed: list[int] = []

    def flush_list() -> None:
        if listed:
            out.byte(CERT_SERIAL_LIST).string(b"".join(n.to_bytes(8, "big") for n in listed))
            listed.clear()

    for cluster in _clusters(ranges):
        start, end = cluster[0][0], cluster[-1][1]
        as_bitmap = _BITMAP_HEADER + (end - start + 1) // 8 + 2
        one_by_one = sum(min(_RANGE_COST, 8 * (hi - lo + 1)) for lo, hi in cluster)
        if len(cluster) > 1 and as_bitmap < one_by_one:
            flush_list()
            bits = 0
            for lo, hi in cluster:
                bits |= ((1 << (hi - lo + 1)) - 1) << (lo - start)
            out.byte(CERT_SERIAL_BITMAP).string(Writer().uint64(start).mpint(bits).getvalue())
            continue
        for lo, hi in cluster:
            if 8 * (hi - lo + 1) + (0 if listed else _SECTION_HEADER) <= _RANGE_COST:
                listed.extend(range(lo, hi + 1))
            else:
                flush_list()
                out.byte(CERT_SERIAL_RANGE).string(Writer().uint64(lo).uint64(hi).getvalue())
    flush_list()


def _certificates_section(scope: CertScope) -> bytes:
    out = Writer().string(scope.ca or b"").string(b"")
    _serial_sections(out, scope.serials.ranges())
    if scope.key_ids:
        ids = Writer()
        for key_id in sorted(scope.key_ids):
            ids.string(key_id)
        out.byte(CERT_KEY_ID).string(ids.getvalue())
    return out.getvalue()


def to_bytes(krl: Krl) -> bytes:
    """The KRL file (no signature sections): header, certificate sections in the order
    their CAs came, then revoked keys, SHA1 and SHA256 fingerprints, each sorted as
    PROTOCOL.krl §4 asks."""
    out = (
        Writer()
        .raw(MAGIC)
        .uint32(FORMAT_VERSION)
        .uint64(krl.version)
        .uint64(krl.generated)
        .uint64(krl.flags)
        .string(b"")
        .string(krl.comment.encode("utf-8", "surrogateescape"))
    )
    for scope in krl.scopes:
        out.byte(SECTION_CERTIFICATES).string(_certificates_section(scope))
    for kind, blobs in (
        (SECTION_EXPLICIT_KEY, krl.keys),
        (SECTION_FINGERPRINT_SHA1, krl.sha1s),
        (SECTION_FINGERPRINT_SHA256, krl.sha256s),
    ):
        if blobs:
            body = Writer()
            for blob in sorted(blobs):
                body.string(blob)
            out.byte(kind).string(body.getvalue())
    return out.getvalue()


# ---- showing


def _generated_at(seconds: int) -> str:
    import time

    signed = seconds - (1 << 64) if seconds >= 1 << 63 else seconds  # a C time_t
    try:
        return time.strftime("%Y%m%dT%H%M%S", time.localtime(signed))
    except (OverflowError, OSError, ValueError):
        return "<INVALID>"


def _sha256_of_blob(blob: bytes) -> str:
    import base64
    import hashlib

    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _blob_name(blob: bytes) -> str:
    from keytool.display import escape

    return escape(Reader(blob, "KRL key").string(), utf8=False)


def dump(krl: Krl, utf8: bool) -> tuple[list[str], list[str]]:
    """The KRL as ssh-keygen -Q -l prints it, in krl_dump's order and near the spec
    format (header comments, keys as their SHA256 fingerprints, raw SHA256 and SHA1
    hashes, then each CA's serials and key IDs): (lines, problems). Comments and key
    IDs are escaped as OpenSSH does for the locale (``utf8``)."""
    from keytool.display import escape

    lines = [f"# KRL version {krl.version}", f"# Generated at {_generated_at(krl.generated)}"]
    if krl.comment:
        comment = krl.comment.encode("utf-8", "surrogateescape")
        lines.append(f"# Comment: {escape(comment, utf8)}")
    lines.append("")
    problems: list[str] = []
    for blob in sorted(krl.keys):
        try:
            lines.append(f"hash: {_sha256_of_blob(blob)} # {_blob_name(blob)}")
        except FormatError as exc:
            problems.append(f"parse KRL key: {exc}")
    lines.extend(f"hash: SHA256:{digest.hex()}" for digest in sorted(krl.sha256s))
    lines.extend(f"# hash SHA1:{digest.hex()}" for digest in sorted(krl.sha1s))
    for scope in krl.scopes:
        lines.append("")
        if scope.ca is None:
            lines.append("# Wildcard CA")
        else:
            lines.append(f"# CA key {_blob_name(scope.ca)} {_sha256_of_blob(scope.ca)}")
        for lo, hi in scope.serials.ranges():
            lines.append(f"serial: {lo}" if lo == hi else f"serial: {lo}-{hi}")
        lines.extend(f"id: {escape(key_id, utf8)}" for key_id in sorted(scope.key_ids))
    return lines, problems

"""The revocation specs ``ssh-keygen -k`` reads: public key files, or lines saying
what to revoke, applied to a Krl (krl.py). Line kinds, as OpenSSH 9.2 reads them
(ssh-keygen(1), KEY REVOCATION LISTS); the prefixes are case-insensitive:

    serial: N            certificates of the CA (-s) with serial N (0x hex, 0 octal)
    serial: N-M          serials N to M (M above N)
    id: KEY_ID           certificates of the CA with this key ID
    key: PUBLIC_KEY      the key itself (a certificate: its certified key)
    sha1: PUBLIC_KEY     the key by its SHA1 fingerprint
    sha256: PUBLIC_KEY   the key by its SHA256 fingerprint
    hash: SHA256:...     a SHA256 fingerprint as ssh-keygen -l prints it
    PUBLIC_KEY           a plain key as ``key:``; a certificate by its serial under its
                         own CA (by its key ID when it has no serial)

``#`` starts a comment anywhere on a line. serial: and id: need a CA: a key (-s
CA.pub) or any CA (-s none).
"""

from __future__ import annotations

import re

from keytool.errors import FormatError, KeytoolError
from keytool.fields import b64_decode, c_line
from keytool.keys.base import PublicKey
from keytool.keys.fingerprint import raw_digest
from keytool.krl import MAX_SERIAL, SHA256_SIZE, Krl

_NUMBER = re.compile(r"\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _serial(text: str) -> int | None:
    """A number as strtoull reads it with base 0: decimal, 0x hex or 0 octal, after an
    optional ``+`` (a ``-`` is refused: strtoull would wrap it around)."""
    found = _NUMBER.fullmatch(text)
    if found is None:
        return None
    text = found.group(1)
    if text[:2].lower() == "0x":
        return int(text[2:], 16)
    if text.startswith("0"):
        return int(text, 8)
    return int(text)


def _serial_range(text: str) -> tuple[int, int]:
    first, dash, second = text.partition("-")
    lo = _serial(first)
    if lo is None:
        raise KeytoolError(f'invalid serial "{text}"')
    hi = lo
    if dash:
        second = second.lstrip(" \t")
        found = _serial(second)
        if found is None:
            raise KeytoolError(f'invalid serial "{second}"')
        hi = found
        if hi <= lo:
            raise KeytoolError(f"invalid serial range {lo}:{hi}")
    if hi > MAX_SERIAL:
        raise KeytoolError("serial out of range")
    if lo == 0:
        raise KeytoolError("serial 0 cannot be revoked (it is a certificate without a serial)")
    return lo, hi


def _sha256_text(text: str) -> bytes:
    """``SHA256:`` and unpadded base64, as fingerprints are printed."""
    if not text.startswith("SHA256:"):
        raise KeytoolError("unsupported hash algorithm (only SHA256:... fingerprints)")
    body = text[len("SHA256:") :]
    try:
        # as ssh-keygen: padded to a multiple of 4, then decoded as b64_pton does
        digest = b64_decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise KeytoolError("decode hash failed: not base64") from None
    if len(digest) != SHA256_SIZE:
        raise KeytoolError(f"a SHA256 fingerprint is 32 bytes, this one {len(digest)}")
    return digest


def _key(text: str) -> PublicKey:
    from keytool.keys.pubfile import parse_public_line

    try:
        key, _ = parse_public_line(text)
    except FormatError as exc:
        raise KeytoolError(f"invalid key ({exc})") from None
    return key


def _content(raw: str) -> str:
    """The line without leading blanks, its comment and trailing blanks (spaces and
    tabs: a CR stays, as ssh-keygen leaves it, so ``id: x\\r`` names the ID "x\\r"); the
    line ends at its first NUL, as the C string ssh-keygen reads."""
    text = c_line(raw).lstrip(" \t").partition("#")[0]
    return text.rstrip(" \t")


def _prefixed(text: str, prefix: str) -> str | None:
    if text[: len(prefix)].lower() != prefix:
        return None
    return text[len(prefix) :].lstrip(" \t")


def _apply(krl: Krl, text: str, ca: PublicKey | None, any_ca: bool) -> None:
    for prefix, what in (("serial:", "serial number"), ("id:", "key ID")):
        value = _prefixed(text, prefix)
        if value is None:
            continue
        if ca is None and not any_ca:
            raise KeytoolError(
                f"revoking certificates by {what} needs a CA key: -s CA.pub (or -s none "
                "for certificates of any CA)"
            )
        if prefix == "serial:":
            krl.revoke_serials(ca, *_serial_range(value))
        else:
            krl.revoke_key_id(ca, value)
        return
    value = _prefixed(text, "hash:")
    if value is not None:
        krl.revoke_sha256(_sha256_text(value))
        return
    if (value := _prefixed(text, "key:")) is not None:
        krl.revoke_key_explicit(_key(value))
    elif (value := _prefixed(text, "sha1:")) is not None:
        krl.revoke_sha1(raw_digest(_key(value), "sha1"))
    elif (value := _prefixed(text, "sha256:")) is not None:
        krl.revoke_sha256(raw_digest(_key(value), "sha256"))
    else:
        krl.revoke(_key(text))


def revoke_from_spec(
    krl: Krl, data: bytes, source: str, ca: PublicKey | None = None, any_ca: bool = False
) -> None:
    """Apply every line of a spec (or public key) file to ``krl``; a line that does not
    parse is a FormatError naming ``source:line``. ``ca`` is the CA of serial: and id:
    lines; ``any_ca`` revokes them for every CA instead."""
    text = data.decode("utf-8", "surrogateescape")
    for number, raw in enumerate(text.split("\n"), 1):
        line = _content(raw)
        if not line:
            continue
        try:
            _apply(krl, line, ca, any_ca)
        except KeytoolError as exc:
            raise FormatError(f"{source}:{number}: {exc}") from None

"""Fingerprints (SHA256 by default, MD5, SHA1, SHA384, SHA512 as -E picks; the
bubblebabble of SHA-1) and the randomart picture, byte-identical to ssh-keygen."""

from __future__ import annotations

import base64
import hashlib

from keytool.errors import KeytoolError
from keytool.keys.base import PublicKey

#: the names -E and FingerprintHash take (any case), as OpenSSH's digest table
HASH_NAMES = ("md5", "sha1", "sha256", "sha384", "sha512")


def check_hash_name(name: str | None) -> str:
    """The -E / FingerprintHash name in lower case (None: sha256), or an error."""
    lowered = ("sha256" if name is None else name).lower()
    if lowered not in HASH_NAMES:
        raise KeytoolError(f'Invalid hash algorithm "{name}"')
    return lowered


def _digest(blob: bytes, hash_name: str) -> bytes:
    if hash_name not in HASH_NAMES:
        raise KeytoolError(f'Invalid hash algorithm "{hash_name}"')
    return hashlib.new(hash_name, blob, usedforsecurity=False).digest()


def raw_digest(key: PublicKey, hash_name: str) -> bytes:
    """The digest (one of HASH_NAMES) of the key's blob; a certificate's certified key."""
    return _digest(key.plain.to_wire(), hash_name.lower())


def fingerprint(key: PublicKey, hash_name: str = "sha256") -> str:
    """``SHA256:<base64 without padding>`` (SHA1:, SHA384:, SHA512: alike) or
    ``MD5:aa:bb:…``, as ssh-keygen prints."""
    return blob_fingerprint(key.plain.to_wire(), hash_name)


def blob_fingerprint(blob: bytes, hash_name: str = "sha256") -> str:
    """``fingerprint`` of a key blob as it is (a key of a type keytool does not parse)."""
    name = hash_name.lower()
    digest = _digest(blob, name)
    if name == "md5":
        return "MD5:" + ":".join(f"{b:02x}" for b in digest)
    return name.upper() + ":" + base64.b64encode(digest).decode("ascii").rstrip("=")


def describe(key: PublicKey, comment: str | None, hash_name: str = "sha256") -> str:
    """One ``ssh-keygen -l`` line: bits, fingerprint, comment, (TYPE).

    None (no comment at all) reads "no comment", as ssh-keygen prints it."""
    return _line(key, comment, fingerprint(key, hash_name))


def describe_bubblebabble(key: PublicKey, comment: str | None) -> str:
    """One ``ssh-keygen -B`` line: bits, bubblebabble of the SHA-1 digest, comment, (TYPE)."""
    return _line(key, comment, bubblebabble(raw_digest(key, "sha1")))


def _line(key: PublicKey, comment: str | None, shown: str) -> str:
    label = "no comment" if comment is None else comment
    return f"{key.bits} {shown} {label} ({key.label})"


# Bubble Babble (Antti Huima's encoding, as OpenSSH's sshkey.c writes it): each pair of
# bytes becomes five letters "vcvcc" joined by "-", a checksum seed carried along, the
# whole between an "x" and an "x".
_VOWELS = "aeiouy"
_CONSONANTS = "bcdfghklmnprstvzx"


def bubblebabble(data: bytes) -> str:
    """``xexax`` for nothing; ``xesef-disof-gytuf-katof-movif-baxux`` for b"1234567890"."""
    out = ["x"]
    seed = 1
    for at in range(0, len(data) + 1, 2):
        if at < len(data):
            first = data[at]
            out.append(_VOWELS[((first >> 6) + seed) % 6])
            out.append(_CONSONANTS[(first >> 2) & 15])
            out.append(_VOWELS[((first & 3) + seed // 6) % 6])
            if at + 1 < len(data):
                second = data[at + 1]
                out.append(_CONSONANTS[second >> 4] + "-" + _CONSONANTS[second & 15])
                seed = (seed * 5 + first * 7 + second) % 36
        else:  # an even length ends with the seed's own syllable
            out.append(_VOWELS[seed % 6] + _CONSONANTS[16] + _VOWELS[seed // 6])
    out.append("x")
    return "".join(out)


# The "drunken bishop" walk of OpenSSH's sshkey.c: a bishop starts in the middle of a
# 17x9 board and moves diagonally by each 2-bit group of the digest, low bits first.
_WIDTH = 17
_HEIGHT = 9
_SYMBOLS = " .o+=*BOX@%&#/^SE"


def _centered(label: str) -> str:
    left = (_WIDTH - len(label)) // 2
    return "+" + "-" * left + label + "-" * (_WIDTH - left - len(label)) + "+"


def randomart(key: PublicKey, hash_name: str = "sha256") -> str:
    """The picture ``ssh-keygen -lv`` prints under the fingerprint (no final newline)."""
    digest = raw_digest(key, hash_name)
    top = len(_SYMBOLS) - 1
    field = [[0] * _HEIGHT for _ in range(_WIDTH)]
    x, y = _WIDTH // 2, _HEIGHT // 2
    for byte in digest:
        for _ in range(4):
            x = min(max(x + (1 if byte & 1 else -1), 0), _WIDTH - 1)
            y = min(max(y + (1 if byte & 2 else -1), 0), _HEIGHT - 1)
            if field[x][y] < top - 2:
                field[x][y] += 1
            byte >>= 2
    field[_WIDTH // 2][_HEIGHT // 2] = top - 1
    field[x][y] = top
    title = f"[{key.label} {key.bits}]"
    if len(title) > _WIDTH:
        title = f"[{key.label}]"
    lines = [_centered(title)]
    for row in range(_HEIGHT):
        lines.append("|" + "".join(_SYMBOLS[min(field[c][row], top)] for c in range(_WIDTH)) + "|")
    lines.append(_centered(f"[{hash_name.upper()}]"))
    return "\n".join(lines)

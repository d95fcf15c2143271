"""Public key text: ``type base64 comment`` lines, as in .pub files, authorized_keys
and known_hosts (those two formats' own parts live in authkeys.py and knownhosts.py)."""

from __future__ import annotations

import base64
import binascii

from keytool.errors import FormatError
from keytool.keys.base import PublicKey
from keytool.keys.blob import KEY_TYPES, UNSUPPORTED, public_from_wire


def looks_like_key_type(token: str) -> bool:
    return token in KEY_TYPES or token in UNSUPPORTED or token.startswith(("ssh-", "ecdsa-", "sk-"))


def decode_blob(b64: str | bytes) -> bytes:
    """The key blob of a line's base64 field, not parsed."""
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("invalid public key: bad base64") from None


def decode_key(key_type: str, b64: str | bytes, shown: bool = False) -> PublicKey:
    """The key of a line's type and base64 fields; ``shown``: DSA and security keys
    too, read only as far as listing them needs (keys/shown.py)."""
    if shown:
        from keytool.keys.shown import shown_from_wire

        key = shown_from_wire(decode_blob(b64))
    else:
        key = public_from_wire(decode_blob(b64))
    if key.key_type != key_type:
        raise FormatError(f"invalid public key: says {key_type} but holds {key.key_type}")
    return key


def parse_public_line(line: str) -> tuple[PublicKey, str]:
    """``ssh-ed25519 AAAA… comment`` -> (key, comment)."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise FormatError("invalid public key line: expected 'type base64 [comment]'")
    key = decode_key(parts[0], parts[1])
    return key, parts[2] if len(parts) > 2 else ""


def format_public_line(key: PublicKey, comment: str = "") -> str:
    text = f"{key.key_type} {base64.b64encode(key.to_wire()).decode('ascii')}"
    return f"{text} {comment}" if comment else text


def parse_public_text(text: bytes) -> tuple[PublicKey, str]:
    """A .pub file: its first key line."""
    # a comment may hold any bytes (ssh-keygen writes what it is given): kept as they are
    decoded = text.decode("utf-8", "surrogateescape")
    for line in decoded.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return parse_public_line(line)
    raise FormatError("invalid public key file: no key in it")

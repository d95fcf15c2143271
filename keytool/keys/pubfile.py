"""Public key text: ``type base64 comment`` lines, as in .pub files, authorized_keys
and known_hosts (those two formats' own parts live in authkeys.py and knownhosts.py)."""

from __future__ import annotations

import base64

from keytool.errors import FormatError, KeytoolError
from keytool.fields import b64_decode, blank_or_line_end, c_line, split_blanks
from keytool.keys.base import PublicKey
from keytool.keys.blob import KEY_TYPES, UNSUPPORTED, public_from_wire


def looks_like_key_type(token: str) -> bool:
    return token in KEY_TYPES or token in UNSUPPORTED or token.startswith(("ssh-", "ecdsa-", "sk-"))


def decode_blob(b64: str | bytes) -> bytes:
    """The key blob of a line's base64 field, not parsed. As OpenSSH decodes it
    (``fields.b64_decode``): C white space inside the field (a CRLF line's carriage
    return) is passed over, and anything but the canonical encoding is refused."""
    try:
        return b64_decode(b64)
    except ValueError:
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
    """``ssh-ed25519 AAAA… comment`` -> (key, comment), the words cut as OpenSSH cuts
    a key (sshkey_read): at spaces and tabs only, the comment being the rest of the
    line as it is, up to a NUL (a C string's end)."""
    parts = split_blanks(c_line(line), 2)
    if len(parts) < 2:
        raise FormatError("invalid public key line: expected 'type base64 [comment]'")
    key = decode_key(parts[0], parts[1])
    return key, parts[2] if len(parts) > 2 else ""


def format_public_line(key: PublicKey, comment: str = "") -> str:
    text = f"{key.key_type} {base64.b64encode(key.to_wire()).decode('ascii')}"
    return f"{text} {comment}" if comment else text


def parse_public_text(text: bytes) -> tuple[PublicKey, str]:
    """A .pub file: its first key line, as ssh-add and ssh read one (sshkey_load_public).

    Lines end at newlines only (and each at its first NUL, as a C string). Lines that
    are empty or start with ``#`` are passed over, and so is a line that holds no key
    (the first such line's error is raised when no line does). The comment ends at the
    first carriage return: a CRLF file's comment does not hold it."""
    # a comment may hold any bytes (ssh-keygen writes what it is given): kept as they are
    decoded = text.decode("utf-8", "surrogateescape")
    error: KeytoolError | None = None
    for raw in decoded.split("\n"):
        line = c_line(raw)
        if not line or line.startswith("#"):
            continue
        try:
            key, comment = parse_public_line(line)
        except KeytoolError as exc:
            if error is None and not blank_or_line_end(line):
                error = exc
            continue
        return key, comment.partition("\r")[0]
    raise error or FormatError("invalid public key file: no key in it")

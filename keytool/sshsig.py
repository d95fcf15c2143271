"""SSH signatures of files and messages (OpenSSH's PROTOCOL.sshsig), as ``ssh-keygen -Y``
makes them; pure: digests in, armored text out, and back.

What is signed is not the message but a blob naming its use (the namespace: "git",
"file", ...) and its hash, so a signature made for one use never verifies for another:

    byte[6] "SSHSIG", string namespace, string reserved, string hash_algorithm, string H(message)

The signature itself travels as the armored blob

    byte[6] "SSHSIG", uint32 1, string public key, string namespace, string reserved,
    string hash_algorithm, string signature

The public key may be an OpenSSH certificate (ssh-keygen -Y sign -f KEY-cert.pub puts
the certificate there): the certified key makes the signature, and an allowed_signers
``cert-authority`` line for its CA decides who it speaks for (keytool.allowedsigners).

RSA keys (certified or not) sign with rsa-sha2-512 (a SHA-1 ``ssh-rsa`` signature is
refused, as by ssh-keygen); the message hash is sha512 (sha256 is accepted when
verifying).
"""

from __future__ import annotations

import base64
import hashlib

from keytool.errors import FormatError, KeytoolError
from keytool.fields import b64_decode
from keytool.keys.base import PublicKey
from keytool.keys.blob import public_from_wire
from keytool.keys.fingerprint import fingerprint
from keytool.record import Record, init
from keytool.wire import Reader, Writer

MAGIC = b"SSHSIG"
VERSION = 1
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
HASHES = ("sha512", "sha256")
DEFAULT_HASH = "sha512"
#: signature algorithms accepted from an RSA key (PROTOCOL.sshsig: not ssh-rsa)
RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256")
_LINE = 70  # ssh-keygen's armor line length


class SignatureError(KeytoolError):
    """A signature that does not verify (bad, or for another namespace)."""


class Signature(Record):
    """A parsed SSH signature."""

    __slots__ = ("hash_algorithm", "key", "namespace", "reserved", "signature")
    key: PublicKey
    namespace: str
    reserved: bytes
    hash_algorithm: str
    signature: bytes  # the wire signature: string algorithm, string bytes

    def __init__(
        self,
        key: PublicKey,
        namespace: str,
        reserved: bytes,
        hash_algorithm: str,
        signature: bytes,
    ) -> None:
        init(
            self,
            key=key,
            namespace=namespace,
            reserved=reserved,
            hash_algorithm=hash_algorithm,
            signature=signature,
        )


def digest(hash_algorithm: str) -> hashlib._Hash:
    """A fresh hash object for the message (fed by the caller, in pieces)."""
    if hash_algorithm not in HASHES:
        raise FormatError(f"unsupported signature hash {hash_algorithm!r}")
    return hashlib.new(hash_algorithm)


def signed_data(namespace: str, hash_algorithm: str, message_hash: bytes) -> bytes:
    """The blob the key signs."""
    return (
        Writer()
        .raw(MAGIC)
        .string(namespace)
        .string(b"")
        .string(hash_algorithm)
        .string(message_hash)
        .getvalue()
    )


def armor(key: PublicKey, namespace: str, hash_algorithm: str, signature: bytes) -> str:
    """The armored signature ssh-keygen -Y sign writes."""
    blob = (
        Writer()
        .raw(MAGIC)
        .uint32(VERSION)
        .string(key.to_wire())
        .string(namespace)
        .string(b"")
        .string(hash_algorithm)
        .string(signature)
        .getvalue()
    )
    body = base64.b64encode(blob).decode("ascii")
    lines = [body[i : i + _LINE] for i in range(0, len(body), _LINE)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


#: what a signature file starts with, and what ends its base64, as ssh-keygen finds them
_HEADER = (BEGIN + "\n").encode()
_FOOTER = ("\n" + END).encode()
#: the blanks ssh-keygen's base64 decoder (b64_pton) passes over: C's isspace()
_C_SPACE = b" \t\n\v\f\r"


def parse(text: bytes) -> Signature:
    """The first armored signature of ``text``; FormatError for anything else.

    Read as ssh-keygen reads a signature file (sshsig_dearmor), accepting what it
    accepts and nothing else: the file starts with the BEGIN line ended by a newline
    (not a carriage return, no blank line or space before it); the base64 runs to the
    first newline followed by the END line, with any blanks (spaces, tabs, CRs, empty
    lines) inside it passed over; whatever follows the END line's dashes (a second
    signature, junk, no final newline) is not read. Refusals are in ssh-keygen's words."""
    if not text.startswith(_HEADER):
        raise FormatError("Couldn't parse signature: missing header")
    end = text.find(_FOOTER, len(_HEADER))
    if end < 0:
        raise FormatError("Couldn't parse signature: missing footer")
    body = text[len(_HEADER) : end]
    nul = body.find(b"\0")
    if nul >= 0:  # read as a C string: a NUL is its end, and only the last byte may be one
        if nul != len(body) - 1:
            raise FormatError("Couldn't parse signature: a NUL byte in its base64")
        body = body[:nul]
    try:  # b64_pton: blanks passed over, then only the canonical form decodes
        blob = b64_decode(body.translate(None, _C_SPACE), skip_space=False)
    except ValueError:  # binascii.Error too
        raise FormatError("Couldn't parse signature: decode base64: invalid format") from None
    r = Reader(blob, "SSH signature")
    if r.raw(len(MAGIC)) != MAGIC:
        raise FormatError("not an SSH signature: no SSHSIG magic")
    version = r.uint32()
    if version != VERSION:
        raise FormatError(f"unsupported SSH signature version {version}")
    key = public_from_wire(r.string())
    namespace = r.string().decode("utf-8", "surrogateescape")  # any bytes, as ssh-keygen
    reserved = r.string()
    hash_algorithm = r.ascii()
    signature = r.string()
    r.done()
    if hash_algorithm not in HASHES:
        raise FormatError(f"unsupported signature hash {hash_algorithm!r}")
    return Signature(key, namespace, reserved, hash_algorithm, signature)


def verify(sig: Signature, namespace: str, message_hash: bytes) -> None:
    """Raise SignatureError unless ``sig`` signs a message of hash ``message_hash``
    for ``namespace``."""
    if sig.namespace != namespace:
        raise SignatureError("namespace does not match")
    data = signed_data(sig.namespace, sig.hash_algorithm, message_hash)
    if not sig.key.verify(sig.signature, data, algorithms_for(sig.key)):
        raise SignatureError("incorrect signature")


def algorithms_for(key: PublicKey) -> tuple[str, ...] | None:
    """The signature algorithms an SSH signature by ``key`` may use (None: the key's
    own): RSA keys, and certificates of RSA keys, only the SHA-2 ones."""
    return RSA_ALGORITHMS if key.plain.key_type == "ssh-rsa" else None


def describe_key(key: PublicKey) -> str:
    """``ED25519 key SHA256:...``, as ssh-keygen names the signer; a certificate is
    ``ED25519-CERT key`` and the fingerprint of the key it certifies."""
    return f"{key.label} key {fingerprint(key)}"

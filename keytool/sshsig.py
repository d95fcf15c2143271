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
import binascii
import hashlib

from keytool.errors import FormatError, KeytoolError
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


def parse(text: bytes) -> Signature:
    """The first armored signature of ``text``; FormatError for anything else.

    As ssh-keygen reads a signature file: whatever follows the END line (a second
    signature, junk) is not read. Unlike ssh-keygen, blank space before the BEGIN
    line, around each line and CRLF line ends are let through."""
    lines = text.split(b"\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    body: list[bytes] = []
    if lines and lines[0].strip() == BEGIN.encode():
        for line in lines[1:]:
            line = line.strip()
            if line.startswith(END.encode()):
                break
            body.append(line)
        else:
            body = []
    if not body:
        raise FormatError(f"not an SSH signature: expected {BEGIN} ... {END}")
    try:
        blob = base64.b64decode(b"".join(body), validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("not an SSH signature: bad base64") from None
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

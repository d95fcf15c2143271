"""Keys: public blobs, signatures, private key files, fingerprints. Pure: no files here."""

from __future__ import annotations

from keytool.errors import FormatError, PassphraseError, UnsupportedKeyError
from keytool.keys.base import PrivateKey, PublicKey

__all__ = [
    "PrivateKey",
    "PublicKey",
    "generate",
    "is_encrypted_private",
    "load_private",
]


def generate(key_type: str, bits: int | None = None) -> PrivateKey:
    """A new key: ``ed25519``, ``rsa`` (default 3072 bits) or ``ecdsa`` (default 256)."""
    key_type = key_type.lower()
    if key_type == "ed25519":
        from keytool.keys.ed25519 import Ed25519Private

        return Ed25519Private.generate()
    if key_type == "rsa":
        from keytool.keys.rsa import MAX_BITS, MIN_BITS, RsaPrivate

        bits = bits or 3072
        if not MIN_BITS <= bits <= MAX_BITS:
            raise FormatError(f"invalid RSA key length: {bits} bits (minimum is {MIN_BITS})")
        return RsaPrivate.generate(bits)
    if key_type == "ecdsa":
        from keytool.keys.ecdsa import EcdsaPrivate

        return EcdsaPrivate.generate(bits or 256)
    if key_type in ("dsa", "ssh-dss"):
        raise UnsupportedKeyError("DSA keys are not supported (OpenSSH removed DSA); use ed25519")
    raise FormatError(f"unknown key type {key_type!r}: use ed25519, rsa or ecdsa")


def is_encrypted_private(text: bytes) -> bool:
    from keytool.keys import openssh, pem

    if openssh.is_openssh_private(text):
        return openssh.parse(text).is_encrypted
    if pem.is_pem_private(text):
        return pem.is_encrypted(text)
    raise FormatError("not a private key file")


def load_private(text: bytes, passphrase: bytes | None = None) -> tuple[PrivateKey, str]:
    """Load an OpenSSH or PEM private key from its file's bytes; returns (key, comment)."""
    from keytool.keys import openssh, pem

    if openssh.is_openssh_private(text):
        return openssh.load(text, passphrase)
    if pem.is_pem_private(text):
        return pem.load(text, passphrase), ""
    if b"PuTTY-User-Key-File" in text[:64]:
        raise UnsupportedKeyError("PuTTY key files are not supported; convert with puttygen")
    raise FormatError("not a private key file (no OpenSSH or PEM header)")


__all__ += ["PassphraseError"]

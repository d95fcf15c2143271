"""Private keys in PEM: PKCS#1 RSA, SEC1 EC, PKCS#8, and their encrypted forms."""

from __future__ import annotations

from keytool.errors import FormatError, PassphraseError, UnsupportedKeyError
from keytool.keys.base import PrivateKey


def is_pem_private(text: bytes) -> bool:
    head = text.lstrip()[:64]
    return head.startswith(b"-----BEGIN ") and b"PRIVATE KEY-----" in text[:200]


def is_encrypted(text: bytes) -> bool:
    return b"ENCRYPTED" in text[:200]


def load(text: bytes, passphrase: bytes | None = None) -> PrivateKey:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from keytool.keys.ecdsa import EcdsaPrivate
    from keytool.keys.ed25519 import Ed25519Private
    from keytool.keys.rsa import RsaPrivate

    if b"BEGIN DSA PRIVATE KEY" in text[:200]:
        raise UnsupportedKeyError("DSA keys are not supported (OpenSSH removed DSA); use ed25519")
    encrypted = is_encrypted(text)
    if encrypted and not passphrase:
        raise PassphraseError("the private key is encrypted: a passphrase is needed")
    # CRLF and a missing final newline are common after a copy and paste
    text = text.replace(b"\r\n", b"\n").strip() + b"\n"
    try:
        # the key's consistency is checked by our own cheap tests below; OpenSSL's full
        # RSA validation costs tens to hundreds of milliseconds on every load
        key = load_pem_private_key(
            text, passphrase if encrypted else None, unsafe_skip_rsa_key_validation=True
        )
    except TypeError:
        raise PassphraseError("the private key is encrypted: a passphrase is needed") from None
    except ValueError as exc:
        if encrypted:
            raise PassphraseError("incorrect passphrase supplied to decrypt private key") from None
        raise FormatError(f"invalid PEM private key ({exc})") from None
    except Exception as exc:  # OpenSSL's unsupported-algorithm errors and the like
        raise FormatError(f"invalid PEM private key ({type(exc).__name__})") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return RsaPrivate.from_crypto(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return EcdsaPrivate.from_crypto(key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Private(key.private_bytes_raw())
    if isinstance(key, dsa.DSAPrivateKey):
        raise UnsupportedKeyError("DSA keys are not supported (OpenSSH removed DSA); use ed25519")
    raise UnsupportedKeyError(f"unsupported PEM key type {type(key).__name__}")

"""Private keys in PEM: PKCS#1 RSA, SEC1 EC, PKCS#8, and their encrypted forms."""

from __future__ import annotations

from keytool.errors import FormatError, PassphraseError, UnsupportedKeyError, WrongPassphraseError
from keytool.keys.base import PrivateKey


def is_pem_private(text: bytes) -> bool:
    head = text.lstrip()[:64]
    return head.startswith(b"-----BEGIN ") and b"PRIVATE KEY-----" in text[:200]


def is_encrypted(text: bytes) -> bool:
    return b"ENCRYPTED" in text[:200]


# IV sizes of the ciphers a traditional encrypted PEM names in its DEK-Info header
# (RFC 1421 §4.6.1.3: "DEK-Info: <cipher>,<IV in hex>")
_DEK_IV_SIZES = {
    "AES-128-CBC": 16,
    "AES-192-CBC": 16,
    "AES-256-CBC": 16,
    "DES-EDE3-CBC": 8,
    "DES-CBC": 8,
}


def _check_dek_info(text: bytes) -> None:
    """Refuse a DEK-Info IV of the wrong size: cryptography panics on a short one
    (a BaseException that would escape as a traceback), so it must not see it."""
    for line in text.split(b"\n"):
        name, colon, value = line.partition(b":")
        if not colon or name.strip().lower() != b"dek-info":
            continue
        cipher, _, iv_hex = value.strip().partition(b",")
        size = _DEK_IV_SIZES.get(cipher.strip().decode("ascii", "replace").upper())
        if size is None:
            return  # cryptography names what it does not support
        try:
            iv = bytes.fromhex(iv_hex.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise FormatError("invalid PEM private key: DEK-Info IV is not hex") from None
        if len(iv) != size:
            raise FormatError(
                f"invalid PEM private key: DEK-Info IV is {len(iv)} bytes, {size} expected"
            )


def _check_body(text: bytes) -> None:
    """An encrypted key's body must be whole before a failed decryption may be blamed
    on the passphrase: a cut or damaged file is said to be one."""
    import base64
    import binascii

    lines = text.split(b"\n")
    body = b"".join(
        line.strip()
        for line in lines[1:]
        if line.strip() and b":" not in line and not line.startswith(b"-----")
    )
    damaged = FormatError("invalid PEM private key: the file is cut short or damaged")
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise damaged from None
    if b"BEGIN ENCRYPTED PRIVATE KEY" in text[:200]:
        # PKCS#8: one DER SEQUENCE that fills the body exactly
        if len(der) < 2 or der[0] != 0x30:
            raise damaged
        size, start = der[1], 2
        if size & 0x80:
            count = size & 0x7F
            if not 1 <= count <= 4 or len(der) < 2 + count:
                raise damaged
            size, start = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
        if start + size != len(der):
            raise damaged
    elif not der or len(der) % 8:
        raise damaged  # a traditional PEM's body is whole cipher blocks


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
    if encrypted:
        _check_dek_info(text)
        _check_body(text)
    try:
        # the key's consistency is checked by our own cheap tests below; OpenSSL's full
        # RSA validation costs tens to hundreds of milliseconds on every load
        key = load_pem_private_key(
            text, passphrase if encrypted else None, unsafe_skip_rsa_key_validation=True
        )
    except TypeError:
        raise PassphraseError("the private key is encrypted: a passphrase is needed") from None
    except ValueError:
        if encrypted:
            raise WrongPassphraseError(
                "incorrect passphrase supplied to decrypt private key"
            ) from None
        # cryptography's text (a web address to read) says no more than this
        raise FormatError("invalid PEM private key: its body does not decode") from None
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

"""Private keys written as ssh-keygen -m PEM and -m PKCS8 write them.

PEM is OpenSSL's traditional form: PKCS#1 for RSA, SEC1 for ECDSA; with a passphrase
it is encrypted the traditional way (RFC 1421 headers, AES-128-CBC, the key from
OpenSSL's EVP_BytesToKey with MD5 over the passphrase and the first 8 bytes of the IV).
PKCS8 is PKCS#8; with a passphrase an EncryptedPrivateKeyInfo (RFC 5958) under PBES2
(RFC 8018): PBKDF2 with HMAC-SHA256, an 8-byte salt and 2048 iterations, then
AES-128-CBC, which is what OpenSSL writes for ssh-keygen. Ed25519 keys have no such
form in OpenSSH (ssh-keygen writes them in its own format whatever -m says).
"""

from __future__ import annotations

import base64
import os

from keytool.errors import UnsupportedKeyError
from keytool.keys.base import PrivateKey
from keytool.wire import Reader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

PEM = "PEM"
PKCS8 = "PKCS8"

PBKDF2_ITERATIONS = 2048  # OpenSSL's PKCS5_DEFAULT_ITER
PBKDF2_SALT_SIZE = 8  # OpenSSL's PKCS5_SALT_LEN
AES_KEY_SIZE = 16
AES_BLOCK = 16

# DER object identifiers, tag and length included
_OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_OID_PBKDF2 = bytes.fromhex("06092a864886f70d01050c")  # 1.2.840.113549.1.5.12
_OID_HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")  # 1.2.840.113549.2.9
_OID_AES128_CBC = bytes.fromhex("0609608648016503040102")  # 2.16.840.1.101.3.4.1.2
_DER_NULL = b"\x05\x00"


def has_pem_form(key: PrivateKey) -> bool:
    """RSA and ECDSA keys have a PEM / PKCS#8 form ssh-keygen writes; Ed25519 not."""
    from keytool.keys.ecdsa import EcdsaPrivate
    from keytool.keys.rsa import RsaPrivate

    return isinstance(key, RsaPrivate | EcdsaPrivate)


def _crypto_key(key: PrivateKey) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from keytool.keys.ecdsa import EcdsaPrivate
    from keytool.keys.rsa import RsaPrivate

    if isinstance(key, RsaPrivate):
        pub = key.public
        numbers = rsa.RSAPrivateNumbers(
            p=key.p,
            q=key.q,
            d=key.d,
            dmp1=key.d % (key.p - 1),
            dmq1=key.d % (key.q - 1),
            iqmp=key.iqmp,
            public_numbers=rsa.RSAPublicNumbers(pub.e, pub.n),
        )
        return numbers.private_key(unsafe_skip_rsa_key_validation=True)
    if isinstance(key, EcdsaPrivate):
        # the private scalar as PROTOCOL.key holds it: curve name, point, then the mpint
        fields = Reader(key.fields_to_wire(), "ECDSA private key")
        fields.string()
        fields.string()
        return ec.derive_private_key(fields.positive_mpint(), key.public.curve.make())
    raise UnsupportedKeyError(f"{key.public.key_type} keys have no PEM or PKCS#8 form")


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _sequence(*parts: bytes) -> bytes:
    return _der(0x30, b"".join(parts))


def _octets(data: bytes) -> bytes:
    return _der(0x04, data)


def _integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _aes128_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CBC with PKCS#7 padding, as OpenSSL's PEM and PKCS#8 writers use it."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    pad = AES_BLOCK - len(data) % AES_BLOCK
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data + bytes([pad]) * pad) + enc.finalize()


def _armor(label: str, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    text = base64.b64encode(body).decode("ascii")
    lines = [f"-----BEGIN {label}-----"]
    if headers:
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append("")
    lines += [text[i : i + 64] for i in range(0, len(text), 64)]
    lines.append(f"-----END {label}-----")
    return ("\n".join(lines) + "\n").encode("ascii")


def _traditional(key: PrivateKey, passphrase: bytes | None) -> bytes:
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    crypto = _crypto_key(key)
    label = "RSA PRIVATE KEY" if isinstance(crypto, rsa.RSAPrivateKey) else "EC PRIVATE KEY"
    der = crypto.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    if not passphrase:
        return _armor(label, der)
    iv = os.urandom(AES_BLOCK)
    # EVP_BytesToKey(MD5, salt = the IV's first 8 bytes, one round): one MD5 block
    # is the whole 16-byte AES-128 key
    secret = hashlib.md5(passphrase + iv[:8], usedforsecurity=False).digest()
    headers = (("Proc-Type", "4,ENCRYPTED"), ("DEK-Info", f"AES-128-CBC,{iv.hex().upper()}"))
    return _armor(label, _aes128_cbc(secret, iv, der), headers)


def _pkcs8(key: PrivateKey, passphrase: bytes | None) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    der = _crypto_key(key).private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    if not passphrase:
        return _armor("PRIVATE KEY", der)
    salt = os.urandom(PBKDF2_SALT_SIZE)
    iv = os.urandom(AES_BLOCK)
    secret = PBKDF2HMAC(hashes.SHA256(), AES_KEY_SIZE, salt, PBKDF2_ITERATIONS).derive(passphrase)
    algorithm = _sequence(
        _OID_PBES2,
        _sequence(
            _sequence(
                _OID_PBKDF2,
                _sequence(
                    _octets(salt),
                    _integer(PBKDF2_ITERATIONS),
                    _sequence(_OID_HMAC_SHA256, _DER_NULL),
                ),
            ),
            _sequence(_OID_AES128_CBC, _octets(iv)),
        ),
    )
    info = _sequence(algorithm, _octets(_aes128_cbc(secret, iv, der)))
    return _armor("ENCRYPTED PRIVATE KEY", info)


def dump(key: PrivateKey, fmt: str, passphrase: bytes | None = None) -> bytes:
    """``key`` as a PEM (``fmt`` PEM) or PKCS#8 (``fmt`` PKCS8) file, encrypted when a
    passphrase is given. PEM files hold no comment."""
    if fmt == PEM:
        return _traditional(key, passphrase)
    if fmt == PKCS8:
        return _pkcs8(key, passphrase)
    raise ValueError(f"unknown PEM format {fmt!r}")

"""Public keys in other formats, as ``ssh-keygen -e`` writes them and ``ssh-keygen -i``
reads them; no file access.

- RFC4716: the SSH2 public key file (RFC 4716): ``---- BEGIN SSH2 PUBLIC KEY ----``,
  header lines (a long one continued with a backslash), the key blob in base64.
- PKCS8: a PEM SubjectPublicKeyInfo (``-----BEGIN PUBLIC KEY-----``).
- PEM: RSA as PKCS#1 (``-----BEGIN RSA PUBLIC KEY-----``); ECDSA as PKCS8.

Ed25519 keys are written only as RFC4716 (OpenSSH 9 refuses PKCS8 and PEM for them);
all three formats are read for every type.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keytool.errors import FormatError
from keytool.keys.base import PublicKey
from keytool.keys.blob import public_from_wire
from keytool.keys.ecdsa import CURVES, EcdsaPublic
from keytool.keys.ed25519 import Ed25519Public
from keytool.keys.rsa import RsaPublic

FORMATS = ("RFC4716", "PKCS8", "PEM")
RFC4716_BEGIN = "---- BEGIN SSH2 PUBLIC KEY ----"
RFC4716_END = "---- END SSH2 PUBLIC KEY ----"
_LINE = 70  # ssh-keygen's line length (RFC 4716 §3: at most 72 bytes)


def export(key: PublicKey, fmt: str, comment: str) -> str:
    """``key`` in ``fmt``; ``comment`` goes in an RFC4716 Comment header."""
    fmt = fmt.upper()
    if fmt == "RFC4716":
        body = base64.b64encode(key.to_wire()).decode("ascii")
        lines = [body[i : i + _LINE] for i in range(0, len(body), _LINE)]
        header = f'Comment: "{comment}"' if comment else None
        return "\n".join([RFC4716_BEGIN, *([header] if header else []), *lines, RFC4716_END]) + "\n"
    if fmt not in FORMATS:
        raise FormatError(f"unknown key format {fmt!r}: use RFC4716, PKCS8 or PEM")
    crypto = _to_crypto(key)
    if isinstance(crypto, ed25519.Ed25519PublicKey):
        raise FormatError(f"{fmt} is not written for {key.label} keys (as OpenSSH): use RFC4716")
    if fmt == "PEM" and isinstance(crypto, rsa.RSAPublicKey):
        encoding = serialization.PublicFormat.PKCS1
    else:
        encoding = serialization.PublicFormat.SubjectPublicKeyInfo
    return crypto.public_bytes(serialization.Encoding.PEM, encoding).decode("ascii")


def _to_crypto(
    key: PublicKey,
) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    if isinstance(key, RsaPublic):
        return rsa.RSAPublicNumbers(key.e, key.n).public_key()
    if isinstance(key, EcdsaPublic):
        return ec.EllipticCurvePublicKey.from_encoded_point(key.curve.make(), key.point)
    if isinstance(key, Ed25519Public):
        return ed25519.Ed25519PublicKey.from_public_bytes(key.raw)
    raise FormatError(f"{key.key_type} keys cannot be exported")


def import_key(text: bytes) -> PublicKey:
    """A public key in any of FORMATS (which one is told by its first line)."""
    stripped = text.strip()
    if stripped.startswith(RFC4716_BEGIN.encode()):
        return _from_rfc4716(stripped)
    if stripped.startswith(b"-----BEGIN "):
        from cryptography.exceptions import UnsupportedAlgorithm

        try:
            crypto = serialization.load_pem_public_key(stripped)
        except (ValueError, TypeError) as exc:
            raise FormatError(f"not a PEM public key: {exc}") from None
        except UnsupportedAlgorithm as exc:  # e.g. an EC key on a curve OpenSSL lacks
            raise FormatError(f"a PEM public key SSH does not use: {exc}") from None
        return _from_crypto(crypto)
    raise FormatError("not an RFC4716, PKCS8 or PEM public key")


def _from_rfc4716(text: bytes) -> PublicKey:
    try:
        lines = text.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise FormatError("an RFC4716 key that is not ASCII") from None
    # the key ends at its END line; what follows (another key, text) is not read, as
    # ssh-keygen -i reads the first key only
    end = next((i for i, line in enumerate(lines) if line.strip() == RFC4716_END), None)
    if end is None:
        raise FormatError(f"an RFC4716 key without its {RFC4716_END} line")
    body: list[str] = []
    continued = False
    for line in lines[1:end]:
        line = line.strip()
        if continued or ":" in line:
            # RFC 4716 §3.3: "Tag: value" headers; a trailing backslash continues one
            continued = line.endswith("\\")
            continue
        body.append(line)
    try:
        blob = base64.b64decode("".join(body), validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("an RFC4716 key with bad base64") from None
    return public_from_wire(blob)


def _from_crypto(crypto: object) -> PublicKey:
    if isinstance(crypto, rsa.RSAPublicKey):
        numbers = crypto.public_numbers()
        return RsaPublic(numbers.e, numbers.n)
    if isinstance(crypto, ec.EllipticCurvePublicKey):
        for curve in CURVES.values():
            if isinstance(crypto.curve, curve.make):
                point = crypto.public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                )
                return EcdsaPublic(curve, point)
        raise FormatError(f"an ECDSA key on a curve SSH does not use ({crypto.curve.name})")
    if isinstance(crypto, ed25519.Ed25519PublicKey):
        raw = crypto.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return Ed25519Public(raw)
    raise FormatError(f"a {type(crypto).__name__} key, which SSH does not use here")

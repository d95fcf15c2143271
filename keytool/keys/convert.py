"""Public keys in other formats, as ``ssh-keygen -e`` writes them and ``ssh-keygen -i``
reads them; no file access.

- RFC4716: the SSH2 public key file (RFC 4716): ``---- BEGIN SSH2 PUBLIC KEY ----``,
  header lines (a long one continued with a backslash), the key blob in base64.
- PKCS8: a PEM SubjectPublicKeyInfo (``-----BEGIN PUBLIC KEY-----``).
- PEM: RSA as PKCS#1 (``-----BEGIN RSA PUBLIC KEY-----``); ECDSA as PKCS8.

Ed25519 and security keys are written only as RFC4716 (OpenSSH 9 refuses PKCS8 and
PEM for them); DSA keys, which keytool only shows, are written in all three; all three
formats are read for every type.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from keytool.errors import FormatError
from keytool.keys.base import PublicKey
from keytool.keys.ecdsa import CURVES, EcdsaPublic
from keytool.keys.ed25519 import Ed25519Public
from keytool.keys.rsa import RsaPublic
from keytool.keys.shown import ShownPublic

FORMATS = ("RFC4716", "PKCS8", "PEM")
RFC4716_BEGIN = "---- BEGIN SSH2 PUBLIC KEY ----"
RFC4716_END = "---- END SSH2 PUBLIC KEY ----"
_LINE = 70  # ssh-keygen's line length (RFC 4716 §3: at most 72 bytes)


def export(key: PublicKey, fmt: str, comment: str) -> str:
    """``key`` in ``fmt``; ``comment`` goes in an RFC4716 Comment header. A certificate
    is written whole as RFC4716 and as its certified key in PKCS8 and PEM, as
    ssh-keygen -e writes it."""
    fmt = fmt.upper()
    if fmt == "RFC4716":
        body = base64.b64encode(key.to_wire()).decode("ascii")
        lines = [body[i : i + _LINE] for i in range(0, len(body), _LINE)]
        header = f'Comment: "{comment}"' if comment else None
        return "\n".join([RFC4716_BEGIN, *([header] if header else []), *lines, RFC4716_END]) + "\n"
    if fmt not in FORMATS:
        raise FormatError(f"unknown key format {fmt!r}: use RFC4716, PKCS8 or PEM")
    crypto = _to_crypto(key.plain, fmt)
    if fmt == "PEM" and isinstance(crypto, rsa.RSAPublicKey):
        encoding = serialization.PublicFormat.PKCS1
    else:
        encoding = serialization.PublicFormat.SubjectPublicKeyInfo
    return crypto.public_bytes(serialization.Encoding.PEM, encoding).decode("ascii")


def _to_crypto(
    key: PublicKey, fmt: str
) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey | dsa.DSAPublicKey:
    if isinstance(key, RsaPublic):
        return rsa.RSAPublicNumbers(key.e, key.n).public_key()
    if isinstance(key, EcdsaPublic):
        return ec.EllipticCurvePublicKey.from_encoded_point(key.curve.make(), key.point)
    if isinstance(key, ShownPublic) and key.dsa_numbers is not None:
        p, q, g, y = key.dsa_numbers
        try:
            return dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(p, q, g)).public_key()
        except ValueError as exc:
            raise FormatError(f"a DSA key that cannot be written as {fmt}: {exc}") from None
    # as OpenSSH: Ed25519 and security keys have no PKCS8 or PEM form
    raise FormatError(f"{fmt} is not written for {key.label} keys (as OpenSSH): use RFC4716")


def import_key(text: bytes, fmt: str | None = None) -> PublicKey:
    """A public key in ``fmt`` (one of FORMATS), read as ssh-keygen -i -m FMT reads
    it; without ``fmt``, PEM when the text holds a PEM block, else RFC4716."""
    if fmt is None:
        fmt = "PEM" if _pem_block(text, _PEM_LABELS["PEM"]) is not None else "RFC4716"
    if fmt == "RFC4716":
        return _from_rfc4716(text)
    block = _pem_block(text, _PEM_LABELS[fmt])
    if block is None:
        wanted = " or ".join(f"-----BEGIN {label.decode()}-----" for label in _PEM_LABELS[fmt])
        raise FormatError(f"not a {fmt} public key: no {wanted} block")
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        crypto = serialization.load_pem_public_key(block)
    except (ValueError, TypeError):
        raise FormatError(f"not a {fmt} public key: its PEM block does not decode") from None
    except UnsupportedAlgorithm:  # e.g. an EC key on a curve OpenSSL lacks
        raise FormatError("a PEM public key of an algorithm SSH does not use") from None
    return _from_crypto(crypto)


#: the PEM blocks each format reads (OpenSSL's PEM reader skips any other block and
#: any text around them); keytool's PEM also takes PKCS8's block, as it writes ECDSA so
_PEM_LABELS = {
    "PKCS8": (b"PUBLIC KEY",),
    "PEM": (b"RSA PUBLIC KEY", b"PUBLIC KEY"),
}


def _pem_block(text: bytes, labels: tuple[bytes, ...]) -> bytes | None:
    """The first PEM block of ``text`` whose label is one of ``labels``, from its BEGIN
    line to its END line; None when there is none."""
    lines = text.splitlines()
    for at, line in enumerate(lines):
        stripped = line.rstrip()
        if not (stripped.startswith(b"-----BEGIN ") and stripped.endswith(b"-----")):
            continue
        label = stripped[len(b"-----BEGIN ") : -len(b"-----")]
        if label not in labels:
            continue
        end_line = b"-----END " + label + b"-----"
        for last in range(at + 1, len(lines)):
            if lines[last].rstrip() == end_line:
                return b"\n".join(line.rstrip() for line in lines[at : last + 1]) + b"\n"
        return None
    return None


#: ssh-keygen's limits for an RFC4716 file: a line of 1023 bytes, a body of 8095
_MAX_LINE = 1023
_MAX_BODY = 8095


def _rfc4716_lines(text: bytes) -> list[bytes]:
    """The lines ssh-keygen's get_line returns: ended by LF, CR or CRLF; a last line
    without an end is not returned."""
    lines = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return lines[:-1]


def _from_rfc4716(text: bytes) -> PublicKey:
    """ssh-keygen -i's reading: "----" lines and "Tag: value" headers (a header line
    ending in a backslash continued by the next) are passed over, the body is every
    other line up to the END line (or the end of the file), BEGIN line or not."""
    from keytool.keys.shown import shown_from_wire

    body = b""
    escaped = 0
    for line in _rfc4716_lines(text):
        if len(line) > _MAX_LINE:
            raise FormatError(f"an RFC4716 line longer than {_MAX_LINE} bytes")
        line = line.split(b"\0", 1)[0]
        if line.endswith(b"\\"):
            escaped += 1
        if line.startswith(b"----") or b": " in line:
            if b"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----" in line:
                raise FormatError("an SSH2 private key: keytool reads public keys only")
            if b" END " in line:
                break
            continue
        if escaped:
            escaped -= 1
            continue
        body = (body + line)[:_MAX_BODY]
    if len(body) % 4 == 3 and body.endswith(b"==="):
        body = body[:-3]
    encoded = b"".join(body.split())
    try:
        if len(encoded) % 4:  # as OpenSSH's decoder: whole groups of four, padded
            raise ValueError
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("not an RFC4716 public key: bad base64") from None
    if not blob:
        raise FormatError("not an RFC4716 public key: no key in it")
    try:
        return shown_from_wire(blob)
    except FormatError as exc:
        raise FormatError(f"not an RFC4716 public key ({exc})") from None


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
    if isinstance(crypto, dsa.DSAPublicKey):
        from keytool.keys.shown import shown_from_wire
        from keytool.wire import Writer

        dsa_numbers = crypto.public_numbers()
        group = dsa_numbers.parameter_numbers
        blob = Writer().string("ssh-dss").mpint(group.p).mpint(group.q).mpint(group.g)
        blob.mpint(dsa_numbers.y)
        return shown_from_wire(blob.getvalue())
    raise FormatError(f"a {type(crypto).__name__} key, which SSH does not use here")

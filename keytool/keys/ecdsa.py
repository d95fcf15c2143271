"""ecdsa-sha2-nistp256/384/521 keys and signatures (RFC 5656)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from keytool.errors import FormatError
from keytool.keys.base import PrivateKey, PublicKey
from keytool.record import Record, init
from keytool.wire import Reader, Writer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar


class Curve(Record):
    __slots__ = ("bits", "hash", "identifier", "key_type", "make")
    key_type: str
    identifier: str  # RFC 5656 §6.1: the curve name inside the blob
    bits: int
    make: type[ec.EllipticCurve]
    hash: type[hashes.HashAlgorithm]  # RFC 5656 §6.2.1

    def __init__(
        self,
        key_type: str,
        identifier: str,
        bits: int,
        make: type[ec.EllipticCurve],
        hash: type[hashes.HashAlgorithm],
    ) -> None:
        init(self, key_type=key_type, identifier=identifier, bits=bits, make=make, hash=hash)


CURVES = {
    c.key_type: c
    for c in (
        Curve("ecdsa-sha2-nistp256", "nistp256", 256, ec.SECP256R1, hashes.SHA256),
        Curve("ecdsa-sha2-nistp384", "nistp384", 384, ec.SECP384R1, hashes.SHA384),
        Curve("ecdsa-sha2-nistp521", "nistp521", 521, ec.SECP521R1, hashes.SHA512),
    )
}
BY_BITS = {c.bits: c for c in CURVES.values()}


def _curve_of(key_type: str, r: Reader) -> Curve:
    curve = CURVES.get(key_type)
    if curve is None:
        raise FormatError(f"unknown ECDSA key type {key_type}")
    if r.ascii() != curve.identifier:
        raise FormatError(f"malformed {key_type} key: curve name does not match its type")
    return curve


class EcdsaPublic(PublicKey):
    __slots__ = ("_key", "curve", "point")
    signature_algorithms: ClassVar[tuple[str, ...]] = tuple(CURVES)

    def __init__(self, curve: Curve, point: bytes) -> None:
        # RFC 5656 §3.1 / SEC1 §2.3.3: OpenSSH reads only uncompressed points (0x04 || x || y)
        if len(point) != 1 + 2 * ((curve.bits + 7) // 8) or point[0] != 4:
            raise FormatError(f"invalid {curve.key_type} public point: not an uncompressed point")
        self.curve = curve
        self.point = point
        try:
            # also checks that the point lies on the curve
            self._key = ec.EllipticCurvePublicKey.from_encoded_point(curve.make(), point)
        except ValueError:
            raise FormatError(f"invalid {curve.key_type} public point") from None

    @classmethod
    def from_fields(cls, key_type: str, r: Reader) -> EcdsaPublic:
        curve = _curve_of(key_type, r)
        return cls(curve, r.string())

    @property
    def key_type(self) -> str:
        return self.curve.key_type

    @property
    def bits(self) -> int:
        return self.curve.bits

    @property
    def label(self) -> str:
        return "ECDSA"

    def fields_to_wire(self) -> bytes:
        return Writer().string(self.curve.identifier).string(self.point).getvalue()

    def _verify_raw(self, algorithm: str, signature: bytes, data: bytes) -> bool:
        if algorithm != self.curve.key_type:
            return False
        try:
            r = Reader(signature, "ECDSA signature")
            sig_r = r.positive_mpint()
            sig_s = r.positive_mpint()
            r.done()
        except FormatError:
            return False
        try:
            self._key.verify(encode_dss_signature(sig_r, sig_s), data, ec.ECDSA(self.curve.hash()))
        except (InvalidSignature, ValueError):
            return False
        return True


class EcdsaPrivate(PrivateKey):
    __slots__ = ("_key", "_public")

    default_algorithm: ClassVar[str] = ""  # per curve; see sign()

    def __init__(self, curve: Curve, private_value: int, point: bytes | None = None) -> None:
        try:
            self._key = ec.derive_private_key(private_value, curve.make())
        except (ValueError, TypeError):
            raise FormatError(f"invalid {curve.key_type} private value") from None
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        derived = self._key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        if point is not None and point != derived:
            raise FormatError(f"inconsistent {curve.key_type} key: public point does not match")
        self._public = EcdsaPublic(curve, derived)

    @classmethod
    def from_crypto(cls, key: ec.EllipticCurvePrivateKey) -> EcdsaPrivate:
        for curve in CURVES.values():
            if isinstance(key.curve, curve.make):
                return cls(curve, key.private_numbers().private_value)
        raise FormatError(f"unsupported elliptic curve {key.curve.name}")

    @classmethod
    def generate(cls, bits: int) -> EcdsaPrivate:
        curve = BY_BITS.get(bits)
        if curve is None:
            raise FormatError("ECDSA keys are 256, 384 or 521 bits")
        return cls.from_crypto(ec.generate_private_key(curve.make()))

    @classmethod
    def from_fields(cls, key_type: str, r: Reader) -> EcdsaPrivate:
        # PROTOCOL.key / PROTOCOL.agent: string curve, string Q, mpint d
        curve = _curve_of(key_type, r)
        point = r.string()
        private_value = r.positive_mpint()
        return cls(curve, private_value, point)

    @property
    def public(self) -> EcdsaPublic:
        return self._public

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        curve = self._public.curve
        if algorithm not in (None, curve.key_type):
            raise FormatError(f"an {curve.key_type} key cannot sign with {algorithm}")
        sig_r, sig_s = decode_dss_signature(self._key.sign(data, ec.ECDSA(curve.hash())))
        inner = Writer().mpint(sig_r).mpint(sig_s).getvalue()
        return Writer().string(curve.key_type).string(inner).getvalue()

    def fields_to_wire(self) -> bytes:
        pub = self._public
        value = self._key.private_numbers().private_value
        return Writer().string(pub.curve.identifier).string(pub.point).mpint(value).getvalue()

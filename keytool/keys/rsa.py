"""ssh-rsa keys; signatures ssh-rsa (SHA-1), rsa-sha2-256 and rsa-sha2-512 (RFC 8332)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from keytool.errors import FormatError
from keytool.keys.base import PrivateKey, PublicKey
from keytool.wire import Reader, Writer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

KEY_TYPE = "ssh-rsa"
# OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE and the largest size it handles
MIN_BITS = 1024
MAX_BITS = 16384

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "rsa-sha2-512": hashes.SHA512,
    "rsa-sha2-256": hashes.SHA256,
    "ssh-rsa": hashes.SHA1,
}


def _check_public_numbers(e: int, n: int) -> None:
    bits = n.bit_length()
    if bits < MIN_BITS:
        raise FormatError(f"RSA key of {bits} bits is too small (minimum {MIN_BITS})")
    if bits > MAX_BITS:
        raise FormatError(f"RSA key of {bits} bits is too large (maximum {MAX_BITS})")
    if e < 3 or e % 2 == 0 or e >= n:
        raise FormatError("invalid RSA public exponent")


class RsaPublic(PublicKey):
    __slots__ = ("_key", "e", "n")
    signature_algorithms: ClassVar[tuple[str, ...]] = tuple(HASHES)

    def __init__(self, e: int, n: int) -> None:
        _check_public_numbers(e, n)
        self.e = e
        self.n = n
        self._key: rsa.RSAPublicKey | None = None

    @classmethod
    def from_fields(cls, key_type: str, r: Reader) -> RsaPublic:
        # RFC 4253 §6.6: mpint e, mpint n
        e = r.positive_mpint()
        n = r.positive_mpint()
        return cls(e, n)

    @property
    def key_type(self) -> str:
        return KEY_TYPE

    @property
    def bits(self) -> int:
        return self.n.bit_length()

    @property
    def label(self) -> str:
        return "RSA"

    def fields_to_wire(self) -> bytes:
        return Writer().mpint(self.e).mpint(self.n).getvalue()

    def crypto_key(self) -> rsa.RSAPublicKey:
        if self._key is None:
            self._key = rsa.RSAPublicNumbers(self.e, self.n).public_key()
        return self._key

    def _verify_raw(self, algorithm: str, signature: bytes, data: bytes) -> bool:
        size = (self.n.bit_length() + 7) // 8
        if len(signature) > size:
            return False
        # RFC 8332 §3 wants the full length; OpenSSH pads a short one, and so do we
        signature = signature.rjust(size, b"\0")
        try:
            self.crypto_key().verify(signature, data, padding.PKCS1v15(), HASHES[algorithm]())
        except InvalidSignature:
            return False
        return True


class RsaPrivate(PrivateKey):
    __slots__ = ("_key", "_public", "d", "iqmp", "p", "q")
    default_algorithm: ClassVar[str] = "rsa-sha2-512"

    def __init__(self, e: int, n: int, d: int, iqmp: int, p: int, q: int) -> None:
        # Cheap consistency checks instead of OpenSSL's full validation (primality
        # tests cost 36 ms at 2048 bits, 250 ms at 4096): enough to refuse a key whose
        # parts do not belong together, which is what a corrupt file or hostile input gives.
        public = RsaPublic(e, n)
        if p <= 1 or q <= 1 or p * q != n:
            raise FormatError("inconsistent RSA key: p·q does not equal n")
        if not (0 < d < n) or (d * e) % (p - 1) != 1 or (d * e) % (q - 1) != 1:
            raise FormatError("inconsistent RSA key: d does not match e")
        if not (0 < iqmp < p) or (iqmp * q) % p != 1:
            raise FormatError("inconsistent RSA key: iqmp is not q⁻¹ mod p")
        self._public = public
        self.d, self.iqmp, self.p, self.q = d, iqmp, p, q
        numbers = rsa.RSAPrivateNumbers(
            p=p,
            q=q,
            d=d,
            dmp1=d % (p - 1),
            dmq1=d % (q - 1),
            iqmp=iqmp,
            public_numbers=rsa.RSAPublicNumbers(e, n),
        )
        try:
            self._key = numbers.private_key(unsafe_skip_rsa_key_validation=True)
        except ValueError as exc:
            raise FormatError(f"invalid RSA key: {exc}") from None

    @classmethod
    def from_crypto(cls, key: rsa.RSAPrivateKey) -> RsaPrivate:
        numbers = key.private_numbers()
        pub = numbers.public_numbers
        return cls(pub.e, pub.n, numbers.d, numbers.iqmp, numbers.p, numbers.q)

    @classmethod
    def generate(cls, bits: int) -> RsaPrivate:
        return cls.from_crypto(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def from_fields(cls, key_type: str, r: Reader) -> RsaPrivate:
        # PROTOCOL.key / PROTOCOL.agent: mpint n, e, d, iqmp, p, q
        n = r.positive_mpint()
        e = r.positive_mpint()
        d = r.positive_mpint()
        iqmp = r.positive_mpint()
        p = r.positive_mpint()
        q = r.positive_mpint()
        return cls(e, n, d, iqmp, p, q)

    @property
    def public(self) -> RsaPublic:
        return self._public

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        algorithm = algorithm or self.default_algorithm
        hash_type = HASHES.get(algorithm)
        if hash_type is None:
            raise FormatError(f"an RSA key cannot sign with {algorithm}")
        raw = self._key.sign(data, padding.PKCS1v15(), hash_type())
        return Writer().string(algorithm).string(raw).getvalue()

    def fields_to_wire(self) -> bytes:
        pub = self._public
        return (
            Writer()
            .mpint(pub.n)
            .mpint(pub.e)
            .mpint(self.d)
            .mpint(self.iqmp)
            .mpint(self.p)
            .mpint(self.q)
            .getvalue()
        )

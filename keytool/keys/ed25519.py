"""ssh-ed25519 keys and signatures (RFC 8709)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from keytool.errors import FormatError
from keytool.keys.base import PrivateKey, PublicKey
from keytool.wire import Reader, Writer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

KEY_TYPE = "ssh-ed25519"


class Ed25519Public(PublicKey):
    __slots__ = ("_key", "raw")
    signature_algorithms: ClassVar[tuple[str, ...]] = (KEY_TYPE,)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise FormatError(f"ed25519 public key must be 32 bytes, not {len(raw)}")
        self.raw = raw
        self._key: ed25519.Ed25519PublicKey | None = None

    @classmethod
    def from_fields(cls, key_type: str, r: Reader) -> Ed25519Public:
        return cls(r.string())

    @property
    def key_type(self) -> str:
        return KEY_TYPE

    @property
    def bits(self) -> int:
        return 256

    @property
    def label(self) -> str:
        return "ED25519"

    def fields_to_wire(self) -> bytes:
        return Writer().string(self.raw).getvalue()

    def _verify_raw(self, algorithm: str, signature: bytes, data: bytes) -> bool:
        if len(signature) != 64:
            return False
        if self._key is None:
            try:
                self._key = ed25519.Ed25519PublicKey.from_public_bytes(self.raw)
            except ValueError:
                return False
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


class Ed25519Private(PrivateKey):
    __slots__ = ("_key", "_public", "seed")
    default_algorithm: ClassVar[str] = KEY_TYPE

    def __init__(self, seed: bytes, public_raw: bytes | None = None) -> None:
        if len(seed) != 32:
            raise FormatError("ed25519 private key must have a 32-byte seed")
        self.seed = seed
        self._key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        derived = self._key.public_key().public_bytes_raw()
        if public_raw is not None and public_raw != derived:
            raise FormatError("inconsistent ed25519 key: public half does not match private")
        self._public = Ed25519Public(derived)

    @classmethod
    def generate(cls) -> Ed25519Private:
        return cls(ed25519.Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_fields(cls, key_type: str, r: Reader) -> Ed25519Private:
        # PROTOCOL.key / PROTOCOL.agent: string pk(32), string sk(64) = seed || pk
        public_raw = r.string()
        secret = r.string()
        if len(public_raw) != 32 or len(secret) != 64:
            raise FormatError("malformed ed25519 private key: wrong field lengths")
        if secret[32:] != public_raw:
            raise FormatError("inconsistent ed25519 key: the two public halves differ")
        return cls(secret[:32], public_raw)

    @property
    def public(self) -> Ed25519Public:
        return self._public

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        if algorithm not in (None, KEY_TYPE):
            raise FormatError(f"an ed25519 key cannot sign with {algorithm}")
        return Writer().string(KEY_TYPE).string(self._key.sign(data)).getvalue()

    def fields_to_wire(self) -> bytes:
        raw = self._public.raw
        return Writer().string(raw).string(self.seed + raw).getvalue()

"""The two abstract key types every algorithm module implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from keytool.errors import FormatError
from keytool.wire import Reader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar


class PublicKey(ABC):
    """A public key, known by its SSH wire blob (RFC 4253 §6.6)."""

    __slots__ = ()

    #: every signature algorithm name this key type can verify
    signature_algorithms: ClassVar[tuple[str, ...]]

    @property
    @abstractmethod
    def key_type(self) -> str:
        """The wire name, e.g. ``ssh-ed25519``."""

    @property
    @abstractmethod
    def bits(self) -> int:
        """Key size as ssh-keygen prints it."""

    @property
    @abstractmethod
    def label(self) -> str:
        """Short type name as ssh-keygen prints it: ED25519, RSA, ECDSA."""

    @abstractmethod
    def fields_to_wire(self) -> bytes:
        """The blob after its type name."""

    @abstractmethod
    def _verify_raw(self, algorithm: str, signature: bytes, data: bytes) -> bool:
        """Check the algorithm-specific signature bytes."""

    def to_wire(self) -> bytes:
        name = self.key_type.encode("ascii")
        return len(name).to_bytes(4, "big") + name + self.fields_to_wire()

    @property
    def plain(self) -> PublicKey:
        """The key itself: for a certificate, the key it certifies (what fingerprints,
        authorized_keys and known_hosts name)."""
        return self

    def verify(self, signature: bytes, data: bytes, allowed: tuple[str, ...] | None = None) -> bool:
        """True when ``signature`` (a wire signature blob) signs ``data`` with this key.

        ``allowed`` narrows the accepted algorithms (e.g. to refuse SHA-1 ssh-rsa).
        A malformed signature is simply not valid: False, never an exception.
        """
        try:
            r = Reader(signature, "signature")
            algorithm = r.ascii()
            raw = r.string()
            r.done()
        except FormatError:
            return False
        if algorithm not in self.signature_algorithms:
            return False
        if allowed is not None and algorithm not in allowed:
            return False
        return self._verify_raw(algorithm, raw, data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and self.to_wire() == other.to_wire()

    def __hash__(self) -> int:
        return hash(self.to_wire())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key_type} {self.bits}>"


class PrivateKey(ABC):
    """A private key; it signs and can write its fields for key files and agents."""

    __slots__ = ()

    #: the algorithm ``sign()`` uses when none is named
    default_algorithm: ClassVar[str]

    @property
    @abstractmethod
    def public(self) -> PublicKey:
        """The matching public key."""

    @abstractmethod
    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        """Sign ``data``; returns the SSH wire signature blob."""

    @abstractmethod
    def fields_to_wire(self) -> bytes:
        """Private fields after the type name, as in PROTOCOL.key and PROTOCOL.agent."""

    def to_wire(self) -> bytes:
        name = self.public.key_type.encode("ascii")
        return len(name).to_bytes(4, "big") + name + self.fields_to_wire()

    def __repr__(self) -> str:
        # never show key material
        return f"<{type(self).__name__} {self.public.key_type} {self.public.bits}>"

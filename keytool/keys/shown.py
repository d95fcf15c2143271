"""Public keys keytool shows but does not use: DSA (ssh-dss) and FIDO security keys
(sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com).

ssh-keygen -l, -e and -r need no support for a key type to fingerprint, size or
write out its public blob, so such a blob is read just far enough for that: its type
and size are known, it has a fingerprint and a wire form, and it verifies nothing.
"""

from __future__ import annotations

from keytool.errors import FormatError
from keytool.keys.base import PublicKey
from keytool.keys.blob import KEY_TYPES, UNSUPPORTED_LABELS, public_from_wire
from keytool.wire import Reader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

DSA = "ssh-dss"
SK_ED25519 = "sk-ssh-ed25519@openssh.com"
SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com"


class ShownPublic(PublicKey):
    """A public key of a type keytool lists but never uses for signatures."""

    __slots__ = ("_bits", "_fields", "_type", "dsa_numbers")
    signature_algorithms: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        key_type: str,
        fields: bytes,
        bits: int,
        dsa_numbers: tuple[int, int, int, int] | None = None,
    ) -> None:
        self._type = key_type
        self._fields = fields
        self._bits = bits
        #: (p, q, g, y) of a DSA key, for the PKCS8 and PEM forms ssh-keygen -e writes
        self.dsa_numbers = dsa_numbers

    @property
    def key_type(self) -> str:
        return self._type

    @property
    def bits(self) -> int:
        return self._bits

    @property
    def label(self) -> str:
        return UNSUPPORTED_LABELS[self._type]

    def fields_to_wire(self) -> bytes:
        return self._fields

    def _verify_raw(self, algorithm: str, signature: bytes, data: bytes) -> bool:
        return False


def shown_from_wire(blob: bytes) -> PublicKey:
    """A whole public key blob: a key keytool uses (as ``public_from_wire``), or a
    DSA or security key read as ssh-keygen reads it (its fields checked, not used)."""
    r = Reader(blob, "public key blob")
    key_type = r.ascii()
    if key_type in KEY_TYPES or key_type not in (DSA, SK_ED25519, SK_ECDSA):
        return public_from_wire(blob)
    start = r.offset
    numbers: tuple[int, int, int, int] | None = None
    if key_type == DSA:
        p, q, g, y = (r.positive_mpint() for _ in range(4))
        numbers = (p, q, g, y)
        bits = p.bit_length()
    elif key_type == SK_ED25519:
        if len(r.string()) != 32:
            raise FormatError("invalid public key: an ed25519 key must be 32 bytes")
        r.string()  # the application ("ssh:")
        bits = 256
    else:
        from keytool.keys.ecdsa import CURVES, EcdsaPublic

        curve = CURVES["ecdsa-sha2-nistp256"]
        if r.ascii() != curve.identifier:
            raise FormatError(f"malformed {key_type} key: curve name does not match its type")
        EcdsaPublic(curve, r.string())  # checks the point
        r.string()  # the application
        bits = curve.bits
    fields = r.since(start)
    r.done()
    return ShownPublic(key_type, fields, bits, numbers)

"""The KEY_TYPES table: key type names <-> key classes, for key files, the agent and host keys.

Each algorithm's module is imported the first time a key of that type is seen, so a
command that touches only ed25519 keys never loads RSA or elliptic-curve code.
"""

from __future__ import annotations

import importlib

from keytool.errors import FormatError, UnsupportedKeyError
from keytool.keys.base import PrivateKey, PublicKey
from keytool.record import Record, init
from keytool.wire import Reader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    class _PublicClass(Protocol):
        @classmethod
        def from_fields(cls, key_type: str, r: Reader, /) -> PublicKey: ...

    class _PrivateClass(Protocol):
        @classmethod
        def from_fields(cls, key_type: str, r: Reader, /) -> PrivateKey: ...


class KeyType(Record):
    __slots__ = ("module", "name", "private_class", "public_class")
    name: str
    module: str  # keytool.keys.<module>
    public_class: str
    private_class: str

    def __init__(self, name: str, module: str, public_class: str, private_class: str) -> None:
        init(self, name=name, module=module, public_class=public_class, private_class=private_class)

    def public(self, r: Reader) -> PublicKey:
        cls: _PublicClass = getattr(importlib.import_module(self.module), self.public_class)
        return cls.from_fields(self.name, r)

    def private(self, r: Reader) -> PrivateKey:
        cls: _PrivateClass = getattr(importlib.import_module(self.module), self.private_class)
        return cls.from_fields(self.name, r)


_ECDSA = ("keytool.keys.ecdsa", "EcdsaPublic", "EcdsaPrivate")
KEY_TYPES: dict[str, KeyType] = {
    "ssh-ed25519": KeyType(
        "ssh-ed25519", "keytool.keys.ed25519", "Ed25519Public", "Ed25519Private"
    ),
    "ssh-rsa": KeyType("ssh-rsa", "keytool.keys.rsa", "RsaPublic", "RsaPrivate"),
    "ecdsa-sha2-nistp256": KeyType("ecdsa-sha2-nistp256", *_ECDSA),
    "ecdsa-sha2-nistp384": KeyType("ecdsa-sha2-nistp384", *_ECDSA),
    "ecdsa-sha2-nistp521": KeyType("ecdsa-sha2-nistp521", *_ECDSA),
}
# certificates (keys/cert.py): the certified key's type name with -cert-v01@openssh.com
for _name, _class in (
    ("ssh-ed25519", "Ed25519Cert"),
    ("ssh-rsa", "RsaCert"),
    ("ecdsa-sha2-nistp256", "EcdsaCert"),
    ("ecdsa-sha2-nistp384", "EcdsaCert"),
    ("ecdsa-sha2-nistp521", "EcdsaCert"),
):
    _cert = _name + "-cert-v01@openssh.com"
    KEY_TYPES[_cert] = KeyType(_cert, "keytool.keys.cert", _class, "CertifiedPrivate")

#: names we recognise only to say plainly that they are not supported
UNSUPPORTED = {
    "ssh-dss": "DSA keys are not supported (OpenSSH removed DSA); use ed25519",
    "sk-ssh-ed25519@openssh.com": "FIDO security-key keys are not supported",
    "sk-ecdsa-sha2-nistp256@openssh.com": "FIDO security-key keys are not supported",
}
#: how ssh-keygen -l and ssh-add name those types (keytool shows them, never parses them)
UNSUPPORTED_LABELS = {
    "ssh-dss": "DSA",
    "sk-ssh-ed25519@openssh.com": "ED25519-SK",
    "sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
}


def key_type_of(name: str) -> KeyType:
    entry = KEY_TYPES.get(name)
    if entry is not None:
        return entry
    if name in UNSUPPORTED:
        raise UnsupportedKeyError(UNSUPPORTED[name])
    if name.endswith("-cert-v01@openssh.com"):
        raise UnsupportedKeyError(f"{name} certificates are not supported")
    shown = name if name.isprintable() and len(name) < 64 else "(unprintable)"
    raise UnsupportedKeyError(f"unknown key type {shown}")


def public_from_reader(r: Reader) -> PublicKey:
    """Read one public key blob's fields (type name first) from ``r``."""
    return key_type_of(r.ascii()).public(r)


def public_from_wire(blob: bytes) -> PublicKey:
    """Parse a whole public key blob; trailing bytes are an error."""
    r = Reader(blob, "public key blob")
    key = public_from_reader(r)
    r.done()
    return key


def private_from_reader(r: Reader) -> PrivateKey:
    """Read a private key (type name, then its fields) as in PROTOCOL.key and PROTOCOL.agent."""
    return key_type_of(r.ascii()).private(r)


def signature_algorithm(signature: bytes) -> str:
    """The algorithm name a wire signature blob claims."""
    r = Reader(signature, "signature")
    name = r.ascii()
    r.string()
    r.done()
    return name


def check_pair(private: PrivateKey, public: PublicKey) -> None:
    if private.public != public:
        raise FormatError("the public key does not match the private key")

"""The KEY_TYPES table: key type names <-> key classes, for key files, the agent and host keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from keytool.errors import FormatError, UnsupportedKeyError
from keytool.keys.base import PrivateKey, PublicKey
from keytool.keys.ecdsa import CURVES, EcdsaPrivate, EcdsaPublic
from keytool.keys.ed25519 import Ed25519Private, Ed25519Public
from keytool.keys.rsa import RsaPrivate, RsaPublic
from keytool.wire import Reader


class _PublicParser(Protocol):
    def __call__(self, key_type: str, r: Reader, /) -> PublicKey: ...


class _PrivateParser(Protocol):
    def __call__(self, key_type: str, r: Reader, /) -> PrivateKey: ...


@dataclass(frozen=True, slots=True)
class KeyType:
    name: str
    public: _PublicParser
    private: _PrivateParser


KEY_TYPES: dict[str, KeyType] = {
    "ssh-ed25519": KeyType("ssh-ed25519", Ed25519Public.from_fields, Ed25519Private.from_fields),
    "ssh-rsa": KeyType("ssh-rsa", RsaPublic.from_fields, RsaPrivate.from_fields),
    **{
        name: KeyType(name, EcdsaPublic.from_fields, EcdsaPrivate.from_fields)
        for name in CURVES
    },
}

#: names we recognise only to say plainly that they are not supported
UNSUPPORTED = {
    "ssh-dss": "DSA keys are not supported (OpenSSH removed DSA); use ed25519",
    "sk-ssh-ed25519@openssh.com": "FIDO security-key keys are not supported",
    "sk-ecdsa-sha2-nistp256@openssh.com": "FIDO security-key keys are not supported",
}


def key_type_of(name: str) -> KeyType:
    entry = KEY_TYPES.get(name)
    if entry is not None:
        return entry
    if name in UNSUPPORTED:
        raise UnsupportedKeyError(UNSUPPORTED[name])
    if name.endswith("-cert-v01@openssh.com"):
        raise UnsupportedKeyError(f"certificates ({name}) are not supported")
    shown = name if name.isprintable() and len(name) < 64 else "(unprintable)"
    raise UnsupportedKeyError(f"unknown key type {shown}")


def public_from_reader(r: Reader) -> PublicKey:
    """Read one public key blob's fields (type name first) from ``r``."""
    name = r.ascii()
    return key_type_of(name).public(name, r)


def public_from_wire(blob: bytes) -> PublicKey:
    """Parse a whole public key blob; trailing bytes are an error."""
    r = Reader(blob, "public key blob")
    key = public_from_reader(r)
    r.done()
    return key


def private_from_reader(r: Reader) -> PrivateKey:
    """Read a private key (type name, then its fields) as in PROTOCOL.key and PROTOCOL.agent."""
    name = r.ascii()
    return key_type_of(name).private(name, r)


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

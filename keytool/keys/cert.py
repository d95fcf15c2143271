"""OpenSSH certificates: the ``*-cert-v01@openssh.com`` key types.

A certificate is a public key (the certified key) with an identity, principals, a
validity window and options, signed by a CA key. The format is OpenSSH's (its
PROTOCOL.certkeys, now draft-miller-ssh-cert): the certified key's fields follow a
nonce, the CA's signature covers everything before it. The same blob is the key on the
wire (host keys, publickey requests, agent identities) and in ``*-cert.pub`` files.

A certificate is a ``PublicKey``: its wire name is the certificate type, its
``signature_algorithms`` are the certificate algorithm names used in KEXINIT and in
publickey requests (``rsa-sha2-512-cert-v01@openssh.com``), and it verifies signatures
with the certified key (whose signatures carry the plain names, ``rsa-sha2-512``).
``CertifiedPrivate`` pairs a certificate with the private key it certifies, for the
agent and for logging in.

Parsing checks the CA's signature, as OpenSSH does: a certificate that does not verify
is a FormatError, never a key. Whether a valid certificate is acceptable for a host or
a user at a time is ``problem()``'s answer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from keytool.errors import FormatError
from keytool.keys.base import PrivateKey, PublicKey
from keytool.wire import Reader, Writer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

SUFFIX = "-cert-v01@openssh.com"
USER = 1
HOST = 2
#: valid_before of a certificate that never expires
FOREVER = 0xFFFFFFFFFFFFFFFF
#: OpenSSH refuses more (SSHKEY_CERT_MAX_PRINCIPALS)
MAX_PRINCIPALS = 256
NONCE_SIZE = 32

#: what a user certificate allows when -O says nothing (ssh-keygen's default)
DEFAULT_EXTENSIONS = (
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
)
#: flag extensions and critical options OpenSSH knows (ssh-keygen -L prints no value)
FLAG_EXTENSIONS = (*DEFAULT_EXTENSIONS, "no-touch-required")
STRING_OPTIONS = ("force-command", "source-address")
FLAG_OPTIONS = ("verify-required",)


def is_cert_type(name: str) -> bool:
    return name.endswith(SUFFIX)


def plain_name(name: str) -> str:
    """A certificate key type or algorithm without the suffix: ``rsa-sha2-512-cert-v01@…``
    -> ``rsa-sha2-512``. Plain names come back unchanged."""
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name


def cert_name(name: str) -> str:
    """The certificate form of a key type or signature algorithm name."""
    return name if name.endswith(SUFFIX) else name + SUFFIX


def key_type_of_algorithm(algorithm: str) -> str:
    """The key type a public key algorithm name stands for (rsa-sha2-* are ssh-rsa keys)."""
    base = plain_name(algorithm)
    if base.startswith("rsa-sha2-"):
        base = "ssh-rsa"
    return cert_name(base) if is_cert_type(algorithm) else base


class Option:
    """One critical option or extension: its name and its data field, raw."""

    __slots__ = ("data", "name")

    def __init__(self, name: str, data: bytes = b"") -> None:
        self.name = name
        self.data = data

    @classmethod
    def text(cls, name: str, value: str) -> Option:
        """An option whose data holds one string (force-command, source-address)."""
        return cls(name, Writer().string(value).getvalue())

    @property
    def value(self) -> str | None:
        """The string the data holds, or None when it holds nothing or something else.
        Any bytes but NUL, as ssh-keygen and sshd take them (a force-command in
        Latin-1): bytes that are not UTF-8 as surrogate escapes."""
        if not self.data:
            return None
        try:
            r = Reader(self.data, "certificate option")
            value = cstring(r, "certificate option")
            r.done()
        except FormatError:
            return None
        return value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Option) and (self.name, self.data) == (other.name, other.data)

    def __hash__(self) -> int:
        return hash((self.name, self.data))

    def __repr__(self) -> str:
        return f"Option({self.name!r}, {self.data!r})"


def pack_options(options: Iterable[Option]) -> bytes:
    """Options in wire form, sorted by name as the format requires."""
    out = Writer()
    for option in sorted(options, key=lambda o: (o.name, o.data)):
        out.string(option.name).string(option.data)
    return out.getvalue()


def unpack_options(data: bytes, what: str) -> tuple[Option, ...]:
    r = Reader(data, what)
    options = []
    names = set()
    while r.remaining:
        name = cstring(r, what)
        if name in names:
            raise FormatError(f"malformed certificate: {what} {name!r} appears twice")
        names.add(name)
        options.append(Option(name, r.string()))
    return tuple(options)


def cstring(r: Reader, what: str) -> str:
    """A name in a certificate: any bytes but NUL, as ssh-keygen takes them (bytes that
    are not UTF-8 are kept, as surrogate escapes, and written back as they were)."""
    value = r.string()
    if b"\0" in value:
        raise FormatError(f"malformed certificate: NUL in {what}")
    return value.decode("utf-8", "surrogateescape")


class Certificate(PublicKey):
    """A parsed, signature-checked certificate. Build one with ``sign()``."""

    __slots__ = (
        "ca",
        "cert_type",
        "critical",
        "extensions",
        "key",
        "key_id",
        "nonce",
        "principals",
        "reserved",
        "serial",
        "signature",
        "signed",
        "valid_after",
        "valid_before",
    )
    signature_algorithms: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        key: PublicKey,
        *,
        nonce: bytes,
        serial: int,
        cert_type: int,
        key_id: str,
        principals: Sequence[str],
        valid_after: int,
        valid_before: int,
        critical: Sequence[Option],
        extensions: Sequence[Option],
        ca: PublicKey,
        signature: bytes,
        reserved: bytes = b"",
    ) -> None:
        self.key = key
        self.nonce = nonce
        self.serial = serial
        self.cert_type = cert_type
        self.key_id = key_id
        self.principals = tuple(principals)
        self.valid_after = valid_after
        self.valid_before = valid_before
        self.critical = tuple(critical)
        self.extensions = tuple(extensions)
        self.reserved = reserved
        self.ca = ca
        self.signature = signature
        #: the bytes the CA signed, as read: what the signature is checked over and
        #: what is written back (other CAs need not order the options as ssh-keygen
        #: does); None for a certificate being made (``sign``)
        self.signed: bytes | None = None

    # ---- PublicKey

    @property
    def key_type(self) -> str:
        return cert_name(self.key.key_type)

    @property
    def bits(self) -> int:
        return self.key.bits

    @property
    def label(self) -> str:
        return f"{self.key.label}-CERT"

    @property
    def plain(self) -> PublicKey:
        return self.key

    @classmethod
    def from_fields(cls, key_type: str, r: Reader) -> Certificate:
        from keytool.keys.blob import key_type_of, public_from_wire

        what = "certificate"
        base = plain_name(key_type)
        start = r.offset
        nonce = r.string()
        key = key_type_of(base).public(r)
        serial = r.uint64()
        cert_type = r.uint32()
        key_id = cstring(r, "key id")
        principals: list[str] = []
        with r.nested("certificate principals") as p:
            while p.remaining:
                if len(principals) >= MAX_PRINCIPALS:
                    raise FormatError(f"malformed certificate: over {MAX_PRINCIPALS} principals")
                principals.append(cstring(p, "principal"))
        valid_after = r.uint64()
        valid_before = r.uint64()
        critical = unpack_options(r.string(), "critical option")
        extensions = unpack_options(r.string(), "extension")
        reserved = r.string()
        ca_blob = r.string()
        signed = Writer().string(key_type).getvalue() + r.since(start)
        signature = r.string()
        if cert_type not in (USER, HOST):
            raise FormatError(f"malformed {what}: unknown certificate type {cert_type}")
        try:
            ca = public_from_wire(ca_blob)
        except FormatError as exc:
            raise FormatError(f"certificate has an unusable CA key: {exc}") from None
        if isinstance(ca, Certificate):
            raise FormatError("certificate is signed by a certificate (chains are not allowed)")
        cert = cls(
            key,
            nonce=nonce,
            serial=serial,
            cert_type=cert_type,
            key_id=key_id,
            principals=principals,
            valid_after=valid_after,
            valid_before=valid_before,
            critical=critical,
            extensions=extensions,
            ca=ca,
            signature=signature,
            reserved=reserved,
        )
        cert.signed = signed
        if not ca.verify(signature, signed):
            raise FormatError("certificate signature does not verify: it was not made by its CA")
        return cert

    def signed_part(self) -> bytes:
        """Everything the CA's signature covers: the blob up to the signature key (as
        read, for a certificate read)."""
        if self.signed is not None:
            return self.signed
        principals = Writer()
        for name in self.principals:
            principals.string(name)
        return (
            Writer()
            .string(self.key_type)
            .string(self.nonce)
            .raw(self.key.fields_to_wire())
            .uint64(self.serial)
            .uint32(self.cert_type)
            .string(self.key_id)
            .string(principals.getvalue())
            .uint64(self.valid_after)
            .uint64(self.valid_before)
            .string(pack_options(self.critical))
            .string(pack_options(self.extensions))
            .string(self.reserved)
            .string(self.ca.to_wire())
            .getvalue()
        )

    def to_wire(self) -> bytes:
        return self.signed_part() + Writer().string(self.signature).getvalue()

    def fields_to_wire(self) -> bytes:
        name_length = 4 + len(self.key_type.encode("ascii"))
        return self.to_wire()[name_length:]

    def verify(self, signature: bytes, data: bytes, allowed: tuple[str, ...] | None = None) -> bool:
        """A signature by the certified key. ``allowed`` may name certificate algorithms
        (as negotiated) or plain ones (as inside the signature)."""
        plain = None if allowed is None else tuple(plain_name(a) for a in allowed)
        return self.key.verify(signature, data, plain)

    def _verify_raw(self, algorithm: str, signature: bytes, data: bytes) -> bool:
        return False  # verify() goes to the certified key

    # ---- what it says

    @property
    def is_host(self) -> bool:
        return self.cert_type == HOST

    @property
    def kind(self) -> str:
        return "host" if self.is_host else "user"

    @property
    def signature_type(self) -> str:
        """The algorithm of the CA's signature (``rsa-sha2-512``, ``ssh-ed25519``)."""
        from keytool.keys.blob import signature_algorithm

        return signature_algorithm(self.signature)

    def option(self, name: str) -> Option | None:
        return next((o for o in self.critical if o.name == name), None)

    def problem(
        self,
        *,
        host: bool,
        now: int,
        principal: str | None = None,
        wildcard: bool = False,
    ) -> str | None:
        """Why this certificate is not acceptable, or None when it is: its kind, its
        validity at ``now``, and (when given) whether ``principal`` is listed, matched as
        a pattern with ``wildcard`` (host certificates, as ssh matches them)."""
        if self.is_host != host:
            return f"not a {'host' if host else 'user'} certificate"
        if now < self.valid_after:
            return "not yet valid"
        if now >= self.valid_before:
            return "expired"
        if not self.principals:
            return "it lists no principals"
        if principal is not None:
            if wildcard:
                from keytool.patterns import match_pattern

                listed = any(match_pattern(principal, p) for p in self.principals)
            else:
                listed = principal in self.principals
            if not listed:
                return f"{principal} is not a listed principal"
        return None


class Ed25519Cert(Certificate):
    __slots__ = ()
    signature_algorithms: ClassVar[tuple[str, ...]] = ("ssh-ed25519" + SUFFIX,)


class RsaCert(Certificate):
    __slots__ = ()
    signature_algorithms: ClassVar[tuple[str, ...]] = (
        "rsa-sha2-512" + SUFFIX,
        "rsa-sha2-256" + SUFFIX,
        "ssh-rsa" + SUFFIX,
    )


class EcdsaCert(Certificate):
    __slots__ = ()
    signature_algorithms: ClassVar[tuple[str, ...]] = tuple(
        f"ecdsa-sha2-nistp{bits}{SUFFIX}" for bits in (256, 384, 521)
    )


def _class_for(key: PublicKey) -> type[Certificate]:
    if key.key_type == "ssh-ed25519":
        return Ed25519Cert
    if key.key_type == "ssh-rsa":
        return RsaCert
    if key.key_type.startswith("ecdsa-sha2-"):
        return EcdsaCert
    raise FormatError(f"a {key.key_type} key cannot be certified")


def sign(
    key: PublicKey,
    ca: PrivateKey,
    *,
    cert_type: int = USER,
    key_id: str = "",
    principals: Sequence[str] = (),
    valid_after: int = 0,
    valid_before: int = FOREVER,
    critical: Sequence[Option] = (),
    extensions: Sequence[Option] | None = None,
    serial: int = 0,
    algorithm: str | None = None,
    nonce: bytes | None = None,
) -> Certificate:
    """Certify ``key`` with the CA's private key. Extensions default to ssh-keygen's:
    the five permit-* for a user certificate, none for a host one. An RSA CA signs with
    rsa-sha2-512 unless ``algorithm`` says otherwise, as ssh-keygen does."""
    if isinstance(key, Certificate):
        raise FormatError(f"a {key.key_type} key is a certificate already; certify its key")
    if cert_type not in (USER, HOST):
        raise FormatError(f"unknown certificate type {cert_type}")
    if len(principals) > MAX_PRINCIPALS:
        raise FormatError(f"too many principals (at most {MAX_PRINCIPALS})")
    for text in (key_id, *principals):
        if "\0" in text:
            raise FormatError("a key id or principal cannot contain NUL")
    if any(not p for p in principals):
        raise FormatError("empty principal name")
    if valid_before <= valid_after:
        raise FormatError("empty certificate validity interval")
    if extensions is None:
        extensions = [Option(name) for name in DEFAULT_EXTENSIONS] if cert_type == USER else []
    for what, options in (("critical option", critical), ("extension", extensions)):
        names = [o.name for o in options]
        if len(set(names)) != len(names):
            raise FormatError(f"a {what} appears twice")
    cert = _class_for(key)(
        key,
        nonce=os.urandom(NONCE_SIZE) if nonce is None else nonce,
        serial=serial,
        cert_type=cert_type,
        key_id=key_id,
        principals=principals,
        valid_after=valid_after,
        valid_before=valid_before,
        critical=sorted(critical, key=lambda o: (o.name, o.data)),
        extensions=sorted(extensions, key=lambda o: (o.name, o.data)),
        ca=ca.public,
        signature=b"",
    )
    if algorithm is None and ca.public.key_type == "ssh-rsa":
        algorithm = "rsa-sha2-512"
    cert.signature = ca.sign(cert.signed_part(), algorithm)
    return cert


class CertifiedPrivate(PrivateKey):
    """A certificate with the private key of the key it certifies: it signs as that key,
    and is known (to agents and servers) by the certificate."""

    __slots__ = ("cert", "private")
    default_algorithm: ClassVar[str] = ""

    def __init__(self, cert: Certificate, private: PrivateKey) -> None:
        if private.public != cert.key:
            raise FormatError("the certificate is not for this private key")
        self.cert = cert
        self.private = private

    @property
    def public(self) -> Certificate:
        return self.cert

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        return self.private.sign(data, None if algorithm is None else plain_name(algorithm))

    def fields_to_wire(self) -> bytes:
        """PROTOCOL.agent's form: the certificate blob, then the private fields that
        are not in it (Ed25519: pk and sk; RSA: d, iqmp, p, q; ECDSA: the scalar)."""
        r = Reader(self.private.fields_to_wire(), "private key")
        base = self.cert.key.key_type
        if base == "ssh-rsa":
            r.string()  # n
            r.string()  # e
        elif base.startswith("ecdsa-sha2-"):
            r.string()  # curve
            r.string()  # Q
        return Writer().string(self.cert.to_wire()).raw(r.rest()).getvalue()

    @classmethod
    def from_fields(cls, key_type: str, r: Reader) -> CertifiedPrivate:
        """The agent's form (see ``fields_to_wire``)."""
        from keytool.keys.blob import public_from_wire

        cert = public_from_wire(r.string())
        if not isinstance(cert, Certificate) or cert.key_type != key_type:
            raise FormatError(f"malformed {key_type} key: the certificate is of another type")
        return cls(cert, _private_for(cert.key, r))


def _private_for(key: PublicKey, r: Reader) -> PrivateKey:
    """The private fields a certificate does not hold, for its key."""
    if key.key_type == "ssh-ed25519":
        from keytool.keys.ed25519 import Ed25519Private

        return Ed25519Private.from_fields(key.key_type, r)
    if key.key_type == "ssh-rsa":
        from keytool.keys.rsa import RsaPrivate, RsaPublic

        assert isinstance(key, RsaPublic)
        d, iqmp, p, q = (r.positive_mpint() for _ in range(4))
        return RsaPrivate(key.e, key.n, d, iqmp, p, q)
    from keytool.keys.ecdsa import EcdsaPrivate, EcdsaPublic

    assert isinstance(key, EcdsaPublic)
    return EcdsaPrivate(key.curve, r.positive_mpint(), key.point)

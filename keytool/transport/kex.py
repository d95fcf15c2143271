"""The key exchange table: each method makes its init message and takes the reply.

A kex object never reads a connection: ``start()`` gives the first message payload,
``finish(reply)`` checks the server's reply and returns a KexResult with the shared
secret and exchange hash (diffie-hellman-group-exchange has one more step, ``group``).
Verifying the host key's signature over the exchange hash is the handshake's job.

Every exchange hash is HASH(V_C || V_S || I_C || I_S || K_S || <method fields> || K),
the first four being the two version lines and the two KEXINIT payloads as strings
(RFC 4253 §8); the method fields follow each method's RFC.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache

from keytool.errors import NegotiationError, ProtocolError
from keytool.record import Record, init
from keytool.wire import Reader, Writer, string

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

# RFC 4253 §12, RFC 5656 §7.1, RFC 4419 §5
KEXDH_INIT = 30  # also SSH_MSG_KEX_ECDH_INIT
KEXDH_REPLY = 31  # also SSH_MSG_KEX_ECDH_REPLY and SSH_MSG_KEX_DH_GEX_GROUP
KEX_DH_GEX_GROUP = 31
KEX_DH_GEX_INIT = 32
KEX_DH_GEX_REPLY = 33
KEX_DH_GEX_REQUEST = 34


class KexResult(Record):
    """What a finished key exchange yields, before the host key signature is checked."""

    __slots__ = ("exchange_hash", "hash_name", "host_key_blob", "shared_secret", "signature")
    host_key_blob: bytes  # K_S
    signature: bytes  # the server's signature of exchange_hash
    #: K exactly as it enters the exchange hash and key derivation (RFC 4253 §7.2):
    #: an mpint for classic methods, a string for the post-quantum hybrid
    shared_secret: bytes
    exchange_hash: bytes  # H
    hash_name: str  # hashlib name of HASH

    def __init__(
        self,
        host_key_blob: bytes,
        signature: bytes,
        shared_secret: bytes,
        exchange_hash: bytes,
        hash_name: str,
    ) -> None:
        init(
            self,
            host_key_blob=host_key_blob,
            signature=signature,
            shared_secret=shared_secret,
            exchange_hash=exchange_hash,
            hash_name=hash_name,
        )


class KexContext(Record):
    """The inputs every exchange hash starts with (RFC 4253 §8)."""

    __slots__ = ("client_kexinit", "client_version", "server_kexinit", "server_version")
    client_version: bytes  # V_C, without CR LF
    server_version: bytes  # V_S
    client_kexinit: bytes  # I_C, the whole payload
    server_kexinit: bytes  # I_S

    def __init__(
        self,
        client_version: bytes,
        server_version: bytes,
        client_kexinit: bytes,
        server_kexinit: bytes,
    ) -> None:
        init(
            self,
            client_version=client_version,
            server_version=server_version,
            client_kexinit=client_kexinit,
            server_kexinit=server_kexinit,
        )

    def prefix(self) -> bytes:
        return (
            string(self.client_version)
            + string(self.server_version)
            + string(self.client_kexinit)
            + string(self.server_kexinit)
        )


def _read_reply(payload: bytes, what: str) -> tuple[bytes, bytes, bytes]:
    """K_S, the server's value, signature from a reply (RFC 4253 §8 / RFC 5656 §4)."""
    r = Reader(payload, what)
    r.byte()
    host_key, value, signature = r.string(), r.string(), r.string()
    r.done()
    return host_key, value, signature


def _mpint_from_bytes(secret: bytes) -> bytes:
    return Writer().mpint(int.from_bytes(secret, "big")).getvalue()


class Kex:
    """One key exchange run; subclasses implement one method family."""

    __slots__ = ("context", "hash_name")

    #: the message number ``finish`` takes
    reply_type = KEXDH_REPLY

    def __init__(self, context: KexContext, hash_name: str) -> None:
        self.context = context
        self.hash_name = hash_name

    @property
    def expected(self) -> int:
        """The message number this kex waits for next."""
        return self.reply_type

    def start(self) -> bytes:
        raise NotImplementedError

    def finish(self, reply: bytes) -> KexResult:
        raise NotImplementedError

    def _hash(self, *fields: bytes) -> bytes:
        digest = hashlib.new(self.hash_name, self.context.prefix())
        for data in fields:
            digest.update(data)
        return digest.digest()


class Curve25519(Kex):
    """curve25519-sha256 and curve25519-sha256@libssh.org (RFC 8731 §3)."""

    __slots__ = ("_private", "_public")

    def __init__(self, context: KexContext, hash_name: str) -> None:
        super().__init__(context, hash_name)
        self._private = _x25519_private()
        self._public = self._private.public_key().public_bytes_raw()

    def start(self) -> bytes:
        return bytes((KEXDH_INIT,)) + string(self._public)

    def finish(self, reply: bytes) -> KexResult:
        host_key, server_public, signature = _read_reply(reply, "ECDH reply")
        shared = _x25519(self._private, server_public)
        # RFC 8731 §3.1: the 32 octets as an unsigned big-endian integer, as an mpint
        secret = _mpint_from_bytes(shared)
        exchange_hash = self._hash(
            string(host_key), string(self._public), string(server_public), secret
        )
        return KexResult(host_key, signature, secret, exchange_hash, self.hash_name)


def _x25519_private() -> X25519PrivateKey:
    """A fresh X25519 key, made by cryptography's Rust binding directly: the public
    classmethods first load cryptography's whole OpenSSL backend module to ask whether
    X25519 is supported, a noticeable share of ``keytool exec``'s start-up. When the
    binding is not where it was, the public API does it."""
    try:
        from cryptography.hazmat.bindings._rust import openssl

        return openssl.x25519.generate_key()
    except (ImportError, AttributeError):  # pragma: no cover - another cryptography
        from cryptography.hazmat.primitives.asymmetric import x25519

        return x25519.X25519PrivateKey.generate()


def _x25519(private: X25519PrivateKey, server_public: bytes) -> bytes:
    if len(server_public) != 32:
        raise ProtocolError(f"bad X25519 public key from the server ({len(server_public)} bytes)")
    try:
        try:
            from cryptography.hazmat.bindings._rust import openssl

            peer = openssl.x25519.from_public_bytes(server_public)
        except (ImportError, AttributeError):  # pragma: no cover - another cryptography
            from cryptography.hazmat.primitives.asymmetric import x25519

            peer = x25519.X25519PublicKey.from_public_bytes(server_public)
        shared = private.exchange(peer)
    except ValueError:
        shared = bytes(32)
    # RFC 8731 §3: an all-zero shared secret MUST be refused
    if shared == bytes(32):
        raise ProtocolError("the server's X25519 public key gives an all-zero shared secret")
    return shared


def uncompressed_point(key: ec.EllipticCurvePublicKey) -> bytes:
    """SEC1 §2.3.3 uncompressed point, built from the numbers: the serialization
    module would cost a noticeable share of the client's start-up time."""
    numbers = key.public_numbers()
    size = (key.curve.key_size + 7) // 8
    return b"\x04" + numbers.x.to_bytes(size, "big") + numbers.y.to_bytes(size, "big")


class Ecdh(Kex):
    """ecdh-sha2-nistp256/384/521 (RFC 5656 §4, hashes per §6.2.1)."""

    __slots__ = ("_curve", "_private", "_public")

    def __init__(self, context: KexContext, hash_name: str, curve_name: str) -> None:
        # ``curve_name``: the curve's class in cryptography's ec module, loaded here
        from cryptography.hazmat.primitives.asymmetric import ec

        super().__init__(context, hash_name)
        self._curve: ec.EllipticCurve = getattr(ec, curve_name)()
        self._private = ec.generate_private_key(self._curve)
        self._public = uncompressed_point(self._private.public_key())

    def start(self) -> bytes:
        return bytes((KEXDH_INIT,)) + string(self._public)

    def finish(self, reply: bytes) -> KexResult:
        from cryptography.hazmat.primitives.asymmetric import ec

        host_key, server_public, signature = _read_reply(reply, "ECDH reply")
        try:
            # from_encoded_point checks the point lies on the curve (RFC 5656 §4)
            peer = ec.EllipticCurvePublicKey.from_encoded_point(self._curve, server_public)
            shared = self._private.exchange(ec.ECDH(), peer)
        except ValueError:
            raise ProtocolError("bad ECDH public key from the server") from None
        secret = _mpint_from_bytes(shared)
        exchange_hash = self._hash(
            string(host_key), string(self._public), string(server_public), secret
        )
        return KexResult(host_key, signature, secret, exchange_hash, self.hash_name)


class MlKemX25519(Kex):
    """mlkem768x25519-sha256 (draft-ietf-sshm-mlkem-hybrid-kex; OpenSSH 10's default).

    C_INIT is the ML-KEM-768 encapsulation key (1184 bytes) then the X25519 public key;
    S_REPLY the ML-KEM ciphertext (1088 bytes) then the server's X25519 key.
    K = SHA-256(K_PQ || K_CL), encoded as a string, not an mpint.
    """

    __slots__ = ("_client_init", "_mlkem", "_x25519")

    _CIPHERTEXT = 1088

    def __init__(self, context: KexContext, hash_name: str) -> None:
        from cryptography.hazmat.primitives.asymmetric import mlkem

        super().__init__(context, hash_name)
        self._mlkem = mlkem.MLKEM768PrivateKey.generate()
        self._x25519 = _x25519_private()
        self._client_init = (
            self._mlkem.public_key().public_bytes_raw()
            + self._x25519.public_key().public_bytes_raw()
        )

    def start(self) -> bytes:
        return bytes((KEXDH_INIT,)) + string(self._client_init)

    def finish(self, reply: bytes) -> KexResult:
        host_key, server_reply, signature = _read_reply(reply, "hybrid kex reply")
        if len(server_reply) != self._CIPHERTEXT + 32:
            raise ProtocolError(
                f"bad mlkem768x25519 reply from the server ({len(server_reply)} bytes)"
            )
        try:
            pq_secret = self._mlkem.decapsulate(server_reply[: self._CIPHERTEXT])
        except ValueError:
            raise ProtocolError("bad ML-KEM ciphertext from the server") from None
        classic = _x25519(self._x25519, server_reply[self._CIPHERTEXT :])
        secret = string(hashlib.sha256(pq_secret + classic).digest())
        exchange_hash = self._hash(
            string(host_key), string(self._client_init), string(server_reply), secret
        )
        return KexResult(host_key, signature, secret, exchange_hash, self.hash_name)


def _arctan_inverse(x: int, one: int) -> int:
    """arctan(1/x) in fixed point with ``one`` as 1.0 (Machin series)."""
    total = term = one // x
    x2, n, sign = x * x, 1, -1
    while term:
        term //= x2
        total += sign * (term // (2 * n + 1))
        sign, n = -sign, n + 1
    return total


@cache
def modp_prime(bits: int, offset: int) -> int:
    """RFC 3526's MODP primes, computed from their definition (RFC 3526 §3, §5):
    p = 2^n - 2^(n-64) - 1 + 2^64 * ( [2^(n-130) pi] + k )."""
    guard = 64
    one = 1 << (bits - 130 + guard)
    pi = 4 * (4 * _arctan_inverse(5, one) - _arctan_inverse(239, one))
    return (1 << bits) - (1 << (bits - 64)) - 1 + (((pi >> guard) + offset) << 64)


#: (bits, k) for RFC 3526 group 14 (2048-bit, §3) and group 16 (4096-bit, §5)
GROUP14 = (2048, 124476)
GROUP16 = (4096, 240904)


class _DhBase(Kex):
    __slots__ = ("_e", "_g", "_p", "_x")

    #: RFC 4253 §8: x is random, 1 < x < q; 512 bits match the 256-bit strength of the
    #: strongest negotiated cipher with a margin (OpenSSH uses twice the key bits)
    EXPONENT_BITS = 512

    def _generate(self, p: int, g: int) -> None:
        self._p, self._g = p, g
        import secrets  # here: only the finite-field DH exchanges need it

        self._x = secrets.randbits(self.EXPONENT_BITS) | (1 << (self.EXPONENT_BITS - 1))
        self._e = pow(g, self._x, p)

    def _shared(self, f: int) -> bytes:
        # RFC 4253 §8: values not in [1, p-1] MUST NOT be accepted; 1 and p-1 are weak too
        if not 1 < f < self._p - 1:
            raise ProtocolError("bad Diffie-Hellman value from the server (out of range)")
        return Writer().mpint(pow(f, self._x, self._p)).getvalue()


class DhGroup(_DhBase):
    """diffie-hellman-group14-sha256 and -group16-sha512 (RFC 4253 §8, RFC 8268)."""

    __slots__ = ()

    def __init__(self, context: KexContext, hash_name: str, group: tuple[int, int]) -> None:
        super().__init__(context, hash_name)
        self._generate(modp_prime(*group), 2)

    def start(self) -> bytes:
        return Writer().byte(KEXDH_INIT).mpint(self._e).getvalue()

    def finish(self, reply: bytes) -> KexResult:
        r = Reader(reply, "DH reply")
        r.byte()
        host_key, f, signature = r.string(), r.mpint(), r.string()
        r.done()
        secret = self._shared(f)
        exchange_hash = self._hash(
            string(host_key), Writer().mpint(self._e).mpint(f).getvalue(), secret
        )
        return KexResult(host_key, signature, secret, exchange_hash, self.hash_name)


class DhGroupExchange(_DhBase):
    """diffie-hellman-group-exchange-sha256 (RFC 4419): ask for a group, then DH in it."""

    __slots__ = ("_awaiting_group",)

    #: RFC 8270: at least 2048 bits; 3072 bits preferred (128-bit strength), as OpenSSH
    #: asks for AES-128; at most 8192
    MIN_BITS, PREFERRED_BITS, MAX_BITS = 2048, 3072, 8192

    reply_type = KEX_DH_GEX_REPLY

    def __init__(self, context: KexContext, hash_name: str) -> None:
        super().__init__(context, hash_name)
        self._awaiting_group = True

    @property
    def expected(self) -> int:
        return KEX_DH_GEX_GROUP if self._awaiting_group else KEX_DH_GEX_REPLY

    def start(self) -> bytes:
        # RFC 4419 §3: SSH_MSG_KEX_DH_GEX_REQUEST min, n, max
        return (
            Writer()
            .byte(KEX_DH_GEX_REQUEST)
            .uint32(self.MIN_BITS)
            .uint32(self.PREFERRED_BITS)
            .uint32(self.MAX_BITS)
            .getvalue()
        )

    def group(self, payload: bytes) -> bytes:
        """Take SSH_MSG_KEX_DH_GEX_GROUP; returns SSH_MSG_KEX_DH_GEX_INIT."""
        r = Reader(payload, "DH group")
        r.byte()
        p, g = r.positive_mpint(), r.positive_mpint()
        r.done()
        if not self.MIN_BITS <= p.bit_length() <= self.MAX_BITS:
            raise ProtocolError(
                f"the server offered a {p.bit_length()}-bit DH group;"
                f" keytool accepts {self.MIN_BITS} to {self.MAX_BITS} bits"
            )
        if p % 2 == 0 or not 1 < g < p - 1:
            raise ProtocolError("the server offered an invalid DH group")
        self._awaiting_group = False
        self._generate(p, g)
        return Writer().byte(KEX_DH_GEX_INIT).mpint(self._e).getvalue()

    def finish(self, reply: bytes) -> KexResult:
        r = Reader(reply, "DH group exchange reply")
        r.byte()
        host_key, f, signature = r.string(), r.mpint(), r.string()
        r.done()
        secret = self._shared(f)
        fields = (
            Writer()
            .string(host_key)
            .uint32(self.MIN_BITS)
            .uint32(self.PREFERRED_BITS)
            .uint32(self.MAX_BITS)
            .mpint(self._p)
            .mpint(self._g)
            .mpint(self._e)
            .mpint(f)
            .getvalue()
        )
        exchange_hash = self._hash(fields, secret)
        return KexResult(host_key, signature, secret, exchange_hash, self.hash_name)


class KexSpec(Record):
    __slots__ = ("hash_name", "make")
    hash_name: str
    make: Callable[[KexContext], Kex]

    def __init__(self, hash_name: str, make: Callable[[KexContext], Kex]) -> None:
        init(self, hash_name=hash_name, make=make)


KEX_METHODS: dict[str, KexSpec] = {
    "mlkem768x25519-sha256": KexSpec("sha256", lambda c: MlKemX25519(c, "sha256")),
    "curve25519-sha256": KexSpec("sha256", lambda c: Curve25519(c, "sha256")),
    "curve25519-sha256@libssh.org": KexSpec("sha256", lambda c: Curve25519(c, "sha256")),
    "ecdh-sha2-nistp256": KexSpec("sha256", lambda c: Ecdh(c, "sha256", "SECP256R1")),
    "ecdh-sha2-nistp384": KexSpec("sha384", lambda c: Ecdh(c, "sha384", "SECP384R1")),
    "ecdh-sha2-nistp521": KexSpec("sha512", lambda c: Ecdh(c, "sha512", "SECP521R1")),
    "diffie-hellman-group-exchange-sha256": KexSpec(
        "sha256", lambda c: DhGroupExchange(c, "sha256")
    ),
    "diffie-hellman-group16-sha512": KexSpec("sha512", lambda c: DhGroup(c, "sha512", GROUP16)),
    "diffie-hellman-group14-sha256": KexSpec("sha256", lambda c: DhGroup(c, "sha256", GROUP14)),
}


def make_kex(name: str, context: KexContext) -> Kex:
    spec = KEX_METHODS.get(name)
    if spec is None:
        raise NegotiationError(f"unsupported key exchange method {name[:64]}")
    return spec.make(context)


def derive_key(
    hash_name: str,
    shared_secret: bytes,
    exchange_hash: bytes,
    session_id: bytes,
    letter: bytes,
    size: int,
) -> bytes:
    """RFC 4253 §7.2: K1 = HASH(K || H || X || session_id), Kn = HASH(K || H || K1..Kn-1).

    ``shared_secret`` is K already encoded (mpint or string) as in the exchange hash.
    """
    key = hashlib.new(hash_name, shared_secret + exchange_hash + letter + session_id).digest()
    while len(key) < size:
        key += hashlib.new(hash_name, shared_secret + exchange_hash + key).digest()
    return key[:size]

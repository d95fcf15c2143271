"""Known answers for the exchange hash (RFC 4253 §8, RFC 8731) and key derivation
(RFC 4253 §7.2), the RFC 3526 groups, and what each kex refuses."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from keytool.errors import ProtocolError
from keytool.transport import kex
from keytool.wire import Writer, string

# RFC 7748 §6.1: Alice's private key, Bob's public key and their shared secret
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

CONTEXT = kex.KexContext(
    b"SSH-2.0-keytool_0.1",
    b"SSH-2.0-OpenSSH_9.2p1",
    b"\x14" + bytes(16) + b"client kexinit",
    b"\x14" + bytes(16) + b"server kexinit",
)
HOST_KEY = string(b"ssh-ed25519") + string(bytes(range(32)))

# recorded once; the key derivation values agree with asyncssh's compute_key
EXCHANGE_HASH = "75e0acee092c24010ed0e4624619b322caf126b83aad631dfeed617f3746353a"
DERIVED = {
    (b"A", 12): "0cc494f94775dea37387b12d",
    (b"B", 16): "4969c96372f2ca594afa4ab77f37ea18",
    (b"C", 32): "773782d4b98f6a0b4541b6002c833a1f7ee79c7952a791607fd3fa6fe14807fa",
    (b"D", 64): "5cbb97de0badf74c3019b7287f985b2510f6731460814460676ad8ad20c3fc58"
    "ebaaafc7bb07bb081f1fa9c291d8faff58f51c3e02afa3a576c0ea9ecd1dbd47",
    (b"E", 64): "c15a3b28be97256d694ca877898669ba211d19f0eebfce11f3a28f0136a61b08"
    "6f5a66fd7d31f2463a9a67cd1c95c6bed03b8e59ac02c7e45425376b56396318",
}


def alice_curve25519() -> kex.Curve25519:
    method = kex.Curve25519(CONTEXT, "sha256")
    method._private = x25519.X25519PrivateKey.from_private_bytes(ALICE_PRIVATE)
    method._public = method._private.public_key().public_bytes_raw()
    return method


def reply(value: bytes, number: int = 31) -> bytes:
    return bytes((number,)) + string(HOST_KEY) + string(value) + string(b"signature")


def test_curve25519_exchange_hash_known_answer() -> None:
    method = alice_curve25519()
    assert method.start() == b"\x1e" + string(ALICE_PUBLIC)
    result = method.finish(reply(BOB_PUBLIC))
    # RFC 8731 §3.1: K is the X25519 output as an unsigned big-endian mpint
    assert result.shared_secret == string(SHARED)  # top bit clear: no 0x00 pad
    expected = hashlib.sha256(
        CONTEXT.prefix()
        + string(HOST_KEY)
        + string(ALICE_PUBLIC)
        + string(BOB_PUBLIC)
        + string(SHARED)
    ).hexdigest()
    assert result.exchange_hash.hex() == expected == EXCHANGE_HASH
    assert result.host_key_blob == HOST_KEY
    assert result.signature == b"signature"


@pytest.mark.parametrize(("letter", "size"), list(DERIVED))
def test_key_derivation_known_answers(letter: bytes, size: int) -> None:
    secret = string(SHARED)
    exchange_hash = bytes.fromhex(EXCHANGE_HASH)
    derived = kex.derive_key("sha256", secret, exchange_hash, exchange_hash, letter, size)
    assert derived.hex() == DERIVED[(letter, size)]
    # RFC 4253 §7.2: K1 = HASH(K || H || X || session_id)
    first = hashlib.sha256(secret + exchange_hash + letter + exchange_hash).digest()
    assert derived[:32] == first[: min(size, 32)]


def test_rfc3526_groups_from_their_definition() -> None:
    # RFC 3526 §3: the 2048-bit prime starts FFFFFFFF FFFFFFFF C90FDAA2 2168C234
    # and ends 15728E5A 8AACAA68 FFFFFFFF FFFFFFFF
    p14 = kex.modp_prime(*kex.GROUP14)
    assert format(p14, "X").startswith("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B")
    assert format(p14, "X").endswith("15728E5A8AACAA68FFFFFFFFFFFFFFFF")
    assert p14.bit_length() == 2048
    p16 = kex.modp_prime(*kex.GROUP16)
    assert format(p16, "X").endswith("4063199FFFFFFFFFFFFFFFF")
    assert p16.bit_length() == 4096
    # Fermat check (2^(p-1) = 1 mod p) for both: a typo would fail it
    assert pow(2, p14 - 1, p14) == 1 and pow(2, p16 - 1, p16) == 1


def test_paramiko_agrees_on_the_groups() -> None:
    paramiko14 = pytest.importorskip("paramiko.kex_group14")
    paramiko16 = pytest.importorskip("paramiko.kex_group16")
    assert kex.modp_prime(*kex.GROUP14) == paramiko14.KexGroup14SHA256.P
    assert kex.modp_prime(*kex.GROUP16) == paramiko16.KexGroup16SHA512.P


def test_refused_curve25519_values() -> None:
    with pytest.raises(ProtocolError, match="all-zero"):
        alice_curve25519().finish(reply(bytes(32)))  # a low-order point
    with pytest.raises(ProtocolError, match="33 bytes"):
        alice_curve25519().finish(reply(bytes(33)))


def test_refused_dh_values() -> None:
    method = kex.DhGroup(CONTEXT, "sha256", kex.GROUP14)
    p = kex.modp_prime(*kex.GROUP14)
    for f in (0, 1, p - 1, p):
        body = Writer().byte(31).string(HOST_KEY).mpint(f).string(b"s").getvalue()
        with pytest.raises(ProtocolError, match="out of range"):
            method.finish(body)


def test_group_exchange_refuses_small_groups() -> None:
    method = kex.DhGroupExchange(CONTEXT, "sha256")
    assert method.start() == Writer().byte(34).uint32(2048).uint32(3072).uint32(8192).getvalue()
    small = Writer().byte(31).mpint((1 << 1023) + 1).mpint(2).getvalue()
    with pytest.raises(ProtocolError, match="1024-bit"):
        method.group(small)


def test_dh_exchange_hash_layout() -> None:
    method = kex.DhGroup(CONTEXT, "sha256", kex.GROUP14)
    server_x = 12345678901234567890
    p = kex.modp_prime(*kex.GROUP14)
    f = pow(2, server_x, p)
    result = method.finish(Writer().byte(31).string(HOST_KEY).mpint(f).string(b"s").getvalue())
    e = Writer().mpint(method._e).getvalue()
    shared = Writer().mpint(pow(method._e, server_x, p)).getvalue()
    assert result.shared_secret == shared
    assert (
        result.exchange_hash
        == hashlib.sha256(
            CONTEXT.prefix() + string(HOST_KEY) + e + Writer().mpint(f).getvalue() + shared
        ).digest()
    )


def test_mlkem_hybrid_against_its_own_encapsulation() -> None:
    from cryptography.hazmat.primitives.asymmetric import mlkem

    method = kex.MlKemX25519(CONTEXT, "sha256")
    init = method.start()[5:]
    assert len(init) == 1184 + 32
    server_x = x25519.X25519PrivateKey.generate()
    shared_pq, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(init[:1184]).encapsulate()
    shared_cl = server_x.exchange(x25519.X25519PublicKey.from_public_bytes(init[1184:]))
    server_reply = ciphertext + server_x.public_key().public_bytes_raw()
    result = method.finish(reply(server_reply))
    secret = string(hashlib.sha256(shared_pq + shared_cl).digest())
    assert result.shared_secret == secret
    assert (
        result.exchange_hash
        == hashlib.sha256(
            CONTEXT.prefix() + string(HOST_KEY) + string(init) + string(server_reply) + secret
        ).digest()
    )

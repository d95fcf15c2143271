"""Known answers: RFC 8032 §7.1 Ed25519, bcrypt-pbkdf (OpenBSD's published vectors),
and the mpint examples of RFC 4251 §5."""

from __future__ import annotations

import pytest

from keytool.errors import FormatError
from keytool.keys.blob import private_from_reader, public_from_wire
from keytool.keys.ed25519 import Ed25519Private, Ed25519Public
from keytool.keys.openssh import _kdf
from keytool.wire import Reader, Writer

# RFC 8032 §7.1: (secret key, public key, message, signature), all hex
RFC8032_ED25519 = [
    pytest.param(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        id="TEST 1",
    ),
    pytest.param(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        id="TEST 2",
    ),
    pytest.param(
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        id="TEST 3",
    ),
    pytest.param(
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        # SHA-512("abc")
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
        id="TEST SHA(abc)",
    ),
]


def _ssh_signature(raw: bytes) -> bytes:
    # RFC 8709 §6: string "ssh-ed25519", string signature
    return Writer().string("ssh-ed25519").string(raw).getvalue()


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_ED25519)
def test_rfc8032_ed25519_sign(secret: str, public: str, message: str, signature: str) -> None:
    key = Ed25519Private(bytes.fromhex(secret))
    assert key.public.raw == bytes.fromhex(public)
    assert key.sign(bytes.fromhex(message)) == _ssh_signature(bytes.fromhex(signature))


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_ED25519)
def test_rfc8032_ed25519_verify(secret: str, public: str, message: str, signature: str) -> None:
    # through the public key blob, as a peer would send it
    blob = Writer().string("ssh-ed25519").string(bytes.fromhex(public)).getvalue()
    key = public_from_wire(blob)
    assert isinstance(key, Ed25519Public)
    msg = bytes.fromhex(message)
    sig = bytes.fromhex(signature)
    assert key.verify(_ssh_signature(sig), msg)
    assert not key.verify(_ssh_signature(sig), msg + b"x")
    tampered = bytes([sig[0] ^ 1]) + sig[1:]
    assert not key.verify(_ssh_signature(tampered), msg)
    # another algorithm name, or a truncated signature, is not valid either
    assert not key.verify(Writer().string("ssh-rsa").string(sig).getvalue(), msg)
    assert not key.verify(_ssh_signature(sig[:63]), msg)
    assert not key.verify(_ssh_signature(sig) + b"\0", msg)


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_ED25519)
def test_rfc8032_ed25519_private_fields(
    secret: str, public: str, message: str, signature: str
) -> None:
    # PROTOCOL.key: string pk, string sk(seed || pk); the round trip keeps every byte
    seed, pk = bytes.fromhex(secret), bytes.fromhex(public)
    fields = Writer().string("ssh-ed25519").string(pk).string(seed + pk).getvalue()
    r = Reader(fields)
    key = private_from_reader(r)
    r.done()
    assert key.to_wire() == fields
    assert key.sign(bytes.fromhex(message)) == _ssh_signature(bytes.fromhex(signature))


def test_ed25519_private_with_wrong_public_half() -> None:
    seed = bytes.fromhex(RFC8032_ED25519[0].values[0])  # type: ignore[arg-type]
    other = bytes.fromhex(RFC8032_ED25519[1].values[1])  # type: ignore[arg-type]
    fields = Writer().string("ssh-ed25519").string(other).string(seed + other).getvalue()
    with pytest.raises(FormatError):
        private_from_reader(Reader(fields))


# bcrypt-pbkdf as OpenBSD published it (password, salt, rounds, derived key in hex);
# the same function derives the key and IV of an encrypted openssh-key-v1 file.
BCRYPT_PBKDF = [
    (b"password", b"salt", 4, "5bbf0cc293587f1c3635555c27796598d47e579071bf427e9d8fbe842aba34d9"),
    (b"password", b"\x00", 4, "c12b566235eee04c212598970a579a67"),
    (b"\x00", b"salt", 4, "6051be18c2f4f82cbf0efee5471b4bb9"),
    (
        b"password\x00",
        b"salt\x00",
        4,
        "7410e44cf4fa07bfaac8a928b1727fac001375e7bf7384370f48efd121743050",
    ),
    (b"pass\x00wor", b"sa\x00l", 4, "c2bffd9db38f6569efef4372f4de83c0"),
    (b"pass\x00word", b"sa\x00lt", 4, "4ba4ac3925c0e8d7f0cdb6bb1684a56f"),
    (
        b"password",
        b"salt",
        8,
        "e1367ec5151a33faac4cc1c144cd23fa15d5548493ecc99b9b5d9c0d3b27bec7"
        "6227ea66088b849b20ab7aa478010246e74bba51723fefa9f9474d6508845e8d",
    ),
    (b"password", b"salt", 42, "833cf0dcf56db65608e8f0dc0ce882bd"),
]


@pytest.mark.parametrize(("password", "salt", "rounds", "expected"), BCRYPT_PBKDF)
def test_bcrypt_pbkdf_vectors(password: bytes, salt: bytes, rounds: int, expected: str) -> None:
    want = bytes.fromhex(expected)
    assert _kdf(password, salt, rounds, len(want)) == want


# RFC 4251 §5: value -> the mpint's whole wire encoding
RFC4251_MPINTS = [
    (0, "00000000"),
    (0x9A378F9B2E332A7, "0000000809a378f9b2e332a7"),
    (0x80, "000000020080"),
    (-0x1234, "00000002edcc"),
    (-0xDEADBEEF, "00000005ff21524111"),
]


@pytest.mark.parametrize(("value", "encoded"), RFC4251_MPINTS)
def test_rfc4251_mpint_examples(value: int, encoded: str) -> None:
    data = bytes.fromhex(encoded)
    assert Writer().mpint(value).getvalue() == data
    r = Reader(data)
    assert r.mpint() == value
    r.done()

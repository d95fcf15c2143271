"""openssh-key-v1 (PROTOCOL.key) round trips and crafted files: each defect has its error."""

from __future__ import annotations

import base64
from functools import cache

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from keytool.errors import FormatError, PassphraseError, UnsupportedKeyError
from keytool.keys import PrivateKey, load_private, openssh
from keytool.keys.blob import public_from_wire
from keytool.keys.ecdsa import EcdsaPrivate
from keytool.keys.ed25519 import Ed25519Private
from keytool.keys.rsa import RsaPrivate
from keytool.wire import Reader, Writer


@cache
def keys() -> dict[str, PrivateKey]:
    return {
        "ed25519": Ed25519Private.generate(),
        "rsa": RsaPrivate.from_crypto(rsa.generate_private_key(65537, 1024)),
        "ecdsa-256": EcdsaPrivate.generate(256),
        "ecdsa-384": EcdsaPrivate.generate(384),
        "ecdsa-521": EcdsaPrivate.generate(521),
    }


KINDS = ["ed25519", "rsa", "ecdsa-256", "ecdsa-384", "ecdsa-521"]


def armor(data: bytes) -> bytes:
    body = base64.b64encode(data).decode("ascii")
    return f"{openssh.BEGIN}\n{body}\n{openssh.END}\n".encode()


def build(
    key: PrivateKey,
    *,
    cipher: str = "none",
    kdf: str = "none",
    kdf_options: bytes = b"",
    count: int = 1,
    check: tuple[int, int] = (7, 7),
    comment: str = "c",
    padding: bytes | None = None,
    public: bytes | None = None,
    tail: bytes = b"",
) -> bytes:
    section = Writer().uint32(check[0]).uint32(check[1]).raw(key.to_wire()).string(comment)
    body = section.getvalue()
    if padding is None:
        padding = bytes(range(1, (-len(body)) % 8 + 1))
    data = (
        Writer()
        .raw(openssh.MAGIC)
        .string(cipher)
        .string(kdf)
        .string(kdf_options)
        .uint32(count)
        .string(public if public is not None else key.public.to_wire())
        .string(body + padding)
        .raw(tail)
        .getvalue()
    )
    return armor(data)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("passphrase", [None, b"secret"])
def test_round_trip(kind: str, passphrase: bytes | None) -> None:
    key = keys()[kind]
    text = openssh.dump(key, "user@host with spaces", passphrase, rounds=1)
    assert text.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert text.endswith(b"-----END OPENSSH PRIVATE KEY-----\n")
    assert all(len(line) <= 70 for line in text.splitlines())
    loaded, comment = load_private(text, passphrase)
    assert comment == "user@host with spaces"
    assert loaded.to_wire() == key.to_wire()
    parsed = openssh.parse(text)
    assert parsed.is_encrypted is (passphrase is not None)
    if passphrase:
        assert (parsed.cipher, parsed.kdf, parsed.rounds) == ("aes256-ctr", "bcrypt", 1)
        assert len(parsed.salt) == 16
        with pytest.raises(PassphraseError):
            load_private(text, b"wrong")
        with pytest.raises(PassphraseError):
            load_private(text, None)


def test_default_rounds_and_cipher() -> None:
    parsed = openssh.parse(openssh.dump(keys()["ed25519"], "", b"pw"))
    # what current OpenSSH writes (sshkey.c DEFAULT_ROUNDS, DEFAULT_CIPHERNAME)
    assert (parsed.cipher, parsed.rounds) == ("aes256-ctr", 24)


def test_plain_section_is_padded_to_eight() -> None:
    parsed = openssh.parse(openssh.dump(keys()["ed25519"], "x"))
    assert len(parsed.encrypted) % 8 == 0


def test_crafted_file_loads() -> None:
    key = keys()["ed25519"]
    loaded, comment = openssh.load(build(key, comment="hello"))
    assert (loaded.to_wire(), comment) == (key.to_wire(), "hello")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"check": (1, 2)}, "check-ints"),
        ({"padding": b"\x01\x02\x04"}, "padding"),
        ({"count": 2}, "2 keys"),
        ({"count": 0}, "0 keys"),
        ({"kdf": "bcrypt"}, "kdf"),
        ({"tail": b"\0"}, "trailing"),
        ({"cipher": "blowfish-cbc", "kdf": "bcrypt"}, "cipher"),
    ],
)
def test_crafted_defects(changes: dict[str, object], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        openssh.load(build(keys()["ed25519"], **changes))  # type: ignore[arg-type]


def test_public_and_private_parts_differ() -> None:
    other = keys()["ecdsa-256"].public.to_wire()
    with pytest.raises(FormatError, match="differ"):
        openssh.load(build(keys()["ed25519"], public=other))


@pytest.mark.parametrize(
    ("salt", "rounds", "message"),
    [(b"", 1, "salt"), (b"s" * 16, 0, "rounds"), (b"s" * 16, openssh.MAX_ROUNDS + 1, "rounds")],
)
def test_bad_kdf_options(salt: bytes, rounds: int, message: str) -> None:
    options = Writer().string(salt).uint32(rounds).getvalue()
    text = build(keys()["ed25519"], cipher="aes256-ctr", kdf="bcrypt", kdf_options=options)
    with pytest.raises(FormatError, match=message):
        load_private(text, b"pw")


def test_unknown_kdf() -> None:
    text = build(keys()["ed25519"], cipher="aes256-ctr", kdf="scrypt", kdf_options=b"")
    with pytest.raises(FormatError, match="kdf"):
        load_private(text, b"pw")


def test_dsa_in_openssh_file_is_unsupported() -> None:
    dss = Writer().string("ssh-dss").mpint(23).mpint(11).mpint(4).mpint(8).getvalue()
    with pytest.raises(UnsupportedKeyError, match="DSA"):
        openssh.parse(build(keys()["ed25519"], public=dss))


@pytest.mark.parametrize("text", [b"", b"garbage", b"-----BEGIN OPENSSH PRIVATE KEY-----\n"])
def test_not_a_key_file(text: bytes) -> None:
    with pytest.raises(FormatError):
        load_private(text)


def test_bad_magic() -> None:
    with pytest.raises(FormatError, match="magic"):
        openssh.parse(armor(b"openssh-key-v2\0" + bytes(40)))


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_compressed_ecdsa_point_is_refused(curve: ec.EllipticCurve) -> None:
    # OpenSSH reads only uncompressed points (sshbuf_get_ec: POINT_CONVERSION_UNCOMPRESSED)
    public = ec.generate_private_key(curve).public_key()
    name = {256: "nistp256", 384: "nistp384", 521: "nistp521"}[curve.key_size]
    for fmt in (PublicFormat.UncompressedPoint, PublicFormat.CompressedPoint):
        point = public.public_bytes(Encoding.X962, fmt)
        blob = Writer().string(f"ecdsa-sha2-{name}").string(name).string(point).getvalue()
        if fmt is PublicFormat.UncompressedPoint:
            assert public_from_wire(blob).to_wire() == blob
        else:
            with pytest.raises(FormatError, match="uncompressed"):
                public_from_wire(blob)


def test_ecdsa_curve_name_must_match_type() -> None:
    blob = keys()["ecdsa-256"].public.to_wire()
    r = Reader(blob)
    r.string()
    wrong = Writer().string("ecdsa-sha2-nistp384").raw(r.rest()).getvalue()
    with pytest.raises(FormatError):
        public_from_wire(wrong)


def _rsa_blob(e: bytes, n: bytes) -> bytes:
    return Writer().string("ssh-rsa").string(e).string(n).getvalue()


def test_rsa_blob_strictness() -> None:
    public = keys()["rsa"].public
    blob = public.to_wire()
    assert public_from_wire(blob) == public
    n = Writer().mpint(public.n).getvalue()[4:]  # type: ignore[attr-defined]
    e = b"\x01\x00\x01"
    assert public_from_wire(_rsa_blob(e, n)) == public
    bad = {
        "trailing": blob + b"\0",
        "truncated": blob[:-1],
        "negative n": _rsa_blob(e, b"\xff" + n[1:]),
        "negative e": _rsa_blob(b"\x81", n),
        "non-minimal e": _rsa_blob(b"\x00" + e, n),
        "non-minimal n": _rsa_blob(e, b"\x00" + n),
        "length past end": Writer()
        .string("ssh-rsa")
        .string(e)
        .uint32(len(n) + 1)
        .raw(n)
        .getvalue(),
    }
    for what, data in bad.items():
        with pytest.raises(FormatError):
            public_from_wire(data)
            pytest.fail(what)


@pytest.mark.parametrize(
    "name", ["ssh-dss", "sk-ssh-ed25519@openssh.com", "ssh-dss-cert-v01@openssh.com"]
)
def test_unsupported_key_types_are_named(name: str) -> None:
    with pytest.raises(UnsupportedKeyError):
        public_from_wire(Writer().string(name).string(b"x").getvalue())


@pytest.mark.parametrize("iv_hex", ["00" * 13, "00" * 15, "00" * 17, "0", "zz" * 16, ""])
@pytest.mark.parametrize("cipher", ["AES-128-CBC", "AES-256-CBC"])
def test_pem_dek_info_with_a_bad_iv(cipher: str, iv_hex: str) -> None:
    # a short IV made cryptography panic (a BaseException), escaping as a traceback
    from cryptography.hazmat.primitives import serialization as S

    key = ec.generate_private_key(ec.SECP256R1())
    text = key.private_bytes(
        S.Encoding.PEM, S.PrivateFormat.TraditionalOpenSSL, S.BestAvailableEncryption(b"pw")
    )
    lines = text.split(b"\n")
    assert lines[2].startswith(b"DEK-Info: ")
    lines[2] = f"DEK-Info: {cipher},{iv_hex}".encode()
    with pytest.raises(FormatError):
        load_private(b"\n".join(lines), b"pw")
    assert (
        load_private(text, b"pw")[0].public.to_wire()
        == EcdsaPrivate.from_crypto(key).public.to_wire()
    )

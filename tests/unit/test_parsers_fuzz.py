"""Every parser, fed arbitrary bytes or mutated valid input, raises only KeytoolError
subclasses; signature verification with garbage returns False."""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keytool import authkeys, knownhosts
from keytool.errors import KeytoolError
from keytool.keys import PrivateKey, is_encrypted_private, load_private, openssh, pem, pubfile
from keytool.keys.blob import private_from_reader, public_from_wire, signature_algorithm
from keytool.keys.ecdsa import EcdsaPrivate
from keytool.keys.ed25519 import Ed25519Private
from keytool.keys.rsa import RsaPrivate
from keytool.wire import Reader, Writer

PASSPHRASE = b"correct horse"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def keys() -> tuple[PrivateKey, ...]:
    # RSA at the 1024-bit minimum keeps generation and the big-number checks quick
    return (
        Ed25519Private(bytes(range(32))),
        RsaPrivate.from_crypto(rsa.generate_private_key(65537, 1024)),
        EcdsaPrivate.from_crypto(ec.generate_private_key(ec.SECP256R1())),
        EcdsaPrivate.from_crypto(ec.generate_private_key(ec.SECP384R1())),
        EcdsaPrivate.from_crypto(ec.generate_private_key(ec.SECP521R1())),
    )


@cache
def openssh_files() -> tuple[bytes, ...]:
    plain = [openssh.dump(k, "comment") for k in keys()]
    # one bcrypt round keeps each decryption attempt cheap
    encrypted = [openssh.dump(k, "c", PASSPHRASE, rounds=1) for k in keys()]
    return (*plain, *encrypted)


@cache
def pem_files() -> tuple[bytes, ...]:
    S = serialization
    crypto_keys: list[Any] = [
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(65537, 1024),
        ec.generate_private_key(ec.SECP256R1()),
    ]
    files = []
    for key in crypto_keys:
        formats = [S.PrivateFormat.PKCS8]
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            formats.append(S.PrivateFormat.TraditionalOpenSSL)
        for fmt in formats:
            files.append(key.private_bytes(S.Encoding.PEM, fmt, S.NoEncryption()))
            files.append(
                key.private_bytes(S.Encoding.PEM, fmt, S.BestAvailableEncryption(PASSPHRASE))
            )
    return tuple(files)


MESSAGE = b"a message to sign"


@cache
def signatures() -> tuple[bytes, ...]:
    return tuple(k.sign(MESSAGE) for k in keys())


def blobs() -> list[bytes]:
    return [k.public.to_wire() for k in keys()]


def private_blobs() -> list[bytes]:
    return [k.to_wire() for k in keys()]


def public_lines_bytes() -> list[bytes]:
    return [pubfile.format_public_line(k.public, "user@host").encode() for k in keys()]


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with one to three flips, truncations, extensions, insertions, deletions
    or overwritten length fields."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "extend", "insert", "delete", "length"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[pos:]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=16))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "length" and len(data) >= 4:
            pos = min(pos, len(data) - 4)
            old = int.from_bytes(data[pos : pos + 4], "big")
            value = draw(st.sampled_from([0, 1, old - 1, old + 1, 0x7FFFFFFF, 0xFFFFFFFF]))
            data[pos : pos + 4] = (value % 2**32).to_bytes(4, "big")
    return bytes(data)


def mutated_from(bases: Callable[[], Any]) -> st.SearchStrategy[bytes]:
    return st.sampled_from(list(bases())).flatmap(mutated)


def reject_or_accept(parse: Callable[..., Any], *args: Any) -> Any:
    """Call a parser; a KeytoolError is a fine answer, anything else escapes and fails."""
    try:
        return parse(*args)
    except KeytoolError:
        return None


def armor(data: bytes) -> bytes:
    body = base64.b64encode(data).decode("ascii")
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return ("\n".join([openssh.BEGIN, *lines, openssh.END]) + "\n").encode("ascii")


def unarmor(text: bytes) -> bytes:
    return base64.b64decode(b"".join(text.splitlines()[1:-1]))


# --- public key blobs and private key fields ---


@FUZZ
@given(st.binary(max_size=300))
def test_public_from_wire_arbitrary(data: bytes) -> None:
    reject_or_accept(public_from_wire, data)


@FUZZ
@given(mutated_from(blobs))
def test_public_from_wire_mutated(blob: bytes) -> None:
    key = reject_or_accept(public_from_wire, blob)
    if key is not None:
        # strict decoding: whatever parses is canonical
        assert key.to_wire() == blob


@FUZZ
@given(st.binary(max_size=300))
def test_private_from_reader_arbitrary(data: bytes) -> None:
    reject_or_accept(private_from_reader, Reader(data))


@FUZZ
@given(mutated_from(private_blobs))
def test_private_from_reader_mutated(data: bytes) -> None:
    r = Reader(data)
    key = reject_or_accept(private_from_reader, r)
    if key is not None:
        assert key.to_wire() == data[: len(data) - r.remaining]


# --- key files ---


@FUZZ
@given(st.binary(max_size=400))
def test_openssh_arbitrary(data: bytes) -> None:
    reject_or_accept(openssh.parse, data)
    reject_or_accept(openssh.parse, openssh.BEGIN.encode() + b"\n" + data)
    # arbitrary bytes inside a well-formed armor reach the binary parser
    keyfile = reject_or_accept(openssh.parse, armor(openssh.MAGIC + data))
    if keyfile is not None and keyfile.rounds <= 4:
        reject_or_accept(openssh.decrypt, keyfile, PASSPHRASE)


def _load_mutated_openssh(text: bytes) -> None:
    keyfile = reject_or_accept(openssh.parse, text)
    # a mutation can raise the bcrypt work factor; the KDF itself is not under test
    if keyfile is not None and keyfile.rounds <= 4:
        reject_or_accept(openssh.decrypt, keyfile, PASSPHRASE)
        reject_or_accept(openssh.decrypt, keyfile, b"wrong")
        reject_or_accept(openssh.decrypt, keyfile, None)
        reject_or_accept(load_private, text, PASSPHRASE)


@FUZZ
@given(st.sampled_from(list(range(10))).flatmap(lambda i: st.tuples(st.just(i), st.data())))
def test_openssh_mutated_binary(choice: tuple[int, st.DataObject]) -> None:
    index, data = choice
    binary = unarmor(openssh_files()[index])
    _load_mutated_openssh(armor(data.draw(mutated(binary))))


@FUZZ
@given(mutated_from(openssh_files))
def test_openssh_mutated_text(text: bytes) -> None:
    _load_mutated_openssh(text)


@FUZZ
@given(st.binary(max_size=400))
def test_pem_arbitrary(data: bytes) -> None:
    reject_or_accept(pem.load, data, PASSPHRASE)
    reject_or_accept(pem.load, b"-----BEGIN RSA PRIVATE KEY-----\n" + data, None)
    reject_or_accept(pem.load, b"-----BEGIN PRIVATE KEY-----\n" + data, PASSPHRASE)


@FUZZ
@given(mutated_from(pem_files), st.sampled_from([None, PASSPHRASE, b"wrong"]))
def test_pem_mutated(text: bytes, passphrase: bytes | None) -> None:
    reject_or_accept(pem.load, text, passphrase)


@FUZZ
@given(
    st.one_of(st.binary(max_size=300), mutated_from(pem_files), mutated_from(openssh_files)),
    st.sampled_from([None, b"wrong"]),
)
def test_load_private(text: bytes, passphrase: bytes | None) -> None:
    keyfile = reject_or_accept(openssh.parse, text)
    if keyfile is not None and keyfile.rounds > 4:
        return
    reject_or_accept(is_encrypted_private, text)
    reject_or_accept(load_private, text, passphrase)


# --- text lines ---

texts = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
)


@st.composite
def mutated_lines(draw: st.DrawFn) -> str:
    """A valid public key line, mutated either in its text or in its decoded blob."""
    key = draw(st.sampled_from(keys())).public
    if draw(st.booleans()):
        blob = draw(mutated(key.to_wire()))
        body = f"{key.key_type} {base64.b64encode(blob).decode()} comment"
    else:
        line = pubfile.format_public_line(key, "a comment").encode()
        body = draw(mutated(line)).decode("utf-8", "replace")
    prefix = draw(
        st.sampled_from(
            ["", 'from="10.0.0.0/8",no-pty ', 'command="echo \\"hi\\"" ', "host,10.0.0.1 "]
        )
    )
    return prefix + body


@FUZZ
@given(st.one_of(texts, mutated_lines()))
def test_public_line(line: str) -> None:
    reject_or_accept(pubfile.parse_public_line, line)
    reject_or_accept(pubfile.parse_public_text, line.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated_from(public_lines_bytes)))
def test_public_text(data: bytes) -> None:
    reject_or_accept(pubfile.parse_public_text, data)


@FUZZ
@given(st.one_of(texts, mutated_lines()))
def test_authorized_keys_line(line: str) -> None:
    entry = reject_or_accept(authkeys.parse_line, line)
    if entry is not None:
        again = authkeys.parse_line(entry.to_line())
        assert again == entry


@FUZZ
@given(st.one_of(texts, mutated_lines().map(lambda s: "@revoked " + s), mutated_lines()))
def test_known_hosts_line(line: str) -> None:
    reject_or_accept(knownhosts.parse_line, line, 1)


# --- signatures ---


@FUZZ
@given(st.sampled_from(range(5)), st.binary(max_size=200), st.binary(max_size=50))
def test_verify_arbitrary(index: int, signature: bytes, message: bytes) -> None:
    key = keys()[index].public
    assert key.verify(signature, message) is False
    reject_or_accept(signature_algorithm, signature)


@FUZZ
@given(st.sampled_from(range(5)), st.data())
def test_verify_mutated(index: int, data: st.DataObject) -> None:
    private = keys()[index]
    message = MESSAGE
    # ECDSA signatures are randomised: sign once, so every run draws from the same bytes
    signature = signatures()[index]
    assert private.public.verify(signature, message) is True
    bad = data.draw(mutated(signature))
    if bad != signature:
        assert private.public.verify(bad, message) is False
    for other in keys():
        if other is not private:
            assert other.public.verify(signature, message) is False


@st.composite
def openssh_structures(draw: st.DrawFn) -> bytes:
    """openssh-key-v1 files built field by field: mostly consistent outer fields (so the
    inner parts are reached), with any one of them possibly wrong."""
    cipher = draw(st.sampled_from([*openssh.FILE_CIPHERS, "none", "3des-cbc"]))
    spec = openssh.FILE_CIPHERS.get(cipher)
    consistent = draw(st.booleans())
    if consistent:
        kdf = "none" if cipher == "none" else "bcrypt"
    else:
        kdf = draw(st.sampled_from(["bcrypt", "none", "scrypt"]))
    if kdf == "bcrypt" and (consistent or draw(st.booleans())):
        salt = draw(st.sampled_from([b"s" * 16, b"", b"s"]))
        rounds = draw(st.sampled_from([1, 2, 0]))
        kdf_options = Writer().string(salt).uint32(rounds).getvalue()
    elif consistent and kdf == "none":
        kdf_options = b""
    else:
        kdf_options = draw(st.binary(max_size=24))
    key = draw(st.sampled_from(keys()))
    check = draw(st.binary(min_size=4, max_size=4))
    inner = check + (check if draw(st.booleans()) else draw(st.binary(min_size=4, max_size=4)))
    if draw(st.booleans()):
        inner += draw(mutated(key.to_wire() + Writer().string("comment").getvalue()))
    else:
        inner += draw(st.binary(max_size=64))
    # mostly block-aligned, so encrypted sections get past the size check
    pad = (-len(inner)) % 16 if draw(st.booleans()) else draw(st.integers(0, 16))
    inner += bytes(range(1, pad + 1))
    public = key.public.to_wire() if draw(st.booleans()) else draw(st.sampled_from(blobs()))
    if consistent:
        count, tail = 1, bytes(spec.tag_size if spec else 0)
    else:
        count = draw(st.sampled_from([1, 0, 2]))
        tail = draw(st.binary(max_size=20))
    data = (
        Writer()
        .raw(openssh.MAGIC)
        .string(cipher)
        .string(kdf)
        .string(kdf_options)
        .uint32(count)
        .string(public)
        .string(inner)
        .raw(tail)
        .getvalue()
    )
    return armor(data)


@FUZZ
@given(openssh_structures(), st.sampled_from([None, PASSPHRASE]))
def test_openssh_structured(text: bytes, passphrase: bytes | None) -> None:
    keyfile = reject_or_accept(openssh.parse, text)
    if keyfile is not None:
        reject_or_accept(openssh.decrypt, keyfile, passphrase)

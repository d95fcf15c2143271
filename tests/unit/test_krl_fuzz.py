"""krl.parse fed arbitrary bytes and mutated valid KRLs raises only KeytoolError; what
it accepts can be queried, written and read back to the same revocations; spec
files likewise fail only with a FormatError."""

from __future__ import annotations

from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from keytool import krl
from keytool.errors import FormatError
from keytool.keys import cert
from keytool.keys.ed25519 import Ed25519Private
from keytool.keys.pubfile import format_public_line
from keytool.krlspec import revoke_from_spec
from keytool.wire import Writer
from tests.unit.test_parsers_fuzz import FUZZ, mutated, reject_or_accept

CA = Ed25519Private(bytes(range(32)))
USER = Ed25519Private(bytes(range(2, 34)))


@cache
def certificates() -> tuple[cert.Certificate, ...]:
    return tuple(
        cert.sign(USER.public, CA, key_id=key_id, serial=serial)
        for serial, key_id in ((0, "x"), (1, "id"), (5, ""), (64, "id"), (2**64 - 1, "y"))
    )


@cache
def valid_krls() -> tuple[bytes, ...]:
    small = krl.Krl(version=3, generated=1700000000, comment="c")
    small.revoke_serials(CA.public, 1)
    small.revoke_serials(CA.public, 3, 9)
    small.revoke_key_id(None, "id")
    small.revoke_key_explicit(USER.public)
    small.revoke_sha1(bytes(20))
    small.revoke_sha256(bytes(32))
    dense = krl.Krl()
    for serial in range(1, 300, 2):
        dense.revoke_serials(CA.public, serial)
    signed = krl.to_bytes(small) + (
        Writer().byte(krl.SECTION_SIGNATURE).string(b"k").string(b"s").getvalue()
    )
    return (krl.to_bytes(small), krl.to_bytes(dense), signed, krl.to_bytes(krl.Krl()))


def check(data: bytes) -> None:
    parsed = reject_or_accept(krl.parse, data)
    if parsed is None:
        return
    for certificate in certificates():
        parsed.revocation(certificate)
    parsed.revocation(USER.public)
    again = krl.parse(krl.to_bytes(parsed))
    assert [s.serials.ranges() for s in again.scopes] == [s.serials.ranges() for s in parsed.scopes]
    assert [s.key_ids for s in again.scopes] == [s.key_ids for s in parsed.scopes]
    assert (again.keys, again.sha1s, again.sha256s) == (parsed.keys, parsed.sha1s, parsed.sha256s)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_after_the_magic(data: bytes) -> None:
    check(krl.MAGIC + data)


@FUZZ
@given(st.sampled_from(range(4)).flatmap(lambda i: mutated(valid_krls()[i])))
def test_mutated_krls(data: bytes) -> None:
    check(data)


SPEC_LINES = [
    "serial: 5",
    "serial: 0x10-0x20",
    "id: someone",
    f"key: {format_public_line(USER.public)}",
    f"sha256: {format_public_line(USER.public)}",
    "hash: SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
    format_public_line(cert.sign(USER.public, CA, serial=3)),
]


@FUZZ
@given(st.sampled_from(SPEC_LINES).flatmap(lambda line: mutated(line.encode())), st.booleans())
def test_mutated_spec_lines(line: bytes, any_ca: bool) -> None:
    try:
        revoke_from_spec(krl.Krl(), line, "spec", None if any_ca else CA.public, any_ca)
    except FormatError as exc:
        assert str(exc).startswith("spec:")

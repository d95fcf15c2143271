"""krl.py and krlspec.py without the outside world: the query rules of krl.c, the
encodings read and written, and spec lines as ssh-keygen -k reads them. The real
tools (ssh-keygen -Q, sshd's RevokedKeys) judge the same KRLs in
tests/interop/test_cli_krl.py."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest

from keytool import krl
from keytool.errors import FormatError
from keytool.keys import cert
from keytool.keys.ed25519 import Ed25519Private
from keytool.keys.fingerprint import fingerprint
from keytool.keys.pubfile import format_public_line
from keytool.krlspec import revoke_from_spec
from keytool.wire import Writer

CA = Ed25519Private(bytes(range(32)))
OTHER_CA = Ed25519Private(bytes(range(1, 33)))
USER = Ed25519Private(bytes(range(2, 34)))
USER2 = Ed25519Private(bytes(range(3, 35)))


def certificate(serial: int, key_id: str = "id", ca: Ed25519Private = CA) -> cert.Certificate:
    return cert.sign(USER.public, ca, key_id=key_id, principals=["root"], serial=serial)


def round_trip(revocations: krl.Krl) -> krl.Krl:
    return krl.parse(krl.to_bytes(revocations))


def test_serials_revoke_under_their_ca_only() -> None:
    made = krl.Krl()
    made.revoke_serials(CA.public, 5)
    made.revoke_serials(CA.public, 10, 20)
    back = round_trip(made)
    for serial, revoked in [(5, True), (4, False), (10, True), (20, True), (21, False)]:
        assert back.is_revoked(certificate(serial)) is revoked, serial
    assert not back.is_revoked(certificate(5, ca=OTHER_CA))
    assert not back.is_revoked(USER.public)  # the plain key is not revoked by a serial


def test_key_ids_and_the_any_ca_scope() -> None:
    made = krl.Krl()
    made.revoke_key_id(None, "stolen-laptop")
    made.revoke_key_id(CA.public, "ca-only")
    back = round_trip(made)
    assert back.is_revoked(certificate(0, "stolen-laptop", OTHER_CA))
    assert back.is_revoked(certificate(3, "ca-only"))
    assert not back.is_revoked(certificate(3, "ca-only", OTHER_CA))
    assert back.revocation(certificate(0, "stolen-laptop")) == (
        "key ID 'stolen-laptop' is revoked for any CA"
    )


def test_serial_zero_is_never_revoked_by_serial() -> None:
    made = krl.Krl()
    made.revoke_serials(None, 1, krl.MAX_SERIAL)
    assert not made.is_revoked(certificate(0))
    assert made.is_revoked(certificate(krl.MAX_SERIAL))
    with pytest.raises(Exception, match="serials run 1"):
        made.revoke_serials(None, 0)


@pytest.mark.parametrize("how", ["explicit", "sha1", "sha256"])
def test_a_plain_key_revokes_its_certificates_and_a_ca_key_all_it_signed(how: str) -> None:
    blob = USER.public.to_wire()
    for target, victims in (
        (USER.public, (USER.public, certificate(1))),
        (CA.public, (certificate(2), certificate(0, "x"))),
    ):
        made = krl.Krl()
        blob = target.to_wire()
        if how == "explicit":
            made.revoke_key_explicit(target)
        elif how == "sha1":
            made.revoke_sha1(hashlib.sha1(blob).digest())
        else:
            made.revoke_sha256(hashlib.sha256(blob).digest())
        back = round_trip(made)
        for victim in victims:
            assert back.is_revoked(victim), (how, victim)
        assert not back.is_revoked(USER2.public)
        assert not back.is_revoked(certificate(1, ca=OTHER_CA)) or target is USER.public


def test_revoke_takes_a_certificate_as_ssh_keygen_does() -> None:
    made = krl.Krl()
    made.revoke(certificate(9))  # by serial under its CA
    made.revoke(certificate(0, "no-serial"))  # by key ID under its CA
    made.revoke(USER2.public)  # explicit
    assert [s.ca for s in made.scopes] == [CA.public.to_wire()]
    assert made.scopes[0].serials.ranges() == [(9, 9)]
    assert made.scopes[0].key_ids == {b"no-serial"}
    assert made.keys == {USER2.public.to_wire()}


@pytest.mark.parametrize(
    "serials",
    [
        [(1, 1)],
        [(1, 1000)],
        [(n, n) for n in range(1, 2000, 2)],  # every other one: bitmaps
        [(n, n) for n in range(1, 10**12, 10**9)],  # sparse: lists
        [(1, 76), (78, 499), (501, 1000), (5000, 5000), (2**63, 2**64 - 1)],
        [(n, n + random.Random(n).randrange(3)) for n in range(1, 100000, 7)],
        [(1, 40000)] + [(n, n) for n in range(40002, 80000, 3)],
    ],
)
def test_serial_sets_survive_the_encodings(serials: list[tuple[int, int]]) -> None:
    made = krl.Krl()
    for lo, hi in serials:
        made.revoke_serials(CA.public, lo, hi)
    expected = made.scopes[0].serials.ranges()
    data = krl.to_bytes(made)
    assert krl.parse(data).scopes[0].serials.ranges() == expected
    # bitmaps stay within what OpenSSH's reader takes
    assert data == krl.to_bytes(krl.parse(data))


def test_bitmaps_are_used_for_dense_sets_and_are_small() -> None:
    made = krl.Krl()
    for n in range(1, 2000, 2):
        made.revoke_serials(CA.public, n)
    data = krl.to_bytes(made)
    assert bytes([krl.CERT_SERIAL_BITMAP]) in data
    assert len(data) < 400  # a list would take 8000 bytes


def test_header_fields_round_trip() -> None:
    made = krl.Krl(version=7, generated=1700000000, comment="weekly")
    back = round_trip(made)
    assert (back.version, back.generated, back.comment) == (7, 1700000000, "weekly")


def header(sections: bytes = b"", version: int = 1) -> bytes:
    head = Writer().raw(krl.MAGIC).uint32(version).uint64(1).uint64(2).uint64(0)
    return head.string(b"").string(b"c").getvalue() + sections


def section(kind: int, body: bytes) -> bytes:
    return Writer().byte(kind).string(body).getvalue()


def certs(*parts: bytes, ca: bytes = b"") -> bytes:
    return section(
        krl.SECTION_CERTIFICATES, Writer().string(ca).string(b"").getvalue() + b"".join(parts)
    )


def bitmap(offset: int, body: bytes) -> bytes:
    return section(krl.CERT_SERIAL_BITMAP, Writer().uint64(offset).string(body).getvalue())


def extension(kind: int, critical: bool) -> bytes:
    body = Writer().string(b"x@example.com").boolean(critical).string(b"data").getvalue()
    return section(kind, body)


def signature() -> bytes:
    return Writer().byte(krl.SECTION_SIGNATURE).string(b"key").string(b"sig").getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"SSHKRL", "not a KRL"),
        (header(version=2), "format version 2"),
        (header()[:-3], "truncated"),
        (header(section(9, b"")), "unknown section type 9"),
        (
            header(section(krl.SECTION_FINGERPRINT_SHA256, Writer().string(b"x" * 31).getvalue())),
            "31 bytes",
        ),
        (
            header(section(krl.SECTION_FINGERPRINT_SHA1, Writer().string(b"x" * 32).getvalue())),
            "32 bytes",
        ),
        (header(certs(section(krl.CERT_SERIAL_LIST, b"\0" * 8))), "serial 0"),
        (header(certs(section(krl.CERT_SERIAL_LIST, b"\0" * 7 + b"\1\0"))), "truncated"),
        (
            header(certs(section(krl.CERT_SERIAL_RANGE, Writer().uint64(5).uint64(4).getvalue()))),
            "range 5-4",
        ),
        (header(certs(section(0x30, b""))), "unknown certificate section type 48"),
        (header(certs(bitmap(0, b"\x01"))), "serial 0"),
        (header(certs(bitmap(1, b"\x80"))), "negative"),
        (header(certs(bitmap(2**64 - 1, b"\x02"))), "past the largest serial"),
        (header(certs(bitmap(1, b"\x01" * 2049))), "over 16384 bits"),
        (header(certs(ca=b"\0\0\0\x03foo")), "does not parse"),
        (header(certs(section(krl.CERT_KEY_ID, Writer().string(b"a\0b").getvalue()))), "NUL"),
        (header(extension(krl.SECTION_EXTENSION, True)), "critical KRL extension"),
        (header(certs(extension(krl.CERT_EXTENSION, True))), "critical certificate section"),
        (header(signature() + certs()), "after its signature"),
        (header(signature()[:-1]), "string of 3 bytes"),
    ],
)
def test_malformed_krls_are_format_errors(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        krl.parse(data)


def test_what_openssh_accepts_is_accepted() -> None:
    bits = b"\x00" + b"\xff" * 2048  # 16384 bits with the leading zero OpenSSH allows
    data = header(
        certs(bitmap(1, bits), extension(krl.CERT_EXTENSION, False))
        + extension(krl.SECTION_EXTENSION, False)
        + section(krl.SECTION_EXPLICIT_KEY, Writer().string(b"any blob").getvalue())
        + signature()
        + signature()
    )
    parsed = krl.parse(data)
    assert parsed.scopes[0].ca is None
    assert parsed.scopes[0].serials.ranges() == [(1, 16384)]
    assert parsed.signatures == 2
    assert b"\x04" not in krl.to_bytes(parsed)[-10:]  # a rewrite drops the signatures


# ---- spec lines


def spec(text: str, ca: Ed25519Private | None = CA, any_ca: bool = False) -> krl.Krl:
    made = krl.Krl()
    revoke_from_spec(made, text.encode(), "spec", ca.public if ca else None, any_ca)
    return made


def test_every_spec_line_kind() -> None:
    user2 = format_public_line(USER2.public, "a comment")
    made = spec(
        "# a comment line\n"
        "\n"
        "serial: 5  # trailing comment\n"
        "SERIAL:0x10-0x12\n"
        "serial: 010\n"
        "id: the id  \n"
        f"key: {format_public_line(USER.public)}\n"
        f"sha1: {user2}\n"
        f"sha256: {user2}\n"
        f"hash: {fingerprint(CA.public)}\n"
        f"{format_public_line(certificate(77))}\n"
    )
    scope = made.scopes[0]
    assert scope.serials.ranges() == [(5, 5), (8, 8), (16, 18), (77, 77)]
    assert scope.key_ids == {b"the id"}
    assert made.keys == {USER.public.to_wire()}
    assert made.sha1s == {hashlib.sha1(USER2.public.to_wire()).digest()}
    assert made.sha256s == {
        hashlib.sha256(USER2.public.to_wire()).digest(),
        hashlib.sha256(CA.public.to_wire()).digest(),
    }


def test_any_ca_spec() -> None:
    made = spec("serial: 3\nid: x\n", ca=None, any_ca=True)
    assert made.scopes[0].ca is None
    assert made.is_revoked(certificate(3, ca=OTHER_CA))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("serial: 5\nserial: x5\n", "spec:2: invalid serial"),
        ("serial: 5-5", "spec:1: invalid serial range 5:5"),
        ("serial: 0", "spec:1: serial 0 cannot be revoked"),
        ("serial: 18446744073709551616", "spec:1: serial out of range"),
        ("serial: 09", "spec:1: invalid serial"),
        # strtoull takes a sign: "+5" is 5 (tests/interop), "-1" wraps around, refused
        ("serial: -1", "spec:1: invalid serial"),
        ("serial: 5--7", "spec:1: invalid serial"),
        ("serial: ++5", "spec:1: invalid serial"),
        ("hash: MD5:aa", "spec:1: unsupported hash algorithm"),
        ("hash: SHA256:abc", "spec:1: a SHA256 fingerprint is 32 bytes"),
        ("hash: SHA256:!!", "spec:1: decode hash failed"),
        ("sha256: SHA256:" + base64.b64encode(bytes(32)).decode(), "spec:1: invalid key"),
        ("key: ssh-ed25519 AAAA", "spec:1: invalid key"),
        ("not a key", "spec:1: invalid key"),
    ],
)
def test_bad_spec_lines_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        spec(text)


@pytest.mark.parametrize("line", ["serial: 1", "id: x"])
def test_serials_and_ids_need_a_ca(line: str) -> None:
    with pytest.raises(FormatError, match=r"spec:1: revoking certificates by .* needs a CA key"):
        spec(line, ca=None)


def test_a_key_id_that_is_not_utf8_is_its_bytes() -> None:
    """A certificate's key ID is bytes (ssh-keygen -I takes any): one spec line with
    the same bytes revokes it, one with other bytes does not (ssh-keygen agrees, in
    tests/interop/test_cli_krl.py)."""
    odd = certificate(0, b"id\xff".decode("utf-8", "surrogateescape"))
    for line, revoked in ((b"id: other", False), (b"id: id\xfe", False), (b"id: id\xff", True)):
        made = krl.Krl()
        revoke_from_spec(made, line + b"\n", "spec", CA.public)
        assert made.is_revoked(odd) is revoked, line
        assert round_trip(made).is_revoked(odd) is revoked, line

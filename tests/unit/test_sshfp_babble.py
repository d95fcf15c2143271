"""The encodings behind ``fingerprint -B`` and SSHFP records: Bubble Babble against the
published vectors of its specification (Antti Huima, 2000), and the record forms'
structure (their digests are checked against ssh-keygen and ssh-keyscan in
tests/interop/test_cli_sshfp.py)."""

from __future__ import annotations

import hashlib
import re

import pytest

from keytool.errors import FormatError
from keytool.keys import cert, generate
from keytool.keys.fingerprint import bubblebabble, describe_bubblebabble, raw_digest
from keytool.keys.sshfp import records

# the specification's examples: input bytes -> encoding
SPEC_VECTORS = [
    (b"", "xexax"),
    (b"1234567890", "xesef-disof-gytuf-katof-movif-baxux"),
    (b"Pineapple", "xigak-nyryk-humil-bosek-sonax"),
]


@pytest.mark.parametrize(("data", "encoded"), SPEC_VECTORS)
def test_bubblebabble_spec_vectors(data: bytes, encoded: str) -> None:
    assert bubblebabble(data) == encoded


@pytest.mark.parametrize("length", range(0, 41))
def test_bubblebabble_shape(length: int) -> None:
    """x, five letters per byte pair joined by "-", three for the end, then x; the
    consonant x only in the closing syllable of an even length."""
    text = bubblebabble(bytes(range(7, 7 + length)))
    inner = text[1:-1]
    assert text[0] == text[-1] == "x"
    assert inner.count("-") == length // 2
    assert len(inner.replace("-", "")) == 5 * (length // 2) + 3
    assert re.fullmatch(r"[aeiouybcdfghklmnprstvzx-]+", inner)
    assert ("x" in inner) == (length % 2 == 0)
    assert inner.find("x") in (-1, len(inner) - 2)


def test_bubblebabble_line_uses_sha1_of_the_certified_key() -> None:
    key = generate("ed25519")
    line = describe_bubblebabble(key.public, "me@host")
    digest = hashlib.sha1(key.public.to_wire()).digest()
    assert line == f"256 {bubblebabble(digest)} me@host (ED25519)"
    assert describe_bubblebabble(key.public, None).endswith(" no comment (ED25519)")
    certified = cert.sign(key.public, generate("ed25519"), cert_type=cert.HOST, key_id="h")
    assert describe_bubblebabble(certified, "c") == f"256 {bubblebabble(digest)} c (ED25519-CERT)"


@pytest.mark.parametrize(
    ("kind", "bits", "number"), [("rsa", 2048, 1), ("ecdsa", 384, 3), ("ed25519", None, 4)]
)
def test_sshfp_record_forms(kind: str, bits: int | None, number: int) -> None:
    public = generate(kind, bits).public
    plain, generic = records("h.example.", public), records("h.example.", public, generic=True)
    sha1, sha256 = raw_digest(public, "sha1"), raw_digest(public, "sha256")
    assert plain == [
        f"h.example. IN SSHFP {number} 1 {sha1.hex()}",
        f"h.example. IN SSHFP {number} 2 {sha256.hex()}",
    ]
    assert generic == [
        f"h.example. IN TYPE44 \\# 22 {number:02x} 01 {sha1.hex()}",
        f"h.example. IN TYPE44 \\# 34 {number:02x} 02 {sha256.hex()}",
    ]
    assert sha256 == hashlib.sha256(public.to_wire()).digest()


def test_sshfp_refuses_certificates() -> None:
    key = generate("ed25519")
    certified = cert.sign(key.public, key, cert_type=cert.HOST, key_id="h")
    with pytest.raises(FormatError, match="not certificates"):
        records("h", certified)

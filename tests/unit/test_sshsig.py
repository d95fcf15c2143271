"""SSHSIG and allowed_signers without I/O (ssh-keygen is the reference in
tests/interop/test_cli_sign.py)."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keytool import allowedsigners, sshsig
from keytool.errors import FormatError, KeytoolError
from keytool.keys import generate
from keytool.keys.pubfile import format_public_line

KEY = generate("ed25519")
OTHER = generate("ecdsa")


def signed(namespace: str, message: bytes) -> sshsig.Signature:
    digest = hashlib.sha512(message).digest()
    data = sshsig.signed_data(namespace, "sha512", digest)
    text = sshsig.armor(KEY.public, namespace, "sha512", KEY.sign(data))
    return sshsig.parse(text.encode())


def test_round_trip_and_refusals() -> None:
    sig = signed("git", b"hello")
    assert (sig.namespace, sig.hash_algorithm, sig.key) == ("git", "sha512", KEY.public)
    sshsig.verify(sig, "git", hashlib.sha512(b"hello").digest())
    with pytest.raises(sshsig.SignatureError, match="namespace"):
        sshsig.verify(sig, "file", hashlib.sha512(b"hello").digest())
    with pytest.raises(sshsig.SignatureError, match="incorrect"):
        sshsig.verify(sig, "git", hashlib.sha512(b"hello!").digest())


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_format_error(data: bytes) -> None:
    for text in (
        data,
        b"-----BEGIN SSH SIGNATURE-----\n" + data + b"\n-----END SSH SIGNATURE-----",
    ):
        with contextlib.suppress(KeytoolError):
            sshsig.parse(text)


def test_allowed_signers_lines() -> None:
    line = format_public_line(KEY.public, "")
    text = (
        "# comment\n\n"
        f'a@x,*@y,!bad@y namespaces="git,fi*",valid-after="20200101Z" {line}\n'
        f'"quoted@x" cert-authority {line}\n'
        f'c@x valid-before="20000101" {line}\n'
    )
    signers = allowedsigners.parse(text)
    assert [s.line_number for s in signers] == [3, 4, 5]
    now = 1.8e9
    assert allowedsigners.allowed(signers, "a@x", KEY.public, "git", now)
    assert allowedsigners.allowed(signers, "z@y", KEY.public, "file", now)
    assert not allowedsigners.allowed(signers, "bad@y", KEY.public, "git", now)
    assert not allowedsigners.allowed(signers, "a@x", KEY.public, "mail", now)
    assert not allowedsigners.allowed(signers, "a@x", OTHER.public, "git", now)
    assert not allowedsigners.allowed(signers, "quoted@x", KEY.public, "git", now)  # a CA
    assert not allowedsigners.allowed(signers, "c@x", KEY.public, "git", now)  # expired
    assert allowedsigners.principals_for(signers, KEY.public, now) == ["a@x,*@y,!bad@y"]
    for bad in (f"x@y unknown-option {line}", f'x@y valid-after="2020" {line}', "x@y", '"x@y'):
        with pytest.raises(FormatError, match="line 1"):
            allowedsigners.parse(bad)


@given(st.text(max_size=200))
def test_any_text_parses_or_format_error(text: str) -> None:
    with contextlib.suppress(FormatError):
        allowedsigners.parse(text)

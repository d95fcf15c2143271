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
from keytool.keys import cert, generate
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


def test_the_first_armored_signature_is_read() -> None:
    # as ssh-keygen reads a signature file: what follows the END line is not read
    first = sshsig.armor(KEY.public, "git", "sha512", b"\0\0\0\x01a\0\0\0\x01b")
    second = sshsig.armor(OTHER.public, "file", "sha256", b"\0\0\0\x01c\0\0\0\x01d")
    for text in (
        first + second,
        first + "junk\n",
        first.replace("END SSH SIGNATURE-----", "END SSH SIGNATURE----- x"),
    ):
        sig = sshsig.parse(text.encode() + b"\xff")
        assert (sig.key, sig.namespace) == (KEY.public, "git")
    # as ssh-keygen: blanks inside the base64 pass, CRLF or anything before BEGIN do not
    spaced = first.replace("\n", "  \r\n").replace("-----  \r\n", "-----\n", 1)
    assert sshsig.parse(spaced.encode()).key == KEY.public
    for refused in ("\n" + first, " " + first, first.replace("\n", "\r\n")):
        with pytest.raises(FormatError, match="missing header"):
            sshsig.parse(refused.encode())
    for bad in (first.split("\n-----END")[0], first[1:], "x" + first, first.replace("\n", "", 1)):
        with pytest.raises(FormatError):
            sshsig.parse(bad.encode())


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
    now = 1_800_000_000
    assert allowedsigners.allowed(signers, "a@x", KEY.public, "git", now)
    assert allowedsigners.allowed(signers, "z@y", KEY.public, "file", now)
    assert not allowedsigners.allowed(signers, "bad@y", KEY.public, "git", now)
    assert not allowedsigners.allowed(signers, "a@x", KEY.public, "mail", now)
    assert not allowedsigners.allowed(signers, "a@x", OTHER.public, "git", now)
    assert not allowedsigners.allowed(signers, "quoted@x", KEY.public, "git", now)  # a CA
    assert not allowedsigners.allowed(signers, "c@x", KEY.public, "git", now)  # expired
    # the first line for the key, one principal each (ssh-keygen -Y find-principals)
    assert allowedsigners.principals_for(signers, KEY.public, now) == ["a@x", "*@y", "!bad@y"]
    for bad in (f"x@y unknown-option {line}", f'x@y valid-after="2020" {line}', "x@y", '"x@y'):
        with pytest.raises(FormatError, match="line 1"):
            allowedsigners.parse(bad)


def test_walk_reads_lines_as_reached_and_passes_bad_ones() -> None:
    line = format_public_line(KEY.public, "")
    text = f"bob garbage\nalice {line}\nalice unknown-option {line}\ncarol {line}\n"
    items = list(allowedsigners.walk(text, "f"))
    assert [type(i).__name__ for i in items] == [
        "FormatError", "AllowedSigner", "FormatError", "AllowedSigner"
    ]  # fmt: skip
    assert str(items[0]).startswith("f line 1:")
    # a line for another principal is not parsed at all
    assert [i.line_number for i in allowedsigners.walk(text, "f", "carol")] == [4]
    # the walk stops where the answer is: the bad line 3 is never reached for alice
    walked = allowedsigners.walk(text, "f", "alice")
    assert allowedsigners.refusal(
        (i for i in walked if not isinstance(i, FormatError)), "alice", KEY.public, "git", 0
    ) is None  # fmt: skip
    assert next(walked, None) is not None  # line 3 is still to come
    assert allowedsigners.match_principals(text, "carol") == ["carol"]
    assert allowedsigners.match_principals(text, "dave") == []
    with pytest.raises(FormatError, match="line 3"):
        allowedsigners.match_principals(text, "alice")


@given(st.text(max_size=200))
def test_any_text_parses_or_format_error(text: str) -> None:
    with contextlib.suppress(FormatError):
        allowedsigners.parse(text)


def test_cert_authority_lines() -> None:
    ca = generate("ed25519")
    user = cert.sign(KEY.public, ca, key_id="k", principals=["alice", "bob"],
                     valid_after=1_000, valid_before=2_000)  # fmt: skip
    host = cert.sign(KEY.public, ca, cert_type=cert.HOST, principals=["alice"])
    bare = cert.sign(KEY.public, ca, key_id="k")
    ca_line = format_public_line(ca.public, "")
    signers = allowedsigners.parse(f'a*,carol namespaces="git",cert-authority {ca_line}\n')
    assert allowedsigners.allowed(signers, "alice", user, "git", 1_500)
    assert not allowedsigners.allowed(signers, "alice", user, "file", 1_500)  # namespace
    assert not allowedsigners.allowed(signers, "carol", user, "git", 1_500)  # not in the cert
    assert not allowedsigners.allowed(signers, "bob", user, "git", 1_500)  # not on the line
    assert not allowedsigners.allowed(signers, "alice", user, "git", 2_000)  # expired
    assert not allowedsigners.allowed(signers, "alice", user, "git", 999)  # not yet valid
    assert not allowedsigners.allowed(signers, "alice", host, "git", 1_500)
    assert not allowedsigners.allowed(signers, "alice", bare, "git", 1_500)
    assert not allowedsigners.allowed(signers, "alice", KEY.public, "git", 1_500)  # plain
    why = allowedsigners.refusal(signers, "alice", user, "git", 2_000)
    assert why is not None and "line 1" in why and "expired" in why
    assert allowedsigners.principals_for(signers, user, 1_500) == ["alice"]
    assert allowedsigners.principals_for(signers, user, 2_000) is None
    assert allowedsigners.principals_for(signers, KEY.public, 1_500) is None
    # a plain line for the certified key never allows the certificate
    plain = allowedsigners.parse(f"alice {format_public_line(KEY.public, '')}\n")
    assert not allowedsigners.allowed(plain, "alice", user, "git", 1_500)
    assert allowedsigners.allowed(plain, "alice", KEY.public, "git", 1_500)

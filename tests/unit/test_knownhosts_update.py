"""UpdateHostKeys' pure part: the proofs a server must give, and any bytes as the
server's key list or proofs (only FormatError may come out)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keytool import knownhosts_update as ku
from keytool.errors import FormatError
from keytool.keys import generate
from keytool.keys.base import PrivateKey
from keytool.wire import Writer

SESSION = b"s" * 32
ED = generate("ed25519")
EC = generate("ecdsa")
RSA = generate("rsa", 2048)


def proofs(*pairs: tuple[PrivateKey, bytes, str | None]) -> bytes:
    """Signatures by each key over its proof for the public key blob given."""
    w = Writer()
    for signer, session, algorithm in pairs:
        w.string(signer.sign(ku.signed_data(session, signer.public), algorithm))
    return w.getvalue()


def test_good_proofs_are_taken() -> None:
    reply = proofs((EC, SESSION, None), (RSA, SESSION, "rsa-sha2-512"))
    proved, left = ku.check_proofs(reply, SESSION, [EC.public, RSA.public], "ssh-ed25519")
    assert (proved, left) == ([EC.public, RSA.public], [])


def test_a_proof_for_another_session_is_refused() -> None:
    reply = proofs((EC, b"x" * 32, None))
    with pytest.raises(FormatError, match="not valid"):
        ku.check_proofs(reply, SESSION, [EC.public], "ssh-ed25519")


def test_a_sha1_rsa_proof_is_left_out_unless_the_session_is_ssh_rsa() -> None:
    reply = proofs((RSA, SESSION, "ssh-rsa"))
    assert ku.check_proofs(reply, SESSION, [RSA.public], "ssh-ed25519") == ([], [RSA.public])
    assert ku.check_proofs(reply, SESSION, [RSA.public], "ssh-rsa") == ([RSA.public], [])
    # with an RSA session key, the proof must use the session's algorithm
    with pytest.raises(FormatError):
        ku.check_proofs(reply, SESSION, [RSA.public], "rsa-sha2-512")


def test_missing_or_extra_proofs_are_refused() -> None:
    one = proofs((EC, SESSION, None))
    for reply, keys in ((one, [EC.public, ED.public]), (one + one, [EC.public])):
        with pytest.raises(FormatError):
            ku.check_proofs(reply, SESSION, keys, "ssh-ed25519")


@given(st.binary(max_size=400))
def test_any_key_list(body: bytes) -> None:
    with contextlib.suppress(FormatError):
        ku.announced_keys(body, ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"))


@given(st.binary(max_size=400))
def test_any_proof_reply(reply: bytes) -> None:
    with contextlib.suppress(FormatError):
        ku.check_proofs(reply, SESSION, [ED.public, EC.public], "ssh-ed25519")


@given(st.binary(max_size=400))
def test_any_known_hosts_bytes(text: bytes) -> None:
    plan = ku.plan([("f", text)], "[h]:22", [ED.public])
    data, _ = ku.replace_entries(text, "[h]:22", list(plan.keys), hashed=False)
    assert isinstance(data, bytes)

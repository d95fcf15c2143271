"""The RFC 4252 client state machine and the key-offering plan, against hand-made payloads."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keytool.errors import AuthError, KeytoolError, ProtocolError
from keytool.keys import generate
from keytool.keys.base import PublicKey
from keytool.transport import auth
from keytool.transport.auth import (
    AuthBanner,
    AuthFailure,
    AuthPlan,
    AuthSuccess,
    Identity,
    InfoRequest,
    KeyAccepted,
    PasswordChangeRequired,
    Prompt,
    SignatureNeeded,
    TryKey,
    TryKeyboardInteractive,
    TryPassword,
    UserAuth,
    order_identities,
)
from keytool.wire import Reader, Writer

SESSION_ID = bytes(range(32))
ED = generate("ed25519")
RSA = generate("rsa", 1024)


def failure(methods: str, partial: bool = False) -> bytes:
    return Writer().byte(51).string(methods).boolean(partial).getvalue()


def pk_ok(key: PublicKey, algorithm: str) -> bytes:
    return Writer().byte(60).string(algorithm).string(key.to_wire()).getvalue()


def test_none_request_bytes_and_failure() -> None:
    ua = UserAuth("alice", SESSION_ID)
    payload = ua.none()
    r = Reader(payload)
    assert r.byte() == 50
    assert (r.text(), r.text(), r.text()) == ("alice", "ssh-connection", "none")
    r.done()
    event = ua.receive(failure("publickey,password"))
    assert event == AuthFailure(("publickey", "password"), False)


def test_banner_then_success() -> None:
    ua = UserAuth("bob", SESSION_ID)
    ua.none()
    banner = Writer().byte(53).string("Welcome\x1b[31m\n").string("").getvalue()
    assert ua.receive(banner) == AuthBanner("Welcome\x1b[31m\n")  # as sent: shown escaped
    assert ua.receive(b"\x34") == AuthSuccess()
    with pytest.raises(ProtocolError):
        ua.receive(b"\x34")


def test_publickey_query_then_signature() -> None:
    ua = UserAuth("alice", SESSION_ID)
    query = ua.publickey(ED.public, "ssh-ed25519")
    r = Reader(query)
    assert r.byte() == 50
    assert [r.text() for _ in range(3)] == ["alice", "ssh-connection", "publickey"]
    assert r.boolean() is False
    assert r.text() == "ssh-ed25519"
    assert r.string() == ED.public.to_wire()
    r.done()
    event = ua.receive(pk_ok(ED.public, "ssh-ed25519"))
    assert isinstance(event, SignatureNeeded)
    # RFC 4252 §7: the signed data starts with the session id as a string
    expected = (
        Writer()
        .string(SESSION_ID)
        .byte(50)
        .string("alice")
        .string("ssh-connection")
        .string("publickey")
        .boolean(True)
        .string("ssh-ed25519")
        .string(ED.public.to_wire())
        .getvalue()
    )
    assert event.data == expected
    signature = ED.sign(event.data)
    signed = ua.send_signature(signature)
    r = Reader(signed)
    r.byte()
    [r.text() for _ in range(3)]
    assert r.boolean() is True
    assert r.text() == "ssh-ed25519"
    assert r.string() == ED.public.to_wire()
    assert ED.public.verify(r.string(), expected)
    r.done()
    assert ua.receive(b"\x34") == AuthSuccess()


def test_publickey_signed_at_once() -> None:
    ua = UserAuth("alice", SESSION_ID)
    needed = ua.publickey_signed(RSA.public, "rsa-sha2-512")
    assert needed.data == ua.signature_data(RSA.public, "rsa-sha2-512")
    # nothing may come back before the signed request is sent
    other = UserAuth("alice", SESSION_ID)
    other.publickey_signed(RSA.public, "rsa-sha2-512")
    with pytest.raises(ProtocolError):
        other.receive(pk_ok(RSA.public, "rsa-sha2-512"))
    signed = ua.send_signature(RSA.sign(needed.data, "rsa-sha2-512"))
    r = Reader(signed)
    r.byte()
    [r.text() for _ in range(3)]
    assert r.boolean() is True
    assert r.text() == "rsa-sha2-512"
    assert r.string() == RSA.public.to_wire()
    assert RSA.public.verify(r.string(), needed.data)
    r.done()
    assert ua.receive(failure("publickey,password")) == AuthFailure(
        ("publickey", "password"), False
    )
    with pytest.raises(AuthError):
        ua.publickey_signed(ED.public, "rsa-sha2-512")


def test_query_only_gives_key_accepted() -> None:
    ua = UserAuth("alice", SESSION_ID)
    ua.publickey(RSA.public, "rsa-sha2-256", sign=False)
    assert ua.receive(pk_ok(RSA.public, "rsa-sha2-256")) == KeyAccepted(RSA.public, "rsa-sha2-256")
    ua.publickey(ED.public, "ssh-ed25519", sign=False)
    assert ua.receive(failure("publickey")) == AuthFailure(("publickey",), False)


def test_pk_ok_for_another_key_is_refused() -> None:
    ua = UserAuth("alice", SESSION_ID)
    ua.publickey(ED.public, "ssh-ed25519")
    with pytest.raises(ProtocolError, match="did not offer"):
        ua.receive(pk_ok(RSA.public, "rsa-sha2-512"))
    with pytest.raises(ProtocolError):
        ua.none()


def test_success_to_a_query_is_a_login() -> None:
    """A server that asks nothing of anyone answers a query with SUCCESS; ssh takes
    SUCCESS at any point of the login, and so does keytool (no secret was sent)."""
    ua = UserAuth("alice", SESSION_ID)
    ua.publickey(ED.public, "ssh-ed25519")
    assert isinstance(ua.receive(b"\x34"), AuthSuccess)


def test_cannot_sign_with_wrong_algorithm() -> None:
    with pytest.raises(AuthError):
        UserAuth("a", SESSION_ID).publickey(ED.public, "rsa-sha2-512")


def test_password_and_change_request() -> None:
    ua = UserAuth("carol", SESSION_ID)
    payload = ua.password("s3cret")
    r = Reader(payload)
    r.byte()
    assert [r.text() for _ in range(3)] == ["carol", "ssh-connection", "password"]
    assert r.boolean() is False
    assert r.text() == "s3cret"
    r.done()
    change = Writer().byte(60).string("Password expired").string("").getvalue()
    assert ua.receive(change) == PasswordChangeRequired("Password expired")


def test_keyboard_interactive_round() -> None:
    ua = UserAuth("dave", SESSION_ID)
    r = Reader(ua.keyboard_interactive())
    r.byte()
    assert [r.text() for _ in range(3)] == ["dave", "ssh-connection", "keyboard-interactive"]
    assert (r.text(), r.text()) == ("", "")
    r.done()
    request = (
        Writer()
        .byte(60)
        .string("name")
        .string("instr")
        .string("")
        .uint32(2)
        .string("Password: ")
        .boolean(False)
        .string("Code: ")
        .boolean(True)
        .getvalue()
    )
    event = ua.receive(request)
    assert event == InfoRequest(
        "name", "instr", (Prompt("Password: ", False), Prompt("Code: ", True))
    )
    with pytest.raises(AuthError):
        ua.info_response(["only one"])
    r = Reader(ua.info_response(["pw", "123"]))
    assert r.byte() == 61
    assert r.uint32() == 2
    assert (r.text(), r.text()) == ("pw", "123")
    r.done()
    # a second round with no prompts, as OpenSSH's PAM sends, then success
    empty = Writer().byte(60).string("").string("").string("").uint32(0).getvalue()
    assert ua.receive(empty) == InfoRequest("", "", ())
    ua.info_response([])
    assert ua.receive(b"\x34") == AuthSuccess()


def test_lying_prompt_count() -> None:
    ua = UserAuth("dave", SESSION_ID)
    ua.keyboard_interactive()
    bad = Writer().byte(60).string("").string("").string("").uint32(10**9).getvalue()
    with pytest.raises(ProtocolError):
        ua.receive(bad)


def test_two_requests_at_once_refused() -> None:
    ua = UserAuth("a", SESSION_ID)
    ua.none()
    with pytest.raises(ProtocolError):
        ua.password("x")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["none", "pk", "pw", "kbd"]), st.binary(max_size=200))
def test_only_keytool_errors_escape(start: str, payload: bytes) -> None:
    ua = UserAuth("u", SESSION_ID)
    if start == "none":
        ua.none()
    elif start == "pk":
        ua.publickey(ED.public, "ssh-ed25519")
    elif start == "pw":
        ua.password("p")
    else:
        ua.keyboard_interactive()
    with contextlib.suppress(KeytoolError):
        ua.receive(payload)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 255), max_size=4), st.binary(max_size=60))
def test_only_keytool_errors_escape_structured(prefix: list[int], tail: bytes) -> None:
    ua = UserAuth("u", SESSION_ID)
    ua.keyboard_interactive()
    with contextlib.suppress(KeytoolError):
        ua.receive(bytes([60, *prefix]) + tail)


# ---- the plan


def identities(n: int, source: str = "agent") -> list[Identity]:
    return [Identity(generate("ed25519").public, source) for _ in range(n)]


def test_certificate_request_algorithms() -> None:
    from keytool.keys import cert

    ca = generate("ed25519")
    certs = {
        kind: cert.sign(generate(kind).public, ca, principals=["u"])
        for kind in ("ed25519", "ecdsa", "rsa")
    }
    pick = auth.signature_algorithm_for
    assert pick(certs["ed25519"], None) == "ssh-ed25519-cert-v01@openssh.com"
    assert pick(certs["ecdsa"], frozenset()) == "ecdsa-sha2-nistp256-cert-v01@openssh.com"
    # RSA: the SHA-2 choice server-sig-algs allows (plain names there), in certificate form
    assert pick(certs["rsa"], None) == "rsa-sha2-512-cert-v01@openssh.com"
    assert pick(certs["rsa"], frozenset({"rsa-sha2-256"})) == "rsa-sha2-256-cert-v01@openssh.com"
    assert pick(certs["rsa"], frozenset({"ssh-rsa"})) is None
    # the request carries the certificate algorithm and blob
    request = auth.UserAuth("u", b"sid").publickey(
        certs["rsa"], "rsa-sha2-512-cert-v01@openssh.com"
    )
    r = Reader(request)
    assert r.byte() == auth.MSG_USERAUTH_REQUEST
    assert [r.text() for _ in range(3)] == ["u", "ssh-connection", "publickey"]
    assert r.boolean() is False
    assert r.text() == "rsa-sha2-512-cert-v01@openssh.com"
    assert r.string() == certs["rsa"].to_wire()


def test_rsa_algorithm_from_server_sig_algs_and_accepted() -> None:
    def choose(server: set[str] | None, accepted: tuple[str, ...] = auth.DEFAULT_PUBKEY) -> object:
        sig_algs = frozenset(server) if server is not None else None
        return auth.signature_algorithm_for(RSA.public, sig_algs, accepted)

    assert choose(None) == "rsa-sha2-512"
    assert choose({"rsa-sha2-256", "ssh-rsa"}) == "rsa-sha2-256"
    assert choose({"rsa-sha2-512", "rsa-sha2-256"}) == "rsa-sha2-512"
    assert choose({"ssh-rsa"}) is None  # SHA-1 only when asked for
    with_sha1 = (*auth.DEFAULT_PUBKEY, "ssh-rsa")
    assert choose({"ssh-rsa"}, with_sha1) == "ssh-rsa"
    assert choose({"rsa-sha2-256", "ssh-rsa"}, ("ssh-rsa", "rsa-sha2-256")) == "ssh-rsa"
    assert choose(None, ("rsa-sha2-256",)) == "rsa-sha2-256"
    assert auth.signature_algorithm_for(ED.public, None, ("rsa-sha2-512",)) is None


def test_order_explicit_first_and_identities_only() -> None:
    explicit = [Identity(ED.public, "id_test", explicit=True)]
    agent = identities(3)
    agent_with_explicit = [*agent, Identity(ED.public, "agent")]
    ordered = order_identities(explicit, agent_with_explicit, [], identities_only=False)
    assert [i.key for i in ordered] == [ED.public] + [i.key for i in agent]
    assert ordered[0].source == "id_test (in agent)"
    only = order_identities(explicit, agent, identities(1, "id_ed25519"), identities_only=True)
    assert next(i.key for i in only) == ED.public
    assert all(i.source != "agent" for i in only)


def test_plan_keeps_below_max_auth_tries_with_many_agent_keys() -> None:
    plan = AuthPlan(order_identities([], identities(10), [], False), password=True)
    allowed = ("publickey", "password")
    offered = 0
    while True:
        step = plan.next_step(allowed)
        if not isinstance(step, TryKey):
            break
        offered += 1
        plan.failed(f"key {offered}")
    # 4 keys (sshd disconnects at the 6th failure), then the password as the 5th try
    assert offered == 4
    assert isinstance(step, TryPassword)
    plan.failed("password")
    assert isinstance(plan.next_step(allowed), TryPassword)
    plan.failed("password")
    assert plan.next_step(allowed) is None  # a 7th try would never be reached
    error = plan.error("u", "h", allowed)
    assert "6 more keys not offered" in str(error)
    assert "password" in str(error)


def test_plan_without_password_uses_all_tries() -> None:
    plan = AuthPlan(order_identities([], identities(10), [], False))
    count = 0
    while isinstance(plan.next_step(("publickey", "password")), TryKey):
        count += 1
        plan.failed("k")
    assert count == 5


def test_plan_prefers_kbdint_and_skips_sha1_only_rsa() -> None:
    plan = AuthPlan(
        [Identity(RSA.public, "id_rsa")],
        password=True,
        keyboard_interactive=True,
        server_sig_algs=frozenset({"ssh-rsa"}),
    )
    assert isinstance(
        plan.next_step(("publickey", "keyboard-interactive", "password")), TryKeyboardInteractive
    )
    assert "SHA-1" in plan.skipped[0]

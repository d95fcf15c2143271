"""The agent's pure parts: message codecs, the keyring and handle_request."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.keyring import Keyring
from agent.server import MAX_BINDS, Session, handle_request
from keytool import agentproto as proto
from keytool.errors import FormatError, KeytoolError
from keytool.keys import generate
from keytool.keys.base import PrivateKey
from keytool.keys.rsa import RsaPrivate
from keytool.wire import Reader, Writer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    return {
        "ed25519": generate("ed25519"),
        "ecdsa": generate("ecdsa", 256),
        "rsa": generate("rsa", 2048),
    }


def add_payload(key: PrivateKey, comment: str = "c", **constraints: object) -> bytes:
    c = proto.Constraints(**constraints)  # type: ignore[arg-type]
    return proto.encode_request(proto.AddIdentity(key, comment, c))


def sign_payload(key: PrivateKey, data: bytes, flags: int = 0) -> bytes:
    return proto.encode_request(proto.SignRequest(key.public.to_wire(), data, flags))


def ask(keyring: Keyring, payload: bytes, session: Session | None = None) -> bytes:
    return handle_request(keyring, session or Session(), payload).payload


def listed(keyring: Keyring) -> list[proto.Identity]:
    return proto.decode_identities(ask(keyring, bytes([proto.SSH_AGENTC_REQUEST_IDENTITIES])))


def test_add_list_sign_remove(keys: dict[str, PrivateKey]) -> None:
    ring = Keyring(FakeClock())
    for name, key in keys.items():
        assert ask(ring, add_payload(key, name)) == proto.SUCCESS
    assert [(i.key_blob, i.comment) for i in listed(ring)] == [
        (k.public.to_wire(), n) for n, k in keys.items()
    ]
    for key in keys.values():
        sig = proto.decode_sign_response(ask(ring, sign_payload(key, b"data", 0)))
        assert key.public.verify(sig, b"data")
    removed = keys["ecdsa"].public.to_wire()
    assert ask(ring, proto.encode_request(proto.RemoveIdentity(removed))) == proto.SUCCESS
    assert ask(ring, proto.encode_request(proto.RemoveIdentity(removed))) == proto.FAILURE
    assert ask(ring, sign_payload(keys["ecdsa"], b"x")) == proto.FAILURE
    assert len(listed(ring)) == 2
    assert ask(ring, bytes([proto.SSH_AGENTC_REMOVE_ALL_IDENTITIES])) == proto.SUCCESS
    assert listed(ring) == []


@pytest.mark.parametrize(
    ("flags", "algorithm"),
    [(0, "ssh-rsa"), (2, "rsa-sha2-256"), (4, "rsa-sha2-512"), (6, "rsa-sha2-512")],
)
def test_rsa_flags_choose_the_hash(keys: dict[str, PrivateKey], flags: int, algorithm: str) -> None:
    ring = Keyring(FakeClock())
    ask(ring, add_payload(keys["rsa"]))
    sig = proto.decode_sign_response(ask(ring, sign_payload(keys["rsa"], b"d", flags)))
    assert Reader(sig).ascii() == algorithm
    assert keys["rsa"].public.verify(sig, b"d", (algorithm,))


def test_lifetime_and_default_lifetime(keys: dict[str, PrivateKey]) -> None:
    clock = FakeClock()
    ring = Keyring(clock, default_lifetime=100)
    ask(ring, add_payload(keys["ed25519"], lifetime=10))
    ask(ring, add_payload(keys["ecdsa"]))  # default lifetime applies
    ask(ring, add_payload(keys["rsa"], lifetime=1000))
    clock.now += 10
    assert [i.comment for i in listed(ring)] == ["c", "c"]
    assert ask(ring, sign_payload(keys["ed25519"], b"x")) == proto.FAILURE
    clock.now += 90
    assert [i.key_blob for i in listed(ring)] == [keys["rsa"].public.to_wire()]
    assert len(ring) == 1


def test_confirm_constraint(keys: dict[str, PrivateKey]) -> None:
    answers: list[bool] = []
    prompts: list[str] = []

    def confirm(prompt: str) -> bool:
        prompts.append(prompt)
        return answers.pop()

    ring = Keyring(FakeClock())
    ask(ring, add_payload(keys["ed25519"], "mine", confirm=True))
    assert ask(ring, sign_payload(keys["ed25519"], b"x")) == proto.FAILURE  # nobody to ask
    ring.confirm = confirm
    answers[:] = [False]
    assert ask(ring, sign_payload(keys["ed25519"], b"x")) == proto.FAILURE
    answers[:] = [True]
    assert ask(ring, sign_payload(keys["ed25519"], b"x"))[0] == proto.SSH_AGENT_SIGN_RESPONSE
    assert "mine" in prompts[0] and "SHA256:" in prompts[0]


def test_unknown_constraints_refused(keys: dict[str, PrivateKey]) -> None:
    ring = Keyring(FakeClock())
    base = Writer().byte(proto.SSH_AGENTC_ADD_ID_CONSTRAINED).raw(keys["ed25519"].to_wire())
    base.string("c")
    for tail in (
        bytes([proto.SSH_AGENT_CONSTRAIN_MAXSIGN]) + struct.pack(">I", 5),
        bytes([proto.SSH_AGENT_CONSTRAIN_EXTENSION])
        + Writer().string("restrict-destination-v00@openssh.com").getvalue(),
        bytes([77]),
        bytes([proto.SSH_AGENT_CONSTRAIN_LIFETIME]),  # truncated
    ):
        assert ask(ring, base.getvalue() + tail) == proto.FAILURE
    assert listed(ring) == []


def test_lock_unlock_and_growing_delay(keys: dict[str, PrivateKey]) -> None:
    clock = FakeClock()
    ring = Keyring(clock)
    ask(ring, add_payload(keys["ed25519"]))
    lock = proto.encode_request(proto.Lock(b"secret"))
    assert ask(ring, lock) == proto.SUCCESS
    assert ask(ring, lock) == proto.FAILURE  # already locked
    assert listed(ring) == []
    assert ask(ring, sign_payload(keys["ed25519"], b"x")) == proto.FAILURE
    assert ask(ring, add_payload(keys["ecdsa"])) == proto.FAILURE
    delays = []
    for _ in range(3):
        reply = handle_request(ring, Session(), proto.encode_request(proto.Unlock(b"wrong")))
        assert reply.payload == proto.FAILURE
        delays.append(reply.delay)
        clock.now += reply.delay
    # as ssh-agent: 0.1 s more for each wrong one in a row
    assert [round(d, 3) for d in delays] == [0.1, 0.2, 0.3]
    # during the delay no passphrase is checked, the right one neither: it is deferred
    reply = handle_request(ring, Session(), proto.encode_request(proto.Unlock(b"wrong")))
    clock.now += reply.delay - 0.01
    right = proto.encode_request(proto.Unlock(b"secret"))
    deferred = handle_request(ring, Session(), right)
    assert deferred.retry and abs(deferred.delay - 0.01) < 1e-6
    assert listed(ring) == []
    clock.now += 0.02
    assert ask(ring, right) == proto.SUCCESS
    assert len(listed(ring)) == 1
    assert ask(ring, right) == proto.FAILURE  # not locked any more


def test_a_good_unlock_resets_the_delay(keys: dict[str, PrivateKey]) -> None:
    """As ssh-agent (fail_count = 0 on a good unlock): wrong passphrases before the
    last unlock do not lengthen the delay after the next lock."""
    clock = FakeClock()
    ring = Keyring(clock)
    ask(ring, add_payload(keys["ed25519"]))
    lock = proto.encode_request(proto.Lock(b"secret"))
    right = proto.encode_request(proto.Unlock(b"secret"))
    wrong = proto.encode_request(proto.Unlock(b"wrong"))

    def wrong_delay() -> float:
        reply = handle_request(ring, Session(), wrong)
        assert reply.payload == proto.FAILURE and not reply.retry
        clock.now += reply.delay
        return reply.delay

    assert ask(ring, lock) == proto.SUCCESS
    assert [round(wrong_delay(), 3) for _ in range(3)] == [0.1, 0.2, 0.3]
    assert ask(ring, right) == proto.SUCCESS
    assert len(listed(ring)) == 1
    assert ask(ring, lock) == proto.SUCCESS
    assert round(wrong_delay(), 3) == 0.1  # the first step again, not 0.4
    assert ask(ring, right) == proto.SUCCESS


def test_lock_keeps_no_passphrase(keys: dict[str, PrivateKey]) -> None:
    ring = Keyring(FakeClock())
    ask(ring, proto.encode_request(proto.Lock(b"hunter2-passphrase")))
    state = repr(ring) + "".join(repr(getattr(ring, s)) for s in ring.__slots__)
    assert "hunter2" not in state
    assert "_lock_hash" not in repr(ring)
    assert b"hunter2-passphrase" not in b"".join(
        v for s in ring.__slots__ if isinstance(v := getattr(ring, s), bytes)
    )


def test_malformed_lock_answers_failure() -> None:
    ring = Keyring(FakeClock())
    assert ask(ring, bytes([proto.SSH_AGENTC_LOCK, 0, 0, 0, 9, 1])) == proto.FAILURE
    assert not ring.locked


def test_smartcard_and_unknown_requests_fail() -> None:
    ring = Keyring(FakeClock())
    provider = Writer().byte(proto.SSH_AGENTC_ADD_SMARTCARD_KEY).string("/lib/evil.so")
    assert ask(ring, provider.string("1234").getvalue()) == proto.FAILURE
    for kind in (0, 1, 99, 255, proto.SSH_AGENTC_REMOVE_SMARTCARD_KEY):
        assert ask(ring, bytes([kind])) == proto.FAILURE


def test_inconsistent_keys_refused(keys: dict[str, PrivateKey]) -> None:
    ring = Keyring(FakeClock())
    rsa_key = keys["rsa"]
    assert isinstance(rsa_key, RsaPrivate)
    pub = rsa_key.public
    # e = 1
    bad = Writer().byte(17).string("ssh-rsa").mpint(pub.n).mpint(1).mpint(rsa_key.d)
    bad.mpint(rsa_key.iqmp).mpint(rsa_key.p).mpint(rsa_key.q).string("c")
    assert ask(ring, bad.getvalue()) == proto.FAILURE
    # p·q != n
    bad = Writer().byte(17).string("ssh-rsa").mpint(pub.n).mpint(pub.e).mpint(rsa_key.d)
    bad.mpint(rsa_key.iqmp).mpint(rsa_key.p + 2).mpint(rsa_key.q).string("c")
    assert ask(ring, bad.getvalue()) == proto.FAILURE
    # ed25519 halves that disagree
    ed = keys["ed25519"].to_wire()
    r = Reader(ed)
    r.string()
    pk, sk = r.string(), r.string()
    other = generate("ed25519").public.to_wire()[-32:]
    bad_ed = Writer().byte(17).string("ssh-ed25519").string(pk).string(sk[:32] + other)
    assert ask(ring, bad_ed.string("c").getvalue()) == proto.FAILURE
    bad_ed = Writer().byte(17).string("ssh-ed25519").string(other).string(sk[:32] + other)
    assert ask(ring, bad_ed.string("c").getvalue()) == proto.FAILURE
    assert listed(ring) == []


def test_query_extension() -> None:
    ring = Keyring(FakeClock())
    reply = ask(ring, proto.encode_request(proto.Extension("query")))
    assert set(proto.decode_query_response(reply)) == {"query", "session-bind@openssh.com"}
    assert ask(ring, proto.encode_request(proto.Extension("nope@example.com"))) == proto.FAILURE


def _bind(host: PrivateKey, session_id: bytes, forwarding: bool, sig: bytes | None = None) -> bytes:
    bind = proto.SessionBind(
        host.public.to_wire(),
        session_id,
        host.sign(session_id) if sig is None else sig,
        forwarding,
    )
    return proto.encode_request(proto.Extension(proto.EXT_SESSION_BIND, bind.to_wire()))


def test_session_bind(keys: dict[str, PrivateKey]) -> None:
    ring = Keyring(FakeClock())
    host = keys["ed25519"]
    session = Session()
    bad_sig = keys["ecdsa"].sign(b"sid-0")
    assert ask(ring, _bind(host, b"sid-0", True, bad_sig), session) == proto.FAILURE
    wrong_data = host.sign(b"other")
    assert ask(ring, _bind(host, b"sid-0", True, wrong_data), session) == proto.FAILURE
    for i in range(MAX_BINDS):
        assert ask(ring, _bind(host, f"sid-{i}".encode(), True), session) == proto.SUCCESS
    assert ask(ring, _bind(host, b"sid-x", True), session) == proto.FAILURE  # 17th
    # as ssh-agent: the same binding again is accepted (not recorded twice), the same
    # session id with another host key is not; nothing binds after one for authentication
    fresh = Session()
    assert ask(ring, _bind(host, b"a", True), fresh) == proto.SUCCESS
    assert ask(ring, _bind(host, b"a", True), fresh) == proto.SUCCESS
    assert len(fresh.bindings) == 1
    assert ask(ring, _bind(keys["ecdsa"], b"a", True), fresh) == proto.FAILURE
    assert ask(ring, _bind(host, b"b", False), fresh) == proto.SUCCESS
    assert ask(ring, _bind(host, b"c", True), fresh) == proto.FAILURE
    rsa_host = keys["rsa"]
    sig = rsa_host.sign(b"sid", "rsa-sha2-256")
    assert ask(ring, _bind(rsa_host, b"sid", False, sig), Session()) == proto.SUCCESS


def test_decoders_reject_trailing_bytes(keys: dict[str, PrivateKey]) -> None:
    with pytest.raises(FormatError):
        proto.decode_request(sign_payload(keys["ed25519"], b"x") + b"\0")
    # as ssh-agent: nothing after the type of a list or remove-all request is read
    assert proto.decode_request(bytes([proto.SSH_AGENTC_REQUEST_IDENTITIES, 0])) == (
        proto.RequestIdentities()
    )
    assert proto.decode_request(bytes([proto.SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES])) == (
        proto.RemoveAllIdentities()
    )
    with pytest.raises(FormatError):
        proto.decode_request(bytes([proto.SSH_AGENTC_LOCK, 0, 0, 0, 0, 0]))
    with pytest.raises(FormatError):
        proto.decode_identities(bytes([12, 0xFF, 0xFF, 0xFF, 0xFF]))


def test_request_round_trips(keys: dict[str, PrivateKey]) -> None:
    requests: list[proto.Request] = [
        proto.RequestIdentities(),
        proto.SignRequest(b"blob", b"data", 6),
        proto.RemoveIdentity(b"blob"),
        proto.RemoveAllIdentities(),
        proto.Lock(b"pw"),
        proto.Unlock(b"pw"),
        proto.Extension("query", b""),
    ]
    for request in requests:
        assert proto.decode_request(proto.encode_request(request)) == request
    add = proto.AddIdentity(keys["ecdsa"], "cm", proto.Constraints(30, True))
    back = proto.decode_request(proto.encode_request(add))
    assert isinstance(back, proto.AddIdentity)
    assert back.key.public == keys["ecdsa"].public
    assert (back.comment, back.constraints) == ("cm", proto.Constraints(30, True))
    assert "hunter" not in repr(proto.Lock(b"hunter"))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_handle_request_never_raises(data: bytes) -> None:
    ring = Keyring(FakeClock())
    reply = handle_request(ring, Session(), data)
    assert isinstance(reply.payload, bytes) and reply.payload


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([11, 13, 17, 18, 19, 22, 23, 25, 27]), st.binary(max_size=400))
def test_request_decoder_raises_only_keytool_errors(kind: int, body: bytes) -> None:
    with contextlib.suppress(KeytoolError):
        proto.decode_request(bytes([kind]) + body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_reply_decoders_raise_only_keytool_errors(data: bytes) -> None:
    for decoder in (
        proto.decode_identities,
        proto.decode_sign_response,
        proto.decode_query_response,
    ):
        with contextlib.suppress(KeytoolError):
            decoder(data)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            Writer().byte(27).string(proto.EXT_SESSION_BIND).getvalue(),
            Writer().byte(17).string("ssh-ed25519").getvalue(),
            Writer().byte(25).string("ssh-rsa").getvalue(),
            Writer().byte(17).string("ecdsa-sha2-nistp256").string("nistp256").getvalue(),
        ]
    ),
    st.binary(max_size=400),
)
def test_handle_request_structured_prefixes(prefix: bytes, body: bytes) -> None:
    reply = handle_request(Keyring(FakeClock()), Session(), prefix + body)
    assert reply.payload in (proto.FAILURE, proto.SUCCESS)

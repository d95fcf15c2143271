"""Destination constraints, pure: the wire codec, ssh-add's -h syntax, and the agent's
decisions (ssh-agent's identity_permitted and sign checks) over session bindings."""

from __future__ import annotations

import pytest

from agent.destinations import Binding, parse_userauth, refusal, sign_refusal
from agent.keyring import Keyring
from agent.server import Session, handle_request
from keytool import agentproto as proto
from keytool.agentdest import (
    DestConstraint,
    Hop,
    HopKey,
    decode_destinations,
    encode_destinations,
)
from keytool.destspec import parse_destination
from keytool.errors import FormatError, KeytoolError
from keytool.keys import cert, generate
from keytool.keys.base import PrivateKey, PublicKey
from keytool.knownhosts import parse
from keytool.wire import Writer

NOW = 1_700_000_000


@pytest.fixture(scope="module")
def hosts() -> dict[str, PrivateKey]:
    return {name: generate("ed25519") for name in ("a", "b", "c", "ca")}


@pytest.fixture(scope="module")
def user() -> PrivateKey:
    return generate("ed25519")


def to(host: PrivateKey, name: str = "h", user: str | None = None, ca: bool = False) -> Hop:
    return Hop(user, name, (HopKey(host.public, ca),))


def origin_to(host: PrivateKey, **kw: object) -> DestConstraint:
    return DestConstraint(Hop(), to(host, **kw))  # type: ignore[arg-type]


def userauth(
    key: PublicKey, session_id: bytes, name: str = "root", host: PublicKey | None = None
) -> bytes:
    w = Writer().string(session_id).byte(50).string(name).string("ssh-connection")
    w.string("publickey-hostbound-v00@openssh.com" if host else "publickey").boolean(True)
    w.string(key.key_type).string(key.to_wire())
    if host is not None:
        w.string(host.to_wire())
    return w.getvalue()


def test_codec_round_trip(hosts: dict[str, PrivateKey]) -> None:
    constraints = (
        origin_to(hosts["a"], name="alpha", user="root"),
        DestConstraint(to(hosts["a"], "alpha"), to(hosts["ca"], "beta", ca=True)),
    )
    assert decode_destinations(encode_destinations(constraints)) == constraints
    added = proto.Constraints(lifetime=60, destinations=constraints)
    payload = proto.encode_request(proto.AddIdentity(generate("ed25519"), "c", added))
    decoded = proto.decode_request(payload)
    assert isinstance(decoded, proto.AddIdentity)
    assert decoded.constraints.destinations == constraints
    with pytest.raises(FormatError):
        decode_destinations(encode_destinations((DestConstraint(Hop(), Hop(None, "x")),)))


def test_listing_and_hops(hosts: dict[str, PrivateKey]) -> None:
    a, b, c = hosts["a"].public, hosts["b"].public, hosts["c"].public
    only_a = (origin_to(hosts["a"]),)
    assert refusal(only_a, [], False) is None  # local use
    assert refusal(only_a, [], True) is not None  # a bind was tried and failed
    assert refusal(only_a, [Binding(a, b"s", False)], False, now=NOW) is None
    assert "not permitted" in str(refusal(only_a, [Binding(b, b"s", False)], False, now=NOW))
    # forwarded through a, then to b: needs both hops
    path = [Binding(a, b"1", True), Binding(b, b"2", False)]
    assert refusal(only_a, path, False, now=NOW) is not None
    a_then_b = (*only_a, DestConstraint(to(hosts["a"]), to(hosts["b"])))
    assert refusal(a_then_b, path, False, "root", NOW) is None
    # listing at a forwarding hop: hidden unless usable beyond it
    assert refusal(only_a, [Binding(a, b"1", True)], False, now=NOW) is not None
    assert refusal(a_then_b, [Binding(a, b"1", True)], False, now=NOW) is None
    # signing on a forwarding hop, forwarding through an authentication binding
    assert "forwarding hop" in str(refusal(a_then_b, [Binding(a, b"1", True)], False, "root", NOW))
    bad_path = [Binding(a, b"1", False), Binding(b, b"2", False)]
    assert "forward through" in str(refusal(a_then_b, bad_path, False, now=NOW))
    # user patterns apply to the last hop when a user is known
    named = (origin_to(hosts["c"], user="dep*"),)
    bound = [Binding(c, b"s", False)]
    assert refusal(named, bound, False, None, NOW) is None
    assert refusal(named, bound, False, "deploy", NOW) is None
    assert refusal(named, bound, False, "root", NOW) is not None


def test_host_certificates_through_their_ca(hosts: dict[str, PrivateKey]) -> None:
    host_cert = cert.sign(
        hosts["a"].public, hosts["ca"], cert_type=cert.HOST, principals=("alpha",)
    )
    by_ca = (DestConstraint(Hop(), to(hosts["ca"], "alpha", ca=True)),)
    bound = [Binding(host_cert, b"s", False)]
    assert refusal(by_ca, bound, False, now=NOW) is None
    other_name = (DestConstraint(Hop(), to(hosts["ca"], "beta", ca=True)),)
    assert refusal(other_name, bound, False, now=NOW) is not None
    # the CA's key as a plain key does not allow its certificates, nor the reverse
    assert refusal((origin_to(hosts["ca"], name="alpha"),), bound, False, now=NOW) is not None
    plain = [Binding(hosts["a"].public, b"s", False)]
    assert refusal(by_ca, plain, False, now=NOW) is not None


def test_sign_checks(hosts: dict[str, PrivateKey], user: PrivateKey) -> None:
    key = user.public
    a, b = hosts["a"].public, hosts["b"].public
    only_a = (origin_to(hosts["a"]),)
    bound = [Binding(a, b"sid", False)]
    assert sign_refusal(only_a, [], False, key, userauth(key, b"sid"))[0] is not None
    assert sign_refusal(only_a, bound, False, key, b"not a userauth")[0] is not None
    assert sign_refusal(only_a, bound, False, key, userauth(key, b"sid")) == (None, "root")
    assert sign_refusal(only_a, bound, False, key, userauth(key, b"other"))[0] is not None
    assert sign_refusal(only_a, bound, False, key, userauth(key, b"sid", host=a))[0] is None
    assert sign_refusal(only_a, bound, False, key, userauth(key, b"sid", host=b))[0] is not None
    # another key's userauth, a bad service or a trailing byte: not a userauth
    assert parse_userauth(userauth(a, b"sid"), key) is None
    assert parse_userauth(userauth(key, b"sid") + b"\0", key) is None
    assert parse_userauth(userauth(key, b""), key) is None


def _bind(host: PrivateKey, session_id: bytes) -> bytes:
    bind = proto.SessionBind(host.public.to_wire(), session_id, host.sign(session_id), False)
    return proto.encode_request(proto.Extension(proto.EXT_SESSION_BIND, bind.to_wire()))


def test_handler(hosts: dict[str, PrivateKey], user: PrivateKey) -> None:
    ring = Keyring(lambda: 1000.0)
    free = generate("ed25519")
    constraints = proto.Constraints(destinations=(origin_to(hosts["a"]),))
    add = proto.encode_request(proto.AddIdentity(user, "restricted", constraints))
    assert handle_request(ring, Session(), add).payload == proto.SUCCESS
    handle_request(ring, Session(), proto.encode_request(proto.AddIdentity(free, "free")))
    listing = bytes([proto.SSH_AGENTC_REQUEST_IDENTITIES])

    def listed(session: Session) -> list[str]:
        reply = handle_request(ring, session, listing).payload
        return [i.comment for i in proto.decode_identities(reply)]

    assert listed(Session()) == ["restricted", "free"]
    at_b = Session()
    assert handle_request(ring, at_b, _bind(hosts["b"], b"sid")).payload == proto.SUCCESS
    assert listed(at_b) == ["free"]
    # not visible: neither removed nor replaced through this connection
    remove = proto.encode_request(proto.RemoveIdentity(user.public.to_wire()))
    assert handle_request(ring, at_b, remove).payload == proto.FAILURE
    assert handle_request(ring, at_b, add).payload == proto.FAILURE
    at_a = Session()
    handle_request(ring, at_a, _bind(hosts["a"], b"sid"))
    assert listed(at_a) == ["restricted", "free"]
    sign = proto.SignRequest(user.public.to_wire(), userauth(user.public, b"sid"))
    reply = handle_request(ring, at_a, proto.encode_request(sign)).payload
    assert reply[0] == proto.SSH_AGENT_SIGN_RESPONSE
    assert handle_request(ring, at_b, proto.encode_request(sign)).payload == proto.FAILURE
    # a failed bind hides the key on that connection
    failed = Session()
    bad = proto.SessionBind(hosts["a"].public.to_wire(), b"x", hosts["b"].sign(b"x"), False)
    request = proto.encode_request(proto.Extension(proto.EXT_SESSION_BIND, bad.to_wire()))
    assert handle_request(ring, failed, request).payload == proto.FAILURE
    assert listed(failed) == ["free"]


def test_ssh_add_syntax(hosts: dict[str, PrivateKey]) -> None:
    a, ca = hosts["a"].public, hosts["ca"].public
    text = (
        f"[alpha]:2222 {a.key_type} {_b64(a)}\n"
        f"@cert-authority *.example {ca.key_type} {_b64(ca)}\n"
        f"@revoked [alpha]:2222 {ca.key_type} {_b64(ca)}\n"
        f"beta {a.key_type} {_b64(a)}\n"
    )
    entries, _ = parse(text)
    plain = parse_destination("[alpha]:2222", entries)
    assert plain == DestConstraint(Hop(), Hop(None, "[alpha]:2222", (HopKey(a),)))
    certified = parse_destination("u@host.example", entries)
    assert certified.to == Hop("u", "host.example", (HopKey(ca, True),))
    hop = parse_destination("beta>root@[beta]", entries)
    assert hop.source == Hop(None, "beta", (HopKey(a),)) and hop.to.user == "root"
    assert parse_destination("deploy@", entries).to == Hop("deploy")
    for bad in ("nowhere", "@", "u@beta>beta", ">beta"):
        with pytest.raises(KeytoolError):
            parse_destination(bad, entries)


def _b64(key: PublicKey) -> str:
    import base64

    return base64.b64encode(key.to_wire()).decode()

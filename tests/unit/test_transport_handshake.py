"""ClientTransport driven by a scripted server: negotiation, strict kex, re-key,
transport messages, errors, and fuzzing of receive_data."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keytool.errors import DisconnectError, KeytoolError, NegotiationError, ProtocolError
from keytool.keys.cert import HOST
from keytool.keys.cert import sign as cert_sign
from keytool.keys.ed25519 import Ed25519Private
from keytool.transport import kex as kexes
from keytool.transport.config import TransportConfig
from keytool.transport.events import (
    ExtInfoReceived,
    HostKeyToCheck,
    KeysChanged,
    PayloadReceived,
    TransportReady,
)
from keytool.transport.handshake import ClientTransport, State, first_common, kexinit_payload
from keytool.transport.packets import Outgoing
from keytool.wire import Writer
from tests.unit.fake_server import SERVER_VERSION, FakeServer, pump

IGNORE = Writer().byte(2).string(b"padding").getvalue()
DEBUG = Writer().byte(4).boolean(False).string(b"hello").string(b"").getvalue()


def connect(
    config: TransportConfig | None = None, **server_options: object
) -> tuple[ClientTransport, FakeServer, list[object]]:
    client = ClientTransport(config or TransportConfig())
    server = FakeServer(**server_options)  # type: ignore[arg-type]
    return client, server, pump(client, server)


def test_handshake_reaches_service_accept() -> None:
    lines: list[str] = []
    client, server, events = connect(
        TransportConfig(trace=lines.append), banner=(b"Welcome", b"to the server")
    )
    kinds = [type(e) for e in events]
    assert kinds.index(HostKeyToCheck) < kinds.index(KeysChanged) < kinds.index(TransportReady)
    ready = next(e for e in events if isinstance(e, TransportReady))
    assert ready.session_id == server.session_id
    assert ready.server_version == SERVER_VERSION.decode()
    assert ready.server_sig_algs == ("ssh-ed25519", "rsa-sha2-256")
    assert ready.extensions["publickey-hostbound@openssh.com"] == b"0"
    assert ready.host_key == server.host_key.public
    assert ready.algorithms.strict_kex
    assert client.state is State.OPEN
    # the first KEXINIT asks for ext-info and strict kex
    assert b"ext-info-c" in server.client_kexinit
    assert b"kex-strict-c-v00@openssh.com" in server.client_kexinit
    assert "server banner line: Welcome" in lines
    assert any(line.startswith("host key: ssh-ed25519 SHA256:") for line in lines)
    assert any("session id" in line for line in lines)


def test_nothing_proceeds_until_the_host_key_is_accepted() -> None:
    client = ClientTransport(TransportConfig())
    server = FakeServer()
    server.feed(client.data_to_send())
    assert client.receive_data(server.data()) == []
    server.feed(client.data_to_send())  # the ECDH init
    events = client.receive_data(server.data())  # reply, NEWKEYS and EXT_INFO at once
    assert [type(e) for e in events] == [HostKeyToCheck]
    assert client.state is State.HOST_KEY
    assert client.data_to_send() == b""  # no NEWKEYS before the adapter says yes
    events = client.accept_host_key()
    assert [type(e) for e in events] == [KeysChanged, ExtInfoReceived]
    server.feed(client.data_to_send())  # NEWKEYS and the service request
    assert [type(e) for e in client.receive_data(server.data())] == [TransportReady]


def test_payloads_flow_both_ways_and_early_sends_wait() -> None:
    client = ClientTransport(TransportConfig())
    server = FakeServer()
    client.send_payload(b"\x32 early")  # before service accept: held back
    pump(client, server)
    assert server.received == [b"\x32 early"]
    server.send(b"\x34 reply")
    assert client.receive_data(server.data()) == [PayloadReceived(b"\x34 reply")]


def test_rekey_started_by_the_server_holds_our_payloads() -> None:
    client, server, _ = connect(ciphers=("aes256-gcm@openssh.com",))
    server.send(b"\x5e before")
    server.send_kexinit()
    events = client.receive_data(server.data())
    assert events[0] == PayloadReceived(b"\x5e before")
    client.send_payload(b"\x5e during")  # must wait for our NEWKEYS (RFC 4253 §7.1)
    server.feed(client.data_to_send())
    assert server.received == []
    later = pump(client, server)
    assert next(e for e in later if isinstance(e, KeysChanged)).rekey
    assert server.received == [b"\x5e during"]
    assert server.kex_count == 2 and client.kex_count == 2
    server.send(b"\x5e after")
    assert client.receive_data(server.data()) == [PayloadReceived(b"\x5e after")]


def test_rekey_after_the_byte_limit() -> None:
    client, server, _ = connect(TransportConfig(rekey_bytes=4096))
    for _ in range(10):  # no re-key before user authentication, as OpenSSH
        client.send_payload(b"\x5e" + bytes(1000))
        pump(client, server)
    assert server.kex_count == 1
    server.send(b"\x34")  # USERAUTH_SUCCESS
    assert client.receive_data(server.data()) == [PayloadReceived(b"\x34")]
    server.received.clear()
    for _ in range(20):
        client.send_payload(b"\x5e" + bytes(1000))
        pump(client, server)
    assert server.kex_count >= 4
    assert len(server.received) == 20
    # strict kex: sequence numbers restart at every NEWKEYS
    assert client._out.seq < 10


def test_rekey_with_a_changed_host_key_is_refused() -> None:
    client, server, _ = connect()
    server.host_key = Ed25519Private.generate()
    server.send_kexinit()
    with pytest.raises(ProtocolError, match="host key changed"):
        pump(client, server)


def test_strict_kex_refuses_messages_before_kexinit() -> None:
    with pytest.raises(ProtocolError, match="strict"):
        connect(before_kexinit=(IGNORE,))


def test_without_strict_kex_ignore_and_debug_are_fine() -> None:
    lines: list[str] = []
    client, _server, events = connect(
        TransportConfig(trace=lines.append), strict=False, before_kexinit=(IGNORE, DEBUG)
    )
    assert client.state is State.OPEN
    assert "server debug message: hello" in lines
    assert not next(e for e in events if isinstance(e, TransportReady)).algorithms.strict_kex


def test_strict_kex_refuses_ignore_during_initial_kex() -> None:
    client = ClientTransport(TransportConfig())
    server = FakeServer()
    server.feed(client.data_to_send())
    data = server.data()
    server.send(IGNORE)
    with pytest.raises(ProtocolError, match="strict"):
        client.receive_data(data + server.data())
    # the client told the server why, and refuses to go on
    server.feed(client.data_to_send())
    assert server.disconnect is not None and server.disconnect[0] == 2
    with pytest.raises(ProtocolError, match="strict"):
        client.receive_data(b"more")


def test_ignore_and_debug_after_kex_are_skipped() -> None:
    client, server, _ = connect()
    server.send(IGNORE)
    server.send(DEBUG)
    server.send(b"\x5e data")
    assert client.receive_data(server.data()) == [PayloadReceived(b"\x5e data")]


def test_unknown_transport_message_gets_unimplemented() -> None:
    client, server, _ = connect()
    seq = server.out.seq
    server.send(b"\x08 unknown")
    assert client.receive_data(server.data()) == []
    server.feed(client.data_to_send())
    # RFC 4253 §11.4: UNIMPLEMENTED names the packet's sequence number
    assert server.received == [Writer().byte(3).uint32(seq).getvalue()]


def test_known_message_in_the_wrong_state_is_fatal() -> None:
    client, server, _ = connect()
    server.send(b"\x15")  # NEWKEYS out of the blue
    with pytest.raises(ProtocolError, match="unexpected message 21"):
        client.receive_data(server.data())
    server.feed(client.data_to_send())
    assert server.disconnect is not None and server.disconnect[0] == 2
    with pytest.raises(ProtocolError):
        client.send_payload(b"\x5e")


def test_disconnect_reason_is_reported() -> None:
    client, server, _ = connect()
    server.send(
        Writer().byte(1).uint32(2).string(b"Too many\x1b[31m failures").string(b"").getvalue()
    )
    with pytest.raises(DisconnectError) as caught:
        client.receive_data(server.data())
    # the reason text escaped as ssh logs it (ESC as \033), and the reason code
    assert (
        str(caught.value)
        == "disconnected by the server: Too many\\033[31m failures (protocol error)"
    )


def test_no_common_cipher_names_both_lists() -> None:
    client = ClientTransport(TransportConfig(ciphers=("aes128-ctr",)))
    server = FakeServer(ciphers=("aes256-gcm@openssh.com",))
    with pytest.raises(NegotiationError) as caught:
        pump(client, server)
    # ssh's words, the server's list (ours is the one ssh -G shows)
    assert str(caught.value) == "no matching cipher found. Their offer: aes256-gcm@openssh.com"
    server.feed(client.data_to_send())
    assert server.disconnect is not None and server.disconnect[0] == 3


def test_bad_host_key_signature_is_refused() -> None:
    with pytest.raises(ProtocolError, match="does not verify"):
        connect(bad_signature=True)


def test_first_common_follows_the_client_order() -> None:
    assert first_common("cipher", ["b", "a"], ["a", "b"]) == "b"
    with pytest.raises(NegotiationError, match=r"^no matching cipher found\. Their offer: z$"):
        first_common("cipher", ["x", "y"], ["z"])


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n" * 2000, ProtocolError, "no SSH version"),
        (b"x" * 10000, ProtocolError, "no SSH version"),
        (b"SSH-1.5-old\r\n", ProtocolError, "unsupported protocol version"),
        (b"SSH-2.0-\x01\r\n", ProtocolError, "control characters"),
        (b"", DisconnectError, "before sending its version line"),
    ],
)
def test_version_exchange_errors(data: bytes, error: type[Exception], match: str) -> None:
    client = ClientTransport(TransportConfig())
    with pytest.raises(error, match=match):
        client.receive_data(data)


def test_eof_mid_kex_is_a_clear_error() -> None:
    client = ClientTransport(TransportConfig())
    client.receive_data(SERVER_VERSION + b"\r\n")
    with pytest.raises(DisconnectError, match="during key exchange"):
        client.receive_data(b"")


def exchange(deliver: Callable[[ClientTransport, bytes], list[object]]) -> list[object]:
    """Run the first kex, handing the server's two flights to ``deliver``."""
    client = ClientTransport(TransportConfig())
    server = FakeServer()
    server.feed(client.data_to_send())
    events = deliver(client, server.data())  # version line and KEXINIT
    server.feed(client.data_to_send())
    events += deliver(client, server.data())  # reply, NEWKEYS, EXT_INFO
    if any(isinstance(e, HostKeyToCheck) for e in events):
        events += client.accept_host_key()
    return events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.booleans())
def test_receive_data_only_raises_keytool_errors(data: bytes, after_version: bool) -> None:
    client = ClientTransport(TransportConfig())
    try:
        if after_version:
            client.receive_data(SERVER_VERSION + b"\r\n")
        client.receive_data(data)
        client.receive_data(b"")
    except KeytoolError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 100_000), st.integers(0, 255))
def test_mutated_server_flight_only_raises_keytool_errors(where: int, value: int) -> None:
    flights = 0

    def mutate(client: ClientTransport, data: bytes) -> list[object]:
        nonlocal flights
        flights += 1
        mutated = bytearray(data)
        if flights == 1 + where % 2:
            mutated[where % len(mutated)] = value
        return list(client.receive_data(bytes(mutated)))

    with contextlib.suppress(KeytoolError):
        exchange(mutate)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 200), min_size=1, max_size=30))
def test_any_chunking_gives_the_same_events(sizes: list[int]) -> None:
    calls = 0

    def chunked(client: ClientTransport, data: bytes) -> list[object]:
        nonlocal calls
        events: list[object] = []
        position = 0
        while position < len(data):
            size = sizes[calls % len(sizes)]
            calls += 1
            events += client.receive_data(data[position : position + size])
            position += size
        return events

    kinds = [type(e) for e in exchange(chunked)]
    assert kinds == [HostKeyToCheck, KeysChanged, ExtInfoReceived]


# -- upper-layer messages in the clear, a second DH group, a certificate for a plain
# host key algorithm


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "not-strict"])
@pytest.mark.parametrize(
    "payload",
    [b"\x34", Writer().byte(94).uint32(0).string(b"output").getvalue()],
    ids=["USERAUTH_SUCCESS", "CHANNEL_DATA"],
)
def test_upper_layer_message_during_the_first_kex_is_fatal(strict: bool, payload: bytes) -> None:
    """RFC 4253 §7.1: no message of the upper layers before the first NEWKEYS. A
    USERAUTH_SUCCESS (or channel data) sent in the clear after the server's KEXINIT
    must not log anybody in: the client gives up and says why."""
    client = ClientTransport(TransportConfig())
    server = FakeServer(strict=strict)
    server.feed(client.data_to_send())
    assert client.receive_data(server.data()) == []  # version line and KEXINIT
    assert client.state is State.KEX
    server.send(payload)  # unencrypted: NEWKEYS is still to come
    with pytest.raises(ProtocolError, match=f"unexpected message {payload[0]} from the server"):
        client.receive_data(server.data())
    assert not client.authenticated
    assert client.session_id is None
    server.feed(client.data_to_send())
    assert server.disconnect is not None and server.disconnect[0] == 2  # protocol error
    assert server.received == []
    with pytest.raises(ProtocolError):
        client.receive_data(b"")


def test_upper_layer_message_between_the_kex_reply_and_newkeys_is_fatal() -> None:
    """The same with the host key accepted and our NEWKEYS sent: the server's NEWKEYS
    has not come, its keys are not in force, and a USERAUTH_SUCCESS in the clear is
    refused."""
    client = ClientTransport(TransportConfig())
    server = FakeServer()
    server.feed(client.data_to_send())
    client.receive_data(server.data())
    server.feed(client.data_to_send())  # the ECDH init: the server answers
    reply, *_held_back = server.outbox  # its NEWKEYS and EXT_INFO are held back
    server.outbox.clear()
    assert [type(e) for e in client.receive_data(reply)] == [HostKeyToCheck]
    assert client.accept_host_key() == []
    assert client.state is State.NEWKEYS
    clear = Outgoing()  # in the clear, as anybody on the path could send it
    with pytest.raises(ProtocolError, match="unexpected message 52 from the server"):
        client.receive_data(clear.pack(b"\x34"))
    assert not client.authenticated
    server.feed(client.data_to_send())
    assert server.disconnect is not None and server.disconnect[0] == 2


def test_upper_layer_message_after_the_servers_rekey_kexinit_is_fatal() -> None:
    """During a re-key the server may send channel data until its own KEXINIT, not
    after it (RFC 4253 §7.1)."""
    client, server, _ = connect()
    server.send(b"\x5e before")
    server.send_kexinit()
    server.send(b"\x5e after")
    events: list[object] = []
    with pytest.raises(ProtocolError, match="unexpected message 94"):
        events += client.receive_data(server.data())
    server.feed(client.data_to_send())
    assert server.disconnect is not None and server.disconnect[0] == 2


class OfferingServer(FakeServer):
    """FakeServer with other lists in its (first) KEXINIT."""

    KEX: tuple[str, ...] = ("curve25519-sha256", "kex-strict-s-v00@openssh.com", "ext-info-s")
    HOST_KEY: tuple[str, ...] = ("ssh-ed25519",)

    def send_kexinit(self) -> None:
        payload = kexinit_payload(self.KEX, self.HOST_KEY, self.ciphers, self.macs)
        self.server_kexinit = payload
        self._kexinit_sent = True
        self.send(payload)


class GexServer(OfferingServer):
    """Offers diffie-hellman-group-exchange-sha256 only, answers the client's request
    with a 2048-bit group, and its GEX_INIT with the same group once more."""

    KEX = ("diffie-hellman-group-exchange-sha256", "kex-strict-s-v00@openssh.com")
    GROUP = Writer().byte(31).mpint(kexes.modp_prime(*kexes.GROUP14)).mpint(2).getvalue()

    def _handle(self, payload: bytes) -> None:
        if payload[0] in (34, 32):  # GEX_REQUEST, GEX_INIT
            self.received.append(payload)
            self.send(self.GROUP)
        else:
            super()._handle(payload)


def test_a_second_dh_group_is_a_protocol_error() -> None:
    client = ClientTransport(
        TransportConfig(kex_algorithms=("diffie-hellman-group-exchange-sha256",))
    )
    server = GexServer()
    server.feed(client.data_to_send())  # version, KEXINIT
    assert client.receive_data(server.data()) == []  # KEXINIT
    server.feed(client.data_to_send())  # GEX_REQUEST
    assert [p[0] for p in server.received] == [34]
    assert client.receive_data(server.data()) == []  # the first group is taken
    server.feed(client.data_to_send())  # GEX_INIT, in that group
    assert [p[0] for p in server.received] == [34, 32]
    with pytest.raises(ProtocolError, match=r"unexpected message 31|second DH group"):
        client.receive_data(server.data())  # a GROUP again, where the REPLY belongs
    server.feed(client.data_to_send())
    assert server.disconnect is not None and server.disconnect[0] == 2
    assert client.host_key is None and client.session_id is None


class CertHostKey:
    """A host key that shows a certificate of itself (as FakeServer.host_key: the
    certificate's blob goes in the kex reply, signatures are the plain key's)."""

    def __init__(self) -> None:
        self.key = Ed25519Private.generate()
        self.public = cert_sign(
            self.key.public, Ed25519Private.generate(), cert_type=HOST, principals=["server"]
        )

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        return self.key.sign(data, algorithm)


def test_a_host_certificate_under_a_plain_algorithm_is_refused() -> None:
    """ssh-ed25519 was negotiated (FakeServer offers nothing else): a certificate blob
    in the reply does not match it, however well signed; ssh refuses it the same way."""
    host_key = CertHostKey()
    client = ClientTransport(TransportConfig())
    server = FakeServer(host_key=host_key)  # type: ignore[arg-type]
    events: list[object] = []
    with pytest.raises(ProtocolError) as caught:
        events += pump(client, server)
    assert str(caught.value) == (
        "the server sent a ssh-ed25519-cert-v01@openssh.com host key for algorithm ssh-ed25519"
    )
    assert not any(isinstance(e, HostKeyToCheck) for e in events)
    assert client.host_key is None
    server.feed(client.data_to_send())
    assert server.disconnect is not None and server.disconnect[0] == 2


class CertAlgorithmServer(OfferingServer):
    HOST_KEY = ("ssh-ed25519-cert-v01@openssh.com",)


def test_the_same_host_certificate_under_its_own_algorithm_is_taken() -> None:
    """The control of the test above: negotiated as a certificate, the same blob and
    signature reach the host key check, as a certificate."""
    host_key = CertHostKey()
    client = ClientTransport(TransportConfig())
    server = CertAlgorithmServer(host_key=host_key)  # type: ignore[arg-type]
    events = pump(client, server)
    checked = next(e for e in events if isinstance(e, HostKeyToCheck))
    assert checked.key == host_key.public
    assert checked.algorithm == "ssh-ed25519-cert-v01@openssh.com"
    assert client.state is State.OPEN

"""ClientTransport (sans-IO) tells what a server that closed before its first packet
did: dropped the connection (nothing said, only sshd's "Exceeded MaxStartups", or only
its version line: ConnectionDropped, which copy-id retries), answered with something
that is not SSH (ProtocolError), or closed during the exchange (DisconnectError). Both
drivers (asyncio and blocking) report the core's answer; here the bytes are fed to the
core directly, at end of file (receive_data(b"")) and at a reset (connection_lost)."""

from __future__ import annotations

import pytest

from keytool.errors import ConnectionDropped, DisconnectError, KeytoolError, ProtocolError
from keytool.transport.config import TransportConfig
from keytool.transport.handshake import EARLY_KEPT, ClientTransport, State
from tests.unit.fake_server import SERVER_VERSION, FakeServer, pump
from tests.unit.test_transport_handshake import GexServer

HTTP = b"HTTP/1.1 400 Bad Request\r\n\r\n"
AT_EOF = "connection closed by the server before sending its version line"
IN_KEX = "connection closed by the server during key exchange"
RESET = "connection closed: Connection reset by peer"
NOTICE = " (it said: Exceeded MaxStartups)"


def not_ssh(count: int) -> str:
    return (
        f"the server sent no SSH version line ({count} bytes of something else, then it"
        " closed the connection: is it an SSH server?)"
    )


#: what the server sent, then the error at its end of file and at a reset
CASES = [
    ("nothing", [], ConnectionDropped, AT_EOF, RESET),
    ("blank-line", [b"\r\n"], ConnectionDropped, AT_EOF, RESET),
    (
        "max-startups",
        [b"Exceeded MaxStartups\r\n"],
        ConnectionDropped,
        AT_EOF + NOTICE,
        RESET + NOTICE,
    ),
    (
        "max-startups-bare",
        [b"Exceeded MaxStartups"],
        ConnectionDropped,
        AT_EOF + NOTICE,
        RESET + NOTICE,
    ),
    ("version-line", [SERVER_VERSION + b"\r\n"], ConnectionDropped, IN_KEX, RESET),
    ("version-line-lf", [b"SSH-2.0-OpenSSH_9.2\n"], ConnectionDropped, IN_KEX, RESET),
    ("http", [HTTP], ProtocolError, not_ssh(28), not_ssh(28)),
    (
        "http-in-pieces",
        [b"HTTP/1.1 ", b"400 Bad", b" Request\r\n\r\n"],
        ProtocolError,
        not_ssh(28),
        not_ssh(28),
    ),
    ("version-no-newline", [b"SSH-2.0-OpenSSH_9.2"], ProtocolError, not_ssh(19), not_ssh(19)),
    ("long-lines", [b"hello there\r\n" * 30], ProtocolError, not_ssh(390), not_ssh(390)),
    (
        "banner-then-version",
        [b"Welcome\r\n", SERVER_VERSION + b"\r\n"],
        DisconnectError,
        IN_KEX,
        RESET,
    ),
    (
        "version-and-half-a-packet",
        [SERVER_VERSION + b"\r\n\x00\x00\x01"],
        DisconnectError,
        IN_KEX,
        RESET,
    ),
]
IDS = [case[0] for case in CASES]


def fed(chunks: list[bytes]) -> ClientTransport:
    client = ClientTransport(TransportConfig())
    assert client.data_to_send().startswith(b"SSH-2.0-")  # our version line and KEXINIT
    for chunk in chunks:
        assert client.receive_data(chunk) == []
    return client


def exactly(error: KeytoolError, kind: type[KeytoolError], message: str) -> None:
    assert type(error) is kind, (type(error), error)
    assert str(error) == message
    assert error.exit_code == 255


@pytest.mark.parametrize(("case", "chunks", "kind", "at_eof", "at_reset"), CASES, ids=IDS)
def test_end_of_file_before_any_packet(
    case: str, chunks: list[bytes], kind: type[KeytoolError], at_eof: str, at_reset: str
) -> None:
    client = fed(chunks)
    with pytest.raises(KeytoolError) as raised:
        client.receive_data(b"")
    exactly(raised.value, kind, at_eof)
    assert client.state is State.CLOSED
    # nothing is sent to a server that is gone (no DISCONNECT, even for ProtocolError)
    assert client.data_to_send() == b""
    # from now on every call says the same, and a later reset changes nothing
    with pytest.raises(KeytoolError) as again:
        client.receive_data(b"more")
    assert again.value is raised.value
    assert client.connection_lost("Connection reset by peer") is raised.value


@pytest.mark.parametrize(("case", "chunks", "kind", "at_eof", "at_reset"), CASES, ids=IDS)
def test_reset_before_any_packet(
    case: str, chunks: list[bytes], kind: type[KeytoolError], at_eof: str, at_reset: str
) -> None:
    client = fed(chunks)
    error = client.connection_lost("Connection reset by peer")
    exactly(error, kind, at_reset)
    assert client.state is State.CLOSED
    assert client.data_to_send() == b""
    with pytest.raises(KeytoolError) as raised:
        client.receive_data(b"")
    assert raised.value is error
    assert client.connection_lost("Broken pipe") is error


def test_a_close_without_a_reason() -> None:
    exactly(fed([]).connection_lost(), ConnectionDropped, "connection closed")
    exactly(fed([HTTP]).connection_lost(""), ProtocolError, not_ssh(28))


def test_one_byte_says_byte() -> None:
    client = fed([b"x"])
    with pytest.raises(ProtocolError) as raised:
        client.receive_data(b"")
    assert str(raised.value) == (
        "the server sent no SSH version line (1 byte of something else, then it closed"
        " the connection: is it an SSH server?)"
    )


def test_the_core_keeps_the_first_bytes_and_counts_them_all() -> None:
    client = fed([])
    assert (client.first_received, client.bytes_received) == (b"", 0)
    client.receive_data(b"HTTP/1.1 ")
    client.receive_data(b"400\r\n")
    assert (client.first_received, client.bytes_received) == (b"HTTP/1.1 400\r\n", 14)
    client.receive_data(b"x" * 1000)  # no newline: still looking for the version line
    assert client.first_received == b"HTTP/1.1 400\r\n" + b"x" * (EARLY_KEPT + 1 - 14)
    assert client.bytes_received == 1014
    with pytest.raises(ProtocolError, match=r"^the server sent no SSH version line \(1014 bytes"):
        client.receive_data(b"")


def test_more_than_kept_of_max_startups_is_not_a_drop() -> None:
    """Only what fits what sshd says counts as its notice."""
    client = fed([b"Exceeded MaxStartups\r\n" * 20])
    with pytest.raises(ProtocolError) as raised:
        client.receive_data(b"")
    assert str(raised.value) == not_ssh(22 * 20)


@pytest.mark.parametrize("how", ["eof", "reset"])
def test_a_close_after_the_handshake_is_a_plain_disconnect(how: str) -> None:
    client = ClientTransport(TransportConfig())
    pump(client, FakeServer())
    assert client.state is State.OPEN
    if how == "eof":
        with pytest.raises(KeytoolError) as raised:
            client.receive_data(b"")
        error = raised.value
        exactly(error, DisconnectError, "connection closed by the server")
    else:
        error = client.connection_lost("Connection reset by peer")
        exactly(error, DisconnectError, RESET)


def test_connection_dropped_is_one_class_for_both_drivers() -> None:
    """keytool.copyid_host takes it from keytool.client: the same class as the core's."""
    from keytool import client, errors

    assert client.ConnectionDropped is errors.ConnectionDropped
    assert issubclass(ConnectionDropped, DisconnectError)


def test_a_second_dh_group_is_an_unexpected_message() -> None:
    """A GEX_GROUP where the GEX_REPLY belongs never reaches the kex code (only the
    message the kex waits for does): it is refused as any unexpected message."""
    client = ClientTransport(
        TransportConfig(kex_algorithms=("diffie-hellman-group-exchange-sha256",))
    )
    server = GexServer()
    server.feed(client.data_to_send())  # version, KEXINIT
    assert client.receive_data(server.data()) == []  # KEXINIT
    server.feed(client.data_to_send())  # GEX_REQUEST
    assert client.receive_data(server.data()) == []  # the first group is taken
    server.feed(client.data_to_send())  # GEX_INIT
    assert [p[0] for p in server.received] == [34, 32]
    with pytest.raises(ProtocolError) as raised:
        client.receive_data(server.data())  # a GROUP again
    assert str(raised.value) == (
        "unexpected message 31 from the server during the initial strict key exchange (state kex)"
    )
    server.feed(client.data_to_send())
    assert server.disconnect is not None and server.disconnect[0] == 2

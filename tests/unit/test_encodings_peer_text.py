"""Texts a server writes for people (banners, prompts, debug notes, reasons) in bytes
that are not UTF-8: taken as OpenSSH takes them, never the end of the connection.
Names the protocol compares (request names, channel types) stay strict."""

from __future__ import annotations

import pytest

from keytool.errors import DisconnectError, ProtocolError
from keytool.keys.cert import Option
from keytool.transport.auth import (
    AuthBanner,
    AuthSuccess,
    InfoRequest,
    PasswordChangeRequired,
    Prompt,
    UserAuth,
)
from keytool.transport.channels import (
    ChannelOpenFailed,
    ChannelOpenRequest,
    Connection,
    ExitSignal,
)
from keytool.transport.config import TransportConfig
from keytool.wire import Reader, Writer
from tests.unit.fake_server import FakeServer
from tests.unit.test_transport_handshake import connect

SESSION_ID = b"\x11" * 32
LATIN1 = b"caf\xe9 \x1b[31mred"  # printf 'caf\xe9 \033[31mred': Latin-1, and an escape


def test_a_banner_in_latin1_is_kept_as_sent() -> None:
    ua = UserAuth("root", SESSION_ID)
    ua.none()
    banner = Writer().byte(53).string(b"Welcome " + LATIN1 + b"\n").string("").getvalue()
    event = ua.receive(banner)
    assert isinstance(event, AuthBanner)
    # the bytes as sent, for login.py to escape as ssh does
    assert event.message.encode("utf-8", "surrogateescape") == b"Welcome " + LATIN1 + b"\n"
    assert ua.receive(b"\x34") == AuthSuccess()


def test_a_malformed_message_is_named_once() -> None:
    ua = UserAuth("root", SESSION_ID)
    ua.none()
    with pytest.raises(ProtocolError) as caught:
        ua.receive(b"\x35\x00\x00\x00\x09short")
    said = str(caught.value)
    assert said.startswith("malformed authentication message: ")
    assert said.count("authentication message") == 1


def test_keyboard_interactive_texts_in_latin1() -> None:
    ua = UserAuth("root", SESSION_ID)
    ua.keyboard_interactive()
    request = (
        Writer().byte(60).string(b"Acc\xe8s").string(b"Entrez le mot de passe \xe9")
        .string(b"").uint32(1).string(b"Mot de passe\xa0: ").boolean(False).getvalue()
    )  # fmt: skip
    event = ua.receive(request)
    assert event == InfoRequest(
        b"Acc\xe8s".decode("utf-8", "surrogateescape"),
        b"Entrez le mot de passe \xe9".decode("utf-8", "surrogateescape"),
        (Prompt(b"Mot de passe\xa0: ".decode("utf-8", "surrogateescape"), False),),
    )
    r = Reader(ua.info_response(["pw"]))
    assert (r.byte(), r.uint32(), r.text()) == (61, 1, "pw")


def test_a_password_change_prompt_in_latin1() -> None:
    ua = UserAuth("root", SESSION_ID)
    ua.password("old")
    change = Writer().byte(60).string(b"Mot de passe expir\xe9").string("").getvalue()
    assert ua.receive(change) == PasswordChangeRequired("Mot de passe expir?")


def test_a_debug_message_in_latin1_is_a_note() -> None:
    lines: list[str] = []
    client, server, _ = connect(TransportConfig(trace=lines.append))
    server.send(Writer().byte(4).boolean(True).string(LATIN1).string(b"").getvalue())
    assert client.receive_data(server.data()) == []
    # as ssh -v logs it: each byte that is not printable ASCII in octal
    assert "server debug message: caf\\351 \\033[31mred" in lines


def test_a_disconnect_reason_in_latin1() -> None:
    client, server, _ = connect()
    assert isinstance(server, FakeServer)
    server.send(Writer().byte(1).uint32(11).string(b"au revoir, " + LATIN1).string(b"").getvalue())
    with pytest.raises(DisconnectError) as caught:
        client.receive_data(server.data())
    # as ssh logs it: each byte that is not printable ASCII in octal
    assert (
        str(caught.value)
        == "disconnected by the server: au revoir, caf\\351 \\033[31mred (by application)"
    )


def _session() -> tuple[Connection, int]:
    conn = Connection()
    ch = conn.open_session()
    conn.data_to_send()
    confirm = Writer().byte(91).uint32(ch).uint32(7).uint32(1 << 20).uint32(32768).getvalue()
    conn.receive(confirm)
    return conn, ch


def test_an_open_failure_in_latin1() -> None:
    conn = Connection()
    ch = conn.open_session()
    fail = Writer().byte(92).uint32(ch).uint32(2).string(b"refus\xe9").string("").getvalue()
    assert conn.receive(fail) == [ChannelOpenFailed(ch, 2, "refus\\351")]


def test_an_exit_signal_in_latin1() -> None:
    conn, ch = _session()
    sig = (
        Writer().byte(98).uint32(ch).string("exit-signal").boolean(False).string("TERM")
        .boolean(False).string(b"tu\xe9").string("").getvalue()
    )  # fmt: skip
    assert conn.receive(sig) == [ExitSignal(ch, "TERM", False, "tu\\351")]


def test_a_forwarded_open_from_a_latin1_originator() -> None:
    conn = Connection()
    conn.tcpip_forward("localhost", 8080)
    conn.data_to_send()
    conn.receive(bytes([81]))
    opening = (
        Writer().byte(90).string("forwarded-tcpip").uint32(5).uint32(1 << 20).uint32(32768)
        .string("localhost").uint32(8080).string(b"h\xf4te").uint32(40000).getvalue()
    )  # fmt: skip
    (event,) = conn.receive(opening)
    assert isinstance(event, ChannelOpenRequest)
    assert (event.connected_address, event.originator) == ("localhost", "h?te")


def test_request_names_stay_strict() -> None:
    # a name the protocol compares must be ASCII (RFC 4251 §6)
    conn, ch = _session()
    request = Writer().byte(98).uint32(ch).string(b"exit-st\xe9tus").boolean(False).getvalue()
    with pytest.raises(ProtocolError):
        conn.receive(request)


def test_a_certificate_option_in_latin1() -> None:
    option = Option("force-command", Writer().string(b"ls \xe9").getvalue())
    assert option.value is not None
    assert option.value.encode("utf-8", "surrogateescape") == b"ls \xe9"
    # NUL ends a C string: ssh-keygen refuses it
    assert Option("force-command", Writer().string(b"ls\0x").getvalue()).value is None

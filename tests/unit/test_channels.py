"""The RFC 4254 connection state machine against hand-made server payloads."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keytool.errors import KeytoolError, ProtocolError
from keytool.transport.channels import (
    ChannelClosed,
    ChannelData,
    ChannelEof,
    ChannelExtendedData,
    ChannelOpened,
    ChannelOpenFailed,
    ChannelOpenRequest,
    ChannelRequestReply,
    Connection,
    ExitSignal,
    ExitStatus,
    GlobalReply,
    HostKeysAnnounced,
    UnaskedOpen,
    WindowAdjusted,
    allocated_port,
)
from keytool.wire import Reader, Writer

REMOTE = 7


def confirm(local: int, window: int = 1 << 20, max_packet: int = 32768) -> bytes:
    return (
        Writer().byte(91).uint32(local).uint32(REMOTE).uint32(window).uint32(max_packet).getvalue()
    )


def data(local: int, chunk: bytes) -> bytes:
    return Writer().byte(94).uint32(local).string(chunk).getvalue()


def opened(
    remote_window: int = 1 << 20, remote_max: int = 32768, **kw: int
) -> tuple[Connection, int]:
    conn = Connection(**kw)  # type: ignore[arg-type]
    ch = conn.open_session()
    r = Reader(conn.data_to_send()[0])
    assert r.byte() == 90
    assert r.text() == "session"
    assert r.uint32() == ch
    assert r.uint32() == conn.window
    assert r.uint32() == conn.max_packet
    r.done()
    assert conn.receive(confirm(ch, remote_window, remote_max)) == [ChannelOpened(ch)]
    return conn, ch


def test_exec_request_and_reply() -> None:
    conn, ch = opened()
    conn.exec(ch, "echo hi")
    r = Reader(conn.data_to_send()[0])
    assert r.byte() == 98
    assert r.uint32() == REMOTE
    assert r.text() == "exec"
    assert r.boolean() is True
    assert r.text() == "echo hi"
    r.done()
    assert conn.receive(Writer().byte(99).uint32(ch).getvalue()) == [
        ChannelRequestReply(ch, "exec", True)
    ]


def test_open_failure() -> None:
    conn = Connection()
    ch = conn.open_session()
    fail = Writer().byte(92).uint32(ch).uint32(1).string("no\x1bway\x07").string("").getvalue()
    # escaped as ssh logs it: ESC in octal, BEL (VIS_SAFE) as it is
    assert conn.receive(fail) == [ChannelOpenFailed(ch, 1, "no\\033way\x07")]
    assert ch not in conn.channels


def test_send_respects_window_and_max_packet() -> None:
    conn, ch = opened(remote_window=100_000, remote_max=16_384)
    conn.data_to_send()
    conn.send(ch, b"x" * 250_000)
    out = conn.data_to_send()
    sizes = [Reader(p[5:]).uint32() for p in out]
    assert all(p[0] == 94 for p in out)
    assert sum(sizes) == 100_000
    assert max(sizes) <= 16_384 - 9
    assert conn.buffered(ch) == 150_000
    conn.send_eof(ch)
    assert conn.data_to_send() == []  # EOF waits behind the data
    adjust = Writer().byte(93).uint32(ch).uint32(200_000).getvalue()
    assert conn.receive(adjust) == [WindowAdjusted(ch)]
    out = conn.data_to_send()
    assert sum(Reader(p[5:]).uint32() for p in out[:-1]) == 150_000
    assert out[-1] == bytes([96]) + REMOTE.to_bytes(4, "big")
    assert conn.buffered(ch) == 0


def test_receive_window_adjusted_in_big_steps() -> None:
    conn, ch = opened(window=65536, max_packet=32768)
    conn.data_to_send()
    events = conn.receive(data(ch, b"a" * 20000))
    assert events == [ChannelData(ch, b"a" * 20000)]
    assert conn.data_to_send() == []
    conn.receive(data(ch, b"b" * 20000))
    (adjust,) = conn.data_to_send()
    r = Reader(adjust)
    assert (r.byte(), r.uint32(), r.uint32()) == (93, REMOTE, 40000)


def test_server_overrunning_window_is_an_error() -> None:
    conn, ch = opened(window=1000, max_packet=32768)
    with pytest.raises(ProtocolError, match="window"):
        conn.receive(data(ch, b"z" * 1001))


def test_manual_window() -> None:
    conn, ch = opened(window=1000, max_packet=1000, auto_window=False)
    conn.data_to_send()
    conn.receive(data(ch, b"z" * 1000))
    assert conn.data_to_send() == []
    conn.consumed(ch, 600)
    (adjust,) = conn.data_to_send()
    assert adjust[-4:] == (600).to_bytes(4, "big")


def test_exec_lifecycle_stderr_exit_status_close() -> None:
    conn, ch = opened()
    conn.exec(ch, "x", want_reply=False)
    conn.data_to_send()
    stderr = Writer().byte(95).uint32(ch).uint32(1).string(b"oops").getvalue()
    assert conn.receive(stderr) == [ChannelExtendedData(ch, 1, b"oops")]
    assert conn.receive(bytes([96]) + ch.to_bytes(4, "big")) == [ChannelEof(ch)]
    status = Writer().byte(98).uint32(ch).string("exit-status").boolean(False).uint32(3).getvalue()
    assert conn.receive(status) == [ExitStatus(ch, 3)]
    assert conn.receive(bytes([97]) + ch.to_bytes(4, "big")) == [ChannelClosed(ch)]
    # our CLOSE answers theirs
    assert conn.data_to_send() == [bytes([97]) + REMOTE.to_bytes(4, "big")]
    with pytest.raises(ProtocolError):
        conn.receive(data(ch, b"late"))


def test_exit_signal() -> None:
    conn, ch = opened()
    sig = (
        Writer()
        .byte(98)
        .uint32(ch)
        .string("exit-signal")
        .boolean(False)
        .string("TERM")
        .boolean(True)
        .string("killed")
        .string("")
        .getvalue()
    )
    assert conn.receive(sig) == [ExitSignal(ch, "TERM", True, "killed")]


def test_keepalives_answered_with_failure() -> None:
    conn, ch = opened()
    conn.data_to_send()
    glob = Writer().byte(80).string("keepalive@openssh.com").boolean(True).getvalue()
    assert conn.receive(glob) == []
    assert conn.data_to_send() == [bytes([82])]
    hostkeys = Writer().byte(80).string("hostkeys-00@openssh.com").boolean(False).string(b"k")
    assert conn.receive(hostkeys.getvalue()) == [HostKeysAnnounced(b"\x00\x00\x00\x01k")]
    assert conn.data_to_send() == []
    chreq = Writer().byte(98).uint32(ch).string("keepalive@openssh.com").boolean(True).getvalue()
    assert conn.receive(chreq) == []
    assert conn.data_to_send() == [bytes([100]) + REMOTE.to_bytes(4, "big")]


def test_server_channel_open_refused() -> None:
    conn = Connection()
    req = (
        Writer()
        .byte(90)
        .string("auth-agent@openssh.com")
        .uint32(5)
        .uint32(1000)
        .uint32(1000)
        .getvalue()
    )
    # refused, and told: the adapter warns of it as ssh does
    assert conn.receive(req) == [UnaskedOpen("auth-agent@openssh.com")]
    r = Reader(conn.data_to_send()[0])
    assert (r.byte(), r.uint32(), r.uint32()) == (92, 5, 1)


def test_close_while_opening_and_our_close_first() -> None:
    conn = Connection()
    ch = conn.open_session()
    conn.close(ch)
    conn.data_to_send()
    assert conn.receive(confirm(ch)) == []
    assert conn.data_to_send() == [bytes([97]) + REMOTE.to_bytes(4, "big")]
    assert conn.receive(bytes([97]) + ch.to_bytes(4, "big")) == [ChannelClosed(ch)]
    assert conn.data_to_send() == []


def test_unknown_recipient() -> None:
    with pytest.raises(ProtocolError, match="not open"):
        Connection().receive(data(3, b"x"))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=5))
def test_only_keytool_errors_escape(payloads: list[bytes]) -> None:
    conn, _ch = opened()
    for payload in payloads:
        try:
            conn.receive(payload)
        except KeytoolError:
            return


@settings(max_examples=400, deadline=None)
@given(st.integers(80, 100), st.binary(max_size=40))
def test_only_keytool_errors_escape_for_channel_zero(kind: int, body: bytes) -> None:
    conn, ch = opened()
    with contextlib.suppress(KeytoolError):
        conn.receive(bytes([kind]) + ch.to_bytes(4, "big") + body)


def forwarded_open(sender: int = 5, window: int = 1 << 20, max_packet: int = 32768) -> bytes:
    # §7.2: "forwarded-tcpip", sender, window, max packet, connected address and port,
    # originator address and port
    return (
        Writer().byte(90).string("forwarded-tcpip").uint32(sender).uint32(window)
        .uint32(max_packet).string("localhost").uint32(8080).string("10.0.0.9").uint32(40000)
        .getvalue()
    )  # fmt: skip


def test_tcpip_forward_request_and_replies() -> None:
    conn = Connection()
    conn.tcpip_forward("localhost", 0)
    conn.tcpip_forward("", 9000)
    first, second = conn.data_to_send()
    r = Reader(first)
    assert (r.byte(), r.text(), r.boolean(), r.text(), r.uint32()) == (
        80, "tcpip-forward", True, "localhost", 0,
    )  # fmt: skip
    r.done()
    assert Reader(second).byte() == 80
    # §7.1: the success for port 0 holds the port; replies come in the requests' order
    (reply,) = conn.receive(bytes([81]) + (40123).to_bytes(4, "big"))
    assert (reply.request, reply.ok, reply.data, reply.channel) == (
        "tcpip-forward", True, (40123).to_bytes(4, "big"), -1,
    )  # fmt: skip
    assert allocated_port(reply) == 40123
    with pytest.raises(ProtocolError, match="did not say which"):
        allocated_port(GlobalReply("tcpip-forward", True, b"\x00\x01"))
    (refused,) = conn.receive(bytes([82]))
    assert (refused.request, refused.ok) == ("tcpip-forward", False)
    with pytest.raises(ProtocolError, match="never made"):
        conn.receive(bytes([81]))


def test_forwarded_channel_confirmed_then_carries_data() -> None:
    conn = Connection()
    conn.tcpip_forward("localhost", 8080)
    conn.data_to_send()
    (event,) = conn.receive(forwarded_open())
    assert isinstance(event, ChannelOpenRequest)
    assert (event.connected_address, event.connected_port) == ("localhost", 8080)
    assert (event.originator, event.originator_port) == ("10.0.0.9", 40000)
    assert conn.data_to_send() == []  # nothing until we answer
    # the server may not send on it before we confirm
    with pytest.raises(ProtocolError, match="before it opened"):
        conn.receive(data(event.channel, b"early"))
    conn2 = Connection()
    conn2.tcpip_forward("localhost", 8080)
    conn2.data_to_send()
    (event,) = conn2.receive(forwarded_open())
    conn2.confirm_open(event.channel)
    r = Reader(conn2.data_to_send()[0])
    assert (r.byte(), r.uint32(), r.uint32()) == (91, 5, event.channel)
    assert (r.uint32(), r.uint32()) == (conn2.window, conn2.max_packet)
    r.done()
    assert conn2.receive(data(event.channel, b"hello")) == [ChannelData(event.channel, b"hello")]
    conn2.send(event.channel, b"back")
    r = Reader(conn2.data_to_send()[0])
    assert (r.byte(), r.uint32(), r.string()) == (94, 5, b"back")


def test_forwarded_channel_refused_and_unasked_opens() -> None:
    conn = Connection()
    # not asked for: refused by the core itself
    assert conn.receive(forwarded_open()) == [UnaskedOpen("forwarded-tcpip")]
    r = Reader(conn.data_to_send()[0])
    assert (r.byte(), r.uint32(), r.uint32()) == (92, 5, 1)
    conn.tcpip_forward("localhost", 8080)
    conn.data_to_send()
    (event,) = conn.receive(forwarded_open(sender=6))
    conn.refuse_open(event.channel, 2, "Connection refused")
    r = Reader(conn.data_to_send()[0])
    assert (r.byte(), r.uint32(), r.uint32(), r.text()) == (92, 6, 2, "Connection refused")
    assert event.channel not in conn.channels
    with pytest.raises(ProtocolError):
        conn.confirm_open(event.channel)
    with pytest.raises(ProtocolError, match="maximum packet size is 0"):
        conn.receive(forwarded_open(max_packet=0))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.lists(st.binary(max_size=40), max_size=4))
def test_only_keytool_errors_escape_with_remote_forwards(tail: bytes, more: list[bytes]) -> None:
    """Forwarded opens, global replies and whatever follows, with remote forwards on."""
    conn, _ch = opened()
    conn.tcpip_forward("localhost", 0)
    head = Writer().byte(90).string("forwarded-tcpip").getvalue()
    for payload in (head + tail, bytes([81]) + tail, *more):
        try:
            for event in conn.receive(payload):
                if isinstance(event, ChannelOpenRequest):
                    conn.confirm_open(event.channel)
        except KeytoolError:
            return

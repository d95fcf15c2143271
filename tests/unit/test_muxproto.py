"""PROTOCOL.mux messages: what one end builds the other parses, byte layouts as the
spec gives them, and malformed input refused with FormatError."""

from __future__ import annotations

import struct

import pytest

from keytool import muxproto as mux
from keytool.errors import FormatError


def _body(frame: bytes) -> bytes:
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    return frame[4:]


def test_hello_layout() -> None:
    # uint32 MUX_MSG_HELLO, uint32 version 4
    assert mux.hello() == bytes.fromhex("000000080000000100000004")
    assert mux.parse_hello(_body(mux.hello())).version == 4


def test_hello_extensions_are_skipped() -> None:
    body = struct.pack(">II", mux.HELLO, 4) + b"\0\0\0\x03ext" + b"\0\0\0\x01v"
    assert mux.parse_hello(body).version == 4


def test_session_request_round_trip() -> None:
    session = mux.NewSession(
        7,
        b"uname -a",
        want_tty=True,
        want_agent=True,
        escape_char=ord("~"),
        term="xterm",
        env=("LANG=C", "X=1"),
    )
    request = mux.parse_request(_body(mux.session_request(session)))
    assert request.kind == mux.NEW_SESSION
    assert request.request_id == 7
    assert request.detail == session
    assert request.descriptors == 3


def test_session_request_layout() -> None:
    data = _body(mux.session_request(mux.NewSession(1, b"id")))
    expected = struct.pack(">II", mux.NEW_SESSION, 1) + b"\0\0\0\0"  # reserved ""
    expected += struct.pack(">IIIII", 0, 0, 0, 0, mux.NO_ESCAPE)
    expected += b"\0\0\0\0" + b"\0\0\0\x02id"
    assert data == expected


@pytest.mark.parametrize(
    "forward",
    [
        mux.Forward(mux.FWD_LOCAL, "", 8080, "example.com", 80),
        mux.Forward(mux.FWD_REMOTE, "*", 0, "localhost", 22),
        mux.Forward(mux.FWD_DYNAMIC, "127.0.0.1", 1080),
        mux.Forward(mux.FWD_LOCAL, "/tmp/s", mux.PORT_STREAMLOCAL, "/run/x", mux.PORT_STREAMLOCAL),
        mux.Forward(mux.FWD_LOCAL, "", 8080, "example.com", 80, close=True),
    ],
)
def test_forward_round_trip(forward: mux.Forward) -> None:
    request = mux.parse_request(_body(mux.forward_request(3, forward)))
    assert request.kind == (mux.CLOSE_FWD if forward.close else mux.OPEN_FWD)
    assert request.detail == forward
    assert request.descriptors == 0


def test_stdio_forward_round_trip() -> None:
    request = mux.parse_request(_body(mux.stdio_forward_request(2, "db", 5432)))
    assert request.kind == mux.NEW_STDIO_FWD
    assert request.detail == mux.StdioForward("db", 5432)
    assert request.descriptors == 2


@pytest.mark.parametrize(
    "kind", [mux.ALIVE_CHECK, mux.TERMINATE, mux.STOP_LISTENING, mux.PROXY, 0x10000099]
)
def test_simple_requests(kind: int) -> None:
    request = mux.parse_request(_body(mux.simple_request(kind, 9)))
    assert (request.kind, request.request_id, request.detail) == (kind, 9, None)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (mux.ok_reply(4), mux.Reply(mux.S_OK, 4)),
        (mux.error_reply(mux.S_FAILURE, 4, "no"), mux.Reply(mux.S_FAILURE, 4, reason="no")),
        (mux.value_reply(mux.S_ALIVE, 4, 1234), mux.Reply(mux.S_ALIVE, 4, 1234)),
        (mux.value_reply(mux.S_EXIT_MESSAGE, 2, 3), mux.Reply(mux.S_EXIT_MESSAGE, 2, 3)),
        (mux.tty_failed(5), mux.Reply(mux.S_TTY_ALLOC_FAIL, 5)),
    ],
)
def test_replies(data: bytes, expected: mux.Reply) -> None:
    assert mux.parse_reply(_body(data)) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        struct.pack(">I", mux.NEW_SESSION),  # no request id
        struct.pack(">II", mux.NEW_SESSION, 1) + b"\0\0\0\0" + b"\0" * 7,  # cut short
        struct.pack(">III", mux.OPEN_FWD, 1, 9),  # unknown forward type
        struct.pack(">II", mux.ALIVE_CHECK, 1) + b"x",  # trailing bytes
        struct.pack(">II", mux.NEW_STDIO_FWD, 1) + b"\0\0\0\0" + b"\xff\xff\xff\xff",
    ],
)
def test_malformed_requests(body: bytes) -> None:
    with pytest.raises(FormatError):
        mux.parse_request(body)


def test_reader_splits_and_takes_descriptor_bytes() -> None:
    reader = mux.PacketReader()
    data = mux.hello() + mux.simple_request(mux.ALIVE_CHECK, 1) + b"\0\0\0"
    for byte in data[:-5]:
        reader.feed(bytes([byte]))
    assert reader.next() == _body(mux.hello())
    assert reader.next() is None  # the second message is not whole yet
    reader.feed(data[-5:])
    assert reader.next() == _body(mux.simple_request(mux.ALIVE_CHECK, 1))
    assert not reader.take_markers(4)
    assert reader.take_markers(3)
    assert reader.pending == 0


@pytest.mark.parametrize("length", [0, 3, mux.MAX_PACKET + 1])
def test_reader_refuses_bad_lengths(length: int) -> None:
    reader = mux.PacketReader()
    reader.feed(struct.pack(">I", length) + b"\0" * 8)
    with pytest.raises(FormatError):
        reader.next()

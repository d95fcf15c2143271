"""The SOCKS server side of -D, against hand-made client bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keytool.errors import FormatError
from keytool.socks import Handshake


def fed(*pieces: bytes) -> Handshake:
    handshake = Handshake()
    for piece in pieces:
        handshake.feed(piece)
    return handshake


def test_socks5_by_name_in_pieces_with_early_data() -> None:
    request = b"\x05\x01\x00\x03\x09localhost\x1f\x90early"
    handshake = fed(b"\x05", b"\x01\x00", *(request[i : i + 3] for i in range(0, len(request), 3)))
    assert handshake.data_to_send() == b"\x05\x00"
    assert handshake.request == ("localhost", 8080)
    assert handshake.rest == b"early"
    assert handshake.reply(True)[:2] == b"\x05\x00"
    assert handshake.reply(False)[:2] == b"\x05\x05"


def test_socks5_ipv6_and_socks4_forms() -> None:
    v6 = fed(b"\x05\x01\x00", b"\x05\x01\x00\x04" + bytes(15) + b"\x01" + b"\x00\x16")
    assert v6.request == ("::1", 22)
    v4 = fed(b"\x04\x01\x00\x50\x0a\x00\x00\x09user\x00")
    assert v4.request == ("10.0.0.9", 80)
    v4a = fed(b"\x04\x01\x00\x50\x00\x00\x00\x01\x00", b"example.com\x00")
    assert v4a.request == ("example.com", 80)
    assert v4a.reply(True)[:2] == b"\x00\x5a" and v4a.reply(False)[:2] == b"\x00\x5b"


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1",
        b"\x05\x01\x02",  # a password only
        b"\x05\x01\x00\x05\x02\x00\x01" + bytes(6),  # BIND
        b"\x05\x01\x00\x05\x01\x00\x09" + bytes(6),  # unknown address type
        b"\x04\x02\x00\x50" + bytes(4) + b"\x00",  # SOCKS4 BIND
        b"\x05\x01\x00\x05\x01\x00\x01" + bytes(6),  # port 0
        b"\x04\x01" + b"\x00" * 2000,  # too long
    ],
)
def test_refusals(data: bytes) -> None:
    with pytest.raises(FormatError):
        fed(data)


@given(st.lists(st.binary(max_size=40), max_size=6))
def test_any_bytes_end_in_a_request_or_a_format_error(pieces: list[bytes]) -> None:
    handshake = Handshake()
    with contextlib.suppress(FormatError):
        for piece in pieces:
            handshake.feed(piece)
        if handshake.request is not None:
            host, port = handshake.request
            assert host and 0 < port < 65536

"""X11 forwarding without I/O (keytool.x11): the display names as ssh reads them, xauth's
output, and the check of an X client's first packet (fake cookie in, real cookie out).
The packets are built here as the X11 protocol lays them out (byte order, version,
name and data lengths, each padded to four bytes); the interop tests run real X
clients through sshd."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keytool import x11
from keytool.transport import channels as ch
from keytool.wire import Reader, Writer


def setup_packet(name: bytes, data: bytes, order: bytes = b"l") -> bytes:
    fmt = "<" if order == b"l" else ">"
    head = order + b"\0" + struct.pack(f"{fmt}HHHH", 11, 0, len(name), len(data)) + b"\0\0"

    def pad(raw: bytes) -> bytes:
        return raw + b"\0" * (-len(raw) % 4)

    return head + pad(name) + pad(data)


COOKIES = x11.Cookies(x11.MIT_COOKIE, bytes(range(16)), bytes(range(100, 116)))


@pytest.mark.parametrize("order", [b"l", b"B"])
def test_fake_cookie_is_replaced_by_the_real_one(order: bytes) -> None:
    packet = setup_packet(x11.MIT_COOKIE.encode(), COOKIES.fake, order)
    extra = b"first request"
    verdict, out = x11.Setup(COOKIES).feed(packet + extra)
    assert verdict is x11.Verdict.ACCEPTED
    assert out == setup_packet(x11.MIT_COOKIE.encode(), COOKIES.real, order) + extra


def test_packet_in_pieces_is_held_until_whole() -> None:
    packet = setup_packet(x11.MIT_COOKIE.encode(), COOKIES.fake)
    setup = x11.Setup(COOKIES)
    for index in range(len(packet) - 1):
        assert setup.feed(packet[index : index + 1]) == (x11.Verdict.MORE, b"")
    verdict, out = setup.feed(packet[-1:])
    assert verdict is x11.Verdict.ACCEPTED
    assert COOKIES.real in out and COOKIES.fake not in out


@pytest.mark.parametrize(
    "packet",
    [
        setup_packet(x11.MIT_COOKIE.encode(), COOKIES.real),  # the real one: never sent
        setup_packet(x11.MIT_COOKIE.encode(), COOKIES.fake[:-1] + b"\0"),
        setup_packet(x11.MIT_COOKIE.encode(), COOKIES.fake[:8]),
        setup_packet(b"XDM-AUTHORIZATION-1", COOKIES.fake),
        setup_packet(b"", b""),  # no authorization at all
        b"X" + setup_packet(x11.MIT_COOKIE.encode(), COOKIES.fake)[1:],  # no byte order
    ],
)
def test_anything_but_the_fake_cookie_is_rejected(packet: bytes) -> None:
    setup = x11.Setup(COOKIES)
    assert setup.feed(packet) == (x11.Verdict.REJECTED, b"")
    assert setup.reason


def test_cookies_made_for_spoofing() -> None:
    made = x11.Cookies.spoofing("MIT-MAGIC-COOKIE-1", "00ff" * 8)
    assert made.real == bytes.fromhex("00ff" * 8)
    assert len(made.fake) == 16 and made.fake != made.real
    up = x11.Cookies.made_up()
    assert up.protocol == x11.MIT_COOKIE and len(up.real) == len(up.fake) == 16


def test_xauth_list_output() -> None:
    line = "vm/unix:73  MIT-MAGIC-COOKIE-1  9AE03C9573686a8e5dbcd34186e42919\nnext line\n"
    assert x11.parse_xauth_list(line) == ("MIT-MAGIC-COOKIE-1", "9ae03c9573686a8e5dbcd34186e42919")
    assert x11.parse_xauth_list("") is None
    assert x11.parse_xauth_list("vm/unix:73  MIT-MAGIC-COOKIE-1\n") is None
    assert x11.parse_xauth_list("vm/unix:73  MIT-MAGIC-COOKIE-1  xyz\n") is None


def test_display_names_as_ssh_reads_them() -> None:
    assert x11.display_valid(":0") and x11.display_valid("localhost:10.0")
    assert x11.display_valid("/private/tmp/com.apple.launchd.x/org.xquartz:0")
    assert not x11.display_valid("") and not x11.display_valid(":0;rm -rf ~")
    assert not x11.display_valid("host name:0")
    assert x11.xauth_display("localhost:10.0") == "unix:10.0"
    assert x11.xauth_display(":3") == ":3"
    assert [x11.screen_number(d) for d in (":0", ":0.2", "h:1.401", "h", ":1.x")] == [0, 2, 0, 0, 0]
    unix = [(socket.AF_UNIX, "/tmp/.X11-unix/X12")]
    assert x11.display_addresses(":12.0") == unix
    assert x11.display_addresses("unix:12") == unix
    assert x11.display_addresses("::12") == unix
    tcp = x11.display_addresses("127.0.0.1:3")
    assert tcp == [(socket.AF_INET, ("127.0.0.1", 6003))]
    with pytest.raises(x11.DisplayError, match="Could not find ':' in DISPLAY: nohost"):
        x11.display_addresses("nohost")
    with pytest.raises(x11.DisplayError, match="Could not parse display number"):
        x11.display_addresses(":x")
    with pytest.raises(x11.DisplayError, match="Could not parse display number"):
        x11.display_addresses("localhost:\u00b2")  # a digit to str.isdigit, not to ssh
    # past port 65535 (where ssh would wrap round to another port): no display
    for display in ("localhost:99999999999999999999", "localhost:59536"):
        with pytest.raises(x11.DisplayError, match="Could not parse display number"):
            x11.display_addresses(display)
    assert x11.display_addresses("127.0.0.1:59535") == [(socket.AF_INET, ("127.0.0.1", 65535))]


def test_cookies_never_shown() -> None:
    made = x11.Cookies.spoofing("MIT-MAGIC-COOKIE-1", "00ff" * 8)
    forwarding = x11.Forwarding(":0", made)
    for shown in (repr(made), repr(forwarding), str(forwarding)):
        assert made.real.hex() not in shown and made.fake.hex() not in shown
        assert repr(made.real) not in shown and repr(made.fake) not in shown


def test_x11_request_and_channels_on_the_wire() -> None:
    conn = ch.Connection()
    number = conn.open_session()
    conn.data_to_send()
    # the server confirms the session (its channel 7), then we ask for X11
    confirm = Writer().byte(ch.MSG_CHANNEL_OPEN_CONFIRMATION).uint32(number).uint32(7)
    conn.receive(confirm.uint32(1 << 20).uint32(32768).getvalue())
    # before asking: an "x11" open is refused, and told as unasked
    x11_open = Writer().byte(ch.MSG_CHANNEL_OPEN).string("x11").uint32(3).uint32(65536)
    x11_open.uint32(16384).string("127.0.0.1").uint32(40000)
    events = conn.receive(x11_open.getvalue())
    assert [type(e) for e in events] == [ch.UnaskedOpen] and events[0].kind == "x11"
    refusal = Reader(conn.data_to_send()[0])
    assert refusal.byte() == ch.MSG_CHANNEL_OPEN_FAILURE and refusal.uint32() == 3
    conn.request_x11(number, x11.MIT_COOKIE, "ab" * 16, 2)
    request = Reader(conn.data_to_send()[0])
    assert request.byte() == ch.MSG_CHANNEL_REQUEST and request.uint32() == 7
    assert request.ascii() == "x11-req" and request.boolean() is True  # a reply wanted
    assert request.boolean() is False  # not a single connection
    assert (request.ascii(), request.ascii(), request.uint32()) == (x11.MIT_COOKIE, "ab" * 16, 2)
    [opened] = conn.receive(x11_open.getvalue())
    assert isinstance(opened, ch.ChannelOpenRequest) and opened.x11 and not opened.agent
    assert (opened.originator, opened.originator_port) == ("127.0.0.1", 40000)


def _fed_in_pieces(data: bytes, piece: int) -> tuple[x11.Verdict, bytes]:
    """A new check fed ``data`` ``piece`` bytes at a time, until it decides."""
    setup = x11.Setup(COOKIES)
    verdict, out = x11.Verdict.MORE, b""
    for start in range(0, len(data), piece):
        verdict, out = setup.feed(data[start : start + piece])
        if verdict is not x11.Verdict.MORE:
            break
    return verdict, out


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=40))
def test_any_bytes_in_any_pieces_never_pass_without_the_fake_cookie(
    data: bytes, piece: int
) -> None:
    """Whatever an X client sends, in whatever pieces: held, rejected, or (only with
    our fake cookie in its place) accepted with the real one; never an exception."""
    verdict, out = _fed_in_pieces(data, piece)
    if verdict is x11.Verdict.ACCEPTED:
        assert COOKIES.fake in data and COOKIES.real in out  # it showed the fake cookie
    else:
        assert out == b""


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([b"l", b"B"]),
    st.sampled_from([x11.MIT_COOKIE.encode(), b"XDM-AUTHORIZATION-1", b"MIT-MAGIC-COOKIE-2"]),
    st.one_of(st.just(COOKIES.fake), st.binary(min_size=16, max_size=16), st.binary(max_size=40)),
    st.binary(max_size=30),
    st.integers(min_value=1, max_value=40),
)
def test_a_setup_packet_passes_exactly_when_it_shows_the_fake_cookie(
    order: bytes, name: bytes, data: bytes, after: bytes, piece: int
) -> None:
    """Well-formed first packets (either byte order, any protocol name and cookie) in
    any pieces: accepted, with the real cookie in the fake one's place and the rest
    passed as it came, exactly when they name MIT-MAGIC-COOKIE-1 with our fake cookie."""
    packet = setup_packet(name, data, order)
    sent = packet + after
    verdict, out = _fed_in_pieces(sent, piece)
    if name == x11.MIT_COOKIE.encode() and data == COOKIES.fake:
        assert verdict is x11.Verdict.ACCEPTED
        real = setup_packet(name, COOKIES.real, order)
        assert out == (real + after)[: len(out)] and out.startswith(real)
    else:
        assert verdict is x11.Verdict.REJECTED and out == b""


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_command_line_is_read_without_an_exception(line: str) -> None:
    from keytool import cmdline

    command = cmdline.parse(line, True)
    assert command.kind in (
        cmdline.NOTHING, cmdline.SAY, cmdline.LOCAL, cmdline.REMOTE, cmdline.CANCEL_LOCAL,
        cmdline.CANCEL_DYNAMIC, cmdline.CANCEL_REMOTE, cmdline.LOCAL_COMMAND,
    )  # fmt: skip

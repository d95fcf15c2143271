"""zlib@openssh.com in the packet layer: one stream per direction, started once the
user is in, kept across re-keys; a compressed packet that is not zlib, or inflates past
a packet's size, is a ProtocolError."""

from __future__ import annotations

import os
import zlib

import pytest

from keytool.errors import ProtocolError
from keytool.transport.ciphers import NoCipher
from keytool.transport.packets import DELAYED_ZLIB, MAX_PACKET, Incoming, Outgoing


def pair() -> tuple[Outgoing, Incoming]:
    out, into = Outgoing(), Incoming()
    out.compression = into.compression = DELAYED_ZLIB
    return out, into


def test_not_before_the_start() -> None:
    out, into = pair()
    wire = out.pack(b"\x05" + b"a" * 1000)
    assert len(wire) > 1000  # as it is: compression waits for the user to be in
    into.feed(wire)
    assert into.next_payload() == b"\x05" + b"a" * 1000


def test_round_trip_over_one_stream_and_a_rekey() -> None:
    out, into = pair()
    out.start_zlib()
    into.start_zlib()
    payloads = [b"\x5e" + os.urandom(50), b"\x5e" + b"z" * 100_000, b"\x5e" + b"z" * 100_000]
    sizes = []
    for index, payload in enumerate(payloads):
        if index == 2:  # new keys: the zlib streams go on
            out.new_keys(NoCipher(), None, reset_seq=False)
            into.new_keys(NoCipher(), None, reset_seq=False)
        wire = out.pack(payload)
        sizes.append(len(wire))
        into.feed(wire)
        assert into.next_payload() == payload
    assert sizes[1] < 1000 and sizes[2] <= sizes[1]  # compressed, the stream going on


def test_garbage_and_a_bomb_are_protocol_errors() -> None:
    for body in (b"not zlib at all", zlib.compress(b"\0" * (MAX_PACKET + 10))):
        out, into = Outgoing(), Incoming()  # out plain, so body goes as it is
        into.compression = DELAYED_ZLIB
        into.start_zlib()
        into.feed(out.pack(body))
        with pytest.raises(ProtocolError):
            into.next_payload()

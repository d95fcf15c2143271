"""Packet framing and every cipher/MAC pairing: round trips, tampering, limits, fuzzing."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keytool.errors import KeytoolError, ProtocolError
from keytool.transport import config
from keytool.transport.ciphers import CIPHERS, IMPLICIT_MAC, MACS, cipher_spec, make_cipher
from keytool.transport.packets import MAX_PACKET, Incoming, Outgoing

PAIRS = [(c, IMPLICIT_MAC) for c, s in CIPHERS.items() if s.aead] + [
    (c, m) for c, s in CIPHERS.items() if not s.aead for m in MACS
]


def pair(cipher: str, mac: str) -> tuple[Outgoing, Incoming]:
    spec = cipher_spec(cipher)
    key, iv = os.urandom(spec.key_size), os.urandom(spec.iv_size)
    mac_key = b"" if spec.aead else os.urandom(MACS[mac].key_size)
    out, inc = Outgoing(), Incoming()
    out.new_keys(make_cipher(cipher, key, iv, mac, mac_key), None, reset_seq=False)
    inc.new_keys(make_cipher(cipher, key, iv, mac, mac_key), None, reset_seq=False)
    return out, inc


def test_config_names_are_all_in_the_tables() -> None:
    from keytool.transport.kex import KEX_METHODS

    assert set(config.DEFAULT_CIPHERS) == set(CIPHERS)
    assert set(config.DEFAULT_MACS) == set(MACS)
    assert set(config.DEFAULT_KEX) == set(KEX_METHODS)


@pytest.mark.parametrize(("cipher", "mac"), PAIRS)
def test_round_trip_in_chunks(cipher: str, mac: str) -> None:
    out, inc = pair(cipher, mac)
    payloads = [b"\x5e" + os.urandom(n) for n in (0, 1, 15, 16, 17, 100, 32768, 5)]
    wire = b"".join(out.pack(p) for p in payloads)
    got = []
    for start in range(0, len(wire), 7001):  # odd chunking splits heads and tags
        inc.feed(wire[start : start + 7001])
        while (payload := inc.next_payload()) is not None:
            got.append(payload)
    assert got == payloads
    assert inc.seq == out.seq == len(payloads)
    # RFC 4253 §6: the encrypted part is a multiple of the block size
    block = cipher_spec(cipher).block_size
    single = out.pack(b"\x5e")
    aad = out.cipher.aad_size
    assert (len(single) - out.cipher.tag_size - aad) % block == 0


@pytest.mark.parametrize(("cipher", "mac"), PAIRS)
def test_any_flipped_bit_is_a_mac_error(cipher: str, mac: str) -> None:
    wire = bytearray(pair(cipher, mac)[0].pack(b"\x5e" + bytes(40)))
    for position in (len(wire) - 1, len(wire) // 2, 5):
        out, inc = pair(cipher, mac)
        wire = bytearray(out.pack(b"\x5e" + bytes(40)))
        wire[position] ^= 0x01
        inc.feed(bytes(wire))
        with pytest.raises(ProtocolError, match=r"MAC|packet length|padding"):
            inc.next_payload()


def test_wrong_sequence_number_fails_authentication() -> None:
    out, inc = pair("aes256-ctr", "hmac-sha2-512-etm@openssh.com")
    out.seq = 7  # the receiver expects 0: the tag no longer verifies
    inc.feed(out.pack(b"\x5e hello"))
    with pytest.raises(ProtocolError, match="MAC"):
        inc.next_payload()


def test_plaintext_length_limits() -> None:
    inc = Incoming()
    inc.feed(struct.pack(">I", MAX_PACKET + 8) + bytes(16))
    with pytest.raises(ProtocolError, match="bad packet length"):
        inc.next_payload()
    inc = Incoming()
    inc.feed(struct.pack(">IB", 13, 4) + bytes(13))  # 17 bytes: not a multiple of 8
    with pytest.raises(ProtocolError, match="block size"):
        inc.next_payload()
    inc = Incoming()
    inc.feed(struct.pack(">IB", 12, 2) + bytes(11))  # padding below 4
    with pytest.raises(ProtocolError, match="padding"):
        inc.next_payload()


def test_rekey_counters() -> None:
    out = Outgoing()
    out.new_keys(out.cipher, 1000, reset_seq=True)
    while not out.needs_rekey:
        out.pack(b"\x5e" + bytes(100))
    assert 1000 <= out.bytes_since_kex < 1200


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(PAIRS))
def test_decoder_only_raises_keytool_errors(data: bytes, algorithms: tuple[str, str]) -> None:
    for inc in (Incoming(), pair(*algorithms)[1]):
        inc.feed(data)
        try:
            while inc.next_payload() is not None:
                pass
        except KeytoolError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.integers(0, 10_000), st.integers(0, 255))
def test_mutated_packets_only_raise_keytool_errors(payload: bytes, where: int, value: int) -> None:
    out, inc = pair("aes128-ctr", "hmac-sha2-256")
    wire = bytearray(out.pack(payload))
    wire[where % len(wire)] = value
    inc.feed(bytes(wire))
    try:
        result = inc.next_payload()
    except KeytoolError:
        return
    assert result in (None, payload)

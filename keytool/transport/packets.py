"""The binary packet protocol (RFC 4253 §6): framing, sequence numbers, and the state of
each direction (cipher, counters toward the RFC 4344 §3 re-key limits).

Outgoing.pack(payload) -> wire bytes; Incoming.feed(bytes) then Incoming.next_payload()
until it returns None. The ciphers themselves are in ciphers.py.
"""

from __future__ import annotations

import os
import struct
import zlib

from keytool.errors import ProtocolError
from keytool.transport.ciphers import NoCipher, PacketCipher

_HEAD = struct.Struct(">IB")

#: RFC 4253 §6.1 asks for at least 35000; OpenSSH refuses packets over 256 KiB
MAX_PACKET = 256 * 1024

#: RFC 4253 §6: at least four bytes of padding
MIN_PADDING = 4

#: "zlib@openssh.com" (PROTOCOL §2.2): zlib, from the user authentication's success on
DELAYED_ZLIB = "zlib@openssh.com"
#: OpenSSH's compression level
_ZLIB_LEVEL = 6

#: RFC 4344 §3.1: re-key well before the 32-bit sequence number could wrap
REKEY_PACKETS = 1 << 31

_SEQ_MASK = 0xFFFFFFFF


class Direction:
    """Cipher, sequence number and traffic counted since the last NEWKEYS."""

    __slots__ = (
        "bytes_since_kex",
        "cipher",
        "compression",
        "packets_since_kex",
        "rekey_bytes",
        "seq",
        "zlib_started",
    )

    def __init__(self) -> None:
        self.cipher: PacketCipher = NoCipher()
        #: negotiated for this direction ("none" or DELAYED_ZLIB); once the user is
        #: authenticated, zlib runs (``zlib_started``), a fresh stream at each NEWKEYS
        #: after that (``restart_zlib``), as OpenSSH's ssh_set_newkeys and dropbear
        self.compression = "none"
        self.zlib_started = False
        self.seq = 0
        self.bytes_since_kex = 0
        self.packets_since_kex = 0
        #: re-key when this many bytes have gone through this direction's keys
        self.rekey_bytes: int | None = None

    def new_keys(self, cipher: PacketCipher, rekey_bytes: int | None, reset_seq: bool) -> None:
        """Switch to freshly derived keys; strict kex (PROTOCOL §1.10) resets the
        sequence number at every NEWKEYS."""
        self.cipher = cipher
        self.rekey_bytes = rekey_bytes
        self.bytes_since_kex = 0
        self.packets_since_kex = 0
        if reset_seq:
            self.seq = 0

    @property
    def needs_rekey(self) -> bool:
        """The limit is reached: new keys before anything else goes under these."""
        return self.packets_since_kex >= REKEY_PACKETS or (
            self.rekey_bytes is not None and self.bytes_since_kex >= self.rekey_bytes
        )


class Outgoing(Direction):
    """Packs payloads into wire packets, client to server."""

    __slots__ = ("_deflate",)

    def __init__(self) -> None:
        super().__init__()
        self._deflate: zlib._Compress | None = None

    def start_zlib(self) -> None:
        """Compress from the next payload on (the user is authenticated)."""
        if self.compression == DELAYED_ZLIB and self._deflate is None:
            self._deflate = zlib.compressobj(_ZLIB_LEVEL)
            self.zlib_started = True

    def restart_zlib(self) -> None:
        """New keys once the user is in: the stream starts anew (or stops, if the
        key exchange settled on none)."""
        self._deflate = zlib.compressobj(_ZLIB_LEVEL) if self.compression == DELAYED_ZLIB else None
        self.zlib_started = self._deflate is not None

    def would_pass_limit(self, size: int) -> bool:
        """Whether a packet of a ``size``-byte payload would take these keys past their
        limit, as ssh asks before every packet it sends (ssh_packet_need_rekeying): it
        then re-keys first. The first packet under new keys always goes, so that a limit
        smaller than a packet still moves data (ssh lets one packet through too)."""
        packets = self.packets_since_kex
        if not packets:
            return False
        limit = self.rekey_bytes
        if limit is None:
            return packets >= REKEY_PACKETS
        if packets >= REKEY_PACKETS or self.bytes_since_kex >= limit:
            return True
        # the packet as pack() makes it (before compression, as ssh counts it)
        wire = 5 + size + self._padding(size) + self.cipher.tag_size
        return self.bytes_since_kex + wire > limit

    def _padding(self, size: int) -> int:
        """RFC 4253 §6: length || padding_length || payload || padding is a multiple of
        the block size (without the length field when it is sent in the clear), with at
        least MIN_PADDING bytes of padding."""
        cipher = self.cipher
        block = cipher.block_size
        padding = block - (5 + size - cipher.aad_size) % block
        return padding + block if padding < MIN_PADDING else padding

    def pack(self, payload: bytes) -> bytes:
        if self._deflate is not None:
            # as OpenSSH: one stream, each payload ending in a partial flush
            payload = self._deflate.compress(payload) + self._deflate.flush(zlib.Z_PARTIAL_FLUSH)
        padding = self._padding(len(payload))
        packet = _HEAD.pack(1 + len(payload) + padding, padding) + payload + os.urandom(padding)
        wire = self.cipher.seal(self.seq, packet)
        self.seq = (self.seq + 1) & _SEQ_MASK
        self.packets_since_kex += 1
        self.bytes_since_kex += len(wire)
        return wire


class Incoming(Direction):
    """Buffers bytes from the server and takes whole packets out, server to client.

    Packets are read in place from the buffer (``_start`` marks the first unread
    byte); the consumed front is dropped once per ``feed``, not once per packet.
    """

    __slots__ = ("_buffer", "_inflate", "_length", "_start")

    def __init__(self) -> None:
        super().__init__()
        self._inflate: zlib._Decompress | None = None
        self._buffer = bytearray()
        self._start = 0
        self._length: int | None = None  # of the packet whose head is decrypted

    def feed(self, data: bytes | bytearray) -> None:
        if self._start:
            del self._buffer[: self._start]
            self._start = 0
        self._buffer += data

    def start_zlib(self) -> None:
        """Decompress from the next packet on (the server said the user is in)."""
        if self.compression == DELAYED_ZLIB and self._inflate is None:
            self._inflate = zlib.decompressobj()
            self.zlib_started = True

    def restart_zlib(self) -> None:
        """New keys once the user is in: the stream starts anew, as the server's."""
        self._inflate = zlib.decompressobj() if self.compression == DELAYED_ZLIB else None
        self.zlib_started = self._inflate is not None

    @property
    def buffered(self) -> int:
        return len(self._buffer) - self._start

    def next_payload(self) -> bytes | None:
        """The payload of the next whole packet, or None until more bytes arrive."""
        buffer = self._buffer
        start = self._start
        available = len(buffer) - start
        cipher = self.cipher
        length = self._length
        if length is None:
            head_size = cipher.head_size
            if available < head_size:
                return None
            length = cipher.packet_length(self.seq, bytes(buffer[start : start + head_size]))
            self._check_length(length, cipher)
            self._length = length
        total = 4 + length + cipher.tag_size
        if available < total:
            return None
        with memoryview(buffer) as view, view[start : start + total] as packet:
            body = cipher.open(self.seq, packet)
        self._start = start + total
        self._length = None
        padding = body[0]
        if padding < MIN_PADDING or padding >= length:
            raise ProtocolError(f"bad packet from the server: {padding} bytes of padding")
        self.seq = (self.seq + 1) & _SEQ_MASK
        self.packets_since_kex += 1
        self.bytes_since_kex += total
        if self._inflate is not None:
            return self._decompress(body[1 : length - padding])
        return bytes(body[1 : length - padding])

    def _decompress(self, data: bytes | bytearray | memoryview) -> bytes:
        inflate = self._inflate
        assert inflate is not None
        try:
            # a payload may not inflate beyond a packet's size (no decompression bomb)
            payload = inflate.decompress(data, MAX_PACKET + 1)
        except zlib.error as exc:
            raise ProtocolError(f"bad compressed packet from the server: {exc}") from None
        if len(payload) > MAX_PACKET or inflate.unconsumed_tail:
            raise ProtocolError("a compressed packet from the server inflates past 256 KiB")
        return payload

    @staticmethod
    def _check_length(length: int, cipher: PacketCipher) -> None:
        if length > MAX_PACKET or length < MIN_PADDING + 1:
            raise ProtocolError(
                f"bad packet length {length} from the server (corrupt data, or not an SSH server)"
            )
        if (length + 4 - cipher.aad_size) % cipher.block_size:
            raise ProtocolError(
                f"bad packet length {length} from the server:"
                f" not a multiple of the cipher block size {cipher.block_size}"
            )

"""The cipher and MAC table, and the per-direction packet ciphers built from it.

A PacketCipher turns one plaintext binary packet (RFC 4253 §6: uint32 length, byte
padding length, payload, padding) into its bytes on the wire and back. The framing
around it (padding, sequence numbers, buffering) lives in packets.py.

Every authentication tag is checked in constant time: AEAD tags by `cryptography`
(AESGCM.decrypt, Poly1305.verify_tag), HMACs with hmac.compare_digest.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.poly1305 import Poly1305

from keytool.errors import NegotiationError, ProtocolError
from keytool.record import Record, init

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_GCM_NONCE = struct.Struct(">IQ")


def bad_mac() -> ProtocolError:
    # ssh(1) says "Corrupted MAC on input."; say which check failed, never any bytes
    return ProtocolError("corrupted MAC on input: a packet from the server failed authentication")


class PacketCipher:
    """Seals and opens whole binary packets for one direction.

    ``head_size`` bytes of a packet must be in hand to learn its length;
    ``aad_size`` is 4 when the length field is sent in the clear (AEAD and EtM), in
    which case it is left out of the padding alignment (PROTOCOL §1.2, RFC 5647 §7.2).
    """

    __slots__ = ()

    block_size = 8
    aad_size = 0
    tag_size = 0
    head_size = 4

    def seal(self, seq: int, packet: bytes) -> bytes:
        """The wire form of one plaintext packet (length field first)."""
        return packet

    def packet_length(self, seq: int, head: bytes) -> int:
        """The packet_length field, from the first ``head_size`` bytes on the wire."""
        length: int = _U32.unpack_from(head)[0]
        return length

    def open(self, seq: int, data: bytes | memoryview) -> bytes:
        """Authenticate and decrypt one whole wire packet (length field and tag
        included); returns padding length, payload and padding. ``data`` may be a
        view into the receive buffer: the result never refers to it."""
        return bytes(data[4:])


class NoCipher(PacketCipher):
    """Before the first NEWKEYS (RFC 4253 §6: block size 8, no MAC)."""

    __slots__ = ()


class AesGcm(PacketCipher):
    """aes128-gcm@openssh.com / aes256-gcm@openssh.com (RFC 5647, PROTOCOL §1.6).

    The 12-byte nonce is a 4-byte fixed field and an 8-byte invocation counter, both
    from the derived IV; the counter goes up by one per packet (RFC 5647 §7.1).
    The packet length is the additional authenticated data, sent in the clear.
    """

    __slots__ = ("_aead", "_counter", "_fixed")

    block_size = 16
    aad_size = 4
    tag_size = 16

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._aead = AESGCM(key)
        self._fixed: int = _U32.unpack_from(iv)[0]
        self._counter: int = _U64.unpack_from(iv, 4)[0]

    def _nonce(self) -> bytes:
        nonce = _GCM_NONCE.pack(self._fixed, self._counter)
        self._counter = (self._counter + 1) & 0xFFFFFFFFFFFFFFFF
        return nonce

    def seal(self, seq: int, packet: bytes) -> bytes:
        head = packet[:4]
        return head + self._aead.encrypt(self._nonce(), packet[4:], head)

    def open(self, seq: int, data: bytes | memoryview) -> bytes:
        view = memoryview(data)
        try:
            return self._aead.decrypt(self._nonce(), view[4:], view[:4])
        except InvalidTag:
            raise bad_mac() from None


_BLOCK0 = bytes(64)  # one ChaCha20 block of zeros: its keystream, in the clear


class ChaChaPoly(PacketCipher):
    """chacha20-poly1305@openssh.com (PROTOCOL.chacha20poly1305).

    The 64-byte key is K_2 (main, first 32 bytes) then K_1 (header, last 32). The
    nonce is the sequence number as uint64; block counter 0 of K_2 yields the
    Poly1305 key, the payload starts at block counter 1. `cryptography`'s ChaCha20
    takes a 16-byte IV: the 64-bit little-endian block counter, then the nonce.
    """

    __slots__ = ("_header", "_main")

    block_size = 8
    aad_size = 4
    tag_size = 16

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._main = key[:32]
        self._header = key[32:64]

    @staticmethod
    def _stream(key: bytes, counter: int, seq: int, data: bytes | memoryview) -> bytes:
        iv = counter.to_bytes(8, "little") + _U64.pack(seq)
        return Cipher(algorithms.ChaCha20(key, iv), None).encryptor().update(data)

    def seal(self, seq: int, packet: bytes) -> bytes:
        head = self._stream(self._header, 0, seq, packet[:4])
        # one keystream from block 0: its first 32 bytes are the Poly1305 key, the
        # payload starts at block 1 (byte 64)
        stream = self._stream(self._main, 0, seq, _BLOCK0 + packet[4:])
        sealed = head + stream[64:]
        return sealed + Poly1305.generate_tag(stream[:32], sealed)

    def packet_length(self, seq: int, head: bytes) -> int:
        length: int = _U32.unpack(self._stream(self._header, 0, seq, head[:4]))[0]
        return length

    def open(self, seq: int, data: bytes | memoryview) -> bytes:
        view = memoryview(data)
        # as in seal: one keystream gives the Poly1305 key and the plaintext, which is
        # returned only once the tag is verified
        stream = self._stream(self._main, 0, seq, _BLOCK0 + view[4:-16])
        try:
            Poly1305.verify_tag(stream[:32], view[:-16], bytes(view[-16:]))
        except InvalidSignature:
            raise bad_mac() from None
        return stream[64:]


class MacSpec(Record):
    __slots__ = ("digest", "etm", "key_size", "size")
    key_size: int
    digest: str  # hashlib name
    size: int
    etm: bool  # encrypt-then-MAC (PROTOCOL §1.5): the MAC covers the ciphertext

    def __init__(self, key_size: int, digest: str, size: int, etm: bool) -> None:
        init(self, key_size=key_size, digest=digest, size=size, etm=etm)


MACS: dict[str, MacSpec] = {
    # RFC 6668 §2; the -etm variants from PROTOCOL §1.5
    "hmac-sha2-256-etm@openssh.com": MacSpec(32, "sha256", 32, True),
    "hmac-sha2-512-etm@openssh.com": MacSpec(64, "sha512", 64, True),
    "hmac-sha2-256": MacSpec(32, "sha256", 32, False),
    "hmac-sha2-512": MacSpec(64, "sha512", 64, False),
}


class AesCtrHmac(PacketCipher):
    """aes128/192/256-ctr (RFC 4344 §4) with an HMAC (RFC 4253 §6.4, RFC 6668).

    The CTR keystream runs on across packets, so one context serves the direction.
    RFC 4253 §6.4: mac = MAC(key, uint32 sequence_number || unencrypted_packet);
    with EtM (PROTOCOL §1.5) the MAC covers the length in the clear and the
    ciphertext instead, and is checked before anything is decrypted.
    """

    __slots__ = ("_ctr", "_etm", "_first", "_mac", "aad_size", "head_size", "tag_size")

    block_size = 16

    def __init__(self, key: bytes, iv: bytes, mac: MacSpec, mac_key: bytes) -> None:
        self._ctr = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
        self._mac = hmac.new(mac_key, digestmod=mac.digest)
        self._etm = mac.etm
        self._first = b""
        self.tag_size = mac.size
        self.aad_size = 4 if mac.etm else 0
        self.head_size = 4 if mac.etm else 16

    def _tag(self, seq: int, data: bytes | memoryview) -> bytes:
        mac = self._mac.copy()
        mac.update(_U32.pack(seq))
        mac.update(data)
        return mac.digest()

    def seal(self, seq: int, packet: bytes) -> bytes:
        if self._etm:
            sealed = packet[:4] + self._ctr.update(packet[4:])
            return sealed + self._tag(seq, sealed)
        return self._ctr.update(packet) + self._tag(seq, packet)

    def packet_length(self, seq: int, head: bytes) -> int:
        if self._etm:
            return PacketCipher.packet_length(self, seq, head)
        # the length is inside the first encrypted block: decrypt it once and keep it
        self._first = self._ctr.update(head[:16])
        length: int = _U32.unpack_from(self._first)[0]
        return length

    def open(self, seq: int, data: bytes | memoryview) -> bytes:
        view = memoryview(data)
        tag_size = self.tag_size
        if self._etm:
            if not hmac.compare_digest(self._tag(seq, view[:-tag_size]), view[-tag_size:]):
                raise bad_mac()
            return self._ctr.update(view[4:-tag_size])
        plain = self._first + self._ctr.update(view[16:-tag_size])
        if not hmac.compare_digest(self._tag(seq, plain), view[-tag_size:]):
            raise bad_mac()
        return plain[4:]


class CipherSpec(Record):
    __slots__ = ("aead", "block_size", "iv_size", "key_size", "make", "rekey_bytes")
    key_size: int
    iv_size: int
    block_size: int
    aead: bool  # True: the cipher authenticates, no MAC is negotiated (RFC 5647 §5.1)
    #: RFC 4344 §3.2: re-key before 2**(L/4) blocks of an L-bit block cipher; for the
    #: 64-bit-block chacha20 framing OpenSSH's 2**30 bytes
    rekey_bytes: int
    make: Callable[[bytes, bytes], PacketCipher] | None  # None: needs a MAC (CTR)

    def __init__(
        self,
        key_size: int,
        iv_size: int,
        block_size: int,
        aead: bool,
        rekey_bytes: int,
        make: Callable[[bytes, bytes], PacketCipher] | None,
    ) -> None:
        init(
            self,
            key_size=key_size,
            iv_size=iv_size,
            block_size=block_size,
            aead=aead,
            rekey_bytes=rekey_bytes,
            make=make,
        )


_AES_REKEY = (1 << 32) * 16

CIPHERS: dict[str, CipherSpec] = {
    "chacha20-poly1305@openssh.com": CipherSpec(64, 0, 8, True, 1 << 30, ChaChaPoly),
    "aes256-gcm@openssh.com": CipherSpec(32, 12, 16, True, _AES_REKEY, AesGcm),
    "aes128-gcm@openssh.com": CipherSpec(16, 12, 16, True, _AES_REKEY, AesGcm),
    "aes256-ctr": CipherSpec(32, 16, 16, False, _AES_REKEY, None),
    "aes192-ctr": CipherSpec(24, 16, 16, False, _AES_REKEY, None),
    "aes128-ctr": CipherSpec(16, 16, 16, False, _AES_REKEY, None),
}

#: shown in place of a MAC name when the cipher is an AEAD
IMPLICIT_MAC = "<implicit>"


def cipher_spec(name: str) -> CipherSpec:
    spec = CIPHERS.get(name)
    if spec is None:
        raise NegotiationError(f"unsupported cipher {name[:64]}")
    return spec


def mac_spec(name: str) -> MacSpec:
    spec = MACS.get(name)
    if spec is None:
        raise NegotiationError(f"unsupported MAC {name[:64]}")
    return spec


def make_cipher(
    cipher: str, key: bytes, iv: bytes, mac: str = IMPLICIT_MAC, mac_key: bytes = b""
) -> PacketCipher:
    """A PacketCipher for one direction from negotiated names and derived keys."""
    spec = cipher_spec(cipher)
    if len(key) != spec.key_size or len(iv) != spec.iv_size:
        raise ValueError("key or IV of the wrong size")
    if spec.make is not None:
        return spec.make(key, iv)
    return AesCtrHmac(key, iv, mac_spec(mac), mac_key)

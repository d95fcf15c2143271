"""A scripted SSH server side for sans-IO tests of ClientTransport: curve25519-sha256 with
an Ed25519 host key, strict kex and EXT_INFO optional, and hooks to misbehave.

Framing reuses keytool's packets module (the ciphers are proven against real servers
in tests/interop); the server's kex math uses `cryptography` directly.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import x25519

from keytool.keys.ed25519 import Ed25519Private
from keytool.transport.ciphers import PacketCipher, cipher_spec, mac_spec, make_cipher
from keytool.transport.handshake import ClientTransport, kexinit_payload
from keytool.transport.kex import derive_key
from keytool.transport.packets import Incoming, Outgoing
from keytool.wire import Reader, Writer, string

SERVER_VERSION = b"SSH-2.0-FakeServer_1.0"


class FakeServer:
    def __init__(
        self,
        *,
        strict: bool = True,
        ext_info: bool = True,
        banner: tuple[bytes, ...] = (),
        ciphers: tuple[str, ...] = ("aes128-gcm@openssh.com", "aes128-ctr"),
        macs: tuple[str, ...] = ("hmac-sha2-256-etm@openssh.com",),
        host_key: Ed25519Private | None = None,
        before_kexinit: tuple[bytes, ...] = (),
        bad_signature: bool = False,
    ) -> None:
        self.bad_signature = bad_signature
        self.strict = strict
        self.ext_info = ext_info
        self.ciphers = ciphers
        self.macs = macs
        self.host_key = host_key or Ed25519Private.generate()
        self.out = Outgoing()
        self.inc = Incoming()
        self.client_version = b""
        self._version_buffer = bytearray()
        self.server_kexinit = b""
        self.client_kexinit = b""
        self.session_id: bytes | None = None
        self.received: list[bytes] = []  # client payloads past the handshake
        self.outbox: list[bytes] = [*(line + b"\r\n" for line in banner)]
        self.outbox.append(SERVER_VERSION + b"\r\n")
        for payload in before_kexinit:
            self.send(payload)
        self.kex_count = 0
        self.disconnect: tuple[int, str] | None = None
        self.send_kexinit()

    # sending

    def send(self, payload: bytes) -> None:
        self.outbox.append(self.out.pack(payload))

    def data(self) -> bytes:
        data = b"".join(self.outbox)
        self.outbox.clear()
        return data

    def send_kexinit(self) -> None:
        kex = ["curve25519-sha256"]
        if self.kex_count == 0 and self.strict:
            kex.append("kex-strict-s-v00@openssh.com")
        if self.kex_count == 0:
            kex.append("ext-info-s")
        payload = kexinit_payload(kex, ["ssh-ed25519"], self.ciphers, self.macs)
        self.server_kexinit = payload
        self._kexinit_sent = True
        self.send(payload)

    # receiving

    def feed(self, data: bytes) -> None:
        if not self.client_version:
            self._version_buffer += data
            end = self._version_buffer.find(b"\r\n")
            if end < 0:
                return
            self.client_version = bytes(self._version_buffer[:end])
            data = bytes(self._version_buffer[end + 2 :])
        self.inc.feed(data)
        while (payload := self.inc.next_payload()) is not None:
            self._handle(payload)

    def _handle(self, payload: bytes) -> None:
        number = payload[0]
        if number == 20:
            self.client_kexinit = payload
            if not self._kexinit_sent:
                self.send_kexinit()  # the client starts a re-key
            self._negotiate(payload)
        elif number == 30:
            self._reply(payload)
        elif number == 21:
            assert self._keys is not None
            self.inc.new_keys(self._keys[1], None, reset_seq=self.strict)
        elif number == 5:
            self.send(Writer().byte(6).string(b"ssh-userauth").getvalue())
        elif number == 1:
            r = Reader(payload)
            r.byte()
            self.disconnect = (r.uint32(), r.text())
        else:
            self.received.append(payload)

    def _negotiate(self, client_kexinit: bytes) -> None:
        r = Reader(client_kexinit)
        r.byte()
        r.raw(16)
        lists = [r.name_list() for _ in range(10)]
        self.cipher = next((c for c in lists[2] if c in self.ciphers), "")
        self.mac = next((m for m in lists[4] if m in self.macs), "")

    def _reply(self, payload: bytes) -> None:
        r = Reader(payload)
        r.byte()
        client_public = r.string()
        private = x25519.X25519PrivateKey.generate()
        server_public = private.public_key().public_bytes_raw()
        shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(client_public))
        secret = Writer().mpint(int.from_bytes(shared, "big")).getvalue()
        host_blob = self.host_key.public.to_wire()
        exchange_hash = hashlib.sha256(
            string(self.client_version)
            + string(SERVER_VERSION)
            + string(self.client_kexinit)
            + string(self.server_kexinit)
            + string(host_blob)
            + string(client_public)
            + string(server_public)
            + secret
        ).digest()
        if self.session_id is None:
            self.session_id = exchange_hash
        signature = self.host_key.sign(exchange_hash)
        if self.bad_signature:
            signature = signature[:-1] + bytes((signature[-1] ^ 1,))
        self.send(
            Writer().byte(31).string(host_blob).string(server_public).string(signature).getvalue()
        )
        self.send(b"\x15")
        session_id = self.session_id

        def key(letter: bytes, size: int) -> bytes:
            return derive_key("sha256", secret, exchange_hash, session_id, letter, size)

        spec = cipher_spec(self.cipher)
        mac_size = 0 if spec.aead else mac_spec(self.mac).key_size
        mac = self.mac if not spec.aead else "<implicit>"
        to_client = make_cipher(
            self.cipher, key(b"D", spec.key_size), key(b"B", spec.iv_size), mac, key(b"F", mac_size)
        )
        from_client = make_cipher(
            self.cipher, key(b"C", spec.key_size), key(b"A", spec.iv_size), mac, key(b"E", mac_size)
        )
        self._keys = (to_client, from_client)
        self.out.new_keys(to_client, None, reset_seq=self.strict)
        if self.ext_info and self.kex_count == 0:
            ext = (
                Writer()
                .byte(7)
                .uint32(2)
                .string(b"server-sig-algs")
                .string(b"ssh-ed25519,rsa-sha2-256")
                .string(b"publickey-hostbound@openssh.com")
                .string(b"0")
                .getvalue()
            )
            self.send(ext)
        self.kex_count += 1
        self._kexinit_sent = False

    _keys: tuple[PacketCipher, PacketCipher] | None = None
    _kexinit_sent = False


def pump(client: ClientTransport, server: FakeServer, rounds: int = 20) -> list[object]:
    """Move bytes both ways, accepting the host key, until both sides go quiet."""
    events: list[object] = []
    for _ in range(rounds):
        to_server = client.data_to_send()
        if to_server:
            server.feed(to_server)
        to_client = server.data()
        if not to_server and not to_client:
            break
        if to_client:
            new = client.receive_data(to_client)
            events += new
            for event in new:
                if type(event).__name__ == "HostKeyToCheck":
                    events += client.accept_host_key()
    return events

"""A small SSH server of raw packets (test-only), for what no real server can be made
to send: a KEXINIT with first_kex_packet_follows set, and the key exchange packet it
guessed. It speaks just enough for ssh, ssh-keyscan and keytool to log in and run a
command: curve25519-sha256 or mlkem768x25519-sha256, an Ed25519 host key, aes128-ctr
with hmac-sha2-256, strict kex, anybody let in by the "none" method, one exec that
prints ``OUTPUT`` and exits 0. A plan can also make it send packets in the clear right
after its KEXINIT (``early``), or another host key blob than its own (``host_key_sent``,
e.g. a certificate of its key) under the algorithm negotiated.

Every connection runs in a thread of its own; ``RawServer.seen`` keeps, for each one,
the client's first key exchange method and host key algorithm."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from keytool.wire import Reader, Writer, string

OUTPUT = b"the command ran\n"
VERSION = b"SSH-2.0-RawTestServer_1.0"
KEX_STRICT_S = "kex-strict-s-v00@openssh.com"
KEX_STRICT_C = "kex-strict-c-v00@openssh.com"

MSG_DISCONNECT, MSG_SERVICE_REQUEST, MSG_SERVICE_ACCEPT = 1, 5, 6
MSG_KEXINIT, MSG_NEWKEYS, MSG_KEX_ECDH_INIT, MSG_KEX_ECDH_REPLY = 20, 21, 30, 31
MSG_USERAUTH_REQUEST, MSG_USERAUTH_SUCCESS = 50, 52
MSG_GLOBAL_REQUEST, MSG_REQUEST_FAILURE = 80, 82
MSG_CHANNEL_OPEN, MSG_CHANNEL_OPEN_CONFIRMATION = 90, 91
MSG_CHANNEL_DATA, MSG_CHANNEL_EOF, MSG_CHANNEL_CLOSE = 94, 96, 97
MSG_CHANNEL_REQUEST, MSG_CHANNEL_SUCCESS, MSG_CHANNEL_FAILURE = 98, 99, 100

#: a key exchange packet no client can take as a reply: what a server that guessed
#: sends right after its KEXINIT
JUNK_GUESS = bytes((MSG_KEX_ECDH_REPLY,)) + b"garbage-guess"


@dataclass
class Plan:
    """What the server offers and sends. ``kex`` and ``host_key`` are its lists (the
    client's first key exchange method goes first when ``lead_with_clients``);
    ``guess`` is the packet sent right after the KEXINIT when ``follows`` is set (None:
    the server's reply is the guessed packet). ``early``: payloads sent unencrypted
    right after the KEXINIT (and the guess), before any key exchange packet;
    ``host_key_sent``: given the server's host key blob, the blob its key exchange
    reply carries instead (the exchange hash covers that one; the signature is still
    made by the server's Ed25519 key)."""

    kex: tuple[str, ...] = ("curve25519-sha256",)
    host_key: tuple[str, ...] = ("ssh-ed25519",)
    follows: bool = True
    guess: bytes | None = JUNK_GUESS
    lead_with_clients: bool = False
    early: tuple[bytes, ...] = ()
    host_key_sent: Callable[[bytes], bytes] | None = None


@dataclass
class Seen:
    """One connection as the server saw it."""

    client_kex: list[str] = field(default_factory=list)
    client_host_key: list[str] = field(default_factory=list)
    server_kex: list[str] = field(default_factory=list)
    server_host_key: list[str] = field(default_factory=list)
    ran: bool = False
    #: the reason code and text of a DISCONNECT the client sent during the key exchange
    disconnect: tuple[int, str] | None = None

    def guess_is_right(self) -> bool:
        """The RFC 4253 §7.1 rule: the first key exchange methods and the first host
        key algorithms of both sides are the same."""

        def first(names: list[str]) -> str:
            return names[0] if names else ""

        kex_same = first(self.client_kex) == first(self.server_kex)
        return kex_same and first(self.client_host_key) == first(self.server_host_key)


class _Closed(Exception):
    pass


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.seq_in = self.seq_out = 0
        self.decrypt: CipherContext | None = None
        self.encrypt: CipherContext | None = None
        self.mac_in = self.mac_out = b""

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise _Closed
        self.buffer += data

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            self._more()
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._more()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def waiting(self, seconds: float) -> bool:
        """Whether more of the client's bytes come within ``seconds``."""
        if self.buffer:
            return True
        return bool(select.select([self.sock], [], [], seconds)[0])

    def receive(self) -> bytes:
        if self.decrypt is None:
            head = self.take(4)
            packet = head + self.take(struct.unpack(">I", head)[0])
        else:
            first = self.decrypt.update(self.take(16))
            length = struct.unpack(">I", first[:4])[0]
            packet = first + self.decrypt.update(self.take(length + 4 - 16))
            mac = self.take(32)
            expected = hmac.new(self.mac_in, struct.pack(">I", self.seq_in) + packet, "sha256")
            if not hmac.compare_digest(mac, expected.digest()):
                raise _Closed
        self.seq_in = (self.seq_in + 1) & 0xFFFFFFFF
        padding = packet[4]
        return packet[5 : len(packet) - padding]

    def send(self, payload: bytes) -> None:
        block = 16 if self.encrypt is not None else 8
        padding = block - (5 + len(payload)) % block
        padding += block if padding < 4 else 0
        packet = struct.pack(">IB", 1 + len(payload) + padding, padding)
        packet += payload + os.urandom(padding)
        if self.encrypt is not None:
            mac = hmac.new(self.mac_out, struct.pack(">I", self.seq_out) + packet, "sha256")
            packet = self.encrypt.update(packet) + mac.digest()
        self.seq_out = (self.seq_out + 1) & 0xFFFFFFFF
        self.sock.sendall(packet)


def _kexinit(kex: list[str], host_key: tuple[str, ...], follows: bool) -> bytes:
    w = Writer().byte(MSG_KEXINIT).raw(os.urandom(16))
    w.name_list(kex).name_list(host_key)
    for names in (["aes128-ctr"], ["aes128-ctr"], ["hmac-sha2-256"], ["hmac-sha2-256"]):
        w.name_list(names)
    w.name_list(["none"]).name_list(["none"]).name_list([]).name_list([])
    return w.boolean(follows).uint32(0).getvalue()


class RawServer:
    """Listens on 127.0.0.1 (``port``) until ``stop``; see the module's text."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.host_key = Ed25519PrivateKey.generate()
        public = self.host_key.public_key().public_bytes_raw()
        self.host_key_blob = Writer().string(b"ssh-ed25519").string(public).getvalue()
        self.seen: list[Seen] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self.listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _serve(self, sock: socket.socket) -> None:
        seen = Seen()
        self.seen.append(seen)
        with sock:
            sock.settimeout(30)
            # the client may give up at any point
            with contextlib.suppress(_Closed, OSError, ValueError):
                self._converse(_Connection(sock), seen)

    def _converse(self, conn: _Connection, seen: Seen) -> None:
        plan = self.plan
        conn.sock.sendall(VERSION + b"\r\n")
        client_version = conn.line()
        client_kexinit = conn.receive()
        r = Reader(client_kexinit)
        r.byte()
        r.raw(16)
        seen.client_kex, seen.client_host_key = r.name_list(), r.name_list()
        kex = list(plan.kex)
        if plan.lead_with_clients and seen.client_kex:
            kex = [seen.client_kex[0], *(name for name in kex if name != seen.client_kex[0])]
        seen.server_kex, seen.server_host_key = kex, list(plan.host_key)
        strict = KEX_STRICT_C in seen.client_kex
        server_kexinit = _kexinit([*kex, KEX_STRICT_S], plan.host_key, plan.follows)
        conn.send(server_kexinit)
        if plan.follows and plan.guess is not None:
            conn.send(plan.guess)
        for payload in plan.early:
            conn.send(payload)
        method = next(name for name in seen.client_kex if name in kex)
        init = conn.receive()
        if init[0] != MSG_KEX_ECDH_INIT:
            _note_disconnect(init, seen)
            return
        if plan.early and conn.waiting(1.0):
            # the client answers the early packets: a DISCONNECT, kept before the
            # reply below could meet a closed connection
            _note_disconnect(conn.receive(), seen)
            return
        r = Reader(init)
        r.byte()
        client_public = r.string()
        prefix = b"".join(
            string(part) for part in (client_version, VERSION, client_kexinit, server_kexinit)
        )
        server_public, secret = _exchange(method, client_public)
        host_key_blob = self.host_key_blob
        if plan.host_key_sent is not None:
            host_key_blob = plan.host_key_sent(host_key_blob)
        exchange_hash = hashlib.sha256(
            prefix + string(host_key_blob) + string(client_public)
            + string(server_public) + secret
        ).digest()  # fmt: skip
        signature = Writer().string(b"ssh-ed25519").string(self.host_key.sign(exchange_hash))
        conn.send(
            Writer().byte(MSG_KEX_ECDH_REPLY).string(host_key_blob)
            .string(server_public).string(signature.getvalue()).getvalue()
        )  # fmt: skip
        conn.send(bytes((MSG_NEWKEYS,)))
        newkeys = conn.receive()
        if newkeys[0] != MSG_NEWKEYS:
            _note_disconnect(newkeys, seen)
            return
        self._new_keys(conn, secret, exchange_hash, strict)
        self._session(conn, seen)

    @staticmethod
    def _new_keys(conn: _Connection, secret: bytes, exchange_hash: bytes, strict: bool) -> None:
        def derive(letter: bytes, size: int) -> bytes:  # RFC 4253 §7.2
            key = hashlib.sha256(secret + exchange_hash + letter + exchange_hash).digest()
            while len(key) < size:
                key += hashlib.sha256(secret + exchange_hash + key).digest()
            return key[:size]

        if strict:
            conn.seq_in = conn.seq_out = 0
        aes_in = algorithms.AES(derive(b"C", 16))
        conn.decrypt = Cipher(aes_in, modes.CTR(derive(b"A", 16))).decryptor()
        aes_out = algorithms.AES(derive(b"D", 16))
        conn.encrypt = Cipher(aes_out, modes.CTR(derive(b"B", 16))).encryptor()
        conn.mac_in, conn.mac_out = derive(b"E", 32), derive(b"F", 32)

    @staticmethod
    def _session(conn: _Connection, seen: Seen) -> None:
        theirs = 0  # the client's number for its session channel
        while True:
            payload = conn.receive()
            kind = payload[0]
            r = Reader(payload)
            r.byte()
            if kind == MSG_DISCONNECT:
                return
            if kind == MSG_SERVICE_REQUEST:
                conn.send(Writer().byte(MSG_SERVICE_ACCEPT).string(r.string()).getvalue())
            elif kind == MSG_USERAUTH_REQUEST:
                conn.send(bytes((MSG_USERAUTH_SUCCESS,)))
            elif kind == MSG_GLOBAL_REQUEST:
                r.string()
                if r.boolean():
                    conn.send(bytes((MSG_REQUEST_FAILURE,)))
            elif kind == MSG_CHANNEL_OPEN:
                r.string()
                theirs = r.uint32()
                conn.send(
                    Writer().byte(MSG_CHANNEL_OPEN_CONFIRMATION).uint32(theirs).uint32(0)
                    .uint32(1 << 20).uint32(32768).getvalue()
                )  # fmt: skip
            elif kind == MSG_CHANNEL_REQUEST:
                r.uint32()
                request, want_reply = r.string(), r.boolean()
                if request != b"exec":
                    if want_reply:
                        conn.send(Writer().byte(MSG_CHANNEL_FAILURE).uint32(theirs).getvalue())
                    continue
                seen.ran = True
                if want_reply:
                    conn.send(Writer().byte(MSG_CHANNEL_SUCCESS).uint32(theirs).getvalue())
                channel = Writer().uint32(theirs).getvalue()
                conn.send(bytes((MSG_CHANNEL_DATA,)) + channel + string(OUTPUT))
                status = Writer().string(b"exit-status").boolean(False).uint32(0)
                conn.send(bytes((MSG_CHANNEL_REQUEST,)) + channel + status.getvalue())
                conn.send(bytes((MSG_CHANNEL_EOF,)) + channel)
                conn.send(bytes((MSG_CHANNEL_CLOSE,)) + channel)
            elif kind == MSG_CHANNEL_CLOSE:
                return


def _note_disconnect(payload: bytes, seen: Seen) -> None:
    """Keep the reason of a DISCONNECT received in place of a kex packet."""
    if payload[0] == MSG_DISCONNECT:
        r = Reader(payload)
        r.byte()
        reason = r.uint32()
        seen.disconnect = (reason, r.string().decode("utf-8", "replace"))


def _exchange(method: str, client_public: bytes) -> tuple[bytes, bytes]:
    """The server's half of the key exchange: its public value and K as the exchange
    hash encodes it."""
    ours = X25519PrivateKey.generate()
    if method in ("curve25519-sha256", "curve25519-sha256@libssh.org"):
        shared = ours.exchange(X25519PublicKey.from_public_bytes(client_public))
        return ours.public_key().public_bytes_raw(), Writer().mpint(
            int.from_bytes(shared)
        ).getvalue()
    if method == "mlkem768x25519-sha256":
        encapsulation_key, classic = client_public[:1184], client_public[1184:]
        pq_secret, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(
            encapsulation_key
        ).encapsulate()
        shared = ours.exchange(X25519PublicKey.from_public_bytes(classic))
        secret = string(hashlib.sha256(pq_secret + shared).digest())
        return ciphertext + ours.public_key().public_bytes_raw(), secret
    raise ValueError(f"this test server has no {method}")


@contextmanager
def raw_server(plan: Plan) -> Iterator[RawServer]:
    server = RawServer(plan)
    try:
        yield server
    finally:
        server.stop()

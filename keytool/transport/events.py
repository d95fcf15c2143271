"""What ClientTransport.receive_data returns: frozen events for the adapter to act on."""

from __future__ import annotations

from collections.abc import Mapping

from keytool.keys.base import PublicKey
from keytool.record import Record, init


class Algorithms(Record):
    """The outcome of one KEXINIT negotiation (RFC 4253 §7.1).

    For an AEAD cipher the MAC is implicit and shown as ``"<implicit>"``.
    """

    __slots__ = (
        "cipher_in",
        "cipher_out",
        "compression",
        "host_key",
        "kex",
        "mac_in",
        "mac_out",
        "strict_kex",
    )
    kex: str
    host_key: str
    cipher_out: str  # client to server
    cipher_in: str  # server to client
    mac_out: str
    mac_in: str
    compression: str
    strict_kex: bool

    def __init__(
        self,
        kex: str,
        host_key: str,
        cipher_out: str,
        cipher_in: str,
        mac_out: str,
        mac_in: str,
        compression: str = "none",
        strict_kex: bool = False,
    ) -> None:
        init(
            self,
            kex=kex,
            host_key=host_key,
            cipher_out=cipher_out,
            cipher_in=cipher_in,
            mac_out=mac_out,
            mac_in=mac_in,
            compression=compression,
            strict_kex=strict_kex,
        )


class HostKeyToCheck(Record):
    """The server proved it holds ``key``; check it against known_hosts, then call
    ``accept_host_key()`` (or drop the connection). Nothing proceeds until then."""

    __slots__ = ("algorithm", "key")
    key: PublicKey
    algorithm: str

    def __init__(self, key: PublicKey, algorithm: str) -> None:
        init(self, key=key, algorithm=algorithm)


class KeysChanged(Record):
    """NEWKEYS went both ways: new keys are in use (``rekey`` False for the first kex)."""

    __slots__ = ("algorithms", "rekey")
    algorithms: Algorithms
    rekey: bool

    def __init__(self, algorithms: Algorithms, rekey: bool) -> None:
        init(self, algorithms=algorithms, rekey=rekey)


class ExtInfoReceived(Record):
    """SSH_MSG_EXT_INFO (RFC 8308 §2.3): the server's extensions, name -> raw value."""

    __slots__ = ("extensions",)
    extensions: Mapping[str, bytes]

    def __init__(self, extensions: Mapping[str, bytes]) -> None:
        init(self, extensions=extensions)


class TransportReady(Record):
    """The server accepted the ssh-userauth service: upper layers may send now."""

    __slots__ = (
        "algorithms",
        "extensions",
        "host_key",
        "server_sig_algs",
        "server_version",
        "session_id",
    )
    session_id: bytes
    server_sig_algs: tuple[str, ...] | None
    extensions: Mapping[str, bytes]
    algorithms: Algorithms
    server_version: str
    host_key: PublicKey

    def __init__(
        self,
        session_id: bytes,
        server_sig_algs: tuple[str, ...] | None,
        extensions: Mapping[str, bytes],
        algorithms: Algorithms,
        server_version: str,
        host_key: PublicKey,
    ) -> None:
        init(
            self,
            session_id=session_id,
            server_sig_algs=server_sig_algs,
            extensions=extensions,
            algorithms=algorithms,
            server_version=server_version,
            host_key=host_key,
        )


class PayloadReceived(Record):
    """A message for the upper layers (number >= 50: user auth, connection protocol)."""

    __slots__ = ("payload",)
    payload: bytes

    def __init__(self, payload: bytes) -> None:
        init(self, payload=payload)


Event = HostKeyToCheck | KeysChanged | ExtInfoReceived | TransportReady | PayloadReceived

"""What ClientTransport.receive_data returns: frozen events for the adapter to act on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keytool.keys.base import PublicKey


@dataclass(frozen=True, slots=True)
class Algorithms:
    """The outcome of one KEXINIT negotiation (RFC 4253 §7.1).

    For an AEAD cipher the MAC is implicit and shown as ``"<implicit>"``.
    """

    kex: str
    host_key: str
    cipher_out: str  # client to server
    cipher_in: str  # server to client
    mac_out: str
    mac_in: str
    compression: str = "none"
    strict_kex: bool = False


@dataclass(frozen=True, slots=True)
class HostKeyToCheck:
    """The server proved it holds ``key``; check it against known_hosts, then call
    ``accept_host_key()`` (or drop the connection). Nothing proceeds until then."""

    key: PublicKey
    algorithm: str


@dataclass(frozen=True, slots=True)
class KeysChanged:
    """NEWKEYS went both ways: new keys are in use (``rekey`` False for the first kex)."""

    algorithms: Algorithms
    rekey: bool


@dataclass(frozen=True, slots=True)
class ExtInfoReceived:
    """SSH_MSG_EXT_INFO (RFC 8308 §2.3): the server's extensions, name -> raw value."""

    extensions: Mapping[str, bytes]


@dataclass(frozen=True, slots=True)
class TransportReady:
    """The server accepted the ssh-userauth service: upper layers may send now."""

    session_id: bytes
    server_sig_algs: tuple[str, ...] | None
    extensions: Mapping[str, bytes]
    algorithms: Algorithms
    server_version: str
    host_key: PublicKey


@dataclass(frozen=True, slots=True)
class PayloadReceived:
    """A message for the upper layers (number >= 50: user auth, connection protocol)."""

    payload: bytes


Event = HostKeyToCheck | KeysChanged | ExtInfoReceived | TransportReady | PayloadReceived

"""The client side of the SSH transport layer (RFC 4253) as a sans-IO state machine.

Interface stub: the state machine lands in the next commits.
"""

from __future__ import annotations

from collections.abc import Mapping

from keytool.transport.config import TransportConfig
from keytool.transport.events import Algorithms, Event


class ClientTransport:
    """Bytes in (``receive_data``), events and bytes out (``data_to_send``)."""

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self.session_id: bytes | None = None
        self.server_sig_algs: tuple[str, ...] | None = None
        self.extensions: Mapping[str, bytes] = {}
        self.algorithms: Algorithms | None = None

    def data_to_send(self) -> bytes:
        raise NotImplementedError

    def receive_data(self, data: bytes) -> list[Event]:
        raise NotImplementedError

    def accept_host_key(self) -> list[Event]:
        raise NotImplementedError

    def send_payload(self, payload: bytes) -> None:
        raise NotImplementedError

    def disconnect(self, reason: int, description: str) -> None:
        raise NotImplementedError

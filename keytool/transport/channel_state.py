"""One channel's bookkeeping for ``keytool.transport.channels.Connection``: its state
(``ChannelState``) and windows, packet sizes and queued data (``Channel``).
"""

from __future__ import annotations

import enum
from collections import deque


class ChannelState(enum.Enum):
    OPENING = "opening"
    ACCEPTING = "accepting"  # opened by the server, not yet confirmed by us
    OPEN = "open"
    CLOSING = "closing"  # we sent CLOSE, theirs has not come yet
    CLOSED = "closed"


class Channel:
    """One channel's bookkeeping; the fields are the connection's business."""

    __slots__ = (
        "close_received",
        "credit",
        "eof_received",
        "eof_sent",
        "eof_wanted",
        "kind",
        "local_id",
        "local_max_packet",
        "local_window",
        "outgoing",
        "outgoing_size",
        "pending_requests",
        "remote_id",
        "remote_max_packet",
        "remote_window",
        "state",
        "window_size",
    )

    def __init__(self, local_id: int, kind: str, local_window: int, local_max_packet: int) -> None:
        self.local_id = local_id
        self.kind = kind
        self.local_window = local_window
        self.local_max_packet = local_max_packet
        self.window_size = local_window  # the window we top up to
        self.state = ChannelState.OPENING
        self.remote_id = 0
        self.remote_window = 0
        self.remote_max_packet = 0
        self.credit = 0  # bytes used up and not yet given back by a window adjust
        # views of the data given to send: a packet takes a slice, never a copy
        self.outgoing: deque[memoryview] = deque()
        self.outgoing_size = 0
        self.eof_wanted = False  # send EOF once the buffer is empty
        self.eof_sent = False
        self.eof_received = False
        self.close_received = False
        self.pending_requests: deque[str] = deque()

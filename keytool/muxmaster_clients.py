"""What the ControlMaster (``keytool.muxmaster``) keeps of each client on the control
socket: ``Control``, its socket, the messages and descriptors it sent, the replies
due; ``Session``, its passenger session or -W forward (the channel, the client's
descriptors, what is still to be written to them)."""

from __future__ import annotations

import socket

from keytool import muxproto as mux
from keytool.ttymodes import Escapes


class Session:
    """A passenger session (or a -W forward) of one client: its channel and the
    client's descriptors."""

    __slots__ = (
        "blocking",
        "closed",
        "escapes",
        "exit_status",
        "fds",
        "input_done",
        "local",
        "number",
        "opened",
        "outputs",
        "request",
        "size",
        "stdio",
    )

    def __init__(self, number: int, fds: list[int], request: mux.Request) -> None:
        self.number = number
        self.fds = fds  # stdin, stdout[, stderr]
        self.request = request
        self.stdio = request.kind == mux.NEW_STDIO_FWD
        self.opened = False
        self.closed = False  # the channel is gone; what it sent is still being written
        self.input_done = False
        self.exit_status: int | None = None
        self.outputs = (bytearray(), bytearray())  # for stdout, stderr
        # bytes of ours in each (ssh's words, escape echoes): no window credit for them
        self.local = [0, 0]
        self.escapes: Escapes | None = None
        self.size: tuple[int, int, int, int] | None = None  # its terminal's, last sent
        # the descriptors' blocking flags as the client had them (restored at the end)
        self.blocking: list[tuple[int, bool]] = []

    def say(self, text: bytes) -> None:
        """Words of ours on the client's stderr, among what the server sends there."""
        self.outputs[1].extend(text)
        self.local[1] += len(text)


class Control:
    """One client on the control socket."""

    __slots__ = ("closing", "fds", "hello", "out", "paused", "reader", "session", "sock", "waiting")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = mux.PacketReader()
        self.fds: list[int] = []  # descriptors passed and not yet taken
        self.out = bytearray()
        self.hello = False
        self.paused = False  # a channel open is under way: its reply comes first
        self.waiting: mux.Request | None = None  # a request whose descriptors are due
        self.session: Session | None = None
        self.closing = False  # close once ``out`` is written

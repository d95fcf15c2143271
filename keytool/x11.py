"""X11 forwarding (ssh -X, -Y), without I/O: the display, the cookies, the first packet.

The X client at the server gets a *fake* cookie (RFC 4254 §6.3.1: the "x11-req"
carries it, in hex); the real one, read from xauth, never leaves this machine. When
the server opens an "x11" channel, the X client's first packet (the X11 connection
setup: byte order, protocol version, then the authorization protocol name and data)
must carry the fake cookie: ``Setup`` checks that, in constant time, and puts the
real cookie in its place before anything reaches the local X server; a packet with
any other cookie never does. ssh does the same (its channels.c, x11_open_helper).

``keytool.xauth`` runs the xauth program for the real cookie; ``keytool.tunnels``
connects each "x11" channel to the display and passes its first bytes through
``Setup``.
"""

from __future__ import annotations

import enum
import hmac
import os
import socket

from keytool.record import Record, init

#: the authorization protocol ssh asks xauth for (and makes up a cookie of)
MIT_COOKIE = "MIT-MAGIC-COOKIE-1"
#: where the X server of display N listens (X11's convention)
UNIX_SOCKET = "/tmp/.X11-unix/X{}"
#: display N's TCP port
TCP_BASE = 6000
#: characters ssh takes in $DISPLAY besides letters and digits
_VALID = frozenset(":/.-_")
#: seconds an untrusted cookie outlives ForwardX11Timeout (ssh's X11_TIMEOUT_SLACK)
TIMEOUT_SLACK = 60


def display_valid(display: str) -> bool:
    """$DISPLAY as ssh takes it: letters, digits and ``:/.-_`` only (it goes to xauth)."""
    return bool(display) and all(c.isascii() and (c.isalnum() or c in _VALID) for c in display)


def xauth_display(display: str) -> str:
    """The name xauth knows the display by: ``localhost:N`` is ``unix:N`` to it (the
    local family), as ssh asks."""
    if display.startswith("localhost:"):
        return "unix:" + display[len("localhost:") :]
    return display


def screen_number(display: str) -> int:
    """The screen of ``host:D.S`` (0 when none), for the x11-req; as ssh, 0 to 400."""
    _, colon, rest = display.partition(":")
    if not colon:
        return 0
    _, dot, screen = rest.partition(".")
    if dot and screen.isdigit() and int(screen) <= 400:
        return int(screen)
    return 0


class DisplayError(ValueError):
    """$DISPLAY names no display we can connect to; the message is ssh's words."""


def display_addresses(display: str) -> list[tuple[int, object]]:
    """Where to connect for ``display``: the Unix socket of ``:N``, ``::N`` and
    ``unix:N``; else TCP port 6000+N of the host before the colon (each of its
    addresses). Raises DisplayError in ssh's words."""
    if display.startswith("unix:") or display.startswith(":"):
        number = _display_number(display[display.rindex(":") + 1 :], display)
        return [(socket.AF_UNIX, UNIX_SOCKET.format(number))]
    host, colon, rest = display.partition(":")
    if not colon:
        raise DisplayError(f"Could not find ':' in DISPLAY: {display[:100]}")
    number = _display_number(rest, display)
    if TCP_BASE + number > 0xFFFF:  # ssh would wrap round to another port
        raise DisplayError(f"Could not parse display number from DISPLAY: {display[:100]}")
    try:
        infos = socket.getaddrinfo(host, TCP_BASE + number, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise DisplayError(f"{host[:100]}: unknown host. ({reason})") from None
    return [(info[0], info[4]) for info in infos]


def _display_number(text: str, display: str) -> int:
    digits = ""
    for char in text:
        if char not in "0123456789":
            break
        digits += char
    if not digits:
        raise DisplayError(f"Could not parse display number from DISPLAY: {display[:100]}")
    return int(digits)


def parse_xauth_list(output: str) -> tuple[str, str] | None:
    """The protocol name and hex cookie on the first line of ``xauth list`` (``NAME
    PROTOCOL HEXDATA``), or None when it has none."""
    lines = output.splitlines()
    if not lines:
        return None
    words = lines[0].split()
    if len(words) < 3 or not _is_hex(words[2]):
        return None
    return words[1], words[2].lower()


def _is_hex(text: str) -> bool:
    return len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text)


class Cookies(Record):
    """The real cookie (for the local X server) and the fake one the server gets."""

    __slots__ = ("fake", "protocol", "real")
    protocol: str
    real: bytes
    fake: bytes

    def __init__(self, protocol: str, real: bytes, fake: bytes) -> None:
        init(self, protocol=protocol, real=real, fake=fake)

    def __repr__(self) -> str:  # both are secrets: never in a trace or a message
        return f"Cookies(protocol={self.protocol!r}, {len(self.real)} bytes each)"

    @classmethod
    def spoofing(cls, protocol: str, real_hex: str) -> Cookies:
        """A fresh fake cookie as long as the real one (so the setup packet keeps its
        size when one takes the other's place)."""
        real = bytes.fromhex(real_hex)
        return cls(protocol, real, os.urandom(len(real)))

    @classmethod
    def made_up(cls) -> Cookies:
        """No xauth data (trusted forwarding): a random real cookie too, as ssh; the
        X server then decides by its other means."""
        real = os.urandom(16)
        return cls(MIT_COOKIE, real, os.urandom(16))


class Verdict(enum.Enum):
    MORE = "more"  # the setup packet is not whole yet
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Setup:
    """The first bytes of one "x11" channel, held until the X11 connection setup is
    whole, then accepted (the real cookie in the fake one's place) or rejected."""

    __slots__ = ("_buffer", "_cookies", "reason")

    #: the fixed part: byte order, pad, major, minor, name length, data length, pad
    _FIXED = 12

    def __init__(self, cookies: Cookies) -> None:
        self._cookies = cookies
        self._buffer = bytearray()
        self.reason = ""  # why it was rejected (for -v)

    def feed(self, data: bytes) -> tuple[Verdict, bytes]:
        """Take bytes from the channel: MORE (nothing to pass on yet), ACCEPTED with
        every byte so far (the cookie replaced), or REJECTED."""
        buf = self._buffer
        buf += data
        if len(buf) < self._FIXED:
            return Verdict.MORE, b""
        order = buf[0]
        if order == 0x42:  # "B": most significant byte first
            name_len, data_len = buf[6] << 8 | buf[7], buf[8] << 8 | buf[9]
        elif order == 0x6C:  # "l": least significant byte first
            name_len, data_len = buf[7] << 8 | buf[6], buf[9] << 8 | buf[8]
        else:
            return self._reject(f"bad byte order byte 0x{order:x}")
        name_at = self._FIXED
        data_at = name_at + _padded(name_len)
        if len(buf) < data_at + _padded(data_len):
            return Verdict.MORE, b""
        cookies = self._cookies
        if bytes(buf[name_at : name_at + name_len]) != cookies.protocol.encode("ascii"):
            return self._reject("a different authentication protocol")
        given = bytes(buf[data_at : data_at + data_len])
        if len(given) != len(cookies.fake) or not hmac.compare_digest(given, cookies.fake):
            return self._reject("authentication data that is not our fake cookie")
        if len(cookies.real) != len(cookies.fake):
            return self._reject("a real cookie of another length")
        buf[data_at : data_at + data_len] = cookies.real
        out = bytes(buf)
        buf.clear()
        return Verdict.ACCEPTED, out

    def _reject(self, reason: str) -> tuple[Verdict, bytes]:
        self.reason = reason
        self._buffer.clear()
        return Verdict.REJECTED, b""


def _padded(length: int) -> int:
    return (length + 3) & ~3


class Forwarding(Record):
    """One connection's X11 forwarding: the local display, the cookies, and when new
    X11 connections stop being taken (ForwardX11Timeout, untrusted only; None: never)."""

    __slots__ = ("cookies", "display", "refuse_at")
    display: str
    cookies: Cookies
    refuse_at: float | None  # time.monotonic()

    def __init__(self, display: str, cookies: Cookies, refuse_at: float | None = None) -> None:
        init(self, display=display, cookies=cookies, refuse_at=refuse_at)

    def request(self) -> tuple[str, str, int]:
        """What an x11-req says (RFC 4254 §6.3.1): the protocol, the fake cookie in
        hex, the screen number."""
        return self.cookies.protocol, self.cookies.fake.hex(), screen_number(self.display)

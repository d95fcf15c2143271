"""The SOCKS server side of ``ssh -D``, without I/O: SOCKS4, SOCKS4a (RFC-less, the
NEC protocol) and SOCKS5 (RFC 1928) CONNECT, no authentication, as ssh serves it.

``Handshake.feed(data)`` takes what the client sent and returns the bytes to answer
with; once ``request`` is set (host, port), the adapter opens a channel there and
sends ``reply(ok)``. Anything malformed or unsupported is a FormatError (after which
the adapter closes the connection; the failure reply, if the version allows one, is
in ``data_to_send``).
"""

from __future__ import annotations

import ipaddress

from keytool.errors import FormatError

_V4, _V5 = 4, 5
_CONNECT = 1
_NO_AUTH, _NO_METHOD = 0, 0xFF
_ATYP_IPV4, _ATYP_DOMAIN, _ATYP_IPV6 = 1, 3, 4
#: a request may not grow past this (a user id or a domain name is short)
_MAX = 1024


class Handshake:
    """One client's SOCKS negotiation."""

    __slots__ = ("_buffer", "_greeted", "_out", "request", "rest", "version")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._greeted = False
        self._out = bytearray()
        self.version = 0
        self.request: tuple[str, int] | None = None  # host and port to connect to
        self.rest = b""  # bytes the client sent after its request (kept for the channel)

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def feed(self, data: bytes) -> None:
        if self.request is not None:
            self.rest += data
            return
        self._buffer += data
        if len(self._buffer) > _MAX:
            raise FormatError("SOCKS request too long")
        if not self._buffer:
            return
        if self.version == 0:
            if self._buffer[0] not in (_V4, _V5):
                raise FormatError(f"not a SOCKS 4 or 5 client (first byte {self._buffer[0]})")
            self.version = self._buffer[0]
        if self.version == _V4:
            self._socks4()
        else:
            self._socks5()

    def reply(self, ok: bool) -> bytes:
        """The answer to the request: granted (``ok``) or refused."""
        if self.version == _V4:
            # VN 0, CD 90 granted / 91 rejected, DSTPORT, DSTIP (ignored by clients)
            return bytes([0, 90 if ok else 91]) + bytes(6)
        # VER, REP (0 succeeded, 5 connection refused), RSV, ATYP IPv4, BND.ADDR, BND.PORT
        return bytes([_V5, 0 if ok else 5, 0, _ATYP_IPV4]) + bytes(6)

    # ---- SOCKS4 / 4a: VN CD DSTPORT(2) DSTIP(4) USERID NUL [DOMAIN NUL]

    def _socks4(self) -> None:
        buffer = self._buffer
        if len(buffer) < 9:
            return
        end = buffer.find(b"\0", 8)
        if end < 0:
            return
        if buffer[1] != _CONNECT:
            self._out += self.reply(False)
            raise FormatError("SOCKS4: only CONNECT is supported")
        port = int.from_bytes(buffer[2:4], "big")
        address = bytes(buffer[4:8])
        taken = end + 1
        if address[:3] == b"\0\0\0" and address[3]:
            # SOCKS4a: the host name follows the user id
            name_end = buffer.find(b"\0", taken)
            if name_end < 0:
                return
            host = _name(bytes(buffer[taken:name_end]))
            taken = name_end + 1
        else:
            host = str(ipaddress.IPv4Address(address))
        self._done(host, port, taken)

    # ---- SOCKS5: greeting VER NMETHODS METHODS, then VER CMD RSV ATYP ADDR PORT

    def _socks5(self) -> None:
        buffer = self._buffer
        if not self._greeted:
            if len(buffer) < 2 or len(buffer) < 2 + buffer[1]:
                return
            methods = bytes(buffer[2 : 2 + buffer[1]])
            del buffer[: 2 + len(methods)]
            if _NO_AUTH not in methods:
                self._out += bytes([_V5, _NO_METHOD])
                raise FormatError("SOCKS5: the client offers no method without authentication")
            self._out += bytes([_V5, _NO_AUTH])
            self._greeted = True
        if len(buffer) < 5:
            return
        if buffer[0] != _V5:
            raise FormatError("SOCKS5: bad request version")
        kind = buffer[3]
        if kind == _ATYP_IPV4:
            size = 4
        elif kind == _ATYP_IPV6:
            size = 16
        elif kind == _ATYP_DOMAIN:
            size = 1 + buffer[4]
        else:
            raise FormatError(f"SOCKS5: unknown address type {kind}")
        if len(buffer) < 4 + size + 2:
            return
        if buffer[1] != _CONNECT:
            self._out += bytes([_V5, 7, 0, _ATYP_IPV4]) + bytes(6)  # command not supported
            raise FormatError("SOCKS5: only CONNECT is supported")
        raw = bytes(buffer[4 : 4 + size])
        if kind == _ATYP_IPV4:
            host = str(ipaddress.IPv4Address(raw))
        elif kind == _ATYP_IPV6:
            host = str(ipaddress.IPv6Address(raw))
        else:
            host = _name(raw[1:])
        port = int.from_bytes(buffer[4 + size : 6 + size], "big")
        self._done(host, port, 6 + size)

    def _done(self, host: str, port: int, taken: int) -> None:
        if port == 0:
            raise FormatError("SOCKS: port 0")
        self.request = (host, port)
        self.rest = bytes(self._buffer[taken:])
        self._buffer.clear()


def _name(raw: bytes) -> str:
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("SOCKS: a host name that is not ASCII") from None
    if not name or not name.isprintable():
        raise FormatError("SOCKS: an empty or unprintable host name")
    return name

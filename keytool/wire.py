"""SSH wire encoding (RFC 4251 §5): a strict Reader and a Writer.

The Reader never lets IndexError or struct.error escape: truncated input, lengths past
the buffer, trailing bytes and non-minimal mpints raise FormatError.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from keytool.errors import FormatError

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Reader:
    """Reads SSH wire types from a bytes buffer, strictly."""

    __slots__ = ("_buf", "_end", "_pos", "what")

    def __init__(self, data: bytes | bytearray | memoryview, what: str = "data") -> None:
        self._buf = bytes(data)
        self._pos = 0
        self._end = len(self._buf)
        self.what = what

    def _take(self, count: int) -> bytes:
        if count < 0 or self._pos + count > self._end:
            raise FormatError(f"truncated {self.what}: needed {count} bytes, {self.remaining} left")
        start = self._pos
        self._pos += count
        return self._buf[start : self._pos]

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def byte(self) -> int:
        return self._take(1)[0]

    def boolean(self) -> bool:
        # RFC 4251 §5: any non-zero value is TRUE
        return self._take(1)[0] != 0

    def uint32(self) -> int:
        value: int = _U32.unpack(self._take(4))[0]
        return value

    def uint64(self) -> int:
        value: int = _U64.unpack(self._take(8))[0]
        return value

    def raw(self, count: int) -> bytes:
        return self._take(count)

    def string(self) -> bytes:
        length = self.uint32()
        if length > self.remaining:
            raise FormatError(
                f"malformed {self.what}: string of {length} bytes, only {self.remaining} left"
            )
        return self._take(length)

    def text(self) -> str:
        try:
            return self.string().decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"malformed {self.what}: text is not UTF-8") from None

    def peer_text(self) -> str:
        """Words a person reads (a banner, a prompt, a reason): RFC 4251 §5 says UTF-8,
        OpenSSH takes any bytes. Bytes that are not UTF-8 stay as surrogate escapes, for
        keytool.display to show escaped; never a reason to drop the connection."""
        return self.string().decode("utf-8", "surrogateescape")

    def ascii(self) -> str:
        try:
            return self.string().decode("ascii")
        except UnicodeDecodeError:
            raise FormatError(f"malformed {self.what}: name is not ASCII") from None

    def name_list(self) -> list[str]:
        names = self.ascii()
        if not names:
            return []
        parts = names.split(",")
        if any(not part for part in parts):
            raise FormatError(f"malformed {self.what}: empty name in name-list")
        return parts

    def mpint(self) -> int:
        data = self.string()
        if not data:
            return 0
        # RFC 4251 §5: unnecessary leading 0x00 or 0xff bytes MUST NOT be included,
        # and zero MUST be the empty string (so a lone 0x00 is non-minimal too)
        if data == b"\x00" or (
            len(data) > 1
            and ((data[0] == 0 and data[1] < 0x80) or (data[0] == 0xFF and data[1] >= 0x80))
        ):
            raise FormatError(f"malformed {self.what}: non-minimal mpint")
        return int.from_bytes(data, "big", signed=True)

    def positive_mpint(self) -> int:
        value = self.mpint()
        if value <= 0:
            raise FormatError(f"malformed {self.what}: mpint must be positive")
        return value

    def rest(self) -> bytes:
        return self._take(self.remaining)

    @property
    def offset(self) -> int:
        """How far the reading has come, for ``since``."""
        return self._pos

    def since(self, offset: int) -> bytes:
        """The bytes read from ``offset`` (an earlier ``offset``) up to here, as they were."""
        return self._buf[offset : self._pos]

    def done(self) -> None:
        if self._pos != self._end:
            raise FormatError(f"malformed {self.what}: {self.remaining} unexpected trailing bytes")

    @contextmanager
    def nested(self, what: str | None = None) -> Iterator[Reader]:
        """A length-prefixed structure read by its own Reader, which must be used up."""
        inner = Reader(self.string(), what or self.what)
        yield inner
        inner.done()


def mpint_bytes(value: int) -> bytes:
    """The minimal two's-complement encoding of an mpint's body (RFC 4251 §5)."""
    if value == 0:
        return b""
    length = (value.bit_length() + 8) // 8
    data = value.to_bytes(length, "big", signed=True)
    # to_bytes with +8 bits may leave one redundant sign byte; strip it
    while len(data) > 1 and (
        (data[0] == 0 and data[1] < 0x80) or (data[0] == 0xFF and data[1] >= 0x80)
    ):
        data = data[1:]
    return data


class Writer:
    """Builds SSH wire data; every method returns self so calls chain."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def byte(self, value: int) -> Writer:
        self._parts.append(bytes((value,)))
        return self

    def boolean(self, value: bool) -> Writer:
        self._parts.append(b"\x01" if value else b"\x00")
        return self

    def uint32(self, value: int) -> Writer:
        self._parts.append(_U32.pack(value))
        return self

    def uint64(self, value: int) -> Writer:
        self._parts.append(_U64.pack(value))
        return self

    def raw(self, data: bytes) -> Writer:
        self._parts.append(bytes(data))
        return self

    def string(self, data: bytes | str) -> Writer:
        if isinstance(data, str):
            # text that came in as bytes that are not UTF-8 (a key comment, a file
            # name) goes out as the same bytes
            data = data.encode("utf-8", "surrogateescape")
        self._parts.append(_U32.pack(len(data)))
        self._parts.append(bytes(data))
        return self

    def name_list(self, names: Iterable[str]) -> Writer:
        return self.string(",".join(names).encode("ascii"))

    def mpint(self, value: int) -> Writer:
        return self.string(mpint_bytes(value))

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def __len__(self) -> int:
        return sum(len(part) for part in self._parts)


def string(data: bytes) -> bytes:
    """One length-prefixed string, for the common case outside a Writer."""
    return _U32.pack(len(data)) + data

"""The wire types of RFC 4251 §5: round trips, and strict decoding that raises FormatError."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keytool.errors import FormatError
from keytool.wire import Reader, Writer, mpint_bytes, string

names = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=","),
    min_size=1,
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(
    byte=st.integers(0, 255),
    flag=st.booleans(),
    u32=st.integers(0, 2**32 - 1),
    u64=st.integers(0, 2**64 - 1),
    blob=st.binary(max_size=64),
    text=st.text(max_size=20),
    name_list=st.lists(names, max_size=5),
    number=st.integers(-(2**600), 2**600),
)
def test_round_trip(
    byte: int,
    flag: bool,
    u32: int,
    u64: int,
    blob: bytes,
    text: str,
    name_list: list[str],
    number: int,
) -> None:
    data = (
        Writer()
        .byte(byte)
        .boolean(flag)
        .uint32(u32)
        .uint64(u64)
        .string(blob)
        .string(text)
        .name_list(name_list)
        .mpint(number)
        .getvalue()
    )
    r = Reader(data)
    assert r.byte() == byte
    assert r.boolean() is flag
    assert r.uint32() == u32
    assert r.uint64() == u64
    assert r.string() == blob
    assert r.text() == text
    assert r.name_list() == name_list
    assert r.mpint() == number
    r.done()


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**1100), 2**1100))
def test_mpint_minimal(value: int) -> None:
    body = mpint_bytes(value)
    # RFC 4251 §5: two's complement, zero is empty, no unnecessary leading byte:
    # dropping the first byte must change the value
    assert int.from_bytes(body, "big", signed=True) == value
    assert (body == b"") == (value == 0)
    if body:
        assert int.from_bytes(body[1:], "big", signed=True) != value
    r = Reader(Writer().mpint(value).getvalue())
    assert r.mpint() == value
    r.done()


def test_mpint_edges() -> None:
    assert mpint_bytes(0x7F) == b"\x7f"
    assert mpint_bytes(0x80) == b"\x00\x80"
    assert mpint_bytes(-1) == b"\xff"
    assert mpint_bytes(-0x80) == b"\x80"
    assert mpint_bytes(-0x81) == b"\xff\x7f"
    assert mpint_bytes(0xFFFF) == b"\x00\xff\xff"


@pytest.mark.parametrize(
    "body",
    [b"\x00", b"\x00\x7f", b"\x00\x00\x80", b"\xff\x80", b"\xff\xff\x7f", b"\xff\xff"],
)
def test_non_minimal_mpint(body: bytes) -> None:
    with pytest.raises(FormatError):
        Reader(string(body)).mpint()


@pytest.mark.parametrize("body", [b"\xff", b"\x80", b"\xed\xcc", b"", b"\x00\x80"])
def test_positive_mpint(body: bytes) -> None:
    value = int.from_bytes(body, "big", signed=True)
    if value > 0:
        assert Reader(string(body)).positive_mpint() == value
    else:
        # negative (and zero) where a positive number is required
        with pytest.raises(FormatError):
            Reader(string(body)).positive_mpint()


READS = ["byte", "boolean", "uint32", "uint64", "string", "text", "ascii", "name_list", "mpint"]


@pytest.mark.parametrize("method", READS)
def test_empty_input(method: str) -> None:
    with pytest.raises(FormatError):
        getattr(Reader(b""), method)()


@pytest.mark.parametrize(
    ("method", "data"),
    [
        ("uint32", b"\x00\x00\x01"),
        ("uint64", b"\x00" * 7),
        ("string", b"\x00\x00"),  # truncated length
        ("string", b"\x00\x00\x00\x05abcd"),  # length past the buffer
        ("string", b"\xff\xff\xff\xffabc"),
        ("mpint", b"\x00\x00\x00\x02\x01"),
        ("name_list", b"\x00\x00\x00\x09aes,ctr"),
        ("name_list", b"\x00\x00\x00\x04a,,b"),  # empty name
        ("name_list", b"\x00\x00\x00\x02a,"),
        ("ascii", b"\x00\x00\x00\x01\xc3"),
        ("text", b"\x00\x00\x00\x01\xc3"),
        ("text", b"\x00\x00\x00\x02\xc3\x28"),
    ],
)
def test_malformed(method: str, data: bytes) -> None:
    with pytest.raises(FormatError):
        getattr(Reader(data), method)()


@pytest.mark.parametrize("count", [-1, 3])
def test_raw_past_end(count: int) -> None:
    with pytest.raises(FormatError):
        Reader(b"ab").raw(count)


def test_trailing_bytes_after_done() -> None:
    r = Reader(Writer().uint32(7).getvalue() + b"\0")
    assert r.uint32() == 7
    assert r.remaining == 1
    with pytest.raises(FormatError, match="trailing"):
        r.done()


def test_nested_must_be_used_up() -> None:
    inner = Writer().uint32(1).uint32(2).getvalue()
    r = Reader(string(inner) + b"tail")
    with pytest.raises(FormatError), r.nested() as sub:
        assert sub.uint32() == 1
    r = Reader(string(inner))
    with r.nested() as sub:
        assert (sub.uint32(), sub.uint32()) == (1, 2)
    r.done()


def test_nested_cannot_read_past_its_own_end() -> None:
    r = Reader(string(b"\x00\x00") + b"\x00\x01")
    with pytest.raises(FormatError), r.nested() as sub:
        sub.uint32()


def test_boolean_any_nonzero_is_true() -> None:
    assert Reader(b"\x02").boolean() is True
    assert Reader(b"\x00").boolean() is False


def test_empty_name_list() -> None:
    assert Reader(string(b"")).name_list() == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.lists(st.sampled_from(READS), min_size=1, max_size=6))
def test_arbitrary_bytes_raise_format_error_only(data: bytes, methods: list[str]) -> None:
    r = Reader(data)
    try:
        for method in methods:
            getattr(r, method)()
        r.done()
    except FormatError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.integers(-5, 50))
def test_arbitrary_raw_and_nested(data: bytes, count: int) -> None:
    r = Reader(data)
    try:
        r.raw(count)
        with r.nested() as sub:
            sub.mpint()
            sub.positive_mpint()
        r.rest()
        r.done()
    except FormatError:
        pass


def test_writer_encodes_big_endian() -> None:
    data = Writer().uint32(0x01020304).uint64(0x0102030405060708).getvalue()
    assert data == struct.pack(">IQ", 0x01020304, 0x0102030405060708)
    assert len(Writer().string(b"abc").byte(1)) == 8

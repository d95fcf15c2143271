"""Record: equality by type and fields, hashing, immutability, repr."""

from __future__ import annotations

import pytest

from keytool.record import Record, init
from keytool.transport.channels import ChannelClosed, ChannelEof


class Point(Record):
    __slots__ = ("x", "y")
    x: int
    y: int

    def __init__(self, x: int, y: int = 0) -> None:
        init(self, x=x, y=y)


def test_equality_needs_same_type_and_fields() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(2, 1)
    assert ChannelEof(0) != ChannelClosed(0)  # same fields, different events
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert Point(1) != (1, 0)


def test_immutable_and_repr() -> None:
    point = Point(3)
    with pytest.raises(AttributeError):
        point.x = 4  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.y
    assert repr(point) == "Point(x=3, y=0)"

"""Record: a small immutable value class, for events and results on the client's path.

A frozen slotted dataclass costs about 1-3 ms to define (the generated methods are
compiled with exec at import time); the SSH client defines dozens, and
``keytool exec`` is measured as a whole process. A Record subclass costs a plain
class statement: it lists its fields in ``__slots__``, sets them in ``__init__``
through ``init``, and gets equality (same type, same fields), hashing, a repr and
immutability from here.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Self

_set = object.__setattr__


#: each Record class's fields: the slots of the class and of every class it derives
#: from, the base's first (a subclass that adds none still compares by them)
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields_of(cls: type) -> tuple[str, ...]:
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in names:
                names.append(name)
    found = _FIELDS[cls] = tuple(names)
    return found


class Record:
    __slots__ = ()

    def _names(self) -> tuple[str, ...]:
        cls = type(self)
        found = _FIELDS.get(cls)
        return found if found is not None else _fields_of(cls)

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._names())

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Record)
            and type(other) is type(self)
            and (self._fields() == other._fields())
        )

    def __hash__(self) -> int:
        return hash((type(self), self._fields()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._names())
        return f"{type(self).__name__}({shown})"

    def _replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (as a named tuple's ``_replace``); the
        subclass's ``__init__`` takes every field by name."""
        unknown = set(changes) - set(self._names())
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        fields = dict(zip(self._names(), self._fields(), strict=True))
        fields.update(changes)
        return type(self)(**fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")


def init(record: Record, **fields: object) -> None:
    """Set the fields of a new record (for its ``__init__``)."""
    for name, value in fields.items():
        _set(record, name, value)

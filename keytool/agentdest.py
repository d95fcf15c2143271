"""Destination constraints on agent keys (OpenSSH's ``restrict-destination-v00@openssh.com``
key constraint, PROTOCOL.agent §2): the hops a key may be used on, and their encoding.

A constraint is a hop ``from > to``: ``from`` is the origin (no host name, no keys: the
machine the agent runs on) or a host known by its host keys; ``to`` is a host known by
its host keys (plain keys, or CA keys that certify host certificates for its name),
with an optional user name pattern. Pure: no files, no sockets. Decoding is as strict as
OpenSSH's ssh-agent: anything malformed or inconsistent raises FormatError.
"""

from __future__ import annotations

from dataclasses import dataclass

from keytool.errors import FormatError
from keytool.keys.base import PublicKey
from keytool.keys.blob import public_from_wire
from keytool.wire import Reader, Writer

EXT_RESTRICT_DESTINATION = "restrict-destination-v00@openssh.com"
# ssh-agent's limits: constraints per key, length of a user name pattern
MAX_CONSTRAINTS = 1024
MAX_USER_LENGTH = 256


@dataclass(frozen=True, slots=True)
class HopKey:
    key: PublicKey
    is_ca: bool = False


@dataclass(frozen=True, slots=True)
class Hop:
    """One end of a constraint; ``None`` fields are absent (empty on the wire)."""

    user: str | None = None  # a pattern, as ssh matches user names
    hostname: str | None = None
    keys: tuple[HopKey, ...] = ()

    def describe(self, empty: str) -> str:
        user = f"{self.user}@" if self.user is not None else ""
        return f"{user}{self.hostname if self.hostname is not None else empty}"


@dataclass(frozen=True, slots=True)
class DestConstraint:
    source: Hop  # the "from" hop: Hop() is the origin
    to: Hop

    def describe(self) -> str:
        return f"{self.source.describe('(ORIGIN)')} > {self.to.describe('(ANY)')}"


def _cstring(r: Reader, what: str) -> str | None:
    """A C string as ssh-agent reads it: no NUL inside; empty means absent."""
    raw = r.string()
    if b"\0" in raw:
        raise FormatError(f"malformed destination constraint: NUL in the {what}")
    return raw.decode("utf-8", "surrogateescape") if raw else None


def _decode_hop(data: bytes) -> Hop:
    r = Reader(data, "destination constraint hop")
    raw_user = r.string()
    if b"\0" in raw_user:
        raise FormatError("malformed destination constraint: NUL in the user name")
    hostname = _cstring(r, "host name")
    if r.string():
        raise FormatError("destination constraint hop with unsupported extensions")
    if len(raw_user) > MAX_USER_LENGTH:
        raise FormatError("destination constraint user name pattern too long")
    user = raw_user.decode("utf-8", "surrogateescape") if raw_user else None
    keys: list[HopKey] = []
    while r.remaining:
        key = public_from_wire(r.string())
        keys.append(HopKey(key, r.byte() != 0))
    return Hop(user, hostname, tuple(keys))


def _decode_constraint(data: bytes) -> DestConstraint:
    r = Reader(data, "destination constraint")
    source_data, to_data = r.string(), r.string()
    extensions = r.string()
    r.done()
    source, to = _decode_hop(source_data), _decode_hop(to_data)
    if extensions:
        raise FormatError("destination constraint with unsupported extensions")
    if (source.hostname is None) != (not source.keys) or source.user is not None:
        raise FormatError('inconsistent "from" in a destination constraint')
    if to.hostname is None or not to.keys:
        raise FormatError('incomplete "to" in a destination constraint')
    return DestConstraint(source, to)


def decode_destinations(data: bytes) -> tuple[DestConstraint, ...]:
    """The constraints in the extension's data (the body of its one string: a string
    for each constraint)."""
    outer = Reader(data, "destination constraints")
    found: list[DestConstraint] = []
    while outer.remaining:
        if len(found) >= MAX_CONSTRAINTS:
            raise FormatError("too many destination constraints")
        found.append(_decode_constraint(outer.string()))
    return tuple(found)


def _text(value: str | None) -> bytes:
    return value.encode("utf-8", "surrogateescape") if value is not None else b""


def _encode_hop(hop: Hop) -> bytes:
    w = Writer().string(_text(hop.user)).string(_text(hop.hostname)).string(b"")
    for entry in hop.keys:
        w.string(entry.key.to_wire()).byte(1 if entry.is_ca else 0)
    return w.getvalue()


def encode_destinations(constraints: tuple[DestConstraint, ...]) -> bytes:
    """The extension's data (the body of its one string), as ssh-add sends it."""
    outer = Writer()
    for constraint in constraints:
        outer.string(
            Writer()
            .string(_encode_hop(constraint.source))
            .string(_encode_hop(constraint.to))
            .string(b"")
            .getvalue()
        )
    return outer.getvalue()

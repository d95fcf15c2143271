"""Time spans as OpenSSH writes them (sshd_config(5) TIME FORMATS): ``90``, ``1h30m``, ``2d``."""

from __future__ import annotations

from keytool.errors import KeytoolError

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SECONDS = 0xFFFFFFFF  # the agent protocol carries a uint32 (RFC 9987 §5.2.7.1)


def parse_seconds(text: str) -> int:
    """Seconds in ``text``; KeytoolError when it is not a time span."""
    total = 0
    number = ""
    spec = text.strip().lower()
    if not spec:
        raise KeytoolError("invalid time span: empty")
    for char in spec + "\0":
        if char.isdigit():
            number += char
            continue
        unit = "" if char == "\0" else char
        if unit not in _UNITS or not number:
            if char == "\0" and not number:
                break
            raise KeytoolError(f"invalid time span {text!r}: use e.g. 3600, 90m or 1h30m")
        total += int(number) * _UNITS[unit]
        number = ""
    if total > MAX_SECONDS:
        raise KeytoolError(f"time span {text!r} is too long")
    return total


#: the longest lifetime ssh-add and ssh-agent take (misc.c convtime: an int)
MAX_LIFETIME = 0x7FFFFFFF


def parse_lifetime(text: str) -> int:
    """``-t`` of ssh-add and ssh-agent: a time span of at most MAX_LIFETIME seconds,
    refused in their words otherwise."""
    try:
        seconds = parse_seconds(text)
    except KeytoolError:
        raise KeytoolError("Invalid lifetime") from None
    if seconds > MAX_LIFETIME:
        raise KeytoolError("Invalid lifetime")
    return seconds

"""A port as ssh reads one (its a2port): a number from 0 to 65535, a sign or leading
blanks allowed as strtonum allows them, or else a TCP service name (/etc/services)."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")


def a2port(text: str) -> int | None:
    """The port ``text`` names, or None when it names none."""
    if _NUMBER.fullmatch(text):
        value = int(text)
        return value if 0 <= value <= 65535 else None
    if not text or "\0" in text:
        return None
    import socket

    try:
        return socket.getservbyname(text, "tcp")
    except (OSError, UnicodeError):
        return None

"""Untrusted text shown as OpenSSH shows it (utf8.c's asmprintf): characters the
terminal prints as they are, every other byte as a backslash and three octal digits.

In a UTF-8 locale a valid UTF-8 character that is printable stays; in any other
locale only printable ASCII does. ``utf8_locale`` tells which one OpenSSH's tools
would use in this environment."""

from __future__ import annotations

import functools
import unicodedata

# printable for the C library (wcwidth >= 0) though not for str.isprintable
_ALSO_PRINTABLE = frozenset(("Zs", "Cf", "Co"))


def _octal(data: bytes) -> str:
    return "".join(f"\\{byte:03o}" for byte in data)


def _utf8_length(lead: int) -> int:
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0  # never starts a character


@functools.lru_cache(maxsize=32)
def _byte_table(keep: str, slash: bool) -> tuple[str, ...]:
    """What each byte alone shows as: printable ASCII and ``keep`` as they are."""
    table = [chr(b) if 0x20 <= b < 0x7F or chr(b) in keep else f"\\{b:03o}" for b in range(256)]
    if slash:
        table[0x5C] = "\\\\"
    return tuple(table)


def escape(data: bytes, utf8: bool, keep: str = "", slash: bool = False) -> str:
    """``data`` with every byte that does not make a printable character as ``\\ooo``
    (newlines and tabs too: the result is one line), but the characters in ``keep``;
    with ``slash`` a backslash as two (as strnvis writes it)."""
    if not utf8 or data.isascii():
        # a byte alone makes the character or not: one table lookup each
        table = _byte_table(keep, slash)
        return "".join([table[byte] for byte in data])
    out: list[str] = []
    at = 0
    while at < len(data):
        if slash and data[at] == 0x5C:
            out.append("\\\\")
            at += 1
            continue
        if chr(data[at]) in keep:
            out.append(chr(data[at]))
            at += 1
            continue
        size = _utf8_length(data[at]) or 1
        chunk = data[at : at + size]
        try:
            char = chunk.decode("utf-8")
        except UnicodeDecodeError:
            out.append(_octal(data[at : at + 1]))
            at += 1
            continue
        printable = char.isprintable() or unicodedata.category(char) in _ALSO_PRINTABLE
        out.append(char if printable else _octal(chunk))
        at += size
    return "".join(out)


def printable(text: str, limit: int, keep: str = "") -> str:
    """Text a peer sent made safe for a terminal: its first ``limit`` characters, each
    one the terminal would not show as it is (but those in ``keep``) as "?", and
    "..." when there was more."""
    head = text[:limit]
    if not head.isprintable():
        head = "".join(ch if ch.isprintable() or ch in keep else "?" for ch in head)
    return head + "..." if len(text) > limit else head


def safe(text: str) -> str:
    """A message keytool prints that may hold a peer's words (a path, a server's line):
    every character a terminal would act on as "?", line breaks and tabs kept."""
    return printable(text, len(text), keep="\n\t")


def utf8_locale() -> bool:
    """Whether OpenSSH's tools would run in a UTF-8 locale here: the character set the
    environment's LC_ALL, LC_CTYPE or LANG names (an unknown locale is the C one).
    Python turns a C locale into C.UTF-8 at start (PEP 538, with UTF-8 mode); then
    the environment said C and the answer is no."""
    import locale
    import os
    import sys

    try:
        codeset = locale.nl_langinfo(locale.CODESET)
    except (AttributeError, ValueError):
        return False
    if codeset.upper().replace("-", "") != "UTF8":
        return False
    explicit = os.environ.get("PYTHONUTF8") == "1" or "utf8" in sys._xoptions
    # UTF-8 mode that nobody asked for means the locale at start was C or POSIX
    return not sys.flags.utf8_mode or explicit


def as_logged(text: str, keep: str = "", slash: bool = False) -> str:
    """Text as OpenSSH's log lines show it (strnvis with VIS_OCTAL, whatever the locale):
    printable ASCII as it is, every other byte as ``\\ooo``, but the characters in
    ``keep``; bytes kept as surrogate escapes are shown as the bytes they were. With
    ``slash`` a backslash is doubled, as strnvis does."""
    return escape(text.encode("utf-8", "surrogateescape"), utf8=False, keep=keep, slash=slash)


#: what ssh's log lines on stderr leave as they are besides printable ASCII
#: (strnvis with VIS_SAFE): BEL, backspace, tab, newline and carriage return
VIS_SAFE = "\a\b\t\n\r"


def logged(text: str, limit: int = 1000) -> str:
    """A peer's words as ssh's log functions write them on stderr (strnvis with
    VIS_SAFE | VIS_OCTAL) in a C or UTF-8 locale: printable ASCII and VIS_SAFE's
    controls as they are, a backslash doubled, every other byte (UTF-8 too) as
    ``\\ooo``; only the first ``limit`` bytes, as ssh's "%.Ns" formats cut them. (In a
    single-byte locale such as Latin-1 ssh leaves the bytes that locale calls printable
    as they are; and it cuts a whole escaped log line at 1023 characters.)"""
    data = text.encode("utf-8", "surrogateescape")[:limit]
    return escape(data, utf8=False, keep=VIS_SAFE, slash=True)


class Logged:
    """Mixin for an error whose message already holds a peer's words as ssh logs them
    (see ``logged``): printed as it is, not made safe a second time."""


def shown(text: str, keep: str = "") -> str:
    """Text as OpenSSH's tools print a name or a peer's words (mprintf, fmprintf,
    asmprintf): bytes that make no printable character in this locale as ``\\ooo``
    (bytes kept as surrogate escapes too), but the characters in ``keep``."""
    return escape(text.encode("utf-8", "surrogateescape"), utf8_locale(), keep=keep)


def shown_comment(comment: str) -> str:
    """A key comment in a listing (ssh-keygen -l prints it with mprintf): bytes that
    make no printable character escaped, tabs as they are."""
    return shown(comment, keep="\t")

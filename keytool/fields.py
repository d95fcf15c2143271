"""Fields of the lines of OpenSSH's text files, cut where OpenSSH cuts them.

known_hosts, authorized_keys, allowed_signers, revoked keys lists and .pub files hold
lines of words. OpenSSH separates those words by runs of spaces and tabs only, and
skips only spaces and tabs at the start of a line; any other character that Python
counts as white space (vertical tab, form feed, carriage return, U+00A0, U+0085, the
file separators, ...) belongs to the word it stands in. Python's ``str.split()`` and
``str.strip()`` cut at all of them, so they are not used on these lines.

A key's base64 word is the exception, as OpenSSH decodes it: its decoder passes over
C white space (space, tab, newline, vertical tab, form feed, carriage return) inside
the word, so ``AAAA...=\\r`` at the end of a CRLF line is still the key, while any
other stray character makes the key unreadable. Past that white space the decoder
(b64_pton) is strict: padding exactly where it belongs, none missing, none extra, and
no bits set in what the last character holds beyond the last byte (``b64_decode``).

OpenSSH reads each line of these files as a C string: a line ends at its first NUL
byte, whatever follows it on the line (``c_line``).
"""

from __future__ import annotations

import base64
import re

#: what separates the words of a line, and what is skipped at its start
BLANKS = " \t"
#: what OpenSSH's base64 decoder passes over inside a key's base64 word
_BASE64_SPACE = "\n\v\f\r"
_DROP_BASE64_SPACE = str.maketrans("", "", _BASE64_SPACE)
_BASE64_SPACE_BYTES = _BASE64_SPACE.encode("ascii")
_BLANK_RUN = re.compile("[ \t]+")


def c_line(line: str) -> str:
    """``line`` up to its first NUL, as OpenSSH reads a line it got with getline: a C
    string, which ends there."""
    return line if "\0" not in line else line[: line.index("\0")]


def c_line_bytes(line: bytes) -> bytes:
    """``c_line`` of a line held as bytes."""
    return line if b"\0" not in line else line[: line.index(b"\0")]


def b64_decode(word: str | bytes, skip_space: bool = True) -> bytes:
    """The bytes of a base64 word as OpenSSH's b64_pton decodes it, with the C white
    space it holds passed over (not with ``skip_space``: a hashed host name, which
    ssh compares as text); ValueError when b64_pton refuses it. b64_pton takes only the
    canonical encoding: a word is read when encoding what it decodes to gives it back,
    so missing or extra ``=``, ``=`` inside, bits left over in the last character and
    any character outside the alphabet are refused."""
    if skip_space:
        word = base64_word(word)
    data = word.encode("ascii") if isinstance(word, str) else word  # UnicodeError: ValueError
    decoded = base64.b64decode(data, validate=True)
    if base64.b64encode(decoded) != data:
        raise ValueError("not base64 as OpenSSH reads it")
    return decoded


def skip_blanks(line: str) -> str:
    """``line`` without the spaces and tabs it starts with (and nothing else)."""
    return line.lstrip(BLANKS)


def split_blanks(line: str, maxsplit: int = -1) -> list[str]:
    """The words of ``line`` as OpenSSH cuts them: the leading spaces and tabs skipped,
    then cut at each run of spaces and tabs, at most ``maxsplit`` times (-1: no limit).
    Like ``str.split(None, maxsplit)`` otherwise: the last word is the rest of the line
    as it is (trailing blanks kept), and there is no empty word at either end."""
    text = line.lstrip(BLANKS)
    if "\t" in text or "  " in text:
        words = _BLANK_RUN.split(text, maxsplit if maxsplit >= 0 else 0)
    else:  # single spaces alone, as OpenSSH writes its lines: the quicker cut
        words = text.split(" ", maxsplit)
    if words and not words[-1]:
        words.pop()
    return words


def split_blank_bytes(line: bytes, maxsplit: int = -1) -> list[bytes]:
    """``split_blanks`` of a line held as bytes (every byte kept as it is)."""
    return [word.encode("latin-1") for word in split_blanks(line.decode("latin-1"), maxsplit)]


def first_word(line: str) -> tuple[str, str]:
    """The first word of ``line`` (after its leading blanks) and the rest after the
    blanks that follow it; ("", "") for a line of blanks."""
    words = split_blanks(line, 1)
    if not words:
        return "", ""
    return words[0], words[1] if len(words) > 1 else ""


def base64_word(word: str | bytes) -> str | bytes:
    """A key's base64 word as OpenSSH's decoder reads it: the C white space it holds
    (a carriage return from a CRLF line end, a form feed...) left out."""
    if isinstance(word, bytes):
        return word.translate(None, _BASE64_SPACE_BYTES)
    return word.translate(_DROP_BASE64_SPACE)


def blank_or_line_end(text: str) -> bool:
    """Nothing but a line end (or nothing) after the leading blanks: a blank line of a
    file written with CRLF line ends, from which OpenSSH reads no key either."""
    return skip_blanks(text) in ("", "\r")

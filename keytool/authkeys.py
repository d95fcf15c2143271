"""authorized_keys lines (sshd(8) AUTHORIZED_KEYS FILE FORMAT): options, key, comment."""

from __future__ import annotations

from dataclasses import dataclass

from keytool.errors import FormatError
from keytool.fields import blank_or_line_end, c_line, first_word, skip_blanks, split_blanks
from keytool.keys.base import PublicKey
from keytool.keys.pubfile import decode_key, format_public_line, looks_like_key_type


@dataclass(frozen=True, slots=True)
class AuthorizedKey:
    options: str  # as written, e.g. 'from="10.0.0.0/8",no-pty'; "" when none
    key: PublicKey
    comment: str

    def to_line(self) -> str:
        line = format_public_line(self.key, self.comment)
        return f"{self.options} {line}" if self.options else line


def split_options(line: str) -> tuple[str, str]:
    """Split a leading option list off ``line`` as sshd does
    (sshkey_advance_past_options): the list ends at the first space or tab outside
    double quotes; a double quote opens or closes a quoted part, except after a
    backslash: ``\\"`` is passed over as a pair, inside quotes or out. A backslash
    before anything else is an ordinary character (``\\\\"`` is a backslash, then
    the pair). An unclosed quote at the line's end is a FormatError."""
    quoted = False
    i = 0
    end = len(line)
    while i < end:
        ch = line[i]
        if ch == "\\" and line[i + 1 : i + 2] == '"':
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in " \t":
            return line[:i], skip_blanks(line[i:])
        i += 1
    if quoted:
        raise FormatError("invalid authorized_keys line: unterminated quote in options")
    return line, ""


def parse_line(line: str) -> AuthorizedKey | None:
    """One authorized_keys line; None for blank lines and comments.

    Words are cut as sshd cuts them: at spaces and tabs only, so a line whose words
    stand apart by other white space (a form feed, U+00A0...) holds no key for sshd
    and none here. Only spaces and tabs are skipped at its start; a blank line of a
    CRLF file (its carriage return alone) holds no key either. The comment is the rest
    of the line as it is. The line ends at its first NUL, as the C string sshd reads:
    what follows it is not read at all."""
    line = c_line(line)
    if blank_or_line_end(line):
        return None
    text = skip_blanks(line)
    if text.startswith("#"):
        return None
    options = ""
    if not looks_like_key_type(first_word(text)[0]):
        options, text = split_options(text)
        if not text:
            raise FormatError("invalid authorized_keys line: options but no key")
    parts = split_blanks(text, 2)
    if len(parts) < 2:
        raise FormatError("invalid authorized_keys line: expected 'type base64 [comment]'")
    key = decode_key(parts[0], parts[1])
    return AuthorizedKey(options, key, parts[2] if len(parts) > 2 else "")


def split_option_list(options: str) -> list[str]:
    """An option list as sshd reads it (authorized_keys, allowed_signers):
    ``from="a,b",no-pty`` -> ['from="a,b"', 'no-pty'], commas inside quotes kept,
    empty entries dropped."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in options:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part]

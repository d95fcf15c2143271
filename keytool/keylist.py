"""The public keys ssh-keygen -l, -e and -r find in a file, found as ssh-keygen finds
them: DSA and security keys included (keys/shown.py), a line read up to a NUL byte as
C reads it, and a pipe (``-f <(ssh-keyscan host)``) read like a file."""

from __future__ import annotations

import os
import stat

from keytool import files
from keytool.errors import FormatError, KeytoolError, PassphraseError
from keytool.keyfiles import ListedKey, is_private_text, public_of_file
from keytool.keys.base import PublicKey

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


def read_key_text(path: str | os.PathLike[str]) -> bytes:
    """A key file's bytes; a pipe or FIFO is read too, as ssh-keygen reads one."""
    return files.read_file(path, "key file", pipes=True)


def _is_regular(path: str | os.PathLike[str]) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def keys_in_file(path: Path) -> list[ListedKey]:
    """What ``ssh-keygen -l -f FILE`` lists."""
    text = read_key_text(path)
    first = text.split(b"\n", 1)[0].split(b"\0", 1)[0]
    if is_private_text(text) or b"PRIVATE KEY" in first:
        # ssh-keygen opens a private key file again by its name: a pipe is used up
        if not _is_regular(path):
            raise FormatError(f"{path} is not a key file")
        shown = _shown_pub(path)
        if shown is not None:
            return [shown]
        try:
            return [public_of_file(path)]
        except PassphraseError:
            raise PassphraseError(
                f"{path} is encrypted and has no {path}.pub beside it: its public key "
                "needs the passphrase (keytool pub -f FILE)"
            ) from None
        except KeytoolError as exc:
            raise type(exc)(exc if str(path) in str(exc) else f"{path}: {exc}") from None
    found = keys_in_text(text)
    if not found:
        raise FormatError(f"{path} is not a public key file")
    return found


def _shown_pub(path: str | os.PathLike[str]) -> ListedKey | None:
    """The key of FILE.pub when keytool does not read its private key (DSA, security
    keys), as ssh-keygen -l takes a private key's FILE.pub with its comment."""
    from keytool.keys.shown import ShownPublic

    found = first_key_line(f"{os.fspath(path)}.pub")
    if found is None or not isinstance(found[0], ShownPublic):
        return None
    return ListedKey(found[0], found[1])


def keys_in_text(text: bytes) -> list[ListedKey]:
    """Every key of a .pub, authorized_keys or known_hosts file, in order, labelled
    byte for byte as ``ssh-keygen -l`` labels them.

    The label is the comment, or the options / host names in front of the key.
    @revoked and @cert-authority lines are not listed. A bare key without a comment is
    labelled the way ssh-keygen does: with whatever its comment pointer still points at
    in the reused line buffer ("no comment" when it was never set). _LineBuffer models
    that buffer, so that the output matches even for such files. A line ends at its
    first NUL byte, as in C.
    """
    buffer = _LineBuffer()
    found: list[ListedKey] = []
    lines = text.split(b"\n")
    last_ended = not lines or lines[-1] == b""
    if last_ended:
        lines.pop()
    for number, raw in enumerate(lines, 1):
        buffer.load(raw, ended=number < len(lines) or last_ended)
        line = raw.split(b"\0", 1)[0]
        start = _skip_blanks(line, 0)
        if start == len(line) or line[start : start + 1] in (b"#", b"@"):
            continue
        parsed = _key_at(line, start)
        if parsed is None:
            # options (authorized_keys) or host names (known_hosts) before the key
            if _leading_number(line, start):
                continue  # ssh-keygen takes it for an SSH1 key's bits, and skips it
            prefix_end = _prefix_end(line, start)
            if prefix_end == len(line):
                continue
            parsed = _key_at(line, _skip_blanks(line, prefix_end + 1))
            if parsed is None:
                continue
            buffer.terminate(prefix_end)
            buffer.point_at(start)
        key, comment_at = parsed
        if comment_at < len(line) and line[comment_at : comment_at + 1] != b"#":
            buffer.point_at(comment_at)  # a comment that starts with '#' is not taken
        found.append(ListedKey(key, buffer.label()))
    return found


def _skip_blanks(raw: bytes, at: int) -> int:
    while at < len(raw) and raw[at] in b" \t":
        at += 1
    return at


def _field_end(raw: bytes, at: int) -> int:
    while at < len(raw) and raw[at] not in b" \t":
        at += 1
    return at


def _leading_number(line: bytes, start: int) -> bool:
    """strtol's view of the line: a number other than 0 followed by a blank."""
    at = start
    if line[at : at + 1] in (b"+", b"-"):
        at += 1
    digits = at
    while at < len(line) and line[at : at + 1].isdigit():
        at += 1
    if at == digits or int(line[digits:at]) == 0:
        return False
    return line[at : at + 1] in (b" ", b"\t")


def _prefix_end(line: bytes, at: int) -> int:
    """Where options or host names end: the first blank outside double quotes
    (a backslash before a quote escapes it), as ssh-keygen -l skips them."""
    quoted = False
    while at < len(line) and (quoted or line[at] not in b" \t"):
        if line[at : at + 2] == b'\\"':
            at += 1
        elif line[at : at + 1] == b'"':
            quoted = not quoted
        at += 1
    return min(at, len(line))


def _key_at(line: bytes, at: int) -> tuple[PublicKey, int] | None:
    """The key whose type name starts at ``at``, and where the rest of the line (its
    comment) starts."""
    type_end = _field_end(line, at)
    if type_end == len(line):
        return None
    blob_start = _skip_blanks(line, type_end)
    blob_end = _field_end(line, blob_start)
    key = decode_line_key(line[at:type_end], line[blob_start:blob_end])
    if key is None:
        return None
    return key, _skip_blanks(line, blob_end)


def decode_line_key(key_type: bytes, b64: bytes) -> PublicKey | None:
    """The key of a line's type and base64 fields (blanks inside the base64 ignored,
    as OpenSSH's decoder does), DSA and security keys included; None if not a key."""
    from keytool.keys.pubfile import decode_key

    try:
        return decode_key(key_type.decode("ascii"), b"".join(b64.split()), shown=True)
    except (FormatError, UnicodeDecodeError):
        return None


class _LineBuffer:
    """The line buffer getline(3) reuses in ssh-keygen, and its stale comment pointer."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.comment: int | None = None

    def load(self, raw: bytes, ended: bool) -> None:
        # the newline is overwritten with a NUL, unless a NUL came before it
        newline = b"\n" if b"\0" in raw and ended else b"\0"
        line = raw + (newline + b"\0" if ended else b"\0")
        if len(self.data) < len(line):
            self.data.extend(bytes(len(line) - len(self.data)))
        self.data[: len(line)] = line

    def terminate(self, at: int) -> None:
        self.data[at] = 0

    def point_at(self, at: int) -> None:
        self.comment = at

    def label(self) -> str | None:
        if self.comment is None:
            return None
        end = self.data.find(b"\0", self.comment)
        return bytes(self.data[self.comment : end if end >= 0 else None]).decode(
            "utf-8", "surrogateescape"
        )


def first_key_line(path: str | os.PathLike[str]) -> tuple[PublicKey, str] | None:
    """The first key line of a public key file, as ssh-keygen's sshkey_load_public
    looks for it: comment lines and lines that do not parse (options first, text, a
    key type it does not know) are passed over, a private key's armour ends the
    search. The comment is the rest of the line, or the file's name when there is
    none. None when the file cannot be read or holds no key."""
    try:
        text = read_key_text(path)
    except KeytoolError:
        return None
    for raw in text.split(b"\n"):
        line = raw.split(b"\0", 1)[0]
        if line[:1] in (b"#", b""):
            continue
        if line.startswith(b"-----BEGIN"):
            return None
        start = _skip_blanks(line, 0)
        parsed = _key_at(line, start)
        if parsed is None:
            continue
        key, comment_at = parsed
        rest = line[comment_at:].partition(b"\r")[0]
        return key, rest.decode("utf-8", "surrogateescape") if rest else os.fspath(path)
    return None


def load_public(path: str | os.PathLike[str]) -> tuple[PublicKey, str] | None:
    """The public key ssh-keygen -e and -r find for ``path`` without a passphrase: the
    first key line of the file, else of FILE.pub, else the public part of the private
    key. None when there is none that needs no passphrase."""
    for candidate in (os.fspath(path), f"{os.fspath(path)}.pub"):
        found = first_key_line(candidate)
        if found is not None:
            return found
    if not _is_regular(path):
        return None
    text = files.read_file(path, "key file")
    if not is_private_text(text):
        return None
    from keytool.keys import is_encrypted_private, openssh

    if openssh.is_openssh_private(text) or not is_encrypted_private(text):
        return public_of_file(path).key, ""
    return None

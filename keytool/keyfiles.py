"""Key files on disk: load a private key (asking for its passphrase when needed), find
its .pub, and list every key a public, authorized_keys or known_hosts file holds."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from keytool import files
from keytool.errors import FormatError, KeytoolError, PassphraseError
from keytool.keys.base import PrivateKey, PublicKey
from keytool.record import Record, init

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


class ListedKey(Record):
    __slots__ = ("comment", "key")
    key: PublicKey
    comment: str | None  # None: ssh-keygen says "no comment"

    def __init__(self, key: PublicKey, comment: str | None) -> None:
        init(self, key=key, comment=comment)


def pub_path(path: Path) -> Path:
    from pathlib import Path  # here: ``keytool exec`` reads key files without pathlib

    return Path(f"{path}.pub")


def is_private_text(text: bytes) -> bool:
    from keytool.keys import openssh, pem

    return openssh.is_openssh_private(text) or pem.is_pem_private(text)


def ask_passphrase(path: str | os.PathLike[str]) -> bytes:
    from keytool import terminal

    # as ssh-keygen asks (read_passphrase's RP_ALLOW_STDIN)
    return terminal.read_secret(
        f"Enter passphrase for {path}: ", f"the passphrase for {path}", stdin=True
    ).encode("utf-8", "surrogateescape")


def load_private_file(
    path: str | os.PathLike[str],
    passphrase: bytes | None = None,
    ask: Callable[[str | os.PathLike[str]], bytes] | None = ask_passphrase,
) -> tuple[PrivateKey, str]:
    """Load a private key file; permissions checked as OpenSSH does; asks for the
    passphrase through ``ask`` when the key is encrypted and none was given."""
    from keytool.keys import is_encrypted_private, load_private

    text = files.read_private_key_file(path)
    if not is_private_text(text):
        raise FormatError(f"{path} is not a private key file")
    if passphrase is None and is_encrypted_private(text):
        if ask is None:
            raise PassphraseError(f"{path} is encrypted: a passphrase is needed")
        passphrase = ask(path)
    try:
        return load_private(text, passphrase)
    except KeytoolError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def public_of_file(path: str | os.PathLike[str]) -> ListedKey:
    """The public key of a private key file without its passphrase: from the file's
    own public part (openssh-key-v1) or from FILE.pub; the comment as ssh-keygen shows it."""
    from keytool.keys import openssh
    from keytool.keys.pubfile import parse_public_text

    text = files.read_file(path, "key file")
    pub = f"{os.fspath(path)}.pub"
    comment_from_pub: str | None = None
    pub_key: PublicKey | None = None
    if os.path.exists(pub):
        # a FILE.pub that cannot be read or parsed is passed over, as ssh-keygen -l
        # does: the key file itself still tells its public key
        with contextlib.suppress(KeytoolError):
            pub_key, comment_from_pub = parse_public_text(files.read_file(pub, "public key"))
        if pub_key is not None and not comment_from_pub:
            # as ssh-keygen -l and ssh-add -d (sshkey_load_public): a FILE.pub without a
            # comment is labelled with its own name
            comment_from_pub = pub
    if openssh.is_openssh_private(text):
        outer = openssh.parse(text)
        if comment_from_pub is not None and pub_key == outer.public:
            return ListedKey(outer.public, comment_from_pub)
        if not outer.is_encrypted:
            # the key file's own comment, even an empty one (ssh-keygen prints it so)
            _, comment = openssh.decrypt(outer, None)
            return ListedKey(outer.public, comment)
        return ListedKey(outer.public, None)
    if pub_key is not None and comment_from_pub is not None:
        return ListedKey(pub_key, comment_from_pub or None)
    from keytool.keys import load_private

    key, comment = load_private(text, None)
    return ListedKey(key.public, comment or None)


def keys_in_text(text: bytes) -> list[ListedKey]:
    """Every key of a .pub, authorized_keys or known_hosts file, in order, labelled
    byte for byte as ``ssh-keygen -l`` labels them.

    The label is the comment, or the options / host names in front of the key.
    @revoked and @cert-authority lines are not listed. A bare key without a comment is
    labelled the way ssh-keygen does: with whatever its comment pointer still points at
    in the reused line buffer ("no comment" when it was never set). _LineBuffer models
    that buffer, so that the output matches even for such files.
    """
    from keytool.authkeys import split_options

    buffer = _LineBuffer()
    found: list[ListedKey] = []
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for raw in lines:
        buffer.load(raw)
        start = _skip_blanks(raw, 0)
        if start == len(raw) or raw[start : start + 1] in (b"#", b"@"):
            continue
        parsed = _key_at(raw, start)
        if parsed is None:
            # options (authorized_keys) or host names (known_hosts) before the key
            try:
                prefix, _ = split_options(raw[start:].decode("utf-8", "surrogateescape"))
            except FormatError:
                continue
            prefix_end = start + len(prefix.encode("utf-8", "surrogateescape"))
            parsed = _key_at(raw, _skip_blanks(raw, prefix_end))
            if parsed is None:
                continue
            buffer.terminate(prefix_end)
            buffer.point_at(start)
        key, comment_at = parsed
        if comment_at is not None:
            buffer.point_at(comment_at)
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


def _key_at(raw: bytes, at: int) -> tuple[PublicKey, int | None] | None:
    """The key whose type name starts at ``at``, and where its comment starts (if any)."""
    from keytool.keys.pubfile import decode_key

    type_end = _field_end(raw, at)
    blob_start = _skip_blanks(raw, type_end)
    blob_end = _field_end(raw, blob_start)
    try:
        key = decode_key(raw[at:type_end].decode("ascii"), raw[blob_start:blob_end].decode("ascii"))
    except (FormatError, UnicodeDecodeError):
        return None
    comment_at = _skip_blanks(raw, blob_end)
    return key, comment_at if comment_at < len(raw) else None


class _LineBuffer:
    """The line buffer getline(3) reuses in ssh-keygen, and its stale comment pointer."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.comment: int | None = None

    def load(self, raw: bytes) -> None:
        line = raw + b"\0\0"  # the newline, stripped to NUL, then getline's NUL
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


def keys_in_file(path: Path) -> list[ListedKey]:
    """What ``ssh-keygen -l -f FILE`` lists."""
    text = files.read_file(path, "key file")
    if is_private_text(text):
        return [public_of_file(path)]
    found = keys_in_text(text)
    if not found:
        raise FormatError(f"{path} is not a public key file")
    return found


def public_file_text(key: PublicKey, comment: str) -> bytes:
    """A .pub file's bytes exactly as ssh-keygen writes them: ``type base64 comment``;
    with an empty comment the line keeps its separating space."""
    from keytool.keys.pubfile import format_public_line

    line = format_public_line(key, comment)
    return (line + (" " if not comment else "") + "\n").encode("utf-8", "surrogateescape")


def write_key_pair(
    path: Path, private_text: bytes, public: PublicKey, comment: str, keep_mode: bool = False
) -> None:
    """Write a private key file and its .pub, each atomically, with OpenSSH's modes."""
    files.write_atomic(path, private_text, files.PRIVATE_MODE, keep_mode=keep_mode)
    files.write_atomic(
        pub_path(path), public_file_text(public, comment), files.public_mode(), keep_mode=keep_mode
    )


def expand(path: str) -> Path:
    from pathlib import Path

    return Path(os.path.expanduser(path))

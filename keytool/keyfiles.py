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

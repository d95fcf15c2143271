"""Key files on disk: load a private key (asking for its passphrase when needed), find
its .pub, and list every key a public, authorized_keys or known_hosts file holds."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from keytool import files
from keytool.errors import FormatError, KeytoolError, PassphraseError
from keytool.keys.base import PrivateKey, PublicKey


class ListedKey(NamedTuple):
    key: PublicKey
    comment: str


def pub_path(path: Path) -> Path:
    return Path(f"{path}.pub")


def is_private_text(text: bytes) -> bool:
    from keytool.keys import openssh, pem

    return openssh.is_openssh_private(text) or pem.is_pem_private(text)


def ask_passphrase(path: Path) -> bytes:
    from keytool import terminal

    return terminal.read_secret(
        f"Enter passphrase for {path}: ", f"the passphrase for {path}"
    ).encode("utf-8")


def load_private_file(
    path: Path,
    passphrase: bytes | None = None,
    ask: Callable[[Path], bytes] | None = ask_passphrase,
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


def public_of_file(path: Path) -> ListedKey:
    """The public key of a private key file without its passphrase: from the file's
    own public part (openssh-key-v1) or from FILE.pub; the comment as ssh-keygen shows it."""
    from keytool.keys import openssh
    from keytool.keys.pubfile import parse_public_text

    text = files.read_file(path, "key file")
    pub = pub_path(path)
    comment_from_pub: str | None = None
    pub_key: PublicKey | None = None
    if pub.exists():
        pub_key, comment_from_pub = parse_public_text(files.read_file(pub, "public key"))
    if openssh.is_openssh_private(text):
        outer = openssh.parse(text)
        if comment_from_pub is not None and pub_key == outer.public:
            return ListedKey(outer.public, comment_from_pub)
        if not outer.is_encrypted:
            _, comment = openssh.decrypt(outer, None)
            return ListedKey(outer.public, comment)
        return ListedKey(outer.public, "")
    if pub_key is not None and comment_from_pub is not None:
        return ListedKey(pub_key, comment_from_pub)
    from keytool.keys import load_private

    key, comment = load_private(text, None)
    return ListedKey(key.public, comment)


def keys_in_text(text: bytes) -> list[ListedKey]:
    """Every key of a .pub, authorized_keys or known_hosts file, in order, labelled as
    ssh-keygen -l labels them: the comment; failing that, the options or host names in
    front of the key; @revoked and @cert-authority lines are not listed. Like ssh-keygen,
    once a line with such a prefix was seen, a later bare key without a comment is
    labelled with its own text rather than "no comment"."""
    from keytool.authkeys import split_options
    from keytool.keys.pubfile import parse_public_line

    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("not a text file of public keys") from None
    found: list[ListedKey] = []
    prefixed_seen = False
    for line in decoded.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "@")):
            continue
        try:
            key, comment = parse_public_line(stripped)
        except FormatError:
            pass
        else:
            found.append(ListedKey(key, comment or (stripped if prefixed_seen else "")))
            continue
        try:
            prefix, rest = split_options(stripped)
            key, comment = parse_public_line(rest)
        except FormatError:
            continue
        prefixed_seen = True
        found.append(ListedKey(key, comment or prefix))
    return found


def keys_in_file(path: Path) -> list[ListedKey]:
    """What ``ssh-keygen -l -f FILE`` lists."""
    text = files.read_file(path, "key file")
    if is_private_text(text):
        return [public_of_file(path)]
    found = keys_in_text(text)
    if not found:
        raise FormatError(f"{path} is not a public key file")
    return found


def write_key_pair(path: Path, private_text: bytes, public_line: str) -> None:
    files.write_atomic(path, private_text, files.PRIVATE_MODE)
    files.write_atomic(pub_path(path), public_line.encode("utf-8") + b"\n", files.PUBLIC_MODE)


def expand(path: str) -> Path:
    return Path(os.path.expanduser(path))

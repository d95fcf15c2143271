"""keytool passwd: ssh-keygen -p -f FILE [-P old] [-N new] [-a rounds] [-m FORMAT] [-Z CIPHER].

The key is rewritten atomically; a wrong old passphrase leaves the file untouched.
-m converts the file's format (PEM, PKCS8, or RFC4716: OpenSSH's own) as ssh-keygen -p -m
does; without -m the key is saved in OpenSSH's format, as ssh-keygen saves it. A PEM file
holds no comment: the comment is then taken from FILE.pub when that holds the same key.
FILE.pub is never written, whatever it holds (ssh-keygen -p never touches it).
"""

from __future__ import annotations

import os
import sys

from keytool.errors import KeytoolError
from keytool.output import keeps_changes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from keytool.keys.base import PublicKey


def _pub_comment(path: Path, public: PublicKey) -> str | None:
    """The comment of FILE.pub if it holds ``public``, else None."""
    from keytool import files
    from keytool.keyfiles import pub_path
    from keytool.keys.pubfile import parse_public_text

    pub = pub_path(path)
    if not pub.exists():
        return None
    try:
        key, comment = parse_public_text(files.read_file(pub, "public key"))
    except KeytoolError:
        return None
    return comment if key == public else None


def _ask_old(path: str | os.PathLike[str]) -> bytes:
    """The old passphrase, asked as ssh-keygen -p asks it."""
    from keytool import terminal

    return terminal.read_secret(
        "Enter old passphrase: ", f"the passphrase for {path}", stdin=True
    ).encode("utf-8", "surrogateescape")


@keeps_changes
def run(
    file: str | None,
    old: str | None,
    new: str | None,
    rounds: int | None,
    key_format: str | None = None,
    cipher: str | None = None,
) -> int:
    from keytool import files, terminal
    from keytool.cli import secret_bytes
    from keytool.cli.gen import check_rounds
    from keytool.keyfiles import ask_key_file, given_name, load_private_file, rewrite_key_file
    from keytool.keys import keyformat, openssh, pemwrite

    check_rounds(rounds)  # before anything is read, as gen
    fmt = keyformat.parse_format(key_format) if key_format is not None else keyformat.OPENSSH
    if cipher is not None:
        openssh.check_cipher(cipher)
    path = ask_key_file(file)
    old_secret = secret_bytes(old) if old is not None else None
    key, comment = load_private_file(path, old_secret, _ask_old)
    keyformat.check_cipher_applies(pemwrite.has_pem_form(key), fmt, cipher)
    pub_comment = _pub_comment(path, key.public)
    if not comment and pub_comment:
        comment = pub_comment
    if comment or openssh.is_openssh_private(files.read_file(path, "key file")):
        # a PEM or PKCS#8 key holds no comment: ssh-keygen -p then prints no line
        print(f"Key has comment '{comment}'")
    if new is None:
        # as ssh-keygen -p asks: the terminal, SSH_ASKPASS, or stdin without a terminal
        first, again = terminal.ask_twice(
            "Enter new passphrase (empty for no passphrase): ",
            "no new passphrase given (-N) and no terminal to ask on",
        )
        if again != first:  # ssh-keygen -p's words; it asks no more, the key unchanged
            mismatch = KeytoolError("Pass phrases do not match.  Try again.")
            mismatch.exit_code = 1  # as ssh-keygen -p: exit(1), not its fatal() 255
            raise mismatch
        new = first
    new_secret = secret_bytes(new)  # any length for OpenSSH's format, as ssh-keygen -p
    if keyformat.saved_format(key, fmt) != fmt:
        print(
            f"Note: {key.public.key_type} keys have no {fmt} form: saved in OpenSSH format",
            file=sys.stderr,
        )
    text = keyformat.dump_private(key, comment, new_secret or None, fmt, cipher, rounds)
    rewrite_key_file(path, text, shown=given_name(file, path))
    # FILE.pub is never written, whatever it holds (or if it is missing): as ssh-keygen -p
    print("Your identification has been saved with the new passphrase.")
    return 0

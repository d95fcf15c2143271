"""keytool comment: ssh-keygen -c -f FILE -C COMMENT (the private file and its .pub)."""

from __future__ import annotations

from keytool.errors import KeytoolError
from keytool.output import keeps_changes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


@keeps_changes
def run(
    file: str | None,
    comment: str | None,
    passphrase: str | None,
    rounds: int | None = None,
    cipher: str | None = None,
) -> int:
    from keytool import files
    from keytool.cli import one_line_text, secret_bytes
    from keytool.cli.gen import check_rounds
    from keytool.keyfiles import (
        ask_key_file,
        ask_passphrase,
        cut_comment,
        given_name,
        is_private_text,
        load_private_file,
        public_file_text,
        rewrite_public_file,
        write_key_pair,
    )
    from keytool.keys import openssh
    from keytool.keys.pubfile import parse_public_text

    check_rounds(rounds)
    if cipher is not None:
        openssh.check_cipher(cipher)
    if comment is None:
        raise KeytoolError("what comment? use -C COMMENT")
    one_line_text(comment, "the comment (-C)")
    comment = cut_comment(comment)
    path = ask_key_file(file)
    shown = given_name(file, path)
    text = files.read_file(path, "key file")
    if not openssh.is_openssh_private(text) and is_private_text(text):
        return _convert_and_comment(path, shown, text, comment, passphrase, rounds, cipher)
    if not openssh.is_openssh_private(text):
        # a public key file alone: rewrite its line, when that line is all it holds
        lines = [line for line in text.split(b"\n") if line.strip()]
        if len(lines) > 1:
            raise KeytoolError(
                f"{path} holds {len(lines)} lines, not one key: only a key pair's .pub "
                "(one key line) gets a new comment"
            )
        public, old = parse_public_text(text)
        rewrite_public_file(path, public_file_text(public, comment), shown=shown)
        print(f"Old comment: {old}")
        print(_applied(comment))
        return 0
    outer = openssh.parse(text)
    secret = secret_bytes(passphrase) if passphrase is not None else None
    if secret is None and outer.is_encrypted:
        # asked here, not by the load: the key is written again with it (a passphrase
        # the load asked for itself was lost, and the key written without one)
        secret = ask_passphrase(path)
    key, old = load_private_file(path, secret)
    print(f"Old comment: {old}")
    # -a and -Z as ssh-keygen -c takes them: else the key's own rounds, the default cipher
    rounds = rounds or outer.rounds or openssh.DEFAULT_ROUNDS
    new_text = openssh.dump(
        key,
        comment,
        secret if outer.is_encrypted else None,
        rounds,
        cipher or openssh.DEFAULT_CIPHER,
    )
    write_key_pair(path, new_text, key.public, comment, keep_mode=True, shown=shown)
    print(_applied(comment))
    return 0


def _applied(comment: str) -> str:
    """ssh-keygen -c's last line."""
    return f"Comment '{comment}' applied" if comment else "Comment removed"


def _convert_and_comment(
    path: Path,
    shown: str,
    text: bytes,
    comment: str,
    passphrase: str | None,
    rounds: int | None,
    cipher: str | None,
) -> int:
    """A PEM or PKCS#8 private key holds no comment: as ssh-keygen -c, it is saved in
    OpenSSH's format (encrypted again with the same passphrase if it was) with the
    comment, and FILE.pub written to match."""
    from keytool.cli import secret_bytes
    from keytool.keyfiles import ask_passphrase, load_private_file, write_key_pair
    from keytool.keys import is_encrypted_private, openssh

    secret = secret_bytes(passphrase) if passphrase is not None else None
    if secret is None and is_encrypted_private(text):
        secret = ask_passphrase(path)
    key, _ = load_private_file(path, secret)
    print("No existing comment")
    keep = secret if is_encrypted_private(text) else None
    new_text = openssh.dump(
        key,
        comment,
        keep or None,
        rounds or openssh.DEFAULT_ROUNDS,
        cipher or openssh.DEFAULT_CIPHER,
    )
    write_key_pair(path, new_text, key.public, comment, keep_mode=True, shown=shown)
    print(_applied(comment))
    return 0

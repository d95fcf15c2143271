"""keytool passwd: ssh-keygen -p -f FILE [-P old] [-N new] [-a rounds].

The key is rewritten atomically; a wrong old passphrase leaves the file untouched.
"""

from __future__ import annotations

from keytool.errors import KeytoolError


def run(file: str | None, old: str | None, new: str | None, rounds: int | None) -> int:
    from keytool import terminal
    from keytool.cli import secret_bytes
    from keytool.keyfiles import expand, load_private_file, write_key_pair
    from keytool.keys import openssh

    if not file:
        raise KeytoolError("which key? use -f FILE")
    path = expand(file)
    old_secret = secret_bytes(old) if old is not None else None
    key, comment = load_private_file(path, old_secret)
    print(f"Key has comment '{comment}'")
    if new is None:
        if not terminal.has_terminal():
            raise KeytoolError("no new passphrase given (-N) and no terminal to ask on")
        first = terminal.read_secret("Enter new passphrase (empty for no passphrase): ")
        if terminal.read_secret("Enter same passphrase again: ") != first:
            raise KeytoolError("passphrases do not match; the key is unchanged")
        new = first
    new_secret = secret_bytes(new)
    if new_secret and len(new_secret) < 5:
        raise KeytoolError("passphrase too short: use at least five characters or none")
    text = openssh.dump(key, comment, new_secret or None, rounds or openssh.DEFAULT_ROUNDS)
    write_key_pair(path, text, key.public, comment, keep_mode=True)
    print("Your identification has been saved with the new passphrase.")
    return 0

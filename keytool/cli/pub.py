"""keytool pub: ssh-keygen -y [-f FILE] [-P passphrase]; without -f the file is asked
for, as ssh-keygen asks."""

from __future__ import annotations


def run(file: str | None, passphrase: str | None) -> int:
    from keytool.cli import secret_bytes
    from keytool.keyfiles import ask_key_file, load_private_file
    from keytool.keys.pubfile import format_public_line

    path = ask_key_file(file)
    secret = secret_bytes(passphrase) if passphrase is not None else None
    key, comment = load_private_file(path, secret)
    print(format_public_line(key.public, comment))
    return 0

"""keytool pub: ssh-keygen -y -f FILE [-P passphrase]."""

from __future__ import annotations

from keytool.errors import KeytoolError


def run(file: str | None, passphrase: str | None) -> int:
    from keytool.cli import secret_bytes
    from keytool.keyfiles import expand, load_private_file
    from keytool.keys.pubfile import format_public_line

    if not file:
        raise KeytoolError("which key? use -f FILE")
    secret = secret_bytes(passphrase) if passphrase is not None else None
    key, comment = load_private_file(expand(file), secret)
    print(format_public_line(key.public, comment))
    return 0

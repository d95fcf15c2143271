"""keytool export and keytool import: ssh-keygen -e and -i, public keys to and from
RFC4716 (SSH2), PKCS8 and PEM."""

from __future__ import annotations

from keytool.errors import KeytoolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from keytool.keys.base import PublicKey


def run_export(file: str | None, key_format: str | None, passphrase: str | None = None) -> int:
    import os
    import pwd
    import socket

    from keytool.keyfiles import ask_key_file
    from keytool.keys.convert import FORMATS, export

    fmt = (key_format or "RFC4716").upper()
    if fmt not in FORMATS:
        raise KeytoolError(f"unknown key format {key_format!r}: use RFC4716, PKCS8 or PEM")
    path = ask_key_file(file)
    key = _public_key(path, passphrase)
    # ssh-keygen's Comment header, word for word
    who = f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"
    comment = f"{key.bits}-bit {key.label}, converted by {who} from OpenSSH"
    try:
        print(export(key, fmt, comment), end="")
    except KeytoolError as exc:
        raise KeytoolError(f"{path}: {exc}") from None
    return 0


def _public_key(path: Path, passphrase: str | None) -> PublicKey:
    """The key ssh-keygen -e writes: the first key line of FILE, else of FILE.pub, else
    the public part of the private key FILE, loaded with its passphrase (-P, or asked
    for) when nothing else tells it."""
    import os

    from keytool.cli import secret_bytes
    from keytool.files import read_file
    from keytool.keyfiles import is_private_text, load_private_file
    from keytool.keylist import load_public

    if not os.path.lexists(path):
        raise KeytoolError(f"{path}: no such file")
    try:
        found = load_public(path)
    except KeytoolError as exc:
        raise KeytoolError(exc if str(path) in str(exc) else f"{path}: {exc}") from None
    if found is not None:
        return found[0]
    text = read_file(path, "key file", pipes=True)  # a folder or a device: said so
    if not is_private_text(text):
        raise KeytoolError(f"{path} is not a key file")
    secret = secret_bytes(passphrase) if passphrase is not None else None
    return load_private_file(path, secret)[0].public


def run_import(file: str | None, key_format: str | None) -> int:
    from keytool.files import read_file
    from keytool.keyfiles import ask_key_file
    from keytool.keys.convert import FORMATS, import_key
    from keytool.keys.pubfile import format_public_line

    wanted = None if key_format is None else key_format.upper()
    if wanted is not None and wanted not in FORMATS:
        raise KeytoolError(f"unknown key format {key_format!r}: use RFC4716, PKCS8 or PEM")
    path = ask_key_file(file)
    text = read_file(path, "key file", pipes=True)
    try:
        key = import_key(text, wanted)
    except KeytoolError as exc:
        raise KeytoolError(f"{path}: {exc}") from None
    print(format_public_line(key, ""))
    return 0

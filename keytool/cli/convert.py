"""keytool export and keytool import: ssh-keygen -e and -i, public keys to and from
RFC4716 (SSH2), PKCS8 and PEM."""

from __future__ import annotations

from keytool.errors import KeytoolError


def run_export(file: str | None, key_format: str | None) -> int:
    import os
    import pwd
    import socket

    from keytool.files import read_file
    from keytool.keyfiles import expand, is_private_text, public_of_file
    from keytool.keys.convert import export
    from keytool.keys.pubfile import parse_public_text

    if not file:
        raise KeytoolError("which key? use -f FILE")
    path = expand(file)
    text = read_file(path, "key file")
    key = public_of_file(path).key if is_private_text(text) else parse_public_text(text)[0]
    # ssh-keygen's Comment header, word for word
    who = f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"
    comment = f"{key.bits}-bit {key.label}, converted by {who} from OpenSSH"
    print(export(key, key_format or "RFC4716", comment), end="")
    return 0


def run_import(file: str | None, key_format: str | None) -> int:
    from keytool.files import read_file
    from keytool.keyfiles import expand
    from keytool.keys.convert import FORMATS, RFC4716_BEGIN, import_key
    from keytool.keys.pubfile import format_public_line

    if not file:
        raise KeytoolError("which file? use -f FILE")
    text = read_file(expand(file), "key file")
    if key_format is not None:
        wanted = key_format.upper()
        if wanted not in FORMATS:
            raise KeytoolError(f"unknown key format {key_format!r}: use RFC4716, PKCS8 or PEM")
        is_rfc4716 = text.lstrip().startswith(RFC4716_BEGIN.encode())
        if is_rfc4716 != (wanted == "RFC4716"):
            raise KeytoolError(f"{file} is not a public key in {wanted} format")
    try:
        key = import_key(text)
    except KeytoolError as exc:
        raise KeytoolError(f"{file}: {exc}") from None
    print(format_public_line(key, ""))
    return 0

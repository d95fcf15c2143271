"""keytool fingerprint -r HOSTNAME [-f FILE] [-g]: SSHFP records of key files
(ssh-keygen -r), by default of the host keys in /etc/ssh."""

from __future__ import annotations

import os
import sys

from keytool.errors import KeytoolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keytool.keys.base import PublicKey

#: the host key files ssh-keygen -r reads without -f, in its order
HOST_KEY_FILES = (
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_dsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_xmss_key",
)
#: key types keytool does not read (ssh-keygen still prints records for them)
NOT_READ = ("_dsa_key", "_xmss_key")


def run(host: str, file: str | None, generic: bool) -> int:
    from keytool.keyfiles import expand

    if not host:
        raise KeytoolError("which host name? give it as -r HOSTNAME")
    if file:
        path = os.fspath(expand(file))
        if not os.path.lexists(path):
            raise KeytoolError(f"{path}: no such file")
        print("\n".join(_records(host, path, generic)))
        return 0
    found = 0
    for path in HOST_KEY_FILES:
        if not os.path.lexists(path):
            continue
        if path.endswith(NOT_READ):
            sys.stderr.write(f"keytool: skipping {path}: keytool does not read this key type\n")
            continue
        print("\n".join(_records(host, path, generic)))
        found += 1
    if not found:
        raise KeytoolError("no host keys found in /etc/ssh: name a key file with -f FILE")
    return 0


def _records(host: str, path: str, generic: bool) -> list[str]:
    from keytool.keys.sshfp import records

    key = load_public(path)
    try:
        return records(host, key, generic)
    except KeytoolError as exc:
        raise KeytoolError(f"{path}: {exc}") from None


def load_public(path: str) -> PublicKey:
    """The public key of a key file as ssh-keygen -r finds it: the first bare key line of
    the file, else of FILE.pub, else the public part of the private key in FILE."""
    from keytool.keyfiles import is_private_text, public_of_file

    for candidate in (path, f"{path}.pub"):
        key = _first_key_line(candidate)
        if key is not None:
            return key
    try:
        from keytool import files

        if is_private_text(files.read_file(path, "key file")):
            return public_of_file(path).key
    except KeytoolError as exc:
        raise KeytoolError(f"cannot read a public key from {path}: {exc}") from None
    raise KeytoolError(f"cannot read a public key from {path} (nor from {path}.pub)")


def _first_key_line(path: str) -> PublicKey | None:
    from keytool import files
    from keytool.keys.pubfile import parse_public_line

    try:
        text = files.read_file(path, "key file")
    except KeytoolError:  # missing or unreadable: the next place may have it
        return None
    for raw in text.split(b"\n"):
        if raw[:1] in (b"", b"#"):
            continue
        if raw.startswith(b"-----BEGIN"):
            return None  # a private key: no public lines follow
        line = raw.lstrip(b" \t")
        if not line:
            continue
        try:
            return parse_public_line(line.decode("utf-8"))[0]
        except (KeytoolError, UnicodeDecodeError):
            continue
    return None

"""keytool fingerprint -r HOSTNAME [-f FILE] [-g]: SSHFP records of key files
(ssh-keygen -r), by default of the host keys in /etc/ssh."""

from __future__ import annotations

import os
import sys

from keytool.errors import KeytoolError

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
    """The records of the key file ``path``; the key found as ssh-keygen -r finds it:
    the first bare key line of the file, else of FILE.pub, else the public part of the
    private key in FILE."""
    from keytool.certify import load_public_key
    from keytool.keys.sshfp import records

    try:
        key, _ = load_public_key(path)
        return records(host, key, generic)
    except KeytoolError as exc:
        if path in str(exc):
            raise
        raise KeytoolError(f"{path}: {exc}") from None

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
        _print_records(host, path, generic)
        return 0
    found = 0
    for path in HOST_KEY_FILES:
        if not os.path.lexists(path):
            continue
        if path.endswith(NOT_READ) and _public_key(path) is None:
            sys.stderr.write(f"keytool: skipping {path}: keytool does not read this key type\n")
            continue
        _print_records(host, path, generic)
        found += 1
    if not found:
        raise KeytoolError("no host keys found in /etc/ssh: name a key file with -f FILE")
    return 0


def _print_records(host: str, path: str, generic: bool) -> None:
    """The records of the key file ``path``; a key with no SSHFP algorithm (a security
    key, a certificate) gets none, said on stderr, and that is no failure, as with
    ssh-keygen -r."""
    from keytool.keys.sshfp import ALGORITHMS, records

    key = _public_key(path)
    if key is None:
        raise KeytoolError(f"{path} holds no public key")
    if key.key_type not in ALGORITHMS:
        what = "certificates" if key.plain is not key else f"{key.label} keys"
        sys.stderr.write(f"keytool: {path}: no SSHFP record is defined for {what}\n")
        return
    print("\n".join(records(host, key, generic)))


def _public_key(path: str) -> PublicKey | None:
    """The key found as ssh-keygen -r finds it: the first key line of the file, else of
    FILE.pub, else the public part of the private key in FILE."""
    from keytool.keylist import load_public

    try:
        found = load_public(path)
    except KeytoolError as exc:
        if path in str(exc):
            raise
        raise KeytoolError(f"{path}: {exc}") from None
    return None if found is None else found[0]

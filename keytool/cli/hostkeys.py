"""keytool gen -A: every missing default host key, as ssh-keygen -A.

For each of RSA, ECDSA and Ed25519 (OpenSSH 9.2's host key types; DSA is gone) whose
PREFIX/etc/ssh/ssh_host_TYPE_key is missing or empty: a new key of ssh-keygen's
default size, no passphrase, comment user@host, the private key 0600 and its .pub
0644. An existing key is never touched. Both files are written to temp files first;
the .pub takes its name before the key does, so an interrupted run can leave a .pub
without its key (which the next run replaces) but never a key without its .pub nor a
half-written file; ^C, SIGTERM or SIGHUP leaves no temp file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from keytool.errors import KeytoolError

SSH_DIR = "/etc/ssh"
#: (type, the name ssh-keygen -A prints), in ssh-keygen's order
HOST_KEY_TYPES = (("rsa", "RSA"), ("ecdsa", "ECDSA"), ("ed25519", "ED25519"))


def host_key_path(prefix: str, kind: str) -> Path:
    # ssh-keygen joins -f and the path as strings: -f /x gives /x/etc/ssh/...
    return Path(f"{prefix}{SSH_DIR}/ssh_host_{kind}_key")


def missing(path: Path) -> bool:
    """Missing or empty, as ssh-keygen -A decides whether to make a key."""
    try:
        return path.stat().st_size == 0
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise KeytoolError(f"cannot stat {path}: {exc.strerror}") from None


def run(prefix: str, fmt: str, cipher: str | None, rounds: int | None, quiet: bool) -> int:
    from keytool import files
    from keytool.cli.gen import DEFAULT_BITS, default_comment
    from keytool.keyfiles import pub_path, public_file_text
    from keytool.keys import generate
    from keytool.keys.keyformat import dump_private
    from keytool.output import on_terminal

    todo = [
        (kind, label, host_key_path(prefix, kind))
        for kind, label in HOST_KEY_TYPES
        if missing(host_key_path(prefix, kind))
    ]
    for _kind, _label, path in todo:
        if not path.parent.is_dir():
            raise KeytoolError(f"{path.parent}: no such directory")
    if not todo:
        return 0
    comment = default_comment()
    # shown at once on a terminal only: elsewhere a closed pipe or a full disk behind
    # stdout is found at the end, after the keys are written (keytool.output)
    shown = on_terminal()
    if not quiet:
        sys.stdout.write("keytool: generating new host keys: ")
    try:
        for kind, label, path in todo:
            if not quiet:
                sys.stdout.write(f"{label} ")
                if shown:
                    sys.stdout.flush()
            key = generate(kind, DEFAULT_BITS[kind])
            private_text = dump_private(key, comment, None, fmt, cipher, rounds)
            # an error or a signal before both take their names removes both temp files
            with files.writing():
                private_tmp = files.write_temp(path, private_text, files.PRIVATE_MODE)
                public_text = public_file_text(key.public, comment)
                public_tmp = files.write_temp(pub_path(path), public_text, files.public_mode())
                with files.signals_deferred():
                    files.install(public_tmp, pub_path(path))
                    files.install(private_tmp, path)
    finally:
        if not quiet:
            sys.stdout.write("\n")
            if shown:
                sys.stdout.flush()
    return 0

"""keytool fingerprint: ssh-keygen -l [-v] [-E hash] -f FILE."""

from __future__ import annotations

from keytool.errors import KeytoolError


def run(file: str | None, hash_name: str | None, visual: bool) -> int:
    from keytool.keyfiles import expand, keys_in_file
    from keytool.keys.fingerprint import HASH_NAMES, describe, randomart

    if not file:
        raise KeytoolError("which file? use -f FILE")
    digest = (hash_name or "sha256").lower()
    if digest not in HASH_NAMES:
        raise KeytoolError(f"unknown fingerprint hash {hash_name!r}: use sha256 or md5")
    for listed in keys_in_file(expand(file)):
        print(describe(listed.key, listed.comment, digest))
        if visual:
            print(randomart(listed.key, digest))
    return 0

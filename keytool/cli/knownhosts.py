"""keytool known-hosts: ssh-keygen -F HOST, -R HOST and -H, on ~/.ssh/known_hosts or -f FILE.

The file is rewritten through a temporary file renamed over it, its mode kept, and
the previous contents stay as FILE.old, as ssh-keygen keeps them.
"""

from __future__ import annotations

import sys

from keytool.errors import KeytoolError

DEFAULT_FILE = "~/.ssh/known_hosts"


def run(find: str | None, remove: str | None, hash_all: bool, file: str | None) -> int:
    from keytool import knownhosts_edit as edit
    from keytool.files import read_file
    from keytool.keyfiles import expand

    chosen = [flag for flag, on in (("-F", find), ("-R", remove), ("-H", hash_all)) if on]
    if len(chosen) != 1:
        raise KeytoolError("give one of -F HOST, -R HOST or -H")
    path = expand(file or DEFAULT_FILE)
    text = read_file(path, "known_hosts file")
    if find is not None:
        found = edit.find(text, find)
        for entry in found:
            print(f"# Host {find} found: line {entry.number} {edit.marker_label(entry.marker)}")
            print(entry.line)
        return 0 if found else 1
    bad = edit.invalid_lines(text)
    if bad:
        numbers = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        raise KeytoolError(
            f"{path} is not a valid known_hosts file (line {numbers} cannot be read): not rewritten"
        )
    if remove is not None:
        new, removed = edit.remove(text, remove)
        if not removed:
            print(f"Host {remove} not found in {path}", file=sys.stderr)
            return 0
        for entry in removed:
            print(f"# Host {remove} found: line {entry.number}")
        _rewrite(path, new)
        return 0
    new, hashed = edit.hash_all(text)
    _rewrite(path, new)
    if hashed:
        print(f"WARNING: {path}.old contains unhashed entries", file=sys.stderr)
        print("Delete this file to ensure privacy of hostnames", file=sys.stderr)
    return 0


def _rewrite(path: Path, data: bytes) -> None:
    from keytool.files import write_atomic

    old = path.with_name(f"{path.name}.old")
    write_atomic(path, data, 0o600, keep_mode=True, backup=old)
    print(f"{path} updated.")
    print(f"Original contents retained as {old}")


TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

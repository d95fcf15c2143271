"""keytool known-hosts: ssh-keygen -F HOST, -R HOST and -H, on ~/.ssh/known_hosts or -f FILE.

The file is rewritten through a temporary file renamed over it, its mode kept, and
the previous contents stay as FILE.old, as ssh-keygen keeps them.

-F reads the file as it goes, keeping only the lines found: any size, as ssh-keygen.
-R and -H hold the file (and the new one) in memory, so a file over MAX_FILE_SIZE is
refused for them, before it is read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from keytool.errors import KeytoolError
from keytool.knownhosts import MAX_FILE_SIZE
from keytool.output import keeps_changes

DEFAULT_FILE = "~/.ssh/known_hosts"
#: what ssh-keygen's log lines on stderr leave as they are (strnvis VIS_SAFE)
_VIS_SAFE = "\a\b\t\n\r"


def _log(message: str) -> None:
    """A message on stderr as ssh-keygen logs it: every byte of the names in it that is
    not printable ASCII as \\ooo, but those VIS_SAFE leaves."""
    from keytool.display import as_logged

    print(as_logged(message, keep=_VIS_SAFE), file=sys.stderr)


@keeps_changes
def run(
    find: str | None,
    remove: str | None,
    hash_all: bool,
    file: str | None,
    fingerprints: bool = False,
    hash_name: str | None = None,
    quiet: bool = False,
) -> int:
    from keytool import knownhosts_edit as edit
    from keytool.display import shown_comment
    from keytool.keyfiles import expand
    from keytool.keys.fingerprint import check_hash_name
    from keytool.knownhosts import line_blocks

    # as ssh-keygen: -H with -F shows the lines found hashed, and changes nothing
    hashing = hash_all and find is None
    chosen = [flag for flag, on in (("-F", find), ("-R", remove), ("-H", hashing)) if on]
    if len(chosen) != 1:
        raise KeytoolError("give one of -F HOST, -R HOST or -H")
    digest = check_hash_name(hash_name)
    if file == "":  # never the default file in its stead (-f "$UNSET")
        raise KeytoolError("-f needs a file name")
    path = expand(file or DEFAULT_FILE)
    name = file or str(path)  # as ssh-keygen names it: -f's word as typed ("./kh")
    try:
        fd, size = _open(path)
        if find is not None:
            found = edit.find(line_blocks(_chunks(fd, path)), find)
        elif size > MAX_FILE_SIZE:
            os.close(fd)
            raise KeytoolError(
                f"{path}: too large for a known_hosts file (over {MAX_FILE_SIZE // 1024} KiB)"
            )
        else:
            # read at once: a list of pieces joined would hold the file twice
            text = b"".join([_first(fd, size, path), *_chunks(fd, path)])
    except KeytoolError as exc:
        exc.exit_code = 255  # as ssh-keygen: 1 is for a host not found
        raise
    if find is not None:
        shown = 0
        for entry in found:
            lines: str | None = entry.line
            if fingerprints:
                lines = edit.fingerprint_line(entry.line, find, digest)
                if lines is not None:  # ssh-keygen prints all of it as a comment (mprintf)
                    lines = shown_comment(lines)
            elif hash_all:
                data = edit.hash_all(f"{entry.line}\n".encode("utf-8", "surrogateescape")).text
                lines = data.decode("utf-8", "surrogateescape").rstrip("\n")
            if lines is None:
                continue  # a key that cannot be read has no fingerprint: not listed
            shown += 1
            if not quiet:
                print(f"# Host {find} found: line {entry.number} {edit.marker_label(entry.marker)}")
            print(lines)
        return 0 if shown else 1
    bad = edit.invalid_lines(text)
    if bad:
        numbers = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        raise KeytoolError(
            f"{name} is not a valid known_hosts file (line {numbers} cannot be read): not rewritten"
        )
    if remove is not None:
        new, removed = edit.remove(text, remove)
        if not removed:
            _log(f"Host {remove} not found in {name}")
            return 0
        for entry in removed:
            print(f"# Host {remove} found: line {entry.number}")
        _rewrite(path, new, name)
        return 0
    result = edit.hash_all(text)
    for number, hosts in result.patterns:  # as ssh-keygen names them
        _log(f"{name}:{number}: ignoring host name with wildcard: {hosts}")
    _rewrite(path, result.text, name)
    if result.count:
        _log(f"WARNING: {name}.old contains unhashed entries")
        _log("Delete this file to ensure privacy of hostnames")
    return 0


def _open(path: Path) -> tuple[int, int]:
    """The known_hosts file opened (a regular file, or /dev/null), and its size."""
    from keytool.files import _open_regular

    fd, info = _open_regular(path, "known_hosts file")
    return fd, info.st_size


def _first(fd: int, size: int, path: Path) -> bytes:
    """The first ``size`` bytes of ``fd`` (and one more), at once; closed on error."""
    try:
        return os.read(fd, size + 1)
    except OSError as exc:
        os.close(fd)
        raise KeytoolError(f"{path}: {exc.strerror}") from None


def _chunks(fd: int, path: Path) -> Iterator[bytes]:
    """What is left to read of ``fd``, as it is read; closed when done."""
    from keytool.knownhosts import BLOCK_SIZE

    try:
        while chunk := os.read(fd, BLOCK_SIZE):
            yield chunk
    except OSError as exc:
        raise KeytoolError(f"{path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _rewrite(path: Path, data: bytes, name: str) -> None:
    from keytool.files import write_atomic

    old = path.with_name(f"{path.name}.old")
    try:
        write_atomic(path, data, 0o600, keep_mode=True, backup=old)
    except KeytoolError as exc:
        exc.exit_code = 255  # as ssh-keygen: a file it cannot rewrite is no host not found
        raise
    print(f"{name} updated.")
    print(f"Original contents retained as {name}.old")


TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

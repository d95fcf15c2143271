"""File adapter: atomic writes with OpenSSH's modes, and private key permission checks.

The only place keytool writes files: temp file in the same folder, fsync, rename; the
mode is set when the temp file is created, never by a chmod afterwards.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from keytool.errors import KeyFileError

SSH_DIR_MODE = 0o700
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


def ensure_dir(path: Path, mode: int = SSH_DIR_MODE) -> None:
    """Create ``path`` (and parents) if missing; a new leaf folder gets ``mode``."""
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc.strerror}") from None


def write_atomic(path: Path, data: bytes, mode: int, keep_mode: bool = False) -> None:
    """Write ``data`` to ``path`` all at once: a crash leaves the old file or the new one.

    ``keep_mode`` keeps an existing file's permission bits instead of ``mode``.
    """
    if keep_mode:
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(path.stat().st_mode)
    folder = path.parent
    tmp = folder / f".{path.name}.keytool-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror}") from None
    try:
        try:
            # umask may have narrowed the mode; fchmod on our own new fd sets it exactly
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise KeyFileError(f"cannot write {path}: {exc.strerror}") from None
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_file(path: Path, what: str = "file") -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise KeyFileError(f"{path}: is a directory, not a {what}") from None
    except PermissionError:
        raise KeyFileError(f"{path}: permission denied") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror}") from None


def check_private_permissions(path: Path) -> None:
    """Refuse a private key readable by group or others, as OpenSSH does."""
    try:
        st = path.stat()
    except OSError:
        return  # read_file reports it
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077 and st.st_uid == os.getuid():
        raise KeyFileError(
            f"permissions {mode:04o} for '{path}' are too open: a private key must not be "
            f"accessible by others; fix with: chmod 600 '{path}'"
        )


def read_private_key_file(path: Path) -> bytes:
    check_private_permissions(path)
    return read_file(path, "private key")

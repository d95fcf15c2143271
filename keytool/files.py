"""File adapter: atomic writes with OpenSSH's modes, and private key permission checks.

The only place keytool writes files: temp file in the same folder, fsync, rename; the
mode is set when the temp file is created, never by a chmod afterwards. Whatever ends
a write early (an error, ^C, SIGTERM, SIGHUP) removes its temp files (see ``writing``):
none is left beside the file, least of all a key without its passphrase.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from keytool.errors import KeyFileError
from keytool.output import end_by

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

SSH_DIR_MODE = 0o700
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644

# Reads stop here rather than exhaust memory: far above any real key (an encrypted
# 16384-bit RSA key is about 13 KiB), known_hosts, authorized_keys or config file.
MAX_KEY_FILE_SIZE = 1024 * 1024
MAX_TEXT_FILE_SIZE = 16 * 1024 * 1024


class WriteError(KeyFileError):
    """A file that could not be written: ``shown`` is its name as the user gave it,
    ``reason`` why (the system's words where it said why)."""

    def __init__(self, shown: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"cannot write {os.fspath(shown)}: {reason}")
        self.shown = os.fspath(shown)
        self.reason = reason


def public_mode() -> int:
    """A new public file's mode: 0644 narrowed by the umask, as ssh-keygen creates one."""
    mask = os.umask(0o022)
    os.umask(mask)
    return PUBLIC_MODE & ~mask


def ensure_dir(path: Path, mode: int = SSH_DIR_MODE) -> None:
    """Create ``path`` (and parents) if missing; a new leaf folder gets ``mode``."""
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc.strerror}") from None


def write_atomic(
    path: Path, data: bytes, mode: int, keep_mode: bool = False, backup: Path | None = None
) -> None:
    """Write ``data`` to ``path`` all at once: a crash leaves the old file or the new one.

    ``keep_mode`` keeps an existing file's permission bits instead of ``mode``; a file
    replaced keeps its owner and group where we may give them (root editing a user's
    key must not leave it root's);
    ``backup`` names a hard link the old file keeps (replaced if there), made before
    the new file takes its name, as ssh-keygen keeps ``known_hosts.old``.

    A symbolic link is written through: the file it points to is replaced (beside
    it, so the rename stays on its filesystem) and the link stays a link, as
    ssh-keygen -p and -c leave a linked key.
    """
    target = _through_links(path)
    try:
        info = target.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise WriteError(path, exc.strerror or str(exc)) from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        # renaming over /dev/null (or a FIFO, a device) would replace it with a file
        raise WriteError(path, "not a regular file")
    if keep_mode and info is not None:
        mode = stat.S_IMODE(info.st_mode)
    owner = (info.st_uid, info.st_gid) if info is not None else None
    with writing():
        tmp = write_temp(target, data, mode, owner, shown=path)
        if backup is not None and info is not None:
            try:
                _keep_backup(target, backup, owner)
            except (OSError, KeyFileError) as exc:  # the backup's fault: named, as ssh-keygen
                discard(tmp)
                reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                raise KeyFileError(f"cannot keep {backup}: {reason}") from None
        install(tmp, target, shown=path)


def _keep_backup(target: Path, backup: Path, owner: tuple[int, int] | None) -> None:
    """``backup`` becomes the old file: a hard link to it, or a copy where no link can
    be made (the file is on another filesystem, through a symbolic link)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(backup)
    try:
        os.link(target, backup)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        with open(target, "rb") as old:
            copy = write_temp(
                backup, old.read(), stat.S_IMODE(os.fstat(old.fileno()).st_mode), owner
            )
        install(copy, backup)


def replaceable(path: Path, shown: str | os.PathLike[str]) -> tuple[Path, os.stat_result | None]:
    """The file a write to ``path`` gives its new bytes (through symbolic links, as
    ``write_atomic``) and its status (None: no file there yet), once it is known that
    it may be replaced; else a WriteError naming ``shown``.

    An existing file must be a regular file that we may write, as ssh-keygen opens it
    for writing (root may write any; a read-only filesystem refuses everyone), in a
    folder where we may write, as the new file is written there and renamed over it
    (ssh-keygen would cut and rewrite the file in place; we never do). A new file's
    folder is left to ``write_temp``, which says why it cannot create the file there.
    Nothing is written here: files that must change together are all checked first.
    """
    target = _through_links(path)
    try:
        info = target.stat()
    except FileNotFoundError:
        return target, None
    except OSError as exc:
        raise WriteError(shown, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise WriteError(shown, os.strerror(errno.EISDIR))
    if not stat.S_ISREG(info.st_mode):
        raise WriteError(shown, "not a regular file")
    folder = target.parent
    if not os.access(target, os.W_OK):
        raise WriteError(shown, _denied(target))
    if not os.access(folder, os.W_OK | os.X_OK):
        if _read_only(folder):
            raise WriteError(shown, os.strerror(errno.EROFS))
        where = folder if target != path else (os.path.dirname(os.fspath(shown)) or ".")
        raise WriteError(
            shown,
            f"folder {where} is not writable (the file is replaced by a new one "
            "written there, never rewritten in place)",
        )
    return target, info


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _denied(path: Path) -> str:
    """Why a file we may not write is refused: its filesystem is read-only, or its mode."""
    return os.strerror(errno.EROFS if _read_only(path) else errno.EACCES)


def _through_links(path: Path) -> Path:
    """The file a symbolic link at ``path`` names (all links followed); ``path``
    itself when it is no link."""
    if not os.path.islink(path):
        return path
    return path.__class__(os.path.realpath(path))


def write_temp(
    path: Path,
    data: bytes,
    mode: int,
    owner: tuple[int, int] | None = None,
    shown: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``data`` to a new hidden temp file beside ``path``, with exactly ``mode``
    (and ``owner``'s uid and gid, where allowed), flushed to disk; ``install`` then
    gives it its name, ``discard`` removes it. Used alone where several files must
    appear in a set order (a key's .pub before the key), inside ``writing``. Errors
    name ``shown`` (what the user gave) if not ``path``."""
    tmp = path.parent / f".{path.name}.keytool-{os.getpid()}-{os.urandom(4).hex()}"
    with writing():
        # known before it is made: an interrupt as it is created removes it too
        _staged.add(tmp)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        except OSError as exc:
            _staged.discard(tmp)  # not made: a file of that name is not ours
            raise WriteError(shown or path, exc.strerror or str(exc)) from None
        try:
            try:
                if owner is not None and owner != (os.geteuid(), os.getegid()):
                    # not ours to give away unless we are root: then it stays ours
                    with contextlib.suppress(PermissionError):
                        os.fchown(fd, *owner)
                # umask may have narrowed the mode; fchmod on our own new fd sets it exactly
                os.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            discard(tmp)
            raise WriteError(shown or path, exc.strerror or str(exc)) from None
    return tmp


def discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    _staged.discard(tmp)


def install(tmp: Path, path: Path, shown: str | os.PathLike[str] | None = None) -> None:
    """Rename a ``write_temp`` file to ``path`` (replacing it) and flush the folder;
    errors name ``shown`` (what the user gave) if not ``path``."""
    try:
        os.replace(tmp, path)
    except OSError as exc:
        discard(tmp)
        raise WriteError(shown or path, exc.strerror or str(exc)) from None
    _staged.discard(tmp)  # no longer a temp file: ^C from here on keeps it
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


#: temp files written and neither installed nor discarded yet
_staged: set[Path] = set()
#: signals whose default action ends keytool at once, leaving its temp files on disk
_ENDING = ("SIGTERM", "SIGHUP")
_BLOCKED = ("SIGINT", "SIGTERM", "SIGHUP")


class _Ended(BaseException):
    """SIGTERM or SIGHUP, received while temp files were being written."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_ended(signum: int, _frame: object) -> None:
    import signal

    if not _staged:  # no temp file of ours on disk (any more): end as the signal would
        end_by(signum)
    for name in _ENDING:  # a second one while the temp files are removed waits for it
        with contextlib.suppress(ValueError, OSError):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise _Ended(signum)


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Around a write that stages temp files (``write_temp`` until ``install``): the
    temp files it made and did not install are removed whatever ends it early, an
    error or an interrupt (^C raises KeyboardInterrupt: keytool says so and ends by
    SIGINT, as it does elsewhere). SIGTERM and SIGHUP, which would end keytool outright
    and leave them on disk, are caught for the duration: the temp files are removed,
    then keytool ends by that signal as it would have. Only a signal left to its
    default action is caught (one ignored, or handled by keytool's own code, stays
    so), in the main thread (the only one Python's handlers run in); nested, the
    outermost catches it."""
    import signal
    import threading

    caught: set[int] = set()
    if threading.current_thread() is threading.main_thread():
        for name in _ENDING:
            signum = getattr(signal, name)
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, _raise_ended)
                caught.add(signum)
    before = set(_staged)
    mask: set[int] | None = None
    try:
        yield
    except BaseException as exc:
        # a signal that comes while the temp files are removed waits for the end
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, caught) if caught else None
        for tmp in _staged - before:
            discard(tmp)
        if isinstance(exc, _Ended) and exc.signum in caught:
            end_by(exc.signum)
        raise
    finally:
        for signum in caught:
            signal.signal(signum, signal.SIG_DFL)
        if mask is not None:  # what came meanwhile now acts, as its default action
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """^C, SIGTERM and SIGHUP wait until the block is done (then act as usual): files
    that take their names together (a key and its .pub) all take them, so a signal
    never leaves a new .pub beside the old key."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = {getattr(signal, name) for name in _BLOCKED}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _is_devnull(info: os.stat_result) -> bool:
    """/dev/null reads as an empty file (``-F /dev/null``, ``UserKnownHostsFile=/dev/null``)."""
    if not stat.S_ISCHR(info.st_mode):
        return False
    try:
        return os.path.samestat(info, os.stat(os.devnull))
    except OSError:
        return False


def _a(what: str) -> str:
    """``what`` with its indefinite article: "a key file", "an authorized_keys file"."""
    return f"{'an' if what[:1] in 'aeiou' else 'a'} {what}"


def _open_regular(
    path: str | os.PathLike[str], what: str, pipes: bool = False
) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading, refusing anything but a regular file (or /dev/null).

    O_NONBLOCK: opening a FIFO must not wait for a writer; a FIFO, a device such as
    /dev/zero or a socket is then refused before a single byte is read from it.
    With ``pipes`` (a signature, an allowed signers file: ``-f <(...)``) a pipe or
    FIFO is taken too (``pipe_start`` then waits for its writer, for a while); anything
    else still is refused, looked at before it is opened. The descriptor returned
    may be non-blocking: ``pipe_start`` (which ``read_file`` calls) makes it blocking.
    """
    name = os.fsdecode(path)
    flags = os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        if pipes:
            problem = _not_readable(os.stat(path), name, what, pipes)
            if problem is not None:
                raise KeyFileError(problem)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise KeyFileError(f"{name}: no such file") from None
    except PermissionError:
        raise KeyFileError(f"{name}: permission denied") from None
    except OSError as exc:
        raise KeyFileError(f"{name}: {exc.strerror}") from None
    info = os.fstat(fd)  # what was opened, were it swapped meanwhile
    problem = _not_readable(info, name, what, pipes)
    if problem is not None:
        os.close(fd)
        raise KeyFileError(problem)
    return fd, info


def _not_readable(info: os.stat_result, name: str, what: str, pipes: bool) -> str | None:
    if stat.S_ISDIR(info.st_mode):
        return f"{name}: is a directory, not {_a(what)}"
    if stat.S_ISREG(info.st_mode) or _is_devnull(info):
        return None
    if pipes:
        return None if stat.S_ISFIFO(info.st_mode) else f"{name}: not a regular file or a pipe"
    return f"{name}: not a regular file"


#: how long a FIFO that nothing writes to is waited for before it is refused
PIPE_WRITER_WAIT = 1.0


def pipe_start(fd: int, name: str) -> bytes:
    """The first bytes of the pipe or FIFO ``fd`` (opened non-blocking), which is made
    blocking for the rest of it.

    A pipe with a writer is read to its end, however long the writer takes
    (``-f <(ssh-keyscan host)``, a FIFO someone writes to, as OpenSSH's tools read
    them); a FIFO that nothing opens for writing within ``PIPE_WRITER_WAIT`` seconds
    is refused (closed, a KeyFileError naming ``name``) where ssh-keygen would wait
    for ever. A writer that came and went without a byte leaves it empty.
    """
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    # a FIFO opened with no writer reports nothing (no hangup) until one has come
    events = poller.poll(int(PIPE_WRITER_WAIT * 1000))
    try:
        first = os.read(fd, 65536)
    except BlockingIOError:
        first = b""  # a writer, nothing written yet: waited for below
    except OSError as exc:
        os.close(fd)
        raise KeyFileError(f"{name}: {exc.strerror}") from None
    else:
        if not first and not events:
            os.close(fd)
            raise KeyFileError(f"{name}: not a regular file, and nothing writes to this FIFO")
    os.set_blocking(fd, True)
    return first


def _read_all(
    fd: int, path: str | os.PathLike[str], what: str, limit: int, first: bytes = b""
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := first or os.read(fd, 65536):
            first = b""
            size += len(chunk)
            if size > limit:
                raise KeyFileError(
                    f"{os.fsdecode(path)}: too large for {_a(what)} (over {limit // 1024} KiB)"
                )
            chunks.append(chunk)
    except OSError as exc:
        raise KeyFileError(f"{os.fsdecode(path)}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_file(
    path: str | os.PathLike[str],
    what: str = "file",
    limit: int = MAX_TEXT_FILE_SIZE,
    pipes: bool = False,
) -> bytes:
    """A regular file's bytes (with ``pipes``, a pipe's too), at most ``limit`` of them;
    a clear KeyFileError otherwise."""
    fd, info = _open_regular(path, what, pipes)
    first = b""
    if stat.S_ISFIFO(info.st_mode):
        first = pipe_start(fd, os.fsdecode(path))
    return _read_all(fd, path, what, limit, first)


def check_private_permissions(
    path: str | os.PathLike[str], info: os.stat_result | None = None
) -> None:
    """Refuse a private key readable by group or others, as OpenSSH does."""
    if info is None:
        try:
            info = os.stat(path)
        except OSError:
            return  # read_file reports it
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077 and info.st_uid == os.getuid():
        raise KeyFileError(
            f"permissions {mode:04o} for '{path}' are too open: a private key must not be "
            f"accessible by others; fix with: chmod 600 '{path}'"
        )


def read_private_key_file(path: str | os.PathLike[str]) -> bytes:
    """A private key file's bytes; the permissions checked on the file actually opened."""
    fd, info = _open_regular(path, "private key")
    try:
        check_private_permissions(path, info)
    except KeyFileError:
        os.close(fd)
        raise
    return _read_all(fd, path, "private key", MAX_KEY_FILE_SIZE)


def unix_listener(path: str, mask: int, backlog: int) -> socket.socket:
    """A Unix-domain socket listening at ``path``, made under umask ``mask`` (0o177:
    mode 0600); OSError (or ValueError for a path too long) when it cannot be."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_mask = os.umask(mask)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old_mask)
    return sock

"""copy-id's edit of the remote file over SFTP (-s): the target found (a symlink
followed), its folders made, the shell path's lock taken (O_EXCL; a stale one, or one
left by a copy-id killed here, taken over), the new text written to a temp file and
renamed into place (the old file moved aside first when the server has no
posix-rename), and the tidying after a failure kept short."""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import socket
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from keytool.copyid import (
    LOCK_SUFFIX,
    NEW_DIR_MODE,
    NEW_FILE_MODE,
    TEMP_INFIX,
    Edit,
    Job,
    NewKey,
    RemoteFile,
)
from keytool.copyid_edit import CopyIdError, Trace, plan
from keytool.display import shown
from keytool.errors import KeytoolError, SftpError

if TYPE_CHECKING:
    from keytool.session import Client
    from keytool.transport.sftp import Sftp


#: an SFTP lock that has not changed for this long is taken over
STALE_LOCK_SECONDS = 60.0

_LOCK_POLL = 0.05


async def edit_over_sftp(
    client: Client, job: Job, keys: list[NewKey], trace: Trace
) -> tuple[RemoteFile, Edit]:
    sftp = await client.open_sftp()
    try:
        return await _sftp_edit(sftp, client.options.user, job, keys, trace)
    finally:
        await _briefly(sftp.aclose())


#: how long the tidying after a failure (a lock or temp file removed, the SFTP channel
#: closed) may wait for a server: one that stalled must not double copy-id's time limit
CLEANUP_TIMEOUT = 5.0


async def _briefly(step: Awaitable[None]) -> None:
    """Wait for a tidying ``step`` at most CLEANUP_TIMEOUT; its failure is no news."""
    with contextlib.suppress(KeytoolError, TimeoutError):
        async with asyncio.timeout(CLEANUP_TIMEOUT):
            await step


async def _sftp_target(sftp: Sftp, user: str, target: str) -> str:
    from keytool.copyid import DEFAULT_TARGET, OPENWRT_TARGET

    if not target:
        target = DEFAULT_TARGET
        if user == "root" and await sftp.exists("/etc/openwrt_release") is not None:
            target = OPENWRT_TARGET
    try:
        attributes = await sftp.lstat(target)
    except SftpError:
        return target  # not there (yet)
    if attributes.permissions is not None and attributes.permissions & 0o170000 == 0o120000:
        try:  # a symlink: edit the file it points to
            return await sftp.realpath(target)
        except SftpError:
            # as the shell path (readlink -f): a link that cannot be followed is said,
            # never replaced by a file of our own
            raise KeytoolError(
                f"cannot follow the link {shown(target)} (a loop, or a folder of it missing)"
            ) from None
    return target


async def _sftp_mkdirs(sftp: Sftp, folder: str, trace: Trace) -> None:
    if folder in ("", ".", "/"):
        return
    found = await sftp.exists(folder)
    if found is not None:
        if not found.is_dir:
            raise CopyIdError(f"{shown(folder)} is not a folder")
        return
    await _sftp_mkdirs(sftp, posixpath.dirname(folder), trace)
    trace(f"creating {shown(folder)} (mode {NEW_DIR_MODE:04o})")
    await sftp.mkdir(folder, NEW_DIR_MODE)
    # the server's umask may have narrowed or widened what mkdir made
    await sftp.chmod(folder, NEW_DIR_MODE)


async def _sftp_lock(sftp: Sftp, lock: str, trace: Trace) -> None:
    """The shell path's lock: a file created with O_EXCL (SSH_FXF_EXCL), holding
    ``sftp@CLIENT PID`` (this machine's name and process). One left by a copy-id of
    this machine that is gone (killed) is taken over at once; any other one once it
    has not changed for STALE_LOCK_SECONDS (its holder died elsewhere)."""
    from keytool.transport.sftp import FXF_CREAT, FXF_EXCL, FXF_WRITE, Attributes

    loop = asyncio.get_running_loop()
    seen: tuple[int | None, float] | None = None
    waited = False
    missing = 0
    started = loop.time()
    while True:
        try:
            handle = await sftp.open(
                lock, FXF_WRITE | FXF_CREAT | FXF_EXCL, Attributes(permissions=0o600)
            )
        except SftpError as exc:
            found = await sftp.exists(lock)
            if found is None:
                # released meanwhile, or it cannot be made at all (a folder we may not
                # write in): that is not worth a wait
                missing += 1
                if missing > 2:
                    raise CopyIdError(f"cannot create {shown(lock)}: {exc}") from None
                continue
            missing = 0
            if not waited:
                if await _left_by_dead_process(sftp, lock):
                    trace(f"taking over the lock {shown(lock)} left by a copy-id killed here")
                    with contextlib.suppress(SftpError):
                        await sftp.remove(lock)
                    continue
                trace(f"waiting for another copy-id's lock {shown(lock)}")
                waited = True
            now = loop.time()
            if seen is None or seen[0] != found.mtime:
                seen = (found.mtime, now)
            elif now - seen[1] > STALE_LOCK_SECONDS:
                trace(f"taking over the stale lock {shown(lock)}")
                with contextlib.suppress(SftpError):
                    await sftp.remove(lock)
                seen = None
            if now - started > 1.5 * STALE_LOCK_SECONDS:
                # a lock that keeps changing (or cannot be taken over) is somebody's
                # work in progress: as the shell path, give up and name it
                raise CopyIdError(
                    f"{shown(lock)} is held by another copy-id; try again later"
                ) from None
            await asyncio.sleep(_LOCK_POLL)
            continue
        # ours now: a lock we made and cannot fill (a full disk, a quota) is said at
        # once and removed, not waited for as if it were another copy-id's
        try:
            await sftp.write(handle, 0, _lock_owner())
            await sftp.close(handle)
        except SftpError as exc:
            with contextlib.suppress(SftpError):
                await sftp.close(handle)
            with contextlib.suppress(SftpError):
                await sftp.remove(lock)
            raise CopyIdError(f"cannot write the lock {shown(lock)}: {exc}") from None
        return


def _lock_owner() -> bytes:
    """What an SFTP lock holds: never the shell path's ``HOST PID`` (a host name has no
    "@"), so the script never takes it for one of its own."""
    return f"sftp@{socket.gethostname()} {os.getpid()}\n".encode("utf-8", "replace")


async def _left_by_dead_process(sftp: Sftp, lock: str) -> bool:
    """The lock names a process of this machine that is no longer there, and still
    does once that is known (a lock its holder released meanwhile, and another
    installer took, is not that one's)."""
    try:
        text = await sftp.read_file(lock, limit=4096)
    except SftpError:
        return False
    owner, _, pid = text.decode("utf-8", "replace").strip().rpartition(" ")
    if owner != f"sftp@{socket.gethostname()}" or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        pass
    except OSError:  # there, but another user's
        return False
    else:
        return False
    try:
        return await sftp.read_file(lock, limit=4096) == text
    except SftpError:
        return False


async def _sftp_edit(
    sftp: Sftp, user: str, job: Job, keys: list[NewKey], trace: Trace
) -> tuple[RemoteFile, Edit]:
    from keytool.copyid import PathInfo
    from keytool.transport.sftp import FXF_CREAT, FXF_EXCL, FXF_WRITE, Attributes

    target = await _sftp_target(sftp, user, job.target)
    folder, name = posixpath.split(target)
    if job.remove and await sftp.exists(target) is None:
        # nothing to take out: no folder is made, no lock taken
        trace(f"{shown(target)} is not there")
        return RemoteFile(target, None, None), plan(None, keys, job)
    await _sftp_mkdirs(sftp, folder, trace)
    prefix = f"{folder}/" if folder else ""
    lock = f"{prefix}.{name}{LOCK_SUFFIX}"
    temp = f"{prefix}.{name}{TEMP_INFIX}{os.urandom(6).hex()}"
    await _sftp_lock(sftp, lock, trace)
    try:
        found = await sftp.exists(target)
        if found is not None and not found.is_regular:
            raise CopyIdError(f"{shown(target)} is not a regular file")
        if found is not None and not job.dry_run:
            # a file we may not write is left alone (the rename would replace it, owner
            # and all): opened for writing, nothing written
            try:
                await sftp.close(await sftp.open(target, FXF_WRITE))
            except SftpError:
                raise CopyIdError(f"{shown(target)} is not writable") from None
        content = await sftp.read_file(target) if found is not None else None
        mode = (found.permissions or NEW_FILE_MODE) & 0o7777 if found else None
        home = await sftp.exists(".")
        where = await sftp.exists(folder or ".")

        def info(attributes: Attributes | None) -> PathInfo | None:
            if attributes is None or attributes.permissions is None:
                return None
            return PathInfo(attributes.permissions & 0o7777, attributes.uid or 0)

        remote = RemoteFile(target, content, mode, info(home), info(where))
        state = "no file yet" if content is None else f"{len(content)} bytes"
        trace(f"read {shown(target)} over SFTP: {state}")
        edit = plan(content, keys, job)
        if edit.new_text is None:
            return remote, edit
        bits = NEW_FILE_MODE if mode is None else mode
        trace(
            f"writing {len(edit.new_text)} bytes to {shown(temp)}, "
            f"then renaming it to {shown(target)}"
        )
        try:
            await sftp.write_file(
                temp, edit.new_text, FXF_WRITE | FXF_CREAT | FXF_EXCL, bits, fsync=True
            )
            await sftp.chmod(temp, bits)  # the server's umask applies to the open
            await _sftp_replace(sftp, temp, target)
        except BaseException:
            await _briefly(sftp.remove(temp))
            raise
        return remote, edit
    finally:
        await _briefly(sftp.remove(lock))


async def _sftp_replace(sftp: Sftp, temp: str, target: str) -> None:
    from keytool.transport.sftp import POSIX_RENAME

    if POSIX_RENAME in sftp.extensions or await sftp.exists(target) is None:
        await sftp.rename(temp, target)
        return
    # plain SFTP v3 rename refuses to replace (§6.5): move the old file aside first;
    # a drop in between leaves it under the .keytool-old name, never truncated
    aside = f"{temp}-old"
    await sftp.rename(target, aside)
    try:
        await sftp.rename(temp, target)
    except SftpError as exc:
        # the old file goes back: a refused rename must never leave no file at all
        try:
            await sftp.rename(aside, target)
        except SftpError:
            raise CopyIdError(f"{exc}; the old {shown(target)} is kept as {shown(aside)}") from None
        raise
    with contextlib.suppress(SftpError):
        await sftp.remove(aside)

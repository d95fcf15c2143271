"""copy-id on one host, over keytool's own client (``keytool.session``).

One authenticated connection does the work:

1. the host key is verified (known_hosts, or the --expect-hostkey pin) before anything;
2. unless forced, each key is *queried* (a publickey request without signature,
   RFC 4252 §7): a key the server already accepts is not installed again, and when
   all are accepted we stop there, without logging in;
3. we log in (agent, key files, password or keyboard-interactive, asked once at most)
   and edit the file with one remote ``exec sh -c`` (``copyid.REMOTE_SCRIPT``) or,
   with -s, over SFTP; either way a lock is held and the file is replaced by rename;
4. a second connection, opened while the first works, logs in with the new key alone
   to verify it ("installed and verified"), or says why the server still refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import random
import socket
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from keytool.copyid import (
    LOCK_SUFFIX,
    NEW_DIR_MODE,
    NEW_FILE_MODE,
    REMOTE_COMMAND,
    TEMP_INFIX,
    Edit,
    Job,
    KeySource,
    NewKey,
    RemoteFile,
    ShellExchange,
    plan_install,
    plan_remove,
    refusal_causes,
)
from keytool.display import shown
from keytool.errors import (
    AuthError,
    HostKeyPinError,
    KeytoolError,
    SftpError,
    TimedOut,
    in_words,
)
from keytool.tcp import OUT_OF_FILES, out_of_files

if TYPE_CHECKING:
    from keytool.keys.base import PrivateKey
    from keytool.session import Client, ConnectOptions, Prompts
    from keytool.transport.channels import ExecResult
    from keytool.transport.sftp import Sftp

Trace = Callable[[str], None]

#: how long a whole host may take once connected (a lock held elsewhere waits inside)
EDIT_TIMEOUT = 120.0
#: how long a host whose server drops connections before the key exchange (sshd past
#: MaxStartups, which throttles for some seconds) is tried again before it is failed
RETRY_SECONDS = 15.0
#: the longest wait between two tries (the waits grow from 0.1 s, each jittered)
RETRY_MAX_DELAY = 2.0
#: an SFTP lock that has not changed for this long is taken over
STALE_LOCK_SECONDS = 60.0
_LOCK_POLL = 0.05


class CopyIdError(KeytoolError):
    """copy-id could not do its job on a host; the message says why."""


class HostResult(NamedTuple):
    """How it went on one host: ``status`` is installed, already there, removed, not
    there, would install, would remove or failed."""

    destination: str
    status: str
    detail: str = ""
    path: str = ""
    key_count: int = 0
    #: a dry run's key lines, as they would be added (or the keys whose lines would be
    #: removed), for the user to see before the real run
    lines: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "failed"


# ---------------------------------------------------------------- connecting


async def connect_retrying(
    options: ConnectOptions,
    prompts: Prompts | None,
    attempts: int = 0,
    first_delay: float = 0.1,
    sock: socket.socket | None = None,
    budget: float = RETRY_SECONDS,
) -> Client:
    """open_connection, retried when the server drops us before sending a packet
    (closes or resets the connection having sent nothing, only "Exceeded MaxStartups"
    or only its version line: client.ConnectionDropped): sshd does so beyond MaxStartups
    (10:30:100 by default), which a fleet run easily reaches, and goes on dropping for
    seconds; that is not a reason to report the host as failed. Tried again for
    ``budget`` seconds (and at most ``attempts`` times, when not 0), the waits growing
    and jittered so the hosts' retries do not come back together. Any other failure
    (bytes that are not SSH, a close after some packets...) fails at once.
    ``sock``, a connection already started to the host, serves the first attempt."""
    from keytool.client import ConnectionDropped
    from keytool.session import open_connection

    loop = asyncio.get_running_loop()
    give_up = loop.time() + budget
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            started, sock = sock, None
            return await open_connection(options, prompts, started)
        except HostKeyPinError as exc:
            return await _pinned_key_of_another_type(options, prompts, exc)
        except ConnectionDropped as exc:
            # only this: anything else a server says or does (a goodbye with a reason,
            # bytes that are not SSH, packets and then a close) is its answer
            wait = delay * (0.5 + random.random())
            if attempt == attempts or loop.time() + wait > give_up:
                raise
            if options.trace:
                options.trace(f"connection dropped before login ({exc}); retrying")
            await asyncio.sleep(wait)
            delay = min(delay * 2, RETRY_MAX_DELAY)


async def _pinned_key_of_another_type(
    options: ConnectOptions, prompts: Prompts | None, mismatch: HostKeyPinError
) -> Client:
    """--expect-hostkey names another of the server's host keys (its RSA key, say,
    as dropbearkey -y shows it) than the one the key exchange picked: each other key
    type is asked for in turn, and the connection whose key matches the pin is used."""
    from keytool.errors import NegotiationError
    from keytool.keys.cert import is_cert_type, key_type_of_algorithm
    from keytool.session import open_connection

    tried = {mismatch.key_type}
    for algorithm in options.transport.host_key_algorithms:
        kind = key_type_of_algorithm(algorithm)
        if kind in tried or is_cert_type(algorithm):
            continue
        narrowed = options.replace(
            transport=options.transport._replace(host_key_algorithms=(algorithm,))
        )
        try:
            return await open_connection(narrowed, prompts, None)
        except HostKeyPinError:
            tried.add(kind)  # not this key either
        except NegotiationError:
            continue  # the server signs with no such algorithm (rsa-sha2-256 may follow)
    raise mismatch


# ---------------------------------------------------------------- one host


#: takes the closing of a host's connections (a coroutine) off its hands
Closer = Callable[[Coroutine[None, None, None]], None]


async def run_host(
    destination: str,
    options: ConnectOptions,
    job: Job,
    prompts: Prompts | None = None,
    attempts: int = 0,
    closer: Closer | None = None,
    sock: socket.socket | None = None,
) -> HostResult:
    """Do ``job`` on one host; every KeytoolError becomes a failed HostResult, as does
    the process running out of file descriptors wherever it happens (``_why``).

    The connections are closed before it returns, unless ``closer`` is given: then the
    closing (which waits for the server to hang up) is handed to it, so that a fleet
    can start on the next host meanwhile. ``sock`` is a TCP connection to the host
    already under way (``tcp.start_connect``), for the first connection."""
    try:
        return await _run_host(destination, options, job, prompts, attempts, closer, sock)
    except (KeytoolError, OSError) as exc:
        return HostResult(destination, "failed", _why(exc))


def _why(exc: KeytoolError | OSError) -> str:
    """A host's failure in words: running out of file descriptors, whichever step
    it stopped, is said as that."""
    if out_of_files(exc):
        return f"{OUT_OF_FILES} (raise the limit with ulimit -n, or give a lower -j)"
    return in_words(exc)


async def _close_all(verifier: asyncio.Task[Client] | None, clients: Sequence[Client]) -> None:
    """Close the connections at once (each waits for the server to hang up); a
    verifier still connecting is cancelled first."""
    if verifier is not None:
        await _discard(verifier)
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def _run_host(
    destination: str,
    options: ConnectOptions,
    job: Job,
    prompts: Prompts | None,
    attempts: int,
    closer: Closer | None = None,
    sock: socket.socket | None = None,
) -> HostResult:
    trace: Trace = options.trace or (lambda _line: None)
    client = await connect_retrying(options, prompts, attempts, sock=sock)
    verifier: asyncio.Task[Client] | None = None
    closing: list[Client] = []
    try:
        pending = list(job.keys)
        if not job.force and not job.remove:
            pending = []
            for source in job.keys:
                if await client.query_key(source.new.key):
                    trace(f"{source.label or 'key'}: the server accepts it already")
                else:
                    trace(f"{source.label or 'key'}: the server does not accept it yet")
                    pending.append(source)
            if not pending:
                return HostResult(
                    destination,
                    "already there",
                    "the server accepts the key",
                    key_count=len(job.keys),
                )
        if job.dry_run and job.remove:
            # nothing is read in a dry run: the server tells which keys it takes now
            # (one in the file that it refuses is not counted: -n says so)
            pending = [s for s in job.keys if await client.query_key(s.new.key)]
            if not pending:
                note = "the server does not accept the key (so it is not in the file it reads)"
                return HostResult(destination, "not there", note)
        if job.dry_run:
            status = "would remove" if job.remove else "would install"
            return HostResult(
                destination,
                status,
                _labels(pending),
                key_count=len(pending),
                lines=tuple(dict.fromkeys(s.new.line for s in pending)),
            )
        if job.verify:
            verifier = _start_verifier(client, options, pending, attempts)
        await client.authenticate()
        try:
            async with asyncio.timeout(EDIT_TIMEOUT):
                new_keys = [s.new for s in pending]
                if job.sftp:
                    remote, edit = await _edit_over_sftp(client, job, new_keys, trace)
                else:
                    remote, edit = await _edit_over_shell(client, job, new_keys, trace)
        except TimeoutError:
            raise TimedOut(f"copy-id did not finish within {EDIT_TIMEOUT:g}s") from None
        result = _describe(destination, job, remote, edit)
        # keys the server refused when asked, yet in the file now: another copy-id put
        # them there meanwhile, or the server ignores the file; the check tells which
        recheck = [] if job.remove or job.force else list(edit.present)
        if verifier is None:
            if recheck:
                note = "but the server refused it when asked (check with -v, or verify)"
                return result._replace(detail=f"{result.detail}, {note}")
            return result
        if not (edit.added or edit.removed or recheck):
            return result
        try:
            second = await verifier
        except (KeytoolError, OSError) as exc:
            return result._replace(detail=f"{result.detail}; not verified: {_why(exc)}")
        verifier = None
        try:
            if job.remove:
                note = await _verify_removed(second, edit.removed)
            else:
                by_blob = {s.new.blob: s for s in pending}
                sources = [by_blob[k.blob] for k in (*edit.added, *recheck)]
                if not await _verify_installed(second, sources, trace):
                    note = await _refused(client, remote, job, [s.new.blob for s in sources])
                    return result._replace(status="failed", detail=f"{result.detail}; {note}")
                note = (
                    "verified: logged in with the new key"
                    if any(s.private for s in sources)
                    else "the server accepts it (checked by a key query: no private key "
                    "to log in with here, or one with a passphrase and not in the agent)"
                )
        except (KeytoolError, OSError) as exc:
            return result._replace(detail=f"{result.detail}; not verified: {_why(exc)}")
        finally:
            closing.append(second)
        return result._replace(detail=f"{result.detail}; {note}")
    finally:
        done = _close_all(verifier, (client, *closing))
        if closer is None:
            await done
        else:
            closer(done)


def _start_verifier(
    client: Client, options: ConnectOptions, pending: Sequence[KeySource], attempts: int
) -> asyncio.Task[Client]:
    """The second connection, made while the first one works, up to the "none" request;
    pinned to the host key just verified, so nobody is asked about it twice."""
    from keytool.keys.fingerprint import fingerprint

    signer = next((s for s in pending if s.private is not None), None)
    # the pin names the key the first connection checked: ask for its type first, or a
    # server with several host keys may show another one (known_hosts ordered the first)
    checked = client.transport.algorithms.host_key
    offered = options.transport.host_key_algorithms
    trace = options.trace
    # it runs beside the first connection: -v tells whose step a line is
    second_trace = None if trace is None else (lambda line: trace(f"second connection: {line}"))
    pinned = options.replace(
        trace=second_trace,
        transport=options.transport._replace(
            host_key_algorithms=(checked, *(a for a in offered if a != checked)),
            trace=second_trace,
        ),
        expected_host_key=fingerprint(client.transport.host_key),
        strict_host_key_checking="yes",  # the first connection recorded it if need be
        identity_files=(str(signer.private),) if signer is not None else (),
        identities_only=True,
        agent=signer is not None and signer.needs_agent,
        pubkey_authentication=signer is not None,
        password_authentication=False,
        kbd_interactive_authentication=False,
        batch_mode=True,
        password=None,
        add_keys_to_agent=("no", None),  # a check, not a login of the user's
    )

    async def open_verifier() -> Client:
        second = await connect_retrying(pinned, None, attempts)
        if signer is not None and not signer.needs_agent:
            return second  # it signs at once, with no need to know the methods first
        try:
            await second.learn_methods()
        except BaseException:
            await second.close()
            raise
        return second

    return asyncio.get_running_loop().create_task(open_verifier())


async def _discard(task: asyncio.Task[Client]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(BaseException):
        client = await task
        await client.close()


def _labels(sources: Sequence[KeySource]) -> str:
    return ", ".join(s.label or s.new.key.key_type for s in sources)


def _describe(destination: str, job: Job, remote: RemoteFile, edit: Edit) -> HostResult:
    path, named = remote.path, shown(remote.path)
    if job.remove:
        if edit.removed:
            n = edit.removed_lines
            detail = f"{n} line{'s' if n != 1 else ''} removed from {named}"
            return HostResult(destination, "removed", detail, path, len(edit.removed))
        return HostResult(destination, "not there", f"not in {named}", path)
    if edit.added:
        n = len(edit.added)
        detail = f"{n} key{'s' if n != 1 else ''} added to {named}"
        return HostResult(destination, "installed", detail, path, n)
    return HostResult(destination, "already there", f"already in {named}", path, len(edit.present))


# ---------------------------------------------------------------- the edit, by shell


async def _edit_over_shell(
    client: Client, job: Job, keys: list[NewKey], trace: Trace
) -> tuple[RemoteFile, Edit]:
    from keytool.display import escape, utf8_locale

    exchange = ShellExchange(job.target, remove=job.remove)
    planned: list[Edit] = []
    file_ready = asyncio.Event()
    sent_opening = False
    sent_reply = False

    async def stdin() -> bytes:
        nonlocal sent_opening, sent_reply
        if not sent_opening:
            sent_opening = True
            return exchange.opening()
        if sent_reply:
            return b""
        await file_ready.wait()
        sent_reply = True
        remote = exchange.remote
        assert remote is not None
        edit = _plan(remote.content, keys, job)
        planned.append(edit)
        if edit.new_text is not None:
            trace(
                f"writing {len(edit.new_text)} bytes to {shown(remote.path)} (a copy, then rename)"
            )
        else:
            trace(f"{shown(remote.path)} stays as it is")
        return ShellExchange.reply(edit.new_text, remote.content)

    # what the server printed before the script's header: a forced command's words
    printed = bytearray()

    def stdout(data: bytes) -> None:
        if not exchange.started and len(printed) < _PRINTED_KEPT:
            printed.extend(data[: _PRINTED_KEPT - len(printed)])
        remote = exchange.feed(data)
        if remote is not None:
            state = "no file yet" if remote.content is None else f"{len(remote.content)} bytes"
            trace(f"read {shown(remote.path)}: {state}")
            file_ready.set()

    errors: list[bytes] = []
    trace("running the install script under sh (umask 077, lock, temp file + rename)")
    result = await client.exec(REMOTE_COMMAND, stdin, stdout, errors.append)
    remote = exchange.remote
    words = b"".join(errors).strip()
    # the script's words name the path as its bytes: shown as the messages here show it
    last_words = escape(words.rsplit(b"\n", 1)[-1], utf8_locale())
    if remote is None or not planned:
        message = words.decode("utf-8", "replace")
        last = message.splitlines()[-1] if message else ""
        if last_words.startswith("keytool: "):  # our script's own words
            raise CopyIdError(last_words[len("keytool: ") :])
        if exchange.started:
            raise CopyIdError(
                "the install script stopped before it sent all of the file "
                f"({_how_it_ended(result)}); nothing was changed"
            )
        said = f"it said {last!r}" if last else "no answer"
        first = _first_line(bytes(printed))
        if first:
            said = f"the server printed {first!r}" + (f" and {said}" if last else "")
        raise CopyIdError(
            f"the install script did not run ({said}, {_how_it_ended(result)}): "
            "a forced command for this login (command= in authorized_keys, ForceCommand), "
            "or an account without a usable shell? log in another way, or try -s for SFTP"
        )
    edit = planned[0]
    # "done" comes after the rename: the file is written, whatever status follows (a
    # server may send none)
    if edit.new_text is not None and exchange.done:
        return remote, edit
    if result.exit_status not in (0, None) or edit.new_text is not None:
        reason = last_words if words else _how_it_ended(result)
        raise CopyIdError(f"could not write {shown(remote.path)}: {reason}")
    return remote, edit


def _how_it_ended(result: ExecResult) -> str:
    """How the remote command ended, in words: its exit status, the signal that killed
    it, or that the server said neither."""
    from keytool.display import safe

    if result.exit_status is not None:
        return f"exit status {result.exit_status}"
    if result.exit_signal is not None:
        return f"killed by signal {safe(result.exit_signal)}"
    return "no exit status"


#: how much of what a server prints instead of running the script is kept, to quote
_PRINTED_KEPT = 4096
_QUOTED_MAX = 120


def _first_line(output: bytes) -> str:
    """The first line with words in ``output`` (a forced command's answer), made safe
    to show: control characters as "?", cut short past _QUOTED_MAX characters."""
    from keytool.display import safe

    for raw in output.split(b"\n"):
        text = raw.rstrip(b"\r").decode("utf-8", "replace").replace("\t", " ")
        line = safe(text).strip()
        if line:
            return line if len(line) <= _QUOTED_MAX else line[:_QUOTED_MAX] + "..."
    return ""


def _plan(content: bytes | None, keys: list[NewKey], job: Job) -> Edit:
    if job.remove:
        return plan_remove(content, keys)
    return plan_install(content, keys, job.force)


# ---------------------------------------------------------------- the edit, by SFTP


async def _edit_over_sftp(
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
        return RemoteFile(target, None, None), _plan(None, keys, job)
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
        edit = _plan(content, keys, job)
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


# ---------------------------------------------------------------- verification


async def _verify_installed(client: Client, sources: Sequence[KeySource], trace: Trace) -> bool:
    """Log in with the new key alone (the verifier offers nothing else); without a
    private key to sign with, ask the server whether it would take the key."""
    signers = [s for s in sources if s.private is not None]
    if not signers:
        for source in sources:
            if not await client.query_key(source.new.key):
                return False
        return True
    signer = signers[0]
    trace(f"verifying: logging in with {signer.private} alone")
    try:
        if signer.needs_agent or signer.private is None:
            await client.authenticate()
        else:
            key = _private_key(signer.private)
            if not await client.authenticate_with_key(key):
                trace("verification failed: the server refused the new key")
                return False
    except AuthError as exc:
        trace(f"verification failed: {exc}")
        return False
    return True


#: key files loaded for the verification, by path and what stat says of the file (so a
#: changed file or mode is read and checked again): a fleet parses the new key once
_LOADED: dict[tuple[str, int, int, int, int, int, int], PrivateKey] = {}


def _private_key(path: Path) -> PrivateKey:
    from keytool.keyfiles import load_private_file

    try:
        st = os.stat(path)
        known = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid)
    except OSError:
        known = None
    if known is not None and known in _LOADED:
        return _LOADED[known]
    key, _ = load_private_file(path, ask=None)
    if known is not None:
        _LOADED[known] = key
    return key


async def _refused(
    client: Client, remote: RemoteFile, job: Job, blobs: Sequence[bytes] = ()
) -> str:
    """Why the server refuses a key that is in the file, from what the first
    connection can still see of the modes on the way to it."""
    from keytool.copyid import DIAGNOSE_COMMAND, parse_diagnosis

    if not job.sftp:
        with contextlib.suppress(KeytoolError):
            result = await client.run(
                DIAGNOSE_COMMAND, remote.path.encode("utf-8", "surrogateescape") + b"\n"
            )
            remote = parse_diagnosis(remote, result.stdout)
    causes = refusal_causes(remote, blobs=blobs)
    text = f"the key is in {shown(remote.path)} but the server refuses it; likely: {causes[0]}"
    if len(causes) > 1:
        text += f" (or: {'; '.join(causes[1:])})"
    return text


async def _verify_removed(client: Client, removed: Sequence[NewKey]) -> str:
    for key in removed:
        if await client.query_key(key.key):
            return "but the server still accepts the key (listed in another authorized keys file?)"
    return "verified: the server no longer accepts the key"

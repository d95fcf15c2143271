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

The parts: connecting with retries in keytool/copyid_connect.py; the edit over the
shell in copyid_shell.py, over SFTP in copyid_sftp.py (what both share in
copyid_edit.py); the verification connection in copyid_verify.py; the refusal
diagnosis in copyid_refusal.py. ``run_host`` ties them together here.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, NamedTuple

from keytool.copyid import Edit, Job, KeySource, RemoteFile
from keytool.copyid_connect import RETRY_MAX_DELAY, RETRY_SECONDS, connect_retrying
from keytool.copyid_edit import CopyIdError, Trace
from keytool.copyid_refusal import refused
from keytool.copyid_sftp import CLEANUP_TIMEOUT, STALE_LOCK_SECONDS, edit_over_sftp
from keytool.copyid_shell import edit_over_shell
from keytool.copyid_verify import discard, start_verifier, verify_installed, verify_removed
from keytool.display import shown
from keytool.errors import KeytoolError, TimedOut, in_words
from keytool.tcp import OUT_OF_FILES, out_of_files

if TYPE_CHECKING:
    from keytool.session import Client, ConnectOptions, Prompts

__all__ = [
    "CLEANUP_TIMEOUT",
    "EDIT_TIMEOUT",
    "RETRY_MAX_DELAY",
    "RETRY_SECONDS",
    "STALE_LOCK_SECONDS",
    "Closer",
    "CopyIdError",
    "HostResult",
    "Trace",
    "connect_retrying",
    "run_host",
]


#: how long a whole host may take once connected (a lock held elsewhere waits inside)
EDIT_TIMEOUT = 120.0


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
        await discard(verifier)
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
            verifier = start_verifier(client, options, pending, attempts)
        await client.authenticate()
        try:
            async with asyncio.timeout(EDIT_TIMEOUT):
                new_keys = [s.new for s in pending]
                if job.sftp:
                    remote, edit = await edit_over_sftp(client, job, new_keys, trace)
                else:
                    remote, edit = await edit_over_shell(client, job, new_keys, trace)
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
                note = await verify_removed(second, edit.removed)
            else:
                by_blob = {s.new.blob: s for s in pending}
                sources = [by_blob[k.blob] for k in (*edit.added, *recheck)]
                if not await verify_installed(second, sources, trace):
                    note = await refused(client, remote, job, [s.new.blob for s in sources])
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

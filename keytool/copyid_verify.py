"""copy-id's verification: the second connection (opened while the first one works,
pinned to the host key just checked, offering the new key alone), the login with the
new key or, without a private key to sign with, a key query; after a removal, that the
server no longer accepts the key."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from keytool.copyid import KeySource, NewKey
from keytool.copyid_connect import connect_retrying
from keytool.copyid_edit import Trace
from keytool.errors import AuthError

if TYPE_CHECKING:
    from keytool.keys.base import PrivateKey
    from keytool.session import Client, ConnectOptions


def start_verifier(
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


async def discard(task: asyncio.Task[Client]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(BaseException):
        client = await task
        await client.close()


async def verify_installed(client: Client, sources: Sequence[KeySource], trace: Trace) -> bool:
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


async def verify_removed(client: Client, removed: Sequence[NewKey]) -> str:
    for key in removed:
        if await client.query_key(key.key):
            return "but the server still accepts the key (listed in another authorized keys file?)"
    return "verified: the server no longer accepts the key"

"""Why the server refuses a key copy-id has put in the file: the modes on the way to
it, as the first connection can still see them (``copyid.DIAGNOSE_COMMAND`` over the
shell), turned into the likely causes (``copyid.refusal_causes``)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from keytool.copyid import Job, RemoteFile, refusal_causes
from keytool.display import shown
from keytool.errors import KeytoolError

if TYPE_CHECKING:
    from keytool.session import Client


async def refused(client: Client, remote: RemoteFile, job: Job, blobs: Sequence[bytes] = ()) -> str:
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

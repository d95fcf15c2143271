"""What copy-id's two ways of editing the remote file (``copyid_shell``, over one
``exec sh -c``; ``copyid_sftp``, over SFTP) share: the error they raise when they
cannot do their job, the trace callback they report to, and the edit planned from
the file's content (``keytool.copyid``'s plan_install or plan_remove)."""

from __future__ import annotations

from collections.abc import Callable

from keytool.copyid import Edit, Job, NewKey, plan_install, plan_remove
from keytool.errors import KeytoolError

Trace = Callable[[str], None]


class CopyIdError(KeytoolError):
    """copy-id could not do its job on a host; the message says why."""


def plan(content: bytes | None, keys: list[NewKey], job: Job) -> Edit:
    if job.remove:
        return plan_remove(content, keys)
    return plan_install(content, keys, job.force)

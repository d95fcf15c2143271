"""copy-id's edit of the remote file over the shell: one ``exec sh -c`` runs
``copyid.REMOTE_SCRIPT`` (lock, temp file, rename), which sends the file and takes the
new text back (``copyid.ShellExchange``); when the script does not run, what the server
printed and how the command ended say why."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from keytool.copyid import REMOTE_COMMAND, Edit, Job, NewKey, RemoteFile, ShellExchange
from keytool.copyid_edit import CopyIdError, Trace, plan
from keytool.display import shown

if TYPE_CHECKING:
    from keytool.session import Client
    from keytool.transport.channels import ExecResult


async def edit_over_shell(
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
        edit = plan(remote.content, keys, job)
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

"""UpdateHostKeys for one connection: the adapter around ``keytool.knownhosts_update``
that reads and rewrites the user's known_hosts files.

The client's driver hands it the server's "hostkeys-00@openssh.com" list
(``announced``) and the answer to the proof request it may send (``answered``)::

    update = HostKeyUpdate(options, prompts, session_id, host_key_algorithm)
    body = update.announced(event.body)      # None: nothing to prove
    if body is not None:
        conn.prove_host_keys(body)
    ...
    update.answered(reply.ok, reply.data)    # the files are rewritten here

It runs only for a host key that was trusted through the user's own known_hosts (or
confirmed by the user at the question), as ssh: the caller decides that.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from keytool import knownhosts_update as ku
from keytool.errors import FormatError, KeytoolError
from keytool.keys.base import PublicKey
from keytool.keys.fingerprint import fingerprint
from keytool.knownhosts import lookup_name
from keytool.options import ConnectOptions, Prompts


class HostKeyUpdate:
    def __init__(
        self,
        options: ConnectOptions,
        prompts: Prompts,
        session_id: bytes,
        host_key_algorithm: str,
    ) -> None:
        self.options = options
        self.prompts = prompts
        self.session_id = session_id
        self.host_key_algorithm = host_key_algorithm
        self.name = lookup_name(*options.known_hosts_name())
        self.files = [Path(os.path.expanduser(f)) for f in options.user_known_hosts]
        self.plan: ku.Plan | None = None  # waiting for the server's proofs
        self.done = False
        #: UpdateHostKeys ask: shows the changes' lines and says whether the user took
        #: them (the driver's terminal); without it, ask changes nothing
        self.ask: Callable[[list[str]], bool] | None = None

    def _trace(self, line: str) -> None:
        if self.options.trace is not None:
            self.options.trace(f"host keys: {line}")

    def _error(self, line: str) -> None:
        if self.options.shows_errors:
            self.prompts.show(line)

    @property
    def waiting(self) -> bool:
        """A proof request is out and its answer has not come."""
        return self.plan is not None

    def announced(self, body: bytes) -> bytes | None:
        """The server's list of its host keys: the body of the proof request to send
        for the keys known_hosts lacks, or None (then whatever was to do is done)."""
        if self.done:
            raise FormatError("the server sent its host keys twice")
        self.done = True
        keys, notes = ku.announced_keys(body, self.options.transport.host_key_algorithms)
        for note in notes:
            self._trace(f"the server also has {note}")
        self._trace(f"the server has {len(keys)} host keys: {_kinds(keys)}")
        if not keys:
            return None
        texts = self._read_files()
        if texts is None:
            return None
        plan = ku.plan(texts, self.name, keys)
        del texts  # the files are read again to be rewritten: not held twice
        if not plan.changes:
            self._trace(f"known_hosts holds them all for {self.name}")
            return None
        if plan.blocked:
            self._trace(f"known_hosts left as it is: {plan.blocked}")
            return None
        if not plan.new:
            self._apply(plan, list(plan.keys), ())
            return None
        self._trace(
            f"{len(plan.new)} new ({_kinds(plan.new)}): asking the server to prove it holds them"
        )
        self.plan = plan
        return ku.prove_request(plan.new)

    def _read_files(self) -> list[tuple[str, bytes]] | None:
        """(path, bytes) of the user's files there are; None when one cannot be read."""
        from keytool.hostcheck import UnreadableError, read_known_hosts_file

        texts = []
        for path in self.files:
            try:
                data = read_known_hosts_file(str(path))
            except UnreadableError as exc:
                # as ssh: said, and no file changed (it could undo what that one holds)
                self._error(f"cannot read {path}: {exc}")
                self._trace("known_hosts left as it is")
                return None
            if data is not None:
                texts.append((str(path), data))
        return texts

    def answered(self, ok: bool, data: bytes) -> None:
        """The server's answer to our proof request: with good proofs for every new
        key, known_hosts is rewritten."""
        plan, self.plan = self.plan, None
        if plan is None:
            return
        if not ok:
            self._error("Server failed to confirm ownership of private host keys")
            return
        try:
            proved, disregarded = ku.check_proofs(
                data, self.session_id, plan.new, self.host_key_algorithm
            )
        except FormatError as exc:
            self._error(f"UpdateHostKeys: {exc}; known_hosts left as it is")
            return
        for key in disregarded:
            self._trace(f"the proof for the {key.key_type} key used a SHA-1 signature: left out")
        self._trace(f"the server proved it holds {_kinds(proved) or 'none of them'}")
        keys = [k for k in plan.keys if k not in disregarded]
        self._apply(plan, keys, proved)

    def _apply(self, plan: ku.Plan, keys: list[PublicKey], proved: Sequence[PublicKey]) -> None:
        hashed = self.options.fingerprint_hash
        lines = [f"Learned new hostkey: {k.label} {fingerprint(k, hashed)}" for k in proved]
        for key in plan.old:
            lines.append(f"Deprecating obsolete hostkey: {key.label} {fingerprint(key, hashed)}")
        for line in lines:
            self._trace(line)
        if self.options.update_host_keys == "ask" and not (self.ask and self.ask(lines)):
            self._trace("known_hosts left as it is: the changes were not accepted")
            return
        for index, path in enumerate(self.files):
            # keys are added to the first file only; the others lose the host's lines
            self._rewrite(path, keys if index == 0 else [])

    def _rewrite(self, path: Path, keys: list[PublicKey]) -> None:
        from keytool.files import write_atomic
        from keytool.hostcheck import (
            KNOWN_HOSTS_MODE,
            UnreadableError,
            forget_parsed,
            read_known_hosts_file,
        )

        target = Path(os.path.realpath(path))
        try:
            text = read_known_hosts_file(str(target))
        except UnreadableError as exc:
            self._error(f"cannot read {path}: {exc}")
            return
        if text is None:
            return
        data, changes = ku.replace_entries(text, self.name, keys, self.options.hash_known_hosts)
        if not changes:
            return
        for change in changes:
            key = change.key
            if change.added:
                shown = fingerprint(key, self.options.fingerprint_hash)
                self._trace(f"Adding new key for {self.name} to {path}: {key.key_type} {shown}")
            else:
                self._trace(f"{path}:{change.line}: Removed {key.label} key for host {self.name}")
        old = target.with_name(f"{target.name}.old")
        try:
            write_atomic(target, data, KNOWN_HOSTS_MODE, keep_mode=True, backup=old)
        except KeytoolError as exc:
            self._error(f"UpdateHostKeys: {exc}")
        forget_parsed(str(target))


def _kinds(keys: Sequence[PublicKey]) -> str:
    return ", ".join(k.key_type for k in keys)

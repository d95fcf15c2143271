"""copy-id without I/O: what the remote authorized_keys becomes, and how to get it there.

``plan_install`` / ``plan_remove`` take the remote file's bytes and the keys, and
return the new bytes: every existing line kept byte for byte (a last line without a
newline gets one before anything is appended), keys compared by their blob, so
options (``from=``, ``command=``...) and comments never make a duplicate.

``REMOTE_SCRIPT`` is the remote side of the shell path, run as ``exec sh -c '...'`` so
a login shell of fish, csh or tcsh does not matter. It speaks a small protocol over
the channel (``ShellExchange`` is our side of it):

    we send      keytool-copyid 3 [remove] MARK\\n TARGET\\n   ("": ~/.ssh/authorized_keys)
    it sends     keytool-copyid 3\\n PATH\\n file|none\\n then the file's bytes, then MARK\\n
    we send      keep\\n
            or   append N\\n followed by N lines (each ending in \\n) to add at the end
            or   write SIZE\\n followed by SIZE bytes (the whole new file) and EOF
    it sends     keytool-copyid done\\n  after the rename

A removal from a file that is not there ends after the header: nothing is created.
MARK is 32 random hex digits of ours, fresh for every run: it ends the file's bytes,
which cannot hold it, so the script needs no program to measure the file first.

It holds a lock (a file next to it, created with O_EXCL) from before it reads the
file until after the rename, so concurrent installers never lose a line;
the new file is written next to the old one and renamed over it only when every
line (append) or all SIZE bytes (write) arrived, so a dropped connection leaves the
old file whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from keytool.display import shown
from keytool.errors import FormatError, KeytoolError, ProtocolError
from keytool.keys.base import PublicKey

DEFAULT_TARGET = ".ssh/authorized_keys"
#: hosts at once when -j is not given
DEFAULT_JOBS = 32
#: where dropbear on OpenWrt reads root's keys (as ssh-copy-id knows)
OPENWRT_TARGET = "/etc/dropbear/authorized_keys"
NEW_FILE_MODE = 0o600
NEW_DIR_MODE = 0o700

#: lock and temp file names next to the target (the same in the shell and SFTP paths)
LOCK_SUFFIX = ".keytool-lock"
TEMP_INFIX = ".keytool-"


class NewKey(NamedTuple):
    """A key to install or remove: its authorized_keys line (no newline)."""

    key: PublicKey
    line: str

    @property
    def blob(self) -> bytes:
        return self.key.to_wire()


class KeySource(NamedTuple):
    """A key to install, and how to log in with it for the verification."""

    new: NewKey
    private: Path | None = None  # a private key file we can sign with (unencrypted or in agent)
    label: str = ""  # what the user named: the file
    needs_agent: bool = False  # the file is encrypted: the agent signs


class Job(NamedTuple):
    """What copy-id does on every host."""

    keys: tuple[KeySource, ...]
    remove: bool = False
    force: bool = False
    dry_run: bool = False
    sftp: bool = False
    target: str = ""  # "" is ~/.ssh/authorized_keys (root on OpenWrt: dropbear's file)
    verify: bool = True


class Edit(NamedTuple):
    """What a plan decided. ``new_text`` None: leave the file as it is."""

    new_text: bytes | None
    added: tuple[NewKey, ...] = ()
    present: tuple[NewKey, ...] = ()  # already there (install) / not there (remove)
    removed: tuple[NewKey, ...] = ()
    removed_lines: int = 0


# ---------------------------------------------------------------- planning


def line_blob(raw: bytes) -> bytes | None:
    """The key blob of one authorized_keys line; None for blanks, comments, and lines
    that do not parse (kept as they are, never matched)."""
    from keytool.authkeys import parse_line

    try:
        parsed = parse_line(raw.decode("utf-8", errors="replace"))
    except KeytoolError:
        return None
    return parsed.key.to_wire() if parsed is not None else None


def _lines(text: bytes) -> list[bytes]:
    """The lines with their own endings, so joining them gives ``text`` back. Lines
    end at a newline only, as sshd reads them (a lone carriage return is in a line)."""
    if not text:
        return []
    parts = text.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


def _unique(keys: Iterable[NewKey]) -> list[NewKey]:
    seen: set[bytes] = set()
    found: list[NewKey] = []
    for key in keys:
        if key.blob not in seen:
            seen.add(key.blob)
            found.append(key)
    return found


def plan_install(current: bytes | None, keys: Sequence[NewKey], force: bool = False) -> Edit:
    """Append the keys not in ``current`` (None: no file yet); ``force`` appends even
    those already there (ssh-copy-id -f)."""
    text = current or b""
    existing = {blob for line in _lines(text) if (blob := line_blob(line)) is not None}
    wanted = _unique(keys)
    added = [k for k in wanted if force or k.blob not in existing]
    present = [k for k in wanted if k not in added]
    if not added and current is not None:
        return Edit(None, (), tuple(present))
    out = bytearray(text)
    if out and not out.endswith(b"\n"):
        out += b"\n"
    for key in added:
        # a comment that is not UTF-8 came in as surrogate escapes: its own bytes again
        out += key.line.encode("utf-8", "surrogateescape") + b"\n"
    return Edit(bytes(out), tuple(added), tuple(present))


def plan_remove(current: bytes | None, keys: Sequence[NewKey]) -> Edit:
    """Drop every line holding one of the keys; every other line stays byte for byte."""
    wanted = _unique(keys)
    blobs = {k.blob for k in wanted}
    kept: list[bytes] = []
    found: set[bytes] = set()
    dropped = 0
    for line in _lines(current or b""):
        blob = line_blob(line)
        if blob is not None and blob in blobs:
            found.add(blob)
            dropped += 1
        else:
            kept.append(line)
    removed = tuple(k for k in wanted if k.blob in found)
    absent = tuple(k for k in wanted if k.blob not in found)
    if not dropped:
        return Edit(None, present=absent)
    return Edit(b"".join(kept), present=absent, removed=removed, removed_lines=dropped)


# ---------------------------------------------------------------- the remote shell script

# One line, no single quote, no backslash pair, no "!": it travels inside '...' through
# the user's login shell (sh, bash, fish, csh, tcsh) untouched. Nothing we are given
# (the target path, the keys) is in it: those go over stdin. Few programs run (each
# fork and exec costs more than the rest of the script; on a fleet the remote side's
# processes are most of the work): cp, cat, mv and rm on an install, the rest is shell
# builtins (appended lines are read with read and written with printf).
# The lock is a file created with O_EXCL (noclobber), holding "host pid": a lock left
# by a killed shell on this host is taken over at once, any other one (the SFTP path's)
# once it is over a minute old. What we are sent is a copy of the old file (cp -p keeps
# its mode and owner), so what we planned from is what gets extended or overwritten;
# the copy is renamed over the file only when every line or byte arrived.
_SCRIPT_LINES = (
    "cd || exit 1",
    "umask 077",
    "IFS= read -r m || exit 1",
    # a removal takes nothing from a file that is not there, and creates nothing
    'case "$m" in *" remove "*) r=1 ;; *) r= ;; esac',
    "m=${m##* }",
    "IFS= read -r t || exit 1",
    'if [ -z "$t" ]; then t=' + DEFAULT_TARGET + "; "
    'if [ -f /etc/openwrt_release ] && [ "$(id -u)" = 0 ]; then t=' + OPENWRT_TARGET + "; fi; fi",
    # a name starting with "-" must not read as an option of cp, mv or readlink
    'case "$t" in -*) t="./$t" ;; esac',
    'if [ -h "$t" ]; then t=$(readlink -f "$t") || '
    '{ echo "keytool: cannot follow the link $t (a loop, or a folder of it unreadable)" >&2; '
    "exit 1; }; fi",
    'case "$t" in */*) d="${t%/*}"; f="${t##*/}" ;; *) d=.; f="$t" ;; esac',
    'if [ -z "$d" ]; then d=/; fi',
    'if [ -z "$r" ] || [ -e "$t" ]; then :; else '
    'printf "keytool-copyid 3\\n%s\\nnone\\n%s\\n" "$t" "$m"; exit 0; fi',
    'if [ -d "$d" ]; then :; else mkdir -p "$d" || '
    '{ echo "keytool: cannot create the folder $d" >&2; exit 1; }; fi',
    'if [ -e "$t" ] && [ -f "$t" ]; then :; elif [ -e "$t" ]; then '
    'echo "keytool: $t is not a regular file" >&2; exit 1; fi',
    # as ssh-copy-id, which appends in place: a file we may not write is left alone
    # (the rename would replace it all the same, owner and all)
    'if [ -e "$t" ]; then if [ -w "$t" ]; then :; else '
    'echo "keytool: $t is not writable" >&2; exit 1; fi; fi',
    # the lock and the new file go beside it: without that the wait would be for nothing
    'if [ -w "$d" ]; then :; else echo "keytool: cannot create files in $d '
    '(a copy is written there, then renamed over $f)" >&2; exit 1; fi',
    'l="$d/.$f' + LOCK_SUFFIX + '"',
    # the new file's name holds MARK, ours and fresh: nobody can have put a link there
    # before us, and it is created exclusively (noclobber) before anything is written
    'k="$d/.$f' + TEMP_INFIX + '$m"',
    "h=",
    "read -r h 2>/dev/null < /proc/sys/kernel/hostname || h=$(uname -n 2>/dev/null)",
    "n=0",
    "set -C",
    'until echo "$h $$" 2>/dev/null > "$l"; do '
    'o=; read -r o 2>/dev/null < "$l"; '
    # a holder that is gone and left its lock: it is read again once the holder is
    # known gone, and removed only if unchanged (else a lock released meanwhile, and
    # taken by another installer, would be removed from under it)
    'case "$o" in "$h "?*) if kill -0 "${o#* }" 2>/dev/null; then :; else '
    'p=; read -r p 2>/dev/null < "$l"; if [ "$p" = "$o" ]; then rm -f "$l"; fi; fi ;; '
    '*) if [ -n "$(find "$l" -prune -mmin +1 2>/dev/null)" ]; then rm -f "$l"; fi ;; esac; '
    "n=$((n+1)); "
    'if [ "$n" -gt 1200 ]; then echo "keytool: $t is locked by another copy-id ($l)" >&2; '
    "exit 75; fi; "
    "sleep 0.05 2>/dev/null || sleep 1; done",
    'u() { rm -f "$k" "$l"; }',
    "trap u EXIT",
    'trap "exit 1" HUP INT TERM PIPE',
    ': > "$k" || exit 1',
    "set +C",
    'if [ -f "$t" ]; then cp -p "$t" "$k" || exit 1; s=file; else s=none; fi',
    'printf "keytool-copyid 3\\n%s\\n%s\\n" "$t" $s',
    'if [ $s = file ]; then cat "$k" || exit 1; fi',
    'printf "%s\\n" "$m"',
    "IFS= read -r c || exit 1",
    "set -- $c",
    'if [ "$1" = append ]; then i=0; while [ $i -lt "$2" ]; do IFS= read -r x || exit 1; '
    'printf "%s\\n" "$x" >> "$k" || exit 1; i=$((i+1)); done; '
    'elif [ "$1" = write ]; then cat > "$k" || exit 1; '
    'if [ $(wc -c < "$k") -eq "$2" ]; then :; else '
    'echo "keytool: the upload was cut short; $t is unchanged" >&2; exit 1; fi; '
    "else exit 0; fi",
    'mv -f "$k" "$t" || exit 1',
    'if command -v restorecon >/dev/null 2>&1; then restorecon -F "$d" "$t" >/dev/null 2>&1; fi',
    "echo keytool-copyid done",
)
REMOTE_SCRIPT = "; ".join(_SCRIPT_LINES)
REMOTE_COMMAND = f"exec sh -c '{REMOTE_SCRIPT}'"

#: run on a refusal, to tell the likely cause: the modes of home, folder and file
DIAGNOSE_COMMAND = (
    "exec sh -c 'cd || exit 1; IFS= read -r t; "
    'case "$t" in */*) d="${t%/*}" ;; *) d=. ;; esac; '
    'if [ -z "$d" ]; then d=/; fi; '
    'ls -ldn . "$d" "$t"' + "'"
)

_HEADER = b"keytool-copyid 3\n"
_HEADER_LINES = 3
_MAX_NOISE = 64 * 1024
#: the largest authorized_keys the shell path reads back, as files.MAX_TEXT_FILE_SIZE
MAX_REMOTE_FILE = 16 * 1024 * 1024
DONE = b"keytool-copyid done\n"


def check_target(target: str) -> str:
    """A -t path as the remote side takes it (relative paths: from the home folder)."""
    if "\n" in target or "\r" in target or "\0" in target:
        raise KeytoolError("the target path must not contain line breaks or NUL")
    if target.startswith("~/"):
        # the remote home, as a shell would read it unquoted: paths are relative to it
        target = target[2:].lstrip("/") or target
    return target


_LS_BITS = (
    (1, "r", 0o400),
    (2, "w", 0o200),
    (4, "r", 0o040),
    (5, "w", 0o020),
    (7, "r", 0o004),
    (8, "w", 0o002),
)


def mode_from_ls(perms: str) -> int:
    """Permission bits of an ``ls -l`` mode string such as ``-rw-r-----``."""
    if len(perms) < 10:
        raise FormatError(f"unexpected ls output: {perms!r}")
    mode = 0
    for at, char, bit in _LS_BITS:
        if perms[at] == char:
            mode |= bit
    for at, bit, special in ((3, 0o100, 0o4000), (6, 0o010, 0o2000), (9, 0o001, 0o1000)):
        c = perms[at]
        if c in "xst":
            mode |= bit
        if c in "sStT":
            mode |= special
    return mode


class PathInfo(NamedTuple):
    """What ``ls -ldn`` said about one path: permission bits and owner uid."""

    mode: int
    uid: int

    @classmethod
    def parse(cls, line: str) -> PathInfo | None:
        fields = line.split()
        if len(fields) < 4 or not fields[2].isdigit():
            return None
        try:
            return cls(mode_from_ls(fields[0]), int(fields[2]))
        except FormatError:
            return None


class RemoteFile(NamedTuple):
    """The remote authorized_keys as the script (or SFTP) found it, lock held."""

    path: str
    content: bytes | None  # None: no such file yet
    mode: int | None  # permission bits of the existing file
    home: PathInfo | None = None
    folder: PathInfo | None = None


class ShellExchange:
    """Our side of REMOTE_SCRIPT's protocol: feed its stdout, get what to send."""

    def __init__(self, target: str = "", mark: str | None = None, remove: bool = False) -> None:
        self.target = check_target(target)
        self.remove = remove
        #: ends the file's bytes in the script's output; fresh random hex per run
        self.mark = (mark or os.urandom(16).hex()).encode("ascii")
        self._buffer = bytearray()
        self._scanned = 0  # how far the buffer was searched for the mark
        self._header: list[str] | None = None
        self.remote: RemoteFile | None = None
        self.done = False

    @property
    def started(self) -> bool:
        """The script answered (its header came), whatever came after."""
        return self._header is not None

    def opening(self) -> bytes:
        # a first line of our own: should an SFTP server (ForceCommand internal-sftp)
        # read it instead of the script, its first four bytes make a length far past
        # any limit, and it hangs up at once instead of waiting for more
        first = _HEADER[:-1] + (b" remove " if self.remove else b" ") + self.mark + b"\n"
        # a name that is not UTF-8 goes as the bytes it was given as
        return first + self.target.encode("utf-8", "surrogateescape") + b"\n"

    def feed(self, data: bytes) -> RemoteFile | None:
        """Take stdout bytes; returns the RemoteFile once it is complete (once)."""
        self._buffer += data
        if self.remote is not None:
            if DONE in self._buffer:
                self.done = True
            else:  # only the tail can still begin the done line
                del self._buffer[: -len(DONE)]
            return None
        if self._header is None:
            # text a login script printed before ours is skipped, even when its last
            # line has no newline (printf "welcome" in a .bashrc)
            start = self._buffer.find(_HEADER)
            if start < 0:
                if len(self._buffer) > _MAX_NOISE:
                    raise ProtocolError(
                        "unexpected output from the remote shell: "
                        f"{bytes(self._buffer[:80]).decode('utf-8', 'replace')!r}"
                    )
                return None
            if start:
                del self._buffer[:start]
            if self._buffer.count(b"\n") < _HEADER_LINES:
                return None
            lines = bytes(self._buffer).split(b"\n", _HEADER_LINES)
            self._buffer = bytearray(lines[_HEADER_LINES])
            # the path as its bytes (surrogate escapes): it is named again to the server
            header = [line.decode("utf-8", "surrogateescape") for line in lines[1:_HEADER_LINES]]
            if header[1] not in ("file", "none"):
                raise ProtocolError(f"unexpected answer from the remote shell: {header[1]!r}")
            self._header = header
        end = self._buffer.find(self.mark + b"\n", self._scanned)
        if end < 0:
            # looked at up to here (a mark may still end in what comes next)
            self._scanned = max(0, len(self._buffer) - len(self.mark))
            if len(self._buffer) > MAX_REMOTE_FILE:
                raise ProtocolError(
                    f"the remote file is over {MAX_REMOTE_FILE // (1024 * 1024)} MiB "
                    "(or the remote shell does not end it): nothing was changed"
                )
            return None
        exists = self._header[1] == "file"
        if not exists and end:
            raise ProtocolError("the remote shell sent bytes of a file it said was not there")
        content = bytes(self._buffer[:end]) if exists else None
        del self._buffer[: end + len(self.mark) + 1]
        self.remote = RemoteFile(self._header[0], content, None)
        if DONE in self._buffer:
            self.done = True
        return self.remote

    @staticmethod
    def reply(new_text: bytes | None, current: bytes | None) -> bytes:
        """What to send once the plan is made: keep; the lines to append when the new
        bytes only extend ``current`` (the file as it was sent, None: no file); else
        the whole new file."""
        if new_text is None:
            return b"keep\n"
        old = current or b""
        added = new_text[len(old) :]
        if new_text.startswith(old) and added.endswith(b"\n") and b"\0" not in added:
            # the script reads each line with read and writes it with printf
            lines = added.count(b"\n")
            return f"append {lines}\n".encode("ascii") + added
        return f"write {len(new_text)}\n".encode("ascii") + new_text


def parse_diagnosis(remote: RemoteFile, output: bytes) -> RemoteFile:
    """``remote`` with the home and folder modes DIAGNOSE_COMMAND printed."""
    lines = output.decode("utf-8", "replace").splitlines()
    infos = [PathInfo.parse(line) for line in lines[:3]]
    while len(infos) < 3:
        infos.append(None)
    mode = infos[2].mode if infos[2] is not None else remote.mode
    return remote._replace(home=infos[0], folder=infos[1], mode=mode)


# ---------------------------------------------------------------- why a key is refused


#: authorized_keys options under which sshd may refuse a key at login (sshd(8))
_LIMITING_OPTIONS = ("from=", "expiry-time=", "cert-authority", "principals=")


def limiting_options(content: bytes | None, blobs: Iterable[bytes]) -> list[str]:
    """The options of the lines holding one of ``blobs`` that can make sshd refuse
    the key (from=, expiry-time=, cert-authority...), as written."""
    from keytool.authkeys import parse_line, split_option_list

    wanted = set(blobs)
    found: list[str] = []
    for raw in _lines(content or b""):
        if line_blob(raw) not in wanted:
            continue
        try:
            parsed = parse_line(raw.decode("utf-8", "surrogateescape"))
        except KeytoolError:
            continue
        if parsed is None or not parsed.options:
            continue
        for option in split_option_list(parsed.options):
            if option.lower().startswith(_LIMITING_OPTIONS) and option not in found:
                found.append(option)
    return found


def refusal_causes(
    remote: RemoteFile | None, uid: int | None = None, blobs: Iterable[bytes] = ()
) -> list[str]:
    """Likely reasons sshd refuses a key that is in the file, most likely first."""
    causes: list[str] = []
    if remote is not None:
        limits = limiting_options(remote.content, blobs)
        if limits:
            causes.append(
                f"its line in {shown(remote.path)} has options that limit where and when it is "
                f"taken: {', '.join(limits)} (install it plainly with -f)"
            )
        for what, info in (("home folder", remote.home), ("key folder", remote.folder)):
            if info is not None and info.mode & 0o022:
                causes.append(
                    f"StrictModes: the {what} is writable by group or others "
                    f"(mode {info.mode:04o}); fix with chmod go-w"
                )
            if info is not None and uid is not None and info.uid not in (0, uid):
                causes.append(f"StrictModes: the {what} belongs to another user (uid {info.uid})")
        if remote.mode is not None and remote.mode & 0o022:
            causes.append(
                f"StrictModes: {shown(remote.path)} is writable by group or others "
                f"(mode {remote.mode:04o})"
            )
    causes.append(
        "the server reads keys from elsewhere (AuthorizedKeysFile in sshd_config; "
        "install there with -t)"
    )
    causes.append("the server does not accept this key type (PubkeyAcceptedAlgorithms)")
    return causes

"""Host key verification adapter: reads the known_hosts files, asks on the terminal,
appends accepted keys. The decisions themselves are keytool/knownhosts.py's.

StrictHostKeyChecking, as ssh_config(5) describes it, with two deliberate choices:

- ``yes``: only keys already recorded are accepted; nothing is added.
- ``ask`` (the default): an unknown host is shown with its SHA256 fingerprint and the
  user answers yes, no or pastes the fingerprint; with no terminal (or BatchMode) the
  host is refused.
- ``accept-new``: an unknown host's key is recorded without asking.
- ``no``: like accept-new; and a *changed* key is let through with the loud warning,
  password and keyboard-interactive authentication then being disabled (the decision
  says so in ``allow_password_auth``), which is what OpenSSH does. Every other value
  refuses a changed key.

A revoked key is refused whatever the setting (OpenSSH lets ``no`` through even then;
a key someone took the trouble to revoke should never be used).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence

from keytool import knownhosts
from keytool.errors import HostKeyError, KeytoolError
from keytool.files import SSH_DIR_MODE
from keytool.keys.base import PublicKey
from keytool.keys.fingerprint import fingerprint, randomart
from keytool.knownhosts import (
    Certified,
    Changed,
    HostKeyStatus,
    Known,
    KnownHost,
    ParseWarning,
    Revoked,
    Unknown,
)
from keytool.record import Record, init

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


STRICT_CHOICES = ("yes", "ask", "accept-new", "no")
DEFAULT_USER_FILES = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_FILES = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
KNOWN_HOSTS_MODE = 0o600
#: characters that make a host name a pattern (or worse) in known_hosts: ssh never
#: records a name holding one
_NEVER_RECORDED = "@?*#[]|'\"\\"

#: shows ``text`` to the user and returns the line typed (without newline), None on EOF
Prompter = Callable[[str], "str | None"]

FAILED = "Host key verification failed."
_TOO_LARGE = f"larger than {knownhosts.MAX_FILE_SIZE >> 20} MiB, not used"
_BAR = "@" * 59


class HostKeyDecision(Record):
    """The key was accepted; what to tell the user and the client."""

    __slots__ = (
        "added_to",
        "allow_password_auth",
        "info",
        "messages",
        "notes",
        "status",
        "warnings",
    )
    status: HostKeyStatus | Certified
    messages: tuple[str, ...]  # for stderr, in order (the CLI prints them)
    info: tuple[str, ...]  # for stderr too, unless LogLevel is below INFO (ssh's logit)
    added_to: Path | None  # the file the key was appended to, if any
    allow_password_auth: bool  # False when a changed key got through (no)
    warnings: tuple[ParseWarning, ...]  # skipped malformed lines
    notes: tuple[str, ...]  # how it was decided, for -v

    def __init__(
        self,
        status: HostKeyStatus | Certified,
        messages: tuple[str, ...] = (),
        added_to: Path | None = None,
        allow_password_auth: bool = True,
        warnings: tuple[ParseWarning, ...] = (),
        notes: tuple[str, ...] = (),
        info: tuple[str, ...] = (),
    ) -> None:
        init(
            self,
            status=status,
            messages=messages,
            info=info,
            added_to=added_to,
            allow_password_auth=allow_password_auth,
            warnings=warnings,
            notes=notes,
        )


#: the lines last found in each file, by path: (identity of the file when read, the
#: names looked up, their entries by name, warnings). The host's lines are looked up
#: before the key exchange (to order the host key algorithms) and to check the key:
#: the file is read once for both while it stays the same; only the host's lines are
#: kept (a fleet's: all its hosts', each lookup taking those that may name its host)
_Scanned = tuple[tuple[int, ...], frozenset[str], knownhosts.HostIndex, list[ParseWarning]]
_SCANNED: dict[str, _Scanned] = {}
#: names the run will look up (a fleet's hosts): each read of a file finds their lines
#: too, so that the hosts after the first are served from that read, not a read each
_EXPECTED: set[str] = set()


def expect_lookups(hosts: Iterable[tuple[str, int]]) -> None:
    """Say which hosts (as ``ConnectOptions.known_hosts_name`` gives them) this run
    will check: a file is then read once for all of them while it stays the same."""
    for host, port in hosts:
        _EXPECTED.update(_lookup_names(host, port))


def file_stamp(status: os.stat_result) -> tuple[int, ...]:
    """What tells a file read before from a changed one (a cache stays valid while it
    is the same)."""
    return (
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
    )


def expand_path(path: str | os.PathLike[str]) -> str:
    return os.path.expanduser(os.fspath(path))


class UnreadableError(KeytoolError):
    """A known_hosts file that is there but is not read; the message says why."""


def _open_known_hosts(path: str) -> tuple[int, os.stat_result] | None:
    """``path`` opened for reading, with its status; None when it is missing, or is
    /dev/null (read as empty). Opened O_NONBLOCK, so that a FIFO with no writer is not
    waited for: it, a device such as /dev/zero or a socket is refused before a byte
    is read from it, and so is a regular file over MAX_FILE_SIZE."""
    flags = os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnreadableError(exc.strerror or str(exc)) from None
    except ValueError as exc:  # a NUL in the path
        raise UnreadableError(str(exc)) from None
    info = os.fstat(fd)  # what was opened, were it swapped meanwhile
    problem = None
    if not stat.S_ISREG(info.st_mode):
        if stat.S_ISCHR(info.st_mode) and os.path.samestat(info, os.stat(os.devnull)):
            os.close(fd)
            return None
        problem = "not a regular file"
    elif info.st_size > knownhosts.MAX_FILE_SIZE:
        problem = _TOO_LARGE
    if problem is not None:
        os.close(fd)
        raise UnreadableError(problem)
    return fd, info


def _read_chunks(fd: int) -> Iterator[bytes]:
    """The rest of the open known_hosts ``fd`` as it is read (closed when done), up to
    MAX_FILE_SIZE."""
    size = 0
    try:
        while chunk := os.read(fd, knownhosts.BLOCK_SIZE):
            size += len(chunk)
            if size > knownhosts.MAX_FILE_SIZE:  # it grew as it was read
                raise UnreadableError(_TOO_LARGE)
            yield chunk
    except OSError as exc:
        raise UnreadableError(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def _read_open(fd: int) -> bytes:
    """The rest of the open known_hosts ``fd`` (closed), up to MAX_FILE_SIZE: read at
    once (a list of pieces joined would hold the file twice)."""
    try:
        whole = os.read(fd, min(os.fstat(fd).st_size, knownhosts.MAX_FILE_SIZE) + 1)
    except OSError as exc:
        os.close(fd)
        raise UnreadableError(exc.strerror or str(exc)) from None
    if len(whole) > knownhosts.MAX_FILE_SIZE:
        os.close(fd)
        raise UnreadableError(_TOO_LARGE)
    rest = b"".join(_read_chunks(fd))  # what it grew by meanwhile, if anything
    if len(whole) + len(rest) > knownhosts.MAX_FILE_SIZE:
        raise UnreadableError(_TOO_LARGE)
    return whole + rest if rest else whole


def read_known_hosts_file(path: str) -> bytes | None:
    """A known_hosts file's bytes; None when it is missing. UnreadableError when it
    is there but cannot be read, is not a regular file or is too large."""
    opened = _open_known_hosts(path)
    return None if opened is None else _read_open(opened[0])


def unread_files(warnings: Sequence[ParseWarning]) -> tuple[str, ...]:
    """The lines that say which known_hosts files were not read, and why."""
    return tuple(f"cannot read {w.source}: {w.message}" for w in warnings if not w.line_number)


def _scan_file(path: str, names: frozenset[str]) -> tuple[list[KnownHost], list[ParseWarning]]:
    """The entries of one file for the lookup ``names``, read block by block (only
    their lines decoded and kept), reused while the file stays the same. A file that
    cannot be read is one ParseWarning at line 0, and no entries."""
    lookup = names
    names = names | _EXPECTED
    cached = _SCANNED.get(path)
    if cached is not None and names <= cached[1]:
        try:
            if file_stamp(os.stat(path)) == cached[0]:
                return cached[2].candidates(lookup), cached[3]
        except OSError:
            pass  # opened below, which says why
    try:
        opened = _open_known_hosts(path)
        if opened is None:
            _SCANNED.pop(path, None)
            return [], []
        fd, info = opened
        blocks = knownhosts.line_blocks(_read_chunks(fd))
        found, problems = knownhosts.scan(blocks, sorted(names), path)
    except UnreadableError as exc:
        _SCANNED.pop(path, None)
        return [], [ParseWarning(path, 0, str(exc))]
    if len(_SCANNED) > 16:
        _SCANNED.clear()
    index = knownhosts.HostIndex(found)
    _SCANNED[path] = (file_stamp(info), names, index, problems)
    return index.candidates(lookup), problems


def load_known_hosts(
    paths: Sequence[str | os.PathLike[str]],
) -> tuple[list[KnownHost], list[ParseWarning]]:
    """Entries of every file in order, every line decoded; a missing file is simply
    empty, as for ssh. (Checking a host needs only its lines: ``host_entries``.)"""
    entries: list[KnownHost] = []
    warnings: list[ParseWarning] = []
    for raw in paths:
        path = expand_path(raw)
        try:
            data = read_known_hosts_file(path)
        except UnreadableError as exc:
            warnings.append(ParseWarning(path, 0, str(exc)))
            continue
        if data is not None:
            found, problems = knownhosts.parse(data, path)
            entries.extend(found)
            warnings.extend(problems)
    return entries, warnings


def _lookup_names(host: str, port: int) -> frozenset[str]:
    """The names a connection to ``host:port`` is looked up by: ``[host]:port``, and
    the bare host (a line without the port serves any port, as in ssh)."""
    return frozenset({knownhosts.lookup_name(host, port), knownhosts.lookup_name(host, 22)})


def host_entries(
    host: str,
    port: int,
    paths: Sequence[str | os.PathLike[str]],
    extra: Sequence[KnownHost] = (),
) -> tuple[list[KnownHost], list[ParseWarning]]:
    """The lines of ``paths`` (in order, then ``extra``) that may decide ``host:port``
    or the bare host: a superset of what ``knownhosts.check`` and its kin look at for
    either, each file scanned once for both."""
    entries, warnings = entries_naming(paths, _lookup_names(host, port))
    return [*entries, *extra], warnings


def entries_naming(
    paths: Sequence[str | os.PathLike[str]], names: Iterable[str]
) -> tuple[list[KnownHost], list[ParseWarning]]:
    """The lines of ``paths`` (in order) that may name one of ``names`` (lookup names:
    ``knownhosts.lookup_name``): each file scanned once, only those lines decoded."""
    wanted = frozenset(names)
    entries: list[KnownHost] = []
    warnings: list[ParseWarning] = []
    for raw in paths:
        found, problems = _scan_file(expand_path(raw), wanted)
        entries.extend(found)
        warnings.extend(problems)
    return entries, warnings


def _entries_with_key(
    paths: Sequence[str | os.PathLike[str]], key: PublicKey, extra: Sequence[KnownHost]
) -> list[KnownHost]:
    """Plain lines holding ``key`` under any name, in the files (that can be read) and
    ``extra``: the "also known as" of the host key question."""
    found: list[KnownHost] = []
    for raw in paths:
        path = expand_path(raw)
        try:
            opened = _open_known_hosts(path)
            if opened is not None:
                blocks = knownhosts.line_blocks(_read_chunks(opened[0]))
                found.extend(knownhosts.scan_key(blocks, key, path))
        except UnreadableError:
            continue  # said already, when the host's lines were looked for
    return [*found, *knownhosts.entries_with_key(extra, key)]


def order_host_key_algorithms(
    algorithms: Sequence[str], known_types: Sequence[str], cert_authority: bool
) -> tuple[str, ...]:
    """``algorithms`` (HostKeyAlgorithms) reordered for what known_hosts holds for the
    host, as ssh's order_hostkeyalgs does, so that a server with several host keys
    shows one we can check rather than one that would look like a changed key:

    - a plain key of the type of the first algorithm is known: the list as it is;
    - otherwise, keeping the list's order, first the certificate algorithms when a
      ``@cert-authority`` line names the host, and the algorithms (plain or
      certificate) of every known key type; then the rest."""
    from keytool.keys.cert import is_cert_type, key_type_of_algorithm, plain_name

    if not algorithms:
        return ()
    known = set(known_types)

    def plain_type(algorithm: str) -> str:
        return plain_name(key_type_of_algorithm(algorithm))

    if plain_type(algorithms[0]) in known:
        return tuple(algorithms)
    first = [
        a for a in algorithms if (cert_authority and is_cert_type(a)) or plain_type(a) in known
    ]
    return (*first, *(a for a in algorithms if a not in first))


def host_key_hints_for(
    host: str,
    port: int,
    user_files: Sequence[str],
    global_files: Sequence[str],
    extra: Sequence[KnownHost] = (),
) -> tuple[list[str], bool]:
    """Key types known_hosts records for ``host:port`` (user files, then global, then
    ``extra``: KnownHostsCommand's), and whether a ``@cert-authority`` line names it:
    one look at the files and one match of the host's lines (hashed names cost an HMAC
    each) for each connection."""
    entries, _ = host_entries(host, port, [*user_files, *global_files], extra)
    return knownhosts.host_key_hints(entries, host, port)


def command_entries(
    argv: Sequence[str],
    invocation: str,
    host_name: str,
    key: PublicKey | None,
    hash_name: str,
    say: Callable[[str], None],
) -> list[KnownHost]:
    """KnownHostsCommand's lines, as ssh runs it: ``argv``'s marks for the tokens known
    only now filled in (%H ``host_name``, %I ``invocation``: ORDER before the key
    exchange, HOSTNAME to check ``key``; %t %f %K the key's type, fingerprint and
    base64, NONE without one); the program by its absolute path, stdin from /dev/null,
    our stderr its. A program that cannot be run is said (ssh's words) and gives no
    lines; one that fails ends it all ("KnownHostsCommand failed"), as in ssh."""
    import base64
    import subprocess

    from keytool.sshconfig_words import RUNTIME_TOKENS

    tag = f"KnownHostsCommand-{invocation}"
    values = {
        "H": host_name,
        "I": invocation,
        "t": key.key_type if key is not None else "NONE",
        "f": fingerprint(key, hash_name) if key is not None else "NONE",
        "K": base64.b64encode(key.to_wire()).decode() if key is not None else "NONE",
    }
    words = list(argv)
    for index in range(1, len(words)):
        for name, mark in RUNTIME_TOKENS.items():
            words[index] = words[index].replace(mark, values[name])
    program = words[0]
    if not program.startswith("/"):
        say(f"{tag} path is not absolute")
        return []
    try:
        os.stat(program)
    except OSError as exc:
        say(f'Could not stat {tag} "{program}": {exc.strerror}')
        return []
    try:
        done = subprocess.run(words, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, check=False)
    except OSError as exc:
        say(f"{tag}: cannot run {program}: {exc.strerror}")
        return []
    found, _problems = knownhosts.parse(done.stdout, tag)
    if done.returncode != 0:
        how = (
            f"killed by signal {-done.returncode}"
            if done.returncode < 0
            else f"status {done.returncode}"
        )
        say(f"{tag} {' '.join(words)} failed, {how}")
        raise HostKeyError("KnownHostsCommand failed")
    return found


def question_prompter() -> Prompter | None:
    """A prompter on the controlling terminal (ssh asks there, not on stdin), or through
    SSH_ASKPASS when ssh would use it (no terminal and a display, or
    SSH_ASKPASS_REQUIRE=prefer/force), or None."""
    from keytool.terminal import ask_terminal, askpass_program, run_askpass

    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
        interactive = True
    except OSError:
        interactive = False
    program = askpass_program(interactive)
    if program is not None:
        return lambda prompt: run_askpass(program, prompt)
    return ask_terminal if interactive else None


def changed_warning(
    key: PublicKey,
    name: str,
    offending: Sequence[KnownHost],
    add_to: str,
    hash_name: str = "sha256",
) -> list[str]:
    """OpenSSH's block for a changed host key, naming each offending FILE:LINE."""
    lines = [
        _BAR,
        "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
        _BAR,
        "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
        "Someone could be eavesdropping on you right now (man-in-the-middle attack)!",
        "It is also possible that a host key has just been changed.",
        f"The fingerprint for the {key.label} key sent by the remote host is",
        f"{fingerprint(key, hash_name)}.",
        "Please contact your system administrator.",
        f"Add correct host key in {add_to} to get rid of this message.",
    ]
    for entry in offending:
        lines.append(f"Offending {entry.key.label} key in {entry.where}")
    sources = dict.fromkeys(entry.source for entry in offending)
    lines.append("  remove with:")
    for source in sources:
        lines.append(f'  ssh-keygen -f "{source}" -R "{name}"')
    return lines


def revoked_warning(key: PublicKey, name: str) -> list[str]:
    return [
        _BAR,
        "@       WARNING: REVOKED HOST KEY DETECTED!               @",
        _BAR,
        f"The {key.label} host key for {name} is marked as revoked.",
        "This could mean that a stolen key is being used to",
        "impersonate this host.",
    ]


def _authenticity_question(
    key: PublicKey,
    name: str,
    address: str | None,
    also_known: Sequence[KnownHost],
    visual: bool = False,
    hash_name: str = "sha256",
) -> str:
    shown = f"{name} ({address})" if address else name
    lines = [
        f"The authenticity of host '{shown}' can't be established.",
        f"{key.label} key fingerprint is {fingerprint(key, hash_name)}.",
    ]
    if visual:
        lines.append(randomart(key, hash_name))
    if also_known:
        lines.append("This host key is known by the following other names/addresses:")
        lines.extend(f"    {text}" for text in knownhosts.describe_names(also_known))
    else:
        lines.append("This key is not known by any other names.")
    lines.append("Are you sure you want to continue connecting (yes/no/[fingerprint])? ")
    return "\n".join(lines)


def _user_accepts(
    prompt: Prompter, question: str, key: PublicKey, hash_name: str = "sha256"
) -> bool:
    wanted = fingerprint(key, hash_name)
    text = question
    while True:
        answer = prompt(text)
        if answer is None:
            return False
        answer = answer.strip()
        if answer.lower() == "yes" or answer == wanted:
            return True
        if answer.lower() == "no" or not answer:  # as ssh: just Return is no
            return False
        text = "Please type 'yes', 'no' or the fingerprint: "


def recordable_name(host_name: str) -> bool:
    """Whether a host key may be recorded for a connection to ``host_name`` (the
    HostName, not a HostKeyAlias, as ssh checks it)."""
    return not any(c in _NEVER_RECORDED for c in host_name)


def add_known_host(
    path: str | os.PathLike[str], host: str, port: int, key: PublicKey, hashed: bool
) -> Path:
    """Append the entry for ``host:port`` to ``path``; returns the file written.

    As ssh adds it: appended in place in one write (O_APPEND), so the file keeps its
    owner, mode and hard links, parallel clients each add their line and none is lost,
    and nothing already there is ever rewritten. A last line without its newline gets
    one first. A new file is created 0600. A missing folder is created only when it is
    the user's own ~/.ssh (0700), as ssh creates it; any other is left missing, and
    the file cannot be written. /dev/null takes the line as it takes everything; any
    other file that is not a regular file is refused. A line that cannot be written
    whole (a full disk) is taken back: the file is left as it was, where ssh leaves
    half a line that the next entry would be glued onto.
    """
    from pathlib import Path  # here: checking a known host needs no pathlib

    expanded = expand_path(path)
    _create_user_ssh_dir(os.fspath(path), expanded)
    target = Path(os.path.realpath(expanded))
    flags = os.O_APPEND | os.O_CREAT | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        try:
            fd = os.open(target, flags | os.O_RDWR, KNOWN_HOSTS_MODE)
            readable = True
        except PermissionError:  # a file we may add to but not read, as ssh adds to it
            fd = os.open(target, flags | os.O_WRONLY, KNOWN_HOSTS_MODE)
            readable = False
    except OSError as exc:
        raise HostKeyError(f"cannot write {target}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            if stat.S_ISCHR(info.st_mode) and os.path.samestat(info, os.stat(os.devnull)):
                return target
            raise HostKeyError(f"cannot write {target}: not a regular file")
        entry = knownhosts.format_entry(host, port, key, hashed=hashed)
        line = entry.encode("utf-8", "surrogateescape") + b"\n"  # a name's bytes as given
        if readable and info.st_size and os.pread(fd, 1, info.st_size - 1) != b"\n":
            line = b"\n" + line  # or the entry would be glued onto the last line
        _append(fd, line)
    except OSError as exc:
        raise HostKeyError(f"cannot write {target}: {exc.strerror}") from None
    finally:
        os.close(fd)
    forget_parsed(str(target))
    return target


def _append(fd: int, line: bytes) -> None:
    """Write ``line`` at the end of ``fd`` (opened O_APPEND); when only part of it can
    be written, that part is cut off again and the error raised. It is cut only while
    it is whole at the end of the file: a line another client added meanwhile stays."""
    start = end = -1
    ours = True
    view = memoryview(line)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
            offset = os.lseek(fd, 0, os.SEEK_CUR)
            if start < 0:
                start = offset - written
            elif offset - written != end:
                ours = False  # another line came between our parts
            end = offset
    except OSError:
        with contextlib.suppress(OSError):  # the write's error is the one to tell
            if ours and start >= 0 and os.fstat(fd).st_size == end:
                os.ftruncate(fd, start)
        raise


def _create_user_ssh_dir(raw: str, path: str) -> None:
    """Create the user's ~/.ssh (0700) when ``path`` (``raw`` expanded) is a file right
    in it and it is missing, as ssh's hostfile_create_user_ssh_dir does: ~/.ssh as the
    password database names the home folder, compared as written (and, for a ``raw``
    given as ``~/...``, the ~/.ssh it was expanded to). No other folder is made."""
    from keytool.sshconfig_words import account_home, tilde_expand

    folder = os.path.dirname(path)
    ssh_dirs = {tilde_expand("~/.ssh", account_home(), "~/.ssh")}
    if raw.startswith("~/"):
        ssh_dirs.add(expand_path("~/.ssh"))
    if folder not in ssh_dirs or os.path.lexists(folder):
        return
    with contextlib.suppress(OSError):  # the file cannot be written then: said so
        os.mkdir(folder, SSH_DIR_MODE)


def forget_parsed(path: str) -> None:
    """Drop what was found in ``path``: it was just rewritten."""
    _SCANNED.pop(path, None)


def verify_host_key(
    host: str,
    port: int,
    key: PublicKey,
    *,
    user_files: Sequence[str | os.PathLike[str]] = DEFAULT_USER_FILES,
    global_files: Sequence[str | os.PathLike[str]] = DEFAULT_GLOBAL_FILES,
    strict: str = "ask",
    hash_known_hosts: bool = False,
    prompt: Prompter | None = None,
    address: str | None = None,
    visual: bool = False,
    hash_name: str = "sha256",
    extra: Sequence[KnownHost] = (),
    recordable: bool = True,
) -> HostKeyDecision:
    """Check ``key`` served by ``host:port``; return how it was accepted or raise
    HostKeyError whose message is the full text to show (OpenSSH's warning block).

    ``host`` is the name connected to (HostName), ``address`` the IP it resolved to
    (only shown in the question). ``prompt`` is None when there is no terminal or
    BatchMode is set: then ``ask`` refuses an unknown host. New keys go to the first of
    ``user_files``. ``visual`` (VisualHostKey) shows the key's randomart, as ssh: under
    the fingerprint in the question, and for a known key. ``hash_name`` is the hash
    fingerprints are shown in (FingerprintHash).
    """
    if strict not in STRICT_CHOICES:
        raise KeytoolError(f"StrictHostKeyChecking must be one of {', '.join(STRICT_CHOICES)}")
    files = [*user_files, *global_files]
    entries, warnings = host_entries(host, port, files, extra)
    status = knownhosts.check(entries, host, port, key)
    name = knownhosts.lookup_name(host, port)
    user_file = expand_path(user_files[0]) if user_files else "~/.ssh/known_hosts"
    found = tuple(warnings)
    # files that could not be read: said before a refusal (and the question), as ssh
    # says it; a -v line otherwise, where ssh goes on with the files it could read
    unread = unread_files(warnings)

    if isinstance(status, Known):
        if visual:
            art = f"Host key fingerprint is {fingerprint(key, hash_name)}\n"
            art += randomart(key, hash_name)
            return HostKeyDecision(status, info=(art,), warnings=found, notes=unread)
        return HostKeyDecision(status, warnings=found, notes=unread)

    if isinstance(status, Revoked):
        lines = revoked_warning(key, name)
        lines.append(f"{key.label} host key for {name} was revoked ({status.entry.where}).")
        lines.append(FAILED)
        raise HostKeyError("\n".join(lines))

    if isinstance(status, Changed):
        lines = changed_warning(key, name, status.entries, user_file, hash_name)
        if strict != "no":
            lines.append(f"Host key for {name} has changed and you have requested strict checking.")
            lines.append(FAILED)
            raise HostKeyError("\n".join(lines))
        lines.append("Password authentication is disabled to avoid man-in-the-middle attacks.")
        lines.append(
            "Keyboard-interactive authentication is disabled to avoid man-in-the-middle attacks."
        )
        return HostKeyDecision(
            status,
            ("\n".join(lines),),
            allow_password_auth=False,
            warnings=found,
            notes=unread,
        )

    assert isinstance(status, Unknown)
    if port != knownhosts.DEFAULT_PORT:
        # as ssh: a key known for the bare host name (a line without the port) is
        # taken for any port; a HostKeyAlias comes here with port 22, never retried
        bare = knownhosts.check(entries, host, 22, key)
        if isinstance(bare, Known):
            return HostKeyDecision(bare, warnings=found, notes=unread)
    if not recordable:
        # as ssh: such a host name would be a pattern in known_hosts, trusting the key
        # for other hosts; it is never recorded, so the new host is refused
        raise HostKeyError(
            f"No {key.label} host key is known for {name}, and a host name with any of "
            f"{_NEVER_RECORDED} is never added to known_hosts.\n{FAILED}"
        )
    if strict == "yes":
        raise HostKeyError(
            "\n".join(
                [
                    *unread,
                    f"No {key.label} host key is known for {name} and you have requested "
                    "strict checking.",
                    FAILED,
                ]
            )
        )
    if strict == "ask":
        if prompt is None:
            # no hint to accept-new when a file was not read: it may know another key
            hint = (
                "; add it to known_hosts first or use -o StrictHostKeyChecking=accept-new"
                if not unread
                else ""
            )
            raise HostKeyError(
                "\n".join(
                    [
                        *unread,
                        f"No {key.label} host key is known for {name} and there is no "
                        f"terminal to ask whether to trust it{hint}.",
                        FAILED,
                    ]
                )
            )
        address_name = address
        if address and not address.startswith("<"):  # "<no hostip for proxy command>"
            address_name = knownhosts.lookup_name(address, port)
        also_known = _entries_with_key(files, key, extra)
        question = _authenticity_question(key, name, address_name, also_known, visual, hash_name)
        question = "\n".join([*unread, question])
        if not _user_accepts(prompt, question, key, hash_name):
            raise HostKeyError(FAILED)
    if not user_files:
        return HostKeyDecision(status, warnings=found, notes=unread)
    try:
        written = add_known_host(user_files[0], host, port, key, hash_known_hosts)
    except KeytoolError:
        # ssh goes on when it cannot record the key: it has been accepted all the same
        note = f"Failed to add the host to the list of known hosts ({user_file})."
        return HostKeyDecision(status, info=(note,), warnings=found, notes=unread)
    note = f"Warning: Permanently added '{name}' ({key.label}) to the list of known hosts."
    return HostKeyDecision(status, info=(note,), added_to=written, warnings=found, notes=unread)

"""keytool check: the SSH folder against the seed article's best practices (folder 700,
private keys and authorized_keys 600, passphrases, no weak keys), as sshd's StrictModes
and ssh see it; --fix sets the modes (never a file's contents). Nothing the config
names is run. Exit status: 0 nothing sshd or ssh refuses (warnings aside; a missing
~/.ssh is nothing to check), 1 a FAIL, 255 check could not run."""

from __future__ import annotations

import errno
import os
import stat
import sys

from keytool.errors import FormatError, KeytoolError, PassphraseError, UnsupportedKeyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import BinaryIO

    from keytool.audit import FileFacts, Finding, KeyLine
    from keytool.audit_paths import Account


#: exit statuses: nothing sshd or ssh refuses (warnings allowed), a FAIL found, and
#: check could not run (no such folder, not a folder, a mode --fix could not set)
OK, FOUND_FAILURE, COULD_NOT_RUN = 0, 1, 255

#: ssh loads no key file bigger than this (OpenSSH's authfile.c): a bigger file in the
#: folder is not read, and the report says so
KEY_FILE_LIMIT = 1 << 20
#: authorized_keys is read a line at a time, of any size, as sshd reads it; a line this
#: long (no key line comes near it) is not held, and the report says so
LINE_LIMIT = 1 << 20


def _cannot(message: str) -> KeytoolError:
    error = KeytoolError(message)
    error.exit_code = COULD_NOT_RUN
    return error


def run(directory: str | None, fix: bool = False) -> int:
    """Exit status 0: nothing sshd or ssh would refuse (there may be warnings, and a
    missing ~/.ssh is nothing to check); 1: a FAIL; 255: check could not run."""
    from keytool import audit
    from keytool.audit_paths import account_of
    from keytool.keyfiles import expand

    folder = expand(directory or "~/.ssh")
    try:
        info = os.stat(folder)  # a link to the folder is followed, as ssh follows it
    except FileNotFoundError:
        if directory is None:
            print(f"ok   {folder}: not there: no keys, no config, nothing to check")
            return OK
        raise _cannot(f"cannot check {folder}: no such folder") from None
    except OSError as exc:
        raise _cannot(f"cannot check {folder}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise _cannot(f"{folder} is not a folder")
    account = account_of(folder)
    owner = account.uid
    files: list[FileFacts] = []
    home = folder.parent if folder.name == ".ssh" else None
    if home is not None:
        home_info = os.stat(home)
        files.append(audit.FileFacts(str(home), "home", stat.S_IMODE(home_info.st_mode),
                                     home_info.st_uid, gid=home_info.st_gid))  # fmt: skip
    files.append(audit.FileFacts(str(folder), "ssh_dir", stat.S_IMODE(info.st_mode),
                                 info.st_uid, gid=info.st_gid))  # fmt: skip
    entries: list[FileFacts] = []
    unread: list[Finding] = []  # files the rules judge that could not be looked at
    try:
        listed = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise _cannot(f"cannot check {folder}: {exc.strerror}") from None
    for entry in listed:
        facts = _facts(entry)
        if isinstance(facts, audit.Finding):
            unread.append(facts)
        elif facts is not None:
            entries.append(facts)
    files += _sshd_path(folder, home, account.home, entries)
    files += entries
    config_findings: list[Finding] = []
    for facts in entries:
        if facts.kind == "config":
            included, said = _config_findings(facts.path, account)
            files += included
            config_findings += said
    own = frozenset(g for g in {f.gid for f in files} if _group_of_user_alone(g, owner))
    findings = audit.review(files, owner, own) + config_findings + unread
    for facts in entries:
        if facts.kind == "authorized_keys":
            findings += _review_authorized_keys(facts.path)
    if fix:
        findings = _fix(findings)
    named = {f.path for f in findings}
    for facts in files:
        if facts.path not in named:  # nothing wrong: say what was looked at
            print(f"ok   {facts.path}: {_describe(facts)}")
    for finding in findings:
        label = "ok" if finding.level == "ok" else finding.level.upper()  # as the lines above
        print(f"{label:4} {finding.path}: {finding.message}")
    problems = [f for f in findings if f.level != "ok"]
    if not fix and any(f.fix_mode is not None for f in problems):
        print("(keytool check --fix sets the modes above; it changes nothing else)")
    sys.stdout.flush()
    return FOUND_FAILURE if audit.is_failure(findings) else OK


def _sshd_path(
    folder: Path,
    home: Path | None,
    account_home: str,
    entries: list[FileFacts],
) -> list[FileFacts]:
    """The folders StrictModes checks on the real path to authorized_keys (links
    resolved) that are not the home and .ssh already judged: a link's target and the
    folders above it."""
    from pathlib import Path

    from keytool.audit import FileFacts
    from keytool.audit_paths import sshd_folders

    targets = [Path(f.path) for f in entries if f.kind == "authorized_keys"]
    if not targets and home is not None:
        targets = [folder]  # where ~/.ssh/authorized_keys would be
    known = {os.path.realpath(folder)} | ({os.path.realpath(home)} if home else set())
    out: list[FileFacts] = []
    for target in targets:
        for real in sshd_folders(target, account_home):
            if real in known:
                continue
            known.add(real)
            try:
                info = os.stat(real)
            except OSError:
                continue
            out.append(FileFacts(real, "parent", stat.S_IMODE(info.st_mode), info.st_uid,
                                 gid=info.st_gid))  # fmt: skip
    return out


def _group_of_user_alone(gid: int, uid: int) -> bool:
    """The group has the user as its one member (a user-private group), as Debian's
    sshd asks of a group-writable file: every account whose primary group it is is
    that user, and it lists no one else."""
    import grp
    import pwd

    try:
        group = grp.getgrgid(gid)
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return False
    primary = [p.pw_uid for p in pwd.getpwall() if p.pw_gid == gid]
    if any(u != uid for u in primary) or group.gr_mem not in ([], [name]):
        return False
    return bool(primary or group.gr_mem)


def _describe(facts: FileFacts) -> str:
    text = f"mode {facts.mode:04o}"
    if facts.key_type is not None:
        text += f", {facts.key_type}"
        if facts.key_bits is not None:  # a type keytool does not read: its size unknown
            text += f" {facts.key_bits} bits"
    if facts.encrypted:
        text += ", passphrase"
    return text


def _kind_of(name: str) -> str | None:
    if name in ("authorized_keys", "authorized_keys2"):
        return "authorized_keys"
    if name == "config":
        return "config"
    return "known_hosts" if name.startswith("known_hosts") else None


def _facts(entry: os.DirEntry[str]) -> FileFacts | Finding | None:
    """What the file is, for the rules; a Finding when it is one they judge (by its
    name, or a key's) but it cannot be looked at, saying why; None for what they do
    not judge (a socket, a folder, a file that is no key)."""
    from keytool.audit import FileFacts, unreviewed

    name, path = entry.name, entry.path
    kind = _kind_of(name)
    key_named = name.startswith("id_") or name.endswith(".pub")
    named = kind is not None or key_named
    try:  # a link is judged by the file it names, as ssh and sshd read that file
        info = entry.stat()
    except FileNotFoundError:
        if not named:
            return None
        try:
            target = os.readlink(path)
        except OSError:
            return unreviewed(path, "gone while being looked at")
        return unreviewed(path, f"a link to {target}, which is not there")
    except OSError as exc:
        return unreviewed(path, f"cannot look at it ({exc.strerror})")
    if not stat.S_ISREG(info.st_mode):
        return unreviewed(path, f"{_what(info.st_mode)}, not a file") if named else None
    mode, uid = stat.S_IMODE(info.st_mode), info.st_uid
    if kind == "known_hosts":
        return FileFacts(path, kind, mode, uid)
    if kind is not None:
        return FileFacts(path, kind, mode, uid, gid=info.st_gid)
    if info.st_size > KEY_FILE_LIMIT:
        return _too_big(path, info.st_size, key_named)
    return _key_facts(path, name, mode, uid)


def _too_big(path: str, size: int, key_named: bool) -> Finding | None:
    """A file too big to be a key: said when its name or its start is a key's; None
    for any other file (not a key, as a small file that is none)."""
    from keytool.audit import unreviewed
    from keytool.keyfiles import is_private_text
    from keytool.keys.pubfile import looks_like_key_type

    why = f"{size} bytes, over {KEY_FILE_LIMIT >> 20} MiB: no key file is that big"
    if not key_named:
        try:
            with _open_regular(path) as stream:
                head = stream.read(4096)
        except OSError as exc:
            return unreviewed(path, f"cannot read it ({exc.strerror})")
        first = head.split(None, 1)[:1]
        if not is_private_text(head) and not (
            first and looks_like_key_type(first[0].decode("ascii", "replace"))
        ):
            return None
    return unreviewed(path, f"{why} (ssh loads none)")


def _what(mode: int) -> str:
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return what
    return "a device"


def _open_regular(path: str) -> BinaryIO:
    """``path`` opened to read, when it is a regular file (a FIFO put in its place is
    not waited on); else OSError, its strerror saying why."""
    fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)  # what was opened, were it swapped meanwhile
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, f"{_what(info.st_mode)}, not a file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _key_facts(path: str, name: str, mode: int, uid: int) -> FileFacts | Finding | None:
    from keytool.audit import FileFacts, unreviewed
    from keytool.keyfiles import is_private_text, public_of_file
    from keytool.keys import is_encrypted_private
    from keytool.keys.pubfile import parse_public_text

    try:
        with _open_regular(path) as stream:
            text = stream.read(KEY_FILE_LIMIT + 1)
    except OSError as exc:
        return unreviewed(path, f"cannot read it ({exc.strerror})")
    if len(text) > KEY_FILE_LIMIT:  # it grew since it was looked at
        return unreviewed(path, f"over {KEY_FILE_LIMIT >> 20} MiB: no key file is that big")
    try:
        if name.endswith(".pub"):
            try:
                key, _ = parse_public_text(text)
            except UnsupportedKeyError:  # a type keytool does not read: named all the same
                first = text.split(None, 1)[:1]
                kind = first[0].decode("ascii", "replace") if first else None
                return FileFacts(path, "public", mode, uid, kind, None)
            return FileFacts(path, "public", mode, uid, key.key_type, key.bits)
        if is_private_text(text):
            try:
                encrypted = is_encrypted_private(text)
                key = public_of_file(path).key
                return FileFacts(path, "private", mode, uid, key.key_type, key.bits, encrypted)
            except (UnsupportedKeyError, PassphraseError) as exc:
                # a type keytool does not read (DSA), or a PEM key that tells nothing
                # without its passphrase: still a private key
                kind, encrypted = _named_type(text)
                if isinstance(exc, UnsupportedKeyError) and not _known_type(kind):
                    return _damaged(path, str(exc))
                return FileFacts(path, "private", mode, uid, kind, None, encrypted)
            except FormatError as exc:  # cut short, bytes changed: no key ssh can load
                return _damaged(path, str(exc))
    except KeytoolError:
        return None
    return None


def _damaged(path: str, reason: str) -> Finding:
    """A private key file that does not parse: ssh cannot load it (a FAIL, as what ssh
    refuses is), whatever its mode."""
    from keytool.audit import Finding

    reason = reason.removeprefix(f"{path}: ")
    return Finding(path, "fail", f"a damaged private key: ssh cannot load it ({reason})")


def _known_type(kind: str | None) -> bool:
    """``kind`` is a key type OpenSSH loads and keytool does not (DSA, security keys, a
    certificate of one), not a type name no one knows (a damaged file). An unencrypted
    PEM key's type keytool does not tell (None) is not judged here."""
    from keytool.keys.blob import UNSUPPORTED_LABELS

    if kind is None:
        return True
    return kind.removesuffix("-cert-v01@openssh.com") in {
        *UNSUPPORTED_LABELS,
        "ssh-xmss@openssh.com",
    }


def _named_type(text: bytes) -> tuple[str | None, bool]:
    """The type and encryption of a private key file keytool does not load, as far as
    its outer layer tells them."""
    from keytool.keys import openssh

    if openssh.is_openssh_private(text):
        try:
            return openssh.key_type_named(text)
        except KeytoolError:
            return None, False
    kind = "ssh-dss" if b"-----BEGIN DSA PRIVATE KEY-----" in text else None
    return kind, b"ENCRYPTED" in text.split(b"\n\n", 1)[0]


def _review_authorized_keys(path: str) -> list[Finding]:
    """What is wrong with authorized_keys' lines, the file read a line at a time
    whatever its size, as sshd reads it; what could not be read is said."""
    from keytool.audit import review_key_line, unreviewed

    out: list[Finding] = []
    number = 0
    try:
        with _open_regular(path) as stream:
            for number, line in _lines(stream):
                if line is None:
                    why = f"line {number}: {LINE_LIMIT >> 20} MiB or longer, as no key line is"
                    out.append(unreviewed(path, why))
                    continue
                key_line = _key_line(number, line)
                found = review_key_line(path, key_line) if key_line is not None else None
                if found is not None:
                    out.append(found)
    except OSError as exc:
        where = f" after line {number}" if number else ""
        out.append(unreviewed(path, f"cannot read it{where} ({exc.strerror})"))
    return out


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """The numbered lines of ``stream`` as sshd reads them: split at newlines only,
    each a C string (it ends at a NUL); None for a line of LINE_LIMIT bytes or more
    before any NUL, which is let go unheld."""
    number = 0
    while chunk := stream.readline(LINE_LIMIT):
        number += 1
        whole = chunk.endswith(b"\n") or len(chunk) < LINE_LIMIT
        line, nul, _ = chunk.removesuffix(b"\n").partition(b"\0")
        while not chunk.endswith(b"\n") and chunk:  # the rest of a long line
            chunk = stream.readline(LINE_LIMIT)
        yield number, line if whole or nul else None


def _key_line(number: int, raw: bytes) -> KeyLine | None:
    """One authorized_keys line with a key (or that sshd cannot read, or reads but lets
    no one in with: its options), as sshd reads it; None for a blank line, a comment or
    a key type keytool does not read but sshd may."""
    import time

    from keytool.audit import KeyLine
    from keytool.audit_keyopts import refusal
    from keytool.authkeys import parse_line

    line = raw.decode("utf-8", "replace")
    try:
        entry = parse_line(line)
    except UnsupportedKeyError:
        # a type keytool does not read: sshd may (security keys); DSA it does not
        return KeyLine(number, "ssh-dss", None) if "ssh-dss" in line.split() else None
    except KeytoolError as exc:
        return KeyLine(number, None, None, str(exc))
    if entry is None:
        return None
    # sshd parses the options up to the space before the key
    refused = refusal(entry.options + " ", time.time()) if entry.options else None
    return KeyLine(number, entry.key.key_type, entry.key.bits, refused=refused)


#: a host name only ``Host *`` (and negations) can match: what every host gets
_ANY_HOST = "keytool-check.invalid"


def _config_findings(path: str, account: Account) -> tuple[list[FileFacts], list[Finding]]:
    """The files the config Includes (to be judged as ssh judges them) and what the
    config gives every host; a file ssh would refuse is a failure. Nothing in it is
    run: a config with ``Match exec`` in it, or in a file it Includes, is not resolved."""
    from keytool import audit, sshconfig_resolved
    from keytool.audit_config import read_tree, resolve_every_host
    from keytool.transport import config as tconfig

    tree = read_tree(path, account.home)
    included = [audit.FileFacts(name, "included", mode, uid, gid=gid)
                for name, mode, uid, gid in tree.included]  # fmt: skip
    if path not in tree.texts:  # its mode was judged, its settings could not be
        why = tree.unread.get(path) or f"cannot read it ({_reason(tree.error, path)})"
        return included, [audit.unreviewed(path, why)]
    said = [audit.unreviewed(name, why) for name, why in tree.unread.items()]
    if tree.error is not None:
        return included, [*said, audit.Finding(path, "fail", f"ssh would refuse it: {tree.error}")]
    if tree.has_exec:
        note = "has Match exec: not resolved (its commands would run)"
        return included, [*said, audit.Finding(path, "ok", note)]
    if said:  # ssh reads those files: what it gives every host is not known without them
        note = "what it gives every host: not resolved, as a file it Includes was not read"
        return included, [*said, audit.Finding(path, "warn", note)]
    try:
        resolved = resolve_every_host(tree, path, _ANY_HOST, account.name, account.home,
                                      account.uid)  # fmt: skip
    except KeytoolError as exc:
        return included, [audit.Finding(path, "fail", f"ssh would refuse it: {exc}")]
    sha1 = {
        name
        for spec, default in (
            (resolved.host_key_algorithms, tconfig.DEFAULT_HOST_KEY),
            (resolved.pubkey_accepted_algorithms, tconfig.DEFAULT_PUBKEY),
        )
        for name in sshconfig_resolved.apply_algorithm_list(spec, default)
        if name in ("ssh-rsa", "ssh-dss")
    }
    every = audit.EveryHost(
        resolved.strict_host_key_checking,
        resolved.user_known_hosts_files,
        resolved.forward_agent,
        tuple(sorted(sha1)),
        "no"
        if not resolved.forward_x11
        else "trusted"
        if resolved.forward_x11_trusted
        else "untrusted",
    )
    return included, audit.review_config(path, every)


def _reason(error: str | None, path: str) -> str:
    """An error message about ``path`` without the name it starts with."""
    text = error or "unknown error"
    return text.removeprefix(f"{path}: ")


def _fix(findings: list[Finding]) -> list[Finding]:
    """Set the modes the findings name (on the file itself, never through a link);
    each fixed finding becomes an "ok" line saying what changed."""
    from keytool.audit import Finding

    out: list[Finding] = []
    for finding in findings:
        if finding.fix_mode is None:
            out.append(finding)
            continue
        try:
            before = os.lstat(finding.path)
            if stat.S_ISLNK(before.st_mode):
                note = "(a symbolic link: --fix leaves it; change the file it names)"
                out.append(Finding(finding.path, finding.level, f"{finding.message} {note}"))
                continue
            os.chmod(finding.path, finding.fix_mode)
        except OSError as exc:
            raise _cannot(f"cannot chmod {finding.path}: {exc.strerror}") from None
        old = stat.S_IMODE(before.st_mode)
        out.append(Finding(finding.path, "ok", f"fixed: mode {old:04o} -> {finding.fix_mode:04o}"))
    return out

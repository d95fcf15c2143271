"""keytool check: the SSH folder against the seed article's best practices (folder 700,
private keys and authorized_keys 600, passphrases, no weak keys), as sshd's StrictModes
and ssh see it; --fix sets the modes (never a file's contents). Nothing the config
names is run. Exit status: 0 nothing sshd or ssh refuses (warnings aside; a missing
~/.ssh is nothing to check), 1 a FAIL, 255 check could not run."""

from __future__ import annotations

import os
import stat
import sys

from keytool.errors import KeytoolError, UnsupportedKeyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from keytool.audit import FileFacts, Finding, KeyLine
    from keytool.audit_paths import Account


#: exit statuses: nothing sshd or ssh refuses (warnings allowed), a FAIL found, and
#: check could not run (no such folder, not a folder, a mode --fix could not set)
OK, FOUND_FAILURE, COULD_NOT_RUN = 0, 1, 255


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
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        facts = _facts(entry)
        if facts is not None:
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
    findings = audit.review(files, owner, own) + config_findings
    for facts in entries:
        if facts.kind == "authorized_keys":
            findings += audit.review_authorized_keys(facts.path, _key_lines(facts.path))
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
        text += f", {facts.key_type} {facts.key_bits} bits"
    if facts.encrypted:
        text += ", passphrase"
    return text


def _facts(entry: os.DirEntry[str]) -> FileFacts | None:
    """What the file is, for the rules; None for what they do not judge."""
    from keytool.audit import FileFacts

    try:  # a link is judged by the file it names, as ssh and sshd read that file
        if not entry.is_file():
            return None
        info = entry.stat()
    except OSError:
        return None
    mode, uid, name = stat.S_IMODE(info.st_mode), info.st_uid, entry.name
    if name in ("authorized_keys", "authorized_keys2"):
        return FileFacts(entry.path, "authorized_keys", mode, uid, gid=info.st_gid)
    if name == "config":
        return FileFacts(entry.path, "config", mode, uid, gid=info.st_gid)
    if name.startswith("known_hosts"):
        return FileFacts(entry.path, "known_hosts", mode, uid)
    return _key_facts(entry.path, name, mode, uid)


def _key_facts(path: str, name: str, mode: int, uid: int) -> FileFacts | None:
    from keytool.audit import FileFacts
    from keytool.files import read_file
    from keytool.keyfiles import is_private_text, public_of_file
    from keytool.keys import is_encrypted_private
    from keytool.keys.pubfile import parse_public_text

    try:
        text = read_file(path, "file", limit=1 << 20)
    except KeytoolError:
        return None
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
            except KeytoolError:  # a type keytool does not read (DSA): still a private key
                kind, encrypted = _named_type(text)
                return FileFacts(path, "private", mode, uid, kind, None, encrypted)
    except KeytoolError:
        return None
    return None


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


def _key_lines(path: str) -> list[KeyLine]:
    """authorized_keys' lines with a key (or that sshd cannot read, or reads but lets
    no one in with: its options), as sshd reads them."""
    import time

    from keytool.audit import KeyLine
    from keytool.audit_keyopts import refusal
    from keytool.authkeys import parse_line
    from keytool.files import read_file

    try:
        text = read_file(path, "authorized_keys", limit=1 << 22).decode("utf-8", "replace")
    except KeytoolError:
        return []
    now = time.time()
    lines: list[KeyLine] = []
    for number, line in enumerate(text.split("\n"), start=1):  # as sshd: at newlines only
        line = line.partition("\0")[0]  # sshd reads each line as a C string
        try:
            entry = parse_line(line)
        except UnsupportedKeyError:
            # a type keytool does not read: sshd may (security keys); DSA it does not
            if "ssh-dss" in line.split():
                lines.append(KeyLine(number, "ssh-dss", None))
            continue
        except KeytoolError as exc:
            lines.append(KeyLine(number, None, None, str(exc)))
            continue
        if entry is not None:
            # sshd parses the options up to the space before the key
            refused = refusal(entry.options + " ", now) if entry.options else None
            lines.append(KeyLine(number, entry.key.key_type, entry.key.bits, refused=refused))
    return lines


#: a host name only ``Host *`` (and negations) can match: what every host gets
_ANY_HOST = "keytool-check.invalid"


def _config_findings(path: str, account: Account) -> tuple[list[FileFacts], list[Finding]]:
    """The files the config Includes (to be judged as ssh judges them) and what the
    config gives every host; a file ssh would refuse is a failure. Nothing in it is
    run: a config with ``Match exec`` in it, or in a file it Includes, is not resolved."""
    from keytool import audit, sshconfig
    from keytool.audit_config import read_tree, resolve_every_host
    from keytool.transport import config as tconfig

    tree = read_tree(path, account.home)
    included = [audit.FileFacts(name, "included", mode, uid, gid=gid)
                for name, mode, uid, gid in tree.included]  # fmt: skip
    if tree.error is not None:
        if path not in tree.texts:
            return included, []  # not readable: the file itself was judged
        return included, [audit.Finding(path, "fail", f"ssh would refuse it: {tree.error}")]
    if tree.has_exec:
        note = "has Match exec: not resolved (its commands would run)"
        return included, [audit.Finding(path, "ok", note)]
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
        for name in sshconfig.apply_algorithm_list(spec, default)
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

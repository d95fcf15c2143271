"""The seed article's best practices, checked: an SSH folder as sshd's StrictModes and
ssh want it (700 for ~/.ssh, 600 for private keys, authorized_keys and config),
keys with passphrases, no weak keys; authorized_keys lines sshd cannot read or no
longer accepts; and the settings ~/.ssh/config gives every host that undo ssh's
protections. Pure: rules over a snapshot of the files, which keytool/cli/check.py
takes and, with --fix, mends (modes only, never contents).
"""

from __future__ import annotations

import stat

from keytool.record import Record, init

#: what each kind of file should have; a mode with any of ``forbidden`` bits is wrong
SSH_DIR_MODE = 0o700
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
#: bits sshd's StrictModes refuses on the home folder and ~/.ssh (group or other write)
_WRITABLE = 0o022
#: RSA keys below this are too weak today (NIST SP 800-131A); OpenSSH 9.1 and later
#: refuse those below 1024 (RequiredRSASize), and keytool gen warns below this
MIN_RSA_BITS = 2048


class FileFacts(Record):
    """One file (or folder) as found: its kind, mode, owner, and for keys what kind of
    key it holds."""

    __slots__ = ("encrypted", "gid", "key_bits", "key_type", "kind", "mode", "path", "uid")
    path: str
    #: "home", "ssh_dir", "private", "public", "authorized_keys", "config", "known_hosts";
    #: "parent", a folder sshd checks on the real path to authorized_keys (a link's
    #: target and the folders above it); "included", a file ~/.ssh/config Includes
    kind: str
    mode: int  # permission bits
    uid: int
    gid: int
    key_type: str | None  # private/public keys: the SSH key type
    key_bits: int | None
    encrypted: bool | None  # private keys: protected by a passphrase

    def __init__(
        self,
        path: str,
        kind: str,
        mode: int,
        uid: int,
        key_type: str | None = None,
        key_bits: int | None = None,
        encrypted: bool | None = None,
        gid: int = -1,
    ) -> None:
        init(
            self,
            path=path,
            kind=kind,
            mode=mode,
            uid=uid,
            gid=gid,
            key_type=key_type,
            key_bits=key_bits,
            encrypted=encrypted,
        )


class Finding(Record):
    """One thing to say: ``level`` "fail" (sshd or ssh refuses it, or a key anyone can
    read), "warn" (weaker than the article's advice) or "ok"; ``fix_mode`` is the mode
    --fix sets, if a mode is the cure."""

    __slots__ = ("fix_mode", "level", "message", "path")
    path: str
    level: str
    message: str
    fix_mode: int | None

    def __init__(self, path: str, level: str, message: str, fix_mode: int | None = None) -> None:
        init(self, path=path, level=level, message=message, fix_mode=fix_mode)


def _mode(mode: int) -> str:
    return f"{mode:04o}"


_OWN_GROUP_NOTE = (
    "group-writable, but the group is the user's alone: Debian's and Ubuntu's sshd "
    "accept that, upstream OpenSSH's (StrictModes) refuses it"
)


def review(
    files: list[FileFacts], owner: int, own_groups: frozenset[int] = frozenset()
) -> list[Finding]:
    """What is wrong (or right) with ``files``, for a user of uid ``owner``.
    ``own_groups`` are the groups of that user alone (its user-private group)."""
    findings: list[Finding] = []
    for facts in files:
        if (
            facts.gid in own_groups
            and facts.mode & 0o020
            and not facts.mode & 0o002
            and facts.kind in ("home", "ssh_dir", "authorized_keys", "config", "parent", "included")
        ):
            fix: int | None = SSH_DIR_MODE if facts.kind == "ssh_dir" else PRIVATE_MODE
            if facts.kind in ("home", "included"):
                fix = facts.mode & ~_WRITABLE
            elif facts.kind == "parent":
                fix = None  # a folder outside the user's: --fix leaves it
            note = _OWN_GROUP_NOTE
            if facts.kind in ("config", "included"):  # ssh's judgement, the same patch
                note = note.replace("sshd", "ssh").replace(" (StrictModes)", "")
            findings.append(Finding(facts.path, "warn", f"mode {_mode(facts.mode)}: {note}",
                                    fix))  # fmt: skip
            # one finding on the mode is enough: the others (owner...) still count
            cleared = facts._replace(mode=facts.mode & ~0o020)
            findings.extend(f for f in _review_one(cleared, owner) if not _on_mode(f))
            continue
        findings.extend(_review_one(facts, owner))
    return findings


def _on_mode(finding: Finding) -> bool:
    return finding.fix_mode is not None or finding.message.startswith("mode ")


def _review_one(facts: FileFacts, owner: int) -> list[Finding]:
    path, mode = facts.path, facts.mode
    out: list[Finding] = []
    if facts.uid not in (owner, 0):
        out.append(Finding(path, "fail", f"owned by uid {facts.uid}, not by the user or root"))
    if facts.kind == "parent":
        if mode & _WRITABLE:
            message = "others can write this folder on the real path to the keys"
            out.append(Finding(path, "fail", f"mode {_mode(mode)}: {message}: sshd "
                               "(StrictModes) ignores them"))  # fmt: skip
        return out
    if facts.kind == "included":
        if mode & _WRITABLE:
            out.append(Finding(path, "fail", f"mode {_mode(mode)}: ssh refuses an Included "
                               "config file others can write", mode & ~_WRITABLE))  # fmt: skip
        return out
    if facts.kind == "home":
        if mode & _WRITABLE:
            out.append(Finding(path, "fail", f"home folder mode {_mode(mode)} is writable by "
                               "others: sshd (StrictModes) ignores the keys under it",
                               mode & ~_WRITABLE))  # fmt: skip
        return out
    if facts.kind == "ssh_dir":
        if mode & 0o077:
            level = "fail" if mode & _WRITABLE else "warn"
            out.append(Finding(path, level, f"mode {_mode(mode)}, not {_mode(SSH_DIR_MODE)}",
                               SSH_DIR_MODE))  # fmt: skip
        return out
    if facts.kind in ("private", "authorized_keys", "config") and mode & 0o077:
        # ssh judges the modes of a key only when the key is the user's own file
        # (sshkey_perm_ok); anyone's key that others can read is still one they can copy
        mine = facts.uid == owner
        why = {
            "private": "a private key others can read (ssh refuses to use it)"
            if mine
            else "a private key others can read (ssh takes it, as the file is not the "
            "user's own, but anyone here can copy it)",
            "authorized_keys": "sshd (StrictModes) refuses it when others can write it",
            "config": "ssh refuses a config file others can write",
        }[facts.kind]
        if facts.kind != "private" and not mode & _WRITABLE:
            why = f"others can read it, not {_mode(PRIVATE_MODE)} as advised"
        level = "fail" if facts.kind == "private" or mode & _WRITABLE else "warn"
        out.append(Finding(path, level, f"mode {_mode(mode)}: {why}", PRIVATE_MODE))
    if facts.kind in ("public", "known_hosts") and mode & _WRITABLE:
        out.append(Finding(path, "warn", f"mode {_mode(mode)}: others can change it",
                           PUBLIC_MODE if facts.kind == "public" else PRIVATE_MODE))  # fmt: skip
    if facts.kind == "private" and facts.encrypted is False:
        out.append(Finding(path, "warn", "no passphrase: anyone who copies the file can use "
                           "the key (keytool passwd -f FILE adds one; keytool add keeps it "
                           "unlocked in the agent)"))  # fmt: skip
    if facts.key_type is not None:
        weak = _weakness(facts.key_type, facts.key_bits)
        if weak:
            out.append(Finding(path, "warn", weak))
    return out


def _weakness(key_type: str, bits: int | None) -> str | None:
    if key_type == "ssh-dss":
        return "a DSA key: OpenSSH no longer accepts them; make an Ed25519 key (keytool gen)"
    if key_type == "ssh-rsa" and bits is not None and bits < MIN_RSA_BITS:
        return (f"an RSA key of {bits} bits: too weak today (under {MIN_RSA_BITS}); "
                "make an Ed25519 key (keytool gen)")  # fmt: skip
    return None


#: sshd 9.x refuses RSA keys below this (RequiredRSASize)
SSHD_MIN_RSA_BITS = 1024


class KeyLine(Record):
    """One authorized_keys line with a key: its number, the key's type and size, or
    why sshd cannot read it (``error``), or why it reads it but lets no one in with it
    (``refused``: its options)."""

    __slots__ = ("bits", "error", "key_type", "number", "refused")
    number: int
    key_type: str | None
    bits: int | None
    error: str | None
    refused: str | None

    def __init__(
        self,
        number: int,
        key_type: str | None,
        bits: int | None,
        error: str | None = None,
        refused: str | None = None,
    ) -> None:
        init(self, number=number, key_type=key_type, bits=bits, error=error, refused=refused)


def review_key_line(path: str, line: KeyLine) -> Finding | None:
    """What is wrong with one authorized_keys line: sshd cannot read it, or no longer
    accepts the key (DSA, RSA under 1024 bits), or it is weaker than the article's
    advice; None when nothing is."""
    where = f"line {line.number}"
    if line.error is not None:
        return Finding(path, "warn", f"{where}: sshd cannot read it ({line.error})")
    if line.refused is not None:
        return Finding(path, "warn", f"{where}: sshd lets no one in with it ({line.refused})")
    if line.key_type == "ssh-dss":
        return Finding(path, "warn", f"{where}: a DSA key: sshd no longer accepts it")
    if line.key_type == "ssh-rsa" and line.bits is not None:
        if line.bits < SSHD_MIN_RSA_BITS:
            message = f"an RSA key of {line.bits} bits: sshd refuses it"
            return Finding(path, "warn", f"{where}: {message}")
        if line.bits < MIN_RSA_BITS:
            message = f"an RSA key of {line.bits} bits: too weak today"
            return Finding(path, "warn", f"{where}: {message} (under {MIN_RSA_BITS})")
    return None


def unreviewed(path: str, why: str) -> Finding:
    """A file (or part of one) check was to review and did not, and why: said, never
    passed over, never "ok"."""
    return Finding(path, "warn", f"{why}: not reviewed")


class EveryHost(Record):
    """What ~/.ssh/config gives every host (a name no Host pattern but ``*`` names)."""

    __slots__ = ("forward_agent", "forward_x11", "known_hosts_files", "sha1_algorithms", "strict")
    strict: str  # StrictHostKeyChecking
    known_hosts_files: tuple[str, ...]  # UserKnownHostsFile
    forward_agent: str  # ForwardAgent: "no", "yes", a path or $VAR
    sha1_algorithms: tuple[str, ...]  # ssh-rsa / ssh-dss put back in an algorithm list
    forward_x11: str  # "no", "untrusted" (ForwardX11) or "trusted" (and ForwardX11Trusted)

    def __init__(
        self,
        strict: str,
        known_hosts_files: tuple[str, ...],
        forward_agent: str,
        sha1_algorithms: tuple[str, ...] = (),
        forward_x11: str = "no",
    ) -> None:
        init(
            self,
            strict=strict,
            known_hosts_files=known_hosts_files,
            forward_agent=forward_agent,
            sha1_algorithms=sha1_algorithms,
            forward_x11=forward_x11,
        )


def review_config(path: str, every: EveryHost) -> list[Finding]:
    """Settings for every host that give up what the article's first steps are for."""
    out: list[Finding] = []
    if every.strict == "no":
        out.append(Finding(path, "warn", "StrictHostKeyChecking no for every host: a changed "
                           "host key (a man in the middle) is let through"))  # fmt: skip
    if every.known_hosts_files and all(f == "/dev/null" for f in every.known_hosts_files):
        out.append(Finding(path, "warn", "UserKnownHostsFile /dev/null for every host: no "
                           "host key is remembered, so none can be checked"))  # fmt: skip
    if every.forward_agent != "no":
        out.append(Finding(path, "warn", "ForwardAgent for every host: root on any server "
                           "you log in to can use your keys (-A where needed)"))  # fmt: skip
    if every.forward_x11 == "trusted":
        out.append(Finding(path, "warn", "ForwardX11 trusted for every host: root on any "
                           "server you log in to can watch and type into your X session "
                           "(-Y where needed)"))  # fmt: skip
    elif every.forward_x11 != "no":
        out.append(Finding(path, "warn", "ForwardX11 for every host: any server you log in "
                           "to can open windows on your display (-X where needed)"))  # fmt: skip
    if every.sha1_algorithms:
        names = ", ".join(every.sha1_algorithms)
        out.append(Finding(path, "warn", f"{names} allowed for every host: SHA-1 signatures, "
                           "which OpenSSH turned off"))  # fmt: skip
    return out


def is_failure(findings: list[Finding]) -> bool:
    return any(f.level == "fail" for f in findings)


def stat_mode(st_mode: int) -> int:
    return stat.S_IMODE(st_mode)

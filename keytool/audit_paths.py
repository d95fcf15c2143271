"""Whose SSH folder it is, and the folders sshd's StrictModes looks at (OpenSSH's
safe_path): from the real location of authorized_keys, links resolved, every folder
up to the root, stopping at the user's home when the path passes through it.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from keytool.record import Record, init


class Account(Record):
    """The user a folder is judged for: uid, name, and home (where ``~`` is)."""

    __slots__ = ("home", "name", "uid")
    uid: int
    name: str
    home: str

    def __init__(self, uid: int, name: str, home: str) -> None:
        init(self, uid=uid, name=name, home=home)


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def account_of(folder: Path) -> Account:
    """The account logging in with the keys in ``folder``, as sshd would have it: the
    one whose home holds it (``HOME/.ssh``); failing that, whoever runs check, or as
    root, the folder's owner. Who owns the home folder does not decide it: a home
    owned by someone else is a fault sshd finds, not another user."""
    if folder.name == ".ssh":
        homes = [p for p in pwd.getpwall() if p.pw_dir and _same(p.pw_dir, str(folder.parent))]
        if homes:
            owner = os.stat(folder).st_uid
            chosen = next((p for p in homes if p.pw_uid == owner), homes[0])
            return Account(chosen.pw_uid, chosen.pw_name, chosen.pw_dir)
    uid = os.getuid()
    if uid == 0:
        uid = os.stat(folder).st_uid
    try:
        entry = pwd.getpwuid(uid)
        name, home = entry.pw_name, entry.pw_dir
    except KeyError:
        name, home = str(uid), ""
    if folder.name == ".ssh" and not _same(home or "/", str(folder.parent)):
        home = str(folder.parent)  # a .ssh of its own: its parent is where ~ is
    return Account(uid, name, home)


def sshd_folders(target: Path, home: str) -> list[str]:
    """The folders safe_path checks for the file ``target`` (or, when it does not
    exist, for a file in the folder ``target`` names): its real folder, then each one
    above, up to ``home`` (when the path passes through it) or /."""
    real = os.path.realpath(target)
    if not os.path.isdir(real):
        real = os.path.dirname(real)
    stop = os.path.realpath(home) if home else None
    folders = []
    while True:
        folders.append(real)
        if real == stop or real in ("/", "."):
            break
        real = os.path.dirname(real)
    return folders

"""~/.ssh/config for keytool check, read once and never run: every file its Include
lines name, at any depth and in any block (ssh reads them all, and refuses one that
others can write or that is not the user's or root's), and what it gives every host,
resolved from those same texts. A config with ``Match exec`` anywhere is not resolved,
as that would run the command; ProxyCommand, KnownHostsCommand and LocalCommand are
only read, as ever.
"""

from __future__ import annotations

import os
import stat

from keytool.errors import KeytoolError
from keytool.sshconfig import MAX_INCLUDE_DEPTH
from keytool.sshconfig_resolved import ConfigSource, ResolvedConfig

#: more files than this through Include is not a config anyone keeps by hand
_MAX_FILES = 256
#: a config file is read whole to be resolved; ssh reads one of any size, so a bigger
#: one is said to be unreviewed (ConfigTree.unread), never passed over
MAX_CONFIG_SIZE = 1 << 22


class Unreviewed(KeytoolError):
    """A config file ssh reads but check does not (too big to hold): said, and not
    a refusal of ssh's."""


class ConfigTree:
    """The config and the files it Includes, as read: ``texts`` by path; ``included``
    the Included files' (path, mode, uid, gid); ``expansions`` what each Include
    pattern named; ``has_exec``; ``error``, why ssh would refuse the files;
    ``unread``, files ssh reads that were not (path: why), the tree then unresolved."""

    __slots__ = ("error", "expansions", "has_exec", "included", "texts", "unread")

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.included: list[tuple[str, int, int, int]] = []
        self.expansions: dict[str, list[str]] = {}
        self.has_exec = False
        self.error: str | None = None
        self.unread: dict[str, str] = {}


def expand_include(pattern: str, home: str) -> str:
    """An Include pattern as ssh reads it from a user's file: ``~`` is the user's home,
    a relative name is under ``~/.ssh``."""
    from keytool.sshconfig_words import tilde_expand

    if pattern.startswith("~"):
        return tilde_expand(pattern, home, "Include")
    if not os.path.isabs(pattern):
        return os.path.join(home, ".ssh", pattern)
    return pattern


def read_tree(path: str, home: str) -> ConfigTree:
    """The config at ``path`` and everything it Includes, for the user whose home is
    ``home``; nothing is run."""
    tree = ConfigTree()
    try:
        _walk(tree, path, home, 0, set())
    except KeytoolError as exc:
        tree.error = str(exc)
    return tree


def _read_text(path: str) -> str:
    from keytool.files import read_file

    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0  # read_file says why it cannot be read
    if size > MAX_CONFIG_SIZE:
        limit = f"{MAX_CONFIG_SIZE >> 20} MiB"
        raise Unreviewed(f"{size} bytes, over {limit}, too big for check to hold")
    data = read_file(path, "config file", limit=MAX_CONFIG_SIZE)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeytoolError(f"config file {path} is not UTF-8 text") from None


def _walk(tree: ConfigTree, path: str, home: str, depth: int, seen: set[str]) -> None:
    import glob

    from keytool.sshconfig_words import split_line

    text = tree.texts.get(path)
    if text is None:
        try:
            text = tree.texts[path] = _read_text(path)
        except Unreviewed as exc:
            tree.unread[path] = str(exc)
            return
    real = os.path.realpath(path)
    if real in seen:
        return  # its Includes are walked already (ssh stops a loop at the depth limit)
    seen.add(real)
    for number, line in enumerate(text.split("\n"), start=1):
        parsed = split_line(line, f"{path} line {number}")
        if parsed is None:
            continue
        keyword, args = parsed
        if keyword == "match" and any(a.lower().lstrip("!") == "exec" for a in args):
            tree.has_exec = True
        if keyword != "include":
            continue
        if depth + 1 > MAX_INCLUDE_DEPTH:
            raise KeytoolError(f"{path} line {number}: Include nested too deeply (a loop?)")
        for pattern in args:
            if pattern not in tree.expansions:
                expanded = expand_include(pattern, home)
                names = sorted(glob.glob(expanded))
                tree.expansions[pattern] = [n for n in names if not os.path.isdir(n)]
            for name in tree.expansions[pattern]:
                if name not in tree.texts:
                    if len(tree.texts) >= _MAX_FILES:
                        raise KeytoolError(f"{path}: more than {_MAX_FILES} files included")
                    _note(tree, name)
                _walk(tree, name, home, depth + 1, seen)


def _note(tree: ConfigTree, name: str) -> None:
    try:
        info = os.stat(name)  # as ssh, through a link: the file it opens
    except OSError as exc:
        raise KeytoolError(f"cannot read config file {name}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeytoolError(f"config file {name} is not a regular file")
    tree.included.append((name, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid))


def resolve_every_host(
    tree: ConfigTree, path: str, host: str, user: str, home: str, uid: int
) -> ResolvedConfig:
    """The config resolved for ``host`` from the texts in ``tree`` alone (an Include
    reads no file again); a FormatError as ssh's refusal. Call only when the tree has
    no ``Match exec``."""
    from keytool import sshconfig

    if tree.has_exec:
        raise AssertionError("a config with Match exec is never resolved")

    def include(pattern: str, system: bool) -> list[ConfigSource]:
        names = tree.expansions.get(pattern, [])
        return [ConfigSource(n, tree.texts[n], False) for n in names if n in tree.texts]

    return sshconfig.resolve(
        [ConfigSource(path, tree.texts[path], False)],
        host,
        user=user,
        home=home,
        uid=uid,
        local_hostname=os.uname().nodename,
        include=include,
    )

"""Key files on disk: load a private key (asking for its passphrase when needed), find
its .pub, and list every key a public, authorized_keys or known_hosts file holds."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from keytool import files
from keytool.errors import FormatError, KeytoolError, PassphraseError
from keytool.keys.base import PrivateKey, PublicKey
from keytool.record import Record, init

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


class ListedKey(Record):
    __slots__ = ("comment", "key")
    key: PublicKey
    comment: str | None  # None: ssh-keygen says "no comment"

    def __init__(self, key: PublicKey, comment: str | None) -> None:
        init(self, key=key, comment=comment)


def pub_path(path: Path) -> Path:
    from pathlib import Path  # here: ``keytool exec`` reads key files without pathlib

    return Path(f"{path}.pub")


def is_private_text(text: bytes) -> bool:
    from keytool.keys import openssh, pem

    return openssh.is_openssh_private(text) or pem.is_pem_private(text)


def ask_passphrase(path: str | os.PathLike[str]) -> bytes:
    from keytool import terminal

    # as ssh-keygen asks (read_passphrase's RP_ALLOW_STDIN)
    return terminal.read_secret(
        f"Enter passphrase for {path}: ", f"the passphrase for {path}", stdin=True
    ).encode("utf-8", "surrogateescape")


def load_private_file(
    path: str | os.PathLike[str],
    passphrase: bytes | None = None,
    ask: Callable[[str | os.PathLike[str]], bytes] | None = ask_passphrase,
) -> tuple[PrivateKey, str]:
    """Load a private key file; permissions checked as OpenSSH does; asks for the
    passphrase through ``ask`` when the key is encrypted and none was given."""
    from keytool.keys import is_encrypted_private, load_private

    text = files.read_private_key_file(path)
    if not is_private_text(text):
        raise FormatError(f"{path} is not a private key file")
    if passphrase is None and is_encrypted_private(text):
        if ask is None:
            raise PassphraseError(f"{path} is encrypted: a passphrase is needed")
        passphrase = ask(path)
    try:
        return load_private(text, passphrase)
    except KeytoolError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def public_of_file(path: str | os.PathLike[str]) -> ListedKey:
    """The public key of a private key file without its passphrase: from the file's
    own public part (openssh-key-v1) or from FILE.pub; the comment as ssh-keygen shows it."""
    from keytool.keys import openssh
    from keytool.keys.pubfile import parse_public_text

    text = files.read_file(path, "key file")
    pub = f"{os.fspath(path)}.pub"
    comment_from_pub: str | None = None
    pub_key: PublicKey | None = None
    if os.path.exists(pub):
        # a FILE.pub that cannot be read or parsed is passed over, as ssh-keygen -l
        # does: the key file itself still tells its public key
        with contextlib.suppress(KeytoolError):
            pub_key, comment_from_pub = parse_public_text(files.read_file(pub, "public key"))
        if pub_key is not None and not comment_from_pub:
            # as ssh-keygen -l and ssh-add -d (sshkey_load_public): a FILE.pub without a
            # comment is labelled with its own name
            comment_from_pub = pub
    if openssh.is_openssh_private(text):
        outer = openssh.parse(text)
        if comment_from_pub is not None and pub_key == outer.public:
            return ListedKey(outer.public, comment_from_pub)
        if not outer.is_encrypted:
            # the key file's own comment, even an empty one (ssh-keygen prints it so)
            _, comment = openssh.decrypt(outer, None)
            return ListedKey(outer.public, comment)
        return ListedKey(outer.public, None)
    if pub_key is not None and comment_from_pub is not None:
        return ListedKey(pub_key, comment_from_pub or None)
    from keytool.keys import load_private

    key, comment = load_private(text, None)
    return ListedKey(key.public, comment or None)


def public_file_text(key: PublicKey, comment: str) -> bytes:
    """A .pub file's bytes exactly as ssh-keygen writes them: ``type base64 comment``;
    with an empty comment the line keeps its separating space."""
    from keytool.keys.pubfile import format_public_line

    line = format_public_line(key, comment)
    return (line + (" " if not comment else "") + "\n").encode("utf-8", "surrogateescape")


def write_key_pair(
    path: Path,
    private_text: bytes,
    public: PublicKey,
    comment: str,
    keep_mode: bool = False,
    shown: str | None = None,
) -> None:
    """Write a private key file and its .pub with OpenSSH's modes, as one pair: both
    targets are checked, then both written to temp files beside them, before either
    takes its name (the .pub first, as ``gen -A``); a failure, ^C, SIGTERM or SIGHUP
    leaves both old files as they were and no temp file behind, never a new key beside
    an old .pub nor a key without its .pub (a signal as they take their names waits
    until both have them). ``keep_mode``: an existing key rewritten (see
    ``rewrite_key_file``); ``shown`` names the key as the user gave it. A failure is
    said in ssh-keygen's words, with its exit status."""
    name = shown if shown is not None else os.fspath(path)
    pub, pub_name = pub_path(path), f"{name}.pub"
    with _saving(name):
        target, info = files.replaceable(path, name)
    with _saving(pub_name, public=True):
        pub_target, pub_info = files.replaceable(pub, pub_name)
    # an error or a signal before both take their names removes both temp files
    with files.writing():
        with _saving(name):
            key_tmp = _stage(target, info, private_text, files.PRIVATE_MODE, keep_mode, name)
        with _saving(pub_name, public=True):
            pub_text = public_file_text(public, comment)
            pub_tmp = _stage(
                pub_target, pub_info, pub_text, files.public_mode(), keep_mode, pub_name
            )
        with files.signals_deferred():
            with _saving(pub_name, public=True):
                files.install(pub_tmp, pub_target, shown=pub_name)
            with _saving(name):
                files.install(key_tmp, target, shown=name)
    _warn_of_hard_links(name, info)  # gen over a key too: its other names keep the old one


def rewrite_public_file(path: Path, text: bytes, shown: str | None = None) -> None:
    """Replace a public key file alone (``comment`` of a .pub), its mode kept; checked
    and written as a key pair's .pub is."""
    name = shown if shown is not None else os.fspath(path)
    with _saving(name, public=True), files.writing():
        target, info = files.replaceable(path, name)
        tmp = _stage(target, info, text, files.public_mode(), True, name)
        files.install(tmp, target, shown=name)


def _save_error(name: str, reason: str, public: bool) -> KeytoolError:
    """ssh-keygen's words when a key (exit 1) or its .pub (its fatal(): 255) is not saved."""
    if public:
        error = KeytoolError(f"Unable to save public key to {name}: {reason}")
        error.exit_code = 255
    else:
        error = KeytoolError(f'Saving key "{name}" failed: {reason}')
        error.exit_code = 1
    return error


@contextlib.contextmanager
def _saving(name: str, public: bool = False) -> Iterator[None]:
    """A file not written is said in ssh-keygen's words for ``name``."""
    try:
        yield
    except files.WriteError as exc:
        raise _save_error(name, exc.reason, public) from None


def check_key_folder(path: Path, shown: str) -> None:
    """A new key's folder must be there, before any question about the key (ssh-keygen
    finds out when it saves, with these words)."""
    import errno

    if not path.parent.is_dir():
        gone = errno.ENOTDIR if path.parent.exists() else errno.ENOENT
        raise _save_error(shown, os.strerror(gone), public=False)


def given_name(file: str | None, path: Path) -> str:
    """The key file as the user named it (-f, ~ expanded), for messages."""
    return os.path.expanduser(file) if file else os.fspath(path)


def expand(path: str) -> Path:
    from pathlib import Path

    return Path(os.path.expanduser(path))


def ask_file_name(prompt: str, default: Path) -> Path:
    """ssh-keygen's question for a file name (its ask_filename): on stdout, the answer
    a line of stdin (a terminal shows it as typed); an empty line takes ``default``."""
    import sys
    from pathlib import Path

    print(f"{prompt} ({default}): ", end="", flush=True)
    try:
        line = sys.stdin.readline() if sys.stdin is not None else ""
    except (OSError, UnicodeDecodeError):
        line = ""
    if not line:
        print()
        ended = KeytoolError("no file name given: use -f FILE")
        ended.exit_code = 1  # as ssh-keygen's exit(1) at the end of its input
        raise ended
    name = line.split("\n", 1)[0]
    return Path(name) if name else default


def ask_key_file(file: str | None) -> Path:
    """-f FILE, or the file asked for as ssh-keygen -p, -c and -y ask (its default
    ~/.ssh/id_rsa, as theirs without -t)."""
    from pathlib import Path

    if file == "":
        raise KeytoolError("-f needs a file name")
    if file is not None:
        return expand(file)
    default = Path.home() / ".ssh" / "id_rsa"
    return ask_file_name("Enter file in which the key is", default)


def rewrite_key_file(path: Path, text: bytes, shown: str | None = None) -> None:
    """Replace an existing key file (``passwd``, ``comment``): a new file beside it,
    renamed over it, never the old one cut and written again. Its mode, owner and
    extended attributes are kept; other hard links to it keep the old key (said on
    stderr). A key we may not write is left alone, as ssh-keygen leaves it (see
    ``files.replaceable``), and a failure said in its words; ``shown`` names the key
    as the user gave it."""
    name = shown if shown is not None else os.fspath(path)
    with _saving(name), files.writing():
        target, info = files.replaceable(path, name)
        tmp = _stage(target, info, text, files.PRIVATE_MODE, True, name)
        files.install(tmp, target, shown=name)
    _warn_of_hard_links(name, info)


def _stage(
    target: Path, info: os.stat_result | None, text: bytes, mode: int, keep_mode: bool, name: str
) -> Path:
    """``text`` in a temp file beside ``target``, to be installed over it: the old
    file's owner and group (where we may give them), and with ``keep_mode`` its mode
    and extended attributes. Called inside ``files.writing``, which removes the temp
    file if the write ends before it is installed."""
    import stat

    if info is None:
        return files.write_temp(target, text, mode, shown=name)
    if keep_mode:
        mode = stat.S_IMODE(info.st_mode)
    tmp = files.write_temp(target, text, mode, (info.st_uid, info.st_gid), shown=name)
    if keep_mode:
        _copy_xattrs(target, tmp)
    return tmp


def _warn_of_hard_links(name: str, info: os.stat_result | None) -> None:
    import sys

    if info is None or info.st_nlink <= 1:
        return
    others = info.st_nlink - 1
    print(
        f"Warning: {name} had {others} other hard link{'s' if others > 1 else ''}: "
        f"{'they keep' if others > 1 else 'it keeps'} the old key",
        file=sys.stderr,
    )


def _copy_xattrs(source: Path, dest: Path) -> None:
    """The extended attributes of ``source`` onto ``dest``, where the system allows."""
    if not hasattr(os, "listxattr"):
        return
    try:
        names = os.listxattr(source)
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            os.setxattr(dest, name, os.getxattr(source, name))


#: ssh-keygen copies -C into a buffer of 1024 bytes (gen and -c): longer is cut
MAX_COMMENT_BYTES = 1023


def cut_comment(comment: str) -> str:
    """``comment`` cut at 1023 bytes, as ssh-keygen writes it."""
    raw = comment.encode("utf-8", "surrogateescape")
    if len(raw) <= MAX_COMMENT_BYTES:
        return comment
    return raw[:MAX_COMMENT_BYTES].decode("utf-8", "surrogateescape")

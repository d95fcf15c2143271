"""keytool krl: make or update a key revocation list from key files and revocation
specs (ssh-keygen -k), or ask which keys one revokes and print it (ssh-keygen -Q [-l])."""

from __future__ import annotations

import sys

from keytool.errors import KeytoolError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from keytool.keys.base import PublicKey
    from keytool.krl import Krl

# ssh-keygen's status for any failure; -Q keeps 1 for "a key is revoked"
ERROR_STATUS = 255


def run(
    file: str | None,
    generate: bool,
    query: bool,
    update: bool,
    ca_key: str | None,
    version: str | None,
    comment: str | None,
    quiet: bool,
    files: list[str],
    print_contents: bool = False,
) -> int:
    if generate and query:
        raise UsageError("krl: -k makes a KRL and -Q queries one; give one of them")
    if query and (update or ca_key is not None or version is not None or comment is not None):
        raise UsageError("krl: -u, -s, -z and -C are for making a KRL, not for -Q")
    if print_contents and not query:
        raise UsageError("krl: -l prints a KRL's contents and goes with -Q")
    try:
        if query:
            return _query(file, files, print_contents)
        return _generate(file, update, ca_key, version, comment, quiet, files)
    except KeytoolError as exc:  # a usage error found here too: 255, as ssh-keygen
        exc.exit_code = ERROR_STATUS
        raise


def _load(path: Path) -> Krl:
    from keytool import krl
    from keytool.files import read_file

    data = read_file(path, "KRL", pipes=True)
    try:
        return krl.parse(data)
    except KeytoolError as exc:
        raise KeytoolError(f"invalid KRL file {path}: {exc}") from None


def _query(file: str | None, files: list[str], show: bool = False) -> int:
    from keytool.keyfiles import expand

    if not file:
        raise UsageError("krl -Q: which KRL? use -f KRL_FILE")
    revocations = _load(expand(file))
    if show:
        _show(revocations)
    status = 0
    for name in files:
        key, label = _public_key(name, "public key")
        revoked = revocations.is_revoked(key)
        shown = f"{name} ({label})" if label else name
        _say(f"{shown}: {'REVOKED' if revoked else 'ok'}")
        if revoked:
            status = 1
    return status


def _say(line: str) -> None:
    """A line on stdout, now. A write error is exit 255 (never -Q's 1, "revoked")."""
    failed = _inform(line)
    if failed is not None:
        raise _stdout_error(failed) from None


def _say_bytes(data: bytes) -> None:
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError as exc:
        raise _stdout_error(exc) from None


def _stdout_error(exc: OSError) -> Exception:
    """What a failed write to stdout ends in: a closed pipe stays itself (keytool's
    quiet exit for it), anything else is one line and exit 255."""
    if isinstance(exc, BrokenPipeError):
        return exc
    return KeytoolError(f"cannot write to standard output: {exc.strerror or exc}")


def _show(revocations: Krl) -> None:
    """-Q -l: the KRL's contents as ssh-keygen prints them (krl_dump)."""
    from keytool.display import utf8_locale
    from keytool.krl import dump

    lines, problems = dump(revocations, utf8_locale())
    for problem in problems:
        print(f"keytool: {problem}", file=sys.stderr)
    _say_bytes("".join(f"{line}\n" for line in lines).encode("utf-8"))


def _generate(
    file: str | None,
    update: bool,
    ca_key: str | None,
    version: str | None,
    comment: str | None,
    quiet: bool,
    files: list[str],
) -> int:
    import os
    import time

    from keytool import krl, krlspec
    from keytool.files import MAX_TEXT_FILE_SIZE, read_file
    from keytool.keyfiles import expand

    if not file:
        raise UsageError("krl: making a KRL needs its file: -f KRL_FILE")
    path = expand(file)
    if update and not os.path.exists(path):
        raise KeytoolError(f"KRL {path} does not exist (-u updates an existing one)")
    any_ca, ca = _ca(ca_key)
    number = _version(version)
    revocations = _load(path) if update else krl.Krl()
    if number:
        revocations.version = number
    if comment is not None:
        revocations.comment = comment
    unsaid: OSError | None = None  # "Revoking from" could not be printed
    for name in files:
        if name == "-":
            source, data = "(standard input)", sys.stdin.buffer.read()
        else:
            spec = expand(name)
            source = str(spec)
            data = read_file(spec, "revocation spec", MAX_TEXT_FILE_SIZE, pipes=True)
        if not quiet and unsaid is None:
            unsaid = _inform(f"Revoking from {source}")
        krlspec.revoke_from_spec(revocations, data, source, ca, any_ca)
    if not revocations.generated:
        revocations.generated = int(time.time())
    _write(path, krl.to_bytes(revocations))
    if unsaid is not None:  # the KRL is written all the same, as ssh-keygen does
        raise _stdout_error(unsaid)
    return 0


def _inform(line: str) -> OSError | None:
    """An informational line on stdout; why it could not be written, if it could not."""
    try:
        print(line)
        sys.stdout.flush()
    except OSError as exc:
        return exc
    return None


def _write(path: Path, data: bytes) -> None:
    """The KRL to ``path``: a regular file (or a new one) all at once, created 0644
    narrowed by the umask, an existing one keeping its mode, as ssh-keygen leaves
    them; anything else (/dev/null, a pipe such as /dev/stdout) written straight
    into, as ssh-keygen does, since renaming a file over it would replace it."""
    import os
    import stat

    from keytool.files import public_mode, write_atomic

    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        regular = True  # a new file, or write_atomic says why not
    if regular:
        write_atomic(path, data, public_mode(), keep_mode=True)
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as exc:
        raise KeytoolError(f"cannot write {path}: {exc.strerror or exc}") from None


def _ca(ca_key: str | None) -> tuple[bool, PublicKey | None]:
    """-s: (any CA, the CA's key). ``none`` revokes serials and IDs of every CA."""
    if ca_key is None:
        return False, None
    if ca_key.lower() == "none":
        return True, None
    key, _ = _public_key(ca_key, "CA public key")
    return False, key


def _public_key(name: str, what: str) -> tuple[PublicKey, str]:
    """The first key of a public key file (or of KEY.pub, or of a private key file) and
    its comment, as ssh-keygen loads them."""
    from keytool.certify import load_public_key
    from keytool.keyfiles import expand

    path = str(expand(name))
    try:
        if _is_pipe(path):
            return _piped_public_key(path)
        return load_public_key(path)
    except KeytoolError as exc:
        if path in str(exc):
            raise
        raise KeytoolError(f"cannot load {what} {name}: {exc}") from None


def _is_pipe(path: str) -> bool:
    import os
    import stat

    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def _piped_public_key(path: str) -> tuple[PublicKey, str]:
    """A public key read from a pipe (``<(cat KEY.pub)``): read once, its first key
    line, labelled with the pipe's name when it has no comment, as ssh-keygen does."""
    from keytool.files import read_file
    from keytool.keys.pubfile import parse_public_text

    key, comment = parse_public_text(read_file(path, "public key", pipes=True))
    return key, comment or path


def _version(text: str | None) -> int:
    """-z: a decimal number, after an optional ``+`` (ssh-keygen reads it so)."""
    from keytool.krl import MAX_SERIAL

    if text is None:
        return 0
    digits = text.removeprefix("+")
    if not digits.isascii() or not digits.isdigit() or int(digits) > MAX_SERIAL:
        raise UsageError(f'krl: invalid KRL version "{text}" (-z takes a number)')
    return int(digits)

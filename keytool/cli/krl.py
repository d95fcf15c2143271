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
    except UsageError:
        raise
    except KeytoolError as exc:
        exc.exit_code = ERROR_STATUS
        raise


def _load(path: Path) -> Krl:
    from keytool import krl
    from keytool.files import read_file

    data = read_file(path, "KRL")
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
        print(f"{shown}: {'REVOKED' if revoked else 'ok'}")
        sys.stdout.flush()
        if revoked:
            status = 1
    return status


def _show(revocations: Krl) -> None:
    """-Q -l: the KRL's contents as ssh-keygen prints them (krl_dump)."""
    from keytool.display import utf8_locale
    from keytool.krl import dump

    lines, problems = dump(revocations, utf8_locale())
    for problem in problems:
        print(f"keytool: {problem}", file=sys.stderr)
    sys.stdout.flush()
    sys.stdout.buffer.write("".join(f"{line}\n" for line in lines).encode("utf-8"))
    sys.stdout.buffer.flush()


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
    from keytool.files import MAX_TEXT_FILE_SIZE, read_file, write_atomic
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
    for name in files:
        if name == "-":
            source, data = "(standard input)", sys.stdin.buffer.read()
        else:
            spec = expand(name)
            source, data = str(spec), read_file(spec, "revocation spec", MAX_TEXT_FILE_SIZE)
        if not quiet:
            print(f"Revoking from {source}")
            sys.stdout.flush()
        krlspec.revoke_from_spec(revocations, data, source, ca, any_ca)
    if not revocations.generated:
        revocations.generated = int(time.time())
    # ssh-keygen creates the file 0644 and leaves an existing file's mode as it is
    write_atomic(path, krl.to_bytes(revocations), 0o644, keep_mode=True)
    return 0


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
        return load_public_key(path)
    except KeytoolError as exc:
        if path in str(exc):
            raise
        raise KeytoolError(f"cannot load {what} {name}: {exc}") from None


def _version(text: str | None) -> int:
    from keytool.krl import MAX_SERIAL

    if text is None:
        return 0
    if not text.isascii() or not text.isdigit() or int(text) > MAX_SERIAL:
        raise UsageError(f'krl: invalid KRL version "{text}" (-z takes a number)')
    return int(text)

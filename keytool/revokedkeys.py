"""Revoked keys files, as OpenSSH reads them for ssh's RevokedHostKeys and for
``ssh-keygen -Y verify -r``: a key revocation list (keytool.krl) when the file starts
with the KRL magic, otherwise public keys one a line.

A key is revoked by a list of keys when a line holds the same key, compared without
certificate data (a certificate's key revokes that key and every certificate of it),
or, for a certificate, when a line holds its CA key. Blank lines and lines starting
with ``#`` (after spaces or tabs) are skipped; any other line that is not a public key
makes the whole file unusable, as for OpenSSH: a revocation file that cannot be read
is an error, never "nothing revoked". One deliberate difference: lines holding keys of
types keytool does not handle (DSA, security keys) are skipped, since no key keytool
checks can be one of them.

``revocation(data, key)`` is the pure decision; ``check_file(path, key)`` reads the
file (parsed once while it stays the same: a fleet run checks every host against it).
"""

from __future__ import annotations

import os

from keytool import krl
from keytool.errors import FormatError, KeytoolError
from keytool.keys.base import PublicKey

#: what a parsed file holds: a KRL, or the plain key blobs listed and their line numbers
Revocations = krl.Krl | dict[bytes, int]


def parse(data: bytes) -> Revocations:
    """A revoked keys file's bytes: a Krl, or {plain key blob: line number}. Anything
    malformed is a FormatError."""
    if data.startswith(krl.MAGIC):
        return krl.parse(data)
    return _parse_keys(data)


def _parse_keys(data: bytes) -> dict[bytes, int]:
    from keytool.fields import c_line_bytes, first_word
    from keytool.keys.blob import UNSUPPORTED
    from keytool.keys.cert import plain_name
    from keytool.keys.pubfile import parse_public_line

    listed: dict[bytes, int] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        # as OpenSSH reads the list: only spaces and tabs are blanks, so a line holding
        # a carriage return alone, or a key whose words stand apart by other white
        # space, is a line that is not a key, and the file cannot be used; a line ends
        # at its first NUL, as the C string OpenSSH reads
        line = c_line_bytes(raw).lstrip(b" \t")
        if not line or line.startswith(b"#"):
            continue
        text = line.decode("utf-8", "surrogateescape")
        if plain_name(first_word(text)[0]) in UNSUPPORTED:
            continue
        try:
            key, _ = parse_public_line(text)
        except KeytoolError as exc:
            raise FormatError(f"line {number}: {exc}") from None
        listed.setdefault(key.plain.to_wire(), number)
    return listed


def revocation_in(revocations: Revocations, key: PublicKey) -> str | None:
    """Why ``key`` (a plain key or a certificate) is revoked, or None."""
    from keytool.keys.cert import Certificate

    if isinstance(revocations, krl.Krl):
        return revocations.revocation(key)
    number = revocations.get(key.plain.to_wire())
    if number is not None:
        return f"the key is listed at line {number}"
    if isinstance(key, Certificate):
        number = revocations.get(key.ca.plain.to_wire())
        if number is not None:
            return f"its CA key is listed at line {number}"
    return None


def revocation(data: bytes, key: PublicKey) -> str | None:
    """Why ``key`` is revoked by the file ``data``, or None."""
    return revocation_in(parse(data), key)


#: parsed files by path: (identity of the file when read, what it holds)
_PARSED: dict[str, tuple[tuple[int, ...], Revocations]] = {}


def load(path: str | os.PathLike[str]) -> Revocations:
    """The revoked keys file ``path``, parsed; a missing, unreadable or malformed file
    is a KeytoolError naming it."""
    from keytool.files import read_file

    name = os.fspath(path)
    stamp: tuple[int, ...] = ()
    try:
        info = os.stat(name)
        stamp = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    except OSError:
        pass  # read_file below says why
    cached = _PARSED.get(name)
    if cached is not None and stamp and cached[0] == stamp:
        return cached[1]
    data = read_file(name, "revoked keys file")
    try:
        parsed = parse(data)
    except KeytoolError as exc:
        raise FormatError(f"invalid revoked keys file {name}: {exc}") from None
    if stamp:
        if len(_PARSED) > 16:
            _PARSED.clear()
        _PARSED[name] = (stamp, parsed)
    return parsed


def check_file(path: str | os.PathLike[str], key: PublicKey) -> str | None:
    """Why the file ``path`` revokes ``key``, or None; KeytoolError when the file
    cannot be used."""
    return revocation_in(load(path), key)

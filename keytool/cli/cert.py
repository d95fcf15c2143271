"""keytool cert: certify public keys with a CA key (ssh-keygen -s) and show
certificates (ssh-keygen -L)."""

from __future__ import annotations

import sys

from keytool.errors import KeytoolError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keytool.keys.base import PrivateKey


def run(
    ca_key: str | None,
    key_id: str | None,
    host: bool,
    principals: str | None,
    validity: str | None,
    serial: str | None,
    options: list[str],
    algorithm: str | None,
    agent_key: bool,
    passphrase: str | None,
    quiet: bool,
    show: bool,
    file: str | None,
    hash_name: str | None,
    files: list[str],
) -> int:
    if show:
        if ca_key is not None:
            raise UsageError("cert: -L shows certificates and -s makes them; give one of them")
        return _show(file, hash_name)
    if ca_key is None:
        raise UsageError("cert: -s CA_KEY to certify keys, or -L -f FILE to show certificates")
    return _sign(
        ca_key,
        key_id,
        host,
        principals,
        validity,
        serial,
        options,
        algorithm,
        agent_key,
        passphrase,
        quiet,
        files,
    )


def _show(file: str | None, hash_name: str | None) -> int:
    from keytool.certshow import list_certificates
    from keytool.keys.fingerprint import check_hash_name

    if not file:
        raise UsageError("cert -L: which file? use -f FILE (or -f - for stdin)")
    try:
        digest = check_hash_name(hash_name)
    except KeytoolError as exc:
        raise UsageError(str(exc)) from None
    if file == "-":
        data = sys.stdin.buffer.read()
        listing = list_certificates(data, "(stdin)", True, digest)
    else:
        from keytool.files import MAX_TEXT_FILE_SIZE, read_file
        from keytool.keyfiles import expand

        data = read_file(expand(file), "certificate file", MAX_TEXT_FILE_SIZE)
        listing = list_certificates(data, file, False, digest)
    # names in certificates are bytes (kept as surrogate escapes): written as they were
    sys.stdout.flush()
    sys.stdout.buffer.write(listing.text.encode("utf-8", "surrogateescape"))
    sys.stdout.flush()
    for error in listing.errors:
        print(f"keytool: {error}", file=sys.stderr)
    return 0 if listing.shown else 1


def _sign(
    ca_key: str,
    key_id: str | None,
    host: bool,
    principals: str | None,
    validity: str | None,
    serial: str | None,
    options: list[str],
    algorithm: str | None,
    agent_key: bool,
    passphrase: str | None,
    quiet: bool,
    files: list[str],
) -> int:
    import time

    from keytool import certify, certspec
    from keytool.keys import cert

    if key_id is None:
        raise UsageError("cert: -I KEY_ID is needed to certify (it names the key in logs)")
    if not files:
        raise UsageError("cert: which keys? name the public key files to certify")
    valid_after, valid_before = 0, cert.FOREVER
    if validity is not None:
        valid_after, valid_before = certspec.parse_validity(validity, int(time.time()))
    number, increment = certspec.parse_serial(serial) if serial is not None else (0, False)
    names = certspec.parse_principals(principals) if principals is not None else ()
    critical, extensions = certspec.cert_options(options, host)
    request = certify.Request(
        cert.HOST if host else cert.USER,
        key_id,
        names,
        valid_after,
        valid_before,
        critical,
        extensions,
    )
    subjects = [certify.load_subject(_expand(name)) for name in files]
    ca = _load_ca(_expand(ca_key), agent_key, passphrase)
    try:
        signing = certify.signature_algorithm(ca.public, algorithm)
        # as ssh-keygen's counter, a uint64: past 2^64-1 it starts again at 0
        made = [
            certify.certify(
                subject.key, ca, request, (number + (i if increment else 0)) % 2**64, signing
            )
            for i, subject in enumerate(subjects)
        ]
    finally:
        if isinstance(ca, certify.AgentCA):
            ca.close()
    for subject, certificate in zip(subjects, made, strict=True):
        certify.write_certificate(certificate, subject)
        if not quiet:
            line = certify.signed_message(certificate, subject.target, principals)
            print(line, file=sys.stderr)
    return 0


def _expand(path: str) -> str:
    import os

    return os.path.expanduser(path)


def _load_ca(path: str, agent_key: bool, passphrase: str | None) -> PrivateKey:
    from keytool import certify
    from keytool.cli import secret_bytes
    from keytool.files import read_file
    from keytool.keyfiles import is_private_text, load_private_file

    if agent_key:
        public, _ = certify.load_public_key(path)
        return certify.AgentCA(public)
    if not is_private_text(read_file(path, "CA key file")):
        raise KeytoolError(
            f"{path} is not a private key (to sign with a key in the agent, add -U "
            "and name its public key)"
        )
    secret = None if passphrase is None else secret_bytes(passphrase)
    key, _ = load_private_file(path, secret)
    return key

"""keytool add: load keys into a running agent and manage it, as ssh-add."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from keytool.errors import KeytoolError, NoAgentError, PassphraseError

if TYPE_CHECKING:
    from keytool.agentclient import AgentClient
    from keytool.agentdest import DestConstraint
    from keytool.keyfiles import ListedKey
    from keytool.keys.base import PrivateKey, PublicKey
    from keytool.keys.cert import Certificate

# ssh-add's default identities, in its order (key types keytool supports)
DEFAULT_FILES = ("id_rsa", "id_ecdsa", "id_ed25519")


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr)


#: the last passphrase that opened a key: tried first on the next one, as ssh-add does,
#: so keys sharing a passphrase cost one question
_last_passphrase: list[bytes] = []


def _load(path: Path | None, text: bytes) -> tuple[PrivateKey, str]:
    """Load a key, asking for its passphrase (terminal or SSH_ASKPASS) if it has one."""
    from keytool import terminal
    from keytool.keys import is_encrypted_private, load_private

    name = str(path) if path else "(stdin)"
    if not is_encrypted_private(text):
        return load_private(text, None)
    for remembered in _last_passphrase:
        try:
            return load_private(text, remembered)
        except PassphraseError:
            break
    prompt = f"Enter passphrase for {name}: "
    for _attempt in range(3):
        # as ssh-add asks (read_passphrase's RP_ALLOW_STDIN)
        secret = terminal.read_secret(prompt, f"the passphrase for {name}", stdin=True)
        if not secret:
            break
        try:
            loaded = load_private(text, secret.encode("utf-8", "surrogateescape"))
        except PassphraseError:
            prompt = f"Bad passphrase, try again for {name}: "
            continue
        _last_passphrase[:] = [secret.encode("utf-8", "surrogateescape")]
        return loaded
    raise PassphraseError(f"{name}: no valid passphrase given")


def _add_one(
    client: AgentClient,
    name: str,
    lifetime: int | None,
    confirm: bool,
    quiet: bool,
    destinations: tuple[DestConstraint, ...] = (),
    key_only: bool = False,
) -> int:
    """Add one key file and, as ssh-add does, its KEY-cert.pub beside it (not with
    ``key_only``, ssh-add -k); 1 when the key could not be added."""
    from keytool import files

    if name == "-":
        path = None
        text = sys.stdin.buffer.read(files.MAX_KEY_FILE_SIZE + 1)
        if len(text) > files.MAX_KEY_FILE_SIZE:
            raise KeytoolError("(stdin): too large for a private key")
    else:
        path = Path(name)
        text = files.read_private_key_file(path)
    key, comment = _load(path, text)
    comment = comment or (str(path) if path else "(stdin)")
    status = 0
    try:
        client.add(key, comment, lifetime, confirm, destinations)
    except KeytoolError as exc:
        print(f"keytool: {path or '(stdin)'}: {exc}", file=sys.stderr)
        status = 1
    else:
        _say(quiet, f"Identity added: {path or '(stdin)'} ({comment})")
        _say_constraints(quiet, lifetime, confirm)
    if path is not None and not key_only:
        _add_certificate(client, path, key, comment, lifetime, confirm, quiet, destinations)
    return status


def _say_constraints(quiet: bool, lifetime: int | None, confirm: bool) -> None:
    if lifetime:
        _say(quiet, f"Lifetime set to {lifetime} seconds")
    if confirm:
        _say(quiet, "The user must confirm each use of the key")


def _add_certificate(
    client: AgentClient,
    path: Path,
    key: PrivateKey,
    comment: str,
    lifetime: int | None,
    confirm: bool,
    quiet: bool,
    destinations: tuple[DestConstraint, ...] = (),
) -> None:
    """ssh-add's second step: KEY-cert.pub, when it exists and certifies KEY, is added
    with the key's comment and constraints; a lifetime never outlasts the certificate
    by more than CERT_GRACE. Problems are reported and skipped, never fatal."""
    import time

    from keytool import files
    from keytool.keys.cert import Certificate, CertifiedPrivate
    from keytool.keys.pubfile import parse_public_text

    cert_path = Path(f"{path}-cert.pub")
    if not cert_path.exists():
        return
    try:
        cert, _comment = parse_public_text(files.read_file(cert_path, "certificate"))
        if not isinstance(cert, Certificate):
            raise KeytoolError("not a certificate")
    except KeytoolError as exc:
        print(f'Failed to load certificate "{cert_path}": {exc}', file=sys.stderr)
        return
    if cert.key != key.public:
        print(f"Certificate {cert_path} does not match private key {path}", file=sys.stderr)
        return
    seconds = _certificate_lifetime(cert, lifetime, int(time.time()))
    if seconds == -1:
        print(f"Certificate {cert_path} has already expired; ignored", file=sys.stderr)
        return
    try:
        client.add(CertifiedPrivate(cert, key), comment, seconds, confirm, destinations)
    except KeytoolError as exc:
        print(f"Certificate {cert_path} ({cert.key_id}) add failed: {exc}", file=sys.stderr)
        return
    _say(quiet, f"Certificate added: {cert_path} ({cert.key_id})")
    _say_constraints(quiet, seconds, confirm)


# how long past its valid_before a certificate may stay in the agent (ssh-add's grace)
CERT_GRACE = 5 * 60


def _certificate_lifetime(cert: Certificate, lifetime: int | None, now: int) -> int | None:
    """The lifetime to ask for a certificate: the one given, capped at the certificate's
    end plus CERT_GRACE (the cap alone when none was given); -1 when it has ended."""
    from keytool.keys.cert import FOREVER

    if cert.valid_before == FOREVER:
        return lifetime
    if now > cert.valid_before + CERT_GRACE:
        return -1
    left = min(cert.valid_before + CERT_GRACE - now, 2**31 - 1)
    return min(lifetime, left) if lifetime else left


def _list(client: AgentClient, public: bool, hash_name: str) -> int:
    from keytool.keys.fingerprint import describe
    from keytool.keys.pubfile import format_public_line

    keys = client.identities()
    if not keys:
        print("The agent has no identities.")
        return 1
    for entry in keys:
        try:
            key = entry.public
        except KeytoolError:
            _list_unread(entry.blob, entry.comment, public, hash_name)
            continue
        print(
            format_public_line(key, entry.comment)
            if public
            else describe(key, entry.comment, hash_name)
        )
    return 0


def _list_unread(blob: bytes, comment: str, public: bool, hash_name: str) -> None:
    """A key of a type keytool does not use (DSA, a security key's...): -L gives its
    line from the agent's blob as it is, -l its fingerprint, as ssh-add shows them."""
    import base64

    from keytool.display import shown_comment
    from keytool.keys.fingerprint import blob_fingerprint
    from keytool.wire import Reader

    try:
        key_type = Reader(blob).string().decode("ascii")
    except (KeytoolError, UnicodeDecodeError):
        key_type = "unknown"
    if public:
        print(f"{key_type} {base64.b64encode(blob).decode('ascii')} {shown_comment(comment)}")
        return
    shown = blob_fingerprint(blob, hash_name)
    print(f"? {shown} {shown_comment(comment)} ({key_type}: a type keytool does not use)")


def _delete(client: AgentClient, names: list[str], quiet: bool, key_only: bool = False) -> int:
    """ssh-add -d: each file's key, then its KEY-cert.pub when there is one (not with
    ``key_only``, ssh-add -k); a file counts as done when either was removed."""
    from keytool.errors import UnsupportedKeyError

    status = 0
    for name in names:
        try:
            listed = _key_named(name)
        except UnsupportedKeyError:
            # a type keytool does not use (DSA): removed by its blob, as ssh-add can
            if not _remove_raw(client, name, quiet):
                status = 1
            continue
        removed = _remove_one(client, listed.key, listed.comment, name, quiet)
        cert = None if key_only else _certificate_of(name, listed.key)
        if cert is not None:
            removed |= _remove_one(client, cert[0], cert[1], f"{name}-cert.pub", quiet)
        if not removed:
            status = 1
    return status


def _key_named(name: str) -> ListedKey:
    """The key a -d FILE names, as ssh-add reads it (sshkey_load_public): the file itself
    when it is a public key (KEY.pub, a certificate), else the key file's public part;
    a public key without a comment is named by its file."""
    from keytool import files
    from keytool.keyfiles import ListedKey, is_private_text, public_of_file
    from keytool.keys.pubfile import parse_public_text

    text = files.read_file(Path(name), "key file")
    if is_private_text(text):
        return public_of_file(Path(name))
    key, comment = parse_public_text(text)
    return ListedKey(key, comment or name)


def _remove_raw(client: AgentClient, name: str, quiet: bool) -> bool:
    """-d with a key of a type keytool does not read: its line in FILE or FILE.pub."""
    from keytool import files
    from keytool.keys.blob import UNSUPPORTED_LABELS
    from keytool.keys.pubfile import decode_blob

    for path in (Path(name), Path(f"{name}.pub")):
        try:
            text = files.read_file(path, "key file")
        except KeytoolError:
            continue
        for line in text.split(b"\n"):
            words = line.split()
            if len(words) < 2 or words[0].startswith(b"#"):
                continue
            try:
                blob = decode_blob(words[1])
            except KeytoolError:
                break
            comment = b" ".join(words[2:]).decode("utf-8", "replace") or "no comment"
            try:
                client.remove(blob)
            except KeytoolError:
                break
            kind = UNSUPPORTED_LABELS.get(words[0].decode("ascii", "replace"), "?")
            _say(quiet, f"Identity removed: {name} {kind} ({comment})")
            return True
    print(f'Could not remove identity "{name}": agent refused operation', file=sys.stderr)
    return False


def _remove_one(
    client: AgentClient, key: PublicKey, comment: str | None, name: str, quiet: bool
) -> bool:
    try:
        client.remove(key.to_wire())
    except KeytoolError:
        print(f'Could not remove identity "{name}": agent refused operation', file=sys.stderr)
        return False
    _say(quiet, f"Identity removed: {name} {key.label} ({comment or 'no comment'})")
    return True


def _certificate_of(name: str, key: PublicKey) -> tuple[Certificate, str] | None:
    """NAME-cert.pub and its comment, if it exists; a certificate for another key is an
    error (ssh-add stops there too)."""
    from keytool import files
    from keytool.keys.cert import Certificate
    from keytool.keys.pubfile import parse_public_text

    cert_path = Path(f"{name}-cert.pub")
    if not cert_path.exists():
        return None
    try:
        cert, comment = parse_public_text(files.read_file(cert_path, "certificate"))
    except KeytoolError as exc:
        print(f'Failed to load certificate "{cert_path}": {exc}', file=sys.stderr)
        return None
    if not isinstance(cert, Certificate):
        print(f'Failed to load certificate "{cert_path}": not a certificate', file=sys.stderr)
        return None
    if cert.key != key.plain:
        raise KeytoolError(f"Certificate {cert_path} does not match private key {name}")
    return cert, comment


def _bare(exc: KeytoolError, name: str) -> str:
    """An error's words without the file name it may start with (the caller names it)."""
    text = str(exc)
    return text[len(name) + 2 :] if text.startswith(f"{name}: ") else text


def _test(client: AgentClient, names: list[str]) -> int:
    status = 0
    for name in names:
        # as ssh-add -T: a public key file, or a key file's public part; a file that
        # cannot be read is named, and the others are still tested
        try:
            key = _key_named(name).key
        except KeytoolError as exc:
            print(f"Couldn't read public key {name}: {_bare(exc, name)}", file=sys.stderr)
            status = 1
            continue
        data = os.urandom(64)
        flags = 4 if key.plain.key_type == "ssh-rsa" else 0  # SSH_AGENT_RSA_SHA2_512
        try:
            signature = client.sign(key.to_wire(), data, flags)
        except KeytoolError as exc:
            print(f"Agent signature failed for {name}: {exc}", file=sys.stderr)
            status = 1
            continue
        if not key.verify(signature, data):
            print(f"Signature by {name} does not verify", file=sys.stderr)
            status = 1
    return status


def _lock(client: AgentClient, lock: bool) -> int:
    from keytool import terminal

    secret = terminal.read_secret("Enter lock password: ", "the lock password", stdin=True)
    if lock:
        again = terminal.read_secret("Again: ", "the lock password", stdin=True)
        if again != secret:
            print("Passwords do not match.", file=sys.stderr)
            return 1
    try:
        (client.lock if lock else client.unlock)(secret.encode("utf-8", "surrogateescape"))
    except KeytoolError:
        print(f"Failed to {'lock' if lock else 'unlock'} agent.", file=sys.stderr)
        return 1
    print("Agent locked." if lock else "Agent unlocked.", file=sys.stderr)
    return 0


def run(
    files: list[str],
    list_keys: bool,
    list_public: bool,
    hash_name: str | None,
    delete: bool,
    delete_all: bool,
    lock: bool,
    unlock: bool,
    lifetime: str | None,
    confirm: bool,
    test: bool,
    quiet: bool,
    destinations: list[str] | None = None,
    hostkey_files: list[str] | None = None,
    key_only: bool = False,
) -> int:
    from keytool.agentclient import AgentClient
    from keytool.duration import parse_lifetime
    from keytool.keys.fingerprint import check_hash_name

    actions = sum((list_keys, list_public, delete, delete_all, lock, unlock, test))
    if actions > 1:
        raise KeytoolError("choose one of -l, -L, -d, -D, -x, -X, -T")
    seconds = parse_lifetime(lifetime) if lifetime is not None else None
    digest = check_hash_name(hash_name)
    with AgentClient() as client:
        if list_keys or list_public:
            return _list(client, list_public, digest)
        if delete_all:
            client.remove_all()
            _say(quiet, "All identities removed.")
            return 0
        if lock or unlock:
            return _lock(client, lock)
        # as ssh-add: the destinations are looked up before anything is tested or added
        restricted: tuple[DestConstraint, ...] = ()
        if destinations:
            from keytool.destspec import load_destinations

            restricted = load_destinations(destinations, hostkey_files or ())
        if test:
            if not files:
                raise KeytoolError("-T needs one or more public key files")
            return _test(client, files)
        names = files or [str(p) for n in DEFAULT_FILES if (p := Path.home() / ".ssh" / n).exists()]
        if delete:
            if not files:
                # as ssh-add -d without files: the default identities
                names = [n for n in names if Path(f"{n}.pub").exists() or Path(n).exists()]
            return _delete(client, names, quiet, key_only)
        if not names:
            raise KeytoolError("no key files given and no default identities in ~/.ssh")
        status = 0
        for name in names:
            try:
                status |= _add_one(
                    client, name, seconds or None, confirm, quiet, restricted, key_only
                )
            except NoAgentError:
                raise
            except KeytoolError as exc:
                # as ssh-add: the file named, and the next one still added
                print(f'Error loading key "{name}": {_bare(exc, name)}', file=sys.stderr)
                status = 1
        return status

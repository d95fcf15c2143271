"""keytool add: load keys into a running agent and manage it, as ssh-add."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from keytool.errors import KeytoolError, NoAgentError, PassphraseError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from keytool.agentclient import AgentClient
    from keytool.agentdest import DestConstraint
    from keytool.keyfiles import ListedKey
    from keytool.keys.base import PrivateKey, PublicKey
    from keytool.keys.cert import Certificate

# ssh-add's default identities, in its order (key types keytool supports)
DEFAULT_FILES = ("id_rsa", "id_ecdsa", "id_ed25519")


def _err(text: str, end: str = "\n") -> None:
    """A line on stderr with the bytes of the names and comments in it as they came
    (surrogateescape), as ssh-add writes them: never a "\\udcXX" for a byte that is not
    UTF-8."""
    sys.stderr.flush()
    data = (text + end).encode("utf-8", "surrogateescape")
    buffer = getattr(sys.stderr, "buffer", None)
    if buffer is None:  # a stream of text only: the text as it is
        sys.stderr.write(data.decode("utf-8", "replace"))
        return
    buffer.write(data)
    buffer.flush()


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        _err(text)


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
        _err(f"keytool: {path or '(stdin)'}: {exc}")
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
        _err(f'Failed to load certificate "{cert_path}": {exc}')
        return
    if cert.key != key.public:
        _err(f"Certificate {cert_path} does not match private key {path}")
        return
    seconds = _certificate_lifetime(cert, lifetime, int(time.time()))
    if seconds == -1:
        _err(f"Certificate {cert_path} has already expired; ignored")
        return
    try:
        client.add(CertifiedPrivate(cert, key), comment, seconds, confirm, destinations)
    except KeytoolError as exc:
        _err(f"Certificate {cert_path} ({cert.key_id}) add failed: {exc}")
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
    from keytool.agentclient import BadAgentKeyError
    from keytool.keys.fingerprint import describe
    from keytool.keys.pubfile import format_public_line

    try:
        keys = client.identities()
    except BadAgentKeyError as exc:
        # as ssh-add: a key blob OpenSSH cannot read spoils the whole list (one of a
        # type it does not know is left out, as identities() leaves it out)
        _err(str(exc))
        return 1
    if not keys:
        if keys.skipped:
            return 0  # as ssh-add: every key was of an unknown type; nothing to say
        print("The agent has no identities.")
        return 1
    for entry in keys:
        try:
            key = entry.public
        except KeytoolError:
            _list_unread(entry.blob, entry.comment, public, hash_name)
            continue
        # -L: the comment after a space even when empty, as ssh-add prints it
        print(
            f"{format_public_line(key)} {entry.comment}"
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
        if name == "-":
            if not _delete_stdin(client, quiet):
                status = 1
            continue
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


#: the longest line ``-d -`` reads from stdin (a public key line is far shorter)
MAX_STDIN_LINE = 64 * 1024


def _stdin_lines() -> Iterator[bytes]:
    """stdin's lines without their newline; a line longer than MAX_STDIN_LINE comes as
    its first MAX_STDIN_LINE bytes (the rest is skipped), so memory stays bounded."""
    stream = sys.stdin.buffer
    while line := stream.readline(MAX_STDIN_LINE):
        if not line.endswith(b"\n") and len(line) == MAX_STDIN_LINE:
            while (more := stream.readline(MAX_STDIN_LINE)) and not more.endswith(b"\n"):
                pass
        yield line.split(b"\n", 1)[0]


def _read_key_line(line: bytes) -> tuple[bytes, PublicKey, str]:
    """A ``type base64 comment`` line as ssh-add reads it (sshkey_read): the blob, the
    key, and the comment (what follows the base64, its leading blanks skipped)."""
    import re

    from keytool.errors import FormatError
    from keytool.keys.pubfile import decode_blob
    from keytool.keys.shown import shown_from_wire

    match = re.fullmatch(rb"([^ \t]+)[ \t]+([^ \t]+)[ \t]*(.*)", line, re.DOTALL)
    if match is None:
        raise FormatError("invalid format")
    key_type, b64, comment = match.groups()
    try:
        blob = decode_blob(b64)
        key = shown_from_wire(blob)
    except KeytoolError:
        raise FormatError("invalid format") from None
    if key.key_type.encode("ascii") != key_type:
        raise FormatError("key type does not match")
    return blob, key, comment.decode("utf-8", "surrogateescape")


def _delete_stdin(client: AgentClient, quiet: bool) -> bool:
    """ssh-add -d -: the public key of each line of stdin (blank and # lines skipped),
    each named "(stdin)"; True when at least one was removed."""
    removed = False
    for number, line in enumerate(_stdin_lines(), 1):
        text = line.lstrip(b" \t")
        if not text or text.startswith(b"#"):
            continue
        try:
            blob, key, comment = _read_key_line(text)
        except KeytoolError as exc:
            _err(f"(stdin):{number}: invalid key: {exc}", "\r\n")  # ssh-add's error()
            continue
        try:
            client.remove(blob)
        except NoAgentError:
            raise
        except KeytoolError:
            _err('Could not remove identity "(stdin)": agent refused operation')
            continue
        _say(quiet, f"Identity removed: (stdin) {key.label} ({comment})")
        removed = True
    return removed


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
    from keytool.fields import split_blanks
    from keytool.keys.blob import UNSUPPORTED_LABELS
    from keytool.keys.pubfile import decode_blob

    for path in (Path(name), Path(f"{name}.pub")):
        try:
            text = files.read_file(path, "key file")
        except KeytoolError:
            continue
        for raw in text.split(b"\n"):
            # the words as ssh-add cuts them: at spaces and tabs only
            words = split_blanks(raw.decode("utf-8", "surrogateescape"), 2)
            if len(words) < 2 or words[0].startswith("#"):
                continue
            try:
                blob = decode_blob(words[1])
            except KeytoolError:
                break
            comment = words[2].partition("\r")[0] if len(words) > 2 else ""
            comment = comment or "no comment"
            try:
                client.remove(blob)
            except KeytoolError:
                break
            kind = UNSUPPORTED_LABELS.get(words[0], "?")
            _say(quiet, f"Identity removed: {name} {kind} ({comment})")
            return True
    _err(f'Could not remove identity "{name}": agent refused operation')
    return False


def _remove_one(
    client: AgentClient, key: PublicKey, comment: str | None, name: str, quiet: bool
) -> bool:
    try:
        client.remove(key.to_wire())
    except KeytoolError:
        _err(f'Could not remove identity "{name}": agent refused operation')
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
        _err(f'Failed to load certificate "{cert_path}": {exc}')
        return None
    if not isinstance(cert, Certificate):
        _err(f'Failed to load certificate "{cert_path}": not a certificate')
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
            _err(f"Couldn't read public key {name}: {_bare(exc, name)}")
            status = 1
            continue
        data = os.urandom(64)
        flags = 4 if key.plain.key_type == "ssh-rsa" else 0  # SSH_AGENT_RSA_SHA2_512
        try:
            signature = client.sign(key.to_wire(), data, flags)
        except KeytoolError as exc:
            _err(f"Agent signature failed for {name}: {exc}")
            status = 1
            continue
        if not key.verify(signature, data):
            _err(f"Signature by {name} does not verify")
            status = 1
    return status


def _update_card(
    client: AgentClient,
    add: bool,
    provider: str,
    lifetime: int | None,
    confirm: bool,
    quiet: bool,
    destinations: tuple[DestConstraint, ...],
) -> int:
    """ssh-add -s / -e: the agent is asked to load (or drop) a PKCS#11 provider's keys;
    keytool sends the request and the agent decides (keytool's agent always refuses)."""
    from keytool import terminal

    pin = ""
    if add:
        try:
            pin = terminal.read_secret(
                "Enter passphrase for PKCS#11: ", "the PKCS#11 PIN", stdin=True
            )
        except KeytoolError:
            pin = ""  # as ssh-add's read_passphrase: no answer is an empty one
    try:
        client.update_card(
            add, provider, pin.encode("utf-8", "surrogateescape"), lifetime, confirm, destinations
        )
    except NoAgentError:
        raise
    except KeytoolError:
        _err(f'Could not {"add" if add else "remove"} card "{provider}": agent refused operation')
        return 1
    _say(quiet, f"Card {'added' if add else 'removed'}: {provider}")
    return 0


def _lock(client: AgentClient, lock: bool) -> int:
    from keytool import terminal

    secret = terminal.read_secret("Enter lock password: ", "the lock password", stdin=True)
    if lock:
        again = terminal.read_secret("Again: ", "the lock password", stdin=True)
        if again != secret:
            _err("Passwords do not match.")
            return 1
    try:
        (client.lock if lock else client.unlock)(secret.encode("utf-8", "surrogateescape"))
    except KeytoolError:
        _err(f"Failed to {'lock' if lock else 'unlock'} agent.")
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
    verbose: int = 0,
    pkcs11_add: str | None = None,
    pkcs11_remove: str | None = None,
    sk_provider: str | None = None,
    resident: bool = False,
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
        # -v: ssh-add's debug output; keytool add has none to give. -S: the security
        # key provider, used only by FIDO keys, which keytool never loads
        del verbose, sk_provider
        if pkcs11_add is not None or pkcs11_remove is not None:
            # -e wins over -s, as when ssh-add is given -s before -e
            add = pkcs11_remove is None and not delete
            provider = pkcs11_remove if pkcs11_remove is not None else pkcs11_add
            assert provider is not None
            return _update_card(client, add, provider, seconds or None, confirm, quiet, restricted)
        if resident:
            # ssh-add -K without a token fails so, with status 1
            _err("Unable to load resident keys: keytool has no FIDO support", "\r\n")
            return 1
        names = files or [str(p) for n in DEFAULT_FILES if (p := Path.home() / ".ssh" / n).exists()]
        if delete:
            if not names:
                return 1  # as ssh-add -d with no files and no default identities: silently
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
                _err(f'Error loading key "{name}": {_bare(exc, name)}')
                status = 1
        return status

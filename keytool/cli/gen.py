"""keytool gen: a new key pair, as ssh-keygen -t TYPE -b BITS -C COMMENT -f FILE -N PASS
[-m FORMAT] [-Z CIPHER]; with -A every missing host key, as ssh-keygen -A (hostkeys.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from keytool.errors import KeytoolError
from keytool.output import confirm_overwrite, keeps_changes, on_terminal

DEFAULT_BITS = {"rsa": 3072, "ecdsa": 256, "ed25519": 256}
FILE_NAMES = {"rsa": "id_rsa", "ecdsa": "id_ecdsa", "ed25519": "id_ed25519"}
#: -t as the SSH name of the key type (exact case, as ssh-keygen): an ECDSA name picks
#: its curve's size unless -b says otherwise
_FULL_NAMES: dict[str, tuple[str, int | None]] = {
    "ssh-ed25519": ("ed25519", None),
    "ssh-rsa": ("rsa", None),
    "rsa-sha2-256": ("rsa", None),
    "rsa-sha2-512": ("rsa", None),
    "ecdsa-sha2-nistp256": ("ecdsa", 256),
    "ecdsa-sha2-nistp384": ("ecdsa", 384),
    "ecdsa-sha2-nistp521": ("ecdsa", 521),
}


#: ssh-keygen takes -a up to INT_MAX
MAX_ROUNDS = 2**31 - 1


def check_rounds(rounds: int | None) -> None:
    if rounds is not None and not 1 <= rounds <= MAX_ROUNDS:
        raise KeytoolError(f"-a rounds must be between 1 and {MAX_ROUNDS}")


def default_comment() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def new_passphrase() -> bytes:
    """Ask twice, as ssh-keygen asks: the terminal, SSH_ASKPASS, or (with no terminal)
    two lines of stdin; refuse to guess when none answers (no silent unprotected key)."""
    from keytool import terminal

    while True:
        first, second = terminal.ask_twice(
            "Enter passphrase (empty for no passphrase): ",
            "no passphrase given and no terminal to ask on: "
            "pass -N '' for an unprotected key or -N PASSPHRASE",
        )
        if first == second:
            return first.encode("utf-8", "surrogateescape")
        # as ssh-keygen: both asked again
        print("Passphrases do not match.  Try again.", flush=on_terminal())


def check_bits(key_type: str, bits: int | None, quiet: bool = False) -> int:
    if bits is not None and bits < 1:  # as ssh-keygen, for every type (0 too)
        raise KeytoolError(f"Bits has bad value {bits} (too small)")
    if key_type == "rsa":
        bits = bits or DEFAULT_BITS["rsa"]
        if bits < 1024:
            raise KeytoolError(f"invalid RSA key length {bits}: minimum is 1024 bits")
        if bits > 16384:
            raise KeytoolError(f"invalid RSA key length {bits}: maximum is 16384 bits")
        if bits < 2048:
            print(f"Warning: RSA keys of {bits} bits are weak; use 2048 or more", file=sys.stderr)
        return bits
    if key_type == "ecdsa":
        bits = bits or DEFAULT_BITS["ecdsa"]
        if bits not in (256, 384, 521):
            raise KeytoolError("invalid ECDSA key length: valid lengths are 256, 384 or 521 bits")
        return bits
    if bits not in (None, 256) and not quiet:
        print("Warning: -b is ignored for ed25519 keys", file=sys.stderr)
    return 256


@keeps_changes
def run(
    key_type: str | None,
    bits: int | None,
    comment: str | None,
    file: str | None,
    passphrase: str | None,
    rounds: int | None,
    quiet: bool,
    force: bool,
    host_keys: bool = False,
    key_format: str | None = None,
    cipher: str | None = None,
) -> int:
    from keytool import files
    from keytool.cli import one_line_text, secret_bytes
    from keytool.keyfiles import ask_file_name, check_key_folder, cut_comment, given_name
    from keytool.keys import keyformat, openssh

    if bits is not None and bits < 1:  # as ssh-keygen, before anything else
        raise KeytoolError(f"Bits has bad value {bits} (too small)")
    check_rounds(rounds)
    fmt = keyformat.parse_format(key_format) if key_format is not None else keyformat.OPENSSH
    if cipher is not None:
        openssh.check_cipher(cipher)
    if host_keys:
        from keytool.cli import hostkeys

        given = {"-t": key_type, "-b": bits, "-C": comment, "-N": passphrase}
        for flag, value in given.items():
            if value is not None:
                raise KeytoolError(
                    f"{flag} does not apply with -A: it makes each missing host key type "
                    "with the defaults, without passphrase"
                )
        if force:
            raise KeytoolError("--force does not apply with -A: it never replaces a host key")
        if file == "":
            raise KeytoolError("-f needs a folder name (the prefix of /etc/ssh)")
        keyformat.check_cipher_applies(True, fmt, cipher)  # -A makes RSA and ECDSA keys
        return hostkeys.run(os.path.expanduser(file or ""), fmt, cipher, rounds, quiet)

    kind = ("ed25519" if key_type is None else key_type).lower()
    if key_type in _FULL_NAMES:  # the key type's own name, as ssh-keygen takes it
        kind, curve_bits = _FULL_NAMES[key_type]
        bits = bits if bits is not None else curve_bits
    if kind in ("dsa", "ssh-dss"):
        raise KeytoolError("DSA keys are not supported (OpenSSH removed DSA); use ed25519")
    if kind not in FILE_NAMES:
        raise KeytoolError(f"unknown key type {kind!r}: use ed25519, rsa or ecdsa")
    size = check_bits(kind, bits, quiet)
    keyformat.check_cipher_applies(kind != "ed25519", fmt, cipher)

    if file == "":
        raise KeytoolError("-f needs a file name")
    if comment is not None:
        one_line_text(comment, "the comment (-C)")
        comment = cut_comment(comment)
    if not quiet:  # first, as ssh-keygen says it: before any question
        # at once on a terminal; elsewhere it waits, as stdio keeps it, so a closed
        # pipe behind stdout is found after the key is saved, not before
        print(f"Generating public/private {kind} key pair.", flush=on_terminal())
    if file:
        path = Path(file).expanduser()
    else:
        # as ssh-keygen: asked, an empty answer the default; ~/.ssh made only for a
        # key that goes there
        ssh_dir = Path.home() / ".ssh"
        path = ask_file_name("Enter file in which to save the key", ssh_dir / FILE_NAMES[kind])
        if path.parent == ssh_dir and not ssh_dir.exists():
            files.ensure_dir(ssh_dir)
            if not quiet:
                print(f"Created directory '{ssh_dir}'.")
    pub_path = Path(f"{path}.pub")
    shown = given_name(file, path)
    # ssh-keygen asks about the private key file only and replaces a FILE.pub without
    # a word; a .pub alone may be somebody's key kept there, so it is asked about too.
    # As ssh-keygen, only a file that is there, links followed: a link to no file is
    # written through without a question
    existing = next((p for p in (path, pub_path) if p.exists()), None)
    if existing is not None and not (force or confirm_overwrite(existing)):
        refused = KeytoolError(f"{existing} already exists; not overwriting (use --force)")
        refused.exit_code = 1  # as ssh-keygen's exit(1) at an answer other than y
        raise refused
    check_key_folder(path, shown)

    # any length, as ssh-keygen 9.2 takes it for its own format (PEM and PKCS#8: the
    # writer refuses under five characters, as ssh-keygen's libcrypto path does)
    secret = secret_bytes(passphrase) if passphrase is not None else new_passphrase()

    from keytool.keyfiles import write_key_pair
    from keytool.keys import generate
    from keytool.keys.fingerprint import fingerprint, randomart

    key = generate(kind, size)
    note = default_comment() if comment is None else comment
    saved = keyformat.saved_format(key, fmt)
    if saved != fmt and not quiet:
        print(f"Note: {kind} keys have no {fmt} form: saved in OpenSSH format", file=sys.stderr)
    private_text = keyformat.dump_private(key, note, secret or None, fmt, cipher, rounds)
    write_key_pair(path, private_text, key.public, note, shown=shown)
    if not quiet:
        print(f"Your identification has been saved in {path}")
        print(f"Your public key has been saved in {pub_path}")
        print("The key fingerprint is:")
        print(f"{fingerprint(key.public)} {note}")
        print("The key's randomart image is:")
        print(randomart(key.public))
    return 0

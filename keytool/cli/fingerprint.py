"""keytool fingerprint: ssh-keygen -l [-v] [-E hash] -f FILE, -B (bubblebabble), and
-r HOSTNAME [-g] (SSHFP records, see sshfp.py)."""

from __future__ import annotations

from keytool.errors import KeytoolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keytool.keyfiles import ListedKey


def run(
    file: str | None,
    hash_name: str | None,
    visual: bool,
    bubblebabble: bool = False,
    rr_host: str | None = None,
    generic: bool = False,
) -> int:
    from keytool.keyfiles import ask_key_file
    from keytool.keylist import keys_in_file
    from keytool.keys.fingerprint import (
        check_hash_name,
        describe,
        describe_bubblebabble,
        randomart,
    )

    if rr_host is not None:
        if bubblebabble or visual or hash_name:
            raise KeytoolError("-r prints SSHFP records: it does not go with -B, -E or -v")
        from keytool.cli.sshfp import run as print_records

        return print_records(rr_host, file, generic)
    if generic:
        raise KeytoolError("-g is for SSHFP records: use it with -r HOSTNAME")
    digest = check_hash_name(hash_name)
    from keytool.display import shown_comment

    for listed in _stdin_keys() if file == "-" else keys_in_file(ask_key_file(file)):
        # the comment escaped as ssh-keygen's mprintf does: a file's bytes, not ours
        comment = None if listed.comment is None else shown_comment(listed.comment)
        if bubblebabble:  # SHA-1 whatever -E says; -E still picks the randomart's hash
            print(describe_bubblebabble(listed.key, comment))
        else:
            print(describe(listed.key, comment, digest))
        if visual:
            print(randomart(listed.key, digest))
    return 0


def _stdin_keys() -> list[ListedKey]:
    """``-f -``: key lines read from stdin (ssh-keyscan HOST | keytool fingerprint -f -),
    as ssh-keygen -lf - reads them; a private key is not taken there, as by ssh-keygen."""
    import sys

    from keytool.errors import FormatError
    from keytool.files import MAX_TEXT_FILE_SIZE
    from keytool.keylist import keys_in_text

    try:
        text = sys.stdin.buffer.read(MAX_TEXT_FILE_SIZE + 1) if sys.stdin else b""
    except OSError:
        text = b""
    found = keys_in_text(text) if len(text) <= MAX_TEXT_FILE_SIZE else []
    if not found:
        raise FormatError("(stdin) is not a public key file")
    return found

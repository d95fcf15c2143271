"""The format a private key file is saved in: ssh-keygen's -m (PEM, PKCS8, RFC4716)
and -Z (the cipher of an OpenSSH-format key).

In ssh-keygen's terms -m RFC4716 (or ssh2) saves a private key in OpenSSH's own
openssh-key-v1 format, the default; PEM and PKCS8 apply to RSA and ECDSA keys only:
ssh-keygen saves an Ed25519 key in its own format whatever -m says, and so does this.
"""

from __future__ import annotations

from keytool.errors import FormatError, KeytoolError
from keytool.keys.base import PrivateKey

OPENSSH = "RFC4716"
PEM = "PEM"
PKCS8 = "PKCS8"

_NAMES = {"rfc4716": OPENSSH, "ssh2": OPENSSH, "pem": PEM, "pkcs8": PKCS8}


def parse_format(name: str) -> str:
    """-m's value, case-insensitive as ssh-keygen takes it."""
    fmt = _NAMES.get(name.lower())
    if fmt is None:
        raise KeytoolError(
            f'unsupported key format "{name}": use PEM, PKCS8 or RFC4716 (OpenSSH\'s own)'
        )
    return fmt


def saved_format(key: PrivateKey, fmt: str) -> str:
    """The format ``key`` is really saved in when ``fmt`` is asked for."""
    from keytool.keys import pemwrite

    if fmt in (PEM, PKCS8) and pemwrite.has_pem_form(key):
        return fmt
    return OPENSSH


def check_cipher_applies(has_pem_form: bool, fmt: str, cipher: str | None) -> None:
    """-Z names the cipher of an OpenSSH-format key: refuse it where the key is saved as
    PEM or PKCS#8 (ssh-keygen silently ignores it there; those use AES-128-CBC).
    ``has_pem_form``: the key is RSA or ECDSA (pemwrite.has_pem_form)."""
    if cipher is not None and fmt in (PEM, PKCS8) and has_pem_form:
        raise KeytoolError(
            f"-Z applies to OpenSSH-format keys only: -m {fmt} keys are encrypted "
            "with AES-128-CBC, as ssh-keygen writes them"
        )


def dump_private(
    key: PrivateKey,
    comment: str,
    passphrase: bytes | None,
    fmt: str = OPENSSH,
    cipher: str | None = None,
    rounds: int | None = None,
) -> bytes:
    """The bytes of ``key``'s private key file as ssh-keygen saves it with these options."""
    from keytool.keys import openssh, pemwrite

    if saved_format(key, fmt) == OPENSSH:
        return openssh.dump(
            key,
            comment,
            passphrase or None,
            rounds or openssh.DEFAULT_ROUNDS,
            cipher or openssh.DEFAULT_CIPHER,
        )
    if passphrase is not None and 0 < len(passphrase) < 5:
        raise FormatError("passphrase too short: use at least five characters or none")
    return pemwrite.dump(key, fmt, passphrase or None)

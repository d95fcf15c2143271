"""SSHFP DNS resource records of a host key (RFC 4255, RFC 6594, RFC 7479), in the two
zone-file forms ssh-keygen -r and ssh-keyscan -D print: ``NAME IN SSHFP ALG TYPE HEX``,
or RFC 3597's generic ``NAME IN TYPE44 \\# LEN ALG TYPE HEX`` (ssh-keygen -r -g).

A record names a plain key: certificates have no SSHFP algorithm number.
"""

from __future__ import annotations

from keytool.errors import FormatError
from keytool.keys.base import PublicKey
from keytool.keys.fingerprint import raw_digest

#: the SSHFP algorithm number of each key type (RFC 4255 RSA, DSA; RFC 6594 ECDSA; RFC 7479 Ed25519)
ALGORITHMS: dict[str, int] = {
    "ssh-rsa": 1,
    "ssh-dss": 2,
    "ecdsa-sha2-nistp256": 3,
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "ssh-ed25519": 4,
}

#: fingerprint types, in the order the records are printed: 1 SHA-1 (RFC 4255), 2 SHA-256
#: (RFC 6594)
FINGERPRINT_TYPES: tuple[tuple[int, str], ...] = ((1, "sha1"), (2, "sha256"))

#: the resource record type number of SSHFP, for the generic form
RR_TYPE = 44


def algorithm_of(key: PublicKey) -> int:
    """The SSHFP algorithm number of ``key``; FormatError for certificates and others."""
    number = ALGORITHMS.get(key.key_type)
    if number is None:
        what = "certificates" if key.plain is not key else f"{key.key_type} keys"
        raise FormatError(f"SSHFP records name plain RSA, ECDSA or Ed25519 keys, not {what}")
    return number


def records(name: str, key: PublicKey, generic: bool = False) -> list[str]:
    """The SSHFP lines of ``key`` for the owner ``name``: one per fingerprint type."""
    algorithm = algorithm_of(key)
    lines = []
    for fp_type, hash_name in FINGERPRINT_TYPES:
        digest = raw_digest(key, hash_name)
        if generic:
            head = f"{name} IN TYPE{RR_TYPE} \\# {2 + len(digest)} {algorithm:02x} {fp_type:02x}"
        else:
            head = f"{name} IN SSHFP {algorithm} {fp_type}"
        lines.append(f"{head} {digest.hex()}")
    return lines

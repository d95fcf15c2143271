"""What ``keytool exec -Q`` lists, as ``ssh -Q`` does: the algorithms keytool
implements, one query name each (or an ssh_config keyword that takes such a list)."""

from __future__ import annotations

from keytool.errors import KeytoolError

#: the queries, as ``ssh -Q help`` names them
QUERIES = (
    "cipher",
    "cipher-auth",
    "compression",
    "kex",
    "key",
    "key-cert",
    "key-plain",
    "key-sig",
    "mac",
    "protocol-version",
    "sig",
)
#: ssh_config keywords ssh takes in their place (compared without case)
_KEYWORDS = {
    "ciphers": "cipher",
    "macs": "mac",
    "kexalgorithms": "kex",
    "pubkeyacceptedkeytypes": "key-sig",
    "pubkeyacceptedalgorithms": "key-sig",
    "hostkeyalgorithms": "key-sig",
    "hostbasedkeytypes": "key-sig",
    "hostbasedacceptedkeytypes": "key-sig",
    "hostbasedacceptedalgorithms": "key-sig",
}
_CERT = "-cert-v01@openssh.com"
_RSA_SHA2 = ("rsa-sha2-256", "rsa-sha2-512")


def query(what: str) -> list[str]:
    """The names for ``what``; a KeytoolError in ssh's words for an unknown query."""
    from keytool.keys.blob import KEY_TYPES
    from keytool.transport.ciphers import CIPHERS, MACS
    from keytool.transport.kex import KEX_METHODS

    name = what if what in QUERIES else _KEYWORDS.get(what.lower(), "")
    plain = [k for k in KEY_TYPES if not k.endswith(_CERT)]
    certs = [k for k in KEY_TYPES if k.endswith(_CERT)]
    if name == "cipher":
        return list(CIPHERS)
    if name == "cipher-auth":
        return [c for c, spec in CIPHERS.items() if spec.aead]
    if name == "compression":
        return ["none", "zlib@openssh.com"]
    if name == "kex":
        return list(KEX_METHODS)
    if name == "key":
        return [*plain, *certs]
    if name == "key-cert":
        return certs
    if name == "key-plain":
        return plain
    if name == "key-sig":
        return [*plain, *certs, *_RSA_SHA2, *(f"{alg}{_CERT}" for alg in _RSA_SHA2)]
    if name == "mac":
        return list(MACS)
    if name == "protocol-version":
        return ["2"]
    if name == "sig":
        return [*plain, *_RSA_SHA2]
    if what == "help":
        return list(QUERIES)
    raise KeytoolError(f'Unsupported query "{what}"')

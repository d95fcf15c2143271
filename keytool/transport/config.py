"""What the client offers in key exchange, and the knobs of its transport.

Only names and numbers live here, so building a config imports no cryptography.
The lists follow OpenSSH's default preference order (ssh_config(5)), restricted to
what keytool implements; ``tests/unit/test_transport_tables.py`` checks that every
name here has an entry in the kex, cipher and MAC tables.
"""

from __future__ import annotations

from collections.abc import Callable

from keytool.record import Record, init

#: kex (OpenSSH 10.0 order; the sntrup761 hybrids and group18 are not implemented)
DEFAULT_KEX: tuple[str, ...] = (
    "mlkem768x25519-sha256",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group14-sha256",
)

#: host key signature algorithms (OpenSSH order, FIDO left out): certificates first,
#: as ssh's; a server without a host certificate just shows its plain key
DEFAULT_HOST_KEY: tuple[str, ...] = (
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)

#: PubkeyAcceptedAlgorithms: what user authentication may sign with (OpenSSH 9.2's
#: default, FIDO left out): SHA-1 ssh-rsa only when a user adds it
DEFAULT_PUBKEY: tuple[str, ...] = DEFAULT_HOST_KEY

#: CASignatureAlgorithms: what a CA may sign certificates with (OpenSSH's default,
#: FIDO left out): SHA-1 ssh-rsa is not among them
DEFAULT_CA_SIGNATURE_ALGORITHMS: tuple[str, ...] = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)

DEFAULT_CIPHERS: tuple[str, ...] = (
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
)

#: OpenSSH puts umac first; keytool has no umac, so the EtM HMACs lead
DEFAULT_MACS: tuple[str, ...] = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
)

#: RFC 4253 §4.2: the version line, without CR LF
CLIENT_VERSION = "SSH-2.0-keytool_0.1"

#: pseudo-algorithms appended to the first KEXINIT's kex list only
EXT_INFO_C = "ext-info-c"  # RFC 8308 §2.1
KEX_STRICT_C = "kex-strict-c-v00@openssh.com"  # PROTOCOL §1.10 (Terrapin countermeasure)
KEX_STRICT_S = "kex-strict-s-v00@openssh.com"

Trace = Callable[[str], None]


class TransportConfig(Record):
    """Algorithm lists in preference order (the client's order decides, RFC 4253 §7.1)."""

    __slots__ = (
        "ciphers",
        "client_version",
        "compression",
        "host_key_algorithms",
        "kex_algorithms",
        "macs",
        "rekey_bytes",
        "rekey_interval",
        "trace",
    )
    kex_algorithms: tuple[str, ...]
    host_key_algorithms: tuple[str, ...]
    ciphers: tuple[str, ...]
    macs: tuple[str, ...]
    client_version: str
    #: re-key after this many bytes in one direction (ssh_config RekeyLimit); None keeps
    #: only the RFC 4344 §3 limits of the negotiated cipher
    rekey_bytes: int | None
    #: called with one human-readable line per handshake step (``keytool exec -v``)
    trace: Trace | None
    #: compression methods offered, both ways: ("none",), or with ssh's Compression
    #: yes ("zlib@openssh.com", "none")
    compression: tuple[str, ...]
    #: re-key after this many seconds (RekeyLimit's second value); None: never by time
    rekey_interval: float | None

    def __init__(
        self,
        kex_algorithms: tuple[str, ...] = DEFAULT_KEX,
        host_key_algorithms: tuple[str, ...] = DEFAULT_HOST_KEY,
        ciphers: tuple[str, ...] = DEFAULT_CIPHERS,
        macs: tuple[str, ...] = DEFAULT_MACS,
        client_version: str = CLIENT_VERSION,
        rekey_bytes: int | None = None,
        trace: Trace | None = None,
        compression: tuple[str, ...] = ("none",),
        rekey_interval: float | None = None,
    ) -> None:
        init(
            self,
            kex_algorithms=kex_algorithms,
            host_key_algorithms=host_key_algorithms,
            ciphers=ciphers,
            macs=macs,
            client_version=client_version,
            rekey_bytes=rekey_bytes,
            compression=compression,
            rekey_interval=rekey_interval,
            trace=trace,
        )

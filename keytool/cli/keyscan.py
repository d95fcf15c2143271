"""keytool keyscan: the host keys of servers as known_hosts lines (ssh-keyscan), their
host certificates (-c) or SSHFP records (-D).

One connection per host and key type, each taken as far as the server's proof that it
holds the key (the exchange hash's signature, checked), then closed: a key that is
printed is one the server can sign with, not just one it named. With -c only the
certificate algorithms are offered, so the server proves it holds the certified key.
"""

from __future__ import annotations

import sys

from keytool.errors import KeytoolError, NegotiationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from keytool.keys.base import PublicKey

#: ssh-keyscan's types (the security-key ones, ecdsa-sk and ed25519-sk, aside: keytool
#: does not use them) and the host key algorithms that fetch each
TYPES = {
    "rsa": ("rsa-sha2-512", "rsa-sha2-256"),
    "ecdsa": ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"),
    "ed25519": ("ssh-ed25519",),
}
DEFAULT_TIMEOUT = 5.0


def run(
    hosts: list[str],
    port: int | None = None,
    types: str | None = None,
    hashed: bool = False,
    timeout: int | None = None,
    hosts_file: str | None = None,
    quiet: bool = False,
    certs: bool = False,
    sshfp: bool = False,
) -> int:
    from keytool.destination import parse_hosts_file

    if certs and sshfp:
        raise KeytoolError("-c and -D do not go together: SSHFP records name plain keys")

    wanted = [t.strip().lower() for t in (types or "rsa,ecdsa,ed25519").split(",") if t.strip()]
    for kind in wanted:
        if kind not in TYPES:
            raise KeytoolError(f"unknown key type {kind!r}: use rsa, ecdsa or ed25519")
    names = list(hosts)
    if hosts_file:
        from keytool.files import read_file
        from keytool.keyfiles import expand

        text = read_file(expand(hosts_file), "hosts file").decode("utf-8", "replace")
        names += parse_hosts_file(text)
    if not names:
        raise KeytoolError("which hosts? give them as arguments or with -f FILE")
    show = _certificate_line if certs else _sshfp_lines if sshfp else _known_hosts_line
    found = 0
    for name in names:
        found += _scan(
            name, port or 22, wanted, hashed, float(timeout or DEFAULT_TIMEOUT), quiet, show, certs
        )
    sys.stdout.flush()
    return 0 if found else 1


def _known_hosts_line(host: str, port: int, key: PublicKey, hashed: bool) -> str:
    from keytool import knownhosts

    return knownhosts.format_entry(host, port, key, hashed=hashed)


def _certificate_line(host: str, port: int, key: PublicKey, hashed: bool) -> str:
    """ssh-keyscan -c: the certificate alone, without host names (so -H changes nothing)."""
    from keytool.keys.pubfile import format_public_line

    return format_public_line(key)


def _sshfp_lines(host: str, port: int, key: PublicKey, hashed: bool) -> str:
    """ssh-keyscan -D: the records name the host as given, never hashed, without port."""
    from keytool.keys.sshfp import records

    return "\n".join(records(host, key))


def _scan(
    host: str,
    port: int,
    kinds: list[str],
    hashed: bool,
    timeout: float,
    quiet: bool,
    show: Callable[[str, int, PublicKey, bool], str],
    certs: bool,
) -> int:
    from keytool import tcp
    from keytool.blocking import BlockingTransport
    from keytool.keys.cert import cert_name
    from keytool.transport.config import TransportConfig
    from keytool.transport.handshake import ClientTransport

    found = 0
    for kind in kinds:
        try:
            sock = tcp.connect(host, port, timeout)
        except KeytoolError as exc:
            sys.stderr.write(f"keytool: {exc}\n")
            return found  # the host is not there: its other types would fail alike
        algorithms = tuple(cert_name(a) for a in TYPES[kind]) if certs else TYPES[kind]
        transport = BlockingTransport(sock, ClientTransport(TransportConfig(
            host_key_algorithms=algorithms)))  # fmt: skip
        try:
            offered = transport.host_key_only(timeout)
        except NegotiationError:
            continue  # no key of this type: the common case, and ssh-keyscan is silent
        except KeytoolError as exc:
            sys.stderr.write(f"keytool: {host} port {port}: {exc}\n")
            continue
        finally:
            if not quiet and transport.conn.server_version:
                shown = host if port == 22 else f"{host}:{port}"
                mark = ";" if show is _sshfp_lines else "#"  # a zone file comment
                sys.stderr.write(f"{mark} {shown} {transport.conn.server_version}\n")
            transport.sock.close()
        print(show(host, port, offered.key, hashed))
        found += 1
    return found

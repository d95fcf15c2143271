"""keytool keyscan: the host keys of servers as known_hosts lines (ssh-keyscan).

One connection per host and key type, each taken as far as the server's proof that it
holds the key (the exchange hash's signature, checked), then closed: a key that is
printed is one the server can sign with, not just one it named.
"""

from __future__ import annotations

import sys

from keytool.errors import KeytoolError, NegotiationError

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
) -> int:
    from keytool.destination import parse_hosts_file

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
    found = 0
    for name in names:
        found += _scan(name, port or 22, wanted, hashed, float(timeout or DEFAULT_TIMEOUT), quiet)
    sys.stdout.flush()
    return 0 if found else 1


def _scan(host: str, port: int, kinds: list[str], hashed: bool, timeout: float, quiet: bool) -> int:
    from keytool import knownhosts, tcp
    from keytool.blocking import BlockingTransport
    from keytool.transport.config import TransportConfig
    from keytool.transport.handshake import ClientTransport

    found = 0
    for kind in kinds:
        try:
            sock = tcp.connect(host, port, timeout)
        except KeytoolError as exc:
            sys.stderr.write(f"keytool: {exc}\n")
            return found  # the host is not there: its other types would fail alike
        transport = BlockingTransport(sock, ClientTransport(TransportConfig(
            host_key_algorithms=TYPES[kind])))  # fmt: skip
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
                sys.stderr.write(f"# {shown} {transport.conn.server_version}\n")
            transport.sock.close()
        print(knownhosts.format_entry(host, port, offered.key, hashed=hashed))
        found += 1
    return found

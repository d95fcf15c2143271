"""keytool keyscan: the host keys of servers as known_hosts lines (ssh-keyscan), their
host certificates (-c) or SSHFP records (-D).

One connection per host and key type, each taken as far as the server's proof that it
holds the key (the exchange hash's signature, checked), then closed: a key that is
printed is one the server can sign with, not just one it named. With -c only the
certificate algorithms are offered, so the server proves it holds the certified key.

Hosts are read as ssh-keyscan reads them: an argument or a line of -f (``-`` for
stdin) is ``addrlist [namelist]``, comma-separated; the first address of the list
that resolves is scanned, and each key is printed once for every name (the address
list when no names are given). Hosts are scanned at the same time (as many at once as
ssh-keyscan scans: up to 246, as the open-file limit allows), their lines printed in
the order the hosts were given; a host that does not answer within -T seconds is given
up after one line saying so.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import NamedTuple

from keytool.errors import KeytoolError, NegotiationError, in_words

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
#: types ssh-keyscan knows that keytool does not scan (it does not use them)
NOT_SCANNED = frozenset({"dsa", "ecdsa-sk", "ed25519-sk"})
DEFAULT_TIMEOUT = 5
MAX_TIMEOUT = 2**31 - 1  # as ssh-keyscan's convtime: an int of seconds
#: hosts scanned at once, as ssh-keyscan: at most MAXMAXFD (256) file descriptors, 10
#: of them kept for its own files; fewer when the open-file limit is lower
MAX_AT_ONCE = 246


def _kind(name: str) -> str | None:
    """The ssh-keyscan type a -t name stands for (a short name in any case, or a key or
    signature algorithm name as ssh-keygen spells it), None for an unknown one."""
    from keytool.keys.cert import is_cert_type

    short = name.lower()
    if short in TYPES or short in NOT_SCANNED:
        return short
    if is_cert_type(name):
        return None
    for kind, algorithms in TYPES.items():
        if name in algorithms or (kind == "rsa" and name == "ssh-rsa"):
            return kind
    if name == "ssh-dss":
        return "dsa"
    if name in ("sk-ecdsa-sha2-nistp256@openssh.com", "sk-ssh-ed25519@openssh.com"):
        return "ecdsa-sk" if "ecdsa" in name else "ed25519-sk"
    return None


def _entries(text: str) -> list[tuple[str, str]]:
    """The lines of an ssh-keyscan hosts file: ``addrlist [namelist]``, anything from a
    ``#`` on and trailing blanks cut, empty lines skipped."""
    found = []
    for raw in text.split("\n"):
        line = raw.split("#", 1)[0].rstrip(" \t\r")
        if line.strip(" \t"):
            found.append(_entry(line.lstrip(" \t")))
    return found


def _entry(text: str) -> tuple[str, str]:
    addresses, _, names = text.partition(" ")
    names = names.strip(" \t")
    return addresses, names or addresses


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
    ipv4: bool = False,
    ipv6: bool = False,
) -> int:
    import socket

    # as ssh-keyscan's -4 and -6 (typed together, the later one wins there: -6 here)
    family = socket.AF_INET6 if ipv6 else socket.AF_INET if ipv4 else 0
    if certs and sshfp:
        raise KeytoolError("-c and -D do not go together: SSHFP records name plain keys")
    if port is not None and not 1 <= port <= 65535:
        raise KeytoolError(f"Bad port '{port}'")
    if timeout is not None and not 1 <= timeout <= MAX_TIMEOUT:
        raise KeytoolError(f"Bad timeout '{timeout}'")
    wanted: list[str] = []
    for name in (types or "rsa,ecdsa,ed25519").split(","):
        kind = _kind(name.strip())
        if kind is None:
            unknown = KeytoolError(f'Unknown key type "{name.strip()}": use rsa, ecdsa or ed25519')
            unknown.exit_code = 255  # ssh-keyscan's fatal(), where its other errors say 1
            raise unknown
        if kind in NOT_SCANNED:
            sys.stderr.write(f"keytool: {kind} keys are not scanned (keytool does not use them)\n")
        elif kind not in wanted:
            wanted.append(kind)
    entries = [_entry(host) for host in hosts]
    if hosts_file:
        if hosts_file == "-":
            data = sys.stdin.buffer.read()
        else:
            from keytool.files import read_file
            from keytool.keyfiles import expand

            data = read_file(expand(hosts_file), "hosts file", pipes=True)
        entries += _entries(data.decode("utf-8", "replace"))
    if not entries:
        raise KeytoolError("which hosts? give them as arguments or with -f FILE")
    show = _certificate_line if certs else _sshfp_lines if sshfp else _known_hosts_line
    scan = partial(
        _scan,
        port=port or 22,
        kinds=wanted,
        hashed=hashed,
        timeout=float(timeout or DEFAULT_TIMEOUT),
        quiet=quiet,
        show=show,
        certs=certs,
        family=family,
    )
    from keytool.tcp import files_at_once

    found = 0
    # one connection (one file descriptor) per host at a time: a host's key types are
    # fetched one after the other; 10 more kept free, as ssh-keyscan keeps them
    at_once = files_at_once(min(MAX_AT_ONCE, len(entries)), 1, reserved=10)
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        for result in pool.map(scan, entries):
            sys.stderr.write(result.notes)
            sys.stderr.flush()
            sys.stdout.write(result.lines)
            sys.stdout.flush()
            found += result.found
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


class _Found(NamedTuple):
    lines: str  # for stdout
    notes: str  # for stderr
    found: int


def _scan(
    entry: tuple[str, str],
    port: int,
    kinds: list[str],
    hashed: bool,
    timeout: float,
    quiet: bool,
    show: Callable[[str, int, PublicKey, bool], str],
    certs: bool,
    family: int = 0,
) -> _Found:
    from keytool import tcp
    from keytool.blocking_transport import BlockingTransport
    from keytool.keys.cert import cert_name
    from keytool.transport.config import TransportConfig
    from keytool.transport.handshake import ClientTransport

    addresses, names = entry
    lines: list[str] = []
    notes: list[str] = []
    try:
        for kind in kinds:
            sock = None
            error: KeytoolError | None = None
            # as ssh-keyscan: the next address only when a name does not resolve (its
            # connect does not wait: a refusal comes later, and ends the host)
            for address in addresses.split(","):
                try:
                    sock = tcp.connect(address, port, timeout, family=family)
                    break
                except KeytoolError as exc:
                    error = error or exc
                    if not str(exc).startswith("Could not resolve hostname"):
                        break
            if sock is None:
                notes.append(f"keytool: {error}\n")
                break  # the host is not there: its other types would fail alike
            algorithms = tuple(cert_name(a) for a in TYPES[kind]) if certs else TYPES[kind]
            transport = BlockingTransport(sock, ClientTransport(TransportConfig(
                host_key_algorithms=algorithms)))  # fmt: skip
            try:
                offered = transport.host_key_only(timeout)
            except NegotiationError:
                continue  # no key of this type: the common case, and ssh-keyscan is silent
            except KeytoolError as exc:
                notes.append(f"keytool: {address} port {port}: {exc}\n")
                break  # a host that failed one type (not answering, say) fails the others
            finally:
                if not quiet and transport.conn.server_version:
                    mark = ";" if show is _sshfp_lines else "#"  # a zone file comment
                    notes.append(f"{mark} {address}:{port} {transport.conn.server_version}\n")
                transport.sock.close()
            lines.extend(show(name, port, offered.key, hashed) + "\n" for name in names.split(","))
    except Exception as exc:
        # an error nobody expected costs this host (one line, as a host that failed),
        # not the scan of the others
        notes.append(f"keytool: {addresses} port {port}: {in_words(exc)}\n")
    return _Found("".join(lines), "".join(notes), len(lines))

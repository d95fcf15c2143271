"""TCP connections to SSH servers, with ssh's wording for what goes wrong.

``connect`` is a plain blocking connect used by ``keytool exec`` before the SSH
machinery is even imported: the server starts its side (sshd forks and execs a
session process) while Python loads the rest of keytool.
"""

from __future__ import annotations

import os
import socket

from keytool.errors import ConnectError


def connect_error(host: str, port: int, exc: BaseException) -> ConnectError:
    """The one-line error ssh would print for a failed connect."""
    if isinstance(exc, TimeoutError):
        return ConnectError(f"connect to host {host} port {port}: Connection timed out")
    if isinstance(exc, socket.gaierror):
        return ConnectError(f"Could not resolve hostname {host}: {exc.strerror}")
    if isinstance(exc, OSError):
        reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
        return ConnectError(f"connect to host {host} port {port}: {reason}")
    return ConnectError(f"connect to host {host} port {port}: {exc}")


def connect(host: str, port: int, timeout: float | None) -> socket.socket:
    """A connected TCP socket (blocking connect bounded by ``timeout``), set non-blocking."""
    # An ASCII name goes to getaddrinfo as bytes: given a str, it loads the idna codec
    # (a few milliseconds of imports) even for "127.0.0.1"
    address = host.encode("ascii") if host.isascii() else host
    try:
        sock = socket.create_connection((address, port), timeout=timeout)  # type: ignore[arg-type]
    except (OSError, TimeoutError) as exc:
        raise connect_error(host, port, exc) from None
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock

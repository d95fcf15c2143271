"""TCP connections to SSH servers, with ssh's wording for what goes wrong.

``connect`` is a plain blocking connect used by ``keytool exec`` before the SSH
machinery is even imported: the server starts its side (sshd forks and execs a
session process) while Python loads the rest of keytool. It uses the C module
``_socket`` directly; the ``socket`` module around it costs imports (enum, selectors)
that would all come before the connect.

``start_connect`` is its non-blocking sibling for copy-id's fleets: the first hosts'
connections are under way while the asyncio client loads; the event loop then waits
for each to finish (``client.open_transport`` with a ``sock``). ``proxy_connect`` runs
a ProxyCommand instead, whose stdin and stdout are the connection.
"""

from __future__ import annotations

import _socket
import errno
import os
import time

from keytool.errors import ConnectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from asyncio.trsock import TransportSocket
    from collections.abc import Callable


#: Linux's TCP_QUICKACK (None where the system has none)
_QUICKACK: int | None = getattr(_socket, "TCP_QUICKACK", None)

#: AddressFamily's names (any: 0, every family)
FAMILIES = {"inet": _socket.AF_INET, "inet6": _socket.AF_INET6}


def quick_ack(sock: _socket.socket | TransportSocket) -> bool:
    """Have the kernel acknowledge at once what the server sent (Linux's TCP_QUICKACK,
    which it drops again by itself: the drivers set it after each read). sshd leaves
    Nagle's algorithm on for a session without a terminal, so a second small packet
    it writes waits until the first is acknowledged; Linux holds an acknowledgement
    back for up to 40 ms when we have nothing to send. Each exchange where the server
    writes twice in a row (a command's output in two pieces, then its exit status)
    would stall that long. False when the socket takes no such option (not TCP, or
    not Linux): there is no need to ask again."""
    if _QUICKACK is None:
        return False
    try:
        sock.setsockopt(_socket.IPPROTO_TCP, _QUICKACK, 1)
    except OSError:
        return False
    return True


def connect_error(host: str, port: int, exc: BaseException) -> ConnectError:
    """The one-line error ssh would print for a failed connect (the name as its log
    shows it: every byte that is not printable ASCII as ``\\ooo``)."""
    if not host.isascii() or not host.isprintable():
        from keytool.display import as_logged

        host = as_logged(host)
    if isinstance(exc, TimeoutError):
        return ConnectError(f"connect to host {host} port {port}: Connection timed out")
    if isinstance(exc, _socket.gaierror):
        return ConnectError(f"Could not resolve hostname {host}: {exc.strerror}")
    if isinstance(exc, UnicodeError):  # a name no resolver takes (an empty label, say)
        return ConnectError(f"Could not resolve hostname {host}: Name or service not known")
    if isinstance(exc, OSError):
        reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
        return ConnectError(f"connect to host {host} port {port}: {reason}")
    return ConnectError(f"connect to host {host} port {port}: {exc}")


def connect(
    host: str,
    port: int,
    timeout: float | None,
    attempts: int = 1,
    trace: Callable[[str], None] | None = None,
    family: int = 0,
    bind_address: str | None = None,
    keepalive: bool = True,
    bind_interface: str | None = None,
    say: Callable[[str], None] | None = None,
) -> _socket.socket:
    """A connected TCP socket, set non-blocking: each address of ``host`` in turn, as
    ``socket.create_connection`` does, each connect bounded by ``timeout``; ``attempts``
    rounds of that a second apart, as ssh's ConnectionAttempts (the name is looked up
    once). ``family`` is AddressFamily's (0: any); ``bind_address`` BindAddress's, the
    local address to connect from; ``keepalive`` TCPKeepAlive's (SO_KEEPALIVE);
    ``bind_interface`` BindInterface's, an interface whose address to connect from
    (BindAddress wins), ``say`` told in ssh's words when it has none."""
    # An ASCII name goes to getaddrinfo as bytes: given a str, it loads the idna codec
    # (a few milliseconds of imports) even for "127.0.0.1"
    address = host.encode("ascii") if host.isascii() else host
    try:
        found = _socket.getaddrinfo(address, port, family, _socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # gaierror included
        raise connect_error(host, port, exc) from None
    local = None if bind_address is None else _local_address(bind_address, family, say)
    error: OSError = OSError(f"no address for {host}")
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(1)
            if trace is not None:
                trace(f"connect failed ({error.strerror or error}): trying again")
        for af, kind, proto, _, where in found:
            sock = _socket.socket(af, kind, proto)
            try:
                if bind_address is not None:
                    if local is None or local[0] != af:
                        raise OSError(0, "failure")  # as ssh: said once, then this
                    sock.bind(local[1])
                elif bind_interface is not None:
                    _bind_interface(sock, bind_interface, af, say)
                sock.settimeout(timeout)
                sock.connect(where)
            except OSError as exc:  # TimeoutError included
                sock.close()
                error = exc
                continue
            sock.setblocking(False)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            if keepalive:
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, 1)
            return sock
    raise connect_error(host, port, error)


def _local_address(
    name: str, family: int, say: Callable[[str], None] | None
) -> tuple[int, tuple[str, int]] | None:
    """BindAddress looked up as ssh looks it up (numeric or a name, passive); None
    when it has no address, said in ssh's words."""
    from keytool.display import as_logged

    address = name.encode("ascii") if name.isascii() else name
    try:
        found = _socket.getaddrinfo(address, 0, family, _socket.SOCK_STREAM, 0, _socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        if say is not None:
            reason = exc.strerror if isinstance(exc, _socket.gaierror) else None
            say(f"getaddrinfo: {as_logged(name)}: {reason or 'Name or service not known'}")
        return None
    af, _, _, _, where = found[0]
    return af, (str(where[0]), 0)


def _bind_interface(
    sock: _socket.socket, name: str, family: int, say: Callable[[str], None] | None
) -> None:
    """Bind ``sock`` to interface ``name``'s address, as ssh picks it; OSError (ssh's
    "failure") when it has none of ``family``."""
    from keytool.ifaddrs import pick

    local = pick(name, family)
    if local is None:
        if say is not None:
            say(f"getifaddrs: {name}: no suitable addresses")
        raise OSError(0, "failure")
    sock.bind(local)


def set_tos(sock: _socket.socket, tos: int | None) -> None:
    """IPQoS: the TOS (IPv4) or traffic class (IPv6) of a TCP connection, as ssh sets
    them; None leaves it, as does any other socket (a ProxyCommand's)."""
    if tos is None:
        return
    try:
        if sock.family == _socket.AF_INET:
            sock.setsockopt(_socket.IPPROTO_IP, _socket.IP_TOS, tos)
        elif sock.family == _socket.AF_INET6:
            sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_TCLASS, tos)
    except OSError:
        pass  # as ssh: said at -v only; the connection goes on


def start_connect(host: str, port: int) -> _socket.socket | None:
    """A TCP connect to a numeric address, started and not waited for (None for a
    host name, which the event loop resolves without blocking, or when the socket
    cannot be made: the normal connect then reports why)."""
    try:
        found = _socket.getaddrinfo(
            host.encode("ascii", "replace"),
            port,
            0,
            _socket.SOCK_STREAM,
            0,
            _socket.AI_NUMERICHOST | _socket.AI_NUMERICSERV,
        )
        family, kind, proto, _, where = found[0]
        sock = _socket.socket(family, kind, proto)
    except (OSError, IndexError):
        return None
    sock.setblocking(False)
    sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    if sock.connect_ex(where) not in (0, errno.EINPROGRESS):
        sock.close()  # failed at once: the normal connect tries again and says why
        return None
    return sock


#: file descriptors kept beside those a run already has open, for the files it opens
#: as it goes (configuration, known_hosts, key files, the agent's socket, the event
#: loop's own), whatever its connections take
RESERVED_FILES = 24


#: what a step that found no file descriptor free says
OUT_OF_FILES = "too many open files"


def out_of_files(exc: BaseException | None) -> bool:
    """``exc``, or an error it was raised from or while handling, is the process
    (EMFILE) or the system (ENFILE) running out of file descriptors."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def files_at_once(wanted: int, per_task: int, reserved: int = RESERVED_FILES) -> int:
    """How many of ``wanted`` tasks (connections, hosts), each holding up to
    ``per_task`` file descriptors, fit in the open-file limit at once (at least 1),
    ``reserved`` more kept free beside those open now. The limit (RLIMIT_NOFILE's soft
    one) is first raised as far as they need and the hard limit allows, as
    ssh-keyscan and the agent raise theirs."""
    import resource

    reserve = _files_open() + reserved
    needed = reserve + wanted * per_task
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    if soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if raised > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
                soft = raised
            except (OSError, ValueError):
                pass  # the limit stays as it is: fewer at once
    return max(1, min(wanted, (soft - reserve) // per_task))


def _files_open() -> int:
    """How many file descriptors the process has open (3, the standard streams,
    where that cannot be known)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # the listing's own is gone now
    except OSError:
        return 3


#: seconds a ProxyCommand gets to end by itself once its connection is closed
_PROXY_GRACE = 2.0


def proxy_connect(command: str) -> socket.socket:
    """The connection through a ProxyCommand, as ssh runs one: ``$SHELL -c "exec
    COMMAND"`` with one end of a socket pair as its stdin and stdout (its stderr is
    ours). The other end is returned; closing it hangs the command up (SIGHUP, as ssh
    does when it leaves) if it has not ended by itself soon after."""
    import signal
    import socket
    import subprocess
    import threading

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    shell = os.environ.get("SHELL") or "/bin/sh"
    try:
        process = subprocess.Popen(
            [shell, "-c", f"exec {command}"],
            stdin=theirs.fileno(),
            stdout=theirs.fileno(),  # and the terminal stays its own too (to ask for a password)
        )
    except OSError as exc:
        ours.close()
        raise ConnectError(f"cannot run ProxyCommand with {shell}: {exc.strerror}") from None
    finally:
        theirs.close()

    def hang_up() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGHUP)

    class _ProxySocket(socket.socket):
        def close(self) -> None:
            super().close()
            # our end closed: the command reads EOF, passes on what it still holds
            # (our DISCONNECT) and ends; one that does not is hung up, as ssh does, a
            # little later (without holding up the caller, an event loop perhaps)
            if process.poll() is None:
                timer = threading.Timer(_PROXY_GRACE, hang_up)
                timer.daemon = True
                timer.start()

    sock = _ProxySocket(fileno=ours.detach())
    sock.setblocking(False)
    return sock

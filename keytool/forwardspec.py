"""Port forwarding specifications, as ssh(1) reads ``-L`` and ``-R`` and ssh_config(5)
reads ``LocalForward`` and ``RemoteForward``; no I/O.

``-L [bind_address:]port:host:hostport``; ``LocalForward [bind_address:]port
host:hostport`` is the same with a space for the middle colon. A field in square
brackets is taken literally (an IPv6 address); a backslash escapes the next
character. Where keytool listens, as ssh decides it (channels.c, for a client):

- no bind address: the loopback addresses, or every address with ``GatewayPorts yes``;
- ``*`` or an empty one: every address;
- ``localhost``: the loopback addresses; anything else: that address.

``-R [bind_address:]port:host:hostport`` has the same form; port 0 asks the server to
pick one. The bind address goes to the server as ssh sends it: ``localhost`` when none
is given, ``""`` for ``*`` or an empty one (the server's GatewayPorts decides).

A field with a ``/`` is a Unix-domain socket's path, as ssh reads it: ``-L
/path:host:hostport`` listens on a socket here, ``-L [bind_address:]port:/path`` has
the server connect to one ("direct-streamlocal@openssh.com"), ``-L /path:/path`` both;
``-R /path:host:hostport`` has the server listen on a socket
("streamlocal-forward@openssh.com"), ``-R [bind_address:]port:/path`` connects to one
here; ``-D /path`` serves SOCKS on a socket. ``-R [bind_address:]port`` alone is a
SOCKS proxy at the server's end: each connection there says where it goes, and we
connect there from here (ssh's reverse dynamic forwarding; PermitRemoteOpen limits
where to).
"""

from __future__ import annotations

from keytool.errors import FormatError
from keytool.record import Record, init

#: where ssh caps a host name (NI_MAXHOST)
_MAX_HOST = 1025


class LocalForward(Record):
    """One ``-L``: listen on ``bind_address``:``listen_port`` (or the socket
    ``listen_path``); each connection there becomes a channel, the server connecting
    to ``host``:``port`` ("direct-tcpip") or to the socket ``target_path``
    ("direct-streamlocal@openssh.com")."""

    __slots__ = ("bind_address", "host", "listen_path", "listen_port", "port", "target_path")
    bind_address: str | None  # as written; None: not given (GatewayPorts decides)
    listen_port: int  # 0 with a listen_path
    host: str  # "" with a target_path
    port: int
    listen_path: str | None  # a Unix-domain socket to listen on instead of a port
    target_path: str | None  # a Unix-domain socket to connect to instead of host:port

    def __init__(
        self,
        bind_address: str | None,
        listen_port: int,
        host: str,
        port: int,
        listen_path: str | None = None,
        target_path: str | None = None,
    ) -> None:
        init(
            self,
            bind_address=bind_address,
            listen_port=listen_port,
            host=host,
            port=port,
            listen_path=listen_path,
            target_path=target_path,
        )

    def bind_hosts(self, gateway_ports: bool = False) -> tuple[str | None, ...]:
        """The addresses to listen on; None is every address (of every family)."""
        address = self.bind_address
        if address is None:
            return (None,) if gateway_ports else ("127.0.0.1", "::1")
        if address in ("", "*"):
            return (None,)
        if address == "localhost":
            return ("127.0.0.1", "::1")
        return (address,)

    @property
    def listen_label(self) -> str:
        """Where it listens, as ssh -G shows it: a path, a port or [bind]:port."""
        if self.listen_path is not None:
            return self.listen_path
        if self.bind_address is None:
            return str(self.listen_port)
        return f"[{self.bind_address}]:{self.listen_port}"

    @property
    def target_label(self) -> str:
        """Where connections go, as ssh -G shows it: a path or [host]:port."""
        if self.target_path is not None:
            return self.target_path
        return f"[{self.host}]:{self.port}"

    @property
    def target(self) -> str:
        """Where connections go, for messages: a path, or "host port N"."""
        return self.target_path or f"{self.host} port {self.port}"

    def describe(self) -> str:
        """As ``ssh -G`` prints a LocalForward: ``[bind]:port [host]:hostport``."""
        return f"{self.listen_label} {self.target_label}"


def _fields(spec: str) -> list[tuple[str, bool]]:
    """The colon-separated fields of ``spec``, each with whether it is a path (holds a
    ``/``), as ssh splits them."""
    text = spec.lstrip()
    fields: list[tuple[str, bool]] = []
    i, size = 0, len(text)
    while i < size and len(fields) <= 4:
        if text[i] == "[":
            end = text.find("]", i + 1)
            if end < 0 or (end + 1 < size and text[end + 1] != ":"):
                raise FormatError("a '[' without its ']' at the end of a field")
            field = text[i + 1 : end]
            is_path = "/" in field
            i = end + 2
        else:
            out: list[str] = []
            is_path = False
            while i < size and text[i] != ":":
                char = text[i]
                if char == "\\":
                    i += 1
                    if i == size:
                        raise FormatError("a '\\' at the end")
                    char = text[i]
                elif char == "/":
                    is_path = True
                out.append(char)
                i += 1
            field = "".join(out)
            i += 1  # past the colon
        fields.append((field, is_path))
    return fields


def _port(text: str, what: str) -> int:
    """A port from 1 to 65535, or a service name (``http``), as ssh takes them."""
    from keytool.ports import a2port

    port = a2port(text)
    if port is None or port == 0:
        raise FormatError(f"{what} {text!r} is not a number from 1 to 65535")
    return port


class RemoteForward(LocalForward):
    """One ``-R``: the server listens on ``bind_address``:``listen_port`` (0: a port
    it picks) or on the socket ``listen_path``; each connection there comes to us as a
    "forwarded-tcpip" (or "forwarded-streamlocal@openssh.com") channel, and we connect
    on to ``host``:``port`` or to the socket ``target_path``."""

    __slots__ = ()

    def request_address(self) -> str:
        """The address to bind, as ssh puts it in the tcpip-forward request."""
        if self.bind_address is None:
            return "localhost"
        return "" if self.bind_address in ("", "*") else self.bind_address


class DynamicForward(LocalForward):
    """One ``-D``: listen like a -L, and serve SOCKS there: each connection says where
    it goes, and becomes a "direct-tcpip" channel to that place."""

    __slots__ = ()

    def __init__(
        self, bind_address: str | None, listen_port: int, listen_path: str | None = None
    ) -> None:
        super().__init__(bind_address, listen_port, "socks", 0, listen_path)

    def describe(self) -> str:
        """As ``ssh -G`` prints a DynamicForward."""
        return self.listen_label


class RemoteDynamicForward(RemoteForward):
    """One ``-R [bind_address:]port`` alone: the server listens, and each connection
    there speaks SOCKS to us over its channel; we connect on to the place it names."""

    __slots__ = ()

    def __init__(self, bind_address: str | None, listen_port: int) -> None:
        super().__init__(bind_address, listen_port, "socks", 0)

    @property
    def target(self) -> str:
        return "where each SOCKS request asks"


def permitted_open(host: str, port: int, permits: tuple[str, ...]) -> bool:
    """Whether PermitRemoteOpen lets a reverse dynamic forward connect to host:port:
    () is "any", ("none",) nothing, else one ``host:port`` entry must match (``*`` for
    any host or any port; the host compared as written, as ssh does)."""
    if not permits:
        return True
    for entry in permits:
        if entry == "none":
            continue
        allowed_host, allowed_port = split_permit(entry)
        if allowed_port not in ("*", str(port)):
            continue
        if allowed_host in ("*", host):
            return True
    return False


def split_permit(entry: str) -> tuple[str, str]:
    """A PermitRemoteOpen ``host:port`` entry ([address]:port for IPv6) as its host and
    port (``*`` either way); FormatError when it is neither."""
    host, sep, port = entry.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not (port == "*" or (port.isdigit() and 0 < int(port) < 65536)):
        raise FormatError(f"bad PermitRemoteOpen entry {entry!r} (host:port)")
    return host, port


def parse_dynamic_forward(spec: str) -> DynamicForward:
    """``[bind_address:]port`` or a socket path, as ``ssh -D`` takes it."""
    try:
        fields = _fields(spec)
        if len(fields) == 1 and fields[0][1]:
            return DynamicForward(None, 0, _path(fields[0][0]))
        if len(fields) not in (1, 2) or any(is_path for _, is_path in fields):
            raise FormatError("it takes [bind_address:]port")
        bind = fields[0][0] if len(fields) == 2 else None
        return DynamicForward(bind, _port(fields[-1][0], "port"))
    except FormatError as exc:
        raise FormatError(f"bad dynamic forwarding specification {spec!r}: {exc}") from None


def parse_local_forward(spec: str) -> LocalForward:
    """``[bind_address:]port:host:hostport``, as ``ssh -L`` takes it (either side may
    be a socket path)."""
    return LocalForward(*_parse(spec, "local", zero_port=False))


def parse_remote_forward(spec: str) -> RemoteForward:
    """``[bind_address:]port:host:hostport``, as ``ssh -R`` takes it (port may be 0;
    either side may be a socket path); ``[bind_address:]port`` alone, a SOCKS proxy at
    the server's end (RemoteDynamicForward)."""
    try:
        fields = _fields(spec)
    except FormatError as exc:
        raise FormatError(f"bad remote forwarding specification {spec!r}: {exc}") from None
    if len(fields) in (1, 2) and not any(is_path for _, is_path in fields):
        bind = fields[0][0] if len(fields) == 2 else None
        listen = fields[-1][0]
        try:
            port = 0 if listen == "0" else _port(listen, "port")
        except FormatError as exc:
            raise FormatError(f"bad remote forwarding specification {spec!r}: {exc}") from None
        return RemoteDynamicForward(bind, port)
    return RemoteForward(*_parse(spec, "remote", zero_port=True))


#: the longest socket path, with its NUL (sun_path): ssh refuses longer ones in a spec
_SUN_PATH = 108


def _path(text: str) -> str:
    if "\0" in text or not text:
        raise FormatError("a socket path must not be empty or hold NUL")
    if len(text.encode("utf-8", "surrogateescape")) >= _SUN_PATH:
        raise FormatError(f"the path is too long for a socket ({_SUN_PATH - 1} bytes at most)")
    return text


_Parsed = tuple[str | None, int, str, int, str | None, str | None]


def _parse(spec: str, kind: str, zero_port: bool) -> _Parsed:
    """ssh's parse_forward: by the number of fields and which of them are paths."""
    try:
        fields = _fields(spec)
        paths = [is_path for _, is_path in fields]
        values = [value for value, _ in fields]
        bind: str | None = None
        listen_path = target_path = None
        host, port, listen = "", "0", "0"
        if len(fields) == 2 and paths[1]:
            if paths[0]:  # /path:/path
                listen_path, target_path = values
            else:  # port:/path
                listen, target_path = values
        elif len(fields) == 3 and paths[0]:  # /path:host:hostport
            listen_path, host, port = values
        elif len(fields) == 3 and paths[2]:  # bind:port:/path
            bind, listen, target_path = values
        elif len(fields) == 3:
            listen, host, port = values
        elif len(fields) == 4:
            bind, listen, host, port = values
        else:
            raise FormatError("it takes [bind_address:]port:host:hostport")
        if target_path is None and (not host or len(host) >= _MAX_HOST):
            raise FormatError("the host is empty or too long")
        if bind is not None and len(bind) >= _MAX_HOST:
            raise FormatError("the bind address is too long")
        listen_port = 0
        if listen_path is None:
            listen_port = 0 if zero_port and listen == "0" else _port(listen, "port")
        target_port = 0 if target_path is not None else _port(port, "hostport")
        return (
            bind,
            listen_port,
            host,
            target_port,
            None if listen_path is None else _path(listen_path),
            None if target_path is None else _path(target_path),
        )
    except FormatError as exc:
        raise FormatError(f"bad {kind} forwarding specification {spec!r}: {exc}") from None


def parse_forward_option(keyword: str, args: list[str]) -> str:
    """A LocalForward, RemoteForward or DynamicForward line's values as one ``-L``,
    ``-R`` or ``-D`` spec (ssh joins a forward's two values with ':')."""
    if keyword == "DynamicForward":
        if len(args) != 1:
            raise FormatError("DynamicForward takes [bind_address:]port")
        return parse_dynamic_forward(args[0]).describe()
    if keyword == "RemoteForward" and len(args) == 1:  # a SOCKS proxy at the server's end
        return parse_remote_forward(args[0]).listen_label
    if len(args) != 2:
        raise FormatError(f"{keyword} takes [bind_address:]port and host:hostport")
    spec = f"{args[0]}:{args[1]}"
    if keyword == "LocalForward":
        parse_local_forward(spec)
    else:
        parse_remote_forward(spec)
    return spec

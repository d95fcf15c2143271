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

Forwarding to or from a Unix-domain socket (a field with a ``/``) is not supported,
nor ``-R port`` alone (a SOCKS proxy at the server's end).
"""

from __future__ import annotations

from keytool.errors import FormatError
from keytool.record import Record, init

#: where ssh caps a host name (NI_MAXHOST)
_MAX_HOST = 1025


class LocalForward(Record):
    """One ``-L``: listen on ``bind_address``:``listen_port``; each connection there
    becomes a "direct-tcpip" channel, the server connecting to ``host``:``port``."""

    __slots__ = ("bind_address", "host", "listen_port", "port")
    bind_address: str | None  # as written; None: not given (GatewayPorts decides)
    listen_port: int
    host: str
    port: int

    def __init__(self, bind_address: str | None, listen_port: int, host: str, port: int) -> None:
        init(self, bind_address=bind_address, listen_port=listen_port, host=host, port=port)

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

    def describe(self) -> str:
        """As ``ssh -G`` prints a LocalForward: ``[bind]:port [host]:hostport``."""
        listen = str(self.listen_port)
        if self.bind_address is not None:
            listen = f"[{self.bind_address}]:{listen}"
        return f"{listen} [{self.host}]:{self.port}"


def _fields(spec: str) -> list[str] | None:
    """The colon-separated fields of ``spec``; None if one is a path."""
    text = spec.lstrip()
    fields: list[str] = []
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
        if is_path:
            return None
        fields.append(field)
    return fields


def _port(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise FormatError(f"{what} {text!r} is not a number from 1 to 65535")
    return int(text)


class RemoteForward(LocalForward):
    """One ``-R``: the server listens on ``bind_address``:``listen_port`` (0: a port
    it picks); each connection there comes to us as a "forwarded-tcpip" channel, and
    we connect on to ``host``:``port``."""

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

    def __init__(self, bind_address: str | None, listen_port: int) -> None:
        super().__init__(bind_address, listen_port, "socks", 0)

    def describe(self) -> str:
        """As ``ssh -G`` prints a DynamicForward."""
        if self.bind_address is None:
            return str(self.listen_port)
        return f"[{self.bind_address}]:{self.listen_port}"


def parse_dynamic_forward(spec: str) -> DynamicForward:
    """``[bind_address:]port``, as ``ssh -D`` takes it."""
    try:
        fields = _fields(spec)
        if fields is None:
            raise FormatError("a Unix-domain socket is not supported")
        if len(fields) not in (1, 2):
            raise FormatError("it takes [bind_address:]port")
        bind = fields[0] if len(fields) == 2 else None
        return DynamicForward(bind, _port(fields[-1], "port"))
    except FormatError as exc:
        raise FormatError(f"bad dynamic forwarding specification {spec!r}: {exc}") from None


def parse_local_forward(spec: str) -> LocalForward:
    """``[bind_address:]port:host:hostport``, as ``ssh -L`` takes it."""
    bind, listen, host, port = _parse(spec, "local", zero_port=False)
    return LocalForward(bind, listen, host, port)


def parse_remote_forward(spec: str) -> RemoteForward:
    """``[bind_address:]port:host:hostport``, as ``ssh -R`` takes it (port may be 0)."""
    bind, listen, host, port = _parse(spec, "remote", zero_port=True)
    return RemoteForward(bind, listen, host, port)


def _parse(spec: str, kind: str, zero_port: bool) -> tuple[str | None, int, str, int]:
    try:
        fields = _fields(spec)
        if fields is None:
            raise FormatError("forwarding to or from a Unix-domain socket is not supported")
        if len(fields) in (1, 2) and kind == "remote":
            raise FormatError("-R without host:hostport (a SOCKS proxy) is not supported")
        if len(fields) == 3:
            bind: str | None = None
            listen, host, port = fields
        elif len(fields) == 4:
            bind, listen, host, port = fields
        else:
            raise FormatError("it takes [bind_address:]port:host:hostport")
        if not host or len(host) >= _MAX_HOST or (bind is not None and len(bind) >= _MAX_HOST):
            raise FormatError("the host is empty or too long")
        listen_port = 0 if zero_port and listen == "0" else _port(listen, "port")
        return bind, listen_port, host, _port(port, "hostport")
    except FormatError as exc:
        raise FormatError(f"bad {kind} forwarding specification {spec!r}: {exc}") from None


def parse_forward_option(keyword: str, args: list[str]) -> str:
    """A LocalForward, RemoteForward or DynamicForward line's values as one ``-L``,
    ``-R`` or ``-D`` spec (ssh joins a forward's two values with ':')."""
    if keyword == "DynamicForward":
        if len(args) != 1:
            raise FormatError("DynamicForward takes [bind_address:]port")
        return parse_dynamic_forward(args[0]).describe()
    if len(args) != 2:
        raise FormatError(f"{keyword} takes [bind_address:]port and host:hostport")
    spec = f"{args[0]}:{args[1]}"
    if keyword == "LocalForward":
        parse_local_forward(spec)
    else:
        parse_remote_forward(spec)
    return spec

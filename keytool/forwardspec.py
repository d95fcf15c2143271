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

import contextlib
from collections.abc import Callable

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


def _fields(spec: str) -> list[tuple[str, bool]] | None:
    """The colon-separated fields of ``spec`` (four at most), each with whether it is
    a path (holds a ``/``), as ssh's parse_fwd_field splits them; None when ssh finds
    the spec malformed (a ``[`` without its ``]`` ending a field, a ``\\`` at the end,
    a fifth field)."""
    text = spec.lstrip(" \t\n\v\f\r")
    fields: list[tuple[str, bool]] = []
    i, size = 0, len(text)
    while i < size and len(fields) < 4:
        if text[i] == "[":
            end = text.find("]", i + 1)
            if end < 0 or (end + 1 < size and text[end + 1] != ":"):
                return None
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
                        return None
                    char = text[i]
                elif char == "/":
                    is_path = True
                out.append(char)
                i += 1
            field = "".join(out)
            i += 1  # past the colon
        fields.append((field, is_path))
    return None if i < size else fields


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
        from keytool.display import logged

        raise FormatError(f"bad PermitRemoteOpen entry '{logged(entry)}' (host:port)")
    return host, port


#: the longest socket path, with its NUL (sun_path): ssh refuses longer ones in a spec
_SUN_PATH = 108

#: ssh's listen or connect port of a Unix-domain socket (PORT_STREAMLOCAL)
_STREAMLOCAL = -2


class _Spec(Record):
    """What ssh's parse_forward makes of a spec (struct Forward): ports as a2port gives
    them (-1: none; -2 with a path); host "socks" with port 0 is a dynamic forward."""

    __slots__ = (
        "connect_host",
        "connect_path",
        "connect_port",
        "listen_host",
        "listen_path",
        "listen_port",
    )
    listen_host: str | None
    listen_port: int
    listen_path: str | None
    connect_host: str | None
    connect_port: int
    connect_path: str | None

    def __init__(
        self,
        listen_host: str | None = None,
        listen_port: int = 0,
        listen_path: str | None = None,
        connect_host: str | None = None,
        connect_port: int = 0,
        connect_path: str | None = None,
    ) -> None:
        init(
            self,
            listen_host=listen_host,
            listen_port=listen_port,
            listen_path=listen_path,
            connect_host=connect_host,
            connect_port=connect_port,
            connect_path=connect_path,
        )

    @property
    def socks(self) -> bool:
        """Whether it is dynamic: a spec of the one-or-two field form, no target."""
        return self.connect_port == 0 and self.connect_path is None


def _a2port(text: str) -> int:
    from keytool.ports import a2port

    port = a2port(text)
    return -1 if port is None else port


def _too_long(text: str | None, limit: int) -> bool:
    return text is not None and len(text.encode("utf-8", "surrogateescape")) >= limit


def _ssh_parse(spec: str, dynamic: bool, remote: bool) -> _Spec | None:
    """ssh's parse_forward(fwd, spec, dynamicfwd, remotefwd) (without its ${VAR}
    expansion, which ``expand_spec`` does): what the spec asks for, or None when ssh
    says it is bad. By the number of fields and which of them are paths (readconf.c)."""
    fields = _fields(spec)
    if fields is None or "\0" in spec:
        return None
    v = [value for value, _ in fields]
    p = [is_path for _, is_path in fields]
    if len(fields) == 1:
        if p[0]:
            fwd = _Spec(None, _STREAMLOCAL, v[0], connect_host="socks")
        else:
            fwd = _Spec(None, _a2port(v[0]), connect_host="socks")
    elif len(fields) == 2:
        if p[0] and p[1]:
            fwd = _Spec(None, _STREAMLOCAL, v[0], None, _STREAMLOCAL, v[1])
        elif p[1]:
            fwd = _Spec(None, _a2port(v[0]), None, None, _STREAMLOCAL, v[1])
        else:
            fwd = _Spec(v[0], _a2port(v[1]), connect_host="socks")
    elif len(fields) == 3:
        if p[0]:
            fwd = _Spec(None, _STREAMLOCAL, v[0], v[1], _a2port(v[2]))
        elif p[2]:
            fwd = _Spec(v[0], _a2port(v[1]), None, None, _STREAMLOCAL, v[2])
        else:
            fwd = _Spec(None, _a2port(v[0]), None, v[1], _a2port(v[2]))
    elif len(fields) == 4:
        fwd = _Spec(v[0], _a2port(v[1]), None, v[2], _a2port(v[3]))
    else:
        return None
    if dynamic:
        if len(fields) not in (1, 2):
            return None
    else:
        if len(fields) not in (3, 4) and fwd.connect_path is None and fwd.listen_path is None:
            return None
        if fwd.connect_port <= 0 and fwd.connect_path is None:
            return None
    if fwd.listen_port < 0 and fwd.listen_path is None:
        return None
    if not remote and fwd.listen_port == 0:
        return None
    if _too_long(fwd.connect_host, _MAX_HOST) or _too_long(fwd.listen_host, _MAX_HOST):
        return None
    if _too_long(fwd.connect_path, _SUN_PATH) or _too_long(fwd.listen_path, _SUN_PATH):
        return None
    return fwd


def _forward(fwd: _Spec, kind: type[LocalForward]) -> LocalForward:
    return kind(
        fwd.listen_host,
        0 if fwd.listen_path is not None else fwd.listen_port,
        fwd.connect_host or "",
        0 if fwd.connect_path is not None else fwd.connect_port,
        fwd.listen_path,
        fwd.connect_path,
    )


def _local(fwd: _Spec) -> LocalForward:
    return _forward(fwd, LocalForward)


def _remote(fwd: _Spec) -> RemoteForward:
    if fwd.socks and fwd.listen_path is None:  # -R [bind_address:]port alone
        return RemoteDynamicForward(fwd.listen_host, fwd.listen_port)
    # a socket path alone is no SOCKS proxy: ssh has the server listen there and
    # connects each connection on to "socks" port 0, which fails
    forward = _forward(fwd, RemoteForward)
    assert isinstance(forward, RemoteForward)
    return forward


def _bad(kind: str, spec: str, limit: int = 1 << 20) -> FormatError:
    """ssh's words for a bad -L, -R or -D (its fatal() shows the spec as it logs)."""
    from keytool.display import logged

    return FormatError(f"Bad {kind} forwarding specification '{logged(spec, limit)}'")


def parse_dynamic_forward(spec: str) -> DynamicForward:
    """``[bind_address:]port`` or a socket path, as ``ssh -D`` takes it for a SOCKS
    proxy (``port:/path`` and ``/path:/path``: see parse_dynamic_spec)."""
    fwd = _ssh_parse(spec, dynamic=True, remote=False)
    if fwd is None or not fwd.socks:
        raise _bad("dynamic", spec, 100)
    port = 0 if fwd.listen_path is not None else fwd.listen_port
    return DynamicForward(fwd.listen_host, port, fwd.listen_path)


def parse_dynamic_spec(spec: str) -> LocalForward:
    """A ``-D`` or DynamicForward spec as ssh takes it: a SOCKS proxy
    (parse_dynamic_forward), or ``port:/path`` and ``/path:/path``, which ssh reads as
    the -L they mean (a forward to the server's socket, no SOCKS)."""
    fwd = _ssh_parse(spec, dynamic=True, remote=False)
    if fwd is not None and fwd.connect_path is not None:
        return _local(fwd)
    return parse_dynamic_forward(spec)


def parse_local_forward(spec: str) -> LocalForward:
    """``[bind_address:]port:host:hostport``, as ``ssh -L`` takes it (either side may
    be a socket path)."""
    fwd = _ssh_parse(spec, dynamic=False, remote=False)
    if fwd is None:
        raise _bad("local", spec)
    return _local(fwd)


def parse_remote_forward(spec: str) -> RemoteForward:
    """``[bind_address:]port:host:hostport``, as ``ssh -R`` takes it (port may be 0;
    either side may be a socket path); ``[bind_address:]port`` alone, a SOCKS proxy at
    the server's end (RemoteDynamicForward). As ssh: the spec of a forward first, then
    of a dynamic one."""
    fwd = _ssh_parse(spec, dynamic=False, remote=True)
    if fwd is None:
        fwd = _ssh_parse(spec, dynamic=True, remote=True)
    if fwd is None:
        raise _bad("remote", spec)
    return _remote(fwd)


def expand_spec(spec: str) -> str:
    """A forward's ``${NAME}``s as ssh's parse_forward expands them (dollar_expand,
    from this process's environment); FormatError with ssh's words when one has no
    value, no name or no closing brace."""
    import os

    if "${" not in spec:
        return spec
    from keytool.display import logged

    out: list[str] = []
    missing: list[str] = []
    i = 0
    while i < len(spec):
        if spec.startswith("${", i):
            end = spec.find("}", i + 2)
            if end < 0:
                rest = logged(spec[i + 2 :])
                raise FormatError(f"environment variable '{rest}' missing closing '}}'")
            if end == i + 2:
                raise FormatError("zero-length environment variable")
            name = spec[i + 2 : end]
            value = os.environ.get(name)
            if value is None:
                missing.append(name)
            else:
                out.append(value)
            i = end + 1
            continue
        out.append(spec[i])
        i += 1
    if missing:
        raise FormatError(f"env var ${{{logged(missing[0])}}} has no value")
    return "".join(out)


def parse_forward_option(keyword: str, args: list[str]) -> tuple[str, str]:
    """A LocalForward, RemoteForward or DynamicForward line's values (one or two; an
    empty second RemoteForward value is none, as ssh takes it) as one ``-L``, ``-R``
    or ``-D`` spec that means the same, and what tells it from another (as ssh's
    forward_equals): FormatError when ssh says it is a bad forwarding specification.

    A DynamicForward of a port (or socket) and a path is the LocalForward it means,
    as ssh reads it: its key starts with "LocalForward ".

    As readconf.c: a RemoteForward of one value is a SOCKS proxy at the server's end
    (``[bind_address:]port``) when it is no forward to a socket; two values are joined
    with ':' and must be a forward (``[bind_address:]port host:hostport``), never a
    SOCKS proxy, though "A:B" alone would be one."""
    remote = keyword == "RemoteForward"
    single = keyword == "DynamicForward" or (remote and (len(args) == 1 or args[1] == ""))
    spec = expand_spec(args[0] if single else f"{args[0]}:{args[1]}")
    fwd = _ssh_parse(spec, dynamic=single, remote=remote)
    if fwd is None:
        raise FormatError(f"bad {keyword} spec")
    if keyword == "DynamicForward" and not fwd.socks:
        # port:/path or /path:/path: the LocalForward it means, as ssh reads it (the
        # key says so: the caller keeps it with the LocalForward lines)
        local = _local(fwd)
        return spec, f"{type(local).__name__} {local.describe()}"
    if keyword == "DynamicForward":
        forward: LocalForward = parse_dynamic_forward(spec)
        reparse: Callable[[str], LocalForward] = parse_dynamic_forward
    elif remote:
        forward, reparse = _remote(fwd), parse_remote_forward
    else:
        forward, reparse = _local(fwd), parse_local_forward
    key = f"{type(forward).__name__} {forward.describe()}"
    if single and fwd.listen_path is None:
        # the same forward written as ssh -G shows it, as kept since ever
        label = forward.listen_label
        with contextlib.suppress(FormatError):
            if reparse(label) == forward:
                return label, key
    return spec, key

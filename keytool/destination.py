"""Where to connect: ``[user@]host`` or ``ssh://…`` and ssh's command line flags,
resolved with the config files (-F, ~/.ssh/config) into one ResolvedConfig.

Kept apart from session.py so that ``keytool exec`` can learn the host and port and
open the TCP connection before importing the SSH machinery.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from keytool.errors import KeytoolError
from keytool.record import Record, init

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keytool.sshconfig_resolved import ResolvedConfig


class Destination(Record):
    __slots__ = ("host", "port", "user")
    user: str | None
    host: str
    port: int | None

    def __init__(self, user: str | None, host: str, port: int | None) -> None:
        init(self, user=user, host=host, port=port)


def parse_destination(text: str) -> Destination:
    """``[user@]host`` or ``ssh://[user@]host[:port]`` (ssh(1) DESTINATION)."""
    port: int | None = None
    if text.startswith("ssh://"):
        rest = text[len("ssh://") :].rstrip("/")
        # as ssh's parse_uri: the user up to the first '@', its ";" connection
        # parameters left out, and an empty one refused
        user, at, hostport = rest.partition("@")
        if not at:
            user, hostport = "", rest
        user = user.partition(";")[0]
        if at and not user:
            raise KeytoolError(f"bad destination {text!r}: empty user name in ssh:// URI")
        if hostport.startswith("["):
            host, _, tail = hostport[1:].partition("]")
            port_text = tail[1:] if tail.startswith(":") else ""
        else:
            host, _, port_text = hostport.partition(":")
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise KeytoolError(f"bad port in destination {text!r}")
            port = int(port_text)
        # as ssh's parse_uri: the host a domain name (an IPv6 address is not one: ssh
        # prints its usage), a trailing '.' dropped; the user %-decoded
        if not valid_domain(host):
            raise KeytoolError(f"bad destination {text!r}: bad host name in ssh:// URI")
        return Destination(_uri_decode(user, text) if at else None, host.removesuffix("."), port)
    user, at, host = text.rpartition("@")
    if not host or (at and not user):
        raise KeytoolError(f"bad destination {text!r}: expected [user@]host")
    return Destination(user if at else None, host, port)


def valid_domain(name: str) -> bool:
    """ssh's valid_domain: a letter or digit first, then letters, digits, '.', '-' and
    '_', no two '.' together (a trailing '.' allowed)."""
    if not name or not (name[0].isascii() and name[0].isalnum()):
        return False
    if ".." in name:
        return False
    return all((c.isascii() and c.isalnum()) or c in ".-_" for c in name)


def _uri_decode(text: str, uri: str) -> str:
    """%XX in an ssh:// URI's user, as ssh's urldecode (a bad escape or NUL refused)."""
    if "%" not in text:
        return text
    out = bytearray()
    at = 0
    raw = text.encode("utf-8", "surrogateescape")
    while at < len(raw):
        if raw[at : at + 1] == b"%":
            digits = raw[at + 1 : at + 3]
            try:
                if len(digits) != 2 or not digits.isalnum():
                    raise ValueError
                value = int(digits, 16)
            except ValueError:
                raise KeytoolError(f"bad destination {uri!r}: bad %-escape") from None
            if value == 0:
                raise KeytoolError(f"bad destination {uri!r}: bad %-escape")
            out.append(value)
            at += 3
        else:
            out += raw[at : at + 1]
            at += 1
    return out.decode("utf-8", "surrogateescape")


#: characters ssh refuses in a destination's host name and user (shell metacharacters a
#: %h or %r token would hand to a ProxyCommand or LocalCommand; the comma too, which
#: would make known_hosts patterns of a name)
_BAD_HOST_CHARS = frozenset("'`\"$\\;&<>|(){},")
_BAD_USER_CHARS = frozenset("'`\";&<>|(){}")


def check_names(host: str, user: str | None) -> None:
    """ssh's checks of the command line's host name and user, in its words. The host
    name's bytes are checked as ssh checks them: none of a few shell characters, no
    ASCII control or white space; any other byte (one of a UTF-8 character too) goes."""
    if host.startswith("-") or any(
        b < 0x20 or b == 0x7F or chr(b) in _BAD_HOST_CHARS or chr(b) == " "
        for b in host.encode("utf-8", "surrogateescape")
    ):
        raise KeytoolError("hostname contains invalid characters")
    if user and (
        user.startswith("-")
        or user.endswith("\\")
        or any(c in _BAD_USER_CHARS for c in user)
        or any(c.isspace() and user[i + 1 : i + 2] == "-" for i, c in enumerate(user))
    ):
        raise KeytoolError("remote username contains invalid characters")


def resolve_command_line(
    destination: str,
    *,
    port: int | None = None,
    identity_files: Sequence[str] = (),
    options: Sequence[str] = (),
    config_file: str | None = None,
    login: str | None = None,
    warn: Callable[[str], None] | None = None,
    local_forwards: Sequence[str] = (),
    remote_forwards: Sequence[str] = (),
    dynamic_forwards: Sequence[str] = (),
    given_order: Sequence[str] | None = None,
) -> ResolvedConfig:
    """ssh's command line (-l, -p, -i, -L, -o, -F and the destination) and its config
    files, resolved as ssh does: the first value wins; -l and -p against -o User= and
    -o Port= in the order given (``given_order``: the options' dests as typed; without
    it, -l and -p first), the destination's user and port after them all, the config
    files last."""
    from keytool import sshconfig
    from keytool.errors import FormatError
    from keytool.forwardspec import (
        RemoteDynamicForward,
        parse_dynamic_forward,
        parse_local_forward,
        parse_remote_forward,
    )

    # any bytes, as ssh takes them: a user name that is not UTF-8 goes to the server as
    # those bytes, a Host alias that is not matches a config's Host line of the same bytes
    target = parse_destination(destination)
    overrides: list[str] = []
    check_names(target.host, login or target.user)
    overrides.extend(f"IdentityFile={path}" for path in identity_files)
    for keyword, specs, parse in (
        ("LocalForward", local_forwards, parse_local_forward),
        ("RemoteForward", remote_forwards, parse_remote_forward),
        ("DynamicForward", dynamic_forwards, parse_dynamic_forward),
    ):
        for spec in specs:
            try:
                forward = parse(spec)
            except FormatError as exc:
                raise KeytoolError(str(exc)) from None
            # a SOCKS proxy at the server's end is a RemoteForward line of one value
            value = (
                forward.listen_label
                if isinstance(forward, RemoteDynamicForward)
                else forward.describe()
            )
            overrides.append(f"{keyword}={value}")
    from keytool.sshconfig_words import quote_arg

    given = list(options)  # a user as given, blanks and all, as ssh takes -l
    flags = [(f"User={quote_arg(login)}", "login")] if login else []
    if port is not None:
        flags.append((f"Port={port}", "port"))
    # as ssh: the destination's user and port where it was typed among the options (the
    # first value wins: -l, -p and -o after it count for nothing), else after them all
    placed = given_order is not None and "destination" in given_order
    last: list[str] = []
    for line, wanted in (
        (f"User={quote_arg(target.user or '')}", target.user),
        (f"Port={target.port}", target.port),
    ):
        if wanted is not None and wanted != "":
            if placed:
                flags.append((line, "destination"))
            elif not (login if line.startswith("User=") else port is not None):
                last.append(line)

    def where(flag: tuple[str, str]) -> tuple[int, int]:
        index = given_order.index(flag[1]) if given_order and flag[1] in given_order else 0
        return _options_before(given_order, flag[1]), index

    # each inserted before the -o options after it, the one given first ending first
    for line, dest in sorted(flags, key=where, reverse=True):
        given.insert(_options_before(given_order, dest), line)
    overrides.extend(given)
    overrides.extend(last)
    resolved = sshconfig.load(target.host, config_file=config_file, overrides=overrides)
    if warn is not None:
        for warning in resolved.warnings:
            warn(warning)
    return resolved


def _options_before(given_order: Sequence[str] | None, dest: str) -> int:
    """How many -o options were given before the first ``dest`` flag (0 when unknown)."""
    if given_order is None or dest not in given_order:
        return 0
    return given_order[: given_order.index(dest)].count("option")


def parse_hosts_file(text: str) -> list[str]:
    """A hosts file (copy-id --hosts): one destination per line; blank lines and
    ``#`` comments are skipped."""
    found: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if len(line.split()) != 1:
            raise KeytoolError(f"hosts file line {number}: expected one [user@]host, got {line!r}")
        found.append(line)
    return found

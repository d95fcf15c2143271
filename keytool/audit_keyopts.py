"""authorized_keys options as sshd reads them (OpenSSH's sshauthopt_parse and
auth_authorise_keyopts): a line whose options sshd refuses, or whose expiry-time has
passed, never lets its key in, though the key itself is fine. Pure, but for the
clock and the local time zone (expiry-time without Z is local time, as for sshd).
"""

from __future__ import annotations

import socket

#: flags sshd knows; ``no-`` may come before those marked True
_FLAGS = (
    ("restrict", False),
    ("cert-authority", False),
    ("port-forwarding", True),
    ("agent-forwarding", True),
    ("x11-forwarding", True),
    ("touch-required", True),
    ("verify-required", True),
    ("pty", True),
    ("user-rc", True),
)
_TUN_MAX = 0x7FFFFFFF - 2  # SSH_TUNID_MAX
_MAX_HOST = 1025  # NI_MAXHOST


class _Refused(Exception):
    pass


def refusal(options: str, now: float) -> str | None:
    """Why sshd passes over a key line with ``options`` (as written before the key) at
    time ``now``, or None if it takes the line."""
    try:
        expires, principals, authority = _parse(options)
    except _Refused as exc:
        return f"bad key options: {exc}"
    if expires is not None and expires < now:
        return "its expiry-time has passed"
    if principals and not authority:
        return "principals on a key that is not a cert-authority"
    return None


def _flag(text: str, name: str, negate: bool) -> tuple[int, int] | None:
    """(length used, 1 or 0) when ``text`` starts with the flag, as opt_flag: a prefix,
    case-insensitive."""
    lowered = text.lower()
    start = 3 if negate and lowered.startswith("no-") else 0
    if lowered.startswith(name, start):
        return start + len(name), 0 if start else 1
    return None


def _dequote(text: str) -> tuple[str, str]:
    """opt_dequote: a value in double quotes (``\\"`` is a quote); the rest after it."""
    if not text.startswith('"'):
        raise _Refused("missing start quote")
    out: list[str] = []
    i = 1
    while i < len(text) and text[i] != '"':
        if text[i] == "\\" and text[i + 1 : i + 2] == '"':
            i += 1
        out.append(text[i])
        i += 1
    if i >= len(text):
        raise _Refused("missing end quote")
    return "".join(out), text[i + 1 :]


def _parse(opts: str) -> tuple[float | None, bool, bool]:
    """(expiry time, principals given, cert-authority) or _Refused, as sshauthopt_parse."""
    expires: float | None = None
    principals = authority = False
    seen: set[str] = set()
    while opts and opts[0] not in " \t":
        for name, negate in _FLAGS:
            found = _flag(opts, name, negate)
            if found is not None:
                opts = opts[found[0] :]
                authority = authority or (name == "cert-authority" and found[1] == 1)
                break
        else:
            name, eq, rest = opts.partition("=")
            name = name.lower()
            if not eq or name not in _VALUED:
                raise _Refused("unknown key option")
            value, opts = _dequote(rest)
            if name in ("command", "principals", "from"):
                if name in seen:
                    raise _Refused(f'multiple "{name}" clauses')
                seen.add(name)
                principals = principals or name == "principals"
            elif name == "expiry-time":
                when = _absolute_time(value)
                expires = when if expires is None else min(expires, when)
            elif name == "environment":
                key, has_eq, _ = value.partition("=")
                if not has_eq or not key or not all(c.isalnum() or c == "_" for c in key):
                    raise _Refused("invalid environment string")
            elif name in ("permitopen", "permitlisten"):
                _permit(value, name == "permitlisten")
            elif name == "tunnel" and value.lower() != "any" and not _number(value, _TUN_MAX):
                raise _Refused("invalid tun device")
        if not opts or opts[0] in " \t":
            break
        if opts[0] != ",":
            raise _Refused("unknown key option")
        opts = opts[1:]
        if not opts:
            raise _Refused("unexpected end-of-options")
    return expires, principals, authority


_VALUED = frozenset(
    ("command", "principals", "from", "expiry-time", "environment", "permitopen",
     "permitlisten", "tunnel")
)  # fmt: skip


def _number(text: str, top: int) -> bool:
    """strtonum(text, 0, top): decimal, an optional sign, within range."""
    body = text[1:] if text[:1] in "+-" else text
    return body.isascii() and body.isdigit() and 0 <= int(text) <= top


def _permit(value: str, bare_port: bool) -> None:
    """handle_permit: host:port (host may be [v6]); permitlisten takes a bare port."""
    if bare_port and ":" not in value:
        value = f"*:{value}"
    if value.startswith("["):
        close = value.find("]")
        if close < 0:
            raise _Refused("invalid permission hostname")
        host, sep, port = value[: close + 1], value[close + 1 : close + 2], value[close + 2 :]
        if sep not in ("", ":", "/"):
            raise _Refused("invalid permission hostname")
    else:
        cut = min((i for i in (value.find(":"), value.find("/")) if i >= 0), default=-1)
        host, sep, port = (value, "", "") if cut < 0 else (value[:cut], "x", value[cut + 1 :])
    if len(host.encode()) >= _MAX_HOST:
        raise _Refused("invalid permission hostname")
    if not sep or (port != "*" and not _port(port)):
        raise _Refused("invalid permission port")


def _port(text: str) -> bool:
    """a2port(text) > 0: a number 1-65535 or a tcp service name."""
    if _number(text, 65535):
        return int(text) > 0
    try:
        return socket.getservbyname(text, "tcp") > 0
    except OSError:
        return False


def _absolute_time(text: str) -> float:
    """parse_absolute_time: YYYYMMDD[HHMM[SS]], with Z or UTC for UTC, else local."""
    import calendar
    import time

    utc = False
    if len(text) > 1 and text[-1:].lower() == "z":
        text, utc = text[:-1], True
    elif len(text) > 3 and text[-3:].lower() == "utc":
        text, utc = text[:-3], True
    if len(text) not in (8, 12, 14) or not (text.isascii() and text.isdigit()):
        raise _Refused("invalid expires time")
    fields = [int(text[:4])] + [int(text[i : i + 2]) for i in range(4, len(text), 2)]
    fields += [0] * (6 - len(fields))
    year, month, day, hour, minute, second = fields
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59):
        raise _Refused("invalid expires time")
    if second > 61:
        raise _Refused("invalid expires time")
    parts = (year, month, day, hour, minute, second, 0, 0, -1)
    try:
        when = calendar.timegm(parts) if utc else time.mktime(parts)
    except (OverflowError, ValueError):
        raise _Refused("invalid expires time") from None
    if when <= 0:
        raise _Refused("invalid expires time")
    return float(when)

"""What ``keytool cert -s`` is asked for, read from its command line as ssh-keygen reads
the same flags: the validity window (-V), the options (-O), the serial (-z) and the
principals (-n). Pure: no files, no keys; the clock is an argument.

-V takes ``+SPAN`` (from a minute ago, rounded down to the minute, to now + SPAN) or
``FROM:TO``, each side a ``+SPAN`` / ``-SPAN`` relative to now, a date ``YYYYMMDD``,
``YYYYMMDDHHMM`` or ``YYYYMMDDHHMMSS`` in local time (UTC with a trailing ``Z`` or
``UTC``), a ``0x`` hexadecimal number of seconds, or ``always`` (FROM) / ``forever``
(TO). A SPAN is sshd_config's time format: ``90``, ``30m``, ``1h30m``, ``52w``.
"""

from __future__ import annotations

import socket
import string
from collections.abc import Iterable

from keytool.errors import KeytoolError, UsageError
from keytool.keys.cert import DEFAULT_EXTENSIONS, FLAG_OPTIONS, FOREVER, MAX_PRINCIPALS, Option

#: ssh-keygen's time spans are C ints
_MAX_SPAN = 0x7FFFFFFF
_MAX_U64 = 0xFFFFFFFFFFFFFFFF
_DATE_LENGTHS = {8: "date", 12: "date and time", 14: "date and time"}

# the flag options -O turns on and off; their names in the certificate
X11 = "permit-X11-forwarding"
AGENT = "permit-agent-forwarding"
PORT = "permit-port-forwarding"
PTY = "permit-pty"
USER_RC = "permit-user-rc"
NO_TOUCH = "no-touch-required"
VERIFY = "verify-required"
USER_DEFAULTS = frozenset(DEFAULT_EXTENSIONS)
_CRITICAL_FLAGS = frozenset(FLAG_OPTIONS)

#: -O word (lower case) -> (flag, set it?)
_FLAG_WORDS = {
    "no-x11-forwarding": (X11, False),
    "permit-x11-forwarding": (X11, True),
    "no-agent-forwarding": (AGENT, False),
    "permit-agent-forwarding": (AGENT, True),
    "no-port-forwarding": (PORT, False),
    "permit-port-forwarding": (PORT, True),
    "no-pty": (PTY, False),
    "permit-pty": (PTY, True),
    "no-user-rc": (USER_RC, False),
    "permit-user-rc": (USER_RC, True),
    "touch-required": (NO_TOUCH, False),
    "no-touch-required": (NO_TOUCH, True),
    "no-verify-required": (VERIFY, False),
    "verify-required": (VERIFY, True),
}


# ---- -V


def parse_span(text: str) -> int:
    """Seconds in a time span as ssh-keygen reads one (``1h30m``); UsageError if not."""
    from keytool.duration import parse_seconds

    if not text or any(c.isspace() for c in text):
        raise UsageError(f"invalid time span {text!r}: use e.g. 3600, 90m, 1h30m or 52w")
    try:
        seconds = parse_seconds(text)
    except KeytoolError:
        raise UsageError(f"invalid time span {text!r}: use e.g. 3600, 90m, 1h30m or 52w") from None
    if seconds > _MAX_SPAN:
        raise UsageError(f"time span {text!r} is too long (at most {_MAX_SPAN} seconds)")
    return seconds


def parse_absolute_time(text: str) -> int:
    """Seconds since the epoch of ``YYYYMMDD[HHMM[SS]]``, local time, or UTC with a
    trailing ``Z`` or ``UTC`` (either case), as ssh-keygen reads -V dates.

    Like ssh-keygen (strptime, then mktime with daylight saving time off), a day past
    the month's end rolls into the next month; before 1970 is an error."""
    import calendar
    import time

    digits, utc = text, False
    if len(text) > 1 and text[-1:].lower() == "z":
        digits, utc = text[:-1], True
    elif len(text) > 3 and text[-3:].lower() == "utc":
        digits, utc = text[:-3], True
    if len(digits) not in _DATE_LENGTHS or not all(c in string.digits for c in digits):
        raise UsageError(f"invalid time {text!r}: use YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS")
    fields = [int(digits[:4]), int(digits[4:6]), int(digits[6:8])]
    fields += [int(digits[i : i + 2]) for i in range(8, len(digits), 2)]
    fields += [0] * (6 - len(fields))
    year, month, day, hour, minute, second = fields
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 61):
        raise UsageError(f"invalid time {text!r}: a field is out of range")
    try:
        if utc:
            seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        else:
            seconds = int(time.mktime((year, month, day, hour, minute, second, 0, 0, 0)))
    except (OverflowError, ValueError):
        seconds = -1
    if seconds < 0:
        raise UsageError(f"invalid time {text!r}: before 1970")
    return seconds


def _parse_hex(text: str) -> int:
    digits = text[2:]
    if not digits or not all(c in string.hexdigits for c in digits):
        raise UsageError(f"invalid time {text!r}: not a hexadecimal number")
    value = int(digits, 16)
    if value > _MAX_U64:
        raise UsageError(f"invalid time {text!r}: more than 64 bits")
    return value


def _relative(text: str, now: int) -> int:
    seconds = parse_span(text[1:])
    if text[0] == "-":
        if seconds > now:
            raise UsageError(f"time {text!r} would be before 1970")
        return now - seconds
    return now + seconds


def _side(text: str, now: int, open_word: str, open_value: int) -> int:
    if text[0] in "+-":
        return _relative(text, now)
    if text == open_word:
        return open_value
    if text.startswith("0x"):
        return _parse_hex(text)
    return parse_absolute_time(text)


def parse_validity(text: str, now: int) -> tuple[int, int]:
    """(valid_after, valid_before) for -V ``text`` at time ``now``."""
    if text.startswith("+") and ":" not in text:
        try:
            span = parse_span(text[1:])
        except UsageError as exc:
            raise UsageError(f"invalid -V {text!r}: {exc}") from None
        # a minute back, rounded down to the minute: clocks that lag a little agree
        return (now - 59) // 60 * 60, now + span
    start, colon, end = text.partition(":")
    if not colon or not start or not end:
        raise UsageError(f"invalid -V {text!r}: use +SPAN or FROM:TO (e.g. +52w, -1d:+4w)")
    try:
        valid_after = _side(start, now, "always", 0)
    except UsageError as exc:
        raise UsageError(f"invalid -V start {start!r}: {exc}") from None
    try:
        valid_before = _side(end, now, "forever", FOREVER)
    except UsageError as exc:
        raise UsageError(f"invalid -V end {end!r}: {exc}") from None
    if valid_before <= valid_after:
        raise UsageError(f"invalid -V {text!r}: the validity interval is empty")
    return valid_after, valid_before


# ---- -z and -n


def parse_serial(text: str) -> tuple[int, bool]:
    """-z: the serial number, and whether it goes up by one per key (a leading ``+``)."""
    increment = text.startswith("+")
    digits = text[1:] if increment else text
    if not digits or not all(c in string.digits for c in digits) or int(digits) > _MAX_U64:
        raise UsageError(f"invalid serial number {text!r}: use a number, or +NUMBER")
    return int(digits), increment


def parse_principals(text: str) -> tuple[str, ...]:
    """-n: comma-separated principals (user or host names)."""
    names = tuple(text.split(","))
    if any(not name for name in names):
        raise UsageError(f"empty principal name in -n {text!r}")
    if len(names) > MAX_PRINCIPALS:
        raise UsageError(f"too many principals in -n (at most {MAX_PRINCIPALS})")
    return names


# ---- -O


_CIDR_CHARS = frozenset("0123456789abcdefABCDEF.:/")
_MAX_CIDR_ENTRY = 46 + 3  # INET6_ADDRSTRLEN and a mask length


def _address_bits(text: str) -> tuple[int, int] | None:
    """(value, width) of a numeric IPv4 or IPv6 address, as getaddrinfo reads it."""
    import ipaddress

    if not text:
        return None
    try:
        found = socket.getaddrinfo(text, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    family, *_, sockaddr = found[0]
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
    return int(address), address.max_prefixlen


def check_cidr_list(text: str) -> None:
    """A source-address list as sshd will read it: addresses or networks (``a/len``,
    no host bits set), comma-separated; UsageError naming the entry that is not."""
    for entry in text.split(","):
        if not entry:
            raise UsageError(f"invalid source-address list {text!r}: an empty entry")
        if len(entry) > _MAX_CIDR_ENTRY:
            raise UsageError(f"invalid source-address entry {entry[:100]!r}: too long")
        if not set(entry) <= _CIDR_CHARS:
            raise UsageError(f"invalid source-address entry {entry!r}: not an address")
        address, slash, mask = entry.partition("/")
        if slash and (not mask or not all(c in string.digits for c in mask) or int(mask) > 128):
            raise UsageError(f"invalid source-address entry {entry!r}: bad mask length")
        found = _address_bits(address)
        if found is None:
            raise UsageError(f"invalid source-address entry {entry!r}: not an address")
        value, width = found
        length = int(mask) if slash else width
        if length > width or value & ((1 << (width - length)) - 1):
            raise UsageError(
                f"invalid source-address entry {entry!r}: the mask length does not fit the address"
            )


def _prefixed(word: str, prefix: str) -> str | None:
    return word[len(prefix) :] if word[: len(prefix)].lower() == prefix else None


def cert_options(words: Iterable[str], host: bool) -> tuple[list[Option], list[Option]]:
    """(critical options, extensions) for the -O words, in order, as ssh-keygen sets
    them: a user certificate starts with the five permit-* extensions, a host
    certificate with none. Names are matched without regard to case."""
    flags = set() if host else set(USER_DEFAULTS)
    force_command: str | None = None
    source_address: str | None = None
    custom: list[tuple[bool, Option]] = []
    for word in words:
        lowered = word.lower()
        if lowered == "clear":
            flags.clear()
        elif lowered in _FLAG_WORDS:
            flag, on = _FLAG_WORDS[lowered]
            (flags.add if on else flags.discard)(flag)
        elif (value := _prefixed(word, "force-command=")) is not None:
            if not value:
                raise UsageError("empty -O force-command")
            if force_command is not None:
                raise UsageError("-O force-command is given twice")
            force_command = value
        elif (value := _prefixed(word, "source-address=")) is not None:
            if not value:
                raise UsageError("empty -O source-address")
            if source_address is not None:
                raise UsageError("-O source-address is given twice")
            check_cidr_list(value)
            source_address = value
        elif (rest := _prefixed(word, "extension:")) is not None or (
            rest := _prefixed(word, "critical:")
        ) is not None:
            critical = lowered.startswith("critical:")
            name, equals, value = rest.partition("=")
            if not name:
                raise UsageError(f"-O {word!r} names no option")
            custom.append((critical, Option.text(name, value) if equals else Option(name)))
        else:
            raise UsageError(f"unknown certificate option -O {word!r}")
    critical_options: list[Option] = []
    extensions: list[Option] = []
    if force_command is not None:
        critical_options.append(Option.text("force-command", force_command))
    if source_address is not None:
        critical_options.append(Option.text("source-address", source_address))
    for flag in sorted(flags):
        (critical_options if flag in _CRITICAL_FLAGS else extensions).append(Option(flag))
    for critical, option in custom:
        _add(critical_options if critical else extensions, option, critical)
    return (
        sorted(critical_options, key=lambda o: (o.name, o.data)),
        sorted(extensions, key=lambda o: (o.name, o.data)),
    )


def _add(options: list[Option], option: Option, critical: bool) -> None:
    """One more option; the same one twice is kept once, the same name with another
    value is an error (a certificate names each option once)."""
    for present in options:
        if present.name == option.name:
            if present.data == option.data:
                return
            what = "critical option" if critical else "extension"
            raise UsageError(f"{what} {option.name!r} is given twice with different values")
    options.append(option)

"""allowed_signers files (ssh-keygen(1) ALLOWED SIGNERS), pure: who may sign what.

A line is ``principals [options] keytype base64 [comment]``: principals are
comma-separated patterns (``*``, ``?``, ``!``) matched against the identity asked for;
the options, as in authorized_keys, are ``namespaces="git,file"`` (patterns of the
namespaces the key may sign for), ``valid-after=`` and ``valid-before=`` (a
``YYYYMMDD[HHMM[SS]]`` time, UTC with a ``Z``, local time otherwise) and
``cert-authority`` (a CA for certificates, which keytool does not verify: such a
line never allows a plain key).
"""

from __future__ import annotations

import calendar
import time

from keytool.authkeys import parse_line as parse_key_line
from keytool.errors import FormatError, UnsupportedKeyError
from keytool.keys.base import PublicKey
from keytool.patterns import match_any
from keytool.record import Record, init


class AllowedSigner(Record):
    """One line of an allowed_signers file."""

    __slots__ = (
        "cert_authority",
        "key",
        "line_number",
        "namespaces",
        "principals",
        "valid_after",
        "valid_before",
    )
    principals: str  # as written: comma-separated patterns
    key: PublicKey
    namespaces: str | None  # comma-separated patterns; None: any namespace
    cert_authority: bool
    valid_after: int | None  # Unix time
    valid_before: int | None
    line_number: int

    def __init__(
        self,
        principals: str,
        key: PublicKey,
        namespaces: str | None,
        cert_authority: bool,
        valid_after: int | None,
        valid_before: int | None,
        line_number: int,
    ) -> None:
        init(
            self,
            principals=principals,
            key=key,
            namespaces=namespaces,
            cert_authority=cert_authority,
            valid_after=valid_after,
            valid_before=valid_before,
            line_number=line_number,
        )

    def allows(self, key: PublicKey, namespace: str | None, now: float) -> bool:
        """This line lets ``key`` sign for ``namespace`` (None: any) at ``now``."""
        if self.cert_authority or key != self.key:
            return False
        if (
            namespace is not None
            and self.namespaces is not None
            and not match_any(namespace, self.namespaces.split(","))
        ):
            return False
        if self.valid_after is not None and now < self.valid_after:
            return False
        return self.valid_before is None or now <= self.valid_before


def parse_time(value: str, where: str) -> int:
    """``YYYYMMDD[HHMM[SS]]``: UTC with a trailing ``Z``, local time otherwise."""
    utc = value.endswith(("Z", "z"))
    digits = value[:-1] if utc else value
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if not digits.isdigit() or len(digits) not in formats:
        raise FormatError(f"{where}: bad time {value!r} (YYYYMMDD[HHMM[SS]][Z])")
    try:
        parsed = time.strptime(digits, formats[len(digits)])
    except ValueError:
        raise FormatError(f"{where}: bad time {value!r}") from None
    return calendar.timegm(parsed) if utc else int(time.mktime(parsed))


def _options(text: str, where: str) -> tuple[str | None, bool, int | None, int | None]:
    namespaces: str | None = None
    cert_authority = False
    after = before = None
    for option in _split_commas(text):
        name, eq, value = option.partition("=")
        name = name.lower()
        if eq and len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if name == "cert-authority" and not eq:
            cert_authority = True
        elif name == "namespaces" and eq:
            namespaces = value
        elif name == "valid-after" and eq:
            after = parse_time(value, where)
        elif name == "valid-before" and eq:
            before = parse_time(value, where)
        else:
            raise FormatError(f"{where}: unknown option {option!r}")
    return namespaces, cert_authority, after, before


def _split_commas(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part]


def parse(text: str, source: str = "allowed_signers") -> list[AllowedSigner]:
    """Every line; a FormatError names the first bad one. Key types keytool does not
    use (security keys) are skipped."""
    signers = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source} line {number}"
        if line.startswith('"'):
            end = line.find('"', 1)
            if end < 0:
                raise FormatError(f"{where}: unterminated quote in the principals")
            principals, rest = line[1:end], line[end + 1 :]
        else:
            principals, _, rest = line.partition(" ")
        if not principals or not rest.strip():
            raise FormatError(f"{where}: expected 'principals [options] keytype base64'")
        try:
            entry = parse_key_line(rest.strip())
        except UnsupportedKeyError:
            continue
        except FormatError as exc:
            raise FormatError(f"{where}: {exc}") from None
        if entry is None:
            raise FormatError(f"{where}: no key")
        namespaces, cert_authority, after, before = _options(entry.options, where)
        signers.append(
            AllowedSigner(principals, entry.key, namespaces, cert_authority, after, before, number)
        )
    return signers


def principals_for(signers: list[AllowedSigner], key: PublicKey, now: float) -> list[str]:
    """The principals fields of the lines for ``key`` valid at ``now``, whatever their
    namespaces (as ssh-keygen -Y find-principals)."""
    return [s.principals for s in signers if s.allows(key, None, now)]


def allowed(
    signers: list[AllowedSigner], identity: str, key: PublicKey, namespace: str, now: float
) -> bool:
    """``identity`` may sign with ``key`` for ``namespace`` at ``now``."""
    return any(
        s.allows(key, namespace, now) and match_any(identity, s.principals.split(","))
        for s in signers
    )

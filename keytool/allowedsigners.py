"""allowed_signers files (ssh-keygen(1) ALLOWED SIGNERS), pure: who may sign what.

A line is ``principals [options] keytype base64 [comment]``: principals are
comma-separated patterns (``*``, ``?``, ``!``) matched against the identity asked for;
the options, as in authorized_keys, are ``namespaces="git,file"`` (patterns of the
namespaces the key may sign for), ``valid-after=`` and ``valid-before=`` (a
``YYYYMMDD[HHMM[SS]]`` time, UTC with a ``Z`` or ``UTC``, local time otherwise) and
``cert-authority``, read as ssh-keygen reads them (sshsig.c): values in double quotes,
each option at most once; a line whose options break that is a bad line.

A plain line names the signing key itself (a line may also hold a whole certificate,
which then matches only that certificate, as is, as in ssh-keygen). A
``cert-authority`` line names a CA: it matches a signature made with a certificate
that CA signed, never a plain key, and a plain line never matches a certificate. The
certificate must be a user certificate valid at the verify time that lists the identity
asked for among its principals (exactly, not as a pattern); the line's principals are
matched against that identity first, as for a plain key. Asked who signed (``-Y
find-principals``), a CA line answers with the certificate's principals that its
principal patterns match. The line's ``namespaces``, ``valid-after`` and
``valid-before`` apply to both kinds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from keytool.authkeys import parse_line as parse_key_line
from keytool.errors import FormatError, UnsupportedKeyError
from keytool.fields import c_line, skip_blanks
from keytool.keys.base import PublicKey
from keytool.keys.cert import Certificate
from keytool.patterns import match_any, match_pattern
from keytool.record import Record, init

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keytool.wire import Reader


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

    def check(
        self, key: PublicKey, identity: str | None, namespace: str | None, now: int
    ) -> tuple[str | None, str | None]:
        """Whether this line lets ``key`` sign as ``identity`` (None: anyone) for
        ``namespace`` (None: any) at ``now``: (the principals it grants, comma-separated,
        None) when it does; (None, why not) when the line is for this key but refuses;
        (None, None) when the line is not about this key or identity at all."""
        if identity is not None and not _matches(identity, self._patterns()):
            return None, None
        principals: str | None = self.principals
        if not self.cert_authority:
            if key != self.key:
                return None, None
        elif isinstance(key, Certificate) and key.ca.plain == self.key.plain:
            problem = key.problem(host=False, now=now, principal=identity)
            if problem is not None:
                return None, f"certificate not authorized: {problem}"
            if identity is None:
                principals = self._cert_principals(key)
                if principals is None:
                    return None, "no valid principals found"
        else:
            return None, None
        if (
            namespace is not None
            and self.namespaces is not None
            and not _matches(namespace, self.namespaces.split(","))
        ):
            return None, f"key is not permitted for use in signature namespace {namespace!r}"
        if self.valid_after is not None and now < self.valid_after:
            return None, "key is not yet valid"
        if self.valid_before is not None and now > self.valid_before:
            return None, "key has expired"
        return principals, None

    def _patterns(self) -> list[str]:
        return self.principals.split(",")

    def _cert_principals(self, cert: Certificate) -> str | None:
        """The certificate's principals each of this line's patterns matches, in order
        (a principal matched by two patterns comes twice), as ssh-keygen lists them."""
        found = [
            name
            for pattern in _until_empty(self._patterns())
            for name in cert.principals
            if match_pattern(_bytewise(name), _bytewise(pattern))
        ]
        return ",".join(found) if found else None


def _bytewise(text: str) -> str:
    """``text`` one character a byte (its UTF-8; bytes that are not UTF-8 were kept as
    surrogate escapes): ssh-keygen matches patterns byte by byte ("?" is one byte)."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def _matches(name: str, patterns: list[str]) -> bool:
    """``name`` matches the pattern list (ssh-keygen's match_pattern_list, for which an
    empty list, as the principals ``""``, matches no one, not even an empty name)."""
    if patterns == [""]:
        return False
    return match_any(_bytewise(name), [_bytewise(pattern) for pattern in patterns])


def _until_empty(parts: list[str]) -> list[str]:
    """The items before the first empty one (how ssh-keygen walks a comma list)."""
    return parts[: parts.index("")] if "" in parts else parts


def parse_time(value: str, where: str) -> int:
    """``YYYYMMDD[HHMM[SS]]``, UTC with a trailing ``Z`` or ``UTC``, local time otherwise,
    read as ssh-keygen reads it (certspec.parse_absolute_time); the epoch itself is
    refused, as by ssh-keygen (it stands for "not set" there)."""
    from keytool.certspec import parse_absolute_time
    from keytool.errors import UsageError

    try:
        seconds = parse_absolute_time(value)
    except UsageError:
        seconds = 0
    if seconds == 0:
        raise FormatError(f"{where}: invalid time {value!r}")
    return seconds


def _ascii_prefix(text: str, pos: int, name: str) -> bool:
    """``name`` at ``pos``, ASCII letters in any case (strncasecmp)."""
    part = text[pos : pos + len(name)]
    return part.isascii() and part.lower() == name


def _dequote(text: str, pos: int, where: str) -> tuple[str, int]:
    """A double-quoted value at ``pos`` (backslash-quote is a quote), and where it ends."""
    if text[pos : pos + 1] != '"':
        raise FormatError(f"{where}: bad options: missing start quote")
    value: list[str] = []
    i = pos + 1
    while i < len(text) and text[i] != '"':
        if text[i] == "\\" and text[i + 1 : i + 2] == '"':
            i += 1
        value.append(text[i])
        i += 1
    if i >= len(text):
        raise FormatError(f"{where}: bad options: missing end quote")
    return "".join(value), i + 1


def _options(text: str, where: str) -> tuple[str | None, bool, int | None, int | None]:
    """The option list as ssh-keygen reads it (sshsig.c): each option once, values in
    double quotes, nothing unknown, valid-before after valid-after. A line whose options
    say anything else is a bad line: it grants nothing."""
    namespaces: str | None = None
    cert_authority = False
    times: dict[str, int] = {}
    pos = 0
    while pos < len(text) and text[pos] not in " \t":
        if _ascii_prefix(text, pos, "cert-authority"):
            cert_authority = True
            pos += len("cert-authority")
        elif _ascii_prefix(text, pos, "namespaces="):
            if namespaces is not None:
                raise FormatError(f'{where}: bad options: multiple "namespaces" clauses')
            namespaces, pos = _dequote(text, pos + len("namespaces="), where)
        else:
            name = next(
                (n for n in ("valid-after", "valid-before") if _ascii_prefix(text, pos, n + "=")),
                None,
            )
            if name is not None:
                if name in times:
                    raise FormatError(f'{where}: bad options: multiple "{name}" clauses')
                value, pos = _dequote(text, pos + len(name) + 1, where)
                try:
                    times[name] = parse_time(value, where)
                except FormatError:  # in ssh-keygen's words
                    raise FormatError(f'{where}: bad options: invalid "{name}" time') from None
        if pos >= len(text) or text[pos] in " \t":
            break
        if text[pos] != ",":
            raise FormatError(f"{where}: bad options: unknown key option")
        pos += 1
        if pos >= len(text):
            raise FormatError(f"{where}: bad options: unexpected end-of-options")
    after, before = times.get("valid-after"), times.get("valid-before")
    if after is not None and before is not None and before <= after:
        raise FormatError(f'{where}: bad options: "valid-before" time is before "valid-after"')
    return namespaces, cert_authority, after, before


#: what separates the principals from the rest of a line (ssh-keygen's strdelimw)
_WHITESPACE = " \t\r\n"


def _principals(line: str) -> tuple[str, str] | None:
    """The first word of a line and the rest after the blanks following it, as
    ssh-keygen's strdelimw takes it: up to a blank, or a quoted part (its quotes
    dropped); None when the line holds no second word or a quote is not closed."""
    cut = next((i for i, ch in enumerate(line) if ch in _WHITESPACE or ch == '"'), -1)
    if cut < 0:
        return None
    if line[cut] == '"':
        end = line.find('"', cut + 1)
        if end < 0:
            return None
        return line[:cut] + line[cut + 1 : end], line[end + 1 :].lstrip(_WHITESPACE)
    return line[:cut], line[cut + 1 :].lstrip(_WHITESPACE)


def walk(
    text: str, source: str = "allowed_signers", identity: str | None = None
) -> Iterator[AllowedSigner | FormatError]:
    """The lines in order, each parsed only when the walk reaches it, as ssh-keygen reads
    the file: a bad line comes as the FormatError saying why (ssh-keygen reports it and
    goes on), so one stays unread past where the caller stops. With ``identity``, a
    line whose principals do not match it is passed over unparsed. A line of a key type
    keytool does not use (DSA, security keys, their certificates) is read as
    ssh-keygen reads it (its options checked) and skipped: it grants nothing."""
    for item in _walk(text, source, identity):
        if isinstance(item, FormatError) or not _foreign(item.key):
            yield item


def _foreign(key: PublicKey) -> bool:
    """A key of a line keytool reads but does not use (_read_by_openssh's)."""
    from keytool.keys.shown import ShownPublic

    return isinstance(key, ShownPublic)


def _walk(text: str, source: str, identity: str | None) -> Iterator[AllowedSigner | FormatError]:
    """walk(), the lines of keys keytool does not use included (match-principals
    lists them, as ssh-keygen does)."""
    # lines end at newlines only (ssh-keygen reads them with getline): any other line
    # break a comment may hold stays inside its line
    # only spaces and tabs are skipped at the start of a line (a line starting with a
    # carriage return holds an empty principal and is a bad line); a line ends at its
    # first NUL, as the C string ssh-keygen reads
    # a line keeps its newline, as getline gives it (not past a NUL, nor on a last line
    # that has none): ssh-keygen cuts the principals at it, so a line of one word holds
    # principals and no key ("missing key"), not an invalid line. (A blank line it
    # reads so too, and -Y find-principals says "missing key" of it: keytool passes
    # over blank lines in silence.)
    raws = text.split("\n")
    for number, raw in enumerate(raws, start=1):
        newline = number < len(raws) and "\0" not in raw
        line = skip_blanks(c_line(raw))
        if not line or line.startswith("#"):
            continue
        where = f"{source} line {number}"
        split = _principals(line + "\n" if newline else line)
        if split is None:
            yield FormatError(f"{where}: invalid line")
            continue
        principals, rest = split
        if identity is not None and not _matches(identity, principals.split(",")):
            continue  # (empty principals match no one)
        try:
            signer = _signer(principals, rest, where, number)
        except FormatError as exc:
            yield exc
            continue
        yield signer


def _signer(principals: str, line_rest: str, where: str, number: int) -> AllowedSigner:
    # line_rest keeps the line's newline (ssh-keygen's "invalid key" or "missing key"
    # depends on it: blanks then a newline after the options are an invalid key)
    rest = line_rest.removesuffix("\n")
    # principals may be empty (a line starting with a quoted "", or with a carriage
    # return): ssh-keygen takes them so, and such a line grants no one
    if not rest:
        raise FormatError(f"{where}: missing key")
    try:
        # the key and its options, cut as in authorized_keys (at spaces and tabs only)
        entry = parse_key_line(rest)
    except (UnsupportedKeyError, FormatError):
        # a DSA or security key, or a certificate of one: ssh-keygen reads the line
        # (it lists it for match-principals) though keytool verifies with none
        foreign = _read_by_openssh(rest)
        if foreign is not None:
            options, key = foreign
            namespaces, cert_authority, after, before = _options(options, where)
            return AllowedSigner(principals, key, namespaces, cert_authority, after, before, number)
        # a type no one knows (a damaged blob...): a bad line, said in ssh-keygen's words
        raise FormatError(f"{where}: {_unread(line_rest)}") from None
    if entry is None:  # the rest starts with a "#": no comment there for ssh-keygen
        raise FormatError(f"{where}: {_unread(line_rest)}")
    namespaces, cert_authority, after, before = _options(entry.options, where)
    return AllowedSigner(principals, entry.key, namespaces, cert_authority, after, before, number)


def _unread(rest: str) -> str:
    """Why ssh-keygen (sshsig.c) cannot read the key of a line it does not take: having
    failed to read ``rest`` as a key, it reads past the options and tries again."""
    from keytool.authkeys import split_options

    try:
        after = split_options(rest)[1]
    except FormatError:
        return "invalid options"
    return "invalid key" if after else "missing key"


_CERT = "-cert-v01@openssh.com"
_SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com"
#: the key types ssh-keygen reads and keytool does not use, as sshkey_read names them,
#: and the plain type each stands for (webauthn-sk-ecdsa-sha2-nistp256@openssh.com,
#: the name of a signature algorithm of sk-ecdsa keys, is read as one, whichever of the
#: two names the line and the blob give); for a certificate, how many strings the
#: certified key's fields are
_FOREIGN = {
    "ssh-dss": "ssh-dss",
    "sk-ssh-ed25519@openssh.com": "sk-ssh-ed25519@openssh.com",
    _SK_ECDSA: _SK_ECDSA,
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com": _SK_ECDSA,
}
_FOREIGN_CERTS = {
    "ssh-dss" + _CERT: ("ssh-dss", 4),
    "sk-ssh-ed25519" + _CERT: ("sk-ssh-ed25519@openssh.com", 2),
    "sk-ecdsa-sha2-nistp256" + _CERT: (_SK_ECDSA, 3),
}
#: certificates of the key types keytool uses, read here only when their CA is a DSA
#: or security key (keytool cannot use them: ssh-keygen reads them)
_FOREIGN_CA_CERTS = {
    "ssh-ed25519" + _CERT: ("ssh-ed25519", 1),
    "ssh-rsa" + _CERT: ("ssh-rsa", 2),
    "ecdsa-sha2-nistp256" + _CERT: ("ecdsa-sha2-nistp256", 2),
    "ecdsa-sha2-nistp384" + _CERT: ("ecdsa-sha2-nistp384", 2),
    "ecdsa-sha2-nistp521" + _CERT: ("ecdsa-sha2-nistp521", 2),
}


def _read_by_openssh(rest: str) -> tuple[str, PublicKey] | None:
    """The options and key of a line keytool does not use (``rest``: options, type,
    base64), read as ssh-keygen reads it (sshkey_read, then past the options and again):
    a DSA or security key, or a certificate of one, its blob whole and of the type its
    line names. None for anything else (an unknown type, a damaged blob)."""
    from keytool.authkeys import split_options
    from keytool.fields import split_blanks

    key = _foreign_key(split_blanks(rest, 2))
    if key is not None:
        return "", key
    try:
        options, after = split_options(rest)
    except FormatError:
        return None
    key = _foreign_key(split_blanks(after, 2))
    return None if key is None else (options, key)


def _foreign_key(parts: list[str]) -> PublicKey | None:
    """The key the words ``type base64 ...`` name, when it is one of _FOREIGN's or
    _FOREIGN_CERTS', or a certificate of _FOREIGN_CA_CERTS' whose CA is (as keys/shown.py
    reads it; for a certificate, its CA's signature checked when keytool knows the CA's
    type, as ssh-keygen checks it)."""
    from keytool.keys.pubfile import decode_blob
    from keytool.keys.shown import ShownPublic, shown_from_wire
    from keytool.wire import Reader, Writer

    certs = {**_FOREIGN_CERTS, **_FOREIGN_CA_CERTS}
    if len(parts) < 2 or (parts[0] not in _FOREIGN and parts[0] not in certs):
        return None
    try:
        blob = decode_blob(parts[1])
        r = Reader(blob, "public key blob")
        named = r.ascii()
        if parts[0] in certs:
            if named != parts[0]:
                return None
            fields = r.offset
            _certificate(named, r)
            return ShownPublic(named, blob[fields:], 0)
        plain = _FOREIGN.get(named)
        if plain != _FOREIGN[parts[0]]:
            return None
        return shown_from_wire(Writer().string(plain).raw(blob[r.offset :]).getvalue())
    except (FormatError, UnsupportedKeyError):
        return None


def _certificate(key_type: str, r: Reader) -> None:
    """Read a DSA or security key certificate's fields, or those of a certificate whose
    CA is one (``r`` just past its type name), as ssh-keygen does (cert_parse): a
    FormatError when it would refuse it, or when keytool reads it itself."""
    from keytool.keys.blob import public_from_wire
    from keytool.keys.cert import HOST, MAX_PRINCIPALS, USER, cstring, unpack_options
    from keytool.keys.shown import shown_from_wire
    from keytool.wire import Writer

    plain, count = {**_FOREIGN_CERTS, **_FOREIGN_CA_CERTS}[key_type]
    start = r.offset
    r.string()  # the nonce
    fields = r.offset
    for _ in range(count):
        r.string()
    shown_from_wire(Writer().string(plain).raw(r.since(fields)).getvalue())
    r.uint64()  # the serial
    cert_type = r.uint32()
    cstring(r, "key id")
    with r.nested("certificate principals") as p:
        for _ in range(MAX_PRINCIPALS + 1):
            if not p.remaining:
                break
            cstring(p, "principal")
        else:
            raise FormatError("malformed certificate: too many principals")
    r.uint64()
    r.uint64()
    unpack_options(r.string(), "critical option")
    unpack_options(r.string(), "extension")
    r.string()  # reserved
    ca_blob = r.string()
    signed = Writer().string(key_type).getvalue() + r.since(start)
    signature = r.string()
    r.done()
    if cert_type not in (USER, HOST):
        raise FormatError(f"malformed certificate: unknown certificate type {cert_type}")
    try:
        ca = public_from_wire(ca_blob)
    except UnsupportedKeyError:
        # a DSA or security key CA: ssh-keygen checks its signature; keytool checks a
        # DSA CA's (below), not a security key's
        shown = shown_from_wire(ca_blob)
        numbers = getattr(shown, "dsa_numbers", None)
        if numbers is not None and not _dsa_verifies(numbers, signature, signed):
            raise FormatError("certificate signature does not verify") from None
        return
    if key_type in _FOREIGN_CA_CERTS:  # keytool read it (or refused it) already
        raise FormatError("a certificate keytool reads itself")
    if ca.key_type.endswith(_CERT):
        raise FormatError("certificate is signed by a certificate")
    if not ca.verify(signature, signed):
        raise FormatError("certificate signature does not verify")


def _dsa_verifies(numbers: tuple[int, int, int, int], signature: bytes, data: bytes) -> bool:
    """A DSA CA's ``signature`` (an ``ssh-dss`` signature blob: r and s, 20 bytes each)
    of ``data``, checked with SHA-1 as ssh-keygen checks it (ssh_dss_verify)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import dsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from keytool.wire import Reader

    try:
        r = Reader(signature, "signature")
        if r.ascii() != "ssh-dss":
            return False
        blob = r.string()
        r.done()
        if len(blob) != 40:
            return False
        p, q, g, y = numbers
        key = dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(p, q, g)).public_key()
        der = encode_dss_signature(int.from_bytes(blob[:20]), int.from_bytes(blob[20:]))
        key.verify(der, data, hashes.SHA1())
    except (FormatError, InvalidSignature, ValueError):
        return False
    return True


def parse(text: str, source: str = "allowed_signers") -> list[AllowedSigner]:
    """Every line; a FormatError names the first bad one."""
    signers = []
    for item in walk(text, source):
        if isinstance(item, FormatError):
            raise item
        signers.append(item)
    return signers


def match_principals(text: str, identity: str, source: str = "allowed_signers") -> list[str]:
    """The principals field of each line whose patterns match ``identity``, in order
    (ssh-keygen -Y match-principals), lines of keys keytool does not use included; a bad
    line among them is a FormatError."""
    found = []
    for item in _walk(text, source, identity):
        if isinstance(item, FormatError):
            raise item
        found.append(item.principals)
    return found


def principals_for(signers: Iterable[AllowedSigner], key: PublicKey, now: int) -> list[str] | None:
    """Who may have signed with ``key`` at ``now``, whatever the namespace (as ssh-keygen
    -Y find-principals): the principals of the first line that matches, one by one (for
    a certificate, those of its principals the line allows), which may be no one (a line
    whose principals are empty or start with an empty one, as ``""`` or ``,id``:
    ssh-keygen -Y find-principals then prints nothing, and succeeds); None when no line
    matches."""
    for signer in signers:
        principals, _ = signer.check(key, None, None, now)
        if principals is not None:
            return _until_empty(principals.split(","))
    return None


#: refusal()'s answer when no line is about the key and identity at all
NO_LINE = "no line names this key for this identity"


def refusal(
    signers: Iterable[AllowedSigner], identity: str, key: PublicKey, namespace: str, now: int
) -> str | None:
    """None when ``identity`` may sign with ``key`` for ``namespace`` at ``now`` (some
    line allows it); otherwise why not: the first line that is about this key and
    identity and says no, or that no line names them."""
    reasons = []
    for signer in signers:
        principals, reason = signer.check(key, identity, namespace, now)
        if principals is not None:
            return None
        if reason is not None:
            reasons.append(f"line {signer.line_number}: {reason}")
    return reasons[0] if reasons else NO_LINE


def allowed(
    signers: Iterable[AllowedSigner], identity: str, key: PublicKey, namespace: str, now: int
) -> bool:
    """``identity`` may sign with ``key`` for ``namespace`` at ``now``."""
    return refusal(signers, identity, key, namespace, now) is None

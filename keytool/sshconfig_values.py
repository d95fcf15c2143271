"""ssh_config(5) values: the converters that check a keyword's value as ssh does and
turn it into what is kept (times, flags, ports, IPQoS, RekeyLimit...), the keyword
tables that say which converter each keyword takes (and which keywords are ignored,
with or without a word), and the checks of algorithm lists against the names ssh knows."""

from __future__ import annotations

import os
from collections.abc import Callable

from keytool.display import logged
from keytool.errors import FormatError
from keytool.sshconfig_words import env_name, quoted_value

_TIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str, where: str) -> int:
    """sshd_config(5) TIME FORMATS: ``90``, ``1m30s``, ``2h``; seconds. (Read by hand:
    this runs before ``keytool exec`` connects, and loading re would delay that.)"""
    total = 0
    digits = ""
    for char in value:
        if "0" <= char <= "9":
            digits += char
        elif digits and char.lower() in _TIME_UNITS:
            total += int(digits) * _TIME_UNITS[char.lower()]
            digits = ""
        else:
            raise FormatError(f"{where}: invalid time value {quoted_value(value)}")
    if not value:
        raise FormatError(f"{where}: invalid time value {quoted_value(value)}")
    total += int(digits) if digits else 0
    if total > 2**31 - 1:
        raise FormatError(f"{where}: time value {quoted_value(value)} is too large")
    return total


def _flag(value: str, where: str) -> bool:
    lowered = value.lower()
    if lowered in ("yes", "true"):
        return True
    if lowered in ("no", "false"):
        return False
    raise FormatError(f'{where}: unsupported option "{logged(value)}".')  # ssh's words


def _strict(value: str, where: str) -> str:
    lowered = value.lower()
    if lowered in ("yes", "true"):
        return "yes"
    if lowered in ("no", "false", "off"):
        return "no"
    if lowered in ("ask", "accept-new"):
        return lowered
    raise FormatError(f'{where}: unsupported option "{logged(value)}".')  # ssh's words


def _port(value: str, where: str) -> int:
    from keytool.ports import a2port

    port = a2port(value)  # a service name too, as ssh takes it
    if port is None or port == 0:
        raise FormatError(f"{where}: Bad port '{logged(value)}'.")  # ssh's words
    return port


def _count(value: str, where: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise FormatError(f"{where}: expected a number, not {quoted_value(value)}")
    return int(value)


#: ssh_config(5) LogLevel values, quietest first
LOG_LEVELS = ("QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3")


def _log_level(value: str, where: str) -> str:
    level = value.upper()
    if level == "SILENT":  # QUIET's other name (the one ssh -G shows)
        return "QUIET"
    if level not in LOG_LEVELS:
        raise FormatError(f"{where}: unsupported log level '{logged(value)}'")  # ssh's words
    return level


def _attempts(value: str, where: str) -> int:
    """ConnectionAttempts: a count; 0 is refused once the configuration is read (ssh:
    "Invalid number of ConnectionAttempts"), not as a bad line."""
    return integer_value(value, where)


def _compression(value: str, where: str) -> bool:
    """Compression: yes or no (any case), and nothing else, as ssh 9.2 takes it."""
    if value.lower() not in ("yes", "no"):
        raise FormatError(f'{where}: unsupported option "{logged(value)}".')  # ssh's words
    return value.lower() == "yes"


def _one_of(keyword: str, *choices: str) -> Callable[[str, str], str]:
    """A converter taking one of ``choices`` (any case), as written in lower case."""

    def convert(value: str, where: str) -> str:
        lowered = value.lower()
        if lowered not in choices:
            listed = f"{', '.join(choices[:-1])} or {choices[-1]}"
            raise FormatError(f"{where}: {keyword} must be {listed}, not {quoted_value(value)}")
        return lowered

    return convert


_fingerprint_hash = _one_of("FingerprintHash", "md5", "sha1", "sha256", "sha384", "sha512")
_address_family = _one_of("AddressFamily", "any", "inet", "inet6")
_session_type = _one_of("SessionType", "default", "none", "subsystem")


def _request_tty(value: str, where: str) -> str:
    lowered = value.lower()
    words = {"yes": "yes", "true": "yes", "no": "no", "false": "no", "force": "force"}
    if lowered == "auto" or lowered in words:
        return words.get(lowered, "auto")
    raise FormatError(f'{where}: unsupported option "{logged(value)}".')  # ssh's words


def escape_char(value: str, where: str) -> int | str:
    """EscapeChar / ssh -e: "none", one character, or ``^X`` (a control character);
    "none" stays a string."""
    if value == "none":
        return "none"
    if len(value) == 1 and ord(value) < 256:
        return ord(value)
    if len(value) == 2 and value[0] == "^" and 64 <= ord(value[1]) < 128:
        return ord(value[1]) & 31
    raise FormatError(f"{where}: Bad escape character {quoted_value(value)}")


def _octal_mask(value: str, where: str) -> int:
    """StreamLocalBindMask as ssh reads it (strtol in base 8: blanks and a sign before,
    anything after the digits left), 0 to 0777."""
    text = value.lstrip(" \t\n\v\f\r")
    sign = -1 if text[:1] == "-" else 1
    text = text[1:] if text[:1] in "+-" else text
    digits = text[: len(text) - len(text.lstrip("01234567"))]
    if not digits or not 0 <= sign * int(digits, 8) <= 0o777:
        raise FormatError(f"{where}: Bad mask.")  # ssh's words
    return sign * int(digits, 8)


def _yes_no_ask(value: str, where: str) -> str:
    lowered = value.lower()
    if lowered in ("yes", "true"):
        return "yes"
    if lowered in ("no", "false"):
        return "no"
    if lowered == "ask":
        return "ask"
    raise FormatError(f'{where}: unsupported option "{logged(value)}".')  # ssh's words


def _control_master(value: str, where: str) -> str:
    """ControlMaster, any case: yes (or true), no (or false), ask, auto or autoask."""
    lowered = value.lower()
    words = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}
    if lowered in ("ask", "auto", "autoask") or lowered in words:
        return words.get(lowered, lowered)
    raise FormatError(
        f"{where}: ControlMaster must be yes, no, ask, auto or autoask, not {quoted_value(value)}"
    )


def _control_path(value: str, where: str) -> str:
    """ControlPath as written (expanded once the host is known); ssh refuses it empty
    (but from -S: that value is not read here)."""
    if not value:
        raise FormatError(f"{where}: ControlPath needs a value")
    return value


def _control_persist(value: str, where: str) -> int | None:
    """ControlPersist: None for no (or false), 0 for yes (or true), else a time in
    seconds, "0" being yes again. The words are lower case only, as ssh reads them."""
    if value in ("no", "false"):
        return None
    if value in ("yes", "true"):
        return 0
    try:
        return parse_time(value, where)
    except FormatError:
        raise FormatError(
            f"{where}: ControlPersist must be yes, no or a time such as 10m, "
            f"not {quoted_value(value)}"
        ) from None


_FLAG_WORDS = ("yes", "no", "true", "false")


def _agent_path(value: str, where: str) -> str:
    """ForwardAgent's socket or IdentityAgent, checked as ssh checks them when it
    reads them: every ``${NAME}`` set, and a legacy ``$NAME`` a valid name alone."""
    at = value.find("${")
    while at >= 0:
        end = value.find("}", at + 2)
        if end < 0 or value[at + 2 : end] not in os.environ:  # ssh's words
            raise FormatError(f"{where}: Invalid environment expansion {logged(value)}.")
        at = value.find("${", end)
    if value.startswith("$") and not value.startswith("${") and not env_name(value[1:]):
        raise FormatError(f"{where}: Invalid environment name {logged(value)}.")  # ssh's words
    return value


def proxy_jump(value: str, where: str, command_line: bool = False) -> str:
    """ProxyJump as ssh's parse_jump reads the line: a ``#`` and what follows left out,
    then its first word (quotes and all), every hop checked; "none" (any case) kept so.
    From the command line (-o), as ssh 9.2 (Debian's backport), the hops' host and
    user names too: no leading ``-``, no shell's special character."""
    words = value.partition("#")[0].split()
    jump = words[0] if words else ""
    if jump.lower() == "none":
        return "none"
    invalid = f'{where}: Invalid ProxyJump "{logged(value)}"'  # ssh's words
    for hop in reversed(jump.split(",")):  # as ssh: from the last hop
        try:
            user, host, _ = parse_jump_host(hop)
        except FormatError:
            raise FormatError(invalid) from None
        uri = hop.startswith("ssh://")
        if (":" in host and "[" not in hop) or (uri and _name_bad(host, _HOST_BAD)):
            raise FormatError(invalid)  # an IPv6 address unbracketed; a URI's host
        if not command_line:
            continue
        for what, name, bad in (("username", user, _USER_BAD), ("hostname", host, _HOST_BAD)):
            if name is not None and _name_bad(name, bad):  # ssh's words, both lines
                raise FormatError(f'parse_jump: invalid {what} "{logged(name)}"\n{invalid}')
    return jump


#: what ssh refuses in a ProxyJump hop's host name and user name on its command line
_HOST_BAD = frozenset("'`\"$\\;&<>|(){}")
_USER_BAD = frozenset("'`\";&<>|(){}")


def _name_bad(name: str, bad: frozenset[str]) -> bool:
    return name[:1] == "-" or any(c in bad or ord(c) < 32 or ord(c) == 127 for c in name)


#: keywords whose value ssh 9.2 refuses empty (``User ""``), and its words then: a
#: string's first argument ("Missing argument."; ControlPath says so in its converter)
EMPTY_REFUSED: dict[str, str] = {
    **dict.fromkeys(
        (
            "bindaddress", "bindinterface", "casignaturealgorithms", "certificatefile",
            "ciphers", "escapechar", "fingerprinthash", "hostkeyalgorithms", "kexalgorithms",
            "macs", "port", "pubkeyacceptedalgorithms", "rekeylimit", "tunneldevice",
            "gssapiclientidentity", "gssapikexalgorithms", "gssapiserveridentity",
            "hostbasedacceptedalgorithms", "hostkeyalias", "hostname", "identityagent",
            "identityfile", "ignoreunknown", "kbdinteractivedevices", "pkcs11provider",
            "preferredauthentications", "securitykeyprovider", "user", "xauthlocation",
        ),
        "Missing argument.",
    ),
    "forwardagent": "missing argument.",
}  # fmt: skip
#: keywords of many values any of which ssh refuses empty, in its words
EMPTY_ANY_REFUSED = {
    "globalknownhostsfile": "keyword globalknownhostsfile empty argument",
    "userknownhostsfile": "keyword userknownhostsfile empty argument",
    "logverbose": "keyword logverbose empty argument",
    "sendenv": "Invalid environment name.",
}


def _pubkey(value: str, where: str) -> bool:
    # OpenSSH 8.9+ also takes unbound/host-bound here: both mean "on"
    if value.lower() in ("unbound", "host-bound"):
        return True
    return _flag(value, where)


#: IPQoS's names of TOS values, as ssh knows them (its misc.c order: the first name of
#: a value is the one ssh -G shows); None is "none", leave the socket's as it is
IP_QOS_NAMES: tuple[tuple[str, int | None], ...] = (
    ("none", None),
    ("af11", 0x28), ("af12", 0x30), ("af13", 0x38), ("af21", 0x48), ("af22", 0x50),
    ("af23", 0x58), ("af31", 0x68), ("af32", 0x70), ("af33", 0x78), ("af41", 0x88),
    ("af42", 0x90), ("af43", 0x98), ("cs0", 0x00), ("cs1", 0x20), ("cs2", 0x40),
    ("cs3", 0x60), ("cs4", 0x80), ("cs5", 0xA0), ("cs6", 0xC0), ("cs7", 0xE0),
    ("ef", 0xB8), ("le", 0x04), ("lowdelay", 0x10), ("throughput", 0x08),
    ("reliability", 0x04),
)  # fmt: skip


def _ip_qos_one(value: str, where: str) -> int | None:
    for name, tos in IP_QOS_NAMES:
        if value.lower() == name:
            return tos
    try:
        number = int(value, 0)
    except ValueError:
        number = -1
    if not 0 <= number <= 255:
        raise FormatError(f"{where}: Bad IPQoS value: {logged(value)}")  # ssh's words
    return number


def parse_ip_qos(args: list[str], where: str) -> tuple[int | None, int | None]:
    """IPQoS INTERACTIVE [BULK]: one value serves both."""
    if not args or len(args) > 2:
        raise FormatError(f"{where}: IPQoS takes one or two values")
    interactive = _ip_qos_one(args[0], where)
    return interactive, _ip_qos_one(args[1], where) if len(args) == 2 else interactive


def ip_qos_value(found: tuple[object, str] | None) -> tuple[int | None, int | None]:
    value = found[0] if found is not None else None
    if isinstance(value, tuple) and len(value) == 2:
        return value[0], value[1]
    return 0x48, 0x20  # upstream OpenSSH's af21 and cs1


def ip_qos_name(tos: int | None) -> str:
    """ssh -G's word for a TOS value (its first name, else 0xNN)."""
    for name, value in IP_QOS_NAMES:
        if value == tos:
            return name
    return f"0x{tos:02x}"


def integer_value(value: str, where: str) -> int:
    """A count as ssh's parse_int reads it (strtonum from 0 to INT_MAX), in its words."""
    text = value.lstrip(" \t")
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        raise FormatError(f"{where}: integer value invalid.")  # ssh's words
    number = int(text)
    if number < 0:
        raise FormatError(f"{where}: integer value too small.")
    if number > 2**31 - 1:
        raise FormatError(f"{where}: integer value too large.")
    return number


def _rsa_size(value: str, where: str) -> int:
    """RequiredRSASize: bits, any count as ssh reads it (ssh -G shows it so)."""
    return integer_value(value, where)


# keyword -> (how many arguments: 1 or "many", converter or None for a plain string)
_Converter = Callable[[str, str], object]
ONE: dict[str, _Converter | None] = {
    "hostname": None,
    "user": None,
    "port": _port,
    "identitiesonly": _flag,
    "stricthostkeychecking": _strict,
    "connecttimeout": parse_time,
    "passwordauthentication": _flag,
    "pubkeyauthentication": _pubkey,
    "kbdinteractiveauthentication": _flag,
    "batchmode": _flag,
    "visualhostkey": _flag,
    "loglevel": _log_level,
    "fingerprinthash": _fingerprint_hash,
    "updatehostkeys": _yes_no_ask,
    "streamlocalbindmask": _octal_mask,
    "streamlocalbindunlink": _flag,
    "requesttty": _request_tty,
    "forwardagent": lambda v, w: v if v.lower() in _FLAG_WORDS else _agent_path(v, w),
    "stdinnull": _flag,
    "requiredrsasize": _rsa_size,
    "tcpkeepalive": _flag,
    "nohostauthenticationforlocalhost": _flag,
    "forwardx11": _flag,
    "forwardx11trusted": _flag,
    "forwardx11timeout": parse_time,
    "xauthlocation": None,
    "compression": _compression,
    "addressfamily": _address_family,
    "bindaddress": None,
    "bindinterface": None,
    "escapechar": escape_char,
    "enableescapecommandline": _flag,
    "verifyhostkeydns": _yes_no_ask,
    "connectionattempts": _attempts,
    "hashknownhosts": _flag,
    "preferredauthentications": None,
    "numberofpasswordprompts": _count,
    "kexalgorithms": lambda v, w: _algorithms(v, w, "kex", "Bad SSH2 KexAlgorithms '{}'."),
    "ciphers": lambda v, w: _algorithms(v, w, "cipher", "Bad SSH2 cipher spec '{}'."),
    "macs": lambda v, w: _algorithms(v, w, "mac", "Bad SSH2 MAC spec '{}'."),
    "hostkeyalgorithms": lambda v, w: _algorithms(v, w, "key-sig", "Bad key types '{}'."),
    "pubkeyacceptedalgorithms": lambda v, w: _algorithms(v, w, "key-sig", "Bad key types '{}'."),
    "casignaturealgorithms": lambda v, w: _algorithms(v, w, "key-sig", "Bad key types '{}'."),
    "serveraliveinterval": parse_time,
    "serveralivecountmax": _count,
    "hostkeyalias": None,
    "identityagent": lambda v, w: _agent_path(v, w),
    "knownhostscommand": None,
    "localcommand": None,
    "permitlocalcommand": _flag,
    "proxycommand": None,
    "remotecommand": None,
    "proxyjump": lambda v, w: proxy_jump(v, w),
    "gatewayports": _flag,
    "exitonforwardfailure": _flag,
    "clearallforwardings": _flag,
    "sessiontype": _session_type,
    "forkafterauthentication": _flag,
    "controlmaster": _control_master,
    "controlpath": _control_path,
    "controlpersist": _control_persist,
}
MANY = ("userknownhostsfile", "globalknownhostsfile")
FORWARDS = {
    "localforward": "LocalForward",
    "remoteforward": "RemoteForward",
    "dynamicforward": "DynamicForward",
}
ALIASES = {
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "skeyauthentication": "kbdinteractiveauthentication",
    "tisauthentication": "kbdinteractiveauthentication",
    "dsaauthentication": "pubkeyauthentication",
    "identityfile2": "identityfile",
    "keepalive": "tcpkeepalive",
    "hostbasedkeytypes": "hostbasedacceptedalgorithms",
    "smartcarddevice": "pkcs11provider",
}
#: keywords ssh 9.2 takes and ignores, saying so only at debug level
DEPRECATED = frozenset(
    {
        "cipher",
        "fallbacktorsh",
        "globalknownhostsfile2",
        "rhostsauthentication",
        "userknownhostsfile2",
        "useroaming",
        "usersh",
        "useprivilegedport",
        "useblacklistedkeys",  # Debian's
    }
)
#: keywords ssh 9.2 takes and ignores with an error-level notice (not a bad line)
UNSUPPORTED = frozenset(
    {
        "afstokenpassing",
        "kerberosauthentication",
        "kerberostgtpassing",
        "rsaauthentication",
        "rhostsrsaauthentication",
        "compressionlevel",
    }
)

#: OpenSSH keywords keytool does not use; these change where or how ssh connects, so
#: ignoring them is worth a warning
UNSUPPORTED_WARN = frozenset(
    {
        "canonicalizehostname",
        "checkhostip",
        "pkcs11provider",
    }
)
#: the rest of OpenSSH 9's client keywords: accepted and ignored without a word
OPENSSH_OTHER = frozenset(
    [
        "canonicaldomains",
        "canonicalizefallbacklocal",
        "canonicalizemaxdots",
        "canonicalizepermittedcnames",
        "enablesshkeysign",
        "gssapiauthentication",
        "gssapiclientidentity",
        "gssapidelegatecredentials",
        "gssapikeyexchange",
        "gssapirenewalforcesrekey",
        "gssapiserveridentity",
        "gssapitrustdns",
        "gssapikexalgorithms",
        "hostbasedacceptedalgorithms",
        "hostbasedkeytypes",
        "hostbasedauthentication",
        "kbdinteractivedevices",
        "logverbose",
        "proxyusefdpass",
        "securitykeyprovider",
        "syslogfacility",
        "tunnel",
        "tunneldevice",
        "obscurekeystroketiming",
        "channeltimeout",
        "tag",
        "protocol",
    ]
)


#: names OpenSSH 9.2 knows that keytool does not implement: a list naming them is taken
#: as ssh takes it (a server that picks one ends the connection with one line); an
#: unknown name is refused as by ssh
OPENSSH_ONLY_ALGORITHMS = {
    "cipher": ("3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc"),
    "mac": (
        "hmac-md5", "hmac-md5-96", "hmac-md5-96-etm@openssh.com", "hmac-md5-etm@openssh.com",
        "hmac-sha1", "hmac-sha1-96", "hmac-sha1-96-etm@openssh.com", "hmac-sha1-etm@openssh.com",
        "umac-128-etm@openssh.com", "umac-128@openssh.com", "umac-64-etm@openssh.com",
        "umac-64@openssh.com",
    ),
    "kex": (
        "diffie-hellman-group-exchange-sha1", "diffie-hellman-group1-sha1",
        "diffie-hellman-group14-sha1", "diffie-hellman-group18-sha512",
        "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com",
    ),
    "key-sig": (
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
        "sk-ssh-ed25519-cert-v01@openssh.com", "sk-ssh-ed25519@openssh.com", "ssh-dss",
        "ssh-dss-cert-v01@openssh.com", "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    ),
}  # fmt: skip


def _algorithms(value: str, where: str, kind: str, message: str) -> str:
    """An algorithm list as ssh checks it when it reads it: after a ``+`` or ``^``, or
    alone, every name one ssh knows (wildcards only after ``-``, which may name anything,
    and in lists of key types)."""
    try:
        check_algorithms(value, kind)
    except FormatError:
        raise FormatError(f"{where}: {message.format(logged(value))}") from None
    return value


def check_algorithms(value: str, kind: str) -> None:
    """FormatError unless every name of the list is one ssh knows (``kind`` as ``-Q``
    names it); a ``-`` list may name anything. In a list of key types, as ssh's
    sshkey_names_valid2 takes it, a name with ``*`` or ``?`` is a pattern that must
    match one of them."""
    if value.startswith("-"):
        return
    known = every_algorithm(kind)
    names = value[1:] if value[:1] in "+^" else value
    if not names:  # "+" or "^" alone
        raise FormatError(f"no {kind} name after {value}")
    for name in names.split(","):
        if not name:  # as ssh: the names after an empty one go unchecked
            break
        if name in known:
            continue
        if kind == "key-sig" and ("*" in name or "?" in name):
            from keytool.patterns import match_pattern

            if any(match_pattern(known_name, name) for known_name in known):
                continue
        raise FormatError(f"unknown {kind} name {quoted_value(name)}")


#: OpenSSH 9.2's names of each kind, in its order (``ssh -Q``): the order in which a
#: pattern in an algorithm list gives the names it matches
_OPENSSH_ORDER = {
    "cipher": (
        "3des-cbc,aes128-cbc,aes192-cbc,aes256-cbc,aes128-ctr,aes192-ctr,aes256-ctr,"
        "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"
    ),
    "mac": (
        "hmac-sha1,hmac-sha1-96,hmac-sha2-256,hmac-sha2-512,hmac-md5,hmac-md5-96,"
        "umac-64@openssh.com,umac-128@openssh.com,hmac-sha1-etm@openssh.com,"
        "hmac-sha1-96-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
        "hmac-sha2-512-etm@openssh.com,hmac-md5-etm@openssh.com,hmac-md5-96-etm@openssh.com,"
        "umac-64-etm@openssh.com,umac-128-etm@openssh.com"
    ),
    "kex": (
        "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,diffie-hellman-group14-sha256,"
        "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,"
        "diffie-hellman-group-exchange-sha1,diffie-hellman-group-exchange-sha256,"
        "ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,curve25519-sha256,"
        "curve25519-sha256@libssh.org,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com"
    ),
    "key-sig": (
        "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,"
        "sk-ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256,"
        "ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384,"
        "ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521,"
        "ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,"
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,webauthn-sk-ecdsa-sha2-nistp256@openssh.com,"
        "ssh-dss,ssh-dss-cert-v01@openssh.com,ssh-rsa,ssh-rsa-cert-v01@openssh.com,rsa-sha2-256,"
        "rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com"
    ),
}
_EVERY: dict[str, tuple[str, ...]] = {}


def every_algorithm(kind: str) -> tuple[str, ...]:
    """Every name of ``kind`` ("cipher", "mac", "kex", "key-sig", or "sig": key-sig's
    names but certificates) that a configuration may name: OpenSSH's, in its order,
    then the ones only keytool implements."""
    if kind not in _EVERY:
        from keytool.transport.query import query

        base = "key-sig" if kind == "sig" else kind
        names = [*_OPENSSH_ORDER[base].split(","), *OPENSSH_ONLY_ALGORITHMS[base]]
        names += query(base)
        if kind == "sig":
            names = [name for name in names if not name.endswith("-cert-v01@openssh.com")]
        _EVERY[kind] = tuple(dict.fromkeys(names))
    return _EVERY[kind]


def parse_permit_remote_open(args: list[str], where: str) -> tuple[str, ...]:
    """PermitRemoteOpen: "any" (kept as ()), "none", or host:port entries, as ssh
    takes them (any and none alone)."""
    from keytool.forwardspec import split_permit

    if not args:
        raise FormatError(f"{where}: missing PermitRemoteOpen specification")
    lowered = [a.lower() for a in args]
    if "any" in lowered or "none" in lowered:
        if len(args) > 1:
            raise FormatError(f"{where}: PermitRemoteOpen takes any or none alone")
        return () if lowered[0] == "any" else ("none",)
    for entry in args:
        try:
            split_permit(entry)
        except FormatError as exc:
            raise FormatError(f"{where}: {exc}") from None
    return tuple(args)


def parse_add_keys_to_agent(args: list[str], where: str) -> tuple[str, int | None]:
    """AddKeysToAgent yes|no|ask|confirm, "confirm TIME", or a TIME alone (yes, for that
    long): the mode and the lifetime."""
    modes = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}
    modes.update(ask="ask", confirm="confirm")
    unsupported = FormatError(f"{where}: unsupported option")  # ssh's words
    if not args or len(args) > 2:
        raise unsupported
    mode = modes.get(args[0].lower())
    if len(args) == 2:
        if mode != "confirm":
            raise unsupported
        try:
            return mode, parse_time(args[1], where)
        except FormatError:
            raise FormatError(f"{where}: invalid time value.") from None
    if mode is None:
        try:
            return "yes", parse_time(args[0], where)
        except FormatError:
            raise unsupported from None
    return mode, None


_SCALES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_rekey_limit(args: list[str], where: str) -> tuple[int, int]:
    """RekeyLimit BYTES [INTERVAL]: bytes with an optional K, M, G or T (powers of
    1024) or "default" (0: the cipher's own limit); the interval a time, or "none"."""
    if not args or len(args) > 2:
        raise FormatError(f"{where}: RekeyLimit takes an amount of data and a time")
    amount = args[0].lower()
    if amount == "default":
        limit = 0
    else:
        digits, unit = amount.rstrip("kmgt"), amount[len(amount.rstrip("kmgt")) :]
        if not digits.isdigit() or len(unit) > 1:  # ssh's words
            raise FormatError(f"{where}: Bad number '{args[0]}': Invalid argument")
        limit = int(digits) * _SCALES[unit]
        if 0 < limit < 16:
            raise FormatError(f"{where}: RekeyLimit too small")
    seconds = 0
    if len(args) == 2 and args[1] != "none":
        seconds = parse_time(args[1], where)
    return limit, seconds


def parse_jump_host(text: str) -> tuple[str | None, str, int | None]:
    """One ProxyJump hop, ``[user@]host[:port]`` or ``ssh://[user@]host[:port]``."""
    rest = text[len("ssh://") :].rstrip("/") if text.startswith("ssh://") else text
    user, _, hostport = rest.rpartition("@")
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    elif hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
    else:
        host, port = hostport, ""
    from keytool.ports import a2port

    number = a2port(port) if port else None  # a service name too, as ssh takes it
    if not host or (port and not number):
        raise FormatError(f"ProxyJump: bad jump host {quoted_value(text)}")
    return user or None, host, number

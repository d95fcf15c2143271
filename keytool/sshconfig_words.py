"""ssh_config(5)'s words: a line split into its keyword and arguments as ssh splits it,
and the expansions of a value: %-tokens (``%C`` too), ``${NAME}``, ``~`` and ``~user``,
and the local account whose home ``~`` names."""

from __future__ import annotations

import functools
import os
import pwd
from collections.abc import Mapping

from keytool.errors import FormatError, KeytoolError

# --- tokenising a line -------------------------------------------------------------


def split_args(text: str, where: str) -> list[str]:
    """Arguments as ssh splits them: whitespace, '"' or "'" quotes, backslash escapes,
    ``#`` at the start of an argument ends the line."""
    args: list[str] = []
    i = 0
    length = len(text)
    while i < length:
        while i < length and text[i] in " \t\r\n":
            i += 1
        if i >= length:
            break
        if text[i] == "#":
            break
        current: list[str] = []
        quote = ""
        while i < length:
            char = text[i]
            if quote:
                if char == quote:
                    quote = ""
                elif char == "\\" and i + 1 < length and text[i + 1] in (quote, "\\"):
                    i += 1
                    current.append(text[i])
                else:
                    current.append(char)
            elif char in "\"'":
                quote = char
            elif char == "\\" and i + 1 < length and text[i + 1] in "\\\"' ":
                i += 1
                current.append(text[i])
            elif char in " \t\r\n":
                break
            else:
                current.append(char)
            i += 1
        if quote:
            raise FormatError(f"{where}: unterminated quote")
        args.append("".join(current))
    return args


def quote_arg(value: str) -> str:
    """``value`` quoted so that split_args reads it back as one argument, exactly."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_line(line: str, where: str) -> tuple[str, list[str]] | None:
    """``Keyword args`` / ``Keyword=args`` -> (lowercase keyword, args); None if empty."""
    text = line.strip(" \t\r\n")
    if not text or text.startswith("#"):
        return None
    end = 0
    while end < len(text) and text[end] not in " \t=":
        end += 1
    keyword = text[:end].lower()
    rest = text[end:].lstrip(" \t")
    if rest.startswith("="):  # one '=' (ssh's strdelim), and the blanks after it
        rest = rest[1:].lstrip(" \t")
    if not keyword:
        raise FormatError(f"{where}: missing keyword")
    if keyword == "proxyjump":
        # as ssh: the words checked for their quotes, the value read from the line as
        # written (parse_jump takes its first word, quotes and all)
        split_args(rest, where)
        return keyword, [rest.lstrip(" \t\r\n=")] if rest else []
    if keyword in _RAW:
        # the rest of the line as written, quotes and all: a shell reads it later.
        # As ssh, every blank and '=' before it is skipped ("ProxyCommand = none" is
        # "none", "LocalCommand = =echo hi" is "echo hi")
        return keyword, [rest.lstrip(" \t\r\n=")] if rest else []
    return keyword, split_args(rest, where)


#: what starts a line that stands for one of ssh's flags (-l, -b, -B, -S...), never a
#: -o line (a NUL cannot be in an argument): as ssh's getopt, it takes an empty value
FROM_FLAG = "\0"

#: keywords whose value is the rest of the line, untouched (as ssh keeps them)
_RAW = frozenset({"proxycommand", "remotecommand", "knownhostscommand", "localcommand"})


def quoted_value(value: str) -> str:
    """A value in a message, quoted, its bytes as ssh's log lines show them."""
    from keytool.display import logged

    return f"'{logged(value)}'"


# --- tokens and ~ ---------------------------------------------------------------------


#: KnownHostsCommand's tokens known only when it runs: marks (NUL cannot be in a
#: config line) that stand for them until then
RUNTIME_TOKENS = {name: f"\0{name}" for name in "HIKft"}


def expand_tokens(
    value: str, tokens: dict[str, str], where: str, env: Mapping[str, str] | None = None
) -> str:
    """ssh_config TOKENS: ``%h`` and friends from ``tokens``; ``%%`` is a percent sign.
    With ``env``, also ENVIRONMENT VARIABLES: ``${NAME}`` is its value (one pass, as
    ssh: what a variable holds is not expanded again)."""
    if "%" not in value and (env is None or "${" not in value):
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if env is not None and value.startswith("${", i):
            end = value.find("}", i + 2)
            if end < 0:
                raise FormatError(f"{where}: unterminated ${{ in {quoted_value(value)}")
            name = value[i + 2 : end]
            if name not in env:
                raise FormatError(
                    f"{where}: environment variable {quoted_value(name)} has no value"
                )
            out.append(env[name])
            i = end + 1
            continue
        if char != "%":
            out.append(char)
            i += 1
            continue
        if i + 1 >= len(value):
            raise FormatError(f"{where}: '%' at the end of {quoted_value(value)}")
        token = value[i + 1]
        if token == "%":
            out.append("%")
        elif token in tokens:
            out.append(tokens[token])
        else:
            raise FormatError(f"{where}: unknown token %{token} in {quoted_value(value)}")
        i += 2
    return "".join(out)


def env_name(name: str) -> bool:
    """An environment variable's name as ssh accepts one: letters, digits and _."""
    return name != "" and name.isascii() and all(c.isalnum() or c == "_" for c in name)


def tilde_expand(value: str, home: str, where: str) -> str:
    """A leading ``~`` as ssh's tilde_expand_filename has it: ``~``, ``~/`` and
    ``~/path`` are under ``home``, ``~user`` and ``~user/path`` under that user's home
    directory, with one slash after the directory (``~`` alone is ``home/``)."""
    if not value.startswith("~"):
        return value
    user, _, path = value[1:].partition("/")
    directory = home
    if user:
        try:
            directory = pwd.getpwnam(user).pw_dir
        except (KeyError, ValueError):
            raise FormatError(
                f"{where}: no such user {quoted_value(user)} in {quoted_value(value)}"
            ) from None
    separator = "" if directory.endswith("/") else "/"
    return directory + separator + path.lstrip("/")


@functools.cache
def own_account() -> pwd.struct_passwd:
    """This process's entry in the password database, looked up once: a fleet's hosts
    would each read the database again, and with no file descriptor free the lookup
    fails (pwd then says "not found"). No entry is ssh's error."""
    try:
        return pwd.getpwuid(os.getuid())
    except KeyError:
        raise KeytoolError(f"No user exists for uid {os.getuid()}") from None


def account_home() -> str:
    """The home directory in the password database: the one ssh's ``~`` names (its
    config, known_hosts, default identities), whatever $HOME says."""
    return own_account().pw_dir


def expand_home(value: str, home: str) -> str:
    """A leading ``~`` or ``~/`` is the user's home (``~otheruser`` is left as written)."""
    if value == "~":
        return home
    if value.startswith("~/"):
        return home.rstrip("/") + value[1:]
    return value


def percent_c(local_hostname: str, host: str, port: object, user: object) -> str:
    """%C: the SHA-1 of the local host name, host, port and user, hashed as their bytes
    (those that are not UTF-8 too), as ssh hashes them."""
    import hashlib  # only for %C: otherwise it would load before ``keytool exec`` connects

    seed = f"{local_hostname}{host}{port}{user}"
    return hashlib.sha1(seed.encode("utf-8", "surrogateescape")).hexdigest()

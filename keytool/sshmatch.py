"""ssh_config(5) Match lines: which criteria a Match line has and whether they hold,
as OpenSSH 9.2's ssh reads them (readconf.c's match_cfg_line), without I/O: ``exec``
commands are run by the caller.

The criteria are ``all`` (alone), ``canonical`` and ``final`` (true only in the final
pass, which a ``final`` asks for), ``host`` (the host name so far: HostName with its
%h, else the name given), ``originalhost`` (the name given), ``user`` (the remote user
so far), ``localuser`` and ``exec`` (a command whose exit status 0 is a match; not run
once an earlier criterion failed). Each may be negated with ``!``; all must hold.
"""

from __future__ import annotations

from collections.abc import Callable

from keytool.errors import FormatError
from keytool.patterns import ascii_lower, match_any
from keytool.record import Record, init


class MatchContext(Record):
    """What the criteria are checked against."""

    __slots__ = ("final", "host", "local_user", "original_host", "user")
    original_host: str  # as given on the command line
    host: str  # HostName so far, %h expanded; the name given when there is none
    user: str  # User so far; the local user when there is none
    local_user: str
    final: bool  # the final pass

    def __init__(
        self, original_host: str, host: str, user: str, local_user: str, final: bool
    ) -> None:
        init(
            self,
            original_host=original_host,
            host=host,
            user=user,
            local_user=local_user,
            final=final,
        )


def _hosts(name: str, patterns: str) -> bool:
    # ssh's match_hostname: host names compare without regard to case
    return match_any(ascii_lower(name), [ascii_lower(p) for p in patterns.split(",")])


def matches(
    args: list[str], where: str, context: MatchContext, run: Callable[[str], bool]
) -> tuple[bool, bool]:
    """(whether the Match line's criteria ``args`` hold, whether it asks for a final
    pass). ``run`` runs an ``exec`` command (tokens unexpanded) and tells whether it
    exited 0. A malformed line is a FormatError."""
    result = True
    wants_final = False
    attributes = 0
    at = 0
    while at < len(args) and not args[at].startswith("#"):
        attribute = args[at]
        at += 1
        name, eq, value = attribute.partition("=")
        if eq and name.lstrip("!").isalpha():
            # "host=a": ssh splits its words at '=' too, as "host a"
            attribute = name
            args = [*args[:at], value, *args[at:]]
        negate = attribute.startswith("!")
        name = attribute[1:].lower() if negate else attribute.lower()
        if name == "all":
            if attributes > 1 or (at < len(args) and not args[at].startswith("#")):
                raise FormatError(
                    f"{where}: '{attribute}' cannot be combined with other Match attributes"
                )
            return (result and not negate), wants_final
        attributes += 1
        if name in ("canonical", "final"):
            wants_final = wants_final or name == "final"
            if context.final == negate:
                result = False
            continue
        if at >= len(args) or args[at].startswith("#"):
            raise FormatError(f"{where}: Missing Match criteria for {attribute}")
        value = args[at]
        at += 1
        if name == "host":
            found = _hosts(context.host, value)
        elif name == "originalhost":
            found = _hosts(context.original_host, value)
        elif name == "user":
            found = match_any(context.user, value.split(","))
        elif name == "localuser":
            found = match_any(context.local_user, value.split(","))
        elif name == "exec":
            if not result:
                continue  # as ssh: not run once the line cannot match
            found = run(value)
        else:
            raise FormatError(f"{where}: Unsupported Match attribute {attribute}")
        if found == negate:
            result = False
    if attributes == 0:
        raise FormatError(f"{where}: One or more attributes required for Match")
    return result, wants_final

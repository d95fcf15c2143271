"""ssh-add's ``-h`` destinations: ``[user@]host`` or ``from-host>[user@]to-host``, each host
known by the keys known_hosts files list for it (``@cert-authority`` lines as CA keys,
``@revoked`` lines left out), as ssh-add builds destination constraints."""

from __future__ import annotations

from collections.abc import Sequence

from keytool.agentdest import DestConstraint, Hop, HopKey
from keytool.errors import KeytoolError
from keytool.knownhosts import KnownHost, hosts_match

#: ssh-add's default known_hosts files, in its order
DEFAULT_FILES = (
    "~/.ssh/known_hosts",
    "~/.ssh/known_hosts2",
    "/etc/ssh/ssh_known_hosts",
    "/etc/ssh/ssh_known_hosts2",
)


def _clean_host(host: str) -> str:
    """``[host]`` -> ``host`` (a bracketed name without a port)."""
    if len(host) > 1 and host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def _hosts_named(text: str) -> list[str]:
    """The host names of a ``-h`` argument's sides (for the lookup: ``parse_hop``
    says what is wrong with one)."""
    source, arrow, to = text.partition(">")  # as parse_destination splits it
    sides = (source, to) if arrow else (text,)
    hosts = (_clean_host(side.rpartition("@")[2]) for side in sides)
    return [host for host in hosts if host]


def parse_hop(text: str, entries: Sequence[KnownHost]) -> Hop:
    """One side of a destination: ``user@`` alone, or a host (with an optional user
    before the last ``@``) and the keys known for it."""
    user: str | None = None
    head, at, host = text.rpartition("@")
    if at:
        user = head
    host = _clean_host(host)
    if not host:
        if not user:
            raise KeytoolError(
                f'Invalid key destination constraint "{text}": does not specify user or host'
            )
        return Hop(user=user)
    keys = tuple(
        HopKey(entry.key, entry.marker == "@cert-authority")
        for entry in entries
        if entry.marker in ("", "@cert-authority") and hosts_match(entry.hosts, host)
    )
    if not keys:
        raise KeytoolError(f'No host keys found for destination "{host}"')
    return Hop(user or None, host, keys)


def parse_destination(text: str, entries: Sequence[KnownHost]) -> DestConstraint:
    """One ``-h`` argument; KeytoolError (ssh-add's message) when it is not usable."""
    source_text, arrow, to_text = text.partition(">")
    if not arrow:
        return DestConstraint(Hop(), parse_hop(text, entries))
    source = parse_hop(source_text, entries)
    to = parse_hop(to_text, entries)
    if source.user is not None:
        raise KeytoolError(
            f"Invalid key constraint {source_text}: cannot specify user on 'from' host"
        )
    return DestConstraint(source, to)


def load_destinations(
    texts: Sequence[str], files: Sequence[str] = ()
) -> tuple[DestConstraint, ...]:
    """Every ``-h`` argument, hosts looked up in ``files`` (none: ssh-add's defaults);
    a missing file is empty, as for ssh-add."""
    if not texts:
        return ()
    from keytool.hostcheck import entries_naming
    from keytool.knownhosts import lookup_name
    from keytool.sshconfig_words import account_home, expand_home

    # as ssh-add: ~ is the home in the password database, not $HOME
    home = account_home()
    paths = [expand_home(f, home) for f in files or DEFAULT_FILES]
    # only the lines that may name a host given are read (a large file stays small)
    names = {lookup_name(host) for text in texts for host in _hosts_named(text)}
    entries, _warnings = entries_naming(paths, names)
    try:
        return tuple(parse_destination(text, entries) for text in texts)
    except KeytoolError as exc:
        exc.exit_code = 255  # ssh-add's fatal()
        raise

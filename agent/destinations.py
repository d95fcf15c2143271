"""Enforcing destination constraints (``restrict-destination-v00@openssh.com``) as OpenSSH's
ssh-agent does, over a connection's session-bind@openssh.com bindings.

A connection never bound is local use: it lists every key, but a constrained key signs
only for a user authentication on a bound connection. A bound connection records the
host keys of the path its requests came along (each hop bound by the ssh that forwarded
the agent, the last one by the ssh that authenticates); every hop must be allowed by one
of the key's constraints, the user name and session identifier of the data to sign must
match the last binding. Pure: the functions answer why a use is refused (None: allowed).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass

from keytool.agentdest import DestConstraint, Hop
from keytool.errors import FormatError
from keytool.keys.base import PublicKey
from keytool.keys.blob import public_from_wire
from keytool.keys.cert import Certificate
from keytool.keys.fingerprint import fingerprint
from keytool.knownhosts import certificate_problem
from keytool.patterns import match_pattern
from keytool.transport.auth import MSG_USERAUTH_REQUEST, SERVICE
from keytool.transport.config import DEFAULT_CA_SIGNATURE_ALGORITHMS
from keytool.wire import Reader

HOSTBOUND_METHOD = "publickey-hostbound-v00@openssh.com"
# ssh-agent checks host certificates against these CA signature algorithms (no SHA-1)
CA_SIGNATURE_ALGORITHMS = DEFAULT_CA_SIGNATURE_ALGORITHMS


@dataclass(frozen=True, slots=True)
class Binding:
    """One session-bind@openssh.com: a host key (as the server showed it) and session."""

    key: PublicKey
    session_id: bytes
    is_forwarding: bool


def _matches_hop(key: PublicKey, hop: Hop, now: int) -> bool:
    """Is ``key`` one of the hop's keys, or a host certificate by one of its CAs valid
    for the hop's host name (the checks ssh makes of a host certificate)?"""
    for entry in hop.keys:
        if not isinstance(key, Certificate):
            if not entry.is_ca and key == entry.key:
                return True
            continue
        if not entry.is_ca or key.ca != entry.key:
            continue
        hostname = hop.hostname if hop.hostname is not None else "(ORIGIN)"  # as ssh-agent
        if certificate_problem(key, hostname, now, CA_SIGNATURE_ALGORITHMS) is None:
            return True
    return False


def permitting(
    source: PublicKey | None,
    to: PublicKey | None,
    constraints: Sequence[DestConstraint],
    user: str | None,
    now: int,
) -> DestConstraint | None:
    """The first constraint allowing the hop ``source > to`` (source None: from the
    origin; to None: any destination) for ``user`` (None: any), as
    permitted_by_dest_constraints."""
    for constraint in constraints:
        if source is None:
            if constraint.source.hostname is not None or constraint.source.keys:
                continue
        elif not _matches_hop(source, constraint.source, now):
            continue
        if to is not None and not _matches_hop(to, constraint.to, now):
            continue
        if (
            constraint.to.user is not None
            and user is not None
            and not match_pattern(user, constraint.to.user)
        ):
            continue
        return constraint
    return None


def _hop_name(source: PublicKey | None, to: PublicKey) -> str:
    start = "origin" if source is None else f"host key {fingerprint(source)}"
    return f"from {start} to host key {fingerprint(to)}"


def refusal(
    constraints: Sequence[DestConstraint],
    bindings: Sequence[Binding],
    bind_failed: bool,
    user: str | None = None,
    now: int | None = None,
) -> str | None:
    """Why a key with ``constraints`` may not be used on a connection with ``bindings``
    (``user``: for a user authentication as that user; None: listing the key), or None
    when it may (identity_permitted)."""
    if not constraints:
        return None
    if bind_failed and not bindings:
        return "a session bind failed earlier on this connection"
    if not bindings:
        return None  # local use
    when = int(time.time()) if now is None else now
    source: PublicKey | None = None
    last = len(bindings) - 1
    for position, binding in enumerate(bindings):
        test_user = None
        if position == last:
            test_user = user  # the user is known only for the last hop
            if binding.is_forwarding and user is not None:
                return "tried to sign on a forwarding hop"
        elif not binding.is_forwarding:
            return "tried to forward through a binding for authentication"
        if permitting(source, binding.key, constraints, test_user, when) is None:
            who = f" for user {user}" if test_user is not None else ""
            return f"not permitted {_hop_name(source, binding.key)}{who}"
        source = binding.key
    final = bindings[last]
    # listing through a forwarded agent: hide a key that may authenticate to this host
    # but not be used from it
    if (
        final.is_forwarding
        and user is None
        and permitting(final.key, None, constraints, None, when) is None
    ):
        return f"permitted at host key {fingerprint(final.key)} but not beyond it"
    return None


@dataclass(frozen=True, slots=True)
class UserAuthData:
    """What a user authentication's data to sign says (RFC 4252 §7)."""

    user: str
    session_id: bytes
    host_key: PublicKey | None  # publickey-hostbound-v00@openssh.com only


def parse_userauth(data: bytes, key: PublicKey) -> UserAuthData | None:
    """The data of a publickey user authentication by ``key``, or None when ``data`` is
    anything else (parse_userauth_request)."""
    try:
        r = Reader(data, "data to sign")
        session_id = r.string()
        if not session_id or r.byte() != MSG_USERAUTH_REQUEST:
            return None
        raw_user = r.string()
        service = r.string()
        method = r.string()
        sig_follows = r.byte()
        algorithm = r.string().decode("ascii")
        shown = public_from_wire(r.string())
        if (
            sig_follows != 1
            or service != SERVICE.encode()
            or shown != key
            or algorithm not in key.signature_algorithms
            or b"\0" in raw_user
        ):
            return None
        host_key = None
        if method == HOSTBOUND_METHOD.encode():
            host_key = public_from_wire(r.string())
        elif method != b"publickey":
            return None
        if r.remaining:
            return None
    except (FormatError, UnicodeDecodeError):
        return None
    return UserAuthData(raw_user.decode("utf-8", "surrogateescape"), session_id, host_key)


def sign_refusal(
    constraints: Sequence[DestConstraint],
    bindings: Sequence[Binding],
    bind_failed: bool,
    key: PublicKey,
    data: bytes,
) -> tuple[str | None, str | None]:
    """(why signing ``data`` with a destination-constrained ``key`` is refused or None,
    the user the signature authenticates as), as process_sign_request2 decides."""
    if not bindings:
        return "refusing to sign on a connection never bound to a session", None
    auth = parse_userauth(data, key)
    if auth is None:
        return "refusing to sign data that is not a user authentication request", None
    why = refusal(constraints, bindings, bind_failed, auth.user)
    if why is not None:
        return why, auth.user
    last = bindings[-1]
    if not hmac.compare_digest(auth.session_id, last.session_id):
        return (
            f"unexpected session identifier ({len(bindings)} bound) for user {auth.user}",
            auth.user,
        )
    if len(bindings) > 1 and auth.host_key is None:
        return "no host key in the request on a forwarded connection", auth.user
    if auth.host_key is not None and auth.host_key != last.key:
        return "the host key in the request is not the one last bound", auth.user
    return None, auth.user

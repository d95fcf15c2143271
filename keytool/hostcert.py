"""Host certificates (``@cert-authority`` lines in known_hosts) and RevokedHostKeys, as
ssh checks them; a certificate refused falls back to hostcheck.py's plain-key check."""

from __future__ import annotations

import os
from collections.abc import Sequence

from keytool import knownhosts
from keytool.errors import HostKeyError, KeytoolError
from keytool.hostcheck import (
    DEFAULT_GLOBAL_FILES,
    DEFAULT_USER_FILES,
    FAILED,
    STRICT_CHOICES,
    HostKeyDecision,
    Prompter,
    expand_path,
    host_entries,
    unread_files,
    verify_host_key,
)
from keytool.keys.base import PublicKey
from keytool.keys.fingerprint import fingerprint
from keytool.knownhosts import CertificateRefused, Certified, Known, KnownHost, Revoked, Unknown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keytool.keys.cert import Certificate


def _utc(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(min(seconds, 253402300799)))


def certificate_validity(cert: Certificate) -> str:
    """The validity window as ssh-keygen -L words it, in UTC."""
    from keytool.keys.cert import FOREVER

    if cert.valid_after == 0 and cert.valid_before == FOREVER:
        return "forever"
    if cert.valid_before == FOREVER:
        return f"from {_utc(cert.valid_after)}"
    return f"from {_utc(cert.valid_after)} to {_utc(cert.valid_before)}"


def describe_certificate(cert: Certificate) -> str:
    """One line naming a certificate: type, key, ID, serial, CA, validity."""
    return (
        f"{cert.key_type} {fingerprint(cert)} ID {cert.key_id!r} serial {cert.serial}, "
        f"CA {cert.ca.label} {fingerprint(cert.ca)}, valid {certificate_validity(cert)}"
    )


def _refusal(cert: Certificate, status: CertificateRefused) -> str:
    if status.entry is None:
        return f"signed by an unknown CA ({cert.ca.label} {fingerprint(cert.ca)}): {status.reason}"
    reason = status.reason
    if reason in ("expired", "not yet valid"):
        reason = f"{reason} (valid {certificate_validity(cert)})"
    return f"{reason} (CA at {status.entry.where})"


def verify_host_certificate(
    host: str,
    port: int,
    cert: Certificate,
    *,
    principal: str,
    ca_algorithms: Sequence[str],
    plain_allowed: bool = True,
    now: int | None = None,
    user_files: Sequence[str | os.PathLike[str]] = DEFAULT_USER_FILES,
    global_files: Sequence[str | os.PathLike[str]] = DEFAULT_GLOBAL_FILES,
    strict: str = "ask",
    hash_known_hosts: bool = False,
    prompt: Prompter | None = None,
    address: str | None = None,
    extra: Sequence[KnownHost] = (),
    recordable: bool = True,
) -> HostKeyDecision:
    """Check a host certificate served by ``host:port``, as ssh does: accepted when a
    ``@cert-authority`` line for the host names its CA and it is valid for
    ``principal`` (the host name or HostKeyAlias) at ``now``; refused when a
    ``@revoked`` line names its CA or its key. Otherwise the certified key is checked
    as a plain key (``verify_host_key``), so a host whose key is known still connects.

    Two choices of keytool's: when the plain key is not known either, a certificate
    whose CA is trusted for the host but which is not valid (expired, another
    principal) is refused whatever StrictHostKeyChecking says, rather than offered
    for trust on first use; and every refusal is one line naming the reason.
    ``plain_allowed`` is False when HostKeyAlgorithms has no algorithm for the plain
    key (ssh then refuses the retry too). Nothing is written for a certificate; a
    plain key accepted on the way is recorded as ``verify_host_key`` records it."""
    import time

    if strict not in STRICT_CHOICES:
        raise KeytoolError(f"StrictHostKeyChecking must be one of {', '.join(STRICT_CHOICES)}")
    candidates, warnings = host_entries(host, port, [*user_files, *global_files], extra)
    name = knownhosts.lookup_name(host, port)
    status = knownhosts.check_certificate(
        candidates,
        host,
        port,
        cert,
        principal=principal,
        now=int(time.time()) if now is None else now,
        ca_algorithms=ca_algorithms,
    )
    if isinstance(status, CertificateRefused) and status.entry is None and port != 22:
        # no CA line for [host]:port: as ssh, one for the bare host name serves
        bare = knownhosts.check_certificate(
            candidates,
            host,
            22,
            cert,
            principal=principal,
            now=int(time.time()) if now is None else now,
            ca_algorithms=ca_algorithms,
        )
        if isinstance(bare, Certified):
            status = bare
    if isinstance(status, Certified):
        note = f"host certificate accepted: signed by the CA at {status.entry.where}"
        notes = (*unread_files(warnings), note)
        return HostKeyDecision(status, warnings=tuple(warnings), notes=notes)
    if isinstance(status, Revoked):
        what = "its CA key" if status.entry.key.plain == cert.ca else "its key"
        raise HostKeyError(
            f"host certificate of {name} refused: {what} is marked @revoked at "
            f"{status.entry.where}. {FAILED}"
        )
    assert isinstance(status, CertificateRefused)
    refusal = f"host certificate of {name} refused: {_refusal(cert, status)}"
    plain = knownhosts.check(candidates, host, port, cert.key)
    if isinstance(plain, Unknown) and port != 22:  # a line without the port serves too
        known_bare = knownhosts.check(candidates, host, 22, cert.key)
        plain = known_bare if isinstance(known_bare, Known) else plain
    if not plain_allowed:
        raise HostKeyError(
            f"{refusal}; HostKeyAlgorithms allows no plain {cert.key.key_type} key. {FAILED}"
        )
    if isinstance(plain, Unknown) and (
        status.entry is not None or strict == "yes" or (strict == "ask" and prompt is None)
    ):
        raise HostKeyError(
            f"{refusal}; its {cert.key.label} key {fingerprint(cert.key)} is not in "
            f"known_hosts either. {FAILED}"
        )
    try:
        decision = verify_host_key(
            host,
            port,
            cert.key,
            user_files=user_files,
            global_files=global_files,
            strict=strict,
            hash_known_hosts=hash_known_hosts,
            prompt=prompt,
            address=address,
            extra=extra,
            recordable=recordable,
        )
    except HostKeyError as exc:
        raise HostKeyError(f"{refusal}; its plain key is not accepted either:\n{exc}") from None
    notes = (f"{refusal}; checking its key as a plain key, as ssh does",)
    # ssh says so aloud when the CA was trusted here but the certificate is not valid
    messages = (refusal, *decision.messages) if status.entry is not None else decision.messages
    return decision._replace(messages=messages, notes=notes)


def check_revoked_host_key(
    host: str, port: int, key: PublicKey, files: Sequence[str | os.PathLike[str]]
) -> None:
    """RevokedHostKeys, as ssh checks it before known_hosts and whatever
    StrictHostKeyChecking says: HostKeyError when a file (a KRL or a list of public
    keys) revokes ``key`` (for a host certificate: the certificate, its key or its CA
    key), and when a file cannot be read or parsed (ssh refuses the connection then
    too, rather than take a broken revocation file for an empty one)."""
    from keytool import revokedkeys

    name = knownhosts.lookup_name(host, port)
    for raw in files:
        path = expand_path(raw)
        try:
            reason = revokedkeys.check_file(path, key)
        except KeytoolError as exc:
            raise HostKeyError(
                f"cannot check the host key of {name} against RevokedHostKeys: {exc}. {FAILED}"
            ) from None
        if reason is not None:
            raise HostKeyError(
                f"host key {key.label} {fingerprint(key)} of {name} revoked by {path} "
                f"({reason}). {FAILED}"
            )

"""known_hosts lines (sshd(8) SSH_KNOWN_HOSTS FILE FORMAT): marker, host patterns, key."""

from __future__ import annotations

from dataclasses import dataclass

from keytool.errors import FormatError
from keytool.keys.base import PublicKey
from keytool.keys.pubfile import decode_key

MARKERS = ("@cert-authority", "@revoked")


@dataclass(frozen=True, slots=True)
class KnownHost:
    marker: str  # "", "@cert-authority" or "@revoked"
    hosts: str  # comma-separated patterns, or one hashed |1|salt|hash entry
    key: PublicKey
    comment: str
    line_number: int = 0


def parse_line(line: str, line_number: int = 0) -> KnownHost | None:
    """One known_hosts line; None for blank lines and comments."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    parts = text.split(None, 1)
    marker = ""
    if parts[0].startswith("@"):
        if parts[0] not in MARKERS:
            raise FormatError(f"invalid known_hosts line: unknown marker {parts[0][:32]}")
        marker = parts[0]
        if len(parts) < 2:
            raise FormatError("invalid known_hosts line: marker without hosts")
        parts = parts[1].split(None, 1)
    if len(parts) < 2:
        raise FormatError("invalid known_hosts line: expected 'hosts type base64'")
    hosts = parts[0]
    fields = parts[1].split(None, 2)
    if len(fields) < 2:
        raise FormatError("invalid known_hosts line: expected 'hosts type base64'")
    key = decode_key(fields[0], fields[1])
    return KnownHost(marker, hosts, key, fields[2] if len(fields) > 2 else "", line_number)

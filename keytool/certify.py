"""Certifying key files as ``ssh-keygen -s`` does: the key to certify is read from a
public key file (or FILE.pub, or the public part of a private key file), the
certificate goes to FILE-cert.pub (FILE without its ``.pub``) with the key's comment,
and the CA signs from its private key file or through an agent holding it."""

from __future__ import annotations

import os
from collections.abc import Sequence

from keytool.errors import AgentError, FormatError, KeytoolError
from keytool.keys.base import PrivateKey, PublicKey
from keytool.keys.cert import Certificate, Option
from keytool.record import Record, init

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import ClassVar

#: the signature algorithms an RSA CA may use (-t); rsa-sha2-512 unless told
RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


class Subject(Record):
    """A key to certify: the key, the comment its certificate file keeps, where the
    certificate goes."""

    __slots__ = ("comment", "key", "target")
    key: PublicKey
    comment: str
    target: Path

    def __init__(self, key: PublicKey, comment: str, target: Path) -> None:
        init(self, key=key, comment=comment, target=target)


def certificate_path(path: str) -> Path:
    """Where ssh-keygen writes the certificate of ``path``: ``id.pub`` -> ``id-cert.pub``."""
    from pathlib import Path

    base = path[: -len(".pub")] if path.endswith(".pub") else path
    return Path(f"{base}-cert.pub")


def _first_key_line(path: str) -> tuple[PublicKey, str] | None:
    """The first key line of a public key file, as ssh-keygen looks for it: comment
    lines and lines that do not parse are passed over, a private key's armour ends the
    search. The comment is the rest of the line, or the file's name when there is none."""
    from keytool.fields import split_blank_bytes
    from keytool.files import read_file
    from keytool.keys.pubfile import decode_key

    try:
        text = read_file(path, "public key")
    except KeytoolError:
        return None
    for raw in text.split(b"\n"):
        if raw[:1] in (b"#", b""):
            continue
        if raw.startswith(b"-----BEGIN"):
            return None
        parts = split_blank_bytes(raw, 2)  # the words as ssh-keygen cuts them
        if len(parts) < 2:
            continue
        try:
            key = decode_key(parts[0].decode("ascii"), parts[1].decode("ascii"))
        except (FormatError, UnicodeDecodeError):
            continue
        rest = parts[2] if len(parts) > 2 else b""
        for end in (b"\r", b"\n"):
            rest = rest.partition(end)[0]
        comment = rest.decode("utf-8", "replace") if rest else path
        return key, comment
    return None


def load_public_key(path: str) -> tuple[PublicKey, str]:
    """The public key ``path`` names and its comment: from the file itself, from
    ``path.pub``, or from the public part of the private key file (no comment)."""
    for candidate in (path, f"{path}.pub"):
        found = _first_key_line(candidate)
        if found is not None:
            return found
    from keytool.files import read_file
    from keytool.keyfiles import is_private_text, public_of_file

    text = read_file(path, "key file")  # a missing file: its own clear error
    if not is_private_text(text):
        raise FormatError(f"{path} holds no public key")
    return public_of_file(path).key, ""


def load_subject(path: str) -> Subject:
    key, comment = load_public_key(path)
    if isinstance(key, Certificate):
        raise FormatError(f"{path} is a certificate ({key.key_type}): certify its key instead")
    return Subject(key, comment, certificate_path(path))


def signature_algorithm(ca: PublicKey, requested: str | None) -> str | None:
    """The algorithm the CA signs with: -t for an RSA CA (rsa-sha2-512 by default);
    other CAs have one, which -t may name."""
    if ca.key_type == "ssh-rsa":
        if requested is None:
            return "rsa-sha2-512"
        if requested in RSA_ALGORITHMS:
            return requested
        raise KeytoolError(
            f"-t {requested} does not fit an RSA CA key: use {', '.join(RSA_ALGORITHMS)}"
        )
    if requested is not None and requested != ca.key_type:
        raise KeytoolError(f"-t {requested} does not fit the CA key ({ca.key_type})")
    return None


class AgentCA(PrivateKey):
    """A CA key held by an agent: signs through it (ssh-keygen -U)."""

    __slots__ = ("_agent", "_public")
    default_algorithm: ClassVar[str] = ""

    def __init__(self, public: PublicKey, socket_path: str | None = None) -> None:
        from keytool.agentclient import AgentClient

        if not (socket_path or os.environ.get("SSH_AUTH_SOCK")):
            raise AgentError("-U: the CA key is in an agent, but SSH_AUTH_SOCK is not set")
        self._agent = AgentClient(socket_path)
        blob = public.to_wire()
        if all(listed.blob != blob for listed in self._agent.identities()):
            raise AgentError(f"the agent does not hold the CA key ({public.key_type})")
        self._public = public

    @property
    def public(self) -> PublicKey:
        return self._public

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        from keytool.agentproto import SSH_AGENT_RSA_SHA2_256, SSH_AGENT_RSA_SHA2_512

        flags = {"rsa-sha2-256": SSH_AGENT_RSA_SHA2_256, "rsa-sha2-512": SSH_AGENT_RSA_SHA2_512}
        return self._agent.sign(self._public.to_wire(), data, flags.get(algorithm or "", 0))

    def fields_to_wire(self) -> bytes:
        raise KeytoolError("an agent's key has no private fields to write")

    def close(self) -> None:
        self._agent.close()


class Request(Record):
    """What a certificate says besides its key (from -I, -h, -n, -V, -z, -O)."""

    __slots__ = (
        "cert_type",
        "critical",
        "extensions",
        "key_id",
        "principals",
        "valid_after",
        "valid_before",
    )
    cert_type: int
    key_id: str
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    critical: Sequence[Option]
    extensions: Sequence[Option]

    def __init__(
        self,
        cert_type: int,
        key_id: str,
        principals: tuple[str, ...],
        valid_after: int,
        valid_before: int,
        critical: Sequence[Option],
        extensions: Sequence[Option],
    ) -> None:
        init(
            self,
            cert_type=cert_type,
            key_id=key_id,
            principals=principals,
            valid_after=valid_after,
            valid_before=valid_before,
            critical=critical,
            extensions=extensions,
        )


def certify(
    key: PublicKey, ca: PrivateKey, request: Request, serial: int, algorithm: str | None
) -> Certificate:
    """The certificate of ``key``, checked as a reader will check it: the CA's signature
    verifies and uses the algorithm asked for (an agent might have chosen another)."""
    from keytool.keys import cert
    from keytool.keys.blob import public_from_wire

    made = cert.sign(
        key,
        ca,
        cert_type=request.cert_type,
        key_id=request.key_id,
        principals=request.principals,
        valid_after=request.valid_after,
        valid_before=request.valid_before,
        critical=request.critical,
        extensions=request.extensions,
        serial=serial,
        algorithm=algorithm,
    )
    expected = algorithm or ca.public.key_type
    if made.signature_type != expected:
        raise KeytoolError(f"the CA signed with {made.signature_type}, not {expected}")
    try:
        checked = public_from_wire(made.to_wire())
    except FormatError as exc:
        raise KeytoolError(f"the certificate made does not check: {exc}") from None
    assert isinstance(checked, Certificate)
    return checked


def signed_message(cert: Certificate, target: Path, principals_text: str | None) -> str:
    """ssh-keygen's report of a certificate it wrote (its log line: every byte that is
    not printable ASCII as ``\\ooo``, whatever the locale)."""
    from keytool.certshow import format_validity
    from keytool.display import as_logged

    def shown(text: str) -> str:
        return as_logged(text, keep="\t")

    names = f" for {shown(principals_text)}" if principals_text is not None else ""
    return (
        f'Signed {cert.kind} key {target}: id "{shown(cert.key_id)}" serial {cert.serial}'
        f"{names} valid {format_validity(cert)}"
    )


def write_certificate(cert: Certificate, subject: Subject) -> None:
    from keytool.files import public_mode, write_atomic
    from keytool.keyfiles import public_file_text

    # as ssh-keygen writes it: a new file 0644 less the umask, a file replaced keeps its mode
    text = public_file_text(cert, subject.comment)
    write_atomic(subject.target, text, public_mode(), keep_mode=True)

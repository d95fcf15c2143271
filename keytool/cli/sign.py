"""keytool sign and keytool verify: SSH signatures of files, as ``ssh-keygen -Y sign``,
``-Y verify``, ``-Y check-novalidate``, ``-Y find-principals`` and ``-Y
match-principals`` make and check them (what git's SSH commit signing runs), with plain
keys or OpenSSH certificates."""

from __future__ import annotations

import os
import sys
import time

from keytool.errors import FormatError, KeytoolError
from keytool.output import confirm_overwrite

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from keytool import sshsig
    from keytool.allowedsigners import AllowedSigner
    from keytool.keys.base import PublicKey

# message pieces are hashed this large
_CHUNK = 1 << 20


def _say(line: str) -> None:
    sys.stderr.write(f"{line}\n")


def run_sign(
    key_file: str | None,
    namespace: str | None,
    files: list[str],
    sign_options: list[str] | None = None,
    force: bool = False,
    agent_key: bool = False,
) -> int:
    from keytool import sshsig
    from keytool.cli import argv_text
    from keytool.keyfiles import expand

    if not key_file or not namespace:
        raise KeytoolError("keytool sign needs -f KEY and -n NAMESPACE")
    namespace = argv_text(namespace)  # the bytes typed, as ssh-keygen signs them
    hash_algorithm = sshsig.DEFAULT_HASH
    for option in sign_options or []:
        name, eq, value = option.partition("=")
        if eq and name.lower() == "hashalg":
            hash_algorithm = value
        elif not eq and option.lower() in sshsig.HASHES:  # keytool's first form: -O sha256
            hash_algorithm = option.lower()
        else:
            raise _invalid_option(option)
    sshsig.digest(hash_algorithm)  # an unknown hash: said before anything is read
    public, signer = _signer(expand(key_file), agent_key)
    for name in files or ["-"]:
        if name == "-":
            _say("Signing data on standard input")
            message_hash = _hash_stream(sys.stdin.buffer.fileno(), hash_algorithm)
            out = _sign(public, signer, namespace, hash_algorithm, message_hash)
            sys.stdout.write(out)
            continue
        # as ssh-keygen names it: NAME.sig, whatever NAME is ("/" gives "/.sig")
        target = expand(f"{name}.sig")
        message_hash = _hash_file(name, hash_algorithm)
        out = _sign(public, signer, namespace, hash_algorithm, message_hash)
        # as ssh-keygen: asked once signed; any answer but y leaves the file as it is and
        # goes on to the next one, still a success
        if not force and target.exists() and not confirm_overwrite(f"{name}.sig"):
            continue
        from keytool.files import write_atomic

        # as ssh-keygen creates it (0666 less the umask); a file replaced keeps its mode
        write_atomic(target, out.encode("ascii"), _new_file_mode(), keep_mode=True)
        _say(f"Write signature to {target}")
    return 0


def _new_file_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _signer(path: Path, agent_key: bool) -> tuple[PublicKey, Callable[[bytes], bytes]]:
    """The signing key's public half (what the signature names) and a function signing
    with it, as ssh-keygen finds them: the public key is read first (``_public_half``)
    and signs through the agent when the agent holds it (-U: only so), even when
    ``path`` is the private key file; else the private key file signs (KEY for KEY.pub
    and KEY-cert.pub), a certificate's certified key standing in for the certificate."""
    from keytool.files import read_file

    text = read_file(path, "key file")
    public, in_file = _public_half(path, text)
    if public is None:
        if agent_key:
            raise KeytoolError(f"cannot read the public key of {path}")
        # a PEM private key without KEY.pub: ssh-keygen cannot sign with it, keytool can
        return _private_signer(path, None)
    agent = _agent_signer(public, required=agent_key)
    if agent is not None:
        return public, agent
    return _private_signer(_private_path(path, in_file), public)


def _public_half(path: Path, text: bytes) -> tuple[PublicKey | None, bool]:
    """The public key ssh-keygen reads first (sshkey_load_public), and whether it is
    the file's own: the file itself when it is a public key or certificate file, else
    KEY.pub beside it, else the public part an OpenSSH private key file carries
    unencrypted; None when there is none of these."""
    from keytool.files import read_file
    from keytool.keyfiles import pub_path
    from keytool.keys import openssh

    found = _public_in(text)
    if found is not None:
        return found, True
    beside = pub_path(path)
    if beside.exists():
        try:
            found = _public_in(read_file(beside, "public key"))
        except KeytoolError:
            found = None
        if found is not None:
            return found, False
    if openssh.is_openssh_private(text):
        try:
            return openssh.parse(text).public, False
        except KeytoolError:
            pass
    return None, False


def _public_in(text: bytes) -> PublicKey | None:
    """The first public key line of a public key file, as ssh-keygen reads one: a line
    that is not a key is passed over, and a private key's BEGIN line ends the search."""
    from keytool.keys.pubfile import parse_public_line

    for raw in text.split(b"\n"):
        if raw.startswith(b"-----BEGIN"):
            return None
        line = raw.lstrip(b" \t")
        if not line.strip() or raw.startswith(b"#"):
            continue
        try:
            return parse_public_line(line.decode("utf-8", "surrogateescape"))[0]
        except KeytoolError:
            continue
    return None


def _private_path(path: Path, public_file: bool) -> Path:
    """The private key file that signs for the key read from ``path``: KEY for KEY.pub
    and KEY-cert.pub (as ssh-keygen finds it), else ``path`` itself."""
    for suffix in ("-cert.pub", ".pub"):
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            private = path.with_name(path.name[: -len(suffix)])
            if not private.exists():
                raise KeytoolError(
                    f"no private key found for public key {path} (and no agent holds it)"
                )
            return private
    if public_file:
        raise KeytoolError(f"{path} is a public key that no agent holds, not a private key")
    return path


def _private_signer(
    path: Path, public: PublicKey | None
) -> tuple[PublicKey, Callable[[bytes], bytes]]:
    """Sign with the private key file ``path``; as ``public`` (a certificate of it, or
    the key itself) when given."""
    from keytool.keyfiles import load_private_file
    from keytool.keys.base import PrivateKey
    from keytool.keys.cert import Certificate, CertifiedPrivate

    key: PrivateKey = load_private_file(path)[0]
    if public is not None:
        if public.plain != key.public.plain:
            raise KeytoolError(f"the public key does not match the private key {path}")
        if isinstance(public, Certificate):
            key = CertifiedPrivate(public, key)
    algorithm = "rsa-sha2-512" if key.public.plain.key_type == "ssh-rsa" else None
    return key.public, lambda data: key.sign(data, algorithm)


def _agent_signer(public: PublicKey, required: bool) -> Callable[[bytes], bytes] | None:
    """Signing through the agent, when it holds ``public`` (a certificate identity for
    a certificate); None when there is no agent or it does not (an error if
    ``required``)."""
    from keytool.agentclient import AgentClient
    from keytool.agentproto import SSH_AGENT_RSA_SHA2_512
    from keytool.errors import AgentError

    if not os.environ.get("SSH_AUTH_SOCK"):
        if not required:
            return None
        raise AgentError("a public key to sign with, and no agent (SSH_AUTH_SOCK is not set)")
    blob = public.to_wire()
    try:
        agent = AgentClient()
        held = any(k.blob == blob for k in agent.identities())
    except (AgentError, OSError):
        if required:
            raise
        return None
    if not held:
        if required:
            raise AgentError("the agent does not hold this key")
        return None
    flags = SSH_AGENT_RSA_SHA2_512 if public.plain.key_type == "ssh-rsa" else 0
    return lambda data: agent.sign(blob, data, flags)


def _sign(
    public: PublicKey,
    signer: Callable[[bytes], bytes],
    namespace: str,
    hash_algorithm: str,
    message_hash: bytes,
) -> str:
    from keytool import sshsig

    data = sshsig.signed_data(namespace, hash_algorithm, message_hash)
    signature = signer(data)
    # a signer that is not the key (a confused agent) is caught here, not by a verifier
    if not public.verify(signature, data, sshsig.algorithms_for(public)):
        raise KeytoolError("the signature made does not verify with the key")
    return sshsig.armor(public, namespace, hash_algorithm, signature)


def _hash_stream(fd: int, hash_algorithm: str, first: bytes = b"") -> bytes:
    """The hash of ``first`` followed by all that ``fd`` holds, read to its end: stdin,
    a file, or a pipe or FIFO whose ``first`` bytes ``files.pipe_start`` read."""
    from keytool import sshsig

    hasher = sshsig.digest(hash_algorithm)
    hasher.update(first)
    while chunk := os.read(fd, _CHUNK):
        hasher.update(chunk)
    return hasher.digest()


def _hash_file(name: str, hash_algorithm: str) -> bytes:
    """The hash of the file ``name``, in ssh-keygen's words when it cannot be read.

    A pipe (``<(...)``) or a FIFO someone writes to is read to its end, as by
    ssh-keygen; a FIFO nothing writes to, a device (but /dev/null) or a socket is
    refused, where ssh-keygen would wait for ever or hash without end (/dev/zero)."""
    import stat

    from keytool import files
    from keytool.keyfiles import expand

    try:
        # non-blocking: opening a FIFO does not wait for a writer (pipe_start does, a while)
        fd = os.open(expand(name), os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise KeytoolError(f"Cannot open {name} for signing: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        mode = info.st_mode
        if stat.S_ISFIFO(mode):
            first = files.pipe_start(fd, name)  # closes fd when it refuses
        else:
            first = b""
            os.set_blocking(fd, True)
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or files._is_devnull(info)):
                os.close(fd)
                raise KeytoolError(f"{name}: not a regular file or a pipe")
    except OSError as exc:
        os.close(fd)
        raise KeytoolError(f"Cannot open {name} for signing: {exc.strerror}") from None
    _say(f"Signing file {name}")
    try:
        return _hash_stream(fd, hash_algorithm, first)
    except OSError as exc:  # a directory opens, and fails here
        raise KeytoolError(f"Signing {name} failed: {exc.strerror}") from None
    finally:
        os.close(fd)


class _Lines:
    """The good lines of an allowed_signers walk, in order; the bad ones it reached are
    kept in ``bad`` (ssh-keygen reports each and goes on: a bad line can only take a
    grant away, never give one)."""

    def __init__(self, items: Iterable[AllowedSigner | FormatError]) -> None:
        self._items = items
        self.bad: list[str] = []

    def __iter__(self) -> Iterator[AllowedSigner]:
        for item in self._items:
            if isinstance(item, FormatError):
                self.bad.append(str(item))
            else:
                yield item

    def say_bad(self) -> None:
        for reason in self.bad:
            _say(f"keytool: {reason}; line ignored")


def _match_principals(
    allowed_file: str | None,
    identity: str | None,
    signature_file: str | None,
    namespace: str | None,
) -> int:
    """ssh-keygen -Y match-principals: the principals field of each line of the
    allowed_signers file whose patterns match ``identity``, one per line."""
    from keytool import allowedsigners

    if allowed_file is None or identity is None:
        raise KeytoolError("--match-principals needs -f ALLOWED_SIGNERS and -I PRINCIPAL")
    if signature_file is not None or namespace is not None:
        raise KeytoolError("--match-principals reads no signature: no -s or -n with it")
    # as ssh-keygen 9.2: why, then "No principal matched.", its negative error code
    # as the status (252 a bad line among the matching ones, 232 a file it cannot
    # read, 210 no line matched)
    try:
        text = _read_allowed(allowed_file)
    except KeytoolError as exc:
        _say(f"keytool: {exc}")
        raise _no_principal(_SYSTEM_ERROR) from None
    try:
        found = allowedsigners.match_principals(text, identity, allowed_file)
    except FormatError as exc:  # the first bad line among those matching: no answer
        _say(f"keytool: {exc}")
        raise _no_principal(_INVALID_FORMAT) from None
    if not found:
        raise _no_principal(_KEY_NOT_FOUND)
    for principals in found:
        print(principals)
    return 0


#: ssh-keygen's exit statuses for match-principals: its error codes (ssherr.h
#: SSH_ERR_INVALID_FORMAT, SSH_ERR_SYSTEM_ERROR, SSH_ERR_KEY_NOT_FOUND) as a byte
_INVALID_FORMAT, _SYSTEM_ERROR, _KEY_NOT_FOUND = -4 & 0xFF, -24 & 0xFF, -46 & 0xFF


def _no_principal(status: int) -> KeytoolError:
    error = KeytoolError("No principal matched.")
    error.exit_code = status
    return error


def _read_input(name: str, what: str) -> bytes:
    """The bytes of the signature or allowed_signers file ``name``, read as ssh-keygen
    reads them: a regular file, or a pipe or FIFO (``-s <(...)``) read to its end."""
    from keytool.files import read_file
    from keytool.keyfiles import expand

    return read_file(expand(name), what, pipes=True)


def _read_allowed(allowed_file: str) -> str:
    # a principal that is not UTF-8 is kept as its bytes (surrogate escapes): matched
    # against -I as bytes, and printed as those bytes, as ssh-keygen does
    raw = _read_input(allowed_file, "allowed signers file")
    return raw.decode("utf-8", "surrogateescape")


def _read_signature(signature_file: str) -> sshsig.Signature:
    from keytool import sshsig

    text = _read_input(signature_file, "signature file")
    try:
        return sshsig.parse(text)
    except FormatError as exc:
        raise FormatError(f"{signature_file}: {exc}") from None


def run_verify(
    signature_file: str | None,
    namespace: str | None,
    allowed_file: str | None,
    identity: str | None,
    find_principals: bool = False,
    verify_options: list[str] | None = None,
    revoked_file: str | None = None,
    match_principals: bool = False,
) -> int:
    from keytool import allowedsigners, sshsig
    from keytool.cli import argv_text

    allowed_file = allowed_file or None
    # -I and -n as the bytes typed, matched with the files' bytes as ssh-keygen does
    identity = None if identity is None else argv_text(identity)
    namespace = None if namespace is None else argv_text(namespace)
    if match_principals:
        if verify_options:
            raise _invalid_option(verify_options[0])  # ssh-keygen takes none here
        return _match_principals(allowed_file, identity, signature_file, namespace)
    if not signature_file:
        raise KeytoolError("keytool verify needs -s SIGNATURE")
    # as ssh-keygen: the options and the command line first, then the files; a file
    # that cannot be read or parsed is a signature that does not verify (255)
    now = int(time.time())
    print_pubkey = False
    try:
        for option in verify_options or []:
            name, eq, value = option.partition("=")
            if eq and name.lower() == "verify-time":
                try:
                    now = allowedsigners.parse_time(value, "-O verify-time")
                except FormatError:
                    raise _invalid_option(option, 'Invalid "verify-time" option') from None
            elif option.lower() == "print-pubkey" and not find_principals:
                print_pubkey = True
            else:
                raise _invalid_option(option)
    except KeytoolError:
        if not find_principals:  # ssh-keygen's verify says so for a bad option too
            print("Could not verify signature.")
            sys.stdout.flush()
        raise
    if find_principals:
        if revoked_file is not None:
            raise KeytoolError("-r is for verifying a signature, not with --find-principals")
        if allowed_file is None:
            raise KeytoolError("--find-principals needs -f ALLOWED_SIGNERS")
        try:
            sig = _read_signature(signature_file)
            text = _read_allowed(allowed_file)
        except KeytoolError as exc:
            exc.exit_code = 255  # ssh-keygen's status for every -Y failure
            raise
        lines = _Lines(allowedsigners.walk(text, allowed_file))
        found = allowedsigners.principals_for(lines, sig.key, now)
        if found is None:
            ignored = f" ({lines.bad[0]}; the line is ignored)" if lines.bad else ""
            error = KeytoolError(f"No principal matched.{ignored}")
            error.exit_code = 255
            raise error
        lines.say_bad()
        for principal in found:
            print(principal)
        return 0
    if not namespace:
        raise KeytoolError("keytool verify needs -n NAMESPACE")
    if (allowed_file is None) != (identity is None):
        raise KeytoolError("give -f ALLOWED_SIGNERS and -I IDENTITY together (or neither)")
    try:
        sig = _read_signature(signature_file)
        signers = None if allowed_file is None else _read_allowed(allowed_file)
        message_hash = _hash_stream(sys.stdin.buffer.fileno(), sig.hash_algorithm)
        who = sshsig.describe_key(sig.key)
        sshsig.verify(sig, namespace, message_hash)
        if revoked_file is not None:
            _check_revoked(revoked_file, sig.key, who)
        if signers is not None and identity is not None:
            lines = _Lines(allowedsigners.walk(signers, allowed_file or "", identity))
            why = allowedsigners.refusal(lines, identity, sig.key, namespace, now)
            if why is not None:
                if why == allowedsigners.NO_LINE and lines.bad:
                    why = f"{lines.bad[0]} (the line is ignored)"
                else:
                    why = f"{allowed_file} {why}"
                raise sshsig.SignatureError(
                    f"{identity} may not sign for {namespace!r} with {who}: {why}"
                )
            lines.say_bad()
    except KeytoolError as exc:  # a bad signature, or one that cannot be read
        print("Could not verify signature.")
        sys.stdout.flush()
        exc.exit_code = 255
        raise
    if identity is not None:
        print(f'Good "{namespace}" signature for {identity} with {who}')
    else:
        print(f'Good "{namespace}" signature with {who}')
    if print_pubkey:  # the signing key (or certificate) as a line, no comment
        from keytool.keys.pubfile import format_public_line

        print(format_public_line(sig.key, ""))
    return 0


def _invalid_option(option: str, message: str = "") -> KeytoolError:
    """An -O option this operation does not take, in ssh-keygen's words and status."""
    error = KeytoolError(message or f'Invalid option "{option}"')
    error.exit_code = 255
    return error


def _check_revoked(revoked_file: str, key: PublicKey, who: str) -> None:
    """ssh-keygen -Y verify -r: a signature by a key (or a certificate, its key or its
    CA key) that the KRL or list of public keys revokes does not verify; nor does any
    signature when the file cannot be read or parsed."""
    from keytool import revokedkeys, sshsig
    from keytool.keyfiles import expand

    try:
        reason = revokedkeys.check_file(expand(revoked_file), key)
    except KeytoolError as exc:
        raise sshsig.SignatureError(f"cannot check for revoked keys: {exc}") from None
    if reason is not None:
        raise sshsig.SignatureError(f"{who} is revoked by {revoked_file} ({reason})")

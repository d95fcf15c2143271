"""One exception hierarchy: every error keytool raises on purpose is a KeytoolError.

The CLI turns a KeytoolError into one line on stderr and a non-zero exit; anything
else escaping is a bug.
"""

from __future__ import annotations


class KeytoolError(Exception):
    """Base of every error keytool raises on purpose."""

    exit_code = 1


class UsageError(KeytoolError):
    """A command line that does not parse: an unknown flag, a missing value."""

    exit_code = 2


class FormatError(KeytoolError):
    """Bytes or text that do not parse: a corrupt key file, a malformed message."""


class UnsupportedKeyError(FormatError):
    """A well-formed key of a type keytool does not handle (DSA, for instance)."""


class PassphraseError(KeytoolError):
    """A private key is encrypted and the passphrase is missing or wrong."""


class WrongPassphraseError(PassphraseError):
    """A passphrase was given and does not open the key (it may be asked again)."""


class AskpassError(KeytoolError):
    """The SSH_ASKPASS program could not be run (not: the user cancelled)."""


class KeyFileError(KeytoolError):
    """A key file that cannot be used as it is: missing, unreadable, bad permissions."""


class ProtocolError(KeytoolError):
    """The peer broke the SSH protocol."""

    exit_code = 255


class NegotiationError(ProtocolError):
    """No algorithm both sides support."""


class DisconnectError(ProtocolError):
    """The peer disconnected, or the connection failed."""


class ConnectionDropped(DisconnectError):
    """The server closed (or reset) the connection before sending a single packet:
    having sent nothing, only sshd's "Exceeded MaxStartups" notice, or only its
    version line. sshd does the first two to connections past MaxStartups, a load
    that passes (copy-id tries again). A server that sent anything else before its
    version line gets a ProtocolError instead; one that sent packets, a DisconnectError
    (``ClientTransport`` tells which, for either driver)."""


class PeerDisconnect(DisconnectError):
    """The peer ended the connection on purpose (SSH_MSG_DISCONNECT, with a reason)."""


class AuthError(KeytoolError):
    """User authentication failed."""

    exit_code = 255


class HostKeyError(KeytoolError):
    """The server's host key is unknown, changed or revoked."""

    exit_code = 255


class HostKeyPinError(HostKeyError):
    """The server showed a host key other than the one pinned (--expect-hostkey);
    ``key_type`` is the type of the key it showed."""

    def __init__(self, message: str, key_type: str) -> None:
        super().__init__(message)
        self.key_type = key_type


class AgentError(KeytoolError):
    """The agent refused, failed or cannot be reached."""


class NoAgentError(AgentError):
    """No agent to talk to: SSH_AUTH_SOCK unset, or nothing listening there. Exit 2,
    as ssh-add's (scripts tell "no agent" from "no keys" by it)."""

    exit_code = 2


class ConnectError(DisconnectError):
    """The TCP connection could not be made: refused, unreachable, unknown host, timed out."""


class TimedOut(DisconnectError):
    """A wait for the peer ran past its timeout."""


class SftpError(KeytoolError):
    """An SFTP request failed; ``code`` is the SSH_FX_* status (draft-ietf-secsh-filexfer-02 §7)."""

    def __init__(self, message: str, code: int = 4) -> None:
        super().__init__(message)
        self.code = code


def in_words(exc: BaseException) -> str:
    """Any error as one line: ours as it says itself, the system's in its words (no
    path), running out of memory as that, anything else (a bug) by its type and
    message: for the places that must go on after an error nobody expected."""
    if isinstance(exc, KeytoolError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"

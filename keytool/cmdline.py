"""ssh's ``~C`` command line (EnableEscapeCommandline yes), without I/O: what a line
typed at the ``ssh>`` prompt asks for, and ssh 9.2's words for the answers.

    -L[bind_address:]port:host:hostport    a local forward, now
    -R[bind_address:]port:host:hostport    a remote forward
    -D[bind_address:]port                  a dynamic (SOCKS) forward
    -KL / -KR / -KD [bind_address:]port    cancel one
    !command                               run a local command (PermitLocalCommand)
    ? (or h, H)                            the list above

The leading ``-`` may be left out, as ssh allows. keytool.blocking reads the line
(the terminal out of raw mode meanwhile) and carries the command out with
keytool.tunnels.
"""

from __future__ import annotations

from keytool.errors import FormatError
from keytool.forwardspec import (
    DynamicForward,
    LocalForward,
    RemoteForward,
    parse_dynamic_forward,
    parse_local_forward,
    parse_remote_forward,
)
from keytool.record import Record, init

PROMPT = "\r\nssh> "

HELP = "help"
LOCAL = "local"  # -L and -D
REMOTE = "remote"
CANCEL_LOCAL = "cancel local"
CANCEL_DYNAMIC = "cancel dynamic"
CANCEL_REMOTE = "cancel remote"
LOCAL_COMMAND = "local command"
SAY = "say"  # nothing to do but say ``words``
NOTHING = "nothing"

# ssh's words
FORWARDING = "Forwarding port."
FAILED = "Port forwarding failed."
CANCELED = "Canceled forwarding."
UNKNOWN = "Unknown port forwarding."


def help_lines(permit_local_command: bool) -> list[str]:
    lines = [
        "Commands:",
        "      -L[bind_address:]port:host:hostport    Request local forward",
        "      -R[bind_address:]port:host:hostport    Request remote forward",
        "      -D[bind_address:]port                  Request dynamic forward",
        "      -KL[bind_address:]port                 Cancel local forward",
        "      -KR[bind_address:]port                 Cancel remote forward",
        "      -KD[bind_address:]port                 Cancel dynamic forward",
    ]
    if permit_local_command:
        lines.append("      !args                                  Execute local command")
    return lines


class Command(Record):
    """What one line asks for: ``kind``, with the forward (``forward``), the listening
    side of one to cancel (``bind``, ``port``, ``path``), the local ``command``, or
    the ``words`` to say."""

    __slots__ = ("bind", "command", "forward", "kind", "path", "port", "words")
    kind: str
    forward: LocalForward | RemoteForward | None
    bind: str | None
    port: int
    path: str | None
    command: str
    words: tuple[str, ...]

    def __init__(
        self,
        kind: str,
        forward: LocalForward | RemoteForward | None = None,
        bind: str | None = None,
        port: int = 0,
        path: str | None = None,
        command: str = "",
        words: tuple[str, ...] = (),
    ) -> None:
        init(
            self,
            kind=kind,
            forward=forward,
            bind=bind,
            port=port,
            path=path,
            command=command,
            words=words,
        )


def _say(*words: str) -> Command:
    return Command(SAY, words=words)


def parse(line: str, permit_local_command: bool) -> Command:
    """The command ``line`` (without its newline) asks for, as ssh reads it."""
    s = line.lstrip()
    if s.startswith("-"):
        s = s[1:]
    if not s:
        return Command(NOTHING)
    if s[0] in "hH?":
        return _say(*help_lines(permit_local_command))
    if s[0] == "!" and permit_local_command:
        return Command(LOCAL_COMMAND, command=s[1:])
    cancel = s[0] == "K"
    if cancel:
        s = s[1:]
    if not s or s[0] not in "LRD":
        return _say("Invalid command.")
    kind, spec = s[0], s[1:].lstrip()
    if cancel:
        try:  # [bind_address:]port, or a socket path, as a -D takes them
            where = parse_dynamic_forward(spec)
        except FormatError:
            return _say("Bad forwarding close specification.")
        which = {"L": CANCEL_LOCAL, "D": CANCEL_DYNAMIC, "R": CANCEL_REMOTE}[kind]
        return Command(which, bind=where.bind_address, port=where.listen_port,
                       path=where.listen_path)  # fmt: skip
    try:
        if kind == "R":
            return Command(REMOTE, forward=parse_remote_forward(spec))
        forward: LocalForward = (
            parse_dynamic_forward(spec) if kind == "D" else parse_local_forward(spec)
        )
    except FormatError:
        which = "remote" if kind == "R" else "local"
        return _say(f"Bad {which} forwarding specification.")
    return Command(LOCAL, forward=forward)


def matches(forward: LocalForward | RemoteForward, command: Command) -> bool:
    """Whether ``forward`` listens where ``command`` (a cancel) names: the same port
    (and address, when one is given) or socket path; -KD only dynamic forwards, -KL
    only the others."""
    if command.kind == CANCEL_DYNAMIC and not isinstance(forward, DynamicForward):
        return False
    if command.kind == CANCEL_LOCAL and isinstance(forward, DynamicForward):
        return False
    if command.path is not None:
        return forward.listen_path == command.path
    if forward.listen_path is not None or forward.listen_port != command.port:
        return False
    return command.bind is None or forward.bind_address == command.bind

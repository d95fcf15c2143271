"""Terminal modes for a pty-req (RFC 4254 §8), from the local terminal's termios
attributes, as ssh sends them; and ssh's escape sequences on a terminal session
(``~.`` disconnects, ``~~`` sends one ``~``, ``~?`` lists them), as a state machine.
No I/O: keytool/localtty.py is the terminal's adapter."""

from __future__ import annotations

import sys
import termios
from collections.abc import Iterable, Sequence

from keytool.wire import Writer

#: RFC 4254 §8 opcodes of the special characters, with their termios index
_CHARS = (
    (1, "VINTR"),
    (2, "VQUIT"),
    (3, "VERASE"),
    (4, "VKILL"),
    (5, "VEOF"),
    (6, "VEOL"),
    (7, "VEOL2"),
    (8, "VSTART"),
    (9, "VSTOP"),
    (10, "VSUSP"),
    (12, "VREPRINT"),
    (13, "VWERASE"),
    (14, "VLNEXT"),
    (18, "VDISCARD"),
)
#: opcodes of the flags, with the termios field (0 iflag, 1 oflag, 2 cflag, 3 lflag)
_FLAGS = (
    (30, 0, "IGNPAR"),
    (31, 0, "PARMRK"),
    (32, 0, "INPCK"),
    (33, 0, "ISTRIP"),
    (34, 0, "INLCR"),
    (35, 0, "IGNCR"),
    (36, 0, "ICRNL"),
    (37, 0, "IUCLC"),
    (38, 0, "IXON"),
    (39, 0, "IXANY"),
    (40, 0, "IXOFF"),
    (41, 0, "IMAXBEL"),
    (42, 0, "IUTF8"),
    (50, 3, "ISIG"),
    (51, 3, "ICANON"),
    (52, 3, "XCASE"),
    (53, 3, "ECHO"),
    (54, 3, "ECHOE"),
    (55, 3, "ECHOK"),
    (56, 3, "ECHONL"),
    (57, 3, "NOFLSH"),
    (58, 3, "TOSTOP"),
    (59, 3, "IEXTEN"),
    (60, 3, "ECHOCTL"),
    (61, 3, "ECHOKE"),
    (62, 3, "PENDIN"),
    (70, 1, "OPOST"),
    (71, 1, "OLCUC"),
    (72, 1, "ONLCR"),
    (73, 1, "OCRNL"),
    (74, 1, "ONOCR"),
    (75, 1, "ONLRET"),
    (90, 2, "CS7"),
    (91, 2, "CS8"),
    (92, 2, "PARENB"),
    (93, 2, "PARODD"),
)
#: flags the platform has that Python's termios module may not name (IUTF8 came in
#: Python 3.13), with their value there
_MISSING = {"IUTF8": 0o40000} if sys.platform.startswith(("linux", "darwin")) else {}
TTY_OP_END = 0
TTY_OP_ISPEED = 128
TTY_OP_OSPEED = 129
#: what a special character that is off is sent as (ssh's _POSIX_VDISABLE on Linux)
_DISABLED = 0


def _baud(speed: int) -> int:
    """A termios speed constant (termios.B38400...) as bits per second."""
    for name in dir(termios):
        if name.startswith("B") and name[1:].isdigit() and getattr(termios, name) == speed:
            return int(name[1:])
    return 9600


def encode_modes(attributes: Sequence[object] | None) -> bytes:
    """The encoded terminal modes of ``termios.tcgetattr``'s list (None: no terminal:
    just the end marker, the server's defaults then hold)."""
    w = Writer()
    if attributes is not None:
        iflag, oflag, cflag, lflag, ispeed, ospeed, chars = attributes
        fields = (iflag, oflag, cflag, lflag)
        assert isinstance(chars, list)
        for opcode, name in _CHARS:
            index = getattr(termios, name, None)
            if index is None or index >= len(chars):
                continue
            char = chars[index]
            value = char[0] if isinstance(char, bytes) and char else char
            w.byte(opcode).uint32(value if isinstance(value, int) else _DISABLED)
        for opcode, field, name in _FLAGS:
            bit = getattr(termios, name, _MISSING.get(name))
            flags = fields[field]
            if bit is None or not isinstance(flags, int):
                continue
            w.byte(opcode).uint32(1 if flags & bit == bit else 0)
        for opcode, speed in ((TTY_OP_ISPEED, ispeed), (TTY_OP_OSPEED, ospeed)):
            if isinstance(speed, int):
                w.byte(opcode).uint32(_baud(speed))
    w.byte(TTY_OP_END)
    return w.getvalue()


# ---------------------------------------------------------------- escape sequences

DISCONNECT = "disconnect"  # ~.
HELP = "help"  # ~?
BREAK = "break"  # ~B: a BREAK for the remote terminal (RFC 4335)
REKEY = "rekey"  # ~R: new keys now
LIST = "list"  # ~#: the open channels
COMMAND_LINE = "command line"  # ~C: off unless EnableEscapeCommandline, as ssh
SUSPEND = "suspend"  # ~^Z: stop keytool (the shell's job control), as ssh
LOUDER = "louder"  # ~v: LogLevel one up
QUIETER = "quieter"  # ~V: LogLevel one down
BACKGROUND = "background"  # ~&: on in the background, the session's input at its end

_ACTIONS = {
    ord("."): DISCONNECT,
    ord("?"): HELP,
    ord("B"): BREAK,
    ord("R"): REKEY,
    ord("#"): LIST,
    ord("C"): COMMAND_LINE,
    0x1A: SUSPEND,  # ^Z
    ord("v"): LOUDER,
    ord("V"): QUIETER,
    ord("&"): BACKGROUND,
}
#: escapes a shared connection's client session passes on as typed, as ssh's master
_NOT_SHARED = frozenset({COMMAND_LINE, LOUDER, QUIETER, BACKGROUND})

#: ssh 9.2's escape help lines that keytool has (ssh's also lists ~V/v, ~^Z and ~&,
#: which keytool passes on as typed): (key, words, for a shared session's client)
_HELP_LINES = (
    (".", "terminate session", True),
    (".", "terminate connection (and any multiplexed sessions)", False),
    ("B", "send a BREAK to the remote system", None),
    ("C", "open a command line", False),
    ("R", "request rekey", None),
    ("V/v", "decrease/increase verbosity (LogLevel)", False),
    ("^Z", "suspend ssh", False),
    ("#", "list forwarded connections", None),
    ("&", "background ssh (when waiting for connections to terminate)", False),
    ("?", "this message", None),
)


def help_text(
    char: int, shared: bool = False, command_line: bool = False, log_on_stderr: bool = True
) -> str:
    """What ssh writes for ``~?``, with the escape character in use; ``shared``: for a
    session of a shared connection's client (its master answers the escapes);
    ``command_line``: EnableEscapeCommandline is on (~C is listed); ``log_on_stderr``:
    not -E (~V/v is listed)."""
    c = chr(char)
    lines = [f"{c}?", "Supported escape sequences:"]
    for key, words, only in _HELP_LINES:
        if (key == "C" and not command_line) or (key == "V/v" and not log_on_stderr):
            continue
        if only is None or only == shared:
            lines.append(f" {c}{key:<3} - {words}")
    lines.append(f" {c}{c}   - send the escape character by typing it twice")
    lines.append("(Note that escapes are only recognized immediately after newline.)")
    return "".join(f"{line}\r\n" for line in lines)


def echo(char: int, action: str, shared: bool = False, level: str = "") -> str:
    """What ssh writes (to stderr) when an escape is taken (``shared``: in a session of
    a shared connection's client; ``level``: the LogLevel after ~v or ~V, "" when the
    log is not on stderr)."""
    c = chr(char)
    if action in (LOUDER, QUIETER):
        key = "v" if action == LOUDER else "V"
        return f"{c}{key} [{f'LogLevel {level}' if level else 'Logging to syslog'}]\r\n"
    if action == BACKGROUND:
        return f"{c}& [backgrounded]\n"  # the terminal is itself again by then
    if action == SUSPEND:
        if shared:
            return f"{c}^Z escape not available to multiplexed sessions\r\n"
        return f"{c}^Z [suspend ssh]\r\n"
    return {
        DISCONNECT: f"{c}.\r\n",
        BREAK: f"{c}B\r\n",
        LIST: f"{c}#\r\n",
        COMMAND_LINE: "commandline disabled\r\n",
    }.get(action, "")


def open_channels(channels: Iterable[tuple[int, str]]) -> str:
    """``~#``'s list: the channels open, with what each is for."""
    lines = ["The following connections are open:"]
    lines += [f"  #{number} {kind}" for number, kind in channels]
    return "".join(f"{line}\r\n" for line in lines)


class Escapes:
    """ssh's EscapeChar on a terminal: after a newline (or at the start), the escape
    character is held; the next byte says what it was for (``_ACTIONS``; another
    byte is sent on after the escape character, as ssh). ``feed`` returns the bytes
    to send on and the escapes taken, in order; input after ``~.`` is dropped."""

    def __init__(self, char: int = ord("~"), shared: bool = False) -> None:
        self.char = char
        self.shared = shared  # a shared connection's client session: _NOT_SHARED go on
        self.at_line_start = True
        self.held = False

    def feed(self, data: bytes) -> tuple[bytes, list[str]]:
        out = bytearray()
        actions: list[str] = []
        for byte in data:
            if self.held:
                self.held = False
                action = _ACTIONS.get(byte)
                if self.shared and action in _NOT_SHARED:
                    action = None
                if action is not None:
                    actions.append(action)
                    if action == DISCONNECT:
                        return bytes(out), actions
                    continue
                if byte != self.char:
                    out.append(self.char)
                out.append(byte)
            elif byte == self.char and self.at_line_start:
                self.held = True
                continue
            else:
                out.append(byte)
            self.at_line_start = byte in (ord("\r"), ord("\n"))
        return bytes(out), actions

"""What a differential fuzz of ``ssh -G`` against ``keytool exec -G`` left, its causes in
the configuration reader; each case run through the real ssh 9.2 and keytool on the
same configuration and flags, and compared: the status, the lines -G shows of the
keywords concerned, and what is said on stderr.

An empty value given to a flag (-l '', -b '', -B '', -S '') is taken as it is; an empty
quoted value on an -o or config line is refused for the keywords ssh refuses it for,
in its words. ProxyJump is read as ssh's parse_jump reads the line (its first word,
quotes and all), and from the command line its hops' host and user names are checked
too. LocalCommand is shown as written (its tokens are expanded only to run it);
SessionType subsystem from -o needs a subsystem named; an invalid ConnectionAttempts
is refused without a word at LogLevel QUIET."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL
from tests.interop.confighelp import SSH_ONLY as _SSH_ONLY
from tests.interop.confighelp import run_in_home as _run
from tests.peers import require


def _said(stderr: str, words: bool) -> list[str]:
    """The stderr lines that count: keytool's prefix taken off, the place of an -o line
    as each names it ("command-line line 0" / "command-line option 1") made one, ssh's
    usage text after a refusal and its lines alone left out. Without ``words``, only
    how many lines there are (one clear line, in words of its own)."""
    said = []
    for line in stderr.splitlines():
        if line.startswith(_SSH_ONLY) or line.startswith(("usage:", " ", "\t")):
            continue
        line = line.removeprefix("keytool: ")
        head, colon, rest = line.partition(": ")
        if colon and head.startswith("command-line "):
            line = f"command-line: {rest}"
        said.append(line)
    return said if words else [f"{len(said)} line(s)"]


def _both(
    tmp_path: Path, text: str, args: tuple[str, ...], keys: tuple[str, ...], words: bool = True
) -> None:
    """ssh and keytool exec on ``args``, a config file of ``text`` under Host x: the
    same status, -G lines of ``keys`` and stderr."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    config = tmp_path / "config"
    config.write_text(f"Host x\n{text}")
    shown = []
    for command in ([require("ssh")], [*KEYTOOL, "exec"]):
        result = _run([*command, "-F", str(config), *args], home)
        assert "Traceback" not in result.stderr
        lines = [line for line in result.stdout.splitlines() if line.startswith(keys)]
        shown.append((result.returncode, lines, _said(result.stderr, words)))
    theirs, ours = shown
    assert ours == theirs


# --- 1, 2: a flag's empty value --------------------------------------------------------

FLAG_CASES = [
    ("-l", "", "x"),
    ("-l", "", "u@x"),
    ("u@x", "-l", ""),
    ("-l", "", "-o", "User=bob", "x"),
    ("-o", "User=bob", "-l", "", "x"),
    ("-l", "", "-S", "cm-%r@%h", "x"),
    ("-p", "23", "-l", "", "-o", "Port=24", "x"),
    ("-b", "", "x"),
    ("-B", "", "x"),
    ("-S", "", "x"),
    ("-S", "", "-o", "ControlPath=cm-other", "x"),
]


@pytest.mark.parametrize("args", FLAG_CASES, ids=repr)
def test_an_empty_flag_value_is_taken_as_ssh_takes_it(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    keys = ("user ", "port ", "bindaddress ", "bindinterface ", "controlpath ")
    _both(tmp_path, "", ("-G", *args), keys)


# --- 3: an empty quoted value on an -o or config line ---------------------------------

#: every keyword whose value is a string or a list of them, and a few others
EMPTY_KEYWORDS = [
    "User", "HostName", "BindAddress", "BindInterface", "CertificateFile", "IdentityFile",
    "IdentityFile2", "IdentityAgent", "HostKeyAlias", "XAuthLocation",
    "PreferredAuthentications", "PKCS11Provider", "SmartcardDevice", "SecurityKeyProvider",
    "GSSAPIKexAlgorithms", "GSSAPIClientIdentity", "GSSAPIServerIdentity",
    "HostbasedAcceptedAlgorithms", "HostbasedKeyTypes", "KbdInteractiveDevices",
    "IgnoreUnknown", "ForwardAgent", "UserKnownHostsFile", "GlobalKnownHostsFile",
    "LogVerbose", "SendEnv", "SetEnv", "ProxyCommand", "LocalCommand", "RemoteCommand",
    "KnownHostsCommand", "Port", "Ciphers", "MACs", "KexAlgorithms", "HostKeyAlgorithms",
    "PubkeyAcceptedAlgorithms", "CASignatureAlgorithms", "FingerprintHash", "EscapeChar",
    "RekeyLimit", "TunnelDevice",
]  # fmt: skip

_SHOWN = ("user ", "hostname ", "bindaddress ", "forwardagent ", "sendenv ", "port ")


@pytest.mark.parametrize("keyword", EMPTY_KEYWORDS)
def test_an_empty_quoted_value_on_the_command_line(tmp_path: Path, keyword: str) -> None:
    _both(tmp_path, "", ("-G", "-o", f'{keyword}=""', "x"), _SHOWN)


@pytest.mark.parametrize("keyword", EMPTY_KEYWORDS)
def test_an_empty_quoted_value_in_a_file(tmp_path: Path, keyword: str) -> None:
    _both(tmp_path, f'{keyword} ""\n', ("-G", "x"), _SHOWN)


@pytest.mark.parametrize(
    "line", ['User "" a', 'User a ""', 'UserKnownHostsFile a ""', 'SendEnv A ""', 'LogVerbose a ""']
)
def test_an_empty_value_among_others(tmp_path: Path, line: str) -> None:
    _both(tmp_path, f"{line}\n", ("-G", "x"), _SHOWN)


def test_an_empty_control_path_line_is_refused(tmp_path: Path) -> None:
    # refused as ssh refuses it, in keytool's words (one line)
    _both(tmp_path, "", ("-G", "-o", 'ControlPath=""', "x"), ("controlpath ",), words=False)
    _both(tmp_path, 'ControlPath ""\n', ("-G", "x"), ("controlpath ",), words=False)


# --- 4: ProxyJump ---------------------------------------------------------------------

JUMPS = [
    "-x", "bad host", '""', "a,-x", "-x,a", "u@-x", "u;x@h", "bad host,x", "a b c", "a#b",
    "a, b", '"a b"', "-x #c", "ssh://-x", "a -x", "a,b c,-x", "ssh://u@h:1 z", "[::1]:2 z",
    "none", "ssh://a;b", "a:b:c", "ssh://a$b",
]  # fmt: skip


@pytest.mark.parametrize("jump", JUMPS)
def test_proxy_jump_on_the_command_line(tmp_path: Path, jump: str) -> None:
    _both(tmp_path, "", ("-G", "-o", f"ProxyJump={jump}", "x"), ("proxyjump ",))


@pytest.mark.parametrize("jump", JUMPS)
def test_proxy_jump_in_a_file(tmp_path: Path, jump: str) -> None:
    _both(tmp_path, f"ProxyJump {jump}\n", ("-G", "x"), ("proxyjump ",))


@pytest.mark.parametrize("jump", ["bad host", "a b,c"])
def test_a_jump_flag_with_blanks(tmp_path: Path, jump: str) -> None:
    _both(tmp_path, "", ("-G", "-J", jump, "x"), ("proxyjump ",))


# --- 5: LocalCommand as written -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("", ("-o", "LocalCommand=echo %h %r %p %%")),
        ("", ("-o", "LocalCommand=echo %z ${HOME} ~")),
        ("LocalCommand echo %n %l %C %T\n", ()),
        ("PermitLocalCommand yes\nLocalCommand echo %d %u\n", ()),
    ],
)
def test_local_command_is_shown_as_written(
    tmp_path: Path, text: str, args: tuple[str, ...]
) -> None:
    _both(tmp_path, text, ("-G", *args, "x"), ("localcommand ",))


# --- 6: SessionType subsystem with no subsystem ---------------------------------------

SUBSYSTEM_CASES = [
    ("-G", "-o", "SessionType=subsystem", "-O", "exit", "x"),
    ("-G", "-o", "SessionType=subsystem", "-O", "check", "x"),
    ("-G", "-o", "SessionType=subsystem", "x"),
    ("-G", "-o", "sessiontype=SUBSYSTEM", "x"),
    ("-G", "-o", "SessionType=subsystem", "-o", "SessionType=none", "x"),
    ("-G", "-o", "SessionType=none", "-o", "SessionType=subsystem", "x"),
    ("-G", "-o", "SessionType=subsystem", "-O", "exit", "x", "sftp"),
    ("-G", "-o", "SessionType=subsystem", "x", ""),
    ("-G", "-o", "SessionType=subsystem", "-o", "ConnectionAttempts=0", "x"),
    ("-G", "-f", "-o", "SessionType=subsystem", "x"),
    ("-G", "-W", "h:1", "-o", "SessionType=subsystem", "x"),
    ("-G", "-N", "-o", "SessionType=subsystem", "x"),
    ("-G", "-o", "SessionType=subsystem", "-o", 'User=""', "x"),
    ("-o", "SessionType=subsystem", "-O", "exit", "x"),
    ("-o", "SessionType=subsystem", "x"),
]


@pytest.mark.parametrize("args", SUBSYSTEM_CASES, ids=repr)
def test_session_type_subsystem_needs_a_subsystem(tmp_path: Path, args: tuple[str, ...]) -> None:
    _both(tmp_path, "", args, ("sessiontype ",))


@pytest.mark.parametrize("text", ["SessionType subsystem\n", "SessionType subsystem\nBad x\n"])
def test_session_type_subsystem_from_a_file(tmp_path: Path, text: str) -> None:
    # read after the check: a file's SessionType needs none, a file's error is its own
    _both(tmp_path, text, ("-G", "x"), ("sessiontype ",))
    _both(tmp_path, text, ("-G", "-o", "SessionType=subsystem", "x"), ("sessiontype ",))


# --- 7: ConnectionAttempts at LogLevel QUIET -----------------------------------------

ATTEMPTS_CASES = [
    ("-q",),
    ("-o", "LogLevel=QUIET"),
    ("-o", "LogLevel=quiet"),
    ("-o", "LogLevel=FATAL"),
    ("-o", "LogLevel=ERROR"),
    (),
]


@pytest.mark.parametrize("flags", ATTEMPTS_CASES, ids=repr)
def test_no_connection_attempts(tmp_path: Path, flags: tuple[str, ...]) -> None:
    _both(tmp_path, "", ("-G", *flags, "-o", "ConnectionAttempts=0", "x"), ("connectionattempts",))
    _both(tmp_path, "ConnectionAttempts 0\n", ("-G", *flags, "x"), ("connectionattempts",))

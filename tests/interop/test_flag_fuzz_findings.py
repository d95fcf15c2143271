"""Command lines where ``keytool exec -G`` did not do what ``ssh -G`` 9.2 does, found by
running random combinations of ssh's flags through both; each run here through the
real ssh and keytool on the same configuration and flags.

ssh's getopt checks each flag as it reads it, in the order given, before it looks at
the destination: every -c, -m, -e, -L, -R and -D (a later good one does not save a
bad one), -J once only and not after an -o ProxyCommand or ProxyJump, its hops' host
and user names, -W and -O once each and not together; what it says then goes to
stderr, not to -E's file. -f (or ForkAfterAuthentication) with nothing to run is
refused before -G's first line, and shown with -N, SessionType none or a
RemoteCommand; UpdateHostKeys ask is shown off where ssh turns it off (a command, no
terminal, ControlPersist with a ControlPath, a LogLevel below INFO). An ssh:// URI's
user is what comes before its first '@', its ";" parameters left out; the
destination's user and port count where it was typed among -l, -p and -o (an -l or
-o User after user@host counts for nothing), and a user with blanks is one user."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL
from tests.interop.confighelp import SSH_ONLY as _SSH_ONLY
from tests.interop.confighelp import run_in_home as _run
from tests.peers import require


def _shown(
    result: subprocess.CompletedProcess[str], keys: tuple[str, ...], words: bool
) -> tuple[int, list[str], list[str] | bool]:
    """The exit status, the lines of ``keys``, and what is said on stderr: its lines
    (keytool's prefix taken off) when ``words``, else only whether anything is."""
    lines = [line for line in result.stdout.splitlines() if line.startswith(keys)]
    said = [
        line.removeprefix("keytool: ")
        for line in result.stderr.splitlines()
        if not line.startswith(_SSH_ONLY) and not line.startswith(("debug", "OpenSSH_"))
    ]
    return result.returncode, lines, said if words else bool(said)


def _both(
    tmp_path: Path,
    text: str,
    args: tuple[str, ...],
    keys: tuple[str, ...],
    words: bool = True,
) -> None:
    """ssh -G and keytool exec -G on ``args``, with a config file of ``text`` under Host x."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    config = tmp_path / "config"
    config.write_text(f"Host x\n{text}")
    theirs = _run([require("ssh"), "-G", "-F", str(config), *args], home)
    ours = _run([*KEYTOOL, "exec", "-G", "-F", str(config), *args], home)
    assert _shown(ours, keys, words) == _shown(theirs, keys, words)


# --- -f with nothing to run ---------------------------------------------------------

_FORK = ("forkafterauthentication ", "sessiontype ", "stdinnull ", "requesttty ")
FORK_CASES = [
    ("", ("-f", "x")),
    ("", ("-q", "-f", "x")),
    ("", ("-o", "ForkAfterAuthentication=yes", "x")),
    ("ForkAfterAuthentication yes\n", ("x",)),
    ("", ("-f", "-N", "x")),
    ("", ("-f", "-o", "SessionType=none", "x")),
    ("SessionType none\n", ("-f", "x")),
    ("", ("-f", "-o", "RemoteCommand=ls", "x")),
    ("", ("-f", "-W", "h:1", "x")),
    ("", ("-f", "x", "ls")),
]


@pytest.mark.parametrize(("text", "args"), FORK_CASES)
def test_fork_without_a_command_as_ssh(tmp_path: Path, text: str, args: tuple[str, ...]) -> None:
    _both(tmp_path, text, args, _FORK)


# --- what ssh's getopt refuses, flag by flag ----------------------------------------

_FLAGS = ("proxyjump ", "escapechar ", "localforward ")
GETOPT_CASES = [
    ("-J", "j", "-J", "k"),
    ("-o", "ProxyJump=a", "-J", "j"),
    ("-o", "ProxyJump=none", "-J", "j"),
    ("-o", "ProxyCommand=none", "-J", "j"),
    ("-J", "j", "-o", "ProxyCommand=nc"),
    ("-J", "-x"),
    ("-J", "a,-x"),
    ("-J", "u@-x:22"),
    ("-J", "u;x@j"),
    ("-J", "a|b"),
    ("-J", ""),
    ("-J", "j:bad"),
    ("-J", "a,,b"),
    ("-J", "::1"),
    ("-J", "[::1]:22"),
    ("-J", "j#c"),
    ("-J", "none"),
    ("-e", "^?", "-e", "none"),
    ("-e", ""),
    ("-e", "ab"),
    ("-e", "^A"),
    ("-O", "exit", "-O", "proxy"),
    ("-O", "bogus", "-O", "check"),
    ("-O", "check", "-W", "h:1"),
    ("-W", "h:1", "-O", "check"),
    ("-W", "h:1", "-W", "h:2"),
    ("-W", "h:1", "-L", "/a:b:*:1"),
    ("-W", "h", "-L", "1:h:2"),
    ("-c", "bogus", "-c", "aes128-ctr"),
    ("-m", "bogus", "-m", "hmac-sha2-256"),
    ("-L", "x", "-c", "bogus"),
    ("-c", "bogus", "-L", "x"),
    ("-p", "1", "-p", "x"),
    ("-p", "x", "-p", "1"),
    ("-p", "1", "-c", "bogus", "-p", "2"),
    ("-L", "x", "-p", "y"),
    ("-p", "y", "-L", "x"),
]


@pytest.mark.parametrize("flags", GETOPT_CASES)
def test_flags_checked_as_ssh_s_getopt(tmp_path: Path, flags: tuple[str, ...]) -> None:
    _both(tmp_path, "", (*flags, "x"), _FLAGS)


@pytest.mark.parametrize("flags", [("-c", "bogus"), ("-J", "-x"), ("-O", "a", "-O", "b")])
def test_getopt_refusals_on_stderr_despite_log_file(tmp_path: Path, flags: tuple[str, ...]) -> None:
    """ssh opens -E's file once its command line is read: what its getopt refuses is
    said on stderr, and the file not made."""
    _both(tmp_path, "", ("-E", "flag.log", *flags, "x"), _FLAGS)
    assert not (tmp_path / "home" / "flag.log").exists()


# --- UpdateHostKeys ask ---------------------------------------------------------------

_UPDATE = ("updatehostkeys ",)
UPDATE_CASES = [
    ("x",),
    ("x", "ls"),
    ("-T", "x"),
    ("-N", "x"),
    ("-W", "h:1", "x"),
    ("-s", "x", "sftp"),
    ("-q", "x"),
    ("-o", "LogLevel=ERROR", "x"),
    ("-o", "LogLevel=INFO", "-t", "x"),
    ("-o", "RemoteCommand=ls", "x"),
    ("-o", "RequestTTY=no", "x"),
    ("-o", "ControlPersist=yes", "-o", "ControlPath=/kt-no-such/cm", "x"),
    ("-o", "ControlPersist=yes", "-o", "ControlPath=none", "x"),
    ("-o", "ControlPersist=yes", "x"),
]


@pytest.mark.parametrize("args", UPDATE_CASES)
def test_update_host_keys_ask_as_ssh_leaves_it(tmp_path: Path, args: tuple[str, ...]) -> None:
    _both(tmp_path, "UpdateHostKeys ask\n", args, _UPDATE)


# --- an ssh:// URI's user -------------------------------------------------------------

_WHO = ("user ", "host ", "hostname ", "port ")


@pytest.mark.parametrize("uri", ["ssh://u;fp=a@x", "ssh://u;@x:2222", "ssh://u%3Bv;x=y@x"])
def test_uri_connection_parameters_left_out(tmp_path: Path, uri: str) -> None:
    _both(tmp_path, "", (uri,), _WHO)


#: the destination's user and port where it was typed: the first value of each wins
PLACE_CASES = [
    ("u@x", "-o", "User=z"),
    ("-o", "User=z", "u@x"),
    ("u@x", "-l", "z"),
    ("-l", "z", "u@x"),
    ("-l", "a", "u@x", "-l", "b"),
    ("-l", "a", "-o", "User=b", "u@x"),
    ("ssh://u@x:1", "-p", "2"),
    ("-p", "2", "ssh://u@x:1"),
    ("ssh://x:1", "-o", "Port=3", "-p", "4"),
    ("-o", "Port=3", "ssh://x:1", "-p", "4"),
    ("u@x", "-o", "Port=5", "-o", "User=z"),
    ("x", "-o", "User=z", "-l", "y"),
    ("-l", "a b", "x"),
    ("a b@x",),
    ("-l", "a\\b", "x"),
]


@pytest.mark.parametrize("args", PLACE_CASES)
def test_destination_user_and_port_where_typed(tmp_path: Path, args: tuple[str, ...]) -> None:
    _both(tmp_path, "User cfg\nPort 2222\n", args, _WHO)


@pytest.mark.parametrize("uri", ["ssh://;fp=a@x", "ssh://@x", "ssh://a@b@x"])
def test_uri_refused_as_ssh(tmp_path: Path, uri: str) -> None:
    """ssh prints its usage for these; keytool says what is wrong, in one line."""
    _both(tmp_path, "", (uri,), _WHO, words=False)

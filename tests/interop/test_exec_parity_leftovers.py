"""Forms where ``keytool exec`` did not yet do what ssh 9.2 does, each run through the
real ssh and keytool on the same configuration and flags: -N, -s, -W and -o
SessionType against each other (ssh's getopt refuses some pairs, in the order given);
the -v trace as the LogLevel finally read leaves it (-v -q: none) against a real sshd;
the dynamicforward lines of -G in the order the -D and -L forwards were given; an empty
HostKeyAlgorithms list, on which ssh -G dies before its first line."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, server_for
from tests.interop.confighelp import SSH_ONLY as _SSH_ONLY
from tests.interop.confighelp import run_in_home as _run
from tests.peers import Sshd, require


def _said(stderr: str) -> list[str]:
    """The stderr lines that count: ssh's alone left out, keytool's prefix taken off."""
    return [
        line.removeprefix("keytool: ")
        for line in stderr.splitlines()
        if not line.startswith(_SSH_ONLY) and not line.startswith(("debug", "OpenSSH_"))
    ]


def _both(
    tmp_path: Path, text: str, args: tuple[str, ...]
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """ssh and keytool exec on ``args``, with a config file of ``text`` under Host x."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    config = tmp_path / "config"
    config.write_text(f"Host x\n{text}")
    theirs = _run([require("ssh"), "-F", str(config), *args], home)
    ours = _run([*KEYTOOL, "exec", "-F", str(config), *args], home)
    return theirs, ours


# --- -N, -s, -W and SessionType ----------------------------------------------------

#: what ssh's getopt refuses, in the order given
REFUSED_CASES = [
    ("-N", "-s", "x", "sftp"),
    ("-s", "-N", "x", "sftp"),
    ("-N", "-s", "x"),
    ("-s", "-N", "x"),
    ("-N", "-N", "-s", "x", "sftp"),
    ("-o", "SessionType=none", "-s", "x", "sftp"),
    ("-o", "sessiontype=NONE", "-s", "x", "sftp"),
    ("-o", "SessionType=default", "-s", "x", "sftp"),
    ("-o", "SessionType=subsystem", "-N", "x"),
    ("-W", "h:1", "-s", "x", "sftp"),
]
#: what it lets through: an -o after the flag counts for nothing, -W after -s
SESSION_CASES = [
    *REFUSED_CASES,
    ("-s", "-o", "SessionType=none", "x", "sftp"),
    ("-N", "-o", "SessionType=subsystem", "x"),
    ("-s", "-W", "h:1", "x"),
    ("-o", "SessionType=none", "-N", "x"),
]


@pytest.mark.parametrize("args", REFUSED_CASES)
def test_session_flags_refused_as_ssh_when_connecting(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Refused before any connection: ssh's line, its status, no traceback."""
    theirs, ours = _both(tmp_path, "", args)
    assert theirs.returncode == 255
    assert _said(theirs.stderr)[0].startswith("Cannot specify -")
    assert (ours.returncode, _said(ours.stderr)) == (theirs.returncode, _said(theirs.stderr))
    assert ours.stdout == "" and "Traceback" not in ours.stderr


@pytest.mark.parametrize("args", SESSION_CASES)
def test_session_type_shown_as_ssh(tmp_path: Path, args: tuple[str, ...]) -> None:
    theirs, ours = _both(tmp_path, "", ("-G", *args))

    def shown(result: subprocess.CompletedProcess[str]) -> tuple[int, list[str], list[str]]:
        lines = [line for line in result.stdout.splitlines() if line.startswith("sessiontype ")]
        return result.returncode, lines, _said(result.stderr)

    assert shown(ours) == shown(theirs)


# --- the -v trace as the LogLevel leaves it ----------------------------------------


@pytest.fixture(scope="module")
def login(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, Path, Path]]:
    folder = tmp_path_factory.mktemp("leftovers-sshd")
    sshd, key, known = server_for(folder)
    with sshd:
        yield sshd, key, known


TRACE_CASES = [
    ("", ("-v", "-q")),
    ("", ("-v", "-v", "-q")),
    ("", ("-v", "-q", "-v")),  # -q then -v: FATAL, no debug lines
    ("", ("-q", "-v")),
    ("", ("-v",)),
    ("", ("-v", "-o", "LogLevel=ERROR")),
    ("", ("-o", "LogLevel=ERROR", "-v")),
    ("", ("-o", "LogLevel=DEBUG1")),
    ("", ("-o", "LogLevel=VERBOSE")),
    ("", ("-q", "-o", "LogLevel=DEBUG")),
    ("LogLevel QUIET\n", ("-v",)),
    ("LogLevel ERROR\n", ("-v", "-q")),
    ("LogLevel DEBUG\n", ()),
    ("LogLevel FATAL\n", ()),
]


@pytest.mark.parametrize(("text", "flags"), TRACE_CASES)
def test_trace_follows_the_log_level_as_ssh_s_debug_lines(
    tmp_path: Path, login: tuple[Sshd, Path, Path], text: str, flags: tuple[str, ...]
) -> None:
    """ssh's debug1 lines and keytool's trace (its own lines, "keytool: ...") are there
    or not alike, when both log in to the same sshd and run a command."""
    sshd, key, known = login
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "config"
    config.write_text(f"Host *\n{text}")
    common = [
        "-F", str(config), "-p", str(sshd.port), "-i", str(key),
        "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes", "-T", *flags, "root@127.0.0.1", "echo", "ran",
    ]  # fmt: skip
    theirs = _run([require("ssh"), *common], home)
    ours = _run([*KEYTOOL, "exec", *common], home)
    assert (theirs.returncode, theirs.stdout) == (0, "ran\n"), theirs.stderr
    assert (ours.returncode, ours.stdout) == (0, "ran\n"), ours.stderr
    debug = any(line.startswith("debug1:") for line in theirs.stderr.splitlines())
    traced = any(line.startswith("keytool: ") for line in ours.stderr.splitlines())
    assert traced == debug, ours.stderr


# --- the order of -G's forward lines -----------------------------------------------

_FORWARDS = ("dynamicforward ", "localforward ", "remoteforward ")

FORWARD_CASES = [
    ("", ("-D", "1080", "-L", "1234:/kt-path", "-D", "2000")),
    ("", ("-L", "1234:/kt-path", "-D", "1080", "-D", "5000:/kt-sock", "-D", "2000")),
    ("", ("-L", "1234:/kt-a", "-L", "7000:h:1", "-D", "1080", "-L", "5000:/kt-b")),
    ("DynamicForward 3000\nLocalForward 4000 /kt-sock\nDynamicForward 5000\n", ()),
    (
        "DynamicForward 3000\nLocalForward 4000 /kt-sock\nDynamicForward 6000:/kt-p\n"
        "LocalForward 7000 h:1\nDynamicForward 5000\n",
        ("-D", "1080", "-L", "1234:/kt-path", "-R", "9000:h:2"),
    ),
    ("LocalForward 4000 /kt-sock\nDynamicForward 3000\n", ("-o", "DynamicForward=2000")),
]


@pytest.mark.parametrize(("text", "flags"), FORWARD_CASES)
def test_forward_lines_in_the_order_given_as_ssh(
    tmp_path: Path, text: str, flags: tuple[str, ...]
) -> None:
    theirs, ours = _both(tmp_path, text, ("-G", *flags, "x"))

    def shown(result: subprocess.CompletedProcess[str]) -> tuple[int, list[str], list[str]]:
        lines = [line for line in result.stdout.splitlines() if line.startswith(_FORWARDS)]
        return result.returncode, lines, _said(result.stderr)

    assert shown(theirs)[1], theirs.stdout
    assert shown(ours) == shown(theirs)


# --- an algorithm list that comes to nothing ---------------------------------------

ALGORITHM_CASES = [
    ("HostKeyAlgorithms ,\n", ()),
    ("HostKeyAlgorithms ,,\n", ()),
    ("", ("-o", "HostKeyAlgorithms=,")),
    ("KexAlgorithms ,\nHostKeyAlgorithms ,\n", ()),
    ("HostKeyAlgorithms ,\nCiphers ,\n", ()),
    # what ssh shows: nothing to add, nothing left, nothing put first
    ("HostKeyAlgorithms +,\n", ()),
    ("HostKeyAlgorithms -*\n", ()),
    ("HostKeyAlgorithms ^,\n", ()),
]


@pytest.mark.parametrize(("text", "flags"), ALGORITHM_CASES)
def test_empty_host_key_algorithms_as_ssh(
    tmp_path: Path, text: str, flags: tuple[str, ...]
) -> None:
    """ssh -G puts HostKeyAlgorithms together before printing anything, and dies when it
    comes to nothing: no line on stdout, its fatal words, 255."""
    theirs, ours = _both(tmp_path, text, ("-G", *flags, "x"))

    def shown(result: subprocess.CompletedProcess[str]) -> tuple[int, list[str], list[str]]:
        lines = result.stdout.splitlines()
        if result.returncode == 0:  # the line concerned, whether empty: keytool's
            # default list is its own, and it leaves some other lines out
            lines = [line for line in lines if line.startswith("hostkeyalgorithms ")]
            lines = ["empty" if line == "hostkeyalgorithms " else "listed" for line in lines]
        return result.returncode, lines, _said(result.stderr)

    assert shown(ours) == shown(theirs)
    assert "Traceback" not in ours.stderr

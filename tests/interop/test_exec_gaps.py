"""``keytool exec`` where it differed from OpenSSH's ssh, side by side with ssh: what
``-G`` shows for an -i naming no file and for forwards and identities given both as
flags and as -o options, and the TERM a remote pseudo-terminal gets when $TERM is
empty (through each one's master) and when SetEnv names one."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from keytool.sshconfig_words import expand_home
from tests.interop.clienthelp import base_env, both_clients
from tests.interop.test_client_mux import Bench, bench

__all__ = ["bench"]  # the connection sharing tests' fixture, used here too

CLIENTS = ("ssh", "keytool")
#: the account's home, where ssh puts ~ of -i and of its default identities
HOME = pwd.getpwuid(os.getuid()).pw_dir
#: the remote TERM as the session sees it (unset told apart from empty)
SHOW_TERM = 'echo "[${TERM-unset}]"'


def shown(result: subprocess.CompletedProcess[bytes], *keywords: str) -> list[str]:
    """-G's lines for ``keywords``, in their order; paths with ~ as keytool shows them
    (expanded, keytool's one difference there)."""
    lines = []
    for line in result.stdout.decode().splitlines():
        keyword, _, value = line.partition(" ")
        if keyword in keywords:
            lines.append(f"{keyword} {expand_home(value, HOME)}")
    return lines


def warnings(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    """The Warning lines on stderr (ssh -G also says it allocates no terminal)."""
    return [
        line
        for line in result.stderr.decode().splitlines()
        if line.removeprefix("keytool: ").startswith("Warning:")
    ]


# ---- -G


@pytest.mark.parametrize(
    "named", [("missing",), ("missing", "there"), ("there", "missing", "tilde-missing")]
)
def test_identity_file_not_there_as_ssh_G(tmp_path: Path, named: tuple[str, ...]) -> None:
    """ssh leaves out an -i naming no file (said on stderr, status 0): the other
    -i's count, or its default identities when there is none; keytool showed it."""
    (tmp_path / "there").write_text("")
    paths = {
        "missing": str(tmp_path / "missing"),
        "there": str(tmp_path / "there"),
        "tilde-missing": "~/.ssh/keytool-test-no-such-key",
    }
    flags = [arg for name in named for arg in ("-i", paths[name])]
    env = base_env(HOME=str(tmp_path))
    runs = both_clients("-G", "-F", "none", *flags, "example.org", env=env)
    seen = {tool: (r.returncode, shown(r, "identityfile"), warnings(r)) for tool, r in runs.items()}
    assert seen["keytool"] == seen["ssh"]
    assert f"identityfile {paths['missing']}" not in seen["ssh"][1]
    assert seen["ssh"][2][0].endswith(
        f"{paths['missing']} not accessible: No such file or directory."
    )


def test_forwards_and_identities_in_command_line_order_as_ssh_G(tmp_path: Path) -> None:
    """-L, -R, -D and -i count where they stand among the -o options, as ssh reads
    them one by one; keytool put every flag before the options. -l after an -o User
    does not count either, options made of other flags (-q) before them or not."""
    first, second = tmp_path / "first", tmp_path / "second"
    for path in (first, second):
        path.write_text("")
    flags = [
        "-o", "LocalForward=1001 h:1", "-L", "1002:h:2", "-o", "LocalForward=1003 h:3",
        "-L", "1004:h:4",
        "-o", "RemoteForward=2001 h:1", "-R", "2002:h:2", "-R", "2003",
        "-o", "RemoteForward=2004 h:4",
        "-D", "3001", "-o", "DynamicForward=3002", "-D", "127.0.0.1:3003",
        "-o", f"IdentityFile={first}", "-i", str(second),
        "-q", "-o", "User=optioned", "-l", "flagged",
    ]  # fmt: skip
    runs = both_clients("-G", "-F", "none", *flags, "example.org", env=base_env(HOME=str(tmp_path)))
    keywords = ("user", "localforward", "remoteforward", "dynamicforward", "identityfile")
    seen = {tool: (r.returncode, shown(r, *keywords)) for tool, r in runs.items()}
    assert seen["keytool"] == seen["ssh"]
    assert seen["ssh"][1][0] == "user optioned"
    assert f"identityfile {first}" in seen["ssh"][1]


# ---- the TERM of a remote pseudo-terminal


def term_env(term: str | None) -> dict[str, str]:
    env = {k: v for k, v in base_env().items() if k != "TERM"}
    if term is not None:
        env["TERM"] = term
    return env


@pytest.mark.parametrize("term", ["", None], ids=["empty", "unset"])
def test_empty_term_through_a_master_as_ssh(bench: Bench, term: str | None) -> None:
    """-tt through ssh's master and through keytool's, each client's $TERM empty (or
    unset): keytool's master named the terminal vt100, ssh's passes the empty name
    on."""
    done: dict[str, list[tuple[int, bytes]]] = {}
    for master in CLIENTS:
        path = bench.socket_path(f"m-{master}")
        bench.start_master(master, path, env=term_env("xterm"))
        for client in CLIENTS:
            result = bench.run(client, "-tt", "-S", str(path), command=SHOW_TERM,
                               env=term_env(term))  # fmt: skip
            assert b"Shared connection" in result.stderr, result.stderr
            done.setdefault(master, []).append((result.returncode, result.stdout))
    assert done["keytool"] == done["ssh"]
    assert b"vt100" not in done["ssh"][0][1]


@pytest.fixture
def term_config(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    config.write_text("Host *\n  SetEnv TERM=from-config\n")
    return config


def test_setenv_term_names_the_terminal_as_ssh(bench: Bench, term_config: Path) -> None:
    """SetEnv TERM=... (-o, or in a config file) names the remote terminal, as in ssh
    since 8.7, the master's own session's too; an empty one leaves $TERM's name.
    keytool sent $TERM here in the pty-req (SetEnv's TERM only as a variable, which
    sshd does not take by default)."""
    cases = {
        "option": ["-o", "SetEnv=TERM=from-option"],
        "config": ["-F", str(term_config)],
        "empty": ["-o", "SetEnv=TERM="],
        "master": ["-M", "-S", "{socket}", "-o", "SetEnv=TERM=of-master"],
    }
    done: dict[str, dict[str, tuple[int, bytes]]] = {}
    for client in CLIENTS:
        for name, flags in cases.items():
            socket = str(bench.socket_path(f"own-{client}"))
            given = [socket if flag == "{socket}" else flag for flag in flags]
            result = bench.run(client, "-tt", *given, command=SHOW_TERM, env=term_env("xterm"))
            done.setdefault(client, {})[name] = (result.returncode, result.stdout)
    assert done["keytool"] == done["ssh"]
    assert done["ssh"]["option"] == (0, b"[from-option]\r\n")
    assert done["ssh"]["config"] == (0, b"[from-config]\r\n")


@pytest.fixture
def masters(bench: Bench) -> Iterator[dict[str, Path]]:
    """A master of ssh's and one of keytool's, started with $TERM xterm."""
    paths = {}
    for master in CLIENTS:
        paths[master] = bench.socket_path(f"s-{master}")
        bench.start_master(master, paths[master], env=term_env("xterm"))
    yield paths


def test_setenv_term_through_a_master_as_ssh(bench: Bench, masters: dict[str, Path]) -> None:
    """Through either master, the client's SetEnv TERM names the terminal."""
    done: dict[str, list[tuple[int, bytes]]] = {}
    for master, path in masters.items():
        for client in CLIENTS:
            result = bench.run(client, "-tt", "-S", str(path), "-o", "SetEnv=TERM=shared",
                               command=SHOW_TERM, env=term_env(""))  # fmt: skip
            done.setdefault(master, []).append((result.returncode, result.stdout))
    assert done["keytool"] == done["ssh"]
    assert done["ssh"][0] == (0, b"[shared]\n")  # a zeroed termios: no \r added

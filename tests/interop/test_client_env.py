"""SetEnv, SendEnv and RemoteCommand in ``keytool exec``, side by side with ssh against
one sshd whose AcceptEnv takes FOO and KT_*: what the remote command saw is the
reference."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, server_for
from tests.peers import Sshd, require

PRINT = 'echo "[$FOO][$BAZ][$KT_ONE][$KT_TWO][$OTHER]"'


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, list[str]]]:
    """The server, and the flags both clients share (key, known_hosts, port)."""
    folder = tmp_path_factory.mktemp("env")
    server, key, known = server_for(folder, {"AcceptEnv": "FOO KT_*"})
    common = ["-F", "none", "-p", str(server.port), "-i", str(key),
              "-o", f"UserKnownHostsFile={known}",
              "-o", "GlobalKnownHostsFile=/dev/null"]  # fmt: skip
    with server:
        yield server, common


def both(
    common: list[str], options: list[str], command: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    """keytool exec, then ssh, with the same flags, environment and command."""
    flags = [*common, *(arg for option in options for arg in ("-o", option))]
    run_env = base_env(**env)
    mine = subprocess.run(
        [*KEYTOOL, "exec", *flags, "root@127.0.0.1", *(["--", *command] if command else [])],
        capture_output=True, env=run_env, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    theirs = subprocess.run(
        [require("ssh"), "-o", "BatchMode=yes", "-T", *flags, "root@127.0.0.1", *command],
        capture_output=True, env=run_env, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    return mine, theirs


@pytest.mark.parametrize(
    ("options", "env"),
    [
        (["SetEnv=FOO=bar BAZ=qux FOO=again"], {}),  # BAZ: not accepted by sshd
        (["SendEnv=KT_* FOO"], {"KT_ONE": "1", "KT_TWO": "two words", "OTHER": "3"}),
        (["SendEnv=KT_*", "SetEnv=KT_ONE=set"], {"KT_ONE": "sent", "FOO": "not asked"}),
        (["SendEnv=KT_* -KT_T*"], {"KT_ONE": "1", "KT_TWO": "2"}),
    ],
)
def test_environment_reaches_the_command_as_with_ssh(
    setup: tuple[Sshd, list[str]], options: list[str], env: dict[str, str]
) -> None:
    _, common = setup
    mine, theirs = both(common, options, [PRINT], env)
    assert theirs.returncode == 0, theirs.stderr
    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), mine.stderr
    assert theirs.stdout != b"[][][][][]\n"  # the case sends something sshd takes


def test_remote_command_runs_when_none_is_given(setup: tuple[Sshd, list[str]]) -> None:
    _, common = setup
    option = "RemoteCommand=echo %r@%h:%p %n; echo $SSH_CONNECTION | cut -d' ' -f3"
    mine, theirs = both(common, [option], [], {})
    assert theirs.returncode == 0, theirs.stderr
    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), mine.stderr
    assert mine.stdout.startswith(b"root@127.0.0.1:")
    # with a command as well: ssh's refusal, before connecting
    mine, theirs = both(common, ["RemoteCommand=echo x"], ["true"], {})
    assert theirs.returncode == mine.returncode == 255
    assert b"Cannot execute command-line and remote command." in theirs.stderr
    assert mine.stderr == b"keytool: Cannot execute command-line and remote command.\n"

"""Where the key commands ask for a passphrase, side by side with ssh-keygen and
ssh-add: typed on a pseudo-terminal (bytes that are not UTF-8 included), through
SSH_ASKPASS when stdin is not a terminal and there is a display, and from stdin when
there is no terminal at all (read_passphrase's RP_ALLOW_STDIN)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.agenthelp import openssh_agent
from tests.interop.clienthelp import KEYTOOL, base_env
from tests.interop.test_client_terminal import OnTerminal
from tests.peers import require, run

NOT_UTF8 = b"p\xe9w"


def _tools(name: str) -> dict[str, list[str]]:
    """The same operation by OpenSSH's tool and by keytool."""
    return {
        "pub": {"openssh": [require("ssh-keygen"), "-y", "-f"], "keytool": [*KEYTOOL, "pub", "-f"]},
        "add": {"openssh": [require("ssh-add")], "keytool": [*KEYTOOL, "add"]},
    }[name]


@pytest.fixture
def locked(tmp_path: Path) -> Path:
    """An ed25519 key whose passphrase is bytes that are not UTF-8."""
    key = tmp_path / "locked"
    made = subprocess.run(
        [require("ssh-keygen"), "-q", "-t", "ed25519", "-C", "locked", "-N", NOT_UTF8, "-f", key],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return key


def _askpass(folder: Path, answer: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "answer").write_bytes(answer + b"\n")
    script = folder / "askpass"
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{folder}/asked"\ncat "{folder}/answer"\n'
    )
    script.chmod(0o755)
    return script


def test_a_passphrase_typed_that_is_not_utf8(tmp_path: Path, locked: Path) -> None:
    """ssh-keygen -y takes the bytes typed; keytool refused them ("not valid text")."""
    shown = {}
    for tool, argv in _tools("pub").items():
        term = OnTerminal([*argv, str(locked)])
        term.read_until(b": ")
        term.type(NOT_UTF8 + b"\r")
        status = term.finish()
        shown[tool] = (status, term.seen.split(b"\n")[-2].strip())
    assert shown["keytool"] == shown["openssh"]
    assert shown["openssh"][0] == 0
    assert shown["openssh"][1] == Path(f"{locked}.pub").read_bytes().strip()


def test_gen_takes_a_typed_passphrase_that_is_not_utf8(tmp_path: Path) -> None:
    key = tmp_path / "typed"
    term = OnTerminal([*KEYTOOL, "gen", "-q", "-t", "ed25519", "-f", str(key)])
    for _ in range(2):
        start = len(term.seen)
        term.read_until(b": ", start=start)
        term.type(NOT_UTF8 + b"\r")
    assert term.finish() == 0
    opened = subprocess.run(
        [require("ssh-keygen"), "-y", "-P", NOT_UTF8, "-f", key], capture_output=True, timeout=60
    )
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.split()[:2] == Path(f"{key}.pub").read_bytes().split()[:2]


def test_askpass_when_stdin_is_not_a_terminal(tmp_path: Path, locked: Path) -> None:
    """`ssh-add KEY < /dev/null` at a terminal with a display: ssh-add asks through
    SSH_ASKPASS (the .xsession habit); keytool asked on the terminal."""
    for tool, argv in _tools("add").items():
        with openssh_agent(tmp_path / f"agent-{tool}") as agent:
            script = _askpass(tmp_path / tool, NOT_UTF8)
            env = agent.env(SSH_ASKPASS=str(script), DISPLAY=":9")
            env.pop("SSH_ASKPASS_REQUIRE", None)
            # at a terminal (the controlling one), stdin an empty pipe
            term = OnTerminal([*argv, str(locked)], piped=b"", env=env)
            status = term.finish()
            listed = run([require("ssh-add"), "-L"], env=agent.env()).stdout
        assert status == 0, (tool, term.seen)
        assert b"Enter passphrase" not in term.seen, tool
        assert (tmp_path / tool / "asked").read_text().count("\n") == 1, tool
        assert Path(f"{locked}.pub").read_text().split()[1] in listed, tool


@pytest.mark.parametrize("require_value", ["force", "FORCE"])
def test_gen_without_a_terminal_asks_askpass(tmp_path: Path, require_value: str) -> None:
    """No terminal, SSH_ASKPASS_REQUIRE=force (in any case, as ssh reads it): ssh-keygen
    asks twice through askpass; keytool refused, and ignored FORCE."""
    script = _askpass(tmp_path / "ask", NOT_UTF8)
    env = base_env(SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE=require_value)
    keys = {}
    for tool, argv in (("openssh", [require("ssh-keygen")]), ("keytool", [*KEYTOOL, "gen"])):
        key = tmp_path / f"{tool}-key"
        done = subprocess.run(
            [*argv, "-q", "-t", "ed25519", "-f", str(key)], capture_output=True, env=env,
            stdin=subprocess.DEVNULL, start_new_session=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, (tool, done.stderr)
        keys[tool] = key
    assert (tmp_path / "ask" / "asked").read_text().count("\n") == 4  # twice each
    for key in keys.values():
        opened = subprocess.run(
            [require("ssh-keygen"), "-y", "-P", NOT_UTF8, "-f", key], capture_output=True
        )
        assert opened.returncode == 0, opened.stderr


def test_without_a_terminal_a_passphrase_comes_from_stdin(tmp_path: Path, locked: Path) -> None:
    """`echo PASS | ssh-add KEY` with no terminal (a CI job): ssh-add reads the line
    from stdin; keytool refused. The agent's lock password too, bytes kept: a lock
    made by keytool is undone by ssh-add with the same bytes."""
    for tool, argv in _tools("add").items():
        with openssh_agent(tmp_path / f"agent-{tool}") as agent:
            done = subprocess.run(
                [*argv, str(locked)], input=NOT_UTF8 + b"\n", capture_output=True,
                env=agent.env(), start_new_session=True, timeout=60, check=False,
            )  # fmt: skip
            assert done.returncode == 0, (tool, done.stderr)
            listed = run([require("ssh-add"), "-L"], env=agent.env()).stdout
            assert Path(f"{locked}.pub").read_text().split()[1] in listed, tool
            lock = NOT_UTF8 + b"-lock"
            locking = subprocess.run(
                [*argv, "-x"], input=lock + b"\n" + lock + b"\n", capture_output=True,
                env=agent.env(), start_new_session=True, timeout=60, check=False,
            )  # fmt: skip
            assert locking.returncode == 0, (tool, locking.stderr)
            unlocking = subprocess.run(
                [require("ssh-add"), "-X"], input=lock + b"\n", capture_output=True,
                env=agent.env(), start_new_session=True, timeout=60, check=False,
            )  # fmt: skip
            assert unlocking.returncode == 0, (tool, unlocking.stderr)

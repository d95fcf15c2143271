"""keytool add drives OpenSSH's own ssh-agent; what the agent holds is read back with
OpenSSH's ssh-add and compared with ssh-keygen."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.agenthelp import (
    KEYTOOL,
    askpass_script,
    keygen_fingerprints,
    make_keys,
    openssh_agent,
    pub_lines,
)
from tests.interop.agenthelp import RunningAgent as Agent
from tests.peers import require, run


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("addkeys"))


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    with openssh_agent(tmp_path / "agent") as running:
        yield running


def keytool_add(agent: Agent, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    return keytool_add_input(agent, None, *args, **env)


def keytool_add_input(
    agent: Agent, stdin: bytes | None, *args: str | Path, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYTOOL, "add", *map(str, args)],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        env=agent.env(**env),
    )


def real_list(agent: Agent) -> str:
    return run([require("ssh-add"), "-l"], env=agent.env()).stdout


def test_add_list_test_delete(agent: Agent, keys: dict[str, Path]) -> None:
    files = list(keys.values())
    added = keytool_add(agent, *files)
    assert added.returncode == 0, added.stderr
    for path in files:
        assert f"Identity added: {path}" in added.stderr
    assert real_list(agent) == keygen_fingerprints(files)
    assert keytool_add(agent, "-l").stdout == keygen_fingerprints(files)
    assert keytool_add(agent, "-E", "md5", "-l").stdout == keygen_fingerprints(files, "md5")
    assert keytool_add(agent, "-L").stdout == pub_lines(files)
    tested = keytool_add(agent, "-T", *(f"{p}.pub" for p in files))
    assert tested.returncode == 0, tested.stderr
    removed = keytool_add(agent, "-d", keys["ecdsa"])
    assert removed.returncode == 0, removed.stderr
    assert real_list(agent) == keygen_fingerprints([keys["ed25519"], keys["rsa"]])
    assert keytool_add(agent, "-T", f"{keys['ecdsa']}.pub").returncode == 1
    assert keytool_add(agent, "-D").returncode == 0
    assert "The agent has no identities." in real_list(agent)
    empty = keytool_add(agent, "-l")
    assert empty.returncode == 1 and "The agent has no identities." in empty.stdout


@pytest.mark.parametrize(
    "key_mode", [0o644, 0o640, 0o604, 0o660, 0o620, 0o400, 0o600, 0o700], ids=lambda m: f"{m:04o}"
)
def test_add_checks_permissions_as_ssh_add(
    tmp_path: Path, agent: Agent, keys: dict[str, Path], key_mode: int
) -> None:
    """A private key any group or other bit is set on is refused by ssh-add, and by
    keytool add with one line; 0400, 0600 and 0700 are taken by both. What the agent
    holds after each is read back with ssh-add -l."""
    key = tmp_path / "id_ed25519"
    key.write_bytes(keys["ed25519"].read_bytes())
    Path(f"{key}.pub").write_bytes(Path(f"{keys['ed25519']}.pub").read_bytes())
    key.chmod(key_mode)
    too_open = bool(key_mode & 0o077)
    theirs = subprocess.run(
        [require("ssh-add"), str(key)], capture_output=True, text=True, env=agent.env(), timeout=60
    )
    if too_open:
        assert theirs.returncode == 1
        assert f"Permissions {key_mode:04o} for '{key}' are too open." in theirs.stderr
        assert "The agent has no identities." in real_list(agent)
    else:
        assert theirs.returncode == 0, theirs.stderr
        assert real_list(agent) == keygen_fingerprints([key])
        run([require("ssh-add"), "-D"], env=agent.env()).check_returncode()
    ours = keytool_add(agent, key)
    if too_open:
        assert ours.returncode == 1
        lines = ours.stderr.strip().splitlines()
        assert len(lines) == 1, ours.stderr
        assert f"permissions {key_mode:04o} for '{key}' are too open" in lines[0]
        assert "The agent has no identities." in real_list(agent)
    else:
        assert ours.returncode == 0, ours.stderr
        assert f"Identity added: {key}" in ours.stderr
        assert real_list(agent) == keygen_fingerprints([key])


def test_lock_and_unlock(tmp_path: Path, agent: Agent, keys: dict[str, Path]) -> None:
    keytool_add(agent, keys["ed25519"]).check_returncode()
    ask = {
        "SSH_ASKPASS": str(askpass_script(tmp_path)),
        "SSH_ASKPASS_REQUIRE": "force",
        "KT_ASKPASS_LOG": str(tmp_path / "asked"),
    }
    locked = keytool_add(agent, "-x", **ask, KT_ASKPASS_ANSWER="pw-123")
    assert locked.returncode == 0, locked.stderr
    assert "The agent has no identities." in real_list(agent)
    assert keytool_add(agent, "-X", **ask, KT_ASKPASS_ANSWER="wrong").returncode == 1
    unlocked = keytool_add(agent, "-X", **ask, KT_ASKPASS_ANSWER="pw-123")
    assert unlocked.returncode == 0, unlocked.stderr
    assert real_list(agent) == keygen_fingerprints([keys["ed25519"]])


def test_lifetime(agent: Agent, keys: dict[str, Path]) -> None:
    added = keytool_add(agent, "-t", "1", keys["ecdsa"])
    assert added.returncode == 0 and "Lifetime set to 1 seconds" in added.stderr
    keytool_add(agent, keys["ed25519"]).check_returncode()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and real_list(agent) != keygen_fingerprints(
        [keys["ed25519"]]
    ):
        time.sleep(0.1)
    assert real_list(agent) == keygen_fingerprints([keys["ed25519"]])


def test_confirm_makes_ssh_agent_ask(tmp_path: Path, keys: dict[str, Path]) -> None:
    asked = tmp_path / "asked"
    env = dict(os.environ, SSH_ASKPASS=str(askpass_script(tmp_path)), KT_ASKPASS_LOG=str(asked))
    env["SSH_ASKPASS_REQUIRE"] = "force"  # ssh-agent wants a DISPLAY otherwise
    with openssh_agent(tmp_path / "agent", env=env) as agent:
        added = keytool_add(agent, "-c", keys["ed25519"])
        assert added.returncode == 0 and "confirm" in added.stderr
        tested = run([require("ssh-add"), "-T", f"{keys['ed25519']}.pub"], env=agent.env())
        assert tested.returncode == 0, tested.stderr
        assert "kt-ed25519" in asked.read_text()  # ssh-agent asked the user


def test_passphrase_via_askpass_and_stdin(tmp_path: Path, agent: Agent) -> None:
    key = tmp_path / "id_locked"
    run(
        [require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "file-pass", "-C", "locked", "-f", key]
    ).check_returncode()
    ask = {
        "SSH_ASKPASS": str(askpass_script(tmp_path)),
        "SSH_ASKPASS_REQUIRE": "force",
        "KT_ASKPASS_LOG": str(tmp_path / "asked"),
    }
    wrong = keytool_add(agent, key, **ask, KT_ASKPASS_ANSWER="nope")
    assert wrong.returncode == 1
    added = keytool_add(agent, key, **ask, KT_ASKPASS_ANSWER="file-pass")
    assert added.returncode == 0, added.stderr
    assert real_list(agent) == keygen_fingerprints([key])
    assert "file-pass" not in added.stderr + added.stdout
    keytool_add(agent, "-D").check_returncode()
    text = key.read_bytes()
    via_stdin = keytool_add_input(agent, text, "-", **ask, KT_ASKPASS_ANSWER="file-pass")
    assert via_stdin.returncode == 0, via_stdin.stderr
    assert real_list(agent) == keygen_fingerprints([key])


def test_default_identities(tmp_path: Path, agent: Agent, keys: dict[str, Path]) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    for kind in ("ed25519", "rsa"):
        target = home / ".ssh" / f"id_{kind}"
        target.write_bytes(keys[kind].read_bytes())
        target.chmod(0o600)
    added = keytool_add(agent, HOME=str(home))
    assert added.returncode == 0, added.stderr
    # ssh-add's order: id_rsa before id_ed25519
    assert real_list(agent) == keygen_fingerprints([keys["rsa"], keys["ed25519"]])


def test_no_agent_errors_are_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    unset = subprocess.run(
        [*KEYTOOL, "add", "-l"], capture_output=True, text=True, env=env, timeout=60
    )
    assert unset.returncode == 2  # ssh-add's status when there is no agent
    assert unset.stderr.count("\n") == 1 and "SSH_AUTH_SOCK is not set" in unset.stderr
    env["SSH_AUTH_SOCK"] = str(tmp_path / "gone.sock")
    stale = subprocess.run(
        [*KEYTOOL, "add", "-l"], capture_output=True, text=True, env=env, timeout=60
    )
    assert stale.returncode == 2
    assert stale.stderr.count("\n") == 1 and "cannot reach the agent" in stale.stderr


def test_passphrase_on_a_terminal(tmp_path: Path, agent: Agent) -> None:
    """keytool add asks on its controlling terminal (a pseudo-terminal here)."""
    import select

    key = tmp_path / "id_tty"
    run(
        [require("ssh-keygen"), "-q", "-t", "ecdsa", "-N", "tty-pass", "-C", "tty", "-f", key]
    ).check_returncode()
    env = agent.env()
    env.pop("SSH_ASKPASS", None)
    env.pop("DISPLAY", None)
    pid, fd = os.forkpty()
    if pid == 0:  # the child, on the new terminal
        try:
            os.execvpe(KEYTOOL[0], [*KEYTOOL, "add", str(key)], env)
        finally:
            os._exit(127)
    output = b""
    try:
        deadline = time.monotonic() + 60
        answered = False
        while time.monotonic() < deadline:
            readable, _, _ = select.select([fd], [], [], 1)
            if not readable:
                continue
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"Enter passphrase for" in output:
                os.write(fd, b"tty-pass\n")
                answered = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.WEXITSTATUS(status) == 0, output
    assert b"tty-pass" not in output  # not echoed
    assert real_list(agent) == keygen_fingerprints([key])


def test_endless_stdin_is_refused_and_nothing_added(agent: Agent) -> None:
    """`keytool add -` fed far more than any key (cat /dev/zero |) stops reading."""
    flood = subprocess.run(
        [*KEYTOOL, "add", "-"],
        input=b"\0" * (4 * 1024 * 1024),
        capture_output=True,
        timeout=60,
        env=agent.env(),
    )
    assert flood.returncode == 1
    assert flood.stderr.decode().count("\n") == 1 and b"too large" in flood.stderr
    assert "The agent has no identities." in real_list(agent)

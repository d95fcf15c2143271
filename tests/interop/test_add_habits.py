"""Habits of ssh-add and ssh-agent that keytool add and keytool agent keep, each run
side by side with OpenSSH's tool against the same agent: exit 2 when there is no
agent, a lock password from stdin, one passphrase question for keys that share it,
-T with a key file, errors that name their file, a key of a type keytool does not use
listed and removed, and an agent socket path that survives eval."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.interop.agenthelp import KEYTOOL, askpass_script, connect, keytool_agent, openssh_agent
from tests.interop.agenthelp import RunningAgent as Agent
from tests.peers import require, run


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    with openssh_agent(tmp_path / "agent") as running:
        yield running


def agent_of(
    which: str, folder: Path, env: dict[str, str] | None = None
) -> AbstractContextManager[Agent]:
    """keytool's agent or ssh-agent, in the foreground at ``folder``."""
    if which == "keytool":
        return keytool_agent(folder, env=env)
    return openssh_agent(folder, env=env)


def both(
    agent: Agent | None, args: list[str], stdin: str | None = None, **env: str
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """ssh-add ARGS and keytool add ARGS, with no terminal (a new session)."""
    full = agent.env(**env) if agent is not None else {**os.environ, **env}
    results = []
    for argv in ([require("ssh-add"), *args], [*KEYTOOL, "add", *args]):
        results.append(
            subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=60,
                env=full,
                start_new_session=True,
                stdin=None if stdin is not None else subprocess.DEVNULL,
            )
        )
    return results[0], results[1]


def key(folder: Path, kind: str, passphrase: str = "", name: str | None = None) -> Path:
    path = folder / (name or kind)
    run([require("ssh-keygen"), "-q", "-t", kind, "-N", passphrase, "-C", f"{path.name}-c",
         "-f", path]).check_returncode()  # fmt: skip
    return path


def listed(agent: Agent) -> str:
    return run([require("ssh-add"), "-l"], env=agent.env()).stdout


def test_no_agent_is_exit_2(tmp_path: Path) -> None:
    """ssh-add -l; [ $? = 2 ] && eval "$(ssh-agent)": no agent is 2, no keys is 1."""
    ed = key(tmp_path, "ed25519")
    for env in ({"SSH_AUTH_SOCK": str(tmp_path / "nothing")}, {"SSH_AUTH_SOCK": ""}):
        for args in (["-l"], ["-D"], [str(ed)]):
            theirs, ours = both(None, args, **env)
            assert (theirs.returncode, ours.returncode) == (2, 2), ours.stderr


def test_lock_password_from_stdin(agent: Agent, tmp_path: Path) -> None:
    ed = key(tmp_path, "ed25519")
    run([require("ssh-add"), "-q", ed], env=agent.env()).check_returncode()
    for tool in ("ssh-add", "keytool"):
        argv = [require("ssh-add")] if tool == "ssh-add" else [*KEYTOOL, "add"]
        locked = subprocess.run([*argv, "-x"], input="lock pw\nlock pw\n", text=True,
                                capture_output=True, env=agent.env(), start_new_session=True,
                                timeout=60)  # fmt: skip
        assert locked.returncode == 0, (tool, locked.stderr)
        assert "Agent locked." in locked.stderr
        assert "ED25519" not in listed(agent)  # a locked agent lists nothing
        wrong = subprocess.run([*argv, "-X"], input="other\n", text=True, capture_output=True,
                               env=agent.env(), start_new_session=True, timeout=60)  # fmt: skip
        assert wrong.returncode != 0
        unlocked = subprocess.run([*argv, "-X"], input="lock pw\n", text=True,
                                  capture_output=True, env=agent.env(), start_new_session=True,
                                  timeout=60)  # fmt: skip
        assert unlocked.returncode == 0, (tool, unlocked.stderr)
        assert "ED25519" in listed(agent)


def test_keys_sharing_a_passphrase_are_asked_for_once(agent: Agent, tmp_path: Path) -> None:
    first = key(tmp_path, "ecdsa", "shared pw", "first")
    second = key(tmp_path, "ed25519", "shared pw", "second")
    third = key(tmp_path, "ed25519", "other pw", "third")
    askpass = askpass_script(tmp_path)
    logs = []
    for tool in ("ssh-add", "keytool"):
        log = tmp_path / f"{tool}.log"
        argv = [require("ssh-add")] if tool == "ssh-add" else [*KEYTOOL, "add"]
        env = agent.env(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0",
                        KT_ASKPASS_LOG=str(log), KT_ASKPASS_ANSWER="shared pw")  # fmt: skip
        done = subprocess.run([*argv, str(first), str(second)], capture_output=True, text=True,
                              env=env, start_new_session=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, (tool, done.stderr)
        assert listed(agent).count("\n") == 2
        # the remembered passphrase does not open the third: it is asked for
        run([require("ssh-add"), "-D"], env=agent.env())
        env["KT_ASKPASS_ANSWER"] = "other pw"
        done = subprocess.run([*argv, str(third)], capture_output=True, text=True, env=env,
                              start_new_session=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, (tool, done.stderr)
        run([require("ssh-add"), "-D"], env=agent.env())
        logs.append(log.read_text().count("\n"))
    assert logs == [2, 2]  # one question for first and second, one for third


def test_errors_name_the_file_and_the_rest_is_added(agent: Agent, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(os.urandom(300))
    garbage.chmod(0o600)
    ed = key(tmp_path, "ed25519")
    theirs, ours = both(agent, [str(garbage), str(ed)])
    assert theirs.returncode == ours.returncode == 1
    assert f'Error loading key "{garbage}"' in theirs.stderr
    assert f'Error loading key "{garbage}"' in ours.stderr
    assert "ed25519-c" in listed(agent)


def test_test_signs_with_a_key_file_and_names_a_bad_one(agent: Agent, tmp_path: Path) -> None:
    ed = key(tmp_path, "ed25519")
    ecdsa = key(tmp_path, "ecdsa")
    garbage = tmp_path / "garbage"
    garbage.write_text("junk\n")
    run([require("ssh-add"), "-q", ed, ecdsa], env=agent.env()).check_returncode()
    theirs, ours = both(agent, ["-T", str(ed), f"{ecdsa}.pub"])
    assert theirs.returncode == ours.returncode == 0, ours.stderr
    theirs, ours = both(agent, ["-T", str(garbage), str(ed)])
    assert theirs.returncode == ours.returncode == 1
    for result in (theirs, ours):
        assert f"Couldn't read public key {garbage}" in result.stderr
    run([require("ssh-add"), "-q", "-d", ed], env=agent.env()).check_returncode()
    theirs, ours = both(agent, ["-T", str(ed)])  # not in the agent now
    assert theirs.returncode == ours.returncode == 1
    assert f"Agent signature failed for {ed}" in ours.stderr


def test_a_key_of_a_type_keytool_does_not_use(agent: Agent, tmp_path: Path) -> None:
    """A DSA key put in ssh-agent by ssh-add: -L gives its line as ssh-add does (it
    printed text that is no key, fit to end up in an authorized_keys), -d removes it."""
    dsa = key(tmp_path, "dsa")
    ed = key(tmp_path, "ed25519")
    run([require("ssh-add"), "-q", dsa, ed], env=agent.env()).check_returncode()
    theirs, ours = both(agent, ["-L"])
    assert theirs.returncode == ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout and "ssh-dss " in ours.stdout
    fingerprint = run([require("ssh-keygen"), "-lf", dsa]).stdout.split()[1]
    ours = both(agent, ["-l"])[1]
    assert ours.returncode == 0 and fingerprint in ours.stdout
    removed = subprocess.run([*KEYTOOL, "add", "-d", f"{dsa}.pub"], capture_output=True,
                             text=True, env=agent.env(), timeout=60)  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    left = listed(agent)
    assert "DSA" not in left and "ED25519" in left


@pytest.mark.parametrize("where", ["bind", "tmpdir"])
def test_the_agent_socket_path_survives_eval(where: str) -> None:
    """A socket in a folder whose name has a space: eval "$(keytool agent -s)" sets
    SSH_AUTH_SOCK to it whole, and ssh-add reaches the agent there. The folder is
    short: in one too deep for a socket's name (a test's own folder may be) the agent
    goes to /tmp, as ssh-agent."""
    folder = Path(tempfile.mkdtemp(prefix="my folder "))
    try:
        _socket_in(folder, where)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _socket_in(folder: Path, where: str) -> None:
    keytool = " ".join(KEYTOOL)
    start = f"{keytool} agent -s -a s.sock" if where == "bind" else f"{keytool} agent -s"
    script = (
        f'eval "$({start})" >/dev/null || exit 9; '
        f'{require("ssh-add")} -l; s=$?; printf "%s\\n" "$SSH_AUTH_SOCK"; '
        f'kill "$SSH_AGENT_PID"; exit $s'
    )
    env = {**os.environ, "TMPDIR": str(folder)}
    env.pop("SSH_AUTH_SOCK", None)
    done = subprocess.run(["sh", "-c", script], cwd=folder, capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip
    assert done.returncode == 1, done.stderr  # reached: it has no identities
    sock = done.stdout.splitlines()[-1]
    assert sock.startswith(f"{folder}/")


def test_the_agent_takes_ssh_agents_provider_options(tmp_path: Path) -> None:
    """ssh-agent -O no-restrict-websafe -P PATTERN in a start-up script works with
    keytool agent too (it refused them); an unknown -O is refused by both."""
    for name, argv in (("theirs", [require("ssh-agent")]), ("ours", [*KEYTOOL, "agent"])):
        sock = tmp_path / f"{name}.sock"
        flags = "-O no-restrict-websafe -O allow-remote-pkcs11 -P '/usr/lib/*'"
        script = (
            f'eval "$({" ".join(argv)} {flags} -s -a {sock})" >/dev/null || exit 9; '
            f'{require("ssh-add")} -l; s=$?; kill "$SSH_AGENT_PID"; exit $s'
        )
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, (name, done.stderr)  # reached: no identities
        bad = subprocess.run([*argv, "-O", "no-such-option", "-a", str(tmp_path / "x.sock")],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert bad.returncode != 0 and "Unknown -O option" in bad.stderr


@pytest.mark.parametrize("which", ["ssh-agent", "keytool"])
def test_the_right_lock_password_after_wrong_ones_unlocks(tmp_path: Path, which: str) -> None:
    """Five wrong unlock passwords, the user gives up on a sixth (^C while the agent
    holds it back), then types the right one: ssh-agent unlocks. keytool's agent
    refused every attempt, the right one too, until the delay ran out."""
    ed = key(tmp_path, "ed25519")
    with agent_of(which, tmp_path / "agent") as running:
        run([require("ssh-add"), "-q", ed], env=running.env()).check_returncode()

        def ssh_add(flag: str, password: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([require("ssh-add"), flag], input=password + "\n",
                                  text=True, capture_output=True, env=running.env(),
                                  start_new_session=True, timeout=60)  # fmt: skip

        assert ssh_add("-x", "right pw\nright pw").returncode == 0
        for _ in range(5):
            assert ssh_add("-X", "wrong").returncode == 1
        with connect(running.sock) as gives_up:  # a sixth wrong one, never waited for
            body = b"\x17" + len(b"wrong").to_bytes(4, "big") + b"wrong"
            gives_up.sendall(len(body).to_bytes(4, "big") + body)
        unlocked = ssh_add("-X", "right pw")
        assert unlocked.returncode == 0 and unlocked.stderr.endswith("Agent unlocked.\n")
        assert "ED25519" in listed(running)


def test_a_lifetime_past_what_ssh_add_takes_is_refused(agent: Agent, tmp_path: Path) -> None:
    """-t over 2^31-1 seconds (or not a time) is "Invalid lifetime" for ssh-add and
    ssh-agent alike; keytool took it (add loaded the key, agent started)."""
    ed = key(tmp_path, "ed25519")
    for lifetime in ("2147483648", "bad"):
        theirs, ours = both(agent, ["-t", lifetime, str(ed)])
        assert theirs.returncode == ours.returncode == 1, ours.stderr
        assert "Invalid lifetime" in theirs.stderr and "Invalid lifetime" in ours.stderr
        for program in ([require("ssh-agent")], [*KEYTOOL, "agent"]):
            started = subprocess.run([*program, "-t", lifetime, "-a", str(tmp_path / "a.sock")],
                                     capture_output=True, text=True, timeout=60)  # fmt: skip
            assert started.returncode == 1 and "Invalid lifetime" in started.stderr
            assert not (tmp_path / "a.sock").exists()
    assert "ED25519" not in listed(agent)


@pytest.mark.parametrize("which", ["ssh-agent", "keytool"])
def test_a_confirmation_needs_a_display_or_force(tmp_path: Path, which: str) -> None:
    """An agent with SSH_ASKPASS but no DISPLAY (a headless session): ssh-agent never
    runs the askpass program and refuses to sign with a -c key; with
    SSH_ASKPASS_REQUIRE=force it asks. keytool's agent ran the program either way."""
    ed = key(tmp_path, "ed25519")
    askpass = askpass_script(tmp_path)
    for forced in (False, True):
        log = tmp_path / f"asked-{forced}"
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(SSH_ASKPASS=str(askpass), KT_ASKPASS_LOG=str(log), KT_ASKPASS_ANSWER="yes")
        if forced:
            env["SSH_ASKPASS_REQUIRE"] = "force"
        folder = tmp_path / f"agent-{forced}"
        with agent_of(which, folder, env) as running:
            run([require("ssh-add"), "-q", "-c", ed], env=running.env()).check_returncode()
            tested = run([require("ssh-add"), "-T", f"{ed}.pub"], env=running.env())
        assert (tested.returncode == 0) is forced, (forced, tested.stderr)
        assert log.exists() is forced

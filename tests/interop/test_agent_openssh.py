"""keytool's agent, driven by OpenSSH's own tools: ssh-add manages it, ssh logs into real
sshd and dropbear servers with keys only the agent holds."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.agenthelp import RunningAgent as Agent
from tests.interop.agenthelp import (
    askpass_script,
    keygen_fingerprints,
    keytool_agent,
    make_keys,
    openssh_agent,
    pub_lines,
)
from tests.interop.clienthelp import KEYTOOL
from tests.peers import OPENSSH10, Dropbear, Sshd, missing, require, run, user_db


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("agentkeys"))


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    with keytool_agent(tmp_path / "agent") as running:
        yield running
    assert not running.sock.exists(), "the agent left its socket behind on SIGTERM"


def ssh_add(agent: Agent, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run([require("ssh-add"), *args], env=agent.env(**env))


def test_ssh_add_lists_what_ssh_keygen_shows(agent: Agent, keys: dict[str, Path]) -> None:
    files = list(keys.values())
    for path in files:
        added = ssh_add(agent, path)
        assert added.returncode == 0, added.stderr
        assert f"Identity added: {path}" in added.stderr
    listed = ssh_add(agent, "-l")
    assert listed.returncode == 0
    assert listed.stdout == keygen_fingerprints(files)
    assert ssh_add(agent, "-E", "md5", "-l").stdout == keygen_fingerprints(files, "md5")
    assert ssh_add(agent, "-L").stdout == pub_lines(files)
    for path in files:
        tested = ssh_add(agent, "-T", f"{path}.pub")
        assert tested.returncode == 0, tested.stderr


def test_ssh_add_test_fails_for_a_key_not_held(agent: Agent, keys: dict[str, Path]) -> None:
    ssh_add(agent, keys["ed25519"]).check_returncode()
    assert ssh_add(agent, "-T", f"{keys['ecdsa']}.pub").returncode != 0
    assert ssh_add(agent, "-T", f"{keys['ed25519']}.pub").returncode == 0


def test_ssh_add_deletes(agent: Agent, keys: dict[str, Path]) -> None:
    for path in keys.values():
        ssh_add(agent, path).check_returncode()
    removed = ssh_add(agent, "-d", keys["ecdsa"])
    assert removed.returncode == 0, removed.stderr
    assert ssh_add(agent, "-l").stdout == keygen_fingerprints([keys["ed25519"], keys["rsa"]])
    assert ssh_add(agent, "-d", keys["ecdsa"]).returncode != 0
    cleared = ssh_add(agent, "-D")
    assert cleared.returncode == 0
    empty = ssh_add(agent, "-l")
    assert empty.returncode == 1
    assert "The agent has no identities." in empty.stdout


def test_ssh_add_locks_and_unlocks(tmp_path: Path, agent: Agent, keys: dict[str, Path]) -> None:
    ssh_add(agent, keys["ed25519"]).check_returncode()
    script = askpass_script(tmp_path)
    ask = {
        "SSH_ASKPASS": str(script),
        "SSH_ASKPASS_REQUIRE": "force",
        "KT_ASKPASS_LOG": str(tmp_path / "asked"),
    }
    locked = ssh_add(agent, "-x", **ask, KT_ASKPASS_ANSWER="lock-secret")
    assert locked.returncode == 0, locked.stderr
    assert ssh_add(agent, "-l").returncode == 1  # lists nothing while locked
    assert ssh_add(agent, "-T", f"{keys['ed25519']}.pub").returncode != 0
    assert ssh_add(agent, keys["ecdsa"]).returncode != 0  # refuses new keys too
    wrong = ssh_add(agent, "-X", **ask, KT_ASKPASS_ANSWER="not-it")
    assert wrong.returncode != 0
    right = ssh_add(agent, "-X", **ask, KT_ASKPASS_ANSWER="lock-secret")
    assert right.returncode == 0, right.stderr
    assert ssh_add(agent, "-l").stdout == keygen_fingerprints([keys["ed25519"]])
    assert "lock-secret" not in agent.log_text()


def _wait_until_empty(agent: Agent, limit: float = 15.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ssh_add(agent, "-l").returncode == 1:
            return True
        time.sleep(0.1)
    return False


def test_lifetime_expiry(agent: Agent, keys: dict[str, Path]) -> None:
    ssh_add(agent, "-t", "1", keys["ed25519"]).check_returncode()
    ssh_add(agent, keys["ecdsa"]).check_returncode()
    ssh_add(agent, "-t", "1", keys["rsa"]).check_returncode()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if ssh_add(agent, "-l").stdout == keygen_fingerprints([keys["ecdsa"]]):
            break
        time.sleep(0.1)
    assert ssh_add(agent, "-l").stdout == keygen_fingerprints([keys["ecdsa"]])
    assert ssh_add(agent, "-T", f"{keys['ed25519']}.pub").returncode != 0


def test_default_lifetime_from_agent_t(tmp_path: Path, keys: dict[str, Path]) -> None:
    with keytool_agent(tmp_path / "a", "-t", "1") as agent:
        ssh_add(agent, keys["ed25519"]).check_returncode()
        assert _wait_until_empty(agent)


def test_confirm_asks_through_askpass(tmp_path: Path, keys: dict[str, Path]) -> None:
    script = askpass_script(tmp_path)
    asked = tmp_path / "asked"
    answer = tmp_path / "status"
    answer.write_text("0")
    wrapper = tmp_path / "askpass-wrapper.sh"
    wrapper.write_text(f'#!/bin/sh\nKT_ASKPASS_STATUS=$(cat "{answer}") exec "{script}" "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, SSH_ASKPASS=str(wrapper), KT_ASKPASS_LOG=str(asked), DISPLAY=":0")
    with keytool_agent(tmp_path / "a", env=env) as agent:
        ssh_add(agent, "-c", keys["ed25519"]).check_returncode()
        assert ssh_add(agent, "-T", f"{keys['ed25519']}.pub").returncode == 0
        assert "kt-ed25519" in asked.read_text()
        answer.write_text("1")
        assert ssh_add(agent, "-T", f"{keys['ed25519']}.pub").returncode != 0
        assert asked.read_text().count("kt-ed25519") == 2


def test_confirm_without_askpass_refuses(tmp_path: Path, keys: dict[str, Path]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SSH_ASKPASS"}
    with keytool_agent(tmp_path / "a", env=env) as agent:
        ssh_add(agent, "-c", keys["ecdsa"]).check_returncode()
        assert ssh_add(agent, "-T", f"{keys['ecdsa']}.pub").returncode != 0


def _agent_only_copy(keys: dict[str, Path], kind: str, folder: Path) -> tuple[Path, Path]:
    """A copy of the key pair; the private half is loaded and then deleted by the caller."""
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / f"id_{kind}"
    shutil.copy(keys[kind], private)
    private.chmod(0o600)
    public = folder / f"id_{kind}.pub"
    shutil.copy(f"{keys[kind]}.pub", public)
    return private, public


def _ssh(
    agent: Agent, port: int, user: str, known: Path, public: Path, ssh: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run(
        [
            ssh or require("ssh"), "-F", "/dev/null", "-p", str(port),
            "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known}",
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"IdentityFile={public}", "-o", f"IdentityAgent={agent.sock}",
            "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
            f"{user}@127.0.0.1", "echo", "logged-in-via-agent",
        ],
        env=agent.env(),
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_ssh_logs_into_sshd(
    tmp_path: Path, sshd: Sshd, agent: Agent, keys: dict[str, Path], kind: str
) -> None:
    private, public = _agent_only_copy(keys, kind, tmp_path / "client")
    ssh_add(agent, private).check_returncode()
    private.unlink()  # only the agent holds it now
    sshd.authorized_keys.write_text(public.read_text())
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    result = _ssh(agent, sshd.port, "root", known, public)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "logged-in-via-agent\n"
    log = sshd.log.read_text()
    fp = keygen_fingerprints([public]).split()[1]
    assert "Accepted publickey for root from 127.0.0.1" in log and fp in log
    if kind == "rsa":
        # ssh asked the agent for an RSA SHA-2 signature (SSH_AGENT_RSA_SHA2_* flag)
        assert "rsa-sha2-512" in log or "rsa-sha2-256" in log
        assert "with ssh-rsa" not in agent.log_text()
    # OpenSSH >= 8.9 binds the agent connection to the session: the agent verified it
    assert "session bound to" in agent.log_text()


@pytest.mark.parametrize("host_key", ["ecdsa", "rsa"])
def test_session_bind_with_other_host_keys(
    tmp_path: Path, agent: Agent, keys: dict[str, Path], host_key: str
) -> None:
    with Sshd(tmp_path / "sshd", host_key_types=(host_key,)) as server:
        private, public = _agent_only_copy(keys, "ed25519", tmp_path / "client")
        ssh_add(agent, private).check_returncode()
        private.unlink()
        server.authorized_keys.write_text(public.read_text())
        known = tmp_path / "known_hosts"
        known.write_text(server.known_hosts_line(host_key))
        result = _ssh(agent, server.port, "root", known, public)
        assert result.returncode == 0, result.stderr
    # the agent verified the host's own signature over the session id
    assert "session bound to" in agent.log_text()
    assert "session-bind refused" not in agent.log_text()


def test_openssh10_ssh_logs_in_through_the_agent(
    tmp_path: Path, sshd: Sshd, agent: Agent, keys: dict[str, Path]
) -> None:
    ssh10 = OPENSSH10 / "usr/bin/ssh"
    if not ssh10.exists():
        missing("OpenSSH 10 is not unpacked (scripts/fetch-openssh10)")
    private, public = _agent_only_copy(keys, "ed25519", tmp_path / "client")
    ssh_add(agent, private).check_returncode()
    private.unlink()
    sshd.authorized_keys.write_text(public.read_text())
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    result = _ssh(agent, sshd.port, "root", known, public, str(ssh10))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "logged-in-via-agent\n"
    assert "session bound to" in agent.log_text()


@pytest.fixture
def throwaway_user(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A user with its own home for dropbear, which reads ~user/.ssh/authorized_keys."""
    require("useradd")
    name = f"kt{os.getpid() % 100000}{os.urandom(2).hex()}"
    home = tmp_path / "home"
    # the home's parents must be traversable by the user for its login shell
    for parent in [tmp_path, *tmp_path.parents]:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o711 if parent == tmp_path else mode | 0o001)
    result = user_db(["useradd", "-M", "-d", str(home), "-s", "/bin/sh", "-p", "*", name])
    if result.returncode != 0:
        missing(f"cannot create a user: {result.stderr.strip()}")
    try:
        entry = pwd.getpwnam(name)
        (home / ".ssh").mkdir(parents=True)
        home.chmod(0o755)
        (home / ".ssh").chmod(0o700)
        (home / ".ssh" / "authorized_keys").touch(mode=0o600)
        for path in (home, home / ".ssh", home / ".ssh" / "authorized_keys"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        yield name, home
    finally:
        user_db(["userdel", "-f", name])


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_ssh_logs_into_dropbear(
    tmp_path: Path,
    dropbear: Dropbear,
    agent: Agent,
    keys: dict[str, Path],
    throwaway_user: tuple[str, Path],
    kind: str,
) -> None:
    user, home = throwaway_user
    private, public = _agent_only_copy(keys, kind, tmp_path / "client")
    ssh_add(agent, private).check_returncode()
    private.unlink()
    (home / ".ssh" / "authorized_keys").write_text(public.read_text())
    host_pub = run([require("dropbearkey"), "-y", "-f", dropbear.host_keys["ed25519"]]).stdout
    line = next(x for x in host_pub.splitlines() if x.startswith("ssh-ed25519"))
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{dropbear.port} {' '.join(line.split()[:2])}\n")
    result = _ssh(agent, dropbear.port, user, known, public)
    assert result.returncode == 0, result.stderr + dropbear.log.read_text()
    assert result.stdout == "logged-in-via-agent\n"
    fp = keygen_fingerprints([public]).split()[1]
    log = dropbear.log.read_text()
    assert f"Pubkey auth succeeded for '{user}'" in log and fp in log
    if kind == "rsa":
        # the agent was asked for an RSA SHA-2 signature, never SHA-1 ssh-rsa
        agent_log = agent.log_text()
        assert "with rsa-sha2-256" in agent_log or "with rsa-sha2-512" in agent_log
        assert "with ssh-rsa" not in agent_log


def _secrets(keys: dict[str, Path]) -> list[bytes]:
    """Each key's private fields, as bytes and as the text forms a log might show."""
    from keytool.keys import load_private
    from keytool.keys.ecdsa import EcdsaPrivate
    from keytool.keys.ed25519 import Ed25519Private
    from keytool.keys.rsa import RsaPrivate

    found: list[bytes] = []
    for path in keys.values():
        key, _ = load_private(path.read_bytes())
        numbers: list[int] = []
        if isinstance(key, Ed25519Private):
            numbers.append(int.from_bytes(key.seed, "big"))
            found.append(key.seed)
        elif isinstance(key, RsaPrivate):
            numbers += [key.d, key.p, key.q]
        elif isinstance(key, EcdsaPrivate):
            fields = key.fields_to_wire()
            numbers.append(int.from_bytes(fields[-32:], "big"))
        for number in numbers:
            raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
            found += [raw[:16], f"{number:x}"[:24].encode(), str(number)[:24].encode()]
    return found


def test_no_key_material_in_replies_or_log(
    tmp_path: Path, agent: Agent, keys: dict[str, Path]
) -> None:
    from tests.interop.agenthelp import connect, roundtrip

    for path in keys.values():
        ssh_add(agent, path).check_returncode()
    for path in keys.values():
        ssh_add(agent, "-T", f"{path}.pub").check_returncode()
    with connect(agent.sock) as conn:
        replies = roundtrip(conn, bytes([11]))
        replies += roundtrip(conn, bytes([99]))
    ssh_add(agent, "-d", keys["rsa"]).check_returncode()
    ssh_add(agent, "-D").check_returncode()
    log = agent.log_text().encode()
    assert b"added" in log  # the log is really there
    for secret in _secrets(keys):
        assert secret not in log
        assert secret not in replies


@pytest.mark.parametrize("hash_name", ["md5", "sha256"])
def test_confirmation_shows_the_fingerprint_hash_of_E(
    tmp_path: Path, keys: dict[str, Path], hash_name: str
) -> None:
    """-E: the confirmation of a -c key names it in that hash, the same words as
    ssh-agent's; an unknown hash is ssh-agent's error."""
    script = askpass_script(tmp_path)
    asked = {}
    for name in ("ssh-agent", "keytool"):
        log = tmp_path / f"asked-{name}"
        env = dict(os.environ, SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force",
                   DISPLAY=":0", KT_ASKPASS_LOG=str(log), KT_ASKPASS_ANSWER="yes")  # fmt: skip
        folder = tmp_path / name
        if name == "ssh-agent":
            agent = openssh_agent(folder, env=env, flags=("-E", hash_name))
        else:
            agent = keytool_agent(folder, "-E", hash_name, env=env)
        with agent as running:
            ssh_add(running, "-c", keys["ed25519"]).check_returncode()
            tested = ssh_add(running, "-T", f"{keys['ed25519']}.pub")
            assert tested.returncode == 0, tested.stderr
        asked[name] = log.read_text()
    assert asked["keytool"] == asked["ssh-agent"]
    prefix = "MD5:" if hash_name == "md5" else "SHA256:"
    assert f"Key fingerprint {prefix}" in asked["keytool"]
    said = {}
    for name, program in (("ssh-agent", [require("ssh-agent")]), ("keytool", [*KEYTOOL, "agent"])):
        bad = subprocess.run([*program, "-E", "nothing", "-D"], capture_output=True, text=True,
                             timeout=30)  # fmt: skip
        assert bad.returncode != 0, name
        said[name] = bad.stderr.replace("\r", "").removeprefix("keytool: ")
    assert said["keytool"] == said["ssh-agent"] == 'Invalid hash algorithm "nothing"\n'

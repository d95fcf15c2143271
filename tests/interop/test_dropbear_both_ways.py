"""Dropbear's own tools with keytool's files and services, both ways: dropbearconvert and
dropbearkey read the keys ``keytool gen`` writes, and dbclient logs in with them; keytool
reads (and re-encrypts) the keys dropbearkey makes and logs in to dropbear with them;
dbclient signs through keytool's agent (ssh-agent's protocol, RSA's SHA-2 flags) and
forwards it, as ``keytool exec -A`` forwards it to a dropbear server.

dbclient 2022.83 reads only dropbear's key format with -i (an OpenSSH-format key, from
keytool or from ssh-keygen alike, is "Exited: String too long"): its logins use the key
dropbearconvert made of keytool's. Its known_hosts is $HOME/.ssh/known_hosts, a line per
host name without the port."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.agenthelp import RunningAgent, keygen_fingerprints, keytool_agent
from tests.interop.clienthelp import (
    KEYTOOL,
    Account,
    base_env,
    install_key,
    keygen,
    keytool_exec,
    throwaway_account,
)
from tests.peers import Dropbear, Sshd, require, run

#: keytool gen's arguments for each key it makes here, by test id
GEN_KINDS: dict[str, list[str]] = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa-256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa-384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa-521": ["-t", "ecdsa", "-b", "521"],
    "rsa-2048": ["-t", "rsa", "-b", "2048"],
    "rsa-default": ["-t", "rsa"],
}

#: dropbearkey's arguments for each key it makes here, by test id
DROPBEAR_KINDS: dict[str, list[str]] = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa-256": ["-t", "ecdsa", "-s", "256"],
    "ecdsa-521": ["-t", "ecdsa", "-s", "521"],
    "rsa-2048": ["-t", "rsa", "-s", "2048"],
}


# ---- servers and an account, once for the module


@pytest.fixture(scope="module")
def user() -> Iterator[Account]:
    """A local account dropbear logs into (dropbear reads ~user/.ssh/authorized_keys)."""
    with throwaway_account() as made:
        yield made


@pytest.fixture(scope="module")
def dropbear(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dropbear]:
    with Dropbear(tmp_path_factory.mktemp("dropbear")) as server:
        yield server


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """OpenSSH's sshd letting root in with the keys of its own authorized_keys file."""
    with Sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


# ---- helpers


def dropbear_public(private: Path) -> tuple[str, str, str]:
    """What ``dropbearkey -y`` shows of a dropbear-format key: type, base64 blob and
    fingerprint (its "Fingerprint: SHA256:..." line)."""
    shown = run([require("dropbearkey"), "-y", "-f", private])
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith(("ssh-", "ecdsa-")))
    kind, blob = line.split()[:2]
    found = re.search(r"^Fingerprint: (SHA256:\S+)$", shown.stdout, re.MULTILINE)
    assert found, shown.stdout
    return kind, blob, found.group(1)


def ssh_keygen_fingerprint(path: Path) -> str:
    """The SHA256 fingerprint ``ssh-keygen -lf`` shows of a key or public key file."""
    shown = run([require("ssh-keygen"), "-lf", path])
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.split()[1]


def convert(kind_from: str, kind_to: str, source: Path, target: Path) -> None:
    converted = run([require("dropbearconvert"), kind_from, kind_to, source, target])
    assert converted.returncode == 0, converted.stdout + converted.stderr
    assert target.exists()


def keytool(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run([*KEYTOOL, *args], env=env if env is not None else base_env())


def keytool_gen(path: Path, *args: str, comment: str = "made-by-keytool") -> Path:
    made = keytool("gen", *args, "-N", "", "-C", comment, "-f", path)
    assert made.returncode == 0, made.stderr
    return path


def dbclient_home(folder: Path, known_lines: list[str]) -> Path:
    """A $HOME for dbclient: ~/.ssh/known_hosts of ``known_lines``, no id_dropbear
    (dbclient's default key): it has only the keys it is given or its agent's."""
    ssh_dir = folder / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    (ssh_dir / "known_hosts").write_text("".join(known_lines))
    return folder


def sshd_known_lines(server: Sshd) -> list[str]:
    """dbclient's known_hosts lines for ``server``: its host name alone, no port."""
    lines = []
    for path in server.host_keys.values():
        kind, blob = Path(f"{path}.pub").read_text().split()[:2]
        lines.append(f"127.0.0.1 {kind} {blob}\n")
    return lines


def dropbear_known_lines(server: Dropbear) -> list[str]:
    return [
        f"127.0.0.1 {line.split(' ', 1)[1]}" for line in server.known_hosts_lines().splitlines(True)
    ]


def dbclient(
    home: Path,
    port: int,
    destination: str,
    command: str,
    *flags: str,
    agent: RunningAgent | None = None,
) -> subprocess.CompletedProcess[str]:
    """dbclient run as a user runs it: its $HOME, an agent or none, no terminal (a
    session of its own: a password prompt fails rather than waits)."""
    env = base_env(HOME=str(home))
    if agent is not None:
        env["SSH_AUTH_SOCK"] = str(agent.sock)
    return subprocess.run(
        [require("dbclient"), "-p", str(port), *flags, destination, command],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        timeout=30,
        check=False,
    )


def logged_since(log: Path, offset: int, pattern: str, timeout: float = 10.0) -> str:
    """What ``log`` got after byte ``offset``, once ``pattern`` (a regex) is in it or
    after ``timeout`` (a server may log a login a moment after the client is gone)."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_bytes()[offset:].decode(errors="replace") if log.exists() else ""
        if re.search(pattern, text) or time.monotonic() > deadline:
            return text
        time.sleep(0.02)


def log_size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def keys_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def keytool_add(agent: RunningAgent, *keys: Path) -> None:
    for key in keys:
        added = keytool("add", key, env=agent.env())
        assert added.returncode == 0, added.stderr


# ---- 1. keys keytool makes, read by dropbearconvert, dropbearkey and dbclient


@pytest.mark.parametrize("kind", list(GEN_KINDS))
def test_dropbear_reads_the_keys_keytool_makes(tmp_path: Path, sshd: Sshd, kind: str) -> None:
    key = keytool_gen(tmp_path / "id", *GEN_KINDS[kind])
    converted = tmp_path / "id.dropbear"
    convert("openssh", "dropbear", key, converted)
    kind_shown, blob, fp = dropbear_public(converted)
    # the public key dropbear found in keytool's private key is the one of keytool's .pub
    pub_kind, pub_blob = Path(f"{key}.pub").read_text().split()[:2]
    assert (kind_shown, blob) == (pub_kind, pub_blob)
    # and its fingerprint is the one ssh-keygen shows of that .pub
    assert fp == ssh_keygen_fingerprint(Path(f"{key}.pub"))
    if kind == "rsa-default":
        assert run([require("ssh-keygen"), "-lf", f"{key}.pub"]).stdout.startswith("3072 ")

    # dbclient logs in to sshd with it (OpenSSH format is not for dbclient: the converted one)
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    home = dbclient_home(tmp_path / "home", sshd_known_lines(sshd))
    offset = log_size(sshd.log)
    login = dbclient(home, sshd.port, "root@127.0.0.1", "echo via-dbclient", "-i", str(converted))
    assert login.returncode == 0, login.stderr
    assert login.stdout == "via-dbclient\n"
    logged = logged_since(sshd.log, offset, r"Accepted publickey for root")
    accepted = re.findall(r"Accepted publickey for root from .* ssh2: \S+ (SHA256:\S+)", logged)
    assert accepted == [fp]


def test_dbclient_takes_no_openssh_format_key(tmp_path: Path, sshd: Sshd) -> None:
    """What the module says of dbclient -i: the OpenSSH-format file is not for it, be it
    keytool's or ssh-keygen's (so the logins above go through dropbearconvert)."""
    home = dbclient_home(tmp_path / "home", sshd_known_lines(sshd))
    for key in (keytool_gen(tmp_path / "kt"), keygen(tmp_path / "ossh")):
        sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
        login = dbclient(home, sshd.port, "root@127.0.0.1", "echo no", "-i", str(key))
        assert (login.returncode, login.stdout) == (1, ""), login.stderr
        assert "String too long" in login.stderr


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_dropbearconvert_reads_keytools_pem_keys(tmp_path: Path, kind: str) -> None:
    """``keytool gen -m PEM`` (PKCS#1 and SEC1, OpenSSL's formats): dropbearconvert's
    reader of older OpenSSH keys takes them, and finds the .pub's key."""
    size = ["-b", "2048"] if kind == "rsa" else ["-b", "384"]
    key = keytool_gen(tmp_path / "id", "-t", kind, *size, "-m", "PEM")
    header = key.read_text().splitlines()[0]
    assert header == f"-----BEGIN {'RSA' if kind == 'rsa' else 'EC'} PRIVATE KEY-----"
    converted = tmp_path / "id.dropbear"
    convert("openssh", "dropbear", key, converted)
    kind_shown, blob, fp = dropbear_public(converted)
    assert [kind_shown, blob] == Path(f"{key}.pub").read_text().split()[:2]
    assert fp == ssh_keygen_fingerprint(Path(f"{key}.pub"))


# ---- 2. keys dropbearkey makes, read by keytool


@pytest.mark.parametrize("kind", list(DROPBEAR_KINDS))
def test_keytool_reads_the_keys_dropbear_makes(
    tmp_path: Path, dropbear: Dropbear, user: Account, kind: str
) -> None:
    made = tmp_path / "id.dropbear"
    generated = run([require("dropbearkey"), *DROPBEAR_KINDS[kind], "-f", made])
    assert generated.returncode == 0, generated.stderr
    kind_shown, blob, fp = dropbear_public(made)
    key = tmp_path / "id"
    convert("dropbear", "openssh", made, key)

    # keytool pub: dropbearkey's public line (dropbearconvert keeps no comment)
    pub = keytool("pub", "-f", key)
    assert pub.returncode == 0, pub.stderr
    assert pub.stdout.split()[:2] == [kind_shown, blob]
    # keytool fingerprint: dropbearkey's fingerprint, in ssh-keygen -l's very line
    shown = keytool("fingerprint", "-f", key)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[1] == fp
    assert shown.stdout == run([require("ssh-keygen"), "-lf", key]).stdout

    # keytool exec logs in to dropbear with it; dropbear names the key it took
    install_key(user, _pub_file(tmp_path / "auth.pub", kind_shown, blob))
    known = tmp_path / "known"
    known.write_text(dropbear.known_hosts_lines())
    offset = log_size(dropbear.log)
    login = keytool_exec(dropbear.port, known, f"{user.name}@127.0.0.1", "id -un",
                         flags=("-i", str(key), "-o", "IdentitiesOnly=yes"))  # fmt: skip
    assert login.returncode == 0, login.stderr
    assert login.stdout.decode() == f"{user.name}\n"
    logged = logged_since(dropbear.log, offset, "Pubkey auth succeeded")
    assert f"Pubkey auth succeeded for '{user.name}' with {kind_shown} key {fp}" in logged

    # keytool passwd puts a passphrase on it that OpenSSH's ssh-keygen then needs
    changed = keytool("passwd", "-f", key, "-P", "", "-N", "newpass")
    assert changed.returncode == 0, changed.stderr
    without = run([require("ssh-keygen"), "-y", "-P", "", "-f", key])
    assert without.returncode != 0
    read = run([require("ssh-keygen"), "-y", "-P", "newpass", "-f", key])
    assert read.returncode == 0, read.stderr
    assert read.stdout.split()[:2] == [kind_shown, blob]


def _pub_file(path: Path, kind: str, blob: str) -> Path:
    path.write_text(f"{kind} {blob} from-dropbearkey\n")
    return path


# ---- 3. keytool's agent, signing for dbclient


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_dbclient_signs_with_keytools_agent(tmp_path: Path, sshd: Sshd, kind: str) -> None:
    """dbclient, with SSH_AUTH_SOCK and no key file at all, logs in to sshd with the key
    ``keytool add`` gave keytool's agent; for RSA, sshd saw (and checked) a SHA-2
    signature, so the agent made the one dbclient's flags asked for."""
    key = keygen(keys_folder(tmp_path / "keys") / f"id_{kind}", kind, f"agent-{kind}")
    pub = Path(f"{key}.pub")
    fp = ssh_keygen_fingerprint(pub)
    with keytool_agent(tmp_path / "agent") as agent:
        keytool_add(agent, key)
        key.unlink()  # the agent's copy alone
        sshd.authorized_keys.write_text(pub.read_text())
        home = dbclient_home(tmp_path / "home", sshd_known_lines(sshd))
        offset = log_size(sshd.log)
        login = dbclient(home, sshd.port, "root@127.0.0.1", "echo via-agent", agent=agent)
        agent_log = agent.log_text()
    assert login.returncode == 0, login.stderr
    assert login.stdout == "via-agent\n"
    logged = logged_since(sshd.log, offset, r"Accepted publickey for root")
    accepted = re.findall(r"Accepted publickey for root from .* ssh2: (\S+) (SHA256:\S+)", logged)
    assert [fp for _, fp in accepted] == [fp]
    if kind == "rsa":
        # sshd's record of the signed request: an RSA SHA-2 algorithm, never ssh-rsa
        algorithms = set(re.findall(r"userauth_pubkey: .*?pkalg (\S+) pkblob RSA", logged))
        assert algorithms and algorithms <= {"rsa-sha2-256", "rsa-sha2-512"}, logged
        signed = re.findall(r"signed \d+ bytes with (\S+),", agent_log)
        assert signed and set(signed) <= algorithms, agent_log


def test_dbclient_without_the_agent_has_no_key(tmp_path: Path, sshd: Sshd) -> None:
    """The contrast that shows the logins above are the agent's: the same dbclient, the
    same $HOME, no SSH_AUTH_SOCK, is refused."""
    key = keygen(tmp_path / "id", "ed25519")
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    home = dbclient_home(tmp_path / "home", sshd_known_lines(sshd))
    login = dbclient(home, sshd.port, "root@127.0.0.1", "echo in")
    assert login.returncode != 0
    assert login.stdout == ""


# ---- 4. agent forwarding through dropbear, both clients


def test_dbclient_forwards_keytools_agent(
    tmp_path: Path, dropbear: Dropbear, user: Account
) -> None:
    """dbclient -A to dropbear, logged in with the agent's key: the real ssh-add at the
    server lists the keytool agent's keys, as ``keytool add -l`` lists them here and
    ssh-keygen fingerprints them; without -A, no agent there."""
    keys = [
        keygen(keys_folder(tmp_path / "keys") / f"id_{k}", k, f"fwd-{k}")
        for k in ("ed25519", "rsa")
    ]
    install_key(user, Path(f"{keys[0]}.pub"))
    home = dbclient_home(tmp_path / "home", dropbear_known_lines(dropbear))
    command = "ssh-add -l; echo status $?"
    with keytool_agent(tmp_path / "agent") as agent:
        keytool_add(agent, *keys)
        for key in keys:
            key.unlink()
        here = keytool("add", "-l", env=agent.env())
        offset = log_size(dropbear.log)
        forwarded = dbclient(home, dropbear.port, f"{user.name}@127.0.0.1", command, "-A",
                             agent=agent)  # fmt: skip
        plain = dbclient(home, dropbear.port, f"{user.name}@127.0.0.1", command, agent=agent)
    expected = keygen_fingerprints([Path(f"{k}.pub") for k in keys])
    assert here.stdout == expected
    assert forwarded.returncode == 0, forwarded.stderr
    assert forwarded.stdout == expected + "status 0\n"
    assert (plain.returncode, plain.stdout) == (0, "status 2\n"), plain.stderr
    logged = logged_since(dropbear.log, offset, "Pubkey auth succeeded")
    fp = ssh_keygen_fingerprint(Path(f"{keys[0]}.pub"))
    assert f"Pubkey auth succeeded for '{user.name}' with ssh-ed25519 key {fp}" in logged


def test_keytool_exec_forwards_its_agent_to_dropbear(
    tmp_path: Path, dropbear: Dropbear, user: Account
) -> None:
    """``keytool exec -A`` to dropbear: ssh-add at the server lists the agent's keys
    through dropbear's agent socket; without -A it finds none."""
    login_key = keygen(tmp_path / "login", "ed25519", "login")
    install_key(user, Path(f"{login_key}.pub"))
    held = keygen(tmp_path / "held", "ecdsa", "held-here")
    known = tmp_path / "known"
    known.write_text(dropbear.known_hosts_lines())
    command = "ssh-add -l; echo status $?"
    flags = ("-i", str(login_key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes")
    with keytool_agent(tmp_path / "agent") as agent:
        keytool_add(agent, held)
        dest = f"{user.name}@127.0.0.1"
        forwarded = keytool_exec(dropbear.port, known, dest, command, flags=(*flags, "-A"),
                                 env=agent.env())  # fmt: skip
        plain = keytool_exec(dropbear.port, known, dest, command, flags=flags, env=agent.env())
    assert forwarded.returncode == 0, forwarded.stderr
    assert forwarded.stdout.decode() == keygen_fingerprints([Path(f"{held}.pub")]) + "status 0\n"
    assert (plain.returncode, plain.stdout) == (0, b"status 2\n"), plain.stderr


# ---- 5. a round trip through dropbear's format


def test_keys_go_through_dropbear_format_and_back(tmp_path: Path) -> None:
    """keytool's key, to dropbear's format and back to OpenSSH's by dropbearconvert:
    keytool and ssh-keygen read the result as the same key as the first."""
    key = keytool_gen(tmp_path / "id", "-t", "ecdsa", "-b", "256")
    convert("openssh", "dropbear", key, tmp_path / "id.dropbear")
    back = tmp_path / "back"
    convert("dropbear", "openssh", tmp_path / "id.dropbear", back)
    original = Path(f"{key}.pub").read_text().split()[:2]
    assert keytool("pub", "-f", back).stdout.split()[:2] == original
    assert run([require("ssh-keygen"), "-y", "-f", back]).stdout.split()[:2] == original
    assert os.stat(back).st_mode & 0o077 == 0

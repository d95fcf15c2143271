"""Helpers for the copy-id tests: run ``keytool copy-id`` as a user would (a private
HOME, no agent unless given, a known_hosts file), an sshd that reads each account's
own ~/.ssh/authorized_keys, and real OpenSSH logins to check the result."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.interop.clienthelp import KEYTOOL, Account, base_env, keygen
from tests.peers import Sshd, require

#: sshd_config lines every copy-id server uses: each user's own file, StrictModes on
USER_KEYS = {
    "AuthorizedKeysFile": ".ssh/authorized_keys",
    "PasswordAuthentication": "yes",
    "StrictModes": "yes",
    "PermitRootLogin": "no",
}


#: sshd asking the password through PAM by keyboard-interactive only (LogLevel INFO:
#: each refusal is one "PAM: Authentication failure" line in its log)
PAM_KBDINT = {
    "UsePAM": "yes",
    "PasswordAuthentication": "no",
    "KbdInteractiveAuthentication": "yes",
    "LogLevel": "INFO",
}


def pam_failures(log: Path, start: int) -> int:
    """PAM's refusals in sshd's ``log`` after byte ``start``."""
    return log.read_bytes()[start:].count(b"PAM: Authentication failure")


def copyid_sshd(folder: Path, accounts: Sequence[Account], **extra: str) -> Sshd:
    options = dict(USER_KEYS)
    options["AllowUsers"] = " ".join(a.name for a in accounts)
    options.update(extra)
    return Sshd(folder, options)


@dataclass
class Client:
    """Where keytool runs: its HOME (with .ssh/known_hosts) and the key to install."""

    home: Path
    known_hosts: Path
    key: Path  # private key; key.pub is installed

    @property
    def pub(self) -> Path:
        return Path(f"{self.key}.pub")

    def pub_line(self) -> bytes:
        return self.pub.read_bytes()


def make_client(folder: Path, *servers: Sshd, kind: str = "ed25519") -> Client:
    home = folder / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    known = home / ".ssh" / "known_hosts"
    known.write_text("".join(s.known_hosts_line() for s in servers))
    key = keygen(home / ".ssh" / f"id_{kind}", kind, "new@client")
    return Client(home, known, key)


def copy_id(
    client: Client,
    *args: str | os.PathLike[str],
    password: str | None = None,
    env: Mapping[str, str] | None = None,
    login_key: Path | None = None,
    timeout: float = 90,
) -> subprocess.CompletedProcess[str]:
    """``keytool copy-id ARGS`` with HOME=client.home; a password through a file.

    Like ssh, keytool finds ~/.ssh/config, known_hosts and the default identity files
    through the password database, not $HOME: so they are all given explicitly here
    (the identity to log in with is ``login_key``, else the client's own new key,
    which the server refuses until it is installed)."""
    extra: list[str] = [
        "-F",
        "none",
        "-o",
        f"UserKnownHostsFile={client.known_hosts}",
        "-o",
        f"IdentityFile={login_key or client.key}",
    ]
    if password is not None:
        secret = client.home / "password"
        secret.write_text(password + "\n")
        secret.chmod(0o600)
        extra += ["--password-file", str(secret)]
    full_env = dict(env) if env is not None else base_env()
    full_env["HOME"] = str(client.home)
    return subprocess.run(
        [*KEYTOOL, "copy-id", "-o", "GlobalKnownHostsFile=/dev/null", *extra, *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def ssh_login(
    server_port: int,
    known_hosts: Path,
    user: str,
    key: Path,
    command: str = "true",
    sftp: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Real OpenSSH logging in with ``key`` alone, never asking anything."""
    options = [
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "PasswordAuthentication=no",
        "-i",
        str(key),
    ]
    if sftp:
        args = [require("sftp"), "-b", "-", "-P", str(server_port), *options, f"{user}@127.0.0.1"]
        return subprocess.run(
            args, input="pwd\n", capture_output=True, text=True, timeout=60, check=False
        )
    args = [require("ssh"), "-p", str(server_port), *options, f"{user}@127.0.0.1", command]
    return subprocess.run(
        args, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, check=False
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def owned_by(path: Path, account: Account) -> bool:
    info = path.stat()
    return info.st_uid == account.uid and info.st_gid == account.gid


def put_keys(account: Account, text: bytes, file_mode: int = 0o600) -> Path:
    """~/.ssh/authorized_keys of ``account`` with exactly ``text``."""
    folder = account.home / ".ssh"
    folder.mkdir(mode=0o700, exist_ok=True)
    keys = folder / "authorized_keys"
    keys.write_bytes(text)
    keys.chmod(file_mode)
    for path in (folder, keys):
        os.chown(path, account.uid, account.gid)
    return keys

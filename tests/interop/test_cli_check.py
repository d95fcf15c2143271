"""``keytool check`` against what sshd (StrictModes) and ssh actually do: a folder or key
with the wrong modes makes the real login fail; check names it, --fix sets the modes
(and nothing else), and the same login then works."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.interop.clienthelp import (
    KEYTOOL,
    Account,
    base_env,
    install_key,
    keygen,
)
from tests.peers import Sshd, require, run


def ssh_login(
    server: Sshd, account: Account, key: Path, known: Path
) -> subprocess.CompletedProcess[str]:
    return run(
        [require("ssh"), "-F", "none", "-p", str(server.port), "-i", key,
         "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
         "-o", "BatchMode=yes", f"{account.name}@127.0.0.1", "echo in"],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KEYTOOL, "check", *args], capture_output=True, text=True,
                          env=base_env(), timeout=60)  # fmt: skip


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_strict_modes_refusal_found_and_fixed(tmp_path: Path, account: Account) -> None:
    key = keygen(tmp_path / "id")
    keys_file = install_key(account, Path(f"{key}.pub"))
    ssh_dir = keys_file.parent
    server = Sshd(tmp_path / "sshd", {"StrictModes": "yes",
                                      "AuthorizedKeysFile": ".ssh/authorized_keys"})  # fmt: skip
    known = tmp_path / "known_hosts"
    with server:
        known.write_text(server.known_hosts_line())
        assert ssh_login(server, account, key, known).returncode == 0  # as installed: fine
        ssh_dir.chmod(0o777)
        keys_file.chmod(0o666)
        refused = ssh_login(server, account, key, known)
        assert refused.returncode != 0
        assert "bad ownership or modes" in server.log.read_text()
        before = contents(ssh_dir)
        found = check("-d", str(ssh_dir))
        assert found.returncode == 1
        assert f"FAIL {ssh_dir}: mode 0777, not 0700" in found.stdout
        assert f"FAIL {keys_file}: mode 0666" in found.stdout
        fixed = check("--fix", "-d", str(ssh_dir))
        assert fixed.returncode == 0, fixed.stdout
        assert (ssh_dir.stat().st_mode & 0o777, keys_file.stat().st_mode & 0o777) == (0o700, 0o600)
        assert contents(ssh_dir) == before  # modes only: every byte kept
        assert (ssh_dir.stat().st_uid, keys_file.stat().st_uid) == (account.uid, account.uid)
        accepted = ssh_login(server, account, key, known)
        assert (accepted.returncode, accepted.stdout) == (0, "in\n"), accepted.stderr
        assert check("-d", str(ssh_dir)).returncode == 0


def test_a_private_key_ssh_refuses_and_weak_keys(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    weak = ssh_dir / "id_rsa"
    run([require("ssh-keygen"), "-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", weak])
    good = ssh_dir / "id_ed25519"
    run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "passphrase", "-f", good])
    weak.chmod(0o644)
    # ssh itself refuses the key file: its permissions are too open
    refused = run([require("ssh-keygen"), "-y", "-f", weak])
    assert "UNPROTECTED PRIVATE KEY FILE" in refused.stderr
    found = check("-d", str(ssh_dir))
    assert found.returncode == 1
    lines = found.stdout.splitlines()
    assert f"FAIL {weak}: mode 0644: a private key others can read (ssh refuses to use it)" in lines
    assert any(line.startswith(f"WARN {weak}: no passphrase") for line in lines)
    assert any(line.startswith(f"WARN {weak}: an RSA key of 1024 bits") for line in lines)
    # 600, a passphrase, Ed25519: only an ok line, saying so
    assert [line for line in lines if f"{good}:" in line] == [
        f"ok   {good}: mode 0600, ssh-ed25519 256 bits, passphrase"
    ]
    assert check("--fix", "-d", str(ssh_dir)).returncode == 0
    assert run([require("ssh-keygen"), "-y", "-f", weak]).returncode == 0


def test_not_a_folder_is_one_line(tmp_path: Path) -> None:
    done = check("-d", str(tmp_path / "missing"))
    assert done.returncode != 0 and len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr

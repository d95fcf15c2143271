"""known_hosts files that cannot be written, side by side with the real tools: a new
host key recorded by ``keytool exec`` and by ssh against sshd (a full disk, a folder
missing on the way), and a file rewritten by ``keytool known-hosts -R / -H`` and by
``ssh-keygen -R / -H`` (its FILE.old a folder, a read-only or full filesystem)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, key_login_server
from tests.interop.fshelp import fill, small_tmpfs
from tests.peers import Sshd, require

CLIENTS = ("ssh", "keytool")
FAILED_TO_ADD = "Failed to add the host to the list of known hosts"


@pytest.fixture
def server(tmp_path: Path) -> tuple[Sshd, Path]:
    return key_login_server(tmp_path)


def _login(
    client: str, sshd: Sshd, key: Path, known: Path, home: Path
) -> subprocess.CompletedProcess[str]:
    program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [*program, "-F", "none", "-p", str(sshd.port), "-i", str(key),
         "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=accept-new",
         "root@127.0.0.1", "echo in"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        env=base_env(HOME=str(home)),
    )  # fmt: skip


def test_a_full_disk_leaves_known_hosts_as_it_was(
    tmp_path: Path, server: tuple[Sshd, Path]
) -> None:
    """No room for the new line: both run the command. ssh 9.2 leaves the part of the
    line that fitted, with no newline, for the next entry to be glued onto (and says
    the host was added: it does not check its fclose); keytool says it failed to add
    the host, takes the part back, and the file stays as it was."""
    sshd, key = server
    original = b"# padding\n" * 407  # a page less a little: part of a line fits
    seen = {}
    with small_tmpfs(tmp_path / "disk") as disk, sshd:
        for client in CLIENTS:
            (disk / client).write_bytes(original)
        fill(disk)
        for client in CLIENTS:
            done = _login(client, sshd, key, disk / client, tmp_path / "home")
            seen[client] = (done.returncode, done.stdout)
            seen[f"{client} said"] = done.stderr
            seen[f"{client} file"] = (disk / client).read_bytes()
    assert seen["keytool"] == seen["ssh"] == (0, "in\n")
    assert seen["ssh file"].startswith(original) and seen["ssh file"] != original
    assert FAILED_TO_ADD in seen["keytool said"]
    assert seen["keytool file"] == original


def test_no_folder_is_made_on_the_way_to_known_hosts(
    tmp_path: Path, server: tuple[Sshd, Path]
) -> None:
    """UserKnownHostsFile in folders that are not there: ssh makes none of them (only
    the user's own ~/.ssh), says it failed to add the host, and runs the command."""
    sshd, key = server
    seen = {}
    with sshd:
        for client in CLIENTS:
            base = tmp_path / client
            base.mkdir()
            done = _login(client, sshd, key, base / "a" / "b" / "c" / "kh", tmp_path / "home")
            made = sorted(str(p.relative_to(base)) for p in base.rglob("*"))
            seen[client] = (done.returncode, done.stdout, FAILED_TO_ADD in done.stderr, made)
    assert seen["keytool"] == seen["ssh"]
    assert seen["ssh"][:3] == (0, "in\n", True)


# ---------------------------------------------------------------- -R and -H

KEY_LINE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPJuB0Vd3J6lXrWg2JcYV9Hh7Mda9Ju6gZ5Y0L8OvOJ0"
KNOWN = f"alpha {KEY_LINE}\nbeta {KEY_LINE}\n".encode()


def _edit(tool: str, folder: Path, operation: list[str]) -> int:
    program = [require("ssh-keygen")] if tool == "ssh" else [*KEYTOOL, "known-hosts"]
    done = subprocess.run(
        [*program, *operation, "-f", "kh"], cwd=folder, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=60, env=base_env(HOME=str(folder)),
    )  # fmt: skip
    assert "Traceback" not in done.stderr
    if done.returncode:
        assert len([x for x in done.stderr.splitlines() if x.startswith("keytool:")]) <= 1
    return done.returncode


OPERATIONS = [["-R", "beta"], ["-H"]]


@pytest.mark.parametrize("operation", OPERATIONS, ids=["R", "H"])
def test_old_file_a_folder_fails_as_ssh_keygen(tmp_path: Path, operation: list[str]) -> None:
    seen = {}
    for tool in CLIENTS:
        folder = tmp_path / tool
        folder.mkdir()
        (folder / "kh").write_bytes(KNOWN)
        (folder / "kh.old").mkdir()
        status = _edit(tool, folder, operation)
        seen[tool] = (status, (folder / "kh").read_bytes(), (folder / "kh.old").is_dir())
    assert seen["keytool"] == seen["ssh"]
    assert seen["ssh"][0] != 1  # no "host not found"


@pytest.mark.parametrize("operation", OPERATIONS, ids=["R", "H"])
def test_a_read_only_filesystem_fails_as_ssh_keygen(tmp_path: Path, operation: list[str]) -> None:
    seen = {}
    with small_tmpfs(tmp_path / "disk") as disk:
        for tool in CLIENTS:
            (disk / tool).mkdir()
            (disk / tool / "kh").write_bytes(KNOWN)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for tool in CLIENTS:
            status = _edit(tool, disk / tool, operation)
            seen[tool] = (status, (disk / tool / "kh").read_bytes(), os.listdir(disk / tool))
    assert seen["keytool"] == seen["ssh"]
    assert seen["ssh"][0] != 1


def test_a_full_disk_fails_with_the_status_of_a_write_failure(tmp_path: Path) -> None:
    """No room for the rewritten file. ssh-keygen 9.2 leaves known_hosts empty here and
    says it was updated (status 0): keytool keeps the file whole and fails with the
    status ssh-keygen gives for a file it cannot rewrite (its FILE.old a folder)."""
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "kh").write_bytes(KNOWN)
    (folder / "kh.old").mkdir()
    write_failure = _edit("ssh", folder, ["-R", "beta"])
    with small_tmpfs(tmp_path / "disk") as disk:
        (disk / "kh").write_bytes(KNOWN)
        fill(disk)
        status = _edit("keytool", disk, ["-R", "beta"])
        assert (status, (disk / "kh").read_bytes()) == (write_failure, KNOWN)

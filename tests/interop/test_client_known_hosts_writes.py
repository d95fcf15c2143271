"""How a new host key gets into known_hosts, side by side with ssh against sshd: added in
place (the file keeps its owner and hard links), no line lost when clients add at once,
never a name that would be a pattern, and the destination names ssh refuses."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, key_login_server, relay_script
from tests.peers import Sshd, require

CLIENTS = ("ssh", "keytool")


@pytest.fixture
def server(tmp_path: Path) -> tuple[Sshd, Path]:
    return key_login_server(tmp_path)


def _login(
    client: str, sshd: Sshd, key: Path, known: Path, *flags: str, dest: str = "root@127.0.0.1"
) -> subprocess.CompletedProcess[str]:
    program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
    return subprocess.run(
        [*program, "-F", "none", "-p", str(sshd.port), "-i", str(key),
         "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=accept-new",
         *flags, dest, "echo in"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip


def test_added_in_place_keeping_owner_and_links(tmp_path: Path, server: tuple[Sshd, Path]) -> None:
    sshd, key = server
    seen = {}
    with sshd:
        for client in CLIENTS:
            folder = tmp_path / client
            folder.mkdir()
            known = folder / "known_hosts"
            known.write_bytes(b"# mine\nold.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI")
            known.chmod(0o640)
            os.chown(known, 4242, 4343)
            os.link(known, folder / "linked")
            done = _login(client, sshd, key, known)
            assert done.returncode == 0, done.stderr
            info = known.stat()
            text = known.read_bytes()
            seen[client] = (
                done.stdout,
                (info.st_uid, info.st_gid, info.st_mode & 0o777),
                (folder / "linked").read_bytes() == text,
                text.startswith(b"# mine\nold.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
                len(text.splitlines()),
            )
    # ssh glues the new line onto a last line without a newline; keytool adds one first
    assert seen["keytool"][:4] == seen["ssh"][:4] == ("in\n", (4242, 4343, 0o640), True, True)
    assert seen["keytool"][4] == 3


def test_clients_adding_at_once_lose_no_line(tmp_path: Path, server: tuple[Sshd, Path]) -> None:
    """Twelve clients, each recording the server under its own HostKeyAlias in the same
    file at the same time: every line is there afterwards, as with ssh."""
    sshd, key = server
    counts = {}
    with sshd:
        for client in CLIENTS:
            known = tmp_path / f"{client}_known"
            known.write_text("# shared\n")

            def one(number: int, client: str = client, known: Path = known) -> int:
                alias = f"-oHostKeyAlias=alias{number}.example"
                return _login(client, sshd, key, known, alias).returncode

            with ThreadPoolExecutor(12) as pool:
                assert list(pool.map(one, range(12))) == [0] * 12
            lines = known.read_text().splitlines()
            counts[client] = sorted(x.split()[0] for x in lines if not x.startswith("#"))
    assert counts["keytool"] == counts["ssh"] == sorted(f"alias{n}.example" for n in range(12))


@pytest.mark.parametrize("name", ["x*", "q?x", "a|b"])
def test_a_host_name_that_would_be_a_pattern_is_never_recorded(
    tmp_path: Path, server: tuple[Sshd, Path], name: str
) -> None:
    """A HostName with a pattern character (reached through a ProxyCommand): ssh will
    not record it, so the new host is refused and known_hosts stays as it was; keytool
    too. The same name as a HostKeyAlias is the user's own choice: both record it."""
    sshd, key = server
    proxy = f"ProxyCommand={relay_script(tmp_path)} 127.0.0.1 {sshd.port}"
    seen = {}
    with sshd:
        for client in CLIENTS:
            known = tmp_path / f"{client}_known"
            known.write_text("# empty\n")
            done = _login(client, sshd, key, known, "-o", proxy, "-o", f"HostName={name}")
            refused = (done.returncode, done.stdout, known.read_text())
            assert "Host key verification failed." in done.stderr
            known.write_text("# empty\n")
            done = _login(client, sshd, key, known, "-o", f"HostKeyAlias={name}")
            seen[client] = (refused, done.returncode, done.stdout, known.read_text())
    assert seen["keytool"] == seen["ssh"]
    assert seen["ssh"][0] == (255, "", "# empty\n")
    assert seen["ssh"][1:3] == (0, "in\n") and seen["ssh"][3].splitlines()[1].startswith(name)


@pytest.mark.parametrize("dest", ["root@x,y", "root@x|y", "root@x$y", "root@-x", "a;b@h"])
def test_destinations_ssh_refuses(tmp_path: Path, server: tuple[Sshd, Path], dest: str) -> None:
    sshd, key = server
    known = tmp_path / "known"
    seen = {}
    for client in CLIENTS:
        done = _login(client, sshd, key, known, "-o", "ProxyCommand=false", dest=dest)
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        seen[client] = (done.returncode != 0, last.removeprefix("keytool: "))
    assert seen["keytool"] == seen["ssh"]
    assert seen["ssh"][1] in (
        "hostname contains invalid characters",
        "remote username contains invalid characters",
    )

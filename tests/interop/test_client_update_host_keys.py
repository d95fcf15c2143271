"""UpdateHostKeys in ``keytool exec``, side by side with ssh against sshd (three host
keys: Ed25519, ECDSA, RSA): each client starts from its own copy of the same
known_hosts files, and what each leaves in them is compared byte for byte (hashed
names aside: those are checked with ssh-keygen -F)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, askpass_env, base_env, keygen, throwaway_account
from tests.interop.copyidhelp import copyid_sshd, make_client
from tests.peers import Sshd, require

CLIENTS = ("ssh", "keytool")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, Path]]:
    folder = tmp_path_factory.mktemp("uhk")
    key = keygen(folder / "id", "ed25519", "user")
    server = Sshd(folder / "sshd")
    server.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    with server:
        yield server, key


def host_line(sshd: Sshd, kind: str, name: str | None = None) -> str:
    pub = Path(f"{sshd.host_keys[kind]}.pub").read_text().split()
    return f"{name or f'[127.0.0.1]:{sshd.port}'} {pub[0]} {pub[1]}\n"


def other_key_line(folder: Path, kind: str, name: str) -> str:
    """A line for ``name`` with a key the server does not have."""
    pub = Path(f"{keygen(folder / f'other_{kind}', kind)}.pub").read_text().split()
    return f"{name} {pub[0]} {pub[1]}\n"


def run_client(
    client: str, sshd: Sshd, key: Path, folder: Path, files: tuple[str, ...], *options: str,
    command: str = "true", env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
    flags = ["-F", "none", "-p", str(sshd.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]  # fmt: skip
    if files:
        flags += ["-o", "UserKnownHostsFile=" + " ".join(str(folder / f) for f in files)]
    for option in options:
        flags += ["-o", option]
    if client == "keytool":
        args = [*KEYTOOL, "exec", *flags, "root@127.0.0.1", "--", command]
    else:
        args = [require("ssh"), *flags, "root@127.0.0.1", command]
    done = subprocess.run(
        args, capture_output=True, stdin=subprocess.DEVNULL, env=env or base_env(), timeout=60
    )
    assert b"Traceback" not in done.stderr
    return done


def side_by_side(
    tmp_path: Path,
    sshd: tuple[Sshd, Path],
    files: dict[str, str],
    *options: str,
    use: tuple[str, ...] = ("known_hosts",),
    command: str = "true",
) -> dict[str, dict[str, bytes]]:
    """Each client from its own copy of ``files``; what the files then hold, for each."""
    server, key = sshd
    after: dict[str, dict[str, bytes]] = {}
    for client in CLIENTS:
        folder = tmp_path / client
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
        done = run_client(client, server, key, folder, use, *options, command=command)
        assert done.returncode == 0, done.stderr
        after[client] = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    return after


def test_new_keys_are_learned_as_ssh_learns_them(tmp_path: Path, sshd: tuple[Sshd, Path]) -> None:
    server = sshd[0]
    other = other_key_line(tmp_path, "ed25519", "other.example")
    before = "# mine\n" + host_line(server, "ed25519") + other
    after = side_by_side(tmp_path, sshd, {"known_hosts": before}, "UpdateHostKeys=yes")
    assert after["keytool"] == after["ssh"]
    expected = before + host_line(server, "ecdsa") + host_line(server, "rsa")
    assert after["ssh"]["known_hosts"] == expected.encode()
    assert after["ssh"]["known_hosts.old"] == before.encode()  # the old file kept, as ssh


def test_keys_the_server_dropped_are_removed(tmp_path: Path, sshd: tuple[Sshd, Path]) -> None:
    server = sshd[0]
    name = f"[127.0.0.1]:{server.port}"
    old_rsa = other_key_line(tmp_path, "rsa", name)
    before = host_line(server, "ed25519") + old_rsa + host_line(server, "ecdsa")
    after = side_by_side(tmp_path, sshd, {"known_hosts": before}, "UpdateHostKeys=yes")
    assert after["keytool"] == after["ssh"]
    expected = host_line(server, "ed25519") + host_line(server, "ecdsa") + host_line(server, "rsa")
    assert after["ssh"]["known_hosts"] == expected.encode()


def test_removal_alone_needs_no_proof(tmp_path: Path, sshd: tuple[Sshd, Path]) -> None:
    server = sshd[0]
    name = f"[127.0.0.1]:{server.port}"
    keys = "".join(host_line(server, kind) for kind in ("ed25519", "ecdsa", "rsa"))
    before = other_key_line(tmp_path, "ed25519", name) + keys
    after = side_by_side(tmp_path, sshd, {"known_hosts": before}, "UpdateHostKeys=yes")
    assert after["keytool"] == after["ssh"]
    assert after["ssh"]["known_hosts"] == keys.encode()


def test_second_file_loses_the_hosts_lines(tmp_path: Path, sshd: tuple[Sshd, Path]) -> None:
    server = sshd[0]
    first = host_line(server, "ed25519")
    elsewhere = other_key_line(tmp_path, "ed25519", "elsewhere.example")
    second = "# two\n" + host_line(server, "ecdsa") + elsewhere
    after = side_by_side(
        tmp_path, sshd, {"known_hosts": first, "known_hosts2": second},
        "UpdateHostKeys=yes", use=("known_hosts", "known_hosts2"),
    )  # fmt: skip
    assert after["keytool"] == after["ssh"]
    assert after["ssh"]["known_hosts2"] == f"# two\n{elsewhere}".encode()
    assert after["ssh"]["known_hosts"].count(b"\n") == 3


def test_host_key_algorithms_limit_what_is_learned(tmp_path: Path, sshd: tuple[Sshd, Path]) -> None:
    server = sshd[0]
    before = host_line(server, "ed25519")
    after = side_by_side(
        tmp_path, sshd, {"known_hosts": before},
        "UpdateHostKeys=yes", "HostKeyAlgorithms=ssh-ed25519,ecdsa-sha2-nistp256",
    )  # fmt: skip
    assert after["keytool"] == after["ssh"]
    assert after["ssh"]["known_hosts"] == (before + host_line(server, "ecdsa")).encode()


def test_hashed_names_when_hash_known_hosts(tmp_path: Path, sshd: tuple[Sshd, Path]) -> None:
    server = sshd[0]
    before = host_line(server, "ed25519")
    after = side_by_side(
        tmp_path, sshd, {"known_hosts": before}, "UpdateHostKeys=yes", "HashKnownHosts=yes"
    )
    name = f"[127.0.0.1]:{server.port}"
    found = {}
    for client in CLIENTS:
        lines = after[client]["known_hosts"].decode().splitlines()
        assert lines[0] == before.strip()
        assert all(line.startswith("|1|") for line in lines[1:]), lines
        # ssh-keygen finds every key under the host's name, hashed or not
        listed = subprocess.run(
            [require("ssh-keygen"), "-F", name, "-f", str(tmp_path / client / "known_hosts")],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        keys = [line.split()[1:] for line in listed.splitlines() if not line.startswith("#")]
        found[client] = sorted(" ".join(key) for key in keys if key)
    assert found["keytool"] == found["ssh"]
    assert len(found["ssh"]) == 3


@pytest.mark.parametrize(
    "case",
    ["three names", "cert-authority", "server key under another name", "old key elsewhere"],
)
def test_files_left_alone_where_ssh_leaves_them(
    tmp_path: Path, sshd: tuple[Sshd, Path], case: str
) -> None:
    server = sshd[0]
    name = f"[127.0.0.1]:{server.port}"
    ca = other_key_line(tmp_path, "ed25519", f"@cert-authority {name}")
    before = {
        "three names": host_line(server, "ed25519", f"{name},a.example,b.example"),
        "cert-authority": host_line(server, "ed25519") + ca,
        "server key under another name": host_line(server, "ed25519")
        + host_line(server, "ecdsa", "alias.example"),
        "old key elsewhere": host_line(server, "ed25519")
        + (old := other_key_line(tmp_path, "rsa", name))
        + old.replace(name, "alias.example", 1),
    }[case]
    after = side_by_side(tmp_path, sshd, {"known_hosts": before}, "UpdateHostKeys=yes")
    assert after["keytool"] == after["ssh"] == {"known_hosts": before.encode()}


@pytest.mark.parametrize(
    ("options", "start"),
    [
        (("UpdateHostKeys=no",), "known"),
        (("UpdateHostKeys=ask",), "known"),  # ssh asks only in an interactive shell
        ((), "known"),  # UserKnownHostsFile is not the default one: off
        (("UpdateHostKeys=yes", "StrictHostKeyChecking=accept-new"), "empty"),  # not trusted
        (("UpdateHostKeys=yes", "StrictHostKeyChecking=no"), "changed"),  # not trusted
    ],
)
def test_no_update_where_ssh_makes_none(
    tmp_path: Path, sshd: tuple[Sshd, Path], options: tuple[str, ...], start: str
) -> None:
    server = sshd[0]
    name = f"[127.0.0.1]:{server.port}"
    before = {
        "known": host_line(server, "ed25519"),
        "empty": "",
        "changed": other_key_line(tmp_path, "ed25519", name),
    }[start]
    after = side_by_side(tmp_path, sshd, {"known_hosts": before}, *options)
    assert after["keytool"] == after["ssh"]
    if start == "empty":  # only the key the client was shown
        assert after["ssh"]["known_hosts"] == host_line(server, "ed25519").encode()
    else:
        assert after["ssh"]["known_hosts"] == before.encode()


def test_copy_id_learns_them_as_ssh_copy_id_does(tmp_path: Path) -> None:
    """ssh-copy-id's ssh updates known_hosts as it logs in to install; keytool copy-id
    does the same on its first connection (both log in with the account's password)."""
    with throwaway_account() as account, copyid_sshd(tmp_path / "sshd", [account]) as server:
        after = {}
        for tool in ("ssh-copy-id", "keytool"):
            client = make_client(tmp_path / tool, server)
            args = ["-i", str(client.pub), "-p", str(server.port),
                    "-o", f"UserKnownHostsFile={client.known_hosts}",
                    "-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=yes",
                    "-o", "PubkeyAuthentication=no", "-o", "HashKnownHosts=no",
                    f"{account.name}@127.0.0.1"]  # fmt: skip
            command = [*KEYTOOL, "copy-id", "-F", "none"] if tool == "keytool" else [require(tool)]
            done = subprocess.run(
                [*command, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                env=askpass_env(tmp_path / tool, account.password, HOME=str(client.home)),
                timeout=90,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert "Traceback" not in done.stderr
            after[tool] = client.known_hosts.read_bytes()
    assert after["keytool"] == after["ssh-copy-id"]
    expected = "".join(host_line(server, kind) for kind in ("ed25519", "ecdsa", "rsa"))
    assert after["keytool"] == expected.encode()

"""``keytool keyscan`` against ``ssh-keyscan`` on the same servers (sshd with three host
key types, dropbear): the same known_hosts lines and exit status; and the lines it
prints let ssh log in with StrictHostKeyChecking=yes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import Dropbear, Sshd, free_port, require, run


def scan(tool: str, *args: str) -> tuple[int, list[str], str]:
    command = [require("ssh-keyscan")] if tool == "ssh-keyscan" else [*KEYTOOL, "keyscan"]
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, env=base_env(), timeout=60
    )
    return done.returncode, sorted(done.stdout.splitlines()), done.stderr


@pytest.mark.parametrize("types", [None, "ed25519", "rsa", "ecdsa", "rsa,ed25519"])
def test_the_same_lines_as_ssh_keyscan(sshd: Sshd, types: str | None) -> None:
    args = ["-p", str(sshd.port), *(["-t", types] if types else []), "127.0.0.1"]
    ours, theirs = scan("keytool", *args), scan("ssh-keyscan", *args)
    assert (ours[0], ours[1]) == (theirs[0], theirs[1]) and ours[0] == 0
    assert len(ours[1]) == len((types or "rsa,ecdsa,ed25519").split(","))
    # the lines are the server's own keys
    assert set(ours[1]) >= {sshd.known_hosts_line(kind).strip() for kind in
                            (types.split(",") if types else ["ed25519"])}  # fmt: skip
    assert f"# 127.0.0.1:{sshd.port} SSH-2.0-OpenSSH" in ours[2]


@pytest.mark.parametrize(
    ("flag", "host"), [("-4", "127.0.0.1"), ("-6", "127.0.0.1"), ("-4", "localhost")]
)
def test_address_family_as_ssh_keyscan(sshd: Sshd, flag: str, host: str) -> None:
    """-4 and -6 as ssh-keyscan's: an IPv4 address asked for over IPv6 finds nothing,
    exit 1; localhost over IPv4 finds the server. keytool refused the flags."""
    args = [flag, "-t", "ed25519", "-p", str(sshd.port), host]
    ours, theirs = scan("keytool", *args), scan("ssh-keyscan", *args)
    assert (ours[0], ours[1]) == (theirs[0], theirs[1])
    assert ours[0] == (1 if flag == "-6" else 0)
    assert "Traceback" not in ours[2]


def test_hashed_lines_are_found_by_ssh_keygen_and_let_ssh_in(tmp_path: Path, sshd: Sshd) -> None:
    key = keygen(tmp_path / "id")
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    code, lines, _ = scan("keytool", "-H", "-q", "-p", str(sshd.port), "127.0.0.1")
    assert code == 0 and all(line.startswith("|1|") for line in lines)
    known = tmp_path / "known_hosts"
    known.write_text("".join(f"{line}\n" for line in lines))
    found = run([require("ssh-keygen"), "-F", f"[127.0.0.1]:{sshd.port}", "-f", known]).stdout
    assert found.count("# Host") == 3
    login = run([require("ssh"), "-F", "none", "-p", str(sshd.port), "-i", key,
                 "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                 "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "root@127.0.0.1",
                 "echo in"], stdin=subprocess.DEVNULL)  # fmt: skip
    assert (login.returncode, login.stdout) == (0, "in\n"), login.stderr


def test_dropbear_as_ssh_keyscan_sees_it(tmp_path: Path) -> None:
    with Dropbear(tmp_path / "dropbear") as dropbear:
        args = ["-p", str(dropbear.port), "127.0.0.1"]
        ours, theirs = scan("keytool", *args), scan("ssh-keyscan", *args)
    assert (ours[0], ours[1]) == (theirs[0], theirs[1]) and len(ours[1]) == 3


def test_nothing_there_is_exit_1_and_one_line(tmp_path: Path) -> None:
    port = str(free_port())
    ours = scan("keytool", "-p", port, "127.0.0.1")
    theirs = scan("ssh-keyscan", "-p", port, "127.0.0.1")
    assert (ours[0], ours[1]) == (theirs[0], theirs[1]) == (1, [])
    assert ours[2].count("\n") == 1 and "Connection refused" in ours[2]
    bad = subprocess.run([*KEYTOOL, "keyscan", "-t", "dsa", "127.0.0.1"], capture_output=True,
                         env=base_env(), timeout=60)  # fmt: skip
    assert bad.returncode != 0 and bad.stderr.count(b"\n") == 1

"""known_hosts and ssh_config text that is not UTF-8, side by side with OpenSSH: ssh
reads and writes such lines as bytes, hashes them for %C, and ssh-keygen shows them
escaped; keytool does the same."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, server_for
from tests.peers import Sshd, require

CLIENTS = ("ssh", "keytool")


def _login(client: str, sshd: Sshd, key: Path, *options: str) -> subprocess.CompletedProcess[bytes]:
    program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
    return subprocess.run(
        [*program, "-p", str(sshd.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
         "-o", "BatchMode=yes", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", "UpdateHostKeys=no", *options, "root@127.0.0.1", "echo in"],
        capture_output=True, stdin=subprocess.DEVNULL, env=base_env(), timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "line, expected",
    [
        (b"%(known)s comment \xe9", (0, b"in\n")),  # the byte in the comment
        (b"caf\xe9,%(known)s", (0, b"in\n")),  # in another name of the line
        # a revoked key with the byte in its comment: refused, not passed over
        (b"%(known)s\n@revoked %(known)s revoked \xe9", (255, b"")),
    ],
)
def test_a_line_with_bytes_that_are_not_utf8_is_read_as_by_ssh(
    tmp_path: Path, line: bytes, expected: tuple[int, bytes]
) -> None:
    sshd, key, known = server_for(tmp_path)
    known.write_bytes(line % {b"known": known.read_bytes().strip()} + b"\n")
    seen = {}
    with sshd:
        for client in CLIENTS:
            done = _login(client, sshd, key, "-F", "none", "-o", f"UserKnownHostsFile={known}",
                          "-o", "StrictHostKeyChecking=yes")  # fmt: skip
            seen[client] = (done.returncode, done.stdout)
            assert b"Traceback" not in done.stderr
    assert seen["keytool"] == seen["ssh"] == expected


def test_a_host_key_alias_that_is_not_utf8_is_written_as_its_bytes(tmp_path: Path) -> None:
    """HostKeyAlias caf\\xe9 in ssh_config, accept-new, an empty known_hosts: both write
    the alias's bytes, and both find the line at the next connection."""
    sshd, key, _ = server_for(tmp_path)
    pub = Path(f"{sshd.host_keys['ed25519']}.pub").read_bytes().split()[:2]
    seen = {}
    with sshd:
        for client in CLIENTS:
            known = tmp_path / f"{client}_known"
            known.write_bytes(b"")
            config = tmp_path / f"{client}_config"
            config.write_bytes(
                b"Host *\n  HostKeyAlias caf\xe9\n  UserKnownHostsFile "
                + os.fsencode(known)
                + b"\n  HostKeyAlgorithms ssh-ed25519\n"
            )
            first = _login(client, sshd, key, "-F", str(config),
                           "-o", "StrictHostKeyChecking=accept-new")  # fmt: skip
            assert b"Traceback" not in first.stderr
            written = known.read_bytes()
            again = _login(client, sshd, key, "-F", str(config), "-o", "StrictHostKeyChecking=yes")
            seen[client] = (first.returncode, first.stdout, written, again.returncode, again.stdout)
    assert seen["keytool"] == seen["ssh"]
    assert seen["ssh"] == (0, b"in\n", b"caf\xe9 " + b" ".join(pub) + b"\n", 0, b"in\n")


@pytest.mark.parametrize(
    "settings", [b"User ro\xe9ot\n", b"HostName caf\xe9\n", b"HostName CAF\xc3\x89\n"]
)
def test_percent_c_hashes_the_bytes_as_ssh_does(tmp_path: Path, settings: bytes) -> None:
    """%C in ControlPath and in Match exec, with a User or HostName that is not UTF-8
    (or not ASCII): ssh -G's hashes, the one it printed and the one Match exec saw."""
    seen = {}
    for client, program in (("ssh", [require("ssh")]), ("keytool", [*KEYTOOL, "exec"])):
        saw = tmp_path / f"{client}_saw"
        config = tmp_path / "config"
        config.write_bytes(
            b"Host alias\n  " + settings + b"  ControlPath " + os.fsencode(tmp_path) + b"/cm-%C\n"
            b'Match exec "echo %C > ' + os.fsencode(saw) + b'"\n'
        )
        args = [*program, "-G", "-F", str(config), "alias"]
        done = subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL,
                              env=base_env(), timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        shown = re.findall(rb"^controlpath (.*)$", done.stdout, re.MULTILINE)
        seen[client] = (shown, saw.read_bytes())
    assert seen["keytool"] == seen["ssh"]
    assert seen["ssh"][0][0].startswith(os.fsencode(tmp_path) + b"/cm-")


# ---------------------------------------------------------------- known-hosts output


def _ed25519(tmp_path: Path) -> bytes:
    path = tmp_path / "k"
    subprocess.run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", path],
                   check=True, capture_output=True)  # fmt: skip
    return b" ".join(Path(f"{path}.pub").read_bytes().split()[:2])


def _both(
    tmp_path: Path, text: bytes, *args: str | bytes, locale: str = "C.UTF-8"
) -> dict[str, tuple[int, bytes, bytes, bytes]]:
    """ssh-keygen and keytool known-hosts on copies of ``text``: status, stdout, stderr
    (ssh-keygen's log lines end in \\r\\n) and the file left."""
    results = {}
    for name, program in (("ssh-keygen", [require("ssh-keygen")]),
                          ("keytool", [*KEYTOOL, "known-hosts"])):  # fmt: skip
        folder = tmp_path / name
        folder.mkdir()
        (folder / "kh").write_bytes(text)
        done = subprocess.run(
            [*program, *args, "-f", "kh"], capture_output=True, cwd=folder, timeout=60,
            env=base_env(LC_ALL=locale), check=False,
        )  # fmt: skip
        stderr = done.stderr.replace(b"\r\n", b"\n").removeprefix(b"keytool: ")
        results[name] = (done.returncode, done.stdout, stderr, (folder / "kh").read_bytes())
    return results


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
@pytest.mark.parametrize(
    "host, line",
    [
        (b"\x1b[2Jesc.example", b"\x1b[2Jesc.example %(key)s"),
        (b"good.example", b"good.example %(key)s comment \xe9\x1b[31m"),
        (b"good.example", b"good.example %(key)s caf\xc3\xa9\ttab \xe2\x80\xae x\x7f"),
        (b"x.ex\xe9", b"*.ex\xe9 %(key)s"),
    ],
)
def test_fingerprints_found_escaped_as_ssh_keygen(
    tmp_path: Path, host: bytes, line: bytes, locale: str
) -> None:
    text = line % {b"key": _ed25519(tmp_path)} + b"\n"
    results = _both(tmp_path, text, "-l", "-F", host, locale=locale)
    assert results["keytool"] == results["ssh-keygen"]
    assert results["keytool"][0] == 0 and b"\x1b" not in results["keytool"][1].split(b"\n")[1]


def test_hashing_warnings_escaped_as_ssh_keygen(tmp_path: Path) -> None:
    key = _ed25519(tmp_path)
    text = b"*\x1b]0;pwned\x07\x1b[2J %s\n*.ex\xe9 %s\nplain.example %s\n" % (key, key, key)
    results = _both(tmp_path, text, "-H")
    ours, theirs = results["keytool"], results["ssh-keygen"]
    # -H salts at random: the file is not compared, its kept lines are
    assert (ours[0], ours[1], ours[2]) == (theirs[0], theirs[1], theirs[2])
    assert ours[3].splitlines()[:2] == theirs[3].splitlines()[:2] == text.splitlines()[:2]
    assert b"wildcard: *\\033]0;pwned\x07\\033[2J\n" in ours[2]
    assert b"wildcard: *.ex\\351\n" in ours[2]


@pytest.mark.parametrize("host", [b"no\xe9\x1b[31m", b"no\xc3\xa9\t\x07"])
def test_host_not_found_escaped_as_ssh_keygen(tmp_path: Path, host: bytes) -> None:
    text = b"plain.example %s\n" % _ed25519(tmp_path)
    results = _both(tmp_path, text, "-R", host)
    assert results["keytool"] == results["ssh-keygen"]
    assert results["keytool"][2].startswith(b"Host no\\3")

"""Large known_hosts files, side by side with OpenSSH: a connection through a file of a
million lines (the server's last) stays small, as ssh does (keytool parsed every line,
about 600 MB); known-hosts -F, -R and -H on a large mixed file (plain and hashed
names, markers, comments, damaged keys, CRLF) print and write what ssh-keygen does."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, server_for
from tests.peers import require

#: the client's peak resident memory with the large file (the old parse took ~600 MB)
_BOUND_KB = 100 * 1024


def ed25519_line(hosts: str, seed: int) -> str:
    name = b"ssh-ed25519"
    blob = len(name).to_bytes(4, "big") + name + (32).to_bytes(4, "big")
    blob += hashlib.sha256(str(seed).encode()).digest()
    return f"{hosts} ssh-ed25519 {base64.b64encode(blob).decode()}"


def filler(count: int) -> str:
    return "".join(f"{ed25519_line(f'host{i}.example.com', i)}\n" for i in range(count))


#: runs its arguments in a child it forks itself, and prints the child's status and
#: peak resident memory (KB): a process keeps the peak of the memory it had before
#: an exec, and a test worker forking the measured program directly may be hundreds
#: of MB by then (its peak was counted as keytool's); this process is small
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def run_measured(
    args: list[str], folder: Path, env: dict[str, str] | None = None
) -> tuple[int, str, int]:
    """Status, stderr and peak RSS (KB) of ``args`` (``env``: else the tests' base)."""
    err = folder / f"stderr-{os.path.basename(args[0])}"
    with err.open("wb") as stream:
        done = subprocess.run([sys.executable, "-c", _MEASURE, *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=stream, env=env or base_env(),
                              timeout=120, check=True)  # fmt: skip
    status, peak = done.stdout.split()
    return int(status), err.read_text(), int(peak)


def test_a_million_lines_connect_in_bounded_memory(tmp_path: Path) -> None:
    sshd, key, known = server_for(tmp_path)
    large = tmp_path / "known_hosts"
    with large.open("w") as stream:
        block = filler(10000)
        for _ in range(100):  # a million lines, ~100 MB; the server's last
            stream.write(block)
        stream.write(known.read_text())
    options = ["-F", "none", "-o", f"UserKnownHostsFile={large}",
               "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
               "-o", "UpdateHostKeys=no", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-i", str(key), "-p", str(sshd.port), "root@127.0.0.1", "true"]  # fmt: skip
    with sshd:
        theirs = run_measured([require("ssh"), *options], tmp_path)
        ours = run_measured([*KEYTOOL, "exec", *options], tmp_path)
    assert theirs[0] == 0, theirs[1]
    assert ours[0] == 0, ours[1]
    assert ours[2] < _BOUND_KB, f"keytool peaked at {ours[2] // 1024} MB"


def mixed_file(tmp_path: Path, lines: int, unreadable: bool) -> bytes:
    """A large known_hosts: plain and hashed names, markers, comments, patterns, CRLF
    and damaged keys; with ``unreadable``, lines ssh-keygen cannot read too."""
    plain = tmp_path / "to-hash"
    plain.write_text(
        "".join(f"{ed25519_line(f'hashed{i}.example', i)}\n" for i in range(lines // 10))
        + f"{ed25519_line('[hashed7.example]:2200', 7)}\n"
    )
    subprocess.run([require("ssh-keygen"), "-q", "-H", "-f", str(plain)], check=True,
                   capture_output=True)  # fmt: skip
    hashed = plain.read_text().splitlines()
    parts = []
    for i in range(lines):
        kind = i % 10
        if kind == 0:
            parts.append(hashed[i // 10] if i // 10 < len(hashed) else "# no more hashed")
        elif kind == 1:
            parts.append(f"# comment {i} about host{i}.example")
        elif kind == 2:
            parts.append(ed25519_line(f"@revoked host{i - 2}.example", i))
        elif kind == 3:
            zone = f"*.zone{i % 7}"
            parts.append(ed25519_line(f"@cert-authority {zone}.example", i))
        elif kind == 4:
            parts.append(ed25519_line(f"*.w{i}.example,!bad.w{i}.example", i))
        elif kind == 5:
            parts.append(ed25519_line(f"host{i}.example,10.{i % 256}.0.1", i) + "\r")
        elif kind == 6:
            parts.append(f"host{i}.example ssh-ed25519 AAAAdamaged")
        elif kind == 7 and unreadable:
            parts.append(f"host{i}.example badtype AAAA")
        else:
            parts.append(ed25519_line(f"[host{i}.example]:{2000 + i % 50}", i) + " a comment")
    parts.append(hashed[-1])
    parts.append(ed25519_line("host5.example", 99999))  # no newline at the end
    return "\n".join(parts).encode()


def both(tmp_path: Path, text: bytes, *args: str) -> dict[str, tuple[object, ...]]:
    results = {}
    for name, tool in (("ssh-keygen", [require("ssh-keygen")]), ("keytool", [*KEYTOOL])):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "known_hosts").write_bytes(text)
        command = [*tool, "known-hosts"] if name == "keytool" else tool
        done = subprocess.run([*command, *args, "-f", "known_hosts"], capture_output=True,
                              cwd=folder, env=base_env(), timeout=60)  # fmt: skip
        old = folder / "known_hosts.old"
        results[name] = (
            done.returncode,
            done.stdout,
            done.stderr.decode().replace("\r\n", "\n").removeprefix("keytool: "),
            (folder / "known_hosts").read_bytes(),
            old.read_bytes() if old.exists() else None,
        )
        shutil.rmtree(folder)
    return results


HOSTS = ["host5.example", "host15.example", "10.15.0.1", "hashed7.example",
         "[hashed7.example]:2200", "[host18.example]:2018", "a.w4.example",
         "bad.w4.example", "x.zone3.example", "host16.example", "absent.example"]  # fmt: skip


@pytest.mark.parametrize("unreadable", [False, True])
def test_find_as_ssh_keygen_on_a_large_file(tmp_path: Path, unreadable: bool) -> None:
    text = mixed_file(tmp_path, 60000, unreadable)
    for host in HOSTS:
        results = both(tmp_path, text, "-F", host)
        assert results["keytool"] == results["ssh-keygen"], host


@pytest.mark.parametrize("host", ["host5.example", "hashed7.example", "[host18.example]:2018",
                                  "a.w4.example", "absent.example"])  # fmt: skip
def test_remove_as_ssh_keygen_on_a_large_file(tmp_path: Path, host: str) -> None:
    text = mixed_file(tmp_path, 60000, False)
    results = both(tmp_path, text, "-R", host)
    assert results["keytool"] == results["ssh-keygen"]
    if host != "absent.example":
        assert results["keytool"][3] != text and results["keytool"][4] == text


def test_unreadable_lines_refuse_a_rewrite_as_ssh_keygen(tmp_path: Path) -> None:
    text = mixed_file(tmp_path, 30000, True)
    for args in (("-R", "host5.example"), ("-H",)):
        results = both(tmp_path, text, *args)
        for status, _out, err, new, old in results.values():
            assert (status, new, old) == (1, text, None)
            assert "not a valid known_hosts file" in str(err)


def test_hash_as_ssh_keygen_on_a_large_file(tmp_path: Path) -> None:
    text = mixed_file(tmp_path, 60000, False)
    results = both(tmp_path, text, "-H")
    ours, theirs = results["keytool"], results["ssh-keygen"]
    assert ours[:3] == theirs[:3] and ours[4] == theirs[4] == text
    mine = ours[3].splitlines()  # type: ignore[attr-defined]
    its = theirs[3].splitlines()  # type: ignore[attr-defined]
    assert len(mine) == len(its)
    before = set(text.splitlines())
    for a, b in zip(mine, its, strict=True):
        if b.startswith(b"|1|") and b not in before:  # newly hashed: a fresh salt each
            assert a.startswith(b"|1|") and a.split(b" ", 1)[1] == b.split(b" ", 1)[1]
        else:
            assert a == b

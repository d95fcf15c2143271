"""A stdout that cannot be written (a pipe its reader closed, a full disk) does not
stop gen, gen -A, passwd, comment or known-hosts -R/-H: the files change as
ssh-keygen changes them, and the failure is found at the end. A broken pipe ends
both with 141 (ssh-keygen by SIGPIPE, at exit); a full disk is said by keytool in one
line, after the files are written (ssh-keygen says nothing). Side by side on the same
set-up, with Python's stdout buffered and unbuffered."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL
from tests.interop.fshelp import listing, run_with_bad_stdout
from tests.peers import require

SSH_KEYGEN = "ssh-keygen"
HOSTS = 100


def _run(argv: list[str], cwd: Path, stdout: str, unbuffered: str = "") -> tuple[int, bytes]:
    """``argv`` in ``cwd`` with stdout a pipe whose reader is gone ("broken") or
    /dev/full ("full"): (its status, its stderr)."""
    status, err = run_with_bad_stdout(argv, cwd, stdout, unbuffered)
    assert b"Traceback" not in err, err
    # ssh-keygen's log lines end in CR LF (its log.c), keytool's in LF
    return status, err.replace(b"\r\n", b"\n")


def _ssh_keygen(*args: str | Path) -> bytes:
    done = subprocess.run(
        [require(SSH_KEYGEN), *map(str, args)], capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _set_up(folder: Path) -> None:
    """The same files in each tool's folder: a key, an encrypted key, a known_hosts."""
    folder.mkdir()
    _ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", "old", "-f", folder / "k")
    _ssh_keygen("-q", "-t", "ed25519", "-N", "pass", "-C", "enc", "-f", folder / "kenc")
    blob = " ".join((folder / "k.pub").read_text().split()[:2])
    lines = "".join(f"host{i}.example.com {blob}\n" for i in range(1, HOSTS + 1))
    (folder / "kh").write_text(lines)


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    ours, theirs = tmp_path / "keytool", tmp_path / "openssh"
    _set_up(ours)
    shutil.copytree(ours, theirs)
    return ours, theirs


def _public(folder: Path, name: str, passphrase: str = "") -> bytes:
    """The key and comment in private key ``name``, read by ssh-keygen."""
    return _ssh_keygen("-y", "-P", passphrase, "-f", folder / name)


#: (keytool's words, ssh-keygen's words) for each command that changes files
COMMANDS = {
    "gen": (["gen", "-t", "ed25519", "-N", "", "-C", "c", "-f", "new"],
            ["-t", "ed25519", "-N", "", "-C", "c", "-f", "new"]),
    "comment": (["comment", "-f", "k", "-C", "newc"], ["-c", "-f", "k", "-C", "newc"]),
    "passwd": (["passwd", "-f", "kenc", "-P", "pass", "-N", "new"],
               ["-p", "-f", "kenc", "-P", "pass", "-N", "new"]),
    "remove": (["known-hosts", "-R", "host77.example.com", "-f", "kh"],
               ["-R", "host77.example.com", "-f", "kh"]),
    "hash": (["known-hosts", "-H", "-f", "kh"], ["-H", "-f", "kh"]),
}  # fmt: skip


def _same_change(command: str, ours: Path, theirs: Path) -> None:
    """The change made in both folders is the same (where a new key or salt makes the
    bytes differ, what ssh-keygen reads from them)."""
    assert listing(ours) == listing(theirs)
    if command == "gen":
        assert (ours / "new.pub").read_bytes().split()[2:] == [b"c"]
        assert _public(ours, "new").split()[:2] == (ours / "new.pub").read_bytes().split()[:2]
    elif command == "comment":
        assert (ours / "k.pub").read_bytes() == (theirs / "k.pub").read_bytes()
        assert _public(ours, "k") == _public(theirs, "k")
    elif command == "passwd":
        assert _public(ours, "kenc", "new") == _public(theirs, "kenc", "new")
        assert (ours / "kenc.pub").read_bytes() == (theirs / "kenc.pub").read_bytes()
    elif command == "remove":
        for name in ("kh", "kh.old"):
            assert (ours / name).read_bytes() == (theirs / name).read_bytes()
    else:
        assert (ours / "kh.old").read_bytes() == (theirs / "kh.old").read_bytes()
        for folder in (ours, theirs):
            assert len((folder / "kh").read_bytes().splitlines()) == HOSTS
            found = _ssh_keygen("-F", "host5.example.com", "-f", folder / "kh")
            assert b"|1|" in found


@pytest.mark.parametrize("unbuffered", ["", "1"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_broken_pipe_on_stdout_keeps_the_change(
    tmp_path: Path, command: str, unbuffered: str
) -> None:
    ours, theirs = _pair(tmp_path)
    words, keygen_words = COMMANDS[command]
    their_status, their_errors = _run([require(SSH_KEYGEN), *keygen_words], theirs, "broken")
    our_status, our_errors = _run([*KEYTOOL, *words], ours, "broken", unbuffered)
    assert (our_status, our_errors) == (their_status, their_errors)
    _same_change(command, ours, theirs)


@pytest.mark.parametrize("unbuffered", ["", "1"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_full_disk_behind_stdout_keeps_the_change(
    tmp_path: Path, command: str, unbuffered: str
) -> None:
    ours, theirs = _pair(tmp_path)
    words, keygen_words = COMMANDS[command]
    their_status, their_errors = _run([require(SSH_KEYGEN), *keygen_words], theirs, "full")
    our_status, our_errors = _run([*KEYTOOL, *words], ours, "full", unbuffered)
    _same_change(command, ours, theirs)
    # keytool says what ssh-keygen keeps quiet, in one line more, after the change
    assert their_status == 0
    assert our_status != 0
    assert our_errors == their_errors + f"keytool: {os.strerror(28)}\n".encode()


def _host_keys(prefix: Path) -> dict[str, int]:
    return listing(prefix / "etc" / "ssh")


@pytest.mark.parametrize("stdout", ["broken", "full"])
def test_host_keys_are_made_whatever_becomes_of_stdout(tmp_path: Path, stdout: str) -> None:
    """gen -A: ssh-keygen flushes each key type's name before making it, so a broken
    pipe ends it (141) before the first key; keytool ends with the same status but
    makes the keys first, as it makes them behind a full disk, as ssh-keygen does."""
    ours, theirs = tmp_path / "keytool", tmp_path / "openssh"
    for prefix in (ours, theirs):
        (prefix / "etc" / "ssh").mkdir(parents=True)
    their_status, _ = _run([require(SSH_KEYGEN), "-A", "-f", str(theirs)], theirs, stdout)
    our_status, our_errors = _run([*KEYTOOL, "gen", "-A", "-f", str(ours)], ours, stdout)
    if stdout == "broken":
        assert our_status == their_status
        made = {f"ssh_host_{kind}_key{end}" for kind in ("rsa", "ecdsa", "ed25519")
                for end in ("", ".pub")}  # fmt: skip
        assert set(_host_keys(ours)) == made
    else:
        assert their_status == 0 and our_status != 0
        assert our_errors.count(b"\n") == 1
        assert _host_keys(ours) == _host_keys(theirs)

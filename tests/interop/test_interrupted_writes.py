"""^C, SIGTERM or SIGHUP while keytool writes a key or a known_hosts leaves no temp
file (least of all a key without its passphrase beside the encrypted one), and ends
keytool as the signal ends ssh-keygen; side by side on the same set-up.

The signal comes at a point both tools are known to reach, given by strace's fault
injection: keytool's fsync of a temp file (the first: the key or the known_hosts
written; the second: a new key's .pub written, its key already staged), ssh-keygen's
write of the key, its opening of the .pub, its link of known_hosts.old."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.interop.fshelp import listing, shell_status
from tests.peers import require

SSH_KEYGEN = "ssh-keygen"
SIGNALS = ["TERM", "HUP", "INT"]


def _signalled(
    argv: list[str], cwd: Path, syscall: str, signal: str, when: int = 1, path: str = ""
) -> int:
    """``argv`` in ``cwd``, sent ``signal`` as it makes its ``when``-th ``syscall``
    (only those naming ``path``, when given); the status it ends with."""
    trace = [require("strace"), "-f", "-qq", "-o", os.devnull]
    if path:
        trace += ["-P", path]
    trace += ["-e", f"trace={syscall}", "-e", f"inject={syscall}:signal={signal}:when={when}"]
    done = subprocess.run(
        [*trace, *argv], stdin=subprocess.DEVNULL, capture_output=True, cwd=cwd,
        env=base_env(HOME=str(cwd)), timeout=300, check=False,
    )  # fmt: skip
    assert b"Traceback" not in done.stderr, done.stderr
    return shell_status(done.returncode)


def _ssh_keygen(*args: str | Path) -> None:
    done = subprocess.run(
        [require(SSH_KEYGEN), *map(str, args)], capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr


def _pair(tmp_path: Path, make: str) -> tuple[Path, Path]:
    ours, theirs = tmp_path / "keytool", tmp_path / "openssh"
    ours.mkdir()
    if make == "encrypted key":
        _ssh_keygen("-q", "-t", "ed25519", "-N", "pass", "-C", "c", "-f", ours / "k")
    elif make == "known_hosts":
        _ssh_keygen("-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "host")
        blob = " ".join((tmp_path / "host.pub").read_text().split()[:2])
        lines = "".join(f"host{i}.example.com {blob}\n" for i in range(20_000))
        (ours / "kh").write_text(lines)
    shutil.copytree(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("signal", SIGNALS)
def test_passwd_interrupted_leaves_no_key_without_its_passphrase(
    tmp_path: Path, signal: str
) -> None:
    ours, theirs = _pair(tmp_path, "encrypted key")
    before = (ours / "k").read_bytes()
    theirs_status = _signalled(
        [require(SSH_KEYGEN), "-p", "-f", "k", "-P", "pass", "-N", ""], theirs, "write", signal,
        path="k",
    )  # fmt: skip
    our_status = _signalled(
        [*KEYTOOL, "passwd", "-f", "k", "-P", "pass", "-N", ""], ours, "fsync", signal
    )
    assert our_status == theirs_status
    assert listing(ours) == listing(theirs)  # no temp file beside the key
    assert (ours / "k").read_bytes() == before  # the key whole, still encrypted


@pytest.mark.parametrize("signal", SIGNALS)
def test_gen_interrupted_between_the_key_and_its_pub_leaves_no_temp_file(
    tmp_path: Path, signal: str
) -> None:
    ours, theirs = _pair(tmp_path, "nothing")
    argv = ["-t", "ed25519", "-N", "", "-C", "c", "-f", "k"]
    theirs_status = _signalled([require(SSH_KEYGEN), *argv], theirs, "openat", signal, path="k.pub")
    # the second fsync: the key is staged, its .pub written, neither has its name
    our_status = _signalled([*KEYTOOL, "gen", *argv], ours, "fsync", signal, when=2)
    assert our_status == theirs_status
    ours_left, theirs_left = listing(ours), listing(theirs)
    assert set(ours_left) <= set(theirs_left)  # neither file, rather than half a pair
    assert not [name for name in (*ours_left, *theirs_left) if name.startswith(".")]


@pytest.mark.parametrize("signal", SIGNALS)
@pytest.mark.parametrize("edit", ["-R", "-H"])
def test_known_hosts_interrupted_stays_whole_with_no_temp_file(
    tmp_path: Path, edit: str, signal: str
) -> None:
    ours, theirs = _pair(tmp_path, "known_hosts")
    before = (ours / "kh").read_bytes()
    words = [edit, "host77.example.com"] if edit == "-R" else [edit]
    theirs_status = _signalled([require(SSH_KEYGEN), *words, "-f", "kh"], theirs, "link", signal)
    our_status = _signalled([*KEYTOOL, "known-hosts", *words, "-f", "kh"], ours, "fsync", signal)
    assert our_status == theirs_status
    assert (ours / "kh").read_bytes() == (theirs / "kh").read_bytes() == before
    # ssh-keygen leaves its kh.XXXXXXXXXX behind; keytool leaves nothing it made
    assert set(listing(ours)) <= set(listing(theirs))
    assert set(listing(ours)) <= {"kh", "kh.old"}

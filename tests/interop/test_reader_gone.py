"""Commands that only print, with stdout a pipe whose reader is gone (``| true``,
``| head -c1`` done early), side by side with ssh-keygen: the same status (141, by
SIGPIPE for ssh-keygen, which finds out as it flushes at exit) and nothing on stderr.
With Python's stdout buffered (no PYTHONUNBUFFERED, as users run it) keytool's last
flush raised a traceback and ended with 120. A full disk behind stdout is one line
from keytool (ssh-keygen says nothing and exits 0)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL
from tests.interop.fshelp import run_with_bad_stdout
from tests.peers import require


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    keygen = require("ssh-keygen")
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "k"], check=True)
    line = (tmp_path / "k.pub").read_text().split()
    hosts = "".join(f"host{n}.example.com {line[0]} {line[1]}\n" for n in range(50))
    (tmp_path / "known_hosts").write_text(hosts)
    return tmp_path


COMMANDS = [
    (["pub", "-f", "k"], ["-y", "-f", "k"]),
    (["fingerprint", "-f", "known_hosts"], ["-l", "-f", "known_hosts"]),
    (["export", "-f", "k.pub"], ["-e", "-f", "k.pub"]),
    (["known-hosts", "-F", "host7.example.com", "-f", "known_hosts"],
     ["-F", "host7.example.com", "-f", "known_hosts"]),
]  # fmt: skip


@pytest.mark.parametrize(("ours", "theirs"), COMMANDS, ids=lambda args: args[0])
def test_a_reader_gone_ends_as_ssh_keygen(folder: Path, ours: list[str], theirs: list[str]) -> None:
    keytool = run_with_bad_stdout([*KEYTOOL, *ours], folder, "broken")
    openssh = run_with_bad_stdout([require("ssh-keygen"), *theirs], folder, "broken")
    assert keytool == openssh == (141, b"")


@pytest.mark.parametrize(("ours", "theirs"), COMMANDS, ids=lambda args: args[0])
def test_a_full_disk_behind_stdout_is_one_line(
    folder: Path, ours: list[str], theirs: list[str]
) -> None:
    status, err = run_with_bad_stdout([*KEYTOOL, *ours], folder, "full")
    assert run_with_bad_stdout([require("ssh-keygen"), *theirs], folder, "full") == (
        0,
        b"",
    )  # says nothing
    assert status != 0 and err == b"keytool: No space left on device\n"

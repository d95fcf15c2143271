"""allowed_signers lines whose principals are not UTF-8: ``keytool verify`` (plain,
--find-principals, --match-principals) against ``ssh-keygen -Y``, which takes the
principals as bytes, matches them byte by byte ("?" is one byte) and prints them as
they are. ssh-keygen's output and status are the reference."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.interop.test_cli_sign import keygen, keytool, make_key

MESSAGE = b"a release tarball\n"
#: -I values as bytes: Latin-1, UTF-8, and names the "?" patterns below cover or not
IDENTITIES = [
    b"caf\xe9@x", "café@x".encode(), b"caf\xe9@one", "café@one".encode(),
    "café@utf8".encode(), b"caf\xe9@utf8", b"na\xefve one", b"z@\xff.example",
    b"z@y.example", b"nobody",
]  # fmt: skip


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A key, an allowed_signers file naming it under non-UTF-8 principals, and a
    signature of MESSAGE made by ssh-keygen."""
    folder = tmp_path_factory.mktemp("encodings")
    key = make_key(folder, "ed25519", "256")
    pub = b" ".join(Path(f"{key}.pub").read_bytes().split()[:2])
    signers = folder / "allowed_signers"
    signers.write_bytes(
        b"caf\xe9@x " + pub + b"\n"
        b"caf?@one,caf??@utf8 " + pub + b" caf\xe9 comment\n"
        b'"na\xefve one" ' + pub + b"\n"
        b"other,*@\xff.example " + pub + b"\n"
    )
    message = folder / "message"
    message.write_bytes(MESSAGE)
    made = keygen("-Y", "sign", "-f", key, "-n", "file", message)
    assert made.returncode == 0, made.stderr
    return key, signers, folder / "message.sig"


def test_verify_as_ssh_keygen(signed: tuple[Path, Path, Path]) -> None:
    _, signers, signature = signed
    for identity in IDENTITIES:
        args = ["-f", str(signers), "-I", os.fsdecode(identity), "-n", "file", "-s", str(signature)]
        theirs = keygen("-Y", "verify", *args, stdin=MESSAGE)
        mine = keytool("verify", *args, stdin=MESSAGE)
        assert mine.stdout == theirs.stdout, (identity, theirs.stderr, mine.stderr)
        assert mine.returncode == theirs.returncode, (identity, mine.stderr)
        assert b"Traceback" not in mine.stderr
    # the first one is good for both, and says so with the principal's own bytes
    good = keygen("-Y", "verify", "-f", signers, "-I", os.fsdecode(IDENTITIES[0]), "-n", "file",
                  "-s", signature, stdin=MESSAGE)  # fmt: skip
    assert good.returncode == 0
    assert good.stdout.startswith(b'Good "file" signature for caf\xe9@x with ')


def test_find_principals_as_ssh_keygen(signed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, signers, signature = signed
    # the first line that names the key is the answer: each line first in turn
    lines = signers.read_bytes().splitlines(keepends=True)
    for first in range(len(lines)):
        reordered = tmp_path / f"allowed_{first}"
        reordered.write_bytes(b"".join(lines[first:] + lines[:first]))
        args = ["-f", str(reordered), "-s", str(signature)]
        theirs = keygen("-Y", "find-principals", *args)
        mine = keytool("verify", "--find-principals", *args)
        assert theirs.returncode == 0, theirs.stderr
        assert mine.returncode == 0, mine.stderr
        assert mine.stdout == theirs.stdout
        assert theirs.stdout == {
            0: b"caf\xe9@x\n", 1: b"caf?@one\ncaf??@utf8\n", 2: b"na\xefve one\n",
            3: b"other\n*@\xff.example\n",
        }[first]  # fmt: skip


def test_match_principals_as_ssh_keygen(signed: tuple[Path, Path, Path]) -> None:
    _, signers, _ = signed
    matched = 0
    for identity in IDENTITIES:
        args = ["-f", str(signers), "-I", os.fsdecode(identity)]
        theirs = keygen("-Y", "match-principals", *args)
        mine = keytool("verify", "--match-principals", *args)
        assert mine.stdout == theirs.stdout, (identity, theirs.stderr, mine.stderr)
        assert (mine.returncode == 0) == (theirs.returncode == 0), identity
        matched += theirs.returncode == 0
    assert matched >= 5  # not a comparison of two empty answers

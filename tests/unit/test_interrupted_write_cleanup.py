"""files.writing: whatever ends a write early removes the temp files it made; a temp
file already renamed into place is kept. ^C is raised here in the fsync of the n-th
temp file, in this process (the real-process tests: tests/interop/test_interrupted_writes.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from keytool import files, keyfiles
from keytool.keys import generate


@pytest.fixture(autouse=True)
def _default_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP at their default action, as keytool starts (another test in
    this process may have left a handler of its own), and put back after."""
    before = {n: signal.signal(n, signal.SIG_DFL) for n in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """^C as the ``count``-th fsync of a file is made."""
    real = os.fsync
    seen = [0]

    def fsync(fd: int) -> None:
        real(fd)
        seen[0] += 1
        if seen[0] == count:
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fsync)


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("count", [1, 2])
def test_a_key_pair_interrupted_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    key = generate("ed25519", 256)
    _interrupt_at(monkeypatch, count)
    with pytest.raises(KeyboardInterrupt):
        keyfiles.write_key_pair(tmp_path / "k", b"private\n", key.public, "c")
    assert _names(tmp_path) == set()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.parametrize(
    "write",
    [
        lambda p: keyfiles.rewrite_key_file(p, b"new\n"),
        lambda p: keyfiles.rewrite_public_file(p, b"new\n"),
        lambda p: files.write_atomic(p, b"new\n", 0o600, backup=p.with_name("k.old")),
    ],
)
def test_a_rewrite_interrupted_keeps_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: Callable[[Path], None]
) -> None:
    (tmp_path / "k").write_bytes(b"old\n")
    os.chmod(tmp_path / "k", 0o600)
    _interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path / "k")
    assert _names(tmp_path) == {"k"}
    assert (tmp_path / "k").read_bytes() == b"old\n"
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL


_SIGNAL_DURING_CLEANUP = """
import os, signal, sys
from pathlib import Path
from keytool import keyfiles
from keytool.keys import generate

key = generate("ed25519", 256)
real_fsync, real_unlink = os.fsync, os.unlink
seen = [0]

def fsync(fd):
    real_fsync(fd)
    seen[0] += 1
    if seen[0] == 2:  # both temp files written: ^C
        raise KeyboardInterrupt

removed = [0]

def unlink(path, *args, **kwargs):
    removed[0] += 1
    if removed[0] == int(sys.argv[2]):  # SIGTERM as the n-th temp file is removed
        os.kill(os.getpid(), signal.SIGTERM)
    real_unlink(path, *args, **kwargs)

os.fsync, os.unlink = fsync, unlink
try:
    keyfiles.write_key_pair(Path(sys.argv[1]) / "k", b"private\\n", key.public, "c")
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("removing", [1, 2])
def test_a_signal_while_the_temp_files_are_removed_waits_for_the_end(
    tmp_path: Path, removing: int
) -> None:
    """SIGTERM after ^C, as its temp files are being removed: they are all removed
    (the signal waits), then the process ends by it; before, it escaped as a
    traceback in the middle and left them."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _SIGNAL_DURING_CLEANUP, str(tmp_path), str(removing)],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert b"Traceback" not in done.stderr
    assert _names(tmp_path) == set()

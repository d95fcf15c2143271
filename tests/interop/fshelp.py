"""File-system helpers for the tests of writes under adverse conditions: a small tmpfs
to fill, a folder's listing with modes, a status as a shell shows it."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def shell_status(returncode: int) -> int:
    """The status a shell shows: 128 + N for a process ended by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def listing(folder: Path) -> dict[str, int]:
    """Every name in ``folder`` (a leftover temp file too) and its mode."""
    return {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str = "64k") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (made here), unmounted afterwards; the
    test is skipped where mounting is not permitted."""
    folder.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, check=False)


def fill(folder: Path, leave_pages: int = 0) -> None:
    """Take every block of ``folder``'s filesystem but ``leave_pages`` pages, with a
    file named .filler."""
    page = os.sysconf("SC_PAGE_SIZE")
    fd = os.open(folder / ".filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0" * page):
                pass
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave_pages * page))
    finally:
        os.close(fd)


def run_with_bad_stdout(
    argv: list[str], cwd: Path, stdout: str, unbuffered: str = ""
) -> tuple[int, bytes]:
    """``argv`` in ``cwd`` with stdout a pipe whose reader is gone ("broken") or
    /dev/full ("full"), Python's stdout buffered as users run it unless ``unbuffered``
    (PYTHONUNBUFFERED's value): its status as a shell shows it, and its stderr."""
    from tests.interop.clienthelp import base_env

    env = base_env(HOME=str(cwd))
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    if stdout == "broken":
        reader, out = os.pipe()
        os.close(reader)  # every write now fails with EPIPE, whenever it comes
    else:
        out = os.open("/dev/full", os.O_WRONLY)
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, cwd=cwd,
            env=env, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(out)
    return shell_status(done.returncode), done.stderr

"""Run keytool as a user would: a separate process, its exit code, stdout and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def keytool(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "keytool", *[str(a) for a in args]],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        timeout=timeout,
        cwd=cwd,
    )


def assert_clean_error(result: subprocess.CompletedProcess[str]) -> str:
    """A failure as the quality bar wants it: non-zero, one line on stderr, no traceback."""
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]

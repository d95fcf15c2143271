"""How the configuration parity tests run ``ssh -G`` and ``keytool exec -G``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.interop.clienthelp import base_env

#: what ssh says on stderr whatever the case (no terminal), and keytool does not
SSH_ONLY = ("Pseudo-terminal will not be allocated",)


def run_config(
    command: list[str], home: Path, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``command`` with ``home`` as HOME (plus ``env``) and nothing on stdin; its output
    as text, bytes that are not UTF-8 kept as surrogate escapes. ``cwd``: where it runs
    (``home`` for ``python -m keytool`` to take the package from the path, not from
    where the tests run)."""
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=base_env(HOME=str(home), **env),
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def run_in_home(command: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """run_config with ``home`` as the working directory too."""
    return run_config(command, home, cwd=home)

"""How the configuration parity tests run ``ssh -G`` and ``keytool exec -G``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.interop.clienthelp import base_env


def run_config(command: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``command`` with ``home`` as HOME (plus ``env``) and nothing on stdin; its output
    as text, bytes that are not UTF-8 kept as surrogate escapes."""
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=base_env(HOME=str(home), **env),
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )

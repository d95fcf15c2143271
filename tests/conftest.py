from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import Account, throwaway_account
from tests.peers import Dropbear, Sshd


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A running OpenSSH sshd (system version) with key auth into root via its authorized_keys."""
    server = Sshd(tmp_path / "sshd")
    with server:
        yield server


@pytest.fixture
def dropbear(tmp_path: Path) -> Iterator[Dropbear]:
    server = Dropbear(tmp_path / "dropbear")
    with server:
        yield server


@pytest.fixture
def account() -> Iterator[Account]:
    """A throwaway local account (needs root; skipped otherwise), removed afterwards."""
    with throwaway_account() as made:
        yield made

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import Account, throwaway_account
from tests.peers import Dropbear, Sshd


@pytest.fixture(autouse=True, scope="session")
def _no_signal_to_a_process_group() -> Iterator[None]:
    """A pid of 0 or below, parsed wrongly from a log, would signal the whole test run's
    process group: such a kill fails the test instead."""
    real_kill = os.kill

    def kill(pid: int, signum: int) -> None:
        if pid <= 0:
            raise AssertionError(f"a test sent signal {signum} to pid {pid}, a process group")
        real_kill(pid, signum)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "kill", kill)
        yield


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

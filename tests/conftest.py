from __future__ import annotations

import contextlib
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.interop.clienthelp import Account, throwaway_account
from tests.peers import Dropbear, Sshd, port_claims

# The property tests draw the same examples on every run, so that a run of the suite
# says the same of the same code; HYPOTHESIS_PROFILE=explore draws new ones, 1000 a test
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


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


@pytest.fixture
def started() -> Iterator[list[int]]:
    """Pids of detached agents a test started or saw printed; killed at the end if the
    test did not stop them."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def pytest_configure(config: pytest.Config) -> None:
    """The main process names the run (as the parallel workers will know it) so that
    it can remove the run's port claims at the end."""
    if hasattr(config, "workerinput") or not hasattr(config.option, "testrunuid"):
        return
    if config.option.testrunuid is None:
        config.option.testrunuid = uuid.uuid4().hex
    os.environ["PYTEST_XDIST_TESTRUNUID"] = config.option.testrunuid


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        shutil.rmtree(port_claims(), ignore_errors=True)

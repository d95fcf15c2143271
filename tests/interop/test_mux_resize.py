"""A window size change through a connection-sharing master reaches the server even when
the SIGWINCH does not interrupt the wait (poll(2), a read) the process is in.

Python runs a signal's handler in the main thread, between bytecodes: a SIGWINCH that
came just before keytool's master entered poll(2) (the C-level handler run, the Python
one not yet) used to wait there until something else woke the master, a keystroke or
some output: the resize of an idle session was lost until then (about one resize in
1500, the master having just written the remote side's output). keytool's client had
the same window before its blocking read of the control socket. These tests make that
state last (``KEYTOOL_SIGNAL_ELSEWHERE``), for keytool as the master and as the client.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import base_env
from tests.interop.test_client_mux import Bench, bench
from tests.interop.test_client_terminal import (
    SHOW_RESIZES,
    OnTerminal,
    resized_twice,
    signal_elsewhere,
)
from tests.peers import stop_process

__all__ = ["bench"]  # the connection sharing tests' fixture, used here too


def argv(bench: Bench, client: str, *flags: str, command: str | None = None) -> list[str]:
    """As ``bench.argv``; keytool as ``KEYTOOL_SIGNAL_ELSEWHERE`` runs it."""
    args = bench.argv(client, *flags, command=command)
    return signal_elsewhere(args) if client == "keytool" else args


@pytest.fixture
def our_master(bench: Bench) -> Iterator[Path]:
    """keytool's master (``-M -N``; not -f, whose fork would leave the thread behind),
    as ``KEYTOOL_SIGNAL_ELSEWHERE`` runs it; its ControlPath."""
    path = bench.socket_path("r")
    master = subprocess.Popen(
        argv(bench, "keytool", "-M", "-S", str(path), "-N"),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=base_env(), start_new_session=True,
    )  # fmt: skip
    try:
        assert bench.track(path) == master.pid
        yield path
    finally:
        bench.run("ssh", "-S", str(path), "-O", "exit", timeout=10)
        stop_process(master)


def resized_through(bench: Bench, client: str, path: Path) -> None:
    term = OnTerminal(argv(bench, client, "-tt", "-S", str(path), command=SHOW_RESIZES), 33, 101)
    try:
        resized_twice(term)
    except AssertionError as exc:  # which client's resize did not arrive
        raise AssertionError(f"{client} client: {exc}") from None
    finally:
        term.close()


@pytest.mark.parametrize("client", ["ssh", "keytool"])
def test_resize_reaches_the_server_through_our_master(
    bench: Bench, our_master: Path, client: str
) -> None:
    """The client passes SIGWINCH on to keytool's master, which is woken by it even
    when the signal does not interrupt its poll(2): the resize goes out at once."""
    resized_through(bench, client, our_master)


def test_our_client_passes_the_resize_on_to_ssh_master(bench: Bench) -> None:
    """keytool's client, waiting for the master's messages, passes SIGWINCH on to
    ssh's master even when the signal does not interrupt that wait."""
    path = bench.socket_path("s")
    bench.start_master("ssh", path)
    resized_through(bench, "keytool", path)

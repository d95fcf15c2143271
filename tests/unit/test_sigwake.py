"""The shared wake-up descriptor: the newest pushed one still there gets the bytes,
whatever order they are popped in, and what was set before comes back at the end."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from keytool import sigwake


def current() -> int:
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    return fd


@pytest.fixture
def pipes() -> Iterator[list[tuple[int, int]]]:
    made = []
    for _ in range(3):
        read, write = os.pipe()
        os.set_blocking(write, False)
        made.append((read, write))
    before = signal.set_wakeup_fd(made[2][1], warn_on_full_buffer=False)
    yield made
    signal.set_wakeup_fd(before)
    for pair in made:
        for fd in pair:
            os.close(fd)


def test_popped_out_of_order(pipes: list[tuple[int, int]]) -> None:
    (_, a), (_, b), (_, outside) = pipes
    sigwake.push(a)
    sigwake.push(b)
    assert current() == b
    sigwake.pop(a)  # the older one goes first: the newer one keeps the bytes
    assert current() == b
    sigwake.pop(b)
    assert current() == outside
    sigwake.pop(b)  # twice: nothing changes
    assert current() == outside


def test_the_signal_number_arrives(pipes: list[tuple[int, int]]) -> None:
    (read, write), _, _ = pipes
    previous = signal.signal(signal.SIGWINCH, lambda *_: None)
    sigwake.push(write)
    try:
        os.kill(os.getpid(), signal.SIGWINCH)
        assert os.read(read, 16) == bytes([signal.SIGWINCH])
    finally:
        sigwake.pop(write)
        signal.signal(signal.SIGWINCH, previous)

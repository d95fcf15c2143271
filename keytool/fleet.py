"""copy-id on many hosts at once: a bounded number of connections in flight, a progress
bar on a terminal, and a summary table. One host's failure never stops the others."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, NamedTuple, TextIO

from keytool.copyid import DEFAULT_JOBS, Job
from keytool.copyid_host import HostResult, run_host
from keytool.errors import KeytoolError, in_words
from keytool.options import Prompts
from keytool.prompting import LoopPrompts, Screen

if TYPE_CHECKING:
    import socket

    from keytool.session import ConnectOptions


class Target(NamedTuple):
    """One host entry: the destination as given, its resolved connection options, and
    maybe a TCP connection to it already under way (``tcp.start_connect``)."""

    destination: str
    options: ConnectOptions
    sock: socket.socket | None = None


class Progress:
    """``copy-id 37/100 [########......] 2 failed`` redrawn in place on a terminal; its
    ``screen`` clears the line before anything else is written there."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.screen = Screen(self.stream)
        self.done = 0
        self.failed = 0
        self.enabled = total > 1 and self.stream.isatty()

    def update(self, result: HostResult) -> None:
        self.done += 1
        if not result.ok:
            self.failed += 1
        if not self.enabled:
            return
        filled = self.WIDTH * self.done // self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        failed = f" {self.failed} failed" if self.failed else ""
        self.screen.draw(f"copy-id {self.done}/{self.total} [{bar}]{failed}")
        if self.done == self.total:
            self.screen.finish()


async def run_fleet(
    targets: Sequence[Target],
    job: Job,
    jobs: int = DEFAULT_JOBS,
    prompts: Prompts | None = None,
    on_result: Callable[[HostResult], None] | None = None,
    screen: Screen | None = None,
    started: set[int] | None = None,
) -> list[HostResult]:
    """Run ``job`` on every target, at most ``jobs`` at a time; results in input order.
    Without ``prompts``, each host asks through the event loop (``LoopPrompts``), one
    prompt at a time, so that the others go on; ``screen`` is the progress bar's line,
    cleared before a prompt. ``started`` gets the index of each host begun."""
    if jobs < 1:
        raise KeytoolError("-j must be at least 1")
    gate = asyncio.Semaphore(jobs)
    turn = asyncio.Lock()
    screen = screen or Screen()
    loop = asyncio.get_running_loop()
    closing: set[asyncio.Task[None]] = set()

    def closer(done: Coroutine[None, None, None]) -> None:
        # a host's slot is free once its result is known: the connections' closing
        # (waiting for each server to hang up) goes on meanwhile, awaited at the end
        closing.add(loop.create_task(done))

    async def one(index: int, target: Target) -> HostResult:
        asks = prompts
        if asks is None:  # what a server says, said with its name when there are many
            name = target.destination if len(targets) > 1 else None
            asks = LoopPrompts(name, target.options.batch_mode, screen, turn)
        async with gate:
            if started is not None:
                started.add(index)
            try:
                result = await run_host(
                    target.destination, target.options, job, asks, closer=closer, sock=target.sock
                )
            except Exception as exc:
                # an error nobody expected fails this host alone: the others go on, and
                # the table is printed
                result = HostResult(target.destination, "failed", in_words(exc))
        if on_result is not None:
            on_result(result)
        return result

    try:
        return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(targets))))
    except asyncio.CancelledError:
        for task in closing:  # interrupted: no waiting for the servers to hang up
            task.cancel()
        raise
    finally:
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)


STATUS_ORDER = (
    "installed",
    "already there",
    "removed",
    "not there",
    "would install",
    "would remove",
    "failed",
    "interrupted",
    "not done",
)


def one_line(detail: str) -> str:
    """A reason that fits a row: a message of many lines (the changed host key banner)
    by its last two, which say what happened."""
    from keytool.display import safe

    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    return safe(" ".join(lines[-2:]))


def summary(results: Sequence[HostResult]) -> str:
    """The table: one row per host with its result and the reason, then the counts."""
    from keytool.display import safe

    names = [safe(r.destination) for r in results]
    width = max([len("HOST"), *(len(name) for name in names)])
    status_width = max(len(s) for s in STATUS_ORDER)
    lines = [f"{'HOST':<{width}}  {'RESULT':<{status_width}}  DETAIL"]
    for name, result in zip(names, results, strict=True):
        detail = one_line(result.detail)
        row = f"{name:<{width}}  {result.status:<{status_width}}  {detail}"
        lines.append(row.rstrip())
    counts = [
        f"{n} {status}"
        for status in STATUS_ORDER
        if (n := sum(1 for r in results if r.status == status))
    ]
    hosts = len(results)
    lines.append(f"{hosts} host{'s' if hosts != 1 else ''}: {', '.join(counts)}")
    return "\n".join(lines)

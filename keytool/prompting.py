"""Prompts that leave the event loop running: copy-id on many hosts asks for a password
or a host key answer on the terminal while the other hosts go on.

The terminal is read through the loop (``add_reader``), never in a blocking call: a
host waiting for its answer holds no other host up (sshd cuts a connection off after
its LoginGraceTime), and ^C ends the run at once, the echo restored. Prompts are asked
one at a time, never mixed, and the progress bar's line is cleared first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TextIO

from keytool.errors import AskpassError, KeytoolError
from keytool.options import Prompts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keytool.terminal import Caught


class Screen:
    """The line a progress bar is drawn on: cleared before anything else is written to
    the terminal, and drawn again after."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.drawn = ""
        self.held = 0  # something else is on the line (a prompt): drawn after it

    def draw(self, text: str) -> None:
        self.drawn = text
        if not self.held:
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()

    def finish(self) -> None:
        """The bar is done: its line stays, what follows goes below it."""
        if self.drawn and not self.held:
            self.stream.write("\n")
            self.stream.flush()
        self.drawn = ""

    def clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def restore(self) -> None:
        if self.drawn:
            self.stream.write(f"\r{self.drawn}\x1b[K")
            self.stream.flush()

    @contextlib.contextmanager
    def aside(self) -> Iterator[None]:
        """Write something else: the bar's line cleared meanwhile."""
        self.clear()
        self.held += 1
        try:
            yield
        finally:
            self.held -= 1
            if not self.held:
                self.restore()


class LoopPrompts(Prompts):
    """A copy-id host's prompts. ``name``: shown before what its server says (a refused
    password, a banner), as the lines of many hosts mix. ``screen`` and ``turn`` are
    shared by all the hosts of a run: the bar's line, and one prompt at a time."""

    def __init__(
        self,
        name: str | None,
        batch_mode: bool,
        screen: Screen,
        turn: asyncio.Lock,
    ) -> None:
        super().__init__(batch_mode)
        self.name = name
        self.screen = screen
        self.turn = turn

    def show(self, text: str) -> None:
        if self.name is not None:
            text = "".join(f"{self.name}: {line}\n" for line in text.splitlines())
        with self.screen.aside():
            super().show(text)

    async def ask(self, prompt: str, purpose: str, echo: bool = False) -> str:
        """As ``secret``, without blocking the loop: a clear KeytoolError when there is
        nothing to ask with, or no answer."""
        from keytool import terminal

        if self.batch_mode:
            raise KeytoolError(f"{purpose} is needed but BatchMode is set")
        interactive = terminal.has_terminal()
        program = terminal.askpass_program(interactive)
        if program is None and not interactive:
            raise KeytoolError(f"{purpose} is needed but there is no terminal to ask on")
        async with self.turn:
            with self.screen.aside():
                if program is not None:
                    answer = await run_askpass(program, prompt)
                    if answer is None:
                        raise KeytoolError(f"{purpose} was not given (askpass cancelled)")
                    return answer
                answer = await read_terminal(prompt, hidden=not echo)
        if answer is None:
            raise KeytoolError(f"{purpose} was not given")
        return answer

    async def question(self, prompt: str) -> str | None:
        """The host key question, answered on the terminal or by SSH_ASKPASS as
        ``hostcheck.question_prompter`` would; None: no answer."""
        from keytool import terminal

        program = terminal.askpass_program(terminal.has_terminal())
        async with self.turn:
            with self.screen.aside():
                if program is not None:
                    return await run_askpass(program, prompt)
                return await read_terminal(prompt)


async def read_terminal(prompt: str, hidden: bool = False) -> str | None:
    """``terminal.ask_terminal`` through the event loop: a line typed on the controlling
    terminal, taken as readpassphrase takes it; None without a terminal or at end of
    input. The echo comes back whatever happens: the task's cancelling (^C, SIGTERM),
    a signal left to its default action (SIGHUP, SIGQUIT: it then ends keytool as it
    would have), or one that stops us (^Z: the prompt is asked again when we go on)."""
    from keytool.terminal import ENDING, catching, take_effect

    while True:
        # only the signals left to their default action: ^C and SIGTERM end the run
        # through its task, which closes the prompt
        with catching(ENDING, untouched=True) as caught:
            answer = await _read_line(prompt, hidden, caught)
        if not caught.signals:
            return answer
        if not take_effect(caught.signals):
            return None


async def _read_line(prompt: str, hidden: bool, caught: Caught) -> str | None:
    """One prompt and the line typed; a signal caught meanwhile (``caught``) ends it,
    the terminal given back all the same."""
    from keytool.terminal import (
        Interrupted,
        close_prompt,
        open_prompt,
        typed_line,
        write_interruptibly,
    )

    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:  # the future awaited when the loop runs it
        _wake(ready)

    def signalled() -> None:  # in the signal's handler: the loop is woken up
        loop.call_soon_threadsafe(wake)

    # caught from before the prompt is shown: one that comes as the echo is turned off
    # ends the prompt once it is open
    caught.wake = signalled
    try:
        shown = open_prompt(prompt, hidden, caught, nonblocking=True)
        if shown is None:
            return None
        fd, saved = shown
        line = bytearray()
        try:
            while not caught.signals and not line.endswith(b"\n"):
                ready = loop.create_future()
                loop.add_reader(fd, _wake, ready)
                try:
                    await ready
                finally:
                    loop.remove_reader(fd)
                if caught.signals:
                    break
                chunk = _read_chunk(fd, caught)
                if chunk is None:
                    continue
                if not chunk:
                    break
                line += chunk
        except asyncio.CancelledError:
            if not hidden:  # its line ended before what follows, as a hidden one's
                with contextlib.suppress(OSError, Interrupted):
                    write_interruptibly(fd, b"\n", caught)
            raise
        except (Interrupted, OSError):
            return None
        finally:
            close_prompt(fd, saved, caught)
    finally:
        caught.wake = None
    return None if caught.signals else typed_line(line)


def _read_chunk(fd: int, caught: Caught) -> bytes | None:
    """What the terminal has; None when nothing yet. A signal meanwhile (SIGTTIN, read
    in the background) ends the read at once, with Interrupted."""
    caught.reading = True
    try:
        return os.read(fd, 1024)
    except BlockingIOError:
        return None
    finally:
        caught.reading = False


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def run_askpass(program: str, prompt: str) -> str | None:
    """``terminal.run_askpass`` as a child process of the loop; None when cancelled."""
    from keytool.terminal import answer_of

    env = dict(os.environ)
    try:
        child = await asyncio.create_subprocess_exec(
            program,
            prompt,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
    except OSError as exc:
        reason = exc.strerror or exc
        raise AskpassError(f"cannot run the askpass program {program}: {reason}") from None
    try:
        out, _ = await asyncio.wait_for(child.communicate(), 300)
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        if isinstance(exc, TimeoutError):
            raise AskpassError(f"the askpass program {program} gave no answer") from None
        raise
    if child.returncode != 0:
        return None
    return answer_of(out)

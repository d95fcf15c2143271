"""Sessions with a pseudo-terminal (a login shell, ``-t``), keytool and ssh side by
side on a pseudo-terminal of the test's, against sshd and an account whose shell is
/bin/sh: what each one's terminal showed, its exit status, the window size the remote
side saw (and saw change), ssh's escapes and its words when there is no terminal."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, Account, base_env, install_key, keygen
from tests.interop.clienthelp import throwaway_account as account_of
from tests.peers import Sshd, free_port, require, stop_process

CLIENTS = ("ssh", "keytool")
PROMPT = b"$ "


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, Account, Path]]:
    folder = tmp_path_factory.mktemp("terminal")
    key = keygen(folder / "id", "ed25519")
    with account_of("/bin/sh") as account:
        install_key(account, Path(f"{key}.pub"))
        (account.home / ".hushlogin").touch()  # no motd or last-login lines: less to wait on
        options = {"AuthorizedKeysFile": ".ssh/authorized_keys", "AllowUsers": account.name,
                   "PermitRootLogin": "no", "PermitTTY": "yes"}  # fmt: skip
        with Sshd(folder / "sshd", options) as server:
            (folder / "known_hosts").write_text(server.known_hosts_line())
            yield server, account, key


def client_args(
    client: str, setup: tuple[Sshd, Account, Path], *flags: str, known: Path | None = None
) -> list[str]:
    server, account, key = setup
    known = known or key.parent / "known_hosts"
    args = ["-F", "none", "-p", str(server.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            *flags, f"{account.name}@127.0.0.1"]  # fmt: skip
    return [*KEYTOOL, "exec", *args] if client == "keytool" else [require("ssh"), *args]


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


#: keytool run with a thread that takes SIGWINCH, the main thread blocking it: the
#: signal's C-level handler runs and the main thread's wait (poll(2), a read) is not
#: interrupted. Python runs the handler itself in the main thread, between bytecodes:
#: this makes last the state a SIGWINCH that comes just before keytool enters poll(2)
#: leaves for an instant (a window no test can hit on purpose), in which only a wake-up
#: that does not depend on the interruption (``signal.set_wakeup_fd``) is seen
KEYTOOL_SIGNAL_ELSEWHERE = [
    sys.executable,
    "-c",
    "import runpy, signal, sys, threading\n"
    "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGWINCH})\n"
    'sys.argv[0] = "keytool"\n'
    'runpy.run_module("keytool", run_name="__main__", alter_sys=True)\n',
]
#: the remote side of a terminal session of 33 rows and 101 columns: that size, then
#: each new one as it comes (no output, and no input, meanwhile)
SHOW_RESIZES = (
    "stty size; echo ready; "
    'last="33 101"; while :; do now=$(stty size); '
    'if [ "$now" != "$last" ]; then echo "now $now"; last=$now; fi; sleep 0.02; done'
)


def signal_elsewhere(args: list[str]) -> list[str]:
    """A keytool command line (``KEYTOOL``'s) as ``KEYTOOL_SIGNAL_ELSEWHERE`` runs it."""
    assert args[: len(KEYTOOL)] == KEYTOOL, args
    return [*KEYTOOL_SIGNAL_ELSEWHERE, *args[len(KEYTOOL) :]]


def resized_twice(term: OnTerminal) -> None:
    """Two resizes of the terminal of a session running ``SHOW_RESIZES``, each seen by
    the remote side with nothing else going on (no keystroke wakes the client)."""
    term.wait_raw()
    term.read_until(b"ready\r\n")
    for rows, cols in ((50, 132), (40, 90)):
        start = len(term.seen)
        set_size(term.main, rows, cols)
        term.read_until(f"now {rows} {cols}\r\n".encode(), timeout=10, start=start)


class OnTerminal:
    """A client on a pseudo-terminal of ours, as a user at a terminal runs it."""

    def __init__(
        self,
        args: list[str],
        rows: int = 24,
        cols: int = 80,
        piped: bytes | None = None,
        env: dict[str, str] | None = None,
        iflag: int = 0,
    ) -> None:
        """``piped``: stdin is a pipe that gives these bytes, the terminal the
        controlling one all the same (``echo x | ssh host cat`` typed at a terminal);
        ``iflag``: input mode bits turned on in the terminal (as ``stty iutf8``)."""
        self.main, child = os.openpty()
        set_size(child, rows, cols)
        if iflag:
            attributes = termios.tcgetattr(child)
            attributes[0] |= iflag
            termios.tcsetattr(child, termios.TCSANOW, attributes)

        def controlling_terminal() -> None:
            fcntl.ioctl(1, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            args, stdin=child if piped is None else subprocess.PIPE, stdout=child,
            stderr=child, env={**(env or base_env()), "TERM": "xterm"}, start_new_session=True,
            preexec_fn=controlling_terminal,
        )  # fmt: skip
        if piped is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(piped)
            self.proc.stdin.close()
        os.close(child)
        self.seen = b""
        self.closed = False
        _OPEN.append(self)

    def read_until(self, marker: bytes, timeout: float = 20, start: int = 0) -> None:
        """Read until ``marker`` is in what the terminal showed (from ``start`` on:
        a marker that came before does not count)."""
        deadline = time.monotonic() + timeout
        while marker not in self.seen[start:]:
            assert time.monotonic() < deadline, f"never saw {marker!r} in {self.seen!r}"
            ready, _, _ = select.select([self.main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.main, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"the terminal closed before {marker!r}: {self.seen!r}"
                self.seen += chunk

    def type(self, text: bytes) -> None:
        os.write(self.main, text)

    def wait_raw(self, timeout: float = 20) -> None:
        """Until the client has put the terminal in raw mode. Through a master, the
        remote side's output is written by the master to the client's terminal (its
        descriptors were passed over), perhaps before the client turned it raw: a test
        has the remote side wait for a line typed after this."""
        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.main)[3] & termios.ICANON:
            assert time.monotonic() < deadline, "the client never put the terminal in raw mode"
            time.sleep(0.02)

    def finish(self, timeout: float = 20) -> int:
        """Read to the end; the exit status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.main, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.seen += chunk
            elif self.proc.poll() is not None:
                break
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            stop_process(self.proc)  # type: ignore[arg-type]
            os.close(self.main)


#: the terminals a test opened: closed (their clients stopped) after it, whatever it did
_OPEN: list[OnTerminal] = []


@pytest.fixture(autouse=True)
def _terminals_closed() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def after(seen: bytes, marker: bytes) -> bytes:
    return seen[seen.rindex(marker) + len(marker) :]


def test_login_shell_as_with_ssh(setup: tuple[Sshd, Account, Path]) -> None:
    shown = {}
    for client in CLIENTS:
        term = OnTerminal(client_args(client, setup), rows=33, cols=101)
        term.read_until(PROMPT)
        term.type(b"stty size; tty; echo $((6*7)); exit 3\r")
        status = term.finish()
        shown[client] = (status, after(term.seen, b"exit 3"))
    assert shown["keytool"][0] == shown["ssh"][0] == 3
    # the remote shell's answers, then ssh's last words, byte for byte (the pts number
    # aside: each session has its own)
    ours, theirs = (shown[c][1].split(b"/dev/pts/")[0] for c in ("keytool", "ssh"))
    assert ours == theirs and b"33 101\r\n" in theirs
    assert shown["keytool"][1].endswith(b"42\r\nConnection to 127.0.0.1 closed.\r\r\n")
    assert shown["keytool"][1].split(b"\r\n")[-3:] == shown["ssh"][1].split(b"\r\n")[-3:]


def test_window_size_follows_the_terminal(setup: tuple[Sshd, Account, Path]) -> None:
    for client in CLIENTS:
        term = OnTerminal(client_args(client, setup), rows=24, cols=80)
        term.read_until(PROMPT)
        set_size(term.main, 50, 132)  # the kernel tells the client (SIGWINCH)
        # the remote shell waits for the change to arrive (when it arrives), then shows
        # the size it saw
        term.type(b'while [ "$(stty size)" = "24 80" ]; do sleep 0.05; done; stty size; exit\r')
        assert term.finish() == 0
        assert b"50 132\r\n" in after(term.seen, b"exit"), (client, term.seen)


def test_window_size_follows_when_the_signal_does_not_interrupt_the_wait(
    setup: tuple[Sshd, Account, Path],
) -> None:
    """keytool, waiting in poll(2), is woken by SIGWINCH even when the signal does not
    interrupt that poll: the new size goes out at once, not with the next keystroke."""
    args = signal_elsewhere([*client_args("keytool", setup, "-tt"), SHOW_RESIZES])
    term = OnTerminal(args, rows=33, cols=101)
    resized_twice(term)
    term.close()


@pytest.mark.parametrize(
    "flags", [("-t",), ("-T",), ("-T", "-t"), ("-t", "-T"), ("-T", "-tt")], ids=" ".join
)
def test_command_with_or_without_a_terminal(
    setup: tuple[Sshd, Account, Path], flags: tuple[str, ...]
) -> None:
    """-t and -T: as ssh, the last one given counts."""
    shown = {}
    for client in CLIENTS:
        term = OnTerminal([*client_args(client, setup, *flags), "tty"])
        status = term.finish()
        shown[client] = (status, term.seen.split(b"/dev/pts/")[0])
    assert shown["keytool"] == shown["ssh"]
    if flags[-1] != "-T":
        assert shown["ssh"][0] == 0 and shown["ssh"][1] == b""
    else:
        assert shown["ssh"] == (1, b"not a tty\r\n")


#: the IUTF8 input flag (Linux's value: Python's termios module names it from 3.13)
IUTF8 = getattr(termios, "IUTF8", 0o40000)


@pytest.mark.parametrize("iutf8", [True, False], ids=["iutf8", "-iutf8"])
def test_terminal_modes_reach_the_remote_terminal_as_with_ssh(
    setup: tuple[Sshd, Account, Path], iutf8: bool
) -> None:
    """The local terminal's modes, IUTF8 too (``stty iutf8``), are the remote one's."""
    shown = {}
    for client in CLIENTS:
        term = OnTerminal(
            [*client_args(client, setup, "-t"), "stty -a"], iflag=IUTF8 if iutf8 else 0
        )
        status = term.finish()
        modes = after(term.seen.split(b"Connection to")[0], b"line = 0;").split()
        shown[client] = (status, sorted(modes))
    assert shown["keytool"] == shown["ssh"]
    assert shown["ssh"][0] == 0 and (b"iutf8" if iutf8 else b"-iutf8") in shown["ssh"][1]


@pytest.mark.parametrize("term", ["xterm", None], ids=["TERM", "no-TERM"])
def test_forced_terminal_without_a_local_one_as_with_ssh(
    setup: tuple[Sshd, Account, Path], term: str | None
) -> None:
    """-tt with no terminal here: as ssh, TERM as it is here (empty when unset) and a
    size of 0x0, nothing made up."""
    env = {k: v for k, v in base_env().items() if k != "TERM"}
    if term is not None:
        env["TERM"] = term
    done = {}
    for client in CLIENTS:
        result = subprocess.run(
            [*client_args(client, setup, "-tt"), 'echo "[$TERM]"; stty size'],
            stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60,
        )  # fmt: skip
        done[client] = (result.returncode, result.stdout, result.stderr)
    assert done["keytool"] == done["ssh"]
    assert done["ssh"][1] == f"[{term or ''}]\r\n0 0\r\n".encode()


def test_escape_dot_disconnects(setup: tuple[Sshd, Account, Path]) -> None:
    shown = {}
    for client in CLIENTS:
        term = OnTerminal(client_args(client, setup))
        term.read_until(PROMPT)
        term.type(b"~.")  # at the start of a line: the escape, not for the shell
        shown[client] = (term.finish(), term.seen[-40:])
    assert shown["keytool"][0] == shown["ssh"][0] == 255
    assert shown["keytool"][1].endswith(b"Connection to 127.0.0.1 closed.\r\r\n")
    assert shown["ssh"][1].endswith(b"Connection to 127.0.0.1 closed.\r\r\n")


def test_no_terminal_for_a_shell_on_a_pipe(setup: tuple[Sshd, Account, Path]) -> None:
    done = {}
    for client in CLIENTS:
        result = subprocess.run(
            client_args(client, setup), input="echo $((6*7))\n", capture_output=True,
            text=True, env=base_env(), timeout=60,
        )  # fmt: skip
        done[client] = (result.returncode, result.stdout, result.stderr.replace("ssh: ", ""))
    assert done["keytool"] == done["ssh"]
    assert done["ssh"] == (
        0, "42\n", "Pseudo-terminal will not be allocated because stdin is not a terminal.\n"
    )  # fmt: skip


def test_a_server_that_gives_no_terminal(tmp_path: Path, setup: tuple[Sshd, Account, Path]) -> None:
    """-t asked for one: its refusal ends the session (ssh's fatal error), the command
    never runs."""
    _, account, key = setup
    options = {"AuthorizedKeysFile": ".ssh/authorized_keys", "AllowUsers": account.name,
               "PermitRootLogin": "no", "PermitTTY": "no"}  # fmt: skip
    with Sshd(tmp_path / "sshd", options) as server:
        known = key.parent / "known_hosts"
        known.write_text(known.read_text() + server.known_hosts_line())
        shown = {}
        for client in CLIENTS:
            term = OnTerminal([*client_args(client, (server, account, key), "-t"), "echo", "ran"])
            shown[client] = (term.finish(), term.seen)
    for status, seen in shown.values():
        assert status == 255 and b"PTY allocation request failed on channel 0" in seen
        assert b"ran" not in seen


@pytest.mark.parametrize("answer", [b"yes", b"no"])
def test_update_host_keys_ask_in_a_shell(
    tmp_path: Path, setup: tuple[Sshd, Account, Path], answer: bytes
) -> None:
    """UpdateHostKeys ask: in a shell session on a terminal, the changes shown and the
    question asked as ssh asks them; known_hosts as the answer says."""
    server = setup[0]
    shown, after = {}, {}
    for client in CLIENTS:
        known = tmp_path / f"known_{client}"
        known.write_text(server.known_hosts_line())
        args = client_args(client, setup, "-o", "UpdateHostKeys=ask", known=known)
        term = OnTerminal(args)
        term.read_until(b"(yes/no): ")
        shown[client] = term.seen
        term.type(answer + b"\r")
        term.read_until(PROMPT)
        term.type(b"exit\r")
        assert term.finish() == 0
        after[client] = known.read_bytes()
    assert shown["keytool"] == shown["ssh"]
    assert shown["ssh"].startswith(b"The server has updated its host keys.\r\n")
    assert after["keytool"] == after["ssh"]
    lines = after["ssh"].decode().splitlines()
    assert len(lines) == (3 if answer == b"yes" else 1)


@pytest.mark.parametrize("answer", [b"yes", b"no"])
def test_new_host_question_on_the_terminal(
    tmp_path: Path, setup: tuple[Sshd, Account, Path], answer: bytes
) -> None:
    """A host not in known_hosts: asked on the terminal as ssh asks; yes adds it and
    the command runs, no ends it (255)."""
    shown, after, status = {}, {}, {}
    for client in CLIENTS:
        known = tmp_path / f"new_{client}"
        known.write_text("")
        term = OnTerminal([*client_args(client, setup, known=known), "echo", "ran"])
        term.read_until(b"(yes/no/[fingerprint])? ")
        shown[client] = term.seen
        term.type(answer + b"\r")
        status[client] = term.finish()
        after[client] = known.read_bytes()
        shown[client] += b" | " + term.seen.split(b"[fingerprint])? ", 1)[1]
    # the question byte for byte; after it, ssh ends its notice in "\r\n" even on a
    # terminal (which makes it "\r\r\n"), keytool in "\n" (the terminal's "\r\n")
    assert shown["keytool"].split(b" | ")[0] == shown["ssh"].split(b" | ")[0]
    # (and keytool's errors begin "keytool: ")
    ours = shown["keytool"].split(b" | ")[1].replace(b"keytool: ", b"")
    assert ours == shown["ssh"].split(b" | ")[1].replace(b"\r\r\n", b"\r\n")
    assert after["keytool"] == after["ssh"]
    if answer == b"yes":
        assert status["keytool"] == status["ssh"] == 0
        assert after["ssh"] == setup[0].known_hosts_line().encode()
        assert shown["keytool"].endswith(b"ran\r\n") and shown["ssh"].endswith(b"ran\r\n")
    else:
        assert status["keytool"] == status["ssh"] == 255
        assert after["ssh"] == b""


@pytest.mark.parametrize("stdin", ["terminal", "pipe"])
def test_password_asked_on_the_terminal(
    tmp_path: Path, setup: tuple[Sshd, Account, Path], stdin: str
) -> None:
    """Password authentication with nobody but the user to ask: the prompt on the
    terminal as ssh's, the password read there without echo, and in. With stdin a pipe
    (``echo piped-in | ssh host cat`` at a terminal) ssh still asks on the terminal and
    the pipe goes to the command; keytool refused, as it looked for a terminal on stdin."""
    _, account, key = setup
    options = {"AuthorizedKeysFile": "/dev/null", "AllowUsers": account.name,
               "PermitRootLogin": "no", "PasswordAuthentication": "yes",
               "KbdInteractiveAuthentication": "no"}  # fmt: skip
    piped = b"piped-in\n" if stdin == "pipe" else None
    command = ["cat"] if piped else ["echo", "in"]
    with Sshd(tmp_path / "sshd", options) as server:
        known = tmp_path / "known"
        known.write_text(server.known_hosts_line())
        shown = {}
        for client in CLIENTS:
            args = client_args(client, (server, account, key), known=known)
            term = OnTerminal([*args, *command], piped=piped)
            term.read_until(b"password: ")
            prompt = term.seen
            term.type(account.password.encode() + b"\r")
            status = term.finish()
            shown[client] = (status, prompt, term.seen[len(prompt) :])
    assert shown["keytool"] == shown["ssh"]
    assert shown["ssh"][0] == 0
    assert shown["ssh"][1].endswith(f"{account.name}@127.0.0.1's password: ".encode())
    assert account.password.encode() not in shown["ssh"][2]  # not echoed
    assert shown["ssh"][2].endswith(b"piped-in\r\n" if piped else b"in\r\n")


def test_copy_id_on_a_terminal(tmp_path: Path, setup: tuple[Sshd, Account, Path]) -> None:
    """keytool copy-id as a user at a terminal runs it for a new server: ssh's host key
    question (naming the address as ssh does), then the password, then installed and
    verified; the real ssh then logs in with the new key."""
    account = setup[1]
    new = keygen(tmp_path / "new", "ed25519", "new@terminal")
    options = {"AuthorizedKeysFile": ".ssh/authorized_keys", "AllowUsers": account.name,
               "PermitRootLogin": "no", "PasswordAuthentication": "yes",
               "KbdInteractiveAuthentication": "no"}  # fmt: skip
    with Sshd(tmp_path / "sshd", options) as other:
        known = tmp_path / "known"
        known.write_text("")
        term = OnTerminal([*KEYTOOL, "copy-id", "-F", "none", "-i", f"{new}.pub",
                           "-p", str(other.port), "-o", f"UserKnownHostsFile={known}",
                           "-o", "GlobalKnownHostsFile=/dev/null",
                           "-o", "PubkeyAuthentication=no",
                           f"{account.name}@127.0.0.1"])  # fmt: skip
        term.read_until(b"(yes/no/[fingerprint])? ")
        name = f"[127.0.0.1]:{other.port}"
        assert term.seen.startswith(
            f"\rThe authenticity of host '{name} ({name})' can't be established.\r\n".encode()
        )
        term.type(b"yes\r")
        term.read_until(b"password: ")
        term.type(account.password.encode() + b"\r")
        assert term.finish() == 0, term.seen
        assert known.read_text() == other.known_hosts_line()
        logged_in = subprocess.run(
            [require("ssh"), "-F", "none", "-p", str(other.port), "-i", str(new),
             "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
             f"{account.name}@127.0.0.1", "echo", "with the new key"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
    assert logged_in.stdout == "with the new key\n", logged_in.stderr
    assert account.password.encode() not in term.seen


def test_escape_help_break_rekey_and_list_as_ssh(setup: tuple[Sshd, Account, Path]) -> None:
    """~? shows ssh's help (keytool's lines are ssh's, for the escapes it has), ~B sends
    a BREAK and ~R new keys (sshd's log records both), ~# lists the open channels under
    ssh's heading, ~C says that the command line is off; each echoed as ssh echoes it.
    With another escape character (-e '^A'), the same in its name."""
    server, _, _ = setup
    shown = {}
    for client in CLIENTS:
        term = OnTerminal(client_args(client, setup, "-e", "^A"))
        term.read_until(PROMPT)
        before = server.log.read_text()
        for escape, marker in ((b"\x01?", b"newline.)\r\n"), (b"\x01#", b"are open:\r\n")):
            term.type(escape)
            term.read_until(marker)
        term.type(b"\x01B\x01R\x01C")
        term.read_until(b"commandline disabled\r\n")
        term.type(b"sleep 1; exit\n")
        status = term.finish()
        log = server.log.read_text()[len(before) :]
        shown[client] = (status, term.seen, log)
    ours, theirs = shown["keytool"], shown["ssh"]
    assert ours[0] == theirs[0] == 0
    help_of = {}
    for client, (_, seen, log) in shown.items():
        start = seen.index(b"\x01?\r\n")
        help_of[client] = seen[start : seen.index(b"newline.)\r\n", start)].split(b"\r\n")
        assert b"\x01B\r\n" in seen and b"The following connections are open:\r\n" in seen
        assert b"\x01#\r\n" in seen and b"commandline disabled\r\n" in seen
        assert "session_input_channel_req: session 0 req break" in log, client
        assert "ssh_set_newkeys: rekeying in" in log, client  # the new keys of ~R
    # keytool's help: ssh's, line for line (~C left out, as the command line is off)
    assert help_of["keytool"] == help_of["ssh"]
    assert help_of["ssh"][0] == b"\x01?" and b" \x01C   - open a command line" not in help_of["ssh"]


#: a job-control shell's part, reduced: runs the client as the terminal's foreground
#: job in a process group of its own (not orphaned, so a stop signal stops it), notes
#: each stop in the file argv[1], then gives it the terminal back and continues it
_JOB_CONTROL = """
import os, signal, sys
log, args = sys.argv[1], sys.argv[2:]
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(0, os.getpgrp())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    os.execvp(args[0], args)
try:
    os.setpgid(pid, pid)  # as shells do, on both sides: whichever runs first
except PermissionError:
    pass  # the child did it and has exec'd already
os.tcsetpgrp(0, pid)
while True:
    _, status = os.waitpid(pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        sys.exit(os.waitstatus_to_exitcode(status))
    with open(log, "a") as told:
        told.write(signal.Signals(os.WSTOPSIG(status)).name + "\\n")
    os.tcsetpgrp(0, pid)
    os.killpg(pid, signal.SIGCONT)
"""


def test_escape_suspend_as_ssh(setup: tuple[Sshd, Account, Path], tmp_path: Path) -> None:
    """~^Z: ssh's line, the client stopped as a job (SIGTSTP, seen by the job control
    above it), and once continued the session goes on."""
    shown = {}
    for client in CLIENTS:
        stops = tmp_path / f"stops-{client}"
        stops.write_text("")
        job = [sys.executable, "-c", _JOB_CONTROL, str(stops), *client_args(client, setup)]
        term = OnTerminal(job)
        term.read_until(PROMPT)
        term.type(b"~\x1a")
        term.read_until(b"~^Z [suspend ssh]\r\n")
        assert wait_until(lambda: stops.read_text() != "")  # noqa: B023
        start = len(term.seen)
        term.type(b"echo $((6*7)); exit\n")
        term.read_until(b"42\r\n", start=start)
        shown[client] = (term.finish(), stops.read_text())
    assert shown["keytool"] == shown["ssh"] == (0, "SIGTSTP\n")


def _command(term: OnTerminal, line: str, answer: bytes) -> None:
    """~C, then ``line`` at ssh's prompt, and wait for ``answer``."""
    term.type(b"\r~C")
    term.read_until(b"ssh> ")
    term.seen = term.seen[: term.seen.rindex(b"ssh> ")] + b"<prompt>"  # one prompt at a time
    start = len(term.seen)
    term.type(line.encode() + b"\n")
    term.read_until(answer, start=start)
    # the client turns the terminal raw again after its answer: what is typed before
    # that would be the line discipline's (echoed, held for a newline)
    assert wait_until(lambda: not termios.tcgetattr(term.main)[3] & termios.ICANON)


def test_command_line_adds_and_cancels_forwards_as_ssh(
    setup: tuple[Sshd, Account, Path],
) -> None:
    """EnableEscapeCommandline yes: ~C opens ssh's command line, whose -L and -R add
    forwards that work at once and -KL and -KR cancel them; help, a bad line and an
    unknown forward in ssh's words. The terminal shows the same for both clients."""
    from tests.interop.test_client_forward import EchoService, round_trip

    echo = EchoService()
    local, remote = free_port(), free_port()
    shown = {}
    try:
        for client in CLIENTS:
            term = OnTerminal(client_args(client, setup, "-o", "EnableEscapeCommandline=yes"))
            term.read_until(PROMPT)
            start = len(term.seen)
            _command(term, f"-L {local}:127.0.0.1:{echo.port}", b"Forwarding port.\r")
            assert round_trip(local, b"through -L") == b"through -L"
            _command(term, f"-KL {local}", b"Canceled forwarding.\r")
            assert wait_until(lambda: closed(local))
            _command(term, f"R {remote}:127.0.0.1:{echo.port}", b"Forwarding port.\r")
            assert wait_until(lambda: not closed(remote))  # the server listens
            assert round_trip(remote, b"through -R") == b"through -R"
            offset = setup[0].log.stat().st_size
            _command(term, f"-KR {remote}", b"Canceled forwarding.\r")
            # the client says so before sshd has its request: a connection to the port
            # in between would reach the client (ssh warns of an unknown listen_port)
            assert wait_until(partial(_cancelled_at_server, setup[0], offset))
            assert wait_until(lambda: closed(remote))
            _command(term, "?", b"Cancel dynamic forward\r")
            _command(term, "-KL 1", b"Unknown port forwarding.\r")
            _command(term, "-L nonsense", b"Bad local forwarding specification.\r")
            _command(term, "bogus", b"Invalid command.\r")
            term.type(b"\r~?")
            term.read_until(b"newline.)\r\n")
            term.type(b"exit\r")
            status = term.finish()
            shown[client] = (status, term.seen[start:].split(b"exit\r")[0])
    finally:
        echo.close()
    assert shown["keytool"][0] == shown["ssh"][0] == 0
    # the lines each client wrote, the remote shell's prompts (which come when they
    # come) left out
    ours, theirs = ([line.strip(b"\r") for line in shown[c][1].replace(PROMPT, b"").split(b"\n")]
                    for c in ("keytool", "ssh"))  # fmt: skip
    assert [line for line in ours if line] == [line for line in theirs if line]
    assert b" ~C   - open a command line" in ours  # listed, as it is on


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _cancelled_at_server(server: Sshd, offset: int) -> bool:
    text = server.log.read_bytes()[offset:].decode(errors="replace")
    return "rtype cancel-tcpip-forward" in text


def closed(port: int) -> bool:
    from tests.interop.test_client_forward import refused

    """Nothing listens on 127.0.0.1:``port`` (any more), or what does hangs up at once."""
    try:
        return refused(port)
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        return True


def test_escape_verbosity_as_ssh(setup: tuple[Sshd, Account, Path]) -> None:
    """~v and ~V move the LogLevel one up or down (QUIET to DEBUG3), said in ssh's
    words; from DEBUG1 up, each client tells the steps of the connection."""
    keys = b"~v~v~v~v~v" + b"~V" * 9 + b"~v~v~v~v~v"
    shown = {}
    for client in CLIENTS:
        term = OnTerminal(client_args(client, setup))
        term.read_until(PROMPT)
        for key in (keys[i : i + 2] for i in range(0, len(keys), 2)):
            start = len(term.seen)
            term.type(key)
            term.read_until(b"]\r\n", start=start)  # each answer read before the next key
        term.type(b"\rexit\r")
        status = term.finish()
        # Debian's ssh names QUIET "SILENT" (its own alias of it), upstream's QUIET
        levels = [line.split(b"[LogLevel ")[1].replace(b"SILENT", b"QUIET")
                  for line in term.seen.split(b"]\r\n")[:-1] if b"[LogLevel " in line]  # fmt: skip
        shown[client] = (status, levels, term.seen.split(b"exit\r")[-1])
    assert shown["keytool"][:2] == shown["ssh"][:2]
    assert shown["ssh"][1] == [
        b"VERBOSE", b"DEBUG", b"DEBUG2", b"DEBUG3", b"DEBUG3",
        b"DEBUG2", b"DEBUG", b"VERBOSE", b"INFO", b"ERROR", b"FATAL", b"QUIET", b"QUIET",
        b"QUIET", b"FATAL", b"ERROR", b"INFO", b"VERBOSE", b"DEBUG",
    ]  # fmt: skip
    # at DEBUG1 at the end: the last steps told, each client in its own words
    assert b"debug1: " in shown["ssh"][2]
    assert b"keytool: command execution: exit status 0" in shown["keytool"][2]


def test_escape_verbosity_reaches_the_key_exchange(setup: tuple[Sshd, Account, Path]) -> None:
    """~v and ~V set the level for the transport's steps too: a re-key (~R) is told
    at DEBUG1 (~v twice from INFO) and not once the level is down again (~V twice)."""
    server = setup[0]
    term = OnTerminal(client_args("keytool", setup))
    term.read_until(PROMPT)
    told = {}
    for level, key in (("DEBUG1", b"~v"), ("INFO", b"~V")):
        for _ in range(2):
            start = len(term.seen)
            term.type(key)
            term.read_until(b"]\r\n", start=start)
        offset = len(server.log.read_text())  # in characters, as _logged reads it
        start = len(term.seen)
        term.type(b"~R")
        # sshd's side of the re-key done, then a line of the shell's as a marker
        assert wait_until(partial(_logged, server, offset, "SSH2_MSG_NEWKEYS received")), (
            level,
            term.seen[start:],
        )
        term.type(b"\recho mark$((6*7))\r")
        term.read_until(b"mark42", start=start)
        told[level] = term.seen[start:]
    term.type(b"exit\r")
    assert term.finish() == 0
    assert b"re-keying" in told["DEBUG1"] and b"re-key 1 done" in told["DEBUG1"]
    assert b"re-key" not in told["INFO"]


def test_escape_background_as_ssh(setup: tuple[Sshd, Account, Path]) -> None:
    """~&: ssh's line, the caller's shell goes on (status 0) while the client goes on
    in the background, sending the session an EOF character, so the remote shell
    ends, and then the background client too. (A shell leads the terminal's session,
    as at a real terminal: the client's exit does not hang it up.)"""
    server, _, _ = setup
    for client in CLIENTS:
        before = server.log.read_text()
        shell = ["/bin/sh", "-c", '"$@"; echo "status=$?"; sleep 2', "sh"]
        term = OnTerminal([*shell, *client_args(client, setup)])
        term.read_until(PROMPT)
        term.type(b"~&")
        term.read_until(b"status=0")
        term.finish()
        assert b"~& [backgrounded]\r\n" in term.seen, (client, term.seen)
        session = term.proc.pid  # the test started the shell in a session of its own
        try:
            assert wait_until(partial(_gone, session), 20), client
        finally:  # what is left of that session is ours: a client that did not end
            for pid in _in_session(session):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        # the remote shell ended by itself (its EOF), then the client said goodbye: in
        # this session's part of the log (the module's server may still be logging the
        # end of an earlier test's connection), from its first line, which names the
        # client's port, to the disconnect from that port
        text = server.log.read_text()
        began = STARTED.search(text, len(before))
        assert began is not None, text[len(before) :]
        disconnect = f"Received disconnect from 127.0.0.1 port {began[1]}:"
        assert wait_until(partial(_logged, server, began.start(), disconnect), 20), client
        log = server.log.read_text()[began.start() :]
        assert log.index("session_exit_message: session 0") < log.index(disconnect)


#: sshd's line as a session starts, with the client's port
STARTED = re.compile(r"^Starting session: .* from 127\.0\.0\.1 port (\d+) ", re.MULTILINE)


def _logged(server: Sshd, start: int, words: str) -> bool:
    return words in server.log.read_text()[start:]


def _gone(session: int) -> bool:
    return not _in_session(session)


def _in_session(session: int) -> list[int]:
    """The processes still in session ``session``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found

"""``keytool exec`` and ssh side by side on how a session ends and how its flags
add up: the last of -t and -T, -a and -A, -x, -X and -Y, -4 and -6 counts (ssh -G
says so); a signal while connecting kills both, one during the session ends both
with 255 and no words; a reader of our output that goes away leaves the command to
finish, its status ours."""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import Sshd, require

CLIENTS = ("ssh", "keytool")
SHOWN = ("requesttty", "forwardagent", "forwardx11", "addressfamily")


def program(client: str) -> list[str]:
    return [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]


@pytest.mark.parametrize(
    "flags",
    [
        "-T -t", "-t -T", "-T -tt", "-tt -T", "-t -T -t", "-tT", "-Tt",
        "-o RequestTTY=yes -t", "-o RequestTTY=force -t", "-t -o RequestTTY=no",
        "-a -A", "-A -a", "-aA", "-x -X", "-X -x", "-x -Y", "-Y -x", "-Ax -aX",
        "-6 -4", "-4 -6",
    ],
)  # fmt: skip
def test_the_last_flag_counts_as_with_ssh(tmp_path: Path, flags: str) -> None:
    env = base_env(HOME=str(tmp_path))
    shown = {}
    for client in CLIENTS:
        done = subprocess.run(
            [*program(client), "-F", "none", *flags.split(), "-G", "somehost"],
            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        shown[client] = [line for line in done.stdout.splitlines() if line.split()[0] in SHOWN]
    assert shown["keytool"] == shown["ssh"]
    assert len(shown["ssh"]) == len(SHOWN)


@pytest.fixture(scope="module")
def login(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The flags that log in to an sshd as root with a key of ours (its port, -p, last:
    a test may give its own instead)."""
    folder = tmp_path_factory.mktemp("session")
    key = keygen(folder / "id", "ed25519")
    with Sshd(folder / "sshd") as server:
        server.authorized_keys.write_text(Path(f"{key}.pub").read_text())
        known = folder / "known_hosts"
        known.write_text(server.known_hosts_line())
        yield ["-F", "none", "-i", str(key), "-o", "IdentitiesOnly=yes",
               "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-p", str(server.port)]  # fmt: skip


def _as_started_by_a_shell() -> None:
    """The signals' default actions (a test runner may ignore some), and no core file
    left by SIGQUIT's."""
    for number in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def start(args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=base_env(), preexec_fn=_as_started_by_a_shell, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


SIGNALS = [signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP]


@pytest.mark.parametrize("number", SIGNALS, ids=lambda n: n.name)
def test_a_signal_during_the_session_as_ssh(login: list[str], number: signal.Signals) -> None:
    """^C (or SIGQUIT...) once the command runs, without a terminal: no words, 255."""
    seen = {}
    for client in CLIENTS:
        process = start([*program(client), *login, "root@127.0.0.1", "echo on; sleep 20"])
        assert process.stdout is not None
        assert process.stdout.readline() == b"on\n"  # logged in, the command running
        process.send_signal(number)
        out, err = process.communicate(timeout=30)
        seen[client] = (process.returncode, out, err)
    assert seen["keytool"] == seen["ssh"]
    assert seen["ssh"] == (255, b"", b"")


@pytest.mark.parametrize("number", SIGNALS, ids=lambda n: n.name)
def test_a_signal_while_connecting_as_ssh(login: list[str], number: signal.Signals) -> None:
    """A server that never answers: the signal ends both clients itself."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    arrived = threading.Semaphore(0)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            arrived.release()

    threading.Thread(target=accept, daemon=True).start()
    port = str(listener.getsockname()[1])
    seen = {}
    try:
        for client in CLIENTS:
            process = start([*program(client), *login[:-2], "-p", port, "127.0.0.1", "true"])
            assert arrived.acquire(timeout=30)  # connected, waiting for the version line
            time.sleep(0.3)
            process.send_signal(number)
            out, err = process.communicate(timeout=30)
            seen[client] = (process.returncode, out, err)
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert seen["keytool"] == seen["ssh"] == (-number, b"", b"")


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_a_reader_gone_while_the_command_runs_on_as_ssh(login: list[str], closed: str) -> None:
    """``ssh host 'echo a; sleep 1; exit 3' | (exec 0<&-; sleep 3)``: the output is no
    longer read, the command ends on its own, its status is the client's."""
    redirect = ">&2" if closed == "stderr" else ""
    command = f"sleep 0.5; echo gone {redirect}; sleep 1; exit 3"
    codes = {}
    for client in CLIENTS:
        process = start([*program(client), *login, "root@127.0.0.1", command])
        assert process.stdout is not None and process.stderr is not None
        getattr(process, closed).close()  # nobody reads it any more
        codes[client] = process.wait(timeout=30)
        other = process.stderr if closed == "stdout" else process.stdout
        assert b"Traceback" not in other.read()
        other.close()
    assert codes["keytool"] == codes["ssh"] == 3

"""Tiny servers on 127.0.0.1 that close the connection before sending any SSH packet:
having sent nothing, only sshd's "Exceeded MaxStartups", only a version line, or an
HTTP answer. The real CLI is run against them: ``keytool exec`` and ``keytool keyscan``
(the blocking driver) and ``keytool copy-id`` (the asyncio one) must say the same
thing, the sans-IO core's, in one line on stderr, and fail; copy-id retries the
dropped connections only."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL
from tests.peers import require

HTTP = b"HTTP/1.1 400 Bad Request\r\n\r\n"
NOT_SSH = (
    "the server sent no SSH version line (28 bytes of something else, then it closed the"
    " connection: is it an SSH server?)"
)
AT_EOF = "connection closed by the server before sending its version line"
IN_KEX = "connection closed by the server during key exchange"
#: what the server sends, and what keytool exec then says (after "keytool: ")
CASES = {
    "nothing": (b"", AT_EOF),
    "max-startups": (b"Exceeded MaxStartups\r\n", f"{AT_EOF} (it said: Exceeded MaxStartups)"),
    "version-line": (b"SSH-2.0-OpenSSH_9.2\r\n", IN_KEX),
    "http": (HTTP, NOT_SSH),
}


@contextmanager
def closing_server(scripts: list[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    """A server on a free port of 127.0.0.1 that sends connection i ``scripts[i]`` (the
    last one to any later connection), then ends its side (end of file) and reads
    what the client sends until the client closes: a clean close, no reset. Yields its
    port and what each connection received."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def one(conn: socket.socket, script: bytes, slot: int) -> None:
        with conn, suppress(OSError):
            conn.settimeout(10)
            conn.sendall(script)
            conn.shutdown(socket.SHUT_WR)
            while data := conn.recv(65536):
                received[slot] += data

    def serve() -> None:
        workers: list[threading.Thread] = []
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            slot = len(received)
            received.append(b"")
            script = scripts[min(slot, len(scripts) - 1)]
            worker = threading.Thread(target=one, args=(conn, script, slot), daemon=True)
            worker.start()
            workers.append(worker)
        for worker in workers:
            worker.join(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], received
    finally:
        stop.set()
        thread.join(15)
        listener.close()


def private_env(home: Path) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE")
    }
    env["HOME"] = str(home)
    return env


OPTIONS = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
]


def run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYTOOL, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=private_env(home),
        timeout=60,
        check=False,
    )


def exec_(port: int, home: Path) -> subprocess.CompletedProcess[str]:
    return run(["exec", "-F", "none", "-p", str(port), *OPTIONS, "127.0.0.1", "--", "true"], home)


def copy_id(port: int, home: Path) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    key = home / "id_ed25519"
    subprocess.run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    return run(["copy-id", "-n", "-i", f"{key}.pub", "-p", str(port), *OPTIONS, "127.0.0.1"], home)


def only_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_exec_says_what_the_server_did(tmp_path: Path, case: str) -> None:
    script, said = CASES[case]
    with closing_server([script]) as (port, received):
        done = exec_(port, tmp_path / "home")
    assert done.returncode == 255, done.stderr
    assert only_line(done) == f"keytool: {said}"
    assert len(received) == 1 and received[0].startswith(b"SSH-2.0-")  # it did talk


def test_keyscan_says_the_same_of_http(tmp_path: Path) -> None:
    with closing_server([HTTP]) as (port, _):
        done = run(["keyscan", "-p", str(port), "127.0.0.1"], tmp_path / "home")
    assert done.returncode != 0
    assert only_line(done) == f"keytool: 127.0.0.1 port {port}: {NOT_SSH}"


def test_exec_and_copy_id_say_the_same_of_http(tmp_path: Path) -> None:
    """The known bug: exec said the server closed "before sending its version line",
    copy-id that it sent no SSH. Both say the latter now, and copy-id does not retry."""
    with closing_server([HTTP]) as (port, received):
        by_exec = exec_(port, tmp_path / "exec")
        by_copy_id = copy_id(port, tmp_path / "copy-id")
    assert by_exec.returncode == 255
    assert by_copy_id.returncode != 0
    assert only_line(by_exec) == f"keytool: {NOT_SSH}"
    assert only_line(by_copy_id) == f"keytool: 127.0.0.1: failed: {NOT_SSH}"
    assert len(received) == 2  # one each: copy-id took the answer as final


def test_copy_id_retries_the_drops_then_reports_the_answer(tmp_path: Path) -> None:
    """Nothing, "Exceeded MaxStartups", a version line: each a dropped connection that
    copy-id tries again; then HTTP, which it reports."""
    scripts = [CASES[case][0] for case in ("nothing", "max-startups", "version-line", "http")]
    with closing_server(scripts) as (port, received):
        done = copy_id(port, tmp_path / "home")
    assert done.returncode != 0
    assert only_line(done) == f"keytool: 127.0.0.1: failed: {NOT_SSH}"
    assert len(received) == 4

"""keytool copy-id against servers that answer, but not with SSH: random bytes instead
of a version line, or a version line and then a flood of IGNORE or DEBUG packets before
closing. Each is the server's answer and fails the host at once, with one line saying
why; only a connection dropped before any packet (nothing said, only sshd's "Exceeded
MaxStartups", or only a version line) is tried again (test_copyid_fleet.py has sshd's
MaxStartups)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.peers import require

KEYTOOL = [sys.executable, "-m", "keytool"]
BANNER = b"SSH-2.0-OpenSSH_9.2\r\n"
#: well under copy-id's 15 s of retries: a server that answers is not retried
PROMPTLY = 5.0


def packet(payload: bytes) -> bytes:
    """An unencrypted binary packet (RFC 4253 §6), padded to a multiple of 8."""
    padding = 8 - (len(payload) + 5) % 8 + 8
    return struct.pack(">IB", len(payload) + padding + 1, padding) + payload + bytes(padding)


def string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def not_ssh() -> bytes:
    # random bytes, none of them a line starting with "SSH-"
    return bytes(b for b in os.urandom(400) if b not in b"S\n")[:200]


SCRIPTS = {
    "garbage": [not_ssh()],
    "ignore-flood": [BANNER] + [packet(b"\x02" + string(os.urandom(100)))] * 3000,
    "debug-flood": [BANNER] + [packet(b"\x04\x01" + string(b"hello") + string(b""))] * 3000,
}


@contextmanager
def hostile_server(
    script: list[bytes], first: list[list[bytes]] | None = None
) -> Iterator[tuple[int, list[int]]]:
    """A server on 127.0.0.1 sending ``script`` to every connection (the scripts of
    ``first`` to the first ones), then closing it; yields its port and the list of
    connections it has had (one item each)."""
    early = list(first or [])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    connections: list[int] = []
    stop = threading.Event()

    def one(conn: socket.socket) -> None:
        with conn, suppress(OSError):
            conn.settimeout(5)
            for data in script:
                conn.sendall(data)
            conn.recv(65536)
            time.sleep(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            connections.append(1)
            if early:
                with conn, suppress(OSError):
                    for data in early.pop(0):
                        conn.sendall(data)
                continue  # closed at once, without reading what came
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], connections
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def copy_id(port: int, home: Path) -> tuple[int, str, str, float]:
    home.mkdir(exist_ok=True)
    key = home / "id_ed25519"
    subprocess.run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env["HOME"] = str(home)
    started = time.monotonic()
    done = subprocess.run(
        [
            *KEYTOOL,
            "copy-id",
            "-n",
            "-i",
            f"{key}.pub",
            "-p",
            str(port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "127.0.0.1",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("garbage", "no SSH version line"),
        ("ignore-flood", "connection closed by the server during key exchange"),
        ("debug-flood", "connection closed by the server during key exchange"),
    ],
)
def test_a_server_that_answers_is_failed_at_once(tmp_path: Path, case: str, cause: str) -> None:
    with hostile_server(SCRIPTS[case]) as (port, connections):
        status, _, err, took = copy_id(port, tmp_path / "home")
    assert status != 0
    assert took < PROMPTLY, f"{took:.1f} s: retried a server that answered"
    assert len(connections) == 1  # not tried again
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "127.0.0.1" in lines[0] and "failed" in lines[0] and cause in lines[0]
    assert "retrying" not in err and "Traceback" not in err


def test_garbage_is_not_called_a_silent_close(tmp_path: Path) -> None:
    """The server sent 200 bytes: not "closed ... before sending its version line"."""
    with hostile_server(SCRIPTS["garbage"]) as (port, _):
        err = copy_id(port, tmp_path / "home")[2]
    assert "200 bytes" in err
    assert "before sending its version line" not in err


def test_a_dropped_connection_is_still_retried(tmp_path: Path) -> None:
    """What sshd does past MaxStartups: closes at once, silently (before 8.6) or after
    "Exceeded MaxStartups" (9.2): tried again, until the server answers."""
    drops = [[], [b"Exceeded MaxStartups\r\n"], [BANNER]]
    with hostile_server(SCRIPTS["garbage"], first=drops) as (port, connections):
        err = copy_id(port, tmp_path / "home")[2]
    assert len(connections) == 4
    assert "no SSH version line" in err

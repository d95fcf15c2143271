"""The agent's decisions at the edges: a sign confirmed after a lock or a removal,
fish's quoting, SSH_AGENT_PID read as strtonum reads it, and the client's time limit,
which a sign (it may wait for a human) does not have."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.daemon import parse_agent_pid, quote
from agent.keyring import Keyring
from agent.server import still_signs
from keytool import agentproto as proto
from keytool.agentclient import AgentClient
from keytool.errors import AgentError
from keytool.keys import generate


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_confirmed_sign_is_checked_again() -> None:
    """What the confirmation thread finds when the human has answered: the key must
    still be there, unexpired, with its constraints, and the agent unlocked."""
    clock = FakeClock()
    ring = Keyring(clock)
    key = generate("ed25519")
    identity = ring.add(key, "k1", confirm=True)
    assert still_signs(ring, identity)

    assert ring.lock(b"pw")
    assert not still_signs(ring, identity)
    assert ring.unlock(b"pw").ok
    assert still_signs(ring, identity)

    ring.remove_all()
    assert not still_signs(ring, identity)

    ring.add(key, "k1", confirm=False)  # added again without its confirm constraint
    assert not still_signs(ring, identity)
    ring.add(key, "again", confirm=True)  # the same constraints: the confirmation holds
    assert still_signs(ring, identity)

    later = ring.add(key, "k1", lifetime=5, confirm=True)
    clock.now += 10  # expired meanwhile
    assert not still_signs(ring, later)


@pytest.mark.parametrize(
    ("path", "fish"),
    [
        ("/tmp/ssh-x/agent.1", "/tmp/ssh-x/agent.1"),
        ("/a b/s", "'/a b/s'"),
        ("/a\\b", "'/a\\\\b'"),
        ("/a\\\\b", "'/a\\\\\\\\b'"),
        ("/it's", "'/it\\'s'"),
        ("/end\\", "'/end\\\\'"),
        ("/$HOME/x!", "'/$HOME/x!'"),
    ],
)
def test_fish_quoting(path: str, fish: str) -> None:
    """fish's single quotes take "\\\\" and "\\'" as escapes, and nothing else."""
    assert quote("fish", path) == fish
    assert quote("sh", "/it's") == "'/it'\"'\"'s'"  # sh's words unchanged


@pytest.mark.parametrize(
    ("text", "pid"), [("6785", 6785), (" \t+6785", 6785), ("\n42", 42), ("0002", 2)]
)
def test_agent_pid_as_strtonum_reads_it(text: str, pid: int) -> None:
    assert parse_agent_pid(text) == pid


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("6_785", "invalid"),
        ("٦٧٨٥", "invalid"),
        ("6785 ", "invalid"),
        ("", "invalid"),
        ("+", "invalid"),
        ("0x10", "invalid"),
        ("1", "too small"),
        ("-5", "too small"),
        ("99999999999999999999", "too large"),
    ],
)
def test_agent_pid_refused_in_ssh_agents_words(text: str, why: str) -> None:
    with pytest.raises(AgentError) as raised:
        parse_agent_pid(text)
    assert str(raised.value) == f'SSH_AGENT_PID="{text}", which is not a good PID: {why}'


LIMIT = 0.2  # the client's time limit in these tests
SLOW = 4 * LIMIT  # how long the fake agent takes to sign


@pytest.fixture
def slow_agent(tmp_path: Path) -> Iterator[Path]:
    """A fake agent that signs only after SLOW seconds (a human confirming) and never
    answers anything else (an agent that hangs)."""
    path = tmp_path / "agent.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(4)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while not stop.is_set():
                header = conn.recv(4)
                if len(header) < 4:
                    return
                payload = conn.recv(int.from_bytes(header, "big"))
                if payload[0] == proto.SSH_AGENTC_SIGN_REQUEST:
                    time.sleep(SLOW)
                    with contextlib.suppress(OSError):  # the client may have given up
                        conn.sendall(proto.framed_sign_response(b"signature"))

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(5)


def test_a_sign_waits_past_the_time_limit(slow_agent: Path) -> None:
    """ssh-add waits as long as the agent asks a human; keytool add gave up after its
    limit (60 s) even then."""
    with AgentClient(str(slow_agent), timeout=LIMIT) as client:
        assert client.sign(b"blob", b"data") == b"signature"


def test_a_list_still_has_the_time_limit(slow_agent: Path) -> None:
    """A request no agent asks a human about: an agent that never answers is not waited
    for forever, even after a sign on the same connection."""
    with AgentClient(str(slow_agent), timeout=LIMIT) as client:
        client.sign(b"blob", b"data")
        started = time.monotonic()
        with pytest.raises(AgentError, match="did not answer in time"):
            client.identities()
        assert time.monotonic() - started < SLOW

"""Hostile and broken clients against keytool's agent: after each, the agent still serves
everyone else correctly (checked with real signatures and with OpenSSH's ssh-add)."""

from __future__ import annotations

import os
import resource
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.keyring import STEP_DELAY
from keytool import agentproto as proto
from keytool.keys import generate
from keytool.keys.base import PrivateKey
from tests.interop.agenthelp import RunningAgent as Agent
from tests.interop.agenthelp import (
    connect,
    keygen_fingerprints,
    keytool_agent,
    make_keys,
    recv_exact,
    roundtrip,
)
from tests.peers import missing, require, run

LIST = bytes([proto.SSH_AGENTC_REQUEST_IDENTITIES])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("advkeys"))


@pytest.fixture(scope="module")
def signer() -> PrivateKey:
    return generate("ed25519")


@pytest.fixture
def agent(tmp_path: Path, keys: dict[str, Path], signer: PrivateKey) -> Iterator[Agent]:
    with keytool_agent(tmp_path / "agent") as running:
        for path in keys.values():
            run([require("ssh-add"), path], env=running.env()).check_returncode()
        with connect(running.sock) as conn:
            add = proto.encode_request(proto.AddIdentity(signer, "raw"))
            assert roundtrip(conn, add) == proto.SUCCESS
        yield running
        assert running.proc.poll() is None, "the agent died"


def assert_serves(agent: Agent, keys: dict[str, Path], signer: PrivateKey) -> None:
    """The agent lists its keys (as ssh-keygen fingerprints them) and signs correctly."""
    listed = run([require("ssh-add"), "-l"], env=agent.env())
    assert listed.stdout.startswith(keygen_fingerprints(list(keys.values())))
    with connect(agent.sock) as conn:
        data = os.urandom(100)
        request = proto.SignRequest(signer.public.to_wire(), data, 0)
        signature = proto.decode_sign_response(roundtrip(conn, proto.encode_request(request)))
        assert signer.public.verify(signature, data)


def closed_by_agent(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


def test_malformed_messages_answer_failure(
    agent: Agent, keys: dict[str, Path], signer: PrivateKey
) -> None:
    blob = signer.public.to_wire()
    garbage = [
        b"\xff",
        b"\x00",
        bytes([proto.SSH_AGENTC_SIGN_REQUEST]) + struct.pack(">I", 1000) + b"abc",
        bytes([proto.SSH_AGENTC_SIGN_REQUEST])
        + proto.encode_request(proto.SignRequest(blob, b"x", 0))[1:]
        + b"trailing",
        bytes([proto.SSH_AGENTC_ADD_IDENTITY]) + b"\x00\x00\x00\x0bssh-ed25519\x00\x00",
        bytes([proto.SSH_AGENTC_ADD_IDENTITY, 0, 0, 0, 7]) + b"ssh-dss" + os.urandom(40),
        bytes([proto.SSH_AGENTC_REMOVE_IDENTITY, 0, 0, 0]),
        bytes([proto.SSH_AGENTC_EXTENSION]) + struct.pack(">I", 2**31),
        bytes([proto.SSH_AGENTC_EXTENSION, 0, 0, 0, 24]) + b"session-bind@openssh.com" + b"\0",
        bytes([proto.SSH_AGENTC_UNLOCK]) + os.urandom(3),
        # an unknown type: a random first byte could be a list or remove-all, which
        # ssh-agent (and keytool) answer whatever follows
        b"\xfe" + os.urandom(4999),
    ]
    with connect(agent.sock) as conn:
        for payload in garbage:
            assert roundtrip(conn, payload) in (proto.FAILURE, proto.EXTENSION_FAILURE)
        # the same connection still works
        assert len(proto.decode_identities(roundtrip(conn, LIST))) == 4
    assert_serves(agent, keys, signer)


def test_malformed_lock_answers_failure_and_keeps_keys(
    agent: Agent, keys: dict[str, Path], signer: PrivateKey
) -> None:
    with connect(agent.sock) as conn:
        assert roundtrip(conn, bytes([proto.SSH_AGENTC_LOCK, 0, 0, 0, 50, 1, 2])) == proto.FAILURE
        assert roundtrip(conn, bytes([proto.SSH_AGENTC_LOCK])) == proto.FAILURE
    assert_serves(agent, keys, signer)  # not locked, nothing lost


def test_oversized_message_drops_only_that_client(
    agent: Agent, keys: dict[str, Path], signer: PrivateKey
) -> None:
    bystander = connect(agent.sock)
    with connect(agent.sock) as big:
        big.sendall(struct.pack(">I", proto.MAX_MESSAGE + 1) + b"\x0b")
        assert closed_by_agent(big)
    with connect(agent.sock) as huge:
        huge.sendall(struct.pack(">I", 0xFFFFFFFF))
        assert closed_by_agent(huge)
    # exactly at the cap is a message like any other
    blob = signer.public.to_wire()
    data = os.urandom(proto.MAX_MESSAGE - (1 + 4 + len(blob) + 4 + 4))
    with connect(agent.sock) as at_cap:
        payload = proto.encode_request(proto.SignRequest(blob, data, 0))
        assert len(payload) == proto.MAX_MESSAGE
        signature = proto.decode_sign_response(roundtrip(at_cap, payload))
        assert signer.public.verify(signature, data)
    with bystander:
        assert len(proto.decode_identities(roundtrip(bystander, LIST))) == 4
    assert_serves(agent, keys, signer)


def test_truncated_messages(agent: Agent, keys: dict[str, Path], signer: PrivateKey) -> None:
    stalled = connect(agent.sock)
    stalled.sendall(struct.pack(">I", 100) + b"\x0d" * 10)  # and then nothing
    with connect(agent.sock) as cut:
        cut.sendall(struct.pack(">I", 100) + b"\x0d" * 10)
        cut.shutdown(socket.SHUT_WR)
        assert closed_by_agent(cut)
    with connect(agent.sock) as header_only:
        header_only.sendall(b"\x00\x00")
        header_only.shutdown(socket.SHUT_WR)
        assert closed_by_agent(header_only)
    assert_serves(agent, keys, signer)  # while one client still stalls mid-message
    stalled.close()
    assert_serves(agent, keys, signer)


def test_slow_drip_client_stalls_nobody(
    agent: Agent, keys: dict[str, Path], signer: PrivateKey
) -> None:
    data = os.urandom(64)
    frame = proto.frame(proto.encode_request(proto.SignRequest(signer.public.to_wire(), data, 0)))
    answer: list[bytes] = []
    drip = connect(agent.sock, timeout=60)

    def trickle() -> None:
        for i in range(len(frame)):
            drip.send(frame[i : i + 1])
            time.sleep(0.01)
        header = recv_exact(drip, 4)
        answer.append(recv_exact(drip, int.from_bytes(header, "big")))

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        served = 0
        while thread.is_alive() and served < 200:
            assert_serves(agent, keys, signer)
            served += 1
        assert served >= 1
    finally:
        thread.join(60)
        drip.close()
    assert signer.public.verify(proto.decode_sign_response(answer[0]), data)


def test_client_of_another_uid_is_refused(
    tmp_path: Path, keys: dict[str, Path], signer: PrivateKey
) -> None:
    if os.geteuid() != 0:
        missing("needs root to act as another user")
        return
    # the socket is normally 0600 in a 0700 folder; open the way so the check that
    # remains is the agent's own peer-credential test
    folder = tmp_path / "open"
    folder.mkdir()
    for parent in [folder, *folder.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o001)
    with keytool_agent(folder) as agent:
        agent.sock.chmod(0o666)
        run([require("ssh-add"), keys["ed25519"]], env=agent.env()).check_returncode()
        pid = os.fork()
        if pid == 0:  # the child: become nobody and ask for the keys
            status = 3
            try:
                os.setgid(65534)
                os.setuid(65534)
                conn = socket.socket(socket.AF_UNIX)
                conn.settimeout(10)
                status = 2
                conn.connect(str(agent.sock))
                status = 1
                try:
                    conn.sendall(proto.frame(LIST))
                    reply = conn.recv(100)
                except (ConnectionResetError, BrokenPipeError):
                    reply = b""
                status = 0 if reply == b"" else 1
            finally:
                os._exit(status)
        _, code = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(code) == 0, "another uid was served (or could not connect)"
        assert "refused a connection from uid 65534" in agent.log_text()
        listed = run([require("ssh-add"), "-l"], env=agent.env())
        assert listed.stdout == keygen_fingerprints([keys["ed25519"]])


def test_a_thousand_concurrent_connections(
    agent: Agent, keys: dict[str, Path], signer: PrivateKey
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    conns = []
    try:
        for _ in range(1000):
            conns.append(connect(agent.sock, timeout=30))
        for conn in conns:
            conn.sendall(proto.frame(LIST))
        expected = None
        for conn in conns:
            header = recv_exact(conn, 4)
            reply = recv_exact(conn, int.from_bytes(header, "big"))
            expected = expected or reply
            assert reply == expected
        assert expected is not None and len(proto.decode_identities(expected)) == 4
        assert_serves(agent, keys, signer)
    finally:
        for conn in conns:
            conn.close()
    assert_serves(agent, keys, signer)


def test_wrong_unlock_holds_back_only_that_client(
    agent: Agent, keys: dict[str, Path], signer: PrivateKey
) -> None:
    """The sixth wrong unlock in a row is answered no sooner than six penalty steps
    after it was sent (ssh-agent's 0.1 s more per failure), and only that client waits:
    another one is answered meanwhile, however long its round trips take."""
    lock = proto.encode_request(proto.Lock(b"right"))
    wrong = proto.frame(proto.encode_request(proto.Unlock(b"wrong")))
    penalty = 6 * STEP_DELAY
    with connect(agent.sock, timeout=60) as guesser, connect(agent.sock, timeout=60) as other:
        assert roundtrip(guesser, lock) == proto.SUCCESS
        for _ in range(5):  # 0.1 s more each time: the next one is 0.6 s
            guesser.sendall(wrong)
            assert recv_exact(guesser, 5) == proto.frame(proto.FAILURE)
        answer: list[tuple[bytes, float]] = []
        waiting = threading.Thread(
            target=lambda: answer.append((recv_exact(guesser, 5), time.monotonic()))
        )
        waiting.start()
        asked = time.monotonic()
        guesser.sendall(wrong)
        served: list[float] = []
        for _ in range(20):
            # locked: an empty list, answered while the guesser waits
            assert proto.decode_identities(roundtrip(other, LIST)) == []
            served.append(time.monotonic())
        waiting.join(30)
        assert answer, "the wrong unlock was never answered"
        reply, answered = answer[0]
        assert reply == proto.frame(proto.FAILURE)
        assert answered - asked >= penalty, answered - asked
        assert served[0] < answered, "nobody else was served while the guesser waited"
        right = proto.encode_request(proto.Unlock(b"right"))
        deadline = time.monotonic() + 30
        while roundtrip(other, right) != proto.SUCCESS:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert_serves(agent, keys, signer)


def test_pkcs11_requests_are_refused(
    agent: Agent, keys: dict[str, Path], signer: PrivateKey
) -> None:
    removed = run([require("ssh-add"), "-e", "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"],
                  env=agent.env())  # fmt: skip
    assert removed.returncode != 0
    with connect(agent.sock) as conn:
        for kind in proto.SMARTCARD_MESSAGES:
            payload = bytes([kind, 0, 0, 0, 4]) + b"/x.so" + b"\0\0\0\0"
            assert roundtrip(conn, payload) == proto.FAILURE
    assert "PKCS#11" in agent.log_text()
    assert_serves(agent, keys, signer)

"""keytool's agent and OpenSSH's ssh-agent given the same requests, side by side: the
same answers, the same keys left, the same words from ssh-add."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from keytool import agentproto as proto
from keytool.keys import generate
from keytool.keys.base import PrivateKey
from tests.interop.agenthelp import (
    KEYTOOL,
    connect,
    keygen_fingerprints,
    keytool_agent,
    make_keys,
    openssh_agent,
    roundtrip,
)
from tests.interop.agenthelp import RunningAgent as Agent
from tests.peers import require, run

Starter = Callable[..., AbstractContextManager[Agent]]
AGENTS: dict[str, Starter] = {
    "ssh-agent": lambda folder, env=None: openssh_agent(folder, env=env),
    "keytool": lambda folder, env=None: keytool_agent(folder, env=env),
}
LIST = bytes([proto.SSH_AGENTC_REQUEST_IDENTITIES])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("paritykeys"))


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate("ed25519")


def _add_constrained(key: PrivateKey, constraints: bytes) -> bytes:
    """ADD_ID_CONSTRAINED with the constraint bytes as given (not checked by us)."""
    plain = proto.encode_request(proto.AddIdentity(key, "parity"))
    return bytes([proto.SSH_AGENTC_ADD_ID_CONSTRAINED]) + plain[1:] + constraints


def _listed(conn: socket.socket) -> int:
    answer = roundtrip(conn, LIST)
    assert answer[0] == proto.SSH_AGENT_IDENTITIES_ANSWER
    return int.from_bytes(answer[1:5], "big")


def _both(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, Agent]]:
    for name, start in AGENTS.items():
        with start(tmp_path / name, env) as agent:
            yield name, agent
            assert agent.proc.poll() is None, f"{name} died"


@pytest.mark.parametrize(
    ("case", "constraints"),
    [
        ("lifetime 0: gone at once", bytes([proto.SSH_AGENT_CONSTRAIN_LIFETIME]) + bytes(4)),
        ("lifetime 100: kept", bytes([proto.SSH_AGENT_CONSTRAIN_LIFETIME]) + (100).to_bytes(4)),
        ("confirm twice: refused", bytes([proto.SSH_AGENT_CONSTRAIN_CONFIRM] * 2)),
        (
            "lifetime twice: refused",
            (bytes([proto.SSH_AGENT_CONSTRAIN_LIFETIME]) + (100).to_bytes(4)) * 2,
        ),
    ],
)
def test_constraints_as_ssh_agent_takes_them(
    tmp_path: Path, key: PrivateKey, case: str, constraints: bytes
) -> None:
    seen: dict[str, tuple[bytes, int]] = {}
    for name, agent in _both(tmp_path):
        with connect(agent.sock) as conn:
            answer = roundtrip(conn, _add_constrained(key, constraints))
            seen[name] = (answer, _listed(conn))
    assert seen["keytool"] == seen["ssh-agent"], case
    assert seen["ssh-agent"][0] in (proto.SUCCESS, proto.FAILURE)


@pytest.mark.parametrize(
    "remove_all",
    [
        bytes([proto.SSH_AGENTC_REMOVE_ALL_IDENTITIES]),
        bytes([proto.SSH_AGENTC_REMOVE_ALL_IDENTITIES, 0]),
        bytes([proto.SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES]),  # SSH-1's, as old ssh-adds send
    ],
    ids=["remove-all", "remove-all-trailing", "ssh1-remove-all"],
)
def test_list_and_remove_all_read_as_ssh_agent_reads_them(
    tmp_path: Path, key: PrivateKey, remove_all: bytes
) -> None:
    """Nothing after the type of a list or remove-all request is read by ssh-agent: a
    trailing byte is no error, and SSH-1's remove-all (9) removes the keys too."""
    seen: dict[str, list[object]] = {}
    for name, agent in _both(tmp_path):
        with connect(agent.sock) as conn:
            roundtrip(conn, proto.encode_request(proto.AddIdentity(key, "p")))
            listed = roundtrip(conn, LIST + b"\0\0")
            answers: list[object] = [listed[:5], roundtrip(conn, remove_all), _listed(conn)]
        seen[name] = answers
    assert seen["keytool"] == seen["ssh-agent"]
    assert seen["ssh-agent"] == [
        bytes([proto.SSH_AGENT_IDENTITIES_ANSWER, 0, 0, 0, 1]),
        proto.SUCCESS,
        0,
    ]


def test_an_empty_lock_password_is_refused(tmp_path: Path, key: PrivateKey) -> None:
    lock = bytes([proto.SSH_AGENTC_LOCK]) + bytes(4)
    unlock = bytes([proto.SSH_AGENTC_UNLOCK]) + bytes(4)
    seen: dict[str, list[object]] = {}
    for name, agent in _both(tmp_path):
        with connect(agent.sock) as conn:
            assert roundtrip(conn, proto.encode_request(proto.AddIdentity(key, "p"))) == (
                proto.SUCCESS
            )
            answers: list[object] = [roundtrip(conn, lock), _listed(conn)]
            answers.append(roundtrip(conn, unlock))
        locked = run([require("ssh-add"), "-l"], env=agent.env())
        answers.append(locked.returncode)
        seen[name] = answers
    assert seen["keytool"] == seen["ssh-agent"]
    assert seen["ssh-agent"][:2] == [proto.FAILURE, 1]  # not locked: the key still listed


def _askpass(folder: Path) -> Path:
    """An SSH_ASKPASS that prints the bytes of answer.txt beside it, as they are."""
    script = folder / "askpass.sh"
    script.write_text(f'#!/bin/sh\ncat "{folder / "answer.txt"}"\n')
    script.chmod(0o755)
    return script


def test_confirm_answers_read_as_ssh_agent_reads_them(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    folder = tmp_path / "ask"
    folder.mkdir()
    env = dict(os.environ, SSH_ASKPASS=str(_askpass(folder)), SSH_ASKPASS_REQUIRE="force")
    answers = [b"", b"\n", b"yes\n", b"YeS", b" yes \n", b"yes\njunk\n", b"yes\rno", b"no\n"]
    answers += [b"y\n", b"yes please\n", "y\u0117s\n".encode()]
    seen: dict[str, list[int]] = {}
    pub = f"{keys['ed25519']}.pub"
    for name, agent in _both(tmp_path, env):
        added = run([require("ssh-add"), "-c", keys["ed25519"]], env=agent.env())
        assert added.returncode == 0, added.stderr
        outcomes = []
        for answer in answers:
            (folder / "answer.txt").write_bytes(answer)
            tested = run([require("ssh-add"), "-T", pub], env=agent.env())
            outcomes.append(tested.returncode)
        seen[name] = outcomes
    assert seen["keytool"] == seen["ssh-agent"]
    assert seen["ssh-agent"][:3] == [0, 0, 0] and seen["ssh-agent"][-1] != 0


def test_foreground_prints_what_ssh_agent_prints(tmp_path: Path) -> None:
    printed: dict[str, str] = {}
    for name, argv in {
        "ssh-agent": [require("ssh-agent"), "-D"],
        "keytool": [*KEYTOOL, "agent", "-D"],
    }.items():
        for shell in ("-s", "-c"):
            sock = tmp_path / f"{name}{shell}.sock"
            proc = subprocess.Popen(
                [*argv, shell, "-a", str(sock)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
            try:
                assert proc.stdout is not None
                lines = [proc.stdout.readline().decode() for _ in range(2)]
            finally:
                proc.terminate()
                proc.wait(10)
            text = "".join(lines).replace(str(sock), "SOCK").replace(str(proc.pid), "PID")
            printed[f"{name}{shell}"] = text
            assert "SSH_AGENT_PID" not in text
    assert printed["keytool-s"] == printed["ssh-agent-s"]
    assert printed["keytool-c"] == printed["ssh-agent-c"]
    assert (
        printed["keytool-s"] == "SSH_AUTH_SOCK=SOCK; export SSH_AUTH_SOCK;\necho Agent pid PID;\n"
    )


@pytest.mark.parametrize("hash_name", ["sha1", "SHA384", "sha512", "Md5"])
def test_every_fingerprint_hash_of_ssh_add(
    tmp_path: Path, keys: dict[str, Path], hash_name: str
) -> None:
    listed: dict[str, str] = {}
    for name, agent in _both(tmp_path):
        run([require("ssh-add"), *keys.values()], env=agent.env()).check_returncode()
        ours = run([*KEYTOOL, "add", "-E", hash_name, "-l"], env=agent.env())
        theirs = run([require("ssh-add"), "-E", hash_name, "-l"], env=agent.env())
        assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr
        assert ours.stdout == theirs.stdout
        listed[name] = theirs.stdout
    assert listed["keytool"] == listed["ssh-agent"]
    expected = keygen_fingerprints(list(keys.values()), hash_name)
    assert listed["keytool"] == expected
    assert expected.split()[1].startswith(hash_name.upper() + ":")


def test_unknown_hash_refused_with_ssh_agents_words(tmp_path: Path) -> None:
    ours = run([*KEYTOOL, "agent", "-E", "sha3", "-a", str(tmp_path / "a.sock")])
    theirs = run([require("ssh-agent"), "-E", "sha3", "-a", str(tmp_path / "b.sock")])
    assert ours.returncode != 0 and theirs.returncode != 0
    assert theirs.stderr.splitlines()[0] in ours.stderr
    assert 'Invalid hash algorithm "sha3"' in ours.stderr and len(ours.stderr.splitlines()) == 1


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1))


def test_unread_answers_keep_the_agent_small_and_serving(tmp_path: Path) -> None:
    """A client that sends 50,000 list requests at once and reads nothing, with keys
    whose list answer is 200 KB: the agent answers one at a time as the client reads,
    so its memory stays put, the others are served, and it stops when told."""
    with keytool_agent(tmp_path / "agent") as agent:
        with connect(agent.sock) as conn:
            for number in range(10):
                add = proto.AddIdentity(generate("ed25519"), f"{number}" * 20000)
                assert roundtrip(conn, proto.encode_request(add)) == proto.SUCCESS
        before = _rss_kib(agent.proc.pid)
        flood = connect(agent.sock)
        try:
            flood.setblocking(False)
            request = (1).to_bytes(4, "big") + LIST
            pending = request * 50000
            deadline = time.monotonic() + 5
            while pending and time.monotonic() < deadline:
                try:
                    pending = pending[flood.send(pending) :]
                except BlockingIOError:
                    time.sleep(0.01)
            time.sleep(1.0)
            grown = _rss_kib(agent.proc.pid) - before
            with connect(agent.sock) as other:
                assert _listed(other) == 10
            assert grown < 64 * 1024, f"the agent grew by {grown} KiB"
            # the flood is answered in order as it reads: whole answers, each of 10 keys
            flood.setblocking(True)
            flood.settimeout(10)
            for _ in range(3):
                assert _listed(flood) == 10
        finally:
            flood.close()
        agent.proc.terminate()
        agent.proc.wait(10)  # SIGTERM is heard: the loop was never stuck


def test_a_comment_that_is_not_utf8_listed_byte_for_byte(tmp_path: Path) -> None:
    """ssh-add of a key whose comment is not UTF-8: both agents hand back the same
    bytes, and keytool add -l prints what ssh-add -l prints."""
    key = tmp_path / "latin"
    comment = b"caf\xe9"
    made = subprocess.run(
        [require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key), "-C", comment],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed: dict[str, bytes] = {}
    for name, agent in _both(tmp_path):
        env = agent.env()
        assert subprocess.run([require("ssh-add"), str(key)], env=env, capture_output=True,
                              timeout=60).returncode == 0  # fmt: skip
        theirs = subprocess.run(
            [require("ssh-add"), "-l"], env=env, capture_output=True, timeout=60
        )
        ours = subprocess.run([*KEYTOOL, "add", "-l"], env=env, capture_output=True, timeout=60)
        assert ours.returncode == theirs.returncode == 0, ours.stderr
        assert ours.stdout == theirs.stdout
        listed[name] = theirs.stdout
    assert listed["keytool"] == listed["ssh-agent"]
    assert listed["keytool"].endswith(b" " + comment + b" (ED25519)\n")

"""A task meeting an error it did not expect: the party it serves fails at once with one
line, nobody else is left waiting, and a shared process goes on.

- the connection-sharing master: a client's message queued behind its session request
  (taken when the channel opens) or a forward path with a NUL costs that client alone,
  side by side with OpenSSH's master where it has the same case;
- copy-id whose input to the install script fails (its -v line cannot be written: the
  stderr file at its size limit) ends at once, the remote file as it was;
- ``Client.exec`` whose input fails raises that error at once, against sshd;
- the agent, keyscan, a copy-id fleet and the client's protocol with an error
  injected where no real trigger exists: one answer, line or row each.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.interop.test_mux_faults import (
    ALIVE_CHECK,
    FWD_LOCAL,
    OPEN_FWD,
    S_ALIVE,
    S_FAILURE,
    S_SESSION_OPENED,
    Raw,
    frame,
    new_session,
    string,
    u32,
)
from tests.peers import Sshd, require, stop_process

PORT_STREAMLOCAL = 0xFFFFFFFE


# ---------------------------------------------------------------- connection sharing


@dataclass
class Shared:
    name: str
    proc: subprocess.Popen[bytes]
    sock: str
    stderr: Path

    def said_since(self, offset: int) -> str:
        return self.stderr.read_bytes()[offset:].decode(errors="replace")


@dataclass
class Masters:
    sshd: Sshd
    keytool: Shared
    openssh: Shared
    folder: str


def _via(sock: str, *args: str) -> subprocess.Popen[str]:
    """OpenSSH's ssh through the master alone (port 1: no connection of its own)."""
    return subprocess.Popen(
        [require("ssh"), "-F", "/dev/null", "-p", "1", "-o", "BatchMode=yes", "-S", sock, *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=base_env(),
    )  # fmt: skip


def _check(master: Shared) -> None:
    assert master.proc.poll() is None, f"the {master.name} master died"
    _, err = _via(master.sock, "-O", "check", "x").communicate(timeout=20)
    assert f"Master running (pid={master.proc.pid})" in err, err


@pytest.fixture(scope="module")
def masters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Masters]:
    folder = tmp_path_factory.mktemp("taskfail")
    server = Sshd(folder / "sshd")
    key = keygen(folder / "id")
    server.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = folder / "known_hosts"
    known.write_text(server.known_hosts_line())
    short = tempfile.mkdtemp(prefix="ktfail-", dir="/tmp")  # a socket path is short
    common = ["-F", "none", "-p", str(server.port), "-i", str(key),
              "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
              "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
              "-o", "StreamLocalBindUnlink=yes"]  # fmt: skip
    started: list[Shared] = []
    with server:
        try:
            for name, program in (("keytool", [*KEYTOOL, "exec"]), ("openssh", [require("ssh")])):
                sock = os.path.join(short, name)
                stderr = folder / f"{name}.err"
                with stderr.open("wb") as err:
                    flags = [*common] if name == "keytool" else ["-F", "/dev/null", *common[2:]]
                    proc = subprocess.Popen(
                        [*program, *flags, "-M", "-S", sock, "-N", "root@127.0.0.1"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                        env=base_env(),
                    )  # fmt: skip
                started.append(Shared(name, proc, sock, stderr))
                deadline = time.monotonic() + 20
                while not os.path.exists(sock):
                    assert proc.poll() is None, stderr.read_text()
                    assert time.monotonic() < deadline, f"the {name} master never listened"
                    time.sleep(0.02)
            yield Masters(server, started[0], started[1], short)
        finally:
            for master in started:
                stop_process(master.proc)  # type: ignore[arg-type]
            shutil.rmtree(short, ignore_errors=True)


def _read_to_end(raw: Raw) -> list[bytes]:
    """Every message until the master closes this client (a timeout fails)."""
    got = []
    while (message := raw.message()) is not None:
        got.append(message)
    return got


@pytest.mark.parametrize("master_name", ["keytool", "openssh"])
@pytest.mark.parametrize(
    "junk",
    [u32(2) + b"xx", frame(u32(OPEN_FWD, 8, 99))],
    ids=["two-byte-message", "forward-type-99"],
)
def test_malformed_message_queued_behind_a_session(
    masters: Masters, master_name: str, junk: bytes
) -> None:
    """The junk waits while the channel opens; then that client is dropped (keytool's
    master with one line), and the other session through the master ends well."""
    master = masters.keytool if master_name == "keytool" else masters.openssh
    offset = master.stderr.stat().st_size
    other = _via(master.sock, "root@127.0.0.1", "sleep 1; echo done")
    null = os.open(os.devnull, os.O_RDWR)
    try:
        with Raw(master.sock) as raw:
            raw.hello()
            # a session that outlasts the test's steps: one that ended at once could be
            # over (and this client let go) before the junk is sent, on a busy machine
            raw.send(frame(new_session(7, b"sleep 1")))
            for _ in range(3):
                raw.pass_fd(null)
            raw.send(junk)
            got = _read_to_end(raw)
    finally:
        os.close(null)
    assert got and got[0][4:12] == u32(S_SESSION_OPENED, 7)
    out, err = other.communicate(timeout=20)
    assert (other.returncode, out) == (0, "done\n"), err
    _check(master)
    if master_name == "keytool":
        said = master.said_since(offset)
        assert "Traceback" not in said, said
        lines = said.splitlines()
        assert len(lines) == 1 and "dropped" in lines[0], said


def test_nul_in_a_forward_path_is_refused(masters: Masters) -> None:
    """-L from a socket path with a NUL (StreamLocalBindUnlink=yes): refused to that
    client; no file made at the path cut at the NUL; the master serves on."""
    master = masters.keytool
    offset = master.stderr.stat().st_size
    cut = os.path.join(masters.folder, "fwd")
    path = f"{cut}\0tail".encode()
    with Raw(master.sock) as raw:
        raw.hello()
        request = u32(OPEN_FWD, 8, FWD_LOCAL) + string(path) + u32(PORT_STREAMLOCAL)
        raw.send(frame(request + string(b"127.0.0.1") + u32(masters.sshd.port)))
        reply = raw.message()
        assert reply is not None and reply[4:12] == u32(S_FAILURE, 8), reply
        assert b"NUL" in reply
        raw.send(frame(u32(ALIVE_CHECK, 9)))  # the same client goes on
        assert raw.message() == frame(u32(S_ALIVE, 9, master.proc.pid))
    assert not os.path.lexists(cut)
    _check(master)
    said = master.said_since(offset)
    assert "Traceback" not in said and len(said.splitlines()) <= 1, said


# ---------------------------------------------------------------- copy-id


def test_copyid_whose_input_fails_ends_at_once(tmp_path: Path) -> None:
    """-v with stderr a file at its size limit (RLIMIT_FSIZE) just as the line before
    the upload is written: the input task fails. copy-id used to wait 120 s for the
    script that waited for that input; now it ends at once, the file unchanged."""
    login = keygen(tmp_path / "login")
    new = keygen(tmp_path / "new")
    login_line = Path(f"{login}.pub").read_bytes()
    with Sshd(tmp_path / "sshd") as server:
        server.authorized_keys.write_bytes(login_line)
        known = tmp_path / "known_hosts"
        known.write_text(server.known_hosts_line())

        def copy_id(target: Path, limit: int | None) -> tuple[int, bytes, float]:
            def limited() -> None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                if limit is not None:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

            stderr = tmp_path / f"err-{limit}"
            started = time.monotonic()
            with stderr.open("wb") as err:
                done = subprocess.run(
                    [*KEYTOOL, "copy-id", "-v", "-F", "none", "-p", str(server.port),
                     "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                     "-o", f"IdentityFile={login}", "-o", "IdentitiesOnly=yes",
                     "-t", str(target), "--no-verify", "-f", "-i", f"{new}.pub",
                     "root@127.0.0.1"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                    env=base_env(HOME=str(tmp_path)), preexec_fn=limited, timeout=150,
                )  # fmt: skip
            assert done.stdout == b"" or limit is None
            return done.returncode, stderr.read_bytes(), time.monotonic() - started

        # where the line before the upload starts, from a run to a twin file
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "keys").write_bytes(login_line)
        status, said, _ = copy_id(tmp_path / "a" / "keys", None)
        assert status == 0, said
        limit = said.index(b"keytool: writing ")
        target = tmp_path / "b" / "keys"
        status, said, took = copy_id(target, limit)
        assert took < 30, f"copy-id took {took:.0f}s"
        assert status != 0
        assert len(said) == limit and said.endswith(f"keys: {len(login_line)} bytes\n".encode()), (
            said[-200:]
        )
        assert target.read_bytes() == login_line
        # the remote script removes its lock and copy when its session ends, which
        # sshd tells it a moment after keytool has gone
        deadline = time.monotonic() + 20
        while sorted(p.name for p in target.parent.iterdir()) != ["keys"]:
            assert time.monotonic() < deadline, sorted(p.name for p in target.parent.iterdir())
            time.sleep(0.05)
        assert target.read_bytes() == login_line


def test_exec_raises_the_input_error_at_once(tmp_path: Path) -> None:
    """``Client.exec`` against sshd: a command reading its stdin; the input callback
    fails; exec raises that error at once, not when the command ends (never)."""
    from keytool.session import ConnectOptions, connect

    key = keygen(tmp_path / "id")
    with Sshd(tmp_path / "sshd") as server:
        server.authorized_keys.write_text(Path(f"{key}.pub").read_text())
        known = tmp_path / "known_hosts"
        known.write_text(server.known_hosts_line())
        options = ConnectOptions(
            host="127.0.0.1", user="root", port=server.port, identity_files=(str(key),),
            identities_only=True, agent=False, batch_mode=True,
            user_known_hosts=(str(known),), global_known_hosts=(), timeout=20,
        )  # fmt: skip

        class Boom(Exception):
            pass

        calls = 0

        async def stdin() -> bytes:
            nonlocal calls
            calls += 1
            if calls == 1:
                return b"first\n"
            raise Boom("no more input")

        async def scenario() -> float:
            client = await connect(options)
            try:
                started = time.monotonic()
                with pytest.raises(Boom):
                    await asyncio.wait_for(client.exec("cat; sleep 60", stdin), 30)
                took = time.monotonic() - started
                # the connection serves on
                result = await asyncio.wait_for(client.run("echo again"), 30)
                assert result.stdout == b"again\n"
                return took
            finally:
                await client.close()

        assert asyncio.run(scenario()) < 10


# ---------------------------------------------------------------- injected errors


def test_agent_answers_failure_on_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The request whose handling raises gets SSH_AGENT_FAILURE and one log line; the
    same client and another are served on."""
    from agent import server as agent_server
    from agent.keyring import Keyring
    from keytool import agentproto as proto

    real = agent_server.handle_request
    failures = [RuntimeError("a bug"), MemoryError()]

    def flaky(keyring: Keyring, session: agent_server.Session, payload: bytes) -> object:
        if failures:
            raise failures.pop(0)
        return real(keyring, session, payload)

    monkeypatch.setattr(agent_server, "handle_request", flaky)
    path = str(tmp_path / "agent.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    ask = frame(bytes((proto.SSH_AGENTC_REQUEST_IDENTITIES,)))

    async def scenario() -> list[bytes]:
        served = agent_server.AgentServer(Keyring(time.monotonic), listener, sign_threads=0)
        await served.start()
        loop = asyncio.get_running_loop()
        answers = []
        clients = [socket.socket(socket.AF_UNIX) for _ in range(2)]
        try:
            for client in clients:
                client.setblocking(False)
                await loop.sock_connect(client, path)
            for client in (clients[0], clients[0], clients[1], clients[0]):
                await loop.sock_sendall(client, ask)
                answers.append(await asyncio.wait_for(loop.sock_recv(client, 100), 10))
        finally:
            for client in clients:
                client.close()
            listener.close()
        return answers

    with caplog.at_level(logging.ERROR, logger="keytool.agent"):
        answers = asyncio.run(scenario())
    failure = frame(proto.FAILURE)
    empty = frame(bytes((proto.SSH_AGENT_IDENTITIES_ANSWER,)) + u32(0))
    assert answers == [failure, failure, empty, empty]
    logged = [r.getMessage() for r in caplog.records if r.name == "keytool.agent"]
    assert len(logged) == 2, logged
    assert "RuntimeError" in logged[0] and "a bug" not in logged[0]
    assert "out of memory" in logged[1]


def test_keyscan_host_with_an_internal_error_is_one_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from keytool import tcp
    from keytool.cli import keyscan

    def broken(*args: object, **kwargs: object) -> socket.socket:
        raise RuntimeError("a bug")

    monkeypatch.setattr(tcp, "connect", broken)
    found = keyscan._scan(
        ("192.0.2.1", ""), 22, ["ed25519"], False, 1.0, True, keyscan._known_hosts_line, False
    )
    assert found.found == 0 and found.lines == ""
    assert found.notes == "keytool: 192.0.2.1 port 22: internal error: RuntimeError: a bug\n"


def test_fleet_host_with_an_internal_error_is_its_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from keytool import fleet
    from keytool.copyid import Job
    from keytool.copyid_host import HostResult
    from keytool.options import Prompts
    from keytool.session import ConnectOptions

    async def run_host(destination: str, *args: object, **kwargs: object) -> HostResult:
        if destination == "bad":
            raise ValueError("a bug")
        if destination == "hungry":
            raise MemoryError
        await asyncio.sleep(0.05)
        return HostResult(destination, "installed", "fine")

    monkeypatch.setattr(fleet, "run_host", run_host)
    options = ConnectOptions(host="x", user="u")
    targets = [fleet.Target(name, options) for name in ("good", "bad", "hungry", "fine")]
    results = asyncio.run(fleet.run_fleet(targets, Job(keys=()), prompts=Prompts(True)))
    assert [(r.destination, r.status, r.detail) for r in results] == [
        ("good", "installed", "fine"),
        ("bad", "failed", "internal error: ValueError: a bug"),
        ("hungry", "failed", "out of memory"),
        ("fine", "installed", "fine"),
    ]
    assert "internal error: ValueError: a bug" in fleet.summary(results)


def test_client_protocol_reports_an_internal_error() -> None:
    """An error the transport did not expect reaches the waiters as a KeytoolError
    naming it, the connection closed; not asyncio's "Fatal error" traceback."""
    from keytool.client import _Protocol
    from keytool.errors import KeytoolError

    class Broken:
        def receive_data(self, data: bytes) -> list[object]:
            raise RuntimeError("a bug")

        def data_to_send(self) -> bytes:
            raise AssertionError("nothing is sent after an unexpected error")

    class Transport:
        closed = False

        def close(self) -> None:
            self.closed = True

    async def scenario() -> tuple[KeytoolError | None, bool]:
        protocol = _Protocol(Broken())  # type: ignore[arg-type]
        transport = Transport()
        protocol.transport = transport  # type: ignore[assignment]
        protocol.data_received(b"x")
        return protocol.error, transport.closed

    error, closed = asyncio.run(scenario())
    assert isinstance(error, KeytoolError)
    assert "internal error: RuntimeError: a bug" in str(error)
    assert closed

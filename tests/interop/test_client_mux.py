"""Connection sharing (ControlMaster, ControlPath, ControlPersist; ssh's -M, -S and -O,
OpenSSH's PROTOCOL.mux), keytool and OpenSSH's ssh side by side, each as the master
and as a client of the other's master, against sshd: what a command printed and
returned through the master, the bytes through the forwards it was asked for, sshd's
log counting the TCP connections (one for every session shared), the master's pid as
``-O check`` tells it and its end after ``-O exit`` or ControlPersist's time."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import IO

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, hello_service, keygen, run_stdin_open
from tests.interop.test_client_forward import EchoService, round_trip
from tests.interop.test_client_terminal import OnTerminal, set_size
from tests.interop.transport_helpers import alive
from tests.peers import Sshd, free_port, require

CLIENTS = ("ssh", "keytool")
#: (master, client): each of ssh and keytool serving each of them
PAIRS = [(master, client) for master in CLIENTS for client in CLIENTS]
HOST = "root@127.0.0.1"
TIMEOUT = 30


def gone(pid: int) -> bool:
    return not alive(pid)


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def said(result: subprocess.CompletedProcess[bytes]) -> str:
    """stderr as text, without keytool's prefix and with ssh's "\\r\\n" as "\\n"."""
    text = result.stderr.decode(errors="replace").replace("\r\n", "\n")
    return "".join(line.removeprefix("keytool: ") for line in text.splitlines(keepends=True))


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:  # the listener closed as we connected: try again
        return False


def socks_round_trip(port: int, target: int, payload: bytes) -> bytes:
    """Through a SOCKS5 proxy on ``port`` to 127.0.0.1:target, ``payload`` and back."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert sock.recv(2) == b"\x05\x00"
        address = socket.inet_aton("127.0.0.1") + struct.pack(">H", target)
        sock.sendall(b"\x05\x01\x00\x01" + address)
        reply = b""
        while len(reply) < 10:
            chunk = sock.recv(10 - len(reply))
            assert chunk, reply
            reply += chunk
        assert reply[:2] == b"\x05\x00", reply

        def send() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        back = bytearray()
        while data := sock.recv(1 << 16):
            back += data
        sender.join()
    return bytes(back)


class Bench:
    """sshd, a key it takes, known_hosts, a short folder for the control sockets, and
    the masters started (stopped at the end: -O exit, then by their pid)."""

    def __init__(self, server: Sshd, key: Path, known: Path, sockets: Path) -> None:
        self.server = server
        self.key = key
        self.known = known
        self.sockets = sockets
        self.masters: list[tuple[Path, int]] = []

    def program(self, client: str) -> list[str]:
        base = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
        return [*base, "-F", "none", "-p", str(self.server.port), "-i", str(self.key),
                "-o", f"UserKnownHostsFile={self.known}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]  # fmt: skip

    def argv(self, client: str, *flags: str, command: str | None = None) -> list[str]:
        args = [*self.program(client), *flags, HOST]
        return args if command is None else [*args, command]

    def run(
        self,
        client: str,
        *flags: str,
        command: str | None = None,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            self.argv(client, *flags, command=command),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            env=dict(env) if env is not None else base_env(),
            timeout=timeout,
            check=False,
        )

    def connections(self) -> int:
        """TCP connections sshd took so far."""
        return self.server.log.read_text(errors="replace").count("Connection from ")

    def socket_path(self, name: str) -> Path:
        return self.sockets / name

    def start_master(
        self, client: str, path: Path, *flags: str, env: Mapping[str, str] | None = None
    ) -> int:
        """``-M -S path -f -N``: the master in the background; its pid."""
        done = self.run(client, "-M", "-S", str(path), "-f", "-N", *flags, env=env)
        assert (done.returncode, done.stdout, done.stderr) == (0, b"", b""), done.stderr
        return self.track(path)

    def track(self, path: Path) -> int:
        """The pid of the master at ``path`` (ssh -O check), stopped at the end."""
        assert wait_for(path.exists), f"no master at {path}"
        check = self.run("ssh", "-S", str(path), "-O", "check")
        found = re.fullmatch(rb"Master running \(pid=(\d+)\)\r\n", check.stderr)
        assert check.returncode == 0 and found, check.stderr
        pid = int(found[1])
        self.masters.append((path, pid))
        return pid

    def found(self, path: Path) -> int:
        """The pid of the master at ``path``, found without asking it (an ``-O check``
        might come too late for a master about to end): the one process whose command
        line (or ssh's title for its master, "ssh: PATH [mux]") names the path, the
        client that started it having ended. Stopped at the end."""
        named = re.compile(re.escape(str(path).encode()) + rb"(?:[\0 ]|$)")
        pids = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and named.search((entry / "cmdline").read_bytes()):
                    pids.append(int(entry.name))
            except OSError:
                pass
        assert len(pids) == 1, f"not one master at {path}: {pids}"
        self.masters.append((path, pids[0]))
        return pids[0]

    def _ours(self, pid: int) -> bool:
        try:
            return str(self.sockets).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    def close(self) -> None:
        for path, pid in reversed(self.masters):
            if not alive(pid):
                continue
            if path.exists():
                done = self.run("ssh", "-S", str(path), "-O", "exit", timeout=10)
                if done.returncode == 0 and wait_for(partial(gone, pid), 5):
                    continue
            for number in (signal.SIGTERM, signal.SIGKILL):
                if not alive(pid) or not self._ours(pid):
                    break
                os.kill(pid, number)
                wait_for(partial(gone, pid), 5)


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    key = keygen(tmp_path / "id_ed25519")
    options = {"LogLevel": "VERBOSE", "AcceptEnv": "KT_*"}
    server = Sshd(tmp_path / "sshd", options, host_key_types=("ed25519",))
    server.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    # tmp_path is too long for a socket path (sun_path holds 108 bytes)
    sockets = Path(tempfile.mkdtemp(prefix="mx", dir="/tmp"))
    bench = Bench(server, key, known, sockets)
    try:
        with server:
            try:
                yield bench
            finally:
                bench.close()
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture
def echo() -> Iterator[EchoService]:
    service = EchoService()
    yield service
    service.close()


# ---- sessions through a master


@pytest.mark.parametrize("master", CLIENTS)
def test_sessions_through_a_master(bench: Bench, master: str) -> None:
    """A command's output and status, megabytes of stdin and stdout, -n: the same
    through ssh's master and keytool's, for ssh and keytool as clients, over the
    master's one TCP connection; -O check names the master's pid."""
    path = bench.socket_path("m")
    pid = bench.start_master(master, path)
    assert f"-S\0{path}\0".encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    connections = bench.connections()
    payload = os.urandom(2 * 1024 * 1024 + 123)
    digest = hashlib.sha256(payload).hexdigest()
    done: dict[str, list[tuple[int, bytes, bytes]]] = {}
    for client in CLIENTS:
        shown = done.setdefault(client, [])
        for command in ("echo out; echo err >&2; exit 7", "kill -9 $$"):
            result = bench.run(client, "-S", str(path), command=command)
            shown.append((result.returncode, result.stdout, result.stderr))
        echoed = bench.run(client, "-S", str(path), command="cat", stdin=payload)
        assert (echoed.returncode, echoed.stderr) == (0, b"")
        assert echoed.stdout == payload, (client, len(echoed.stdout))
        summed = bench.run(client, "-S", str(path), command="sha256sum", stdin=payload)
        assert (summed.returncode, summed.stdout) == (0, f"{digest}  -\n".encode())
        for flags, stdin in ((("-n",), b"not to be read\n"), ((), None)):
            counted = bench.run(client, "-S", str(path), *flags, command="wc -c", stdin=stdin)
            shown.append((counted.returncode, counted.stdout, counted.stderr))
        check = bench.run(client, "-S", str(path), "-O", "check")
        shown.append((check.returncode, check.stdout, check.stderr))
    assert done["keytool"] == done["ssh"]
    assert done["ssh"] == [
        (7, b"out\n", b"err\n"),
        (255, b"", b""),  # a signal: no exit status from the master
        (0, b"0\n", b""),
        (0, b"0\n", b""),
        (0, b"", f"Master running (pid={pid})\r\n".encode()),
    ]
    assert bench.connections() == connections  # every session on the master's connection


@pytest.mark.parametrize("master", CLIENTS)
def test_forwards_through_a_master(bench: Bench, master: str) -> None:
    """-O forward -L and -R (port 0: the port on stdout), the bytes through them,
    -O cancel (then refused), and -W through the master, for both clients."""
    path = bench.socket_path("m")
    bench.start_master(master, path)
    connections = bench.connections()
    services = {client: EchoService() for client in CLIENTS}
    try:
        payload = os.urandom(256 * 1024)
        done: dict[str, list[tuple[int, bytes, str]]] = {}
        for client in CLIENTS:
            target = services[client].port
            shown = done.setdefault(client, [])
            local = free_port()
            spec = f"{local}:127.0.0.1:{target}"
            added = bench.run(client, "-S", str(path), "-O", "forward", "-L", spec)
            shown.append((added.returncode, added.stdout, said(added)))
            assert round_trip(local, payload) == payload
            asked = bench.run(
                client, "-S", str(path), "-O", "forward", "-R", f"0:127.0.0.1:{target}"
            )
            assert asked.returncode == 0 and re.fullmatch(rb"[1-9]\d*\n", asked.stdout), asked
            remote = int(asked.stdout)
            shown.append((asked.returncode, b"", said(asked)))
            assert round_trip(remote, payload) == payload
            stdio = bench.run(client, "-S", str(path), "-W", f"127.0.0.1:{target}", stdin=payload)
            assert stdio.stdout == payload, (client, len(stdio.stdout))
            shown.append((stdio.returncode, b"", said(stdio)))
            cancelled = bench.run(client, "-S", str(path), "-O", "cancel", "-L", spec)
            shown.append((cancelled.returncode, cancelled.stdout, said(cancelled)))
            assert wait_for(partial(refused, local), 20)
            spec = f"0:127.0.0.1:{target}"
            cancelled = bench.run(client, "-S", str(path), "-O", "cancel", "-R", spec)
            shown.append((cancelled.returncode, cancelled.stdout, said(cancelled)))
            assert wait_for(partial(refused, remote), 20)
        assert done["keytool"] == done["ssh"]
        assert done["ssh"] == [(0, b"", "")] * 5
        for service in services.values():
            assert [data for data in service.received if data] == [payload] * 3
    finally:
        for service in services.values():
            service.close()
    assert bench.connections() == connections


@pytest.mark.parametrize(
    ("master", "client"),
    PAIRS,
)
def test_dynamic_forward_through_a_master(
    bench: Bench, echo: EchoService, master: str, client: str
) -> None:
    path = bench.socket_path("m")
    bench.start_master(master, path)
    port = free_port()
    added = bench.run(client, "-S", str(path), "-O", "forward", "-D", str(port))
    assert (added.returncode, added.stdout, said(added)) == (0, b"", "")
    payload = os.urandom(64 * 1024)
    assert socks_round_trip(port, echo.port, payload) == payload
    cancelled = bench.run(client, "-S", str(path), "-O", "cancel", "-D", str(port))
    assert (cancelled.returncode, cancelled.stdout, said(cancelled)) == (0, b"", "")
    assert wait_for(lambda: refused(port), 20)


@pytest.mark.parametrize(
    ("master", "client"),
    PAIRS,
)
def test_remote_dynamic_forward_through_a_master(
    bench: Bench, echo: EchoService, master: str, client: str
) -> None:
    """-O forward -R PORT (no target): a SOCKS proxy at the server's port, reaching a
    service on our side; -R 0 the same at a port the server picks (on stdout); -O
    cancel stops each."""
    path = bench.socket_path("m")
    bench.start_master(master, path)
    port = free_port()
    added = bench.run(client, "-S", str(path), "-O", "forward", "-R", str(port))
    assert (added.returncode, added.stdout, said(added)) == (0, b"", "")
    picked = bench.run(client, "-S", str(path), "-O", "forward", "-R", "0")
    assert picked.returncode == 0 and re.fullmatch(rb"[1-9]\d*\n", picked.stdout), picked
    allocated = int(picked.stdout)
    payload = os.urandom(64 * 1024)
    for listening in (port, allocated):
        assert socks_round_trip(listening, echo.port, payload) == payload
    for spec, listening in ((str(port), port), ("0", allocated)):
        cancelled = bench.run(client, "-S", str(path), "-O", "cancel", "-R", spec)
        assert (cancelled.returncode, cancelled.stdout, said(cancelled)) == (0, b"", "")
        assert wait_for(partial(refused, listening), 20), spec
    assert [data for data in echo.received if data] == [payload] * 2


@pytest.mark.parametrize("master", CLIENTS)
def test_forwards_given_with_a_session(bench: Bench, echo: EchoService, master: str) -> None:
    """-L with a command, and -L with -N, through the master: the forward is the
    master's and stays after the client is gone."""
    path = bench.socket_path("m")
    bench.start_master(master, path)
    done = {}
    for client in CLIENTS:
        with_command, alone = free_port(), free_port()
        ran = bench.run(client, "-S", str(path), "-L", f"{with_command}:127.0.0.1:{echo.port}",
                        command="echo ran")  # fmt: skip
        quiet = bench.run(client, "-S", str(path), "-N", "-L", f"{alone}:127.0.0.1:{echo.port}")
        for port in (with_command, alone):
            assert round_trip(port, b"through the master") == b"through the master"
        done[client] = [(r.returncode, r.stdout, said(r)) for r in (ran, quiet)]
    assert done["keytool"] == done["ssh"] == [(0, b"ran\n", ""), (0, b"", "")]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("master", CLIENTS)
def test_exit_and_stop(bench: Bench, master: str, client: str) -> None:
    """-O exit: ssh's words, the socket removed and the master gone; -O stop: its
    words, the socket removed, no more clients."""
    path = bench.socket_path("x")
    pid = bench.start_master(master, path)
    done = bench.run(client, "-S", str(path), "-O", "exit")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"Exit request sent.\r\n")
    assert wait_for(lambda: not path.exists(), 20)
    assert wait_for(partial(gone, pid), 20)
    path = bench.socket_path("s")
    pid = bench.start_master(master, path)
    done = bench.run(client, "-S", str(path), "-O", "stop")
    assert (done.returncode, done.stdout, done.stderr) == (
        0, b"", b"Stop listening request sent.\r\n"
    )  # fmt: skip
    assert wait_for(lambda: not path.exists(), 20)
    after = bench.run(client, "-S", str(path), "-O", "check")
    assert (after.returncode, said(after)) == (
        255, f"Control socket connect({path}): No such file or directory\n"
    )  # fmt: skip


@pytest.mark.parametrize("master", CLIENTS)
def test_a_local_forward_asked_twice(bench: Bench, echo: EchoService, master: str) -> None:
    """The same -L or -D again (by ssh's client): the master has it already, and says
    it is done."""
    path = bench.socket_path("m")
    bench.start_master(master, path)
    local, dynamic = free_port(), free_port()
    for spec in (["-L", f"{local}:127.0.0.1:{echo.port}"], ["-D", str(dynamic)]):
        for _ in range(2):
            done = bench.run("ssh", "-S", str(path), "-O", "forward", *spec)
            assert (done.returncode, done.stdout, done.stderr) == (0, b"", b""), spec
    assert round_trip(local, b"once") == b"once"
    assert socks_round_trip(dynamic, echo.port, b"twice") == b"twice"


@pytest.mark.parametrize("master", CLIENTS)
def test_a_remote_forward_asked_twice(bench: Bench, echo: EchoService, master: str) -> None:
    path = bench.socket_path("m")
    bench.start_master(master, path)
    fixed = ["-S", str(path), "-O", "forward", "-R", f"{free_port()}:127.0.0.1:{echo.port}"]
    first, second = bench.run("ssh", *fixed), bench.run("ssh", *fixed)
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    any_port = ["-S", str(path), "-O", "forward", "-R", f"0:127.0.0.1:{echo.port}"]
    first, second = bench.run("ssh", *any_port), bench.run("ssh", *any_port)
    assert first.returncode == 0 and first.stdout == second.stdout, second.stderr


@pytest.mark.parametrize("master", CLIENTS)
def test_different_remote_forwards_are_told_apart(
    bench: Bench, echo: EchoService, master: str
) -> None:
    """Two -R, two -D and a -R 0 added to a master each get their own listener; a
    cancel of one never made leaves them all (as ssh's master does)."""
    path = bench.socket_path("m")
    bench.start_master(master, path)
    remote = [free_port(), free_port()]
    dynamic = [free_port(), free_port()]
    specs = [["-R", f"{port}:127.0.0.1:{echo.port}"] for port in remote]
    specs += [["-D", f"127.0.0.1:{port}"] for port in dynamic]
    for spec in specs:
        done = bench.run("ssh", "-S", str(path), "-O", "forward", *spec)
        assert (done.returncode, done.stderr) == (0, b""), (spec, done.stderr)
    any_port = bench.run("ssh", "-S", str(path), "-O", "forward", "-R", f"0:127.0.0.1:{echo.port}")
    allocated = int(any_port.stdout)
    assert any_port.returncode == 0 and allocated not in remote
    never = ["-R", f"{free_port()}:127.0.0.1:{echo.port}"]
    cancel = bench.run("ssh", "-S", str(path), "-O", "cancel", *never)
    assert cancel.returncode == 0, cancel.stderr
    for port in (*remote, allocated):
        assert round_trip(port, b"remote") == b"remote"
    for port in dynamic:
        assert socks_round_trip(port, echo.port, b"socks") == b"socks"


#: with -v, what each client says of a message it reads in its loop once logged in (sshd
#: sends its host keys' list after every login): ssh's signal handlers are in place then
IN_THE_LOOP = {
    "ssh": b"client_input_global_request: rtype hostkeys-00@openssh.com",
    "keytool": b"host keys: the server listed its host keys",
}


def read_until(stream: IO[bytes] | None, marker: bytes, timeout: float = 20) -> bytes:
    """What came on ``stream`` up to and with ``marker`` (perhaps a little more), read
    unbuffered so that a communicate() after gets the rest."""
    assert stream is not None
    fd = stream.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"never saw {marker!r} in {seen!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"the stream ended before {marker!r}: {seen!r}"
            seen += chunk
    return seen


@pytest.fixture
def default_sighup() -> Iterator[None]:
    """Clients started with SIGHUP's default action, whatever the test runner had (an
    ignored SIGHUP, as under nohup, is inherited, and ssh then keeps ignoring it)."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.usefixtures("default_sighup")
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("master", CLIENTS)
def test_a_master_ended_by_a_signal_removes_its_socket(
    bench: Bench, master: str, number: signal.Signals
) -> None:
    path = bench.socket_path("m")
    pid = bench.start_master(master, path)
    os.kill(pid, number)
    assert wait_for(partial(gone, pid))
    assert not path.exists()
    # so the next master takes the path, and shares
    bench.start_master(master, path)
    done = bench.run("ssh", "-S", str(path), command="echo shared")
    assert (done.returncode, done.stdout) == (0, b"shared\n")


@pytest.mark.usefixtures("default_sighup")
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("flags", [("-N",), ()])
def test_status_after_a_signal_as_ssh(
    bench: Bench, flags: tuple[str, ...], number: signal.Signals
) -> None:
    """ssh 9.2's status when SIGTERM or SIGHUP ends it: 255, but 0 for SIGTERM with -N."""
    codes = {}
    for client in CLIENTS:
        command = None if flags else "echo up; sleep 30"
        process = subprocess.Popen(
            bench.argv(client, *flags, *(("-v",) if flags else ()), command=command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=base_env(),
        )
        # logged in and in the client's loop (sshd's log tells of the login before the
        # client is done with it): the command's output came, or with -N the client
        # told of the server's host key list, which it reads in that loop
        if flags:
            seen, early = b"", read_until(process.stderr, IN_THE_LOOP[client])
        else:
            seen, early = read_until(process.stdout, b"up\n"), b""
        process.send_signal(number)
        out, err = process.communicate(timeout=TIMEOUT)
        codes[client] = (process.returncode, seen + out)
        assert b"Traceback" not in early + err
    assert codes["keytool"] == codes["ssh"]
    assert codes["ssh"][0] == (0 if flags and number == signal.SIGTERM else 255)


def test_an_ignored_sighup_stays_ignored_as_with_ssh(bench: Bench) -> None:
    """nohup keytool exec HOST CMD: a hangup does not end it, as it does not end ssh
    (which keeps a signal ignored when it started ignored); keytool's handler took it
    over and ended the command."""
    outputs = {}
    for client in CLIENTS:
        process = subprocess.Popen(
            bench.argv(client, command="sleep 2; echo finished"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=base_env(),
            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
        )
        assert wait_for(lambda: "Accepted publickey" in bench.server.log.read_text(), 20)
        time.sleep(0.3)
        process.send_signal(signal.SIGHUP)
        out, err = process.communicate(timeout=TIMEOUT)
        assert b"Traceback" not in err
        outputs[client] = (process.returncode, out)
        bench.server.log.write_text("")
    assert outputs["keytool"] == outputs["ssh"] == (0, b"finished\n")


@pytest.mark.parametrize("client", CLIENTS)
def test_cancel_of_a_forward_not_there(bench: Bench, client: str) -> None:
    path = bench.socket_path("m")
    bench.start_master("ssh", path)
    port = free_port()
    done = bench.run(client, "-S", str(path), "-O", "cancel", "-L", f"{port}:127.0.0.1:9")
    assert "port not forwarded" in said(done)
    assert (done.returncode, done.stdout) == (0, b"")


@pytest.mark.parametrize("client", CLIENTS)
def test_remote_forward_to_port_0_with_a_session(
    bench: Bench, echo: EchoService, client: str
) -> None:
    path = bench.socket_path("m")
    bench.start_master("ssh", path)
    done = bench.run(client, "-S", str(path), "-R", f"0:127.0.0.1:{echo.port}", command="echo ran")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"ran\n", b"")


# ---- the environment of a shared session


@pytest.mark.parametrize("master", CLIENTS)
def test_environment_of_a_shared_session(bench: Bench, master: str) -> None:
    """The client's variables that both its SendEnv and the master's let through and
    its SetEnv, and the master's SetEnv."""
    path = bench.socket_path("m")
    bench.start_master(master, path, "-o", "SetEnv=KT_MASTER=m", "-o", "SendEnv=KT_*")
    env = base_env(KT_CLIENT="c", KT_OTHER="o")
    done = {}
    for client in CLIENTS:
        result = bench.run(client, "-S", str(path), "-o", "SendEnv=KT_CLIENT",
                           "-o", "SetEnv=KT_CSET=s", command="env | grep ^KT_ | sort",
                           env=env)  # fmt: skip
        done[client] = (result.returncode, result.stdout, result.stderr)
    assert done["keytool"] == done["ssh"] == (0, b"KT_CLIENT=c\nKT_CSET=s\nKT_MASTER=m\n", b"")


@pytest.mark.parametrize("client", CLIENTS)
def test_setenv_with_control_persist(bench: Bench, client: str) -> None:
    path = bench.socket_path("p")
    done = bench.run(client, "-o", "ControlMaster=auto", "-o", f"ControlPath={path}",
                     "-o", "ControlPersist=30", "-o", "SetEnv=KT_FOO=bar",
                     command='echo "[$KT_FOO]"')  # fmt: skip
    bench.track(path)
    assert (done.returncode, done.stdout) == (0, b"[bar]\n"), done.stderr


# ---- ControlMaster auto, ControlPersist


@pytest.mark.parametrize("first", CLIENTS)
def test_auto_master_persists(bench: Bench, first: str) -> None:
    """ControlMaster auto with ControlPersist: the first run (keytool's or ssh's)
    connects and leaves a master at ControlPath %C; the next runs, either client's, go
    through it (no new TCP connection); both see it with -O check; -O exit ends it."""
    options = ["-o", "ControlMaster=auto", "-o", f"ControlPath={bench.sockets}/%C",
               "-o", "ControlPersist=30"]  # fmt: skip
    connections = bench.connections()
    payload = os.urandom(1024 * 1024)
    opened = bench.run(first, *options, command="cat; echo first >&2; exit 3", stdin=payload)
    assert (opened.returncode, opened.stderr) == (3, b"first\n")
    assert opened.stdout == payload
    assert bench.connections() == connections + 1
    [path] = list(bench.sockets.iterdir())
    assert stat.S_ISSOCK(path.stat().st_mode) and len(path.name) == 40  # %C: a SHA-1 in hex
    pid = bench.track(path)
    done = {}
    for client in CLIENTS:
        result = bench.run(client, *options, command="echo again")
        check = bench.run(client, *options, "-O", "check")
        done[client] = [(r.returncode, r.stdout, r.stderr) for r in (result, check)]
    assert done["keytool"] == done["ssh"] == [
        (0, b"again\n", b""), (0, b"", f"Master running (pid={pid})\r\n".encode())
    ]  # fmt: skip
    assert bench.connections() == connections + 1
    ended = bench.run("keytool" if first == "ssh" else "ssh", *options, "-O", "exit")
    assert (ended.returncode, ended.stderr) == (0, b"Exit request sent.\r\n")
    assert wait_for(lambda: not path.exists(), 20)
    assert wait_for(partial(gone, pid), 20)


@pytest.mark.parametrize("client", CLIENTS)
def test_control_persist_times_out(bench: Bench, client: str) -> None:
    """ControlPersist=5: the master left behind ends by itself once idle that long."""
    path = bench.socket_path("p")
    options = ["-o", "ControlMaster=auto", "-o", f"ControlPath={path}", "-o", "ControlPersist=5"]
    done = bench.run(client, *options, command="echo once")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"once\n", b"")
    # its idle time runs from the session's end: its pid taken from /proc at once, not
    # from an -O check that a loaded machine might start after the master has gone
    pid = bench.found(path)
    assert wait_for(lambda: not path.exists(), 30)
    assert wait_for(partial(gone, pid), 20)


@pytest.mark.parametrize("stale", ["file", "socket"])
@pytest.mark.parametrize("client", CLIENTS)
def test_auto_with_a_stale_socket(bench: Bench, client: str, stale: str) -> None:
    """ControlMaster auto and a file at ControlPath that no master listens on (a plain
    file, a socket left behind): removed, as ssh does, and the run connects itself and
    becomes the master there."""
    path = bench.socket_path("st")
    if stale == "file":
        path.write_text("not a socket\n")
    else:
        with socket.socket(socket.AF_UNIX) as left:
            left.bind(str(path))
    connections = bench.connections()
    done = bench.run(client, "-o", "ControlMaster=auto", "-o", f"ControlPath={path}",
                     "-o", "ControlPersist=30", command="echo one")  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, b"one\n", b"")
    assert bench.connections() == connections + 1
    assert stat.S_ISSOCK(path.stat().st_mode)
    bench.track(path)
    again = bench.run(client, "-S", str(path), command="echo two")
    assert (again.returncode, again.stdout) == (0, b"two\n")
    assert bench.connections() == connections + 1


@pytest.mark.parametrize("there", ["file", "ssh", "keytool"])
def test_master_yes_with_a_socket_there(bench: Bench, there: str) -> None:
    """ControlMaster yes with something at ControlPath already (a file, a running
    master): ssh's line, then the command runs on a connection of its own; what was
    there is left alone."""
    path = bench.socket_path("y")
    pid = None
    if there == "file":
        path.write_text("not a socket\n")
    else:
        pid = bench.start_master(there, path)
    connections = bench.connections()
    done = {}
    for client in CLIENTS:
        result = bench.run(client, "-o", "ControlMaster=yes", "-o", f"ControlPath={path}",
                           command="echo one")  # fmt: skip
        done[client] = (result.returncode, result.stdout, said(result))
    assert done["keytool"] == done["ssh"] == (
        0, b"one\n", f"ControlSocket {path} already exists, disabling multiplexing\n"
    )  # fmt: skip
    assert bench.connections() == connections + 2
    if pid is None:
        assert path.read_text() == "not a socket\n"
    else:
        check = bench.run("ssh", "-S", str(path), "-O", "check")
        assert check.stderr == f"Master running (pid={pid})\r\n".encode()


def test_no_master(bench: Bench) -> None:
    """-O with no master there, or no ControlPath, or a word ssh does not know: ssh's
    line and 255; a session with ControlMaster no and no master connects itself."""
    path = bench.socket_path("none")
    cases = [
        ("-S", str(path), "-O", "check"),
        ("-S", str(path), "-O", "exit"),
        ("-O", "check"),
        ("-S", str(path), "-O", "no-such-command"),
    ]
    done: dict[str, list[tuple[int, bytes, str]]] = {}
    for client in CLIENTS:
        for flags in cases:
            result = bench.run(client, *flags)
            done.setdefault(client, []).append((result.returncode, result.stdout, said(result)))
        direct = bench.run(client, "-o", "ControlMaster=no", "-S", str(path), command="echo in")
        done[client].append((direct.returncode, direct.stdout, said(direct)))
    missing = f"Control socket connect({path}): No such file or directory\n"
    assert (
        done["keytool"]
        == done["ssh"]
        == [
            (255, b"", missing),
            (255, b"", missing),
            (255, b"", 'No ControlPath specified for "-O" command\n'),
            (255, b"", "Invalid multiplex command.\n"),
            (0, b"in\n", ""),
        ]
    )
    assert not path.exists()


@pytest.mark.parametrize("master", CLIENTS)
def test_master_that_asks(bench: Bench, master: str) -> None:
    """-MM (ControlMaster ask): the master asks (SSH_ASKPASS) before each client's
    session and before -O exit; refused, the client says so and connects itself."""
    script = bench.sockets / "askpass"
    log = bench.sockets / "asked"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {log}\necho no\n')
    script.chmod(0o755)
    env = base_env(SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force")
    path = bench.socket_path("a")
    done = bench.run(master, "-M", "-M", "-S", str(path), "-f", "-N", env=env)
    assert done.returncode == 0, done.stderr
    pid = bench.track(path)
    connections = bench.connections()
    shown = {}
    for client in CLIENTS:
        ran = bench.run(client, "-S", str(path), command="echo ran")
        ended = bench.run(client, "-S", str(path), "-O", "exit")
        shown[client] = [(r.returncode, r.stdout, said(r)) for r in (ran, ended)]
    assert (
        shown["keytool"]
        == shown["ssh"]
        == [
            (0, b"ran\n", "Master refused session request: Permission denied\n"),
            (255, b"", "Master refused termination request: Permission denied\n"),
        ]
    )
    assert bench.connections() == connections + 2  # each session on its own connection
    assert alive(pid)
    session = "Allow shared connection to 127.0.0.1? "
    terminate = "Terminate shared connection to 127.0.0.1? "
    assert log.read_text().splitlines() == [session, terminate] * 2


# ---- a terminal through the master


@pytest.mark.parametrize("master", CLIENTS)
def test_terminal_through_a_master(bench: Bench, master: str) -> None:
    """-tt on a terminal of ours: the size the remote side saw (and saw change, the
    client passing SIGWINCH on to the master), the status, ssh's closing words."""
    path = bench.socket_path("t")
    bench.start_master(master, path)
    shown = {}
    for client in CLIENTS:
        # the remote side waits until its terminal's size has changed (the change
        # arrives when it arrives), then reads a line and shows the size it saw
        command = ('read g; stty size; tty; echo ready; while [ "$(stty size)" = "33 101" ]; '
                   "do sleep 0.05; done; echo resized; read x; stty size; exit 4")  # fmt: skip
        args = bench.argv(client, "-tt", "-S", str(path), command=command)
        term = OnTerminal(args, rows=33, cols=101)
        term.wait_raw()
        term.type(b"g\r")
        term.read_until(b"ready\r\n")
        set_size(term.main, 50, 132)
        try:
            term.read_until(b"resized\r\n")
        except AssertionError as exc:  # which client's resize did not arrive
            raise AssertionError(f"{client} client, {master} master: {exc}") from None
        term.type(b"go\r")
        status = term.finish()
        shown[client] = (status, re.sub(rb"/dev/pts/\d+", b"/dev/pts/N", term.seen))
    assert (
        shown["keytool"]
        == shown["ssh"]
        == (
            4,
            b"g\r\n33 101\r\n/dev/pts/N\r\nready\r\nresized\r\ngo\r\n50 132\r\n"
            b"Shared connection to 127.0.0.1 closed.\r\r\n",
        )
    )


@pytest.mark.parametrize("master", CLIENTS)
def test_escape_through_a_master(bench: Bench, master: str) -> None:
    """~. ends the client's session only; the master goes on."""
    path = bench.socket_path("t")
    pid = bench.start_master(master, path)
    shown = {}
    for client in CLIENTS:
        command = "read g; echo ready; read x"  # output once the client's terminal is raw
        term = OnTerminal(bench.argv(client, "-tt", "-S", str(path), command=command))
        term.wait_raw()
        term.type(b"g\r")
        term.read_until(b"ready\r\n")
        term.type(b"~.")
        shown[client] = (term.finish(), term.seen)
    assert shown["keytool"] == shown["ssh"] == (
        255, b"g\r\nready\r\nShared connection to 127.0.0.1 closed.\r\r\n"
    )  # fmt: skip
    check = bench.run("keytool", "-S", str(path), "-O", "check")
    assert check.stderr == f"Master running (pid={pid})\r\n".encode()


@pytest.mark.parametrize("master", CLIENTS)
def test_forced_terminal_on_a_pipe_through_a_master(bench: Bench, master: str) -> None:
    path = bench.socket_path("t")
    bench.start_master(master, path)
    done = bench.run("ssh", "-tt", "-S", str(path), command="tty", stdin=b"typed\n")
    assert done.returncode == 0
    assert re.fullmatch(rb"/dev/pts/\d+\n", done.stdout), done.stdout


# ---- a master that fails the client: ssh's client connects itself, and so does ours


MUX_HELLO = 0x00000001
MUX_NEW_SESSION = 0x10000002
MUX_ALIVE_CHECK = 0x10000004
MUX_S_ALIVE = 0x80000005


def mux_frame(*values: int, body: bytes = b"") -> bytes:
    data = struct.pack(f">{len(values)}I", *values) + body
    return struct.pack(">I", len(data)) + data


class FakeMaster:
    """A Unix-domain socket at ``path`` whose every client is served by ``act`` (one
    client at a time, each in turn)."""

    def __init__(self, path: Path, act: Callable[[socket.socket], None]) -> None:
        self.act = act
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(TIMEOUT)
                with contextlib.suppress(OSError, EOFError):  # the client went first
                    self.act(conn)

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._thread.join(5)


def read_exactly(conn: socket.socket, count: int) -> bytes:
    """``count`` bytes; descriptors passed along with them are closed at once."""
    data = b""
    while len(data) < count:
        chunk, fds, _, _ = socket.recv_fds(conn, count - len(data), 4)
        for fd in fds:
            os.close(fd)
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_message(conn: socket.socket) -> bytes:
    return read_exactly(conn, struct.unpack(">I", read_exactly(conn, 4))[0])


def until_closed(conn: socket.socket) -> None:
    """Whatever the client sends, until it goes (nothing it sent is left unread)."""
    while read_exactly(conn, 1):
        pass


def close_at_once(conn: socket.socket) -> None:
    pass


def answer_hello(reply: bytes) -> Callable[[socket.socket], None]:
    """After the client's hello, ``reply`` instead of the master's."""

    def act(conn: socket.socket) -> None:
        read_message(conn)
        conn.sendall(reply)
        until_closed(conn)

    return act


def drop_the_session(conn: socket.socket) -> None:
    """A good hello and pid, then the session request (and its descriptors) taken,
    and the connection closed."""
    read_message(conn)
    conn.sendall(mux_frame(MUX_HELLO, 4))
    while True:
        kind, rid = struct.unpack(">II", read_message(conn)[:8])
        if kind == MUX_ALIVE_CHECK:
            conn.sendall(mux_frame(MUX_S_ALIVE, rid, os.getpid()))
        elif kind == MUX_NEW_SESSION:
            read_exactly(conn, 3)  # the byte with each of the three descriptors
            return


FAKE_MASTERS: dict[str, Callable[[socket.socket], None]] = {
    "close-at-once": close_at_once,
    "garbage": answer_hello(mux_frame(body=b"garbage!")),
    "wrong-version": answer_hello(mux_frame(MUX_HELLO, 5)),
    "session-dropped": drop_the_session,
    # a length of over a gigabyte: ssh gives up (no buffer for it), and so do we
    "unframed-garbage": answer_hello(b"garbage, not a message\n"),
}


HELLO_FAILS = ("close-at-once", "garbage", "wrong-version")


@pytest.mark.parametrize("fake", FAKE_MASTERS)
def test_a_failing_master_is_given_up_as_by_ssh(bench: Bench, fake: str) -> None:
    """A control socket whose master fails the hello exchange (closes, answers with
    another message or version), or closes at the session request: the client says
    so in a line and runs the command on a connection of its own, as ssh's does; a
    hello that cannot be a message at all ends both with 255."""
    path = bench.socket_path("fake")
    master = FakeMaster(path, FAKE_MASTERS[fake])
    try:
        done = {}
        for client in CLIENTS:
            connections = bench.connections()
            result = bench.run(client, "-S", str(path), command="echo hi")
            text = said(result)
            assert "Traceback" not in text and text.count("\n") <= 2, text
            made = bench.connections() - connections
            done[client] = (result.returncode, result.stdout, made)
            if fake in HELLO_FAILS:
                assert "master hello exchange failed" in text, (client, text)
        assert done["keytool"] == done["ssh"]
        if fake == "unframed-garbage":
            assert done["ssh"] == (255, b"", 0)
        else:
            assert done["ssh"] == (0, b"hi\n", 1)
        if fake in HELLO_FAILS:
            # -O is no session: keytool fails (ssh 9.2 goes on to a connection, and a
            # remote shell, of its own then)
            check = bench.run("keytool", "-S", str(path), "-O", "check")
            assert (check.returncode, said(check).count("\n")) == (255, 1), check.stderr
    finally:
        master.close()


@pytest.mark.parametrize("master", CLIENTS)
def test_stdio_forward_through_a_master_ends_with_the_far_end(bench: Bench, master: str) -> None:
    """`-S master -W host:port` to a service that says hello and closes, the client's
    stdin left open: through ssh's master the client ends at once (the stdio channel's
    force drain); keytool's master waited for the client's stdin to end."""
    path = bench.socket_path("w")
    bench.start_master(master, path)
    with hello_service(len(CLIENTS)) as port:
        for client in CLIENTS:
            args = bench.argv(client, "-S", str(path), "-W", f"127.0.0.1:{port}")
            status, out, err = run_stdin_open(args)
            assert (status, out) == (0, b"hello\n"), (client, err)

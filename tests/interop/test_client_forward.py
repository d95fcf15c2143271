"""Local port forwarding, ``keytool exec -L`` (and ``-N``, LocalForward, SessionType):
the seed article's tunnel. A real sshd (and dropbear) connects on to a TCP service of
the test's; the bytes that service received and sent back, and the server's log of
each direct-tcpip channel, are what is checked."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import (
    KEYTOOL,
    Account,
    base_env,
    both_clients,
    install_key,
    keygen,
    ssh_words,
)
from tests.peers import Dropbear, Sshd, free_port, require, run, stop_process

TIMEOUT = 30


class EchoService:
    """A TCP service on 127.0.0.1 (or a Unix-domain one at ``path``) that sends back
    what it reads, and records it."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            self.listener = socket.create_server(("127.0.0.1", 0))
            self.port = int(self.listener.getsockname()[1])
        else:
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(str(path))
            self.listener.listen(16)
            self.port = 0
        self.received: list[bytes] = []  # per connection, what arrived
        self.peers: list[tuple[str, int] | str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn, peer), daemon=True).start()

    def _echo(self, conn: socket.socket, peer: tuple[str, int] | str) -> None:
        got = bytearray()
        with conn:
            while data := conn.recv(65536):
                got += data
                conn.sendall(data)
            # recorded before the close, so a client that saw the close sees the record
            with self._lock:
                self.received.append(bytes(got))
                self.peers.append(peer)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def service() -> Iterator[EchoService]:
    echo = EchoService()
    yield echo
    echo.close()


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return keygen(tmp_path / "id_ed25519")


@pytest.fixture
def server(tmp_path: Path, key: Path) -> Iterator[Sshd]:
    sshd = Sshd(tmp_path / "sshd")
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    with sshd:
        yield sshd


def exec_args(server: Sshd | Dropbear, known: Path, key: Path, *flags: str) -> list[str]:
    return [
        *KEYTOOL, "exec", "-F", "none", "-p", str(server.port), "-i", str(key),
        "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes", *flags,
    ]  # fmt: skip


def client_program(client: str, server: Sshd, known: Path, key: Path) -> list[str]:
    """``exec_args`` for "keytool"; the same flags for "ssh"."""
    ours = exec_args(server, known, key)
    return ours if client == "keytool" else [require("ssh"), *ours[len(KEYTOOL) + 1 :]]


def known_hosts(server: Sshd, folder: Path) -> Path:
    known = folder / "known_hosts"
    known.write_text(server.known_hosts_line())
    return known


def listening(port: int) -> bool:
    """Someone listens on 127.0.0.1:port (/proc/net/tcp, without connecting to it)."""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":
            return True
    return False


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not listening(port):
        if proc.poll() is not None:
            raise AssertionError(f"keytool exited with {proc.returncode}: {stderr_of(proc)}")
        if time.monotonic() > deadline:
            raise AssertionError("keytool did not listen")
        time.sleep(0.02)


def stderr_of(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stderr is not None
    return proc.stderr.read().decode(errors="replace")


def round_trip(port: int, payload: bytes) -> bytes:
    """Send ``payload`` through the tunnel, half-close, read everything back."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(1)))
        sender.start()
        back = bytearray()
        while data := sock.recv(1 << 16):
            back += data
        sender.join(TIMEOUT)
    return bytes(back)


def round_trips_at_once(port: int, payloads: list[bytes]) -> list[bytes]:
    """``round_trip`` of each payload, all at once, each on a connection of its own."""
    results: dict[int, bytes] = {}

    def one(index: int) -> None:
        results[index] = round_trip(port, payloads[index])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    return [results.get(i, b"") for i in range(len(payloads))]


def refused(port: int) -> bool:
    """A connection to the tunnel is closed without a byte back (EOF, or a reset when
    what we sent was still unread as keytool closed it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"x")
        try:
            return sock.recv(100) == b""
        except ConnectionResetError:
            return True


def direct_tcpip(log: Path, port: int) -> list[str]:
    """The originators of direct-tcpip channels to 127.0.0.1:port, from sshd's log."""
    text = log.read_text(errors="replace")
    pattern = rf"server_request_direct_tcpip: originator (\S+ port \d+), target 127\.0\.0\.1 port {port}\b"  # noqa: E501
    return re.findall(pattern, text)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        stop_process(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def spawn(args: list[str], procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=base_env(),
    )  # fmt: skip
    procs.append(proc)
    return proc


Tunnel = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def tunnel(
    tmp_path: Path, key: Path, server: Sshd, started: list[subprocess.Popen[bytes]]
) -> Tunnel:
    """``keytool exec -N FLAGS root@127.0.0.1`` against ``server``, started; when
    ``listening`` names a port, once something listens there."""

    def start(*flags: str, listening: int | None = None) -> subprocess.Popen[bytes]:
        args = exec_args(server, known_hosts(server, tmp_path), key)
        proc = spawn([*args, "-N", *flags, "root@127.0.0.1"], started)
        if listening is not None:
            wait_listening(listening, proc)
        return proc

    return start


def test_tunnel_carries_bytes_both_ways_with_flow_control(
    tunnel: Tunnel, server: Sshd, service: EchoService
) -> None:
    local = free_port()
    proc = tunnel("-L", f"{local}:127.0.0.1:{service.port}", listening=local)
    # several connections at once, each larger than a channel window both ways
    payloads = [os.urandom(3 * 1024 * 1024 + n) for n in range(4)]
    results = round_trips_at_once(local, payloads)
    for back, payload in zip(results, payloads, strict=True):
        assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()
    # the service got each stream whole, from sshd (the server end of the tunnel)
    assert sorted(map(len, service.received)) == sorted(map(len, payloads))
    assert {peer[0] for peer in service.peers} == {"127.0.0.1"}
    # sshd opened one direct-tcpip channel per connection, naming our local peers
    origins = direct_tcpip(server.log, service.port)
    assert len(origins) == len(payloads)
    assert all(origin.startswith("127.0.0.1 port ") for origin in origins)
    # -N: still there, serving, until stopped
    assert proc.poll() is None
    assert round_trip(local, b"again") == b"again"


def test_forward_during_a_command_waits_for_open_connections(
    tmp_path: Path,
    key: Path,
    server: Sshd,
    service: EchoService,
    started: list[subprocess.Popen[bytes]],
) -> None:
    local = free_port()
    go = tmp_path / "go"  # the command ends once the test has made this file
    args = exec_args(server, known_hosts(server, tmp_path), key)
    proc = spawn([*args, "-L", f"127.0.0.1:{local}:127.0.0.1:{service.port}", "root@127.0.0.1",
                  "--", f"until [ -e {go} ]; do sleep 0.05; done; echo done; exit 3"],
                 started)  # fmt: skip
    wait_listening(local, proc)
    with socket.create_connection(("127.0.0.1", local), timeout=TIMEOUT) as sock:
        sock.sendall(b"before ")
        assert sock.recv(100) == b"before "
        go.touch()
        assert read_until(proc, b"done\n") == b"done\n"
        # the command is over: no new connections, but this open one keeps keytool going
        deadline = time.monotonic() + TIMEOUT
        while listening(local):
            assert proc.poll() is None, stderr_of(proc)
            assert time.monotonic() < deadline, "still listening after the command ended"
            time.sleep(0.02)
        assert proc.poll() is None, stderr_of(proc)
        sock.sendall(b"after")
        assert sock.recv(100) == b"after"
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b""
    assert proc.wait(TIMEOUT) == 3
    assert proc.stdout is not None and proc.stdout.read() == b""  # "done" alone
    assert service.received == [b"before after"]


def read_until(proc: subprocess.Popen[bytes], end: bytes) -> bytes:
    """proc's stdout up to and with ``end`` (or all of it, if it ends first)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    got = b""
    deadline = time.monotonic() + TIMEOUT
    while not got.endswith(end):
        left = deadline - time.monotonic()
        assert left > 0, f"no {end!r} on stdout after {got!r}"
        if select.select([fd], [], [], left)[0]:
            data = os.read(fd, 1)
            if not data:
                break
            got += data
    return got


def test_refused_target_is_one_line_and_the_tunnel_goes_on(
    tunnel: Tunnel, server: Sshd, service: EchoService
) -> None:
    local, closed = free_port(), free_port()
    proc = tunnel("-L", f"{local}:127.0.0.1:{closed}",
                  "-L", f"{free_port()}:127.0.0.1:{service.port}", listening=local)  # fmt: skip
    for _ in range(2):  # refused twice: the client sees the connection closed each time
        assert refused(local)
    assert proc.poll() is None
    stop_process(proc)
    lines = [line for line in stderr_of(proc).splitlines() if "did not connect" in line]
    assert len(lines) == 2, lines
    assert f"to 127.0.0.1 port {closed}" in lines[0] and "Connection refused" in lines[0]
    assert "Traceback" not in "".join(lines)
    # sshd tried it: its log has the refused connect
    assert len(direct_tcpip(server.log, closed)) == 2


def test_server_that_forbids_forwarding(
    tmp_path: Path, key: Path, service: EchoService, started: list[subprocess.Popen[bytes]]
) -> None:
    sshd = Sshd(tmp_path / "sshd", {"AllowTcpForwarding": "no"})
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    with sshd:
        local = free_port()
        proc = spawn([*exec_args(sshd, known_hosts(sshd, tmp_path), key), "-N", "-L",
                      f"{local}:127.0.0.1:{service.port}", "root@127.0.0.1"], started)  # fmt: skip
        wait_listening(local, proc)
        assert refused(local)
        stop_process(proc)
    err = stderr_of(proc)
    assert "administratively prohibited" in err, err
    assert service.received == []


def side_by_side(args: list[str], *extra: str) -> dict[str, subprocess.CompletedProcess[bytes]]:
    """The same command line (``exec_args``' form) run by keytool and by ssh."""
    return both_clients(*args[len(KEYTOOL) + 1 :], *extra, timeout=TIMEOUT)


@pytest.mark.parametrize("exit_on_failure", ["no", "yes"])
@pytest.mark.parametrize("bind", ["", "127.0.0.1:"])
def test_port_in_use_as_ssh(
    tmp_path: Path, key: Path, server: Sshd, service: EchoService, exit_on_failure: str,
    bind: str,
) -> None:  # fmt: skip
    """A -L whose port is taken: ssh's line for the address; the forward has failed
    only when no address was bound (bound to 127.0.0.1 alone); then with
    ExitOnForwardFailure it ends all (255), without it the command runs."""
    known = known_hosts(server, tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        args = exec_args(server, known, key, "-o", f"ExitOnForwardFailure={exit_on_failure}")
        spec = f"{bind}{port}:127.0.0.1:{service.port}"
        runs = side_by_side([*args, "-L", spec, "root@127.0.0.1"], "echo ran")
    ours, theirs = runs["keytool"], runs["ssh"]
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    assert ssh_words(ours.stderr) == ssh_words(theirs.stderr)
    assert f"bind [127.0.0.1]:{port}: Address already in use" in ssh_words(ours.stderr)
    failed = bind != "" and exit_on_failure == "yes"
    assert ours.returncode == (255 if failed else 0)
    assert ours.stdout == (b"" if failed else b"ran\n")


def test_bad_specs_exit_255_with_one_line(tmp_path: Path, key: Path, server: Sshd) -> None:
    known = known_hosts(server, tmp_path)
    connections = server.log.read_text().count("Connection from 127.0.0.1")
    for spec in ("0:127.0.0.1:22", "/tmp/socket:h", "8080:host", "[::1:1:h:2", "x:h:1"):
        result = subprocess.run(
            [*exec_args(server, known, key), "-L", spec, "root@127.0.0.1", "--", "true"],
            capture_output=True, env=base_env(), stdin=subprocess.DEVNULL, timeout=TIMEOUT,
        )  # fmt: skip
        lines = result.stderr.decode().splitlines()
        assert result.returncode == 255 and len(lines) == 1, (spec, lines)
        assert f"Bad local forwarding specification '{spec}'" in lines[0]  # ssh's words
    # none of them connected: sshd saw no connection for any bad spec
    assert server.log.read_text().count("Connection from 127.0.0.1") == connections


def test_local_forward_and_session_type_from_the_config(
    tmp_path: Path,
    key: Path,
    server: Sshd,
    service: EchoService,
    started: list[subprocess.Popen[bytes]],
) -> None:
    local = free_port()
    config = tmp_path / "config"
    config.write_text(
        f"Host tunnel\n  HostName 127.0.0.1\n  Port {server.port}\n  User root\n"
        f"  IdentityFile {key}\n  UserKnownHostsFile {known_hosts(server, tmp_path)}\n"
        f"  GlobalKnownHostsFile /dev/null\n  BatchMode yes\n"
        f"  LocalForward {local} 127.0.0.1:{service.port}\n  SessionType none\n"
    )
    proc = spawn([*KEYTOOL, "exec", "-F", str(config), "tunnel"], started)
    wait_listening(local, proc)
    assert round_trip(local, b"from the config") == b"from the config"
    # sshd ran no command for it: no session channel, only the forward
    stop_process(proc)
    log = server.log.read_text()
    assert "server_request_session" not in log
    assert len(direct_tcpip(server.log, service.port)) == 1
    # OpenSSH's ssh reads the same file the same way
    shown = run([require("ssh"), "-G", "-F", str(config), "tunnel"]).stdout
    assert f"localforward {local} [127.0.0.1]:{service.port}" in shown
    assert "sessiontype none" in shown


def test_tunnel_through_dropbear(
    tmp_path: Path,
    key: Path,
    account: Account,
    service: EchoService,
    started: list[subprocess.Popen[bytes]],
) -> None:
    install_key(account, Path(f"{key}.pub"))
    with Dropbear(tmp_path / "dropbear") as dropbear:
        known = tmp_path / "known_dropbear"
        pub = run([require("dropbearkey"), "-y", "-f", dropbear.host_keys["ed25519"]]).stdout
        kind, blob = next(line for line in pub.splitlines() if line.startswith("ssh-")).split()[:2]
        known.write_text(f"[127.0.0.1]:{dropbear.port} {kind} {blob}\n")
        local, remote = free_port(), free_port()
        proc = spawn([*exec_args(dropbear, known, key), "-L", f"{local}:127.0.0.1:{service.port}",
                      "-R", f"{remote}:127.0.0.1:{service.port}", f"{account.name}@127.0.0.1",
                      "--", "sleep 10"], started)  # fmt: skip
        wait_listening(local, proc)
        wait_listening(remote, proc)  # dropbear listens there for us
        payload = os.urandom(2 * 1024 * 1024)
        assert round_trip(local, payload) == payload
        assert round_trip(remote, payload[::-1]) == payload[::-1]
        assert sorted(service.received) == sorted([payload, payload[::-1]])


def listener_pid(port: int) -> int | None:
    """The process holding the socket that listens on 127.0.0.1:port."""
    wanted = f"0100007F:{port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":
            inode = fields[9]
    if inode is None:
        return None
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == f"socket:[{inode}]":
                return int(fd.parts[2])
        except OSError:
            continue
    return None


def test_background_after_login_keeps_the_tunnel(
    tmp_path: Path, key: Path, server: Sshd, service: EchoService
) -> None:
    local = free_port()
    args = exec_args(server, known_hosts(server, tmp_path), key)
    # as with ssh -f, the background process keeps stdout and stderr: files, not pipes
    # whose end a caller would wait for
    with (tmp_path / "err").open("wb") as err:
        result = subprocess.run(
            [*args, "-f", "-N", "-L", f"{local}:127.0.0.1:{service.port}", "root@127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=err, env=base_env(), stdin=subprocess.DEVNULL,
            timeout=TIMEOUT,
        )  # fmt: skip
    # the caller is back with status 0, the tunnel listening already
    assert result.returncode == 0, (tmp_path / "err").read_text()
    pid = listener_pid(local)
    assert pid is not None
    try:
        # a session of its own, no longer the caller's child (setsid comes a moment after
        # the caller's end)
        deadline = time.monotonic() + 10
        while os.getsid(pid) != pid and time.monotonic() < deadline:
            time.sleep(0.02)
        assert os.getsid(pid) == pid
        assert round_trip(local, b"in the background") == b"in the background"
        assert service.received == [b"in the background"]
    finally:
        os.kill(pid, 15)
    deadline = time.monotonic() + TIMEOUT
    while listening(local) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not listening(local)
    # without -N or a command there is nothing to go on with: refused before connecting
    refused_run = subprocess.run(
        [*args, "-f", "root@127.0.0.1"],
        capture_output=True, env=base_env(), stdin=subprocess.DEVNULL, timeout=TIMEOUT,
    )  # fmt: skip
    assert refused_run.returncode == 255
    assert refused_run.stderr.decode() == (
        "keytool: Cannot fork into background without a command to execute.\n"
    )


# ---------------------------------------------------------------- -R


def test_remote_forward_carries_bytes_and_sshd_listens(
    tunnel: Tunnel, server: Sshd, service: EchoService
) -> None:
    remote = free_port()
    # sshd listens there, for us
    proc = tunnel("-R", f"{remote}:127.0.0.1:{service.port}", listening=remote)
    assert listener_pid(remote) != proc.pid
    payloads = [os.urandom(2 * 1024 * 1024 + n) for n in range(3)]
    assert round_trips_at_once(remote, payloads) == payloads
    assert sorted(map(len, service.received)) == sorted(map(len, payloads))
    log = server.log.read_text()
    assert f"tcpip-forward listen localhost port {remote}" in log
    assert proc.poll() is None


@pytest.mark.parametrize("quiet", ["-q", "-oLogLevel=ERROR"])
def test_quiet_says_nothing_of_the_allocated_port(
    tmp_path: Path, key: Path, server: Sshd, quiet: str
) -> None:
    args = exec_args(server, known_hosts(server, tmp_path), key, quiet, "-R", "0:127.0.0.1:9")
    results = side_by_side(args, "root@127.0.0.1", "echo q")
    for result in results.values():
        assert (result.returncode, result.stdout, result.stderr) == (0, b"q\n", b"")


def test_remote_forward_port_0_and_a_target_that_refuses(tunnel: Tunnel) -> None:
    # a port bound and never listened on refuses, and no other test can take it
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    closed = holder.getsockname()[1]
    try:
        _port_0_to(tunnel, closed)
    finally:
        holder.close()


def _port_0_to(tunnel: Tunnel, closed: int) -> None:
    proc = tunnel("-R", f"0:127.0.0.1:{closed}")
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    # as ssh says it, with no prefix (awk '/Allocated port/ {print $3}'): the port
    assert line.startswith("Allocated port ") and f"to 127.0.0.1:{closed}" in line
    port = int(line.split()[2])
    wait_listening(port, proc)
    assert refused(port)
    stop_process(proc)
    rest = proc.stderr.read().decode()
    assert "cannot connect: Connection refused" in rest and "Traceback" not in rest


@pytest.mark.parametrize("exit_on_failure", ["no", "yes"])
def test_remote_forward_the_server_refuses_as_ssh(
    tmp_path: Path, key: Path, service: EchoService, exit_on_failure: str
) -> None:
    """ssh's warning and the command runs; with ExitOnForwardFailure, ssh's error
    and 255."""
    sshd = Sshd(tmp_path / "sshd", {"AllowTcpForwarding": "local"})
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    with sshd:
        args = exec_args(sshd, known_hosts(sshd, tmp_path), key)
        remote = free_port()
        runs = side_by_side(
            [*args, "-o", f"ExitOnForwardFailure={exit_on_failure}", "-R",
             f"{remote}:127.0.0.1:{service.port}", "root@127.0.0.1"], "echo ran",
        )  # fmt: skip
    ours, theirs = runs["keytool"], runs["ssh"]
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    words = ssh_words(ours.stderr)
    assert words == ssh_words(theirs.stderr)
    if exit_on_failure == "yes":
        assert ours.returncode == 255
        assert words == [f"remote port forwarding failed for listen port {remote}"]
    else:
        assert (ours.returncode, ours.stdout) == (0, b"ran\n")
        assert words == [f"Warning: remote port forwarding failed for listen port {remote}"]


# ---------------------------------------------------------------- -D


def socks_connect(port: int, version: int, host: str, target: int) -> socket.socket:
    """A SOCKS client's CONNECT through keytool's -D proxy; the socket once granted."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    if version == 5:
        sock.sendall(b"\x05\x02\x02\x00")  # two methods offered: password, none
        assert sock.recv(2) == b"\x05\x00"  # none chosen
        try:
            address = b"\x01" + socket.inet_aton(host)
        except OSError:
            address = b"\x03" + bytes([len(host)]) + host.encode()
        sock.sendall(b"\x05\x01\x00" + address + target.to_bytes(2, "big"))
        reply = sock.recv(10)
        if reply[:2] != b"\x05\x00":
            sock.close()
            raise ConnectionRefusedError(reply[1])
    else:
        try:
            address, name = socket.inet_aton(host), b""
        except OSError:  # SOCKS4a: 0.0.0.1 and the name after the user id
            address, name = b"\x00\x00\x00\x01", host.encode() + b"\x00"
        sock.sendall(b"\x04\x01" + target.to_bytes(2, "big") + address + b"me\x00" + name)
        reply = sock.recv(8)
        if reply[:2] != b"\x00\x5a":
            sock.close()
            raise ConnectionRefusedError(reply[1])
    return sock


@pytest.mark.parametrize(
    ("version", "host"), [(5, "127.0.0.1"), (5, "localhost"), (4, "127.0.0.1"), (4, "localhost")]
)
def test_socks_proxy_reaches_the_service(
    tunnel: Tunnel, server: Sshd, service: EchoService, version: int, host: str
) -> None:
    proxy = free_port()
    proc = tunnel("-D", f"127.0.0.1:{proxy}", listening=proxy)
    payload = os.urandom(1024 * 1024)
    with socks_connect(proxy, version, host, service.port) as sock:
        sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(1)))
        sender.start()
        back = bytearray()
        while data := sock.recv(1 << 16):
            back += data
        sender.join(TIMEOUT)
    assert bytes(back) == payload and service.received == [payload]
    # sshd connected where the SOCKS request said, by name or address
    log = server.log.read_text()
    assert f"target {host} port {service.port}" in log
    # a place sshd cannot reach: refused in SOCKS terms, one line, the proxy goes on
    with pytest.raises(ConnectionRefusedError):
        socks_connect(proxy, version, "127.0.0.1", free_port())
    with socks_connect(proxy, version, host, service.port) as sock:
        sock.sendall(b"still here")
        assert sock.recv(100) == b"still here"
    stop_process(proc)
    err = stderr_of(proc)
    assert err.count("did not connect") == 1 and "Traceback" not in err


def test_socks_garbage_is_one_line_and_the_proxy_goes_on(
    tunnel: Tunnel, server: Sshd, service: EchoService
) -> None:
    proxy = free_port()
    proc = tunnel("-D", str(proxy), listening=proxy)
    # not SOCKS; SOCKS5 with no method but a password; a BIND request (CONNECT only)
    bind = b"\x05\x01\x00" + b"\x05\x02\x00\x01" + bytes(6)
    for garbage in (b"GET / HTTP/1.1\r\n\r\n", b"\x05\x01\x02", bind):
        with socket.create_connection(("127.0.0.1", proxy), timeout=TIMEOUT) as sock:
            sock.sendall(garbage)
            with contextlib.suppress(ConnectionResetError):
                while sock.recv(100):
                    pass
    with socks_connect(proxy, 5, "127.0.0.1", service.port) as sock:
        sock.sendall(b"ok")
        assert sock.recv(10) == b"ok"
    assert proc.poll() is None
    stop_process(proc)
    err = stderr_of(proc)
    assert len(err.splitlines()) == 3 and "Traceback" not in err, err
    # only the good request reached sshd
    assert len(direct_tcpip(server.log, service.port)) == 1


# ---------------------------------------------------------------- -R port: SOCKS at the server


@pytest.mark.parametrize("version", [5, 4])
def test_remote_socks_proxy_as_ssh(
    tmp_path: Path,
    key: Path,
    server: Sshd,
    service: EchoService,
    started: list[subprocess.Popen[bytes]],
    version: int,
) -> None:
    """-R [bind:]port alone: sshd listens, and each connection there speaks SOCKS to
    the client, which connects on from here (ssh's remote dynamic forwarding); as for
    ssh: the service reached by address and by name, a closed port refused in SOCKS
    terms, PermitRemoteOpen's list obeyed; the proxy goes on after a refusal."""
    known = known_hosts(server, tmp_path)
    outcome = {}
    for client in ("ssh", "keytool"):
        program = client_program(client, server, known, key)
        for permit in ("any", f"127.0.0.1:{service.port}", "127.0.0.1:1"):
            proxy = free_port()
            proc = spawn(
                [*program, "-N", "-o", f"PermitRemoteOpen={permit}", "-R", f"{proxy}",
                 "root@127.0.0.1"], started,
            )  # fmt: skip
            wait_listening(proxy, proc)
            seen = []
            for host in ("127.0.0.1", "localhost", "127.0.0.1:closed"):
                name, _, closed = host.partition(":")
                target = free_port() if closed else service.port
                seen.append(_socks_outcome(proxy, version, name, target))
            stop_process(proc)
            err = stderr_of(proc)
            assert "Traceback" not in err
            outcome[client, permit] = seen
    for permit in ("any", f"127.0.0.1:{service.port}", "127.0.0.1:1"):
        assert outcome["keytool", permit] == outcome["ssh", permit], permit
    echoed = b"through the server's proxy"
    assert outcome["ssh", "any"] == [echoed, echoed, b"no answer"]
    listed = outcome["ssh", f"127.0.0.1:{service.port}"]
    assert listed == [echoed, b"no answer", b"no answer"]  # the name is not what is listed
    assert outcome["ssh", "127.0.0.1:1"] == [b"no answer"] * 3


def _stalled_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A listener whose accept queue is full: a connect to it hangs (its SYNs are
    dropped) until the queue is drained. Returns it and the connections filling it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers: list[socket.socket] = []
    port = listener.getsockname()[1]
    for _ in range(8):
        probe = socket.socket()
        probe.setblocking(False)
        fillers.append(probe)
        hangs = probe.connect_ex(("127.0.0.1", port)) != 0
        if hangs and not select.select([], [probe], [], 0.3)[1]:
            return listener, fillers  # the queue is full
    raise RuntimeError("the accept queue never filled")


def test_remote_socks_client_gone_while_connecting_as_ssh(
    tmp_path: Path,
    key: Path,
    server: Sshd,
    service: EchoService,
    started: list[subprocess.Popen[bytes]],
) -> None:
    """-R port alone: a SOCKS client at the server's end sends its request and data at
    once and goes away while our connect to the target is under way (its accept queue
    full). As ssh: no answer before the connect; once connected, the data still
    reaches the target, and the proxy goes on serving."""
    known = known_hosts(server, tmp_path)
    outcome = {}
    for client in ("ssh", "keytool"):
        program = client_program(client, server, known, key)
        proxy = free_port()
        proc = spawn([*program, "-N", "-R", f"{proxy}", "root@127.0.0.1"], started)
        wait_listening(proxy, proc)
        listener, fillers = _stalled_listener()
        try:
            target = listener.getsockname()[1]
            with socket.create_connection(("127.0.0.1", proxy), timeout=TIMEOUT) as sock:
                sock.sendall(b"\x05\x01\x00")  # one method: none
                assert sock.recv(2) == b"\x05\x00"
                # the request, and data at once: no answer comes before the connect
                address = socket.inet_aton("127.0.0.1") + target.to_bytes(2, "big")
                sock.sendall(b"\x05\x01\x00\x01" + address + b"never delivered")
            time.sleep(0.5)  # the server's EOF and CLOSE reach the client
            ours = set()
            for filler in fillers:  # ours go away; the queue is drained below
                with contextlib.suppress(OSError):
                    ours.add(filler.getsockname()[1])
                filler.close()
            # a SYN of the client's, sent again after 1, 3 and 7 s, now gets through
            got = None
            deadline = time.monotonic() + 10
            while got is None and (left := deadline - time.monotonic()) > 0:
                listener.settimeout(left)
                try:
                    late, peer = listener.accept()
                except TimeoutError:
                    break
                with late:
                    if peer[1] not in ours:
                        late.settimeout(2)
                        got = late.recv(100)
            served = _socks_outcome(proxy, 5, "127.0.0.1", service.port)
            alive = proc.poll() is None
        finally:
            listener.close()
            for filler in fillers:
                filler.close()
        stop_process(proc)
        err = stderr_of(proc)
        assert "Traceback" not in err, err
        outcome[client] = (got, served, alive)
    assert outcome["keytool"] == outcome["ssh"]
    assert outcome["ssh"] == (b"never delivered", b"through the server's proxy", True)


def _socks_outcome(proxy: int, version: int, host: str, port: int) -> bytes:
    """What a SOCKS client at the server's end gets: the echo, "closed" (granted,
    then nothing), "no answer" (closed before any), "reset", or the refusal's code."""
    try:
        with socks_connect(proxy, version, host, port) as sock:
            sock.sendall(b"through the server's proxy")
            return sock.recv(100) or b"closed"
    except ConnectionRefusedError as exc:
        return f"refused {exc.args[0]}".encode()
    except IndexError:  # the reply was empty: closed without one
        return b"no answer"
    except ConnectionResetError:
        return b"reset"


def test_out_of_descriptors_is_said_once_and_every_connection_served(
    tmp_path: Path, server: Sshd, key: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    """-L with only 40 descriptors and 100 connections at once: each is served once
    descriptors free up, and the accept failure is said as ssh says it, at most once a
    second while it lasts. keytool said it again for each try (46 lines)."""
    import math
    import resource

    echo = EchoService()
    try:
        port = free_port()
        args = exec_args(server, known_hosts(server, tmp_path), key, "-N",
                         "-L", f"{port}:127.0.0.1:{echo.port}", "root@127.0.0.1")  # fmt: skip
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=base_env(),
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40)),
        )  # fmt: skip
        started.append(proc)
        wait_listening(port, proc)
        # all connected before any is used: more than the descriptors keytool has
        start = time.monotonic()  # keytool is out of descriptors from here at the earliest
        socks = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                 for _ in range(100)]  # fmt: skip
        time.sleep(0.5)
        try:
            for index, sock in enumerate(socks):
                sock.sendall(b"%d" % index)
                sock.shutdown(socket.SHUT_WR)
            for index, sock in enumerate(socks[:20]):  # the first ones free descriptors
                assert sock.recv(100) == b"%d" % index
                sock.close()
            for index, sock in enumerate(socks[20:], 20):
                back = b""
                while data := sock.recv(100):
                    back += data
                assert back == b"%d" % index
            stretch = time.monotonic() - start  # every connection accepted: it is over
        finally:
            for sock in socks:
                sock.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(TIMEOUT)
        said = stderr_of(proc).splitlines()
    finally:
        echo.close()
    failures = [line for line in said if "accept failed" in line]
    # said when it began, then again at most once a second of the stretch
    assert 1 <= len(failures) <= 1 + math.ceil(stretch), (stretch, said)

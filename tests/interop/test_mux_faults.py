"""keytool's connection-sharing master (``keytool exec -M``) against malformed and
hostile clients of its control socket, spoken to in raw PROTOCOL.mux (built here from
the protocol text, not with keytool's own encoder). After each, the master still has
its pid, serves a real ``ssh -S`` session, holds no descriptor it did not hold before,
and has written at most one line (never a traceback) to its stderr."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import Sshd, free_port, missing, require, stop_process

# PROTOCOL.mux, version 4
HELLO = 0x00000001
NEW_SESSION = 0x10000002
ALIVE_CHECK = 0x10000004
OPEN_FWD = 0x10000006
NEW_STDIO_FWD = 0x10000008
S_FAILURE = 0x80000003
S_EXIT_MESSAGE = 0x80000004
S_ALIVE = 0x80000005
S_SESSION_OPENED = 0x80000006
FWD_LOCAL = 1
NO_ESCAPE = 0xFFFFFFFF
#: a request type PROTOCOL.mux does not define
UNKNOWN = 0x10000077


def u32(*values: int) -> bytes:
    return b"".join(struct.pack(">I", value) for value in values)


def string(data: bytes) -> bytes:
    return u32(len(data)) + data


def frame(body: bytes) -> bytes:
    return u32(len(body)) + body


def new_session(rid: int, command: bytes) -> bytes:
    """A NEW_SESSION body: no tty, x11, agent or subsystem, no escape character."""
    return (
        u32(NEW_SESSION, rid)
        + string(b"")
        + u32(0, 0, 0, 0, NO_ESCAPE)
        + string(b"")
        + string(command)
    )


def failure(rid: int, reason: bytes) -> bytes:
    return frame(u32(S_FAILURE, rid) + string(reason))


class Raw:
    """A mux client that sends whatever it is told to."""

    def __init__(self, path: str, timeout: float = 10) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except BlockingIOError:  # the master's backlog is full: it has yet to accept
                if time.monotonic() > deadline:
                    self.sock.close()
                    raise
                time.sleep(0.01)

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def pass_fd(self, fd: int) -> None:
        """One descriptor, with its one byte, as OpenSSH's mm_send_fd passes it."""
        socket.send_fds(self.sock, [b"\0"], [fd])

    def exact(self, count: int) -> bytes | None:
        """``count`` bytes, or None at end of stream."""
        data = b""
        while len(data) < count:
            try:
                chunk = self.sock.recv(count - len(data))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            data += chunk
        return data

    def message(self) -> bytes | None:
        """The next whole message (length and all), or None if the master closed."""
        header = self.exact(4)
        if header is None:
            return None
        body = self.exact(struct.unpack(">I", header)[0])
        assert body is not None, "the master closed in the middle of a message"
        return header + body

    def hello(self) -> None:
        assert self.message() == frame(u32(HELLO, 4))
        self.send(frame(u32(HELLO, 4)))

    def closed_by_master(self) -> bool:
        """The master closed this connection without another byte (a timeout fails)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


@dataclass
class Master:
    proc: subprocess.Popen[bytes]
    sock: str
    stderr: Path
    sshd: Sshd

    @property
    def pid(self) -> int:
        return self.proc.pid

    def said_since(self, offset: int) -> str:
        return self.stderr.read_bytes()[offset:].decode(errors="replace")

    def descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


def ssh_via(master: Master, *args: str) -> subprocess.CompletedProcess[str]:
    """OpenSSH's ssh through the master only: port 1, so a fallback connection fails."""
    return subprocess.run(
        [require("ssh"), "-F", "/dev/null", "-p", "1", "-o", "BatchMode=yes",
         "-S", master.sock, *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
        env=base_env(),
    )  # fmt: skip


def assert_serves(master: Master) -> None:
    assert master.proc.poll() is None, "the master died"
    check = ssh_via(master, "-O", "check", "x")
    assert check.returncode == 0, check.stderr
    assert f"Master running (pid={master.pid})" in check.stderr
    session = ssh_via(master, "root@127.0.0.1", "echo", "ok")
    assert (session.returncode, session.stdout) == (0, "ok\n"), session.stderr


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    """One master in the foreground for the module, its stderr in a file."""
    folder = tmp_path_factory.mktemp("muxfaults")
    # DEBUG1 (VERBOSE and more): sshd logs a session channel closed by its client
    server = Sshd(folder / "sshd", {"LogLevel": "DEBUG1"})
    key = keygen(folder / "id")
    server.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = folder / "known_hosts"
    known.write_text(server.known_hosts_line())
    short = tempfile.mkdtemp(prefix="ktmux-", dir="/tmp")  # a socket path is short
    sock = os.path.join(short, "master")
    stderr = folder / "master.err"
    with server, stderr.open("wb") as err:
        proc = subprocess.Popen(
            [*KEYTOOL, "exec", "-F", "none", "-p", str(server.port), "-i", str(key),
             "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
             "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
             "-M", "-S", sock, "-N", "root@127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=base_env(),
        )  # fmt: skip
        running = Master(proc, sock, stderr, server)
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(sock):
                assert proc.poll() is None, stderr.read_text()
                assert time.monotonic() < deadline, "the master never listened"
                time.sleep(0.05)
            assert_serves(running)
            assert stderr.read_bytes() == b""
            yield running
        finally:
            if proc.poll() is None:
                ssh_via(running, "-O", "exit", "x")
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    stop_process(proc)
            shutil.rmtree(short, ignore_errors=True)


@contextlib.contextmanager
def attack(master: Master, said: str | None = None) -> Iterator[None]:
    """Around one bad client: afterwards the master serves, has let go of what the
    client gave it, and said at most one line (``said`` in it, if given)."""
    offset = master.stderr.stat().st_size
    before = master.descriptors()
    yield
    assert_serves(master)
    deadline = time.monotonic() + 5
    while master.descriptors() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert master.descriptors() <= before, "the master holds descriptors it did not before"
    text = master.said_since(offset)
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert len(lines) <= 1, text
    if said is not None:
        assert len(lines) == 1 and said in lines[0], text


# ---------------------------------------------------------------- before the hello


@pytest.mark.parametrize(
    ("sent", "said"),
    [
        (b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)), "mux message of"),
        (frame(u32(ALIVE_CHECK, 1)), "expected a mux hello"),
        (frame(u32(HELLO, 3)), "version 3"),
        (frame(u32(HELLO, 4) + string(b"ext") + u32(100) + b"cut"), "hello"),
    ],
    ids=["garbage", "request-first", "version-3", "bad-extension"],
)
def test_bad_hello_is_dropped(master: Master, sent: bytes, said: str) -> None:
    with attack(master, said), Raw(master.sock) as raw:
        assert raw.message() == frame(u32(HELLO, 4))  # the master speaks first
        raw.send(sent)
        assert raw.closed_by_master()


# ---------------------------------------------------------------- framing


@pytest.mark.parametrize("length", [0, 3, 256 * 1024 + 1, 2**31])
def test_bad_length_field_is_dropped(master: Master, length: int) -> None:
    with attack(master, f"mux message of {length} bytes"), Raw(master.sock) as raw:
        raw.hello()
        raw.send(u32(length, ALIVE_CHECK, 1))
        assert raw.closed_by_master()


def test_message_of_the_largest_size_is_answered(master: Master) -> None:
    with attack(master), Raw(master.sock) as raw:
        raw.hello()
        raw.send(frame(u32(UNKNOWN, 5) + bytes(256 * 1024 - 8)))  # OpenSSH's limit
        assert raw.message() == failure(5, b"unsupported request")


def test_message_cut_short_then_closed(master: Master) -> None:
    with attack(master):
        stalled = Raw(master.sock)
        stalled.hello()
        stalled.send(u32(100, UNKNOWN, 3) + b"\0\0")  # 10 bytes of 100, then nothing
        with Raw(master.sock) as cut:
            cut.hello()
            cut.send(u32(100, UNKNOWN, 3) + b"\0\0")
            cut.sock.shutdown(socket.SHUT_WR)
            assert cut.closed_by_master()
        assert_serves(master)  # while one client still stalls mid-message
        # the rest of the stalled one's message comes: it is answered, and the next
        stalled.send(b"\0" * 90 + frame(u32(ALIVE_CHECK, 4)))
        assert stalled.message() == failure(3, b"unsupported request")
        assert stalled.message() == frame(u32(S_ALIVE, 4, master.pid))
        stalled.sock.close()


# ---------------------------------------------------------------- requests


def test_unknown_message_type_answers_failure(master: Master) -> None:
    with attack(master), Raw(master.sock) as raw:
        raw.hello()
        raw.send(frame(u32(UNKNOWN, 9) + b"whatever"))
        assert raw.message() == failure(9, b"unsupported request")
        raw.send(frame(u32(0x00000042, 10)))
        assert raw.message() == failure(10, b"unsupported request")
        # the same connection goes on
        raw.send(frame(u32(ALIVE_CHECK, 11)))
        assert raw.message() == frame(u32(S_ALIVE, 11, master.pid))


def test_truncated_new_session_is_dropped(master: Master) -> None:
    body = new_session(5, b"echo hi")
    with attack(master, "truncated"), Raw(master.sock) as raw:
        raw.hello()
        raw.send(frame(body[:20]))  # the flags end in the middle
        assert raw.closed_by_master()


def sshd_sessions(master: Master) -> int:
    return master.sshd.log.read_text(errors="replace").count("Starting session:")


@pytest.mark.parametrize("passed", [0, 1, 2])
def test_new_session_short_of_descriptors_then_closed(master: Master, passed: int) -> None:
    pipes = [os.pipe() for _ in range(passed)]
    started = sshd_sessions(master)
    with attack(master), Raw(master.sock) as raw:
        raw.hello()
        raw.send(frame(new_session(5, b"echo hi")))
        for _, write in pipes:
            raw.pass_fd(write)
            os.close(write)
        raw.sock.shutdown(socket.SHUT_WR)
        assert raw.closed_by_master()
        assert sshd_sessions(master) == started  # no channel was opened for it
        for read, _ in pipes:  # and the master has let go of what it was given
            assert os.read(read, 10) == b""
    for read, _ in pipes:
        os.close(read)


def test_session_with_descriptors_of_the_wrong_kind(master: Master) -> None:
    """stdin a directory, stdout and stderr open only for reading: the command runs,
    what it wrote is dropped, and its exit status comes back."""
    folder = os.open("/", os.O_RDONLY)
    read_only = os.open(os.devnull, os.O_RDONLY)
    try:
        with attack(master), Raw(master.sock) as raw:
            raw.hello()
            raw.send(frame(new_session(1, b"echo out; echo err >&2; exit 3")))
            for fd in (folder, read_only, read_only):
                raw.pass_fd(fd)
            opened = raw.message()
            assert opened is not None and opened[:12] == u32(12, S_SESSION_OPENED, 1)
            session_id = struct.unpack(">I", opened[12:])[0]
            assert raw.message() == frame(u32(S_EXIT_MESSAGE, session_id, 3))
            assert raw.closed_by_master()
    finally:
        os.close(folder)
        os.close(read_only)


def test_session_whose_output_reader_is_gone(master: Master) -> None:
    """stdout a socket whose other end is closed (EPIPE, not SIGPIPE, for the master),
    while the command writes a megabyte."""
    stdin_r, stdin_w = os.pipe()
    gone, kept = socket.socketpair()
    gone.close()
    try:
        with attack(master), Raw(master.sock) as raw:
            raw.hello()
            raw.send(frame(new_session(1, b"yes | head -c 1000000")))
            for fd in (stdin_r, kept.fileno(), kept.fileno()):
                raw.pass_fd(fd)
            opened = raw.message()
            assert opened is not None and opened[:12] == u32(12, S_SESSION_OPENED, 1)
            session_id = struct.unpack(">I", opened[12:])[0]
            assert raw.message() == frame(u32(S_EXIT_MESSAGE, session_id, 0))
            assert raw.closed_by_master()
    finally:
        os.close(stdin_r)
        os.close(stdin_w)
        kept.close()


def test_terminal_name_not_utf8_is_dropped(master: Master) -> None:
    body = u32(NEW_SESSION, 1) + string(b"") + u32(1, 0, 0, 0, NO_ESCAPE)
    body += string(b"xterm\xff\xfe") + string(b"echo hi")
    with attack(master, "not UTF-8"), Raw(master.sock) as raw:
        raw.hello()
        raw.send(frame(body))
        assert raw.closed_by_master()


def test_second_session_on_one_connection_is_refused(master: Master) -> None:
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    spare = [os.pipe() for _ in range(3)]  # the second session's
    with attack(master), Raw(master.sock) as raw:
        raw.hello()
        raw.send(frame(new_session(1, b"cat")))
        for fd in (stdin_r, stdout_w, stderr_w):
            raw.pass_fd(fd)
            os.close(fd)
        opened = raw.message()
        assert opened is not None and opened[:12] == u32(12, S_SESSION_OPENED, 1)
        session_id = struct.unpack(">I", opened[12:])[0]
        raw.send(frame(new_session(2, b"echo second")))
        for _, write in spare:
            raw.pass_fd(write)
            os.close(write)
        assert raw.message() == failure(2, b"Multiple sessions not supported")
        for read, _ in spare:  # let go of at once
            assert os.read(read, 10) == b""
        # the first session is unharmed
        os.write(stdin_w, b"through the first\n")
        os.close(stdin_w)
        out = b""
        while chunk := os.read(stdout_r, 100):
            out += chunk
        assert out == b"through the first\n"
        assert raw.message() == frame(u32(S_EXIT_MESSAGE, session_id, 0))
        assert raw.closed_by_master()
        assert os.read(stderr_r, 100) == b""
    for fd in (stdout_r, stderr_r, *(read for read, _ in spare)):
        os.close(fd)


def _sleeping_child(log: str) -> int | None:
    """The pid sshd names on closing a channel whose command, ``sleep 30``, still runs;
    never 0 (a kill(0) would reach this test's whole process group)."""
    for found in re.finditer(r"session_close_by_channel: channel \d+ child (\d+)", log):
        pid = int(found.group(1))
        if pid <= 1:
            continue
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x0030\x00":
                return pid
        except OSError:
            continue
    return None


def test_client_gone_mid_command_closes_its_channel(master: Master) -> None:
    log = master.sshd.log
    offset = log.stat().st_size
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    child: int | None = None
    try:
        with attack(master):
            with Raw(master.sock) as raw:
                raw.hello()
                # exec: the account's shell becomes the sleep (whatever its start-up
                # files run first), so the pid sshd names below is the command's
                raw.send(frame(new_session(1, b"exec sleep 30")))
                for fd in (stdin_r, stdout_w, stdout_w):
                    raw.pass_fd(fd)
                os.close(stdin_r)
                os.close(stdout_w)
                opened = raw.message()
                assert opened is not None and opened[:12] == u32(12, S_SESSION_OPENED, 1)
                deadline = time.monotonic() + 10
                while "Starting session: command" not in log.read_bytes()[offset:].decode():
                    assert time.monotonic() < deadline, "sshd never started the command"
                    time.sleep(0.05)
            # the client is gone mid-command: the master lets go of its descriptors
            assert os.read(stdout_r, 10) == b""
            # and closes the channel, though the command still runs (sshd says so). The
            # log may also hold an earlier session's late close ("child 0": its process
            # is gone); only a live pid running our sleep is this session's
            deadline = time.monotonic() + 10
            while (child := _sleeping_child(log.read_bytes()[offset:].decode())) is None:
                assert time.monotonic() < deadline, "the master never closed the channel"
                time.sleep(0.05)
            # the sleep we started, by its pid: sshd then ends that session (its own
            # id; another session's late lines say other pids)
            killed, child = child, None
            os.kill(killed, signal.SIGTERM)
            ended = re.compile(rf"session_exit_message: session (\d+) channel \d+ pid {killed}\b")
            deadline = time.monotonic() + 10
            while (found := ended.search(log.read_bytes()[offset:].decode())) is None:
                assert time.monotonic() < deadline, "sshd never saw the command end"
                time.sleep(0.05)
            closed = re.compile(rf"Close session: .* id {found.group(1)}\b")
            while not closed.search(log.read_bytes()[offset:].decode()[found.end() - 1 :]):
                assert time.monotonic() < deadline, "sshd never ended the session"
                time.sleep(0.05)
    finally:
        os.close(stdin_w)
        os.close(stdout_r)
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)


def test_client_that_never_reads_its_replies(master: Master) -> None:
    count = 20000  # 240 kB of requests, 320 kB of replies: more than the socket holds
    requests = b"".join(frame(u32(ALIVE_CHECK, rid)) for rid in range(count))
    with attack(master), Raw(master.sock, timeout=30) as raw:
        raw.hello()
        sent: list[bool] = []

        def flood() -> None:
            raw.send(requests)
            sent.append(True)

        sender = threading.Thread(target=flood)
        sender.start()
        try:
            assert_serves(master)  # while the replies pile up unread
            sender.join(30)
            assert sent, "the master stopped reading the client's requests"
        finally:
            sender.join(30)
        for rid in range(count):
            assert raw.message() == frame(u32(S_ALIVE, rid, master.pid))


def test_many_connections_opened_and_closed(master: Master) -> None:
    with attack(master):
        held = [Raw(master.sock) for _ in range(200)]
        for index, raw in enumerate(held):
            if index % 2:
                raw.hello()
            raw.sock.close()
        for index in range(200):
            with Raw(master.sock) as raw:
                if index % 3 == 0:
                    raw.hello()
                    raw.send(frame(u32(ALIVE_CHECK, index)))


def test_descriptors_not_asked_for_are_not_hoarded(master: Master) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        with attack(master, "too many descriptors"), Raw(master.sock) as raw:
            raw.hello()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for rid in range(100):
                    socket.send_fds(raw.sock, [frame(u32(ALIVE_CHECK, rid))], [null] * 4)
            replies = 0
            while (reply := raw.message()) is not None:
                assert reply == frame(u32(S_ALIVE, replies, master.pid))
                replies += 1
            assert replies <= 2  # 4, then 8 descriptors held; 12 are too many
    finally:
        os.close(null)


def session_past_max_sessions(master: Master) -> bytes | None:
    """Ten sessions running cat (sshd's MaxSessions is 10), then an eleventh, whose
    channel sshd refuses: what the master answered the eleventh before it closed.
    Checks that the master let go of its descriptors, that the ten go on, and (once
    they are closed) that it still serves."""
    log = master.sshd.log
    closed_before = log.read_text(errors="replace").count("Close session:")
    clients: list[Raw] = []
    ends: list[tuple[int, int]] = []  # each session's stdin (to write) and stdout
    try:
        with attack(master):
            reply: bytes | None = None
            for index in range(11):
                raw = Raw(master.sock)
                clients.append(raw)
                raw.hello()
                raw.send(frame(new_session(1, b"cat")))
                stdin_r, stdin_w = os.pipe()
                stdout_r, stdout_w = os.pipe()
                ends.append((stdin_w, stdout_r))
                # stderr apart: what the account's shell start-up says there (ten shells
                # at once) is not the session's output
                stderr_w = os.open(os.devnull, os.O_WRONLY)
                for fd in (stdin_r, stdout_w, stderr_w):
                    raw.pass_fd(fd)
                os.close(stdin_r)
                os.close(stdout_w)
                os.close(stderr_w)
                reply = raw.message()
                if index < 10:
                    assert reply is not None and reply[:12] == u32(12, S_SESSION_OPENED, 1)
            if reply is not None:
                assert clients[-1].closed_by_master()
            assert os.read(ends[-1][1], 10) == b""  # the eleventh's let go of
            for stdin_w, stdout_r in ends[:10]:  # the ten go on
                os.write(stdin_w, b"still here\n")
                assert os.read(stdout_r, 100) == b"still here\n"
            for raw in clients:
                raw.sock.close()
            deadline = time.monotonic() + 10  # sshd has room again
            while log.read_text(errors="replace").count("Close session:") < closed_before + 10:
                assert time.monotonic() < deadline, "the ten sessions never closed"
                time.sleep(0.05)
    finally:
        for raw in clients:
            raw.sock.close()
        for pair in ends:
            for fd in pair:
                os.close(fd)
    return reply


def test_session_refused_by_the_server_leaves_the_master_serving(master: Master) -> None:
    reply = session_past_max_sessions(master)
    assert reply is not None and reply[4:12] == u32(S_FAILURE, 1), reply


def test_session_refused_by_the_server_answers_failure(master: Master) -> None:
    # OpenSSH's master answers so (mux_session_confirm)
    assert session_past_max_sessions(master) == failure(1, b"Session open refused by peer")


# ---------------------------------------------------------------- forwards


def test_open_forward_of_unknown_type_is_dropped(master: Master) -> None:
    body = u32(OPEN_FWD, 5, 9) + string(b"") + u32(free_port()) + string(b"x") + u32(22)
    with attack(master, "forward type 9"), Raw(master.sock) as raw:
        raw.hello()
        raw.send(frame(body))
        assert raw.closed_by_master()


@pytest.mark.parametrize(
    ("listen_port", "connect_port"), [(70000, 22), (0, 70000), (0, 0)], ids=str
)
def test_open_forward_of_bad_port_answers_failure(
    master: Master, listen_port: int, connect_port: int
) -> None:
    body = (
        u32(OPEN_FWD, 5, FWD_LOCAL)
        + string(b"127.0.0.1")
        + u32(listen_port)
        + string(b"127.0.0.1")
        + u32(connect_port)
    )
    with attack(master), Raw(master.sock) as raw:
        raw.hello()
        raw.send(frame(body))
        reply = raw.message()
        assert reply is not None and reply[4:12] == u32(S_FAILURE, 5), reply
        raw.send(frame(u32(ALIVE_CHECK, 6)))
        assert raw.message() == frame(u32(S_ALIVE, 6, master.pid))


def stdio_forward_to_closed_port(master: Master) -> bytes | None:
    """A NEW_STDIO_FWD (as ssh -W sends it) to a port nobody listens on: what the
    master answered before it closed, after checking that it let go of the client's
    descriptors and still serves."""
    closed = free_port()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        with attack(master), Raw(master.sock) as raw:
            raw.hello()
            raw.send(frame(u32(NEW_STDIO_FWD, 7) + string(b"") + string(b"127.0.0.1")
                           + u32(closed)))  # fmt: skip
            for fd in (in_r, out_w):
                raw.pass_fd(fd)
                os.close(fd)
            reply = raw.message()
            if reply is not None:
                assert raw.closed_by_master()
            assert os.read(out_r, 10) == b""  # the master let go of the descriptors
    finally:
        os.close(in_w)
        os.close(out_r)
    return reply


def test_stdio_forward_to_closed_port_leaves_the_master_serving(master: Master) -> None:
    reply = stdio_forward_to_closed_port(master)
    assert reply is not None and reply[4:12] == u32(S_FAILURE, 7), reply


def test_stdio_forward_to_closed_port_answers_failure(master: Master) -> None:
    # OpenSSH's master answers so (mux_stdio_confirm)
    assert stdio_forward_to_closed_port(master) == failure(7, b"Session open refused by peer")


def test_ssh_stdio_forward_to_closed_port_fails(master: Master) -> None:
    result = ssh_via(master, "-W", f"127.0.0.1:{free_port()}", "x")
    assert master.proc.poll() is None
    # as through OpenSSH's master
    assert result.returncode == 255, result.stderr
    assert "Stdio forwarding request failed: Session open refused by peer" in result.stderr


# ---------------------------------------------------------------- peer credentials


def test_client_of_another_uid_is_refused(master: Master) -> None:
    if os.geteuid() != 0:
        missing("needs root to act as another user")
        return
    folder = os.path.dirname(master.sock)
    # the socket is 0600 in a 0700 folder; open the way so that what refuses nobody
    # is the master's own peer-credential check
    os.chmod(folder, 0o755)
    os.chmod(master.sock, 0o666)
    try:
        with attack(master, "multiplex uid mismatch: peer euid 65534"):
            pid = os.fork()
            if pid == 0:  # the child: nobody, connecting and asking for the master's pid
                status = 4
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    status = 3
                    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    conn.settimeout(10)
                    conn.connect(master.sock)
                    status = 2
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        conn.sendall(frame(u32(HELLO, 4)) + frame(u32(ALIVE_CHECK, 1)))
                    try:
                        reply = conn.recv(100)
                    except ConnectionResetError:
                        reply = b""
                    status = 0 if reply == b"" else 1
                finally:
                    os._exit(status)
            _, code = os.waitpid(pid, 0)
            assert os.WEXITSTATUS(code) == 0, {
                1: "nobody got an answer",
                2: "the master neither answered nor closed (timeout)",
                3: "nobody could not connect",
                4: "could not become nobody",
            }.get(os.WEXITSTATUS(code))
    finally:
        os.chmod(master.sock, 0o600)
        os.chmod(folder, 0o700)

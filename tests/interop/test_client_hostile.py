"""A server (asyncssh, test-only, with raw packets of its own) that sends what no good
server sends after the login: exit statuses past 255, messages nobody knows, a
DISCONNECT whose text is not UTF-8. keytool exec and OpenSSH's ssh, side by side."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.interop.test_client_peers import _AsyncsshThread
from tests.peers import require

asyncssh = pytest.importorskip("asyncssh")
from asyncssh.packet import Boolean, String, UInt32  # noqa: E402

MSG_CHANNEL_EOF = 96
MSG_CHANNEL_CLOSE = 97
MSG_CHANNEL_REQUEST = 98
CLIENTS = ("ssh", "keytool")


class _NoAuth(asyncssh.SSHServer):  # type: ignore[misc]
    def begin_auth(self, username: str) -> bool:
        return False  # anybody is in: the test is about what comes after


def _both(
    server: _AsyncsshThread, tmp_path: Path
) -> Iterator[tuple[str, subprocess.CompletedProcess[bytes]]]:
    for client in CLIENTS:
        program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
        yield client, subprocess.run(
            [*program, "-F", "none", "-p", str(server.port), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={tmp_path / client}",
             "-o", "GlobalKnownHostsFile=/dev/null",
             "-o", "StrictHostKeyChecking=accept-new", "someone@127.0.0.1", "cmd"],
            capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip


def _raw(process: object, kind: int, *fields: bytes) -> None:
    channel = process.channel  # type: ignore[attr-defined]
    channel.get_connection().send_packet(kind, UInt32(channel._send_chan), *fields)


@pytest.mark.parametrize("status", [0x80000000, 0xFFFFFFFF, 0x101, 7])
def test_an_exit_status_of_any_uint32(tmp_path: Path, status: int) -> None:
    """ssh exits with the status's low 8 bits; keytool too (it used to end in a
    Python traceback past 2^31)."""

    async def behaviour(process: object) -> None:
        _raw(process, MSG_CHANNEL_REQUEST, String(b"exit-status"), Boolean(False), UInt32(status))
        _raw(process, MSG_CHANNEL_EOF)
        _raw(process, MSG_CHANNEL_CLOSE)
        await asyncio.sleep(1)

    with _AsyncsshThread(_NoAuth, process_factory=behaviour) as server:
        seen = {c: (r.returncode, b"Traceback" in r.stderr) for c, r in _both(server, tmp_path)}
    assert seen["keytool"] == seen["ssh"] == (status & 0xFF, False)


def test_messages_nobody_knows_are_answered_and_passed_over(tmp_path: Path) -> None:
    """Message numbers 150 and 60 after the login: ssh answers UNIMPLEMENTED and the
    session goes on; keytool too (it used to end the session)."""

    async def behaviour(process: object) -> None:
        connection = process.channel.get_connection()  # type: ignore[attr-defined]
        connection.send_packet(150)
        connection.send_packet(60)
        await asyncio.sleep(0.5)
        process.stdout.write("survived\n")  # type: ignore[attr-defined]
        process.exit(0)  # type: ignore[attr-defined]

    with _AsyncsshThread(_NoAuth, process_factory=behaviour) as server:
        seen = {c: (r.returncode, r.stdout) for c, r in _both(server, tmp_path)}
    assert seen["keytool"] == seen["ssh"] == (0, b"survived\n")


def test_a_disconnect_text_that_is_not_utf8_is_shown_made_safe(tmp_path: Path) -> None:
    async def behaviour(process: object) -> None:
        connection = process.channel.get_connection()  # type: ignore[attr-defined]
        text = b"bye \x1b]0;pwned\x07 \xff\xfe end"
        connection.send_packet(1, UInt32(11), String(text), String(b""))
        await asyncio.sleep(1)

    with _AsyncsshThread(_NoAuth, process_factory=behaviour) as server:
        seen = dict(_both(server, tmp_path))
    ours = seen["keytool"]
    assert ours.returncode == seen["ssh"].returncode == 255
    # the text as ssh logs it (strnvis VIS_SAFE: ESC and the bytes that are not UTF-8
    # in octal, BEL as it is), in keytool's words around it
    text = b"bye \\033]0;pwned\x07 \\377\\376 end"
    assert b":11: " + text + b"\r\n" in seen["ssh"].stderr, seen["ssh"].stderr
    line = ours.stderr.strip().splitlines()[-1]
    assert line == b"keytool: disconnected by the server: " + text + b" (by application)"
    assert b"\x1b" not in line


def test_a_malformed_exit_signal_is_one_plain_line(tmp_path: Path) -> None:
    """An exit-signal whose name is not ASCII: ssh ends with 255; keytool too, with one
    line of its own that says what was wrong once."""

    async def behaviour(process: object) -> None:
        _raw(process, MSG_CHANNEL_REQUEST, String(b"exit-signal"), Boolean(False),
             String(b"T\xffRM"), Boolean(False), String(b""), String(b""))  # fmt: skip
        _raw(process, MSG_CHANNEL_EOF)
        _raw(process, MSG_CHANNEL_CLOSE)
        await asyncio.sleep(1)

    with _AsyncsshThread(_NoAuth, process_factory=behaviour) as server:
        seen = dict(_both(server, tmp_path))
    ours = seen["keytool"]
    assert ours.returncode == seen["ssh"].returncode == 255
    lines = ours.stderr.decode("utf-8", "replace").strip().splitlines()
    errors = [line for line in lines if line.startswith("keytool:")]
    assert len(errors) == 1 and errors[0].count("malformed") == 1, lines


def test_eof_said_twice_is_passed_over(tmp_path: Path) -> None:
    """A server that sends EOF twice, then its status: ssh prints the output and exits
    with the status; keytool too (it used to end the session with 255)."""

    async def behaviour(process: object) -> None:
        process.stdout.write("out\n")  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)
        _raw(process, MSG_CHANNEL_EOF)
        _raw(process, MSG_CHANNEL_EOF)
        _raw(process, MSG_CHANNEL_REQUEST, String(b"exit-status"), Boolean(False), UInt32(3))
        _raw(process, MSG_CHANNEL_CLOSE)
        await asyncio.sleep(1)

    with _AsyncsshThread(_NoAuth, process_factory=behaviour) as server:
        seen = {c: (r.returncode, r.stdout) for c, r in _both(server, tmp_path)}
    assert seen["keytool"] == seen["ssh"] == (3, b"out\n")


def test_copy_id_to_a_server_that_asks_nothing(tmp_path: Path) -> None:
    """A server that lets anybody in answers copy-id's key query with SUCCESS: copy-id
    takes that as logged in and installs (here over SFTP, into the server's folder),
    instead of failing on an "unexpected message"."""
    root = tmp_path / "root"
    root.mkdir()
    key = tmp_path / "id"
    made = subprocess.run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                          capture_output=True, timeout=60)  # fmt: skip
    assert made.returncode == 0

    async def behaviour(process: object) -> None:
        process.exit(1)  # type: ignore[attr-defined]

    def sftp(channel: object) -> object:
        return asyncssh.SFTPServer(channel, chroot=str(root))

    with _AsyncsshThread(_NoAuth, process_factory=behaviour, sftp_factory=sftp) as server:
        done = subprocess.run(
            [*KEYTOOL, "copy-id", "-F", "none", "-s", "--no-verify", "-i", f"{key}.pub",
             "-p", str(server.port), "-o", f"UserKnownHostsFile={tmp_path / 'known'}",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=accept-new",
             "someone@127.0.0.1"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "installed" in done.stdout
    assert (root / ".ssh" / "authorized_keys").read_bytes() == Path(f"{key}.pub").read_bytes()


MSG_CHANNEL_DATA = 94
MSG_CHANNEL_EXTENDED_DATA = 95


@pytest.mark.parametrize("after", ["close", "eof", "eof-stderr"])
def test_output_before_a_bad_message_is_written(tmp_path: Path, after: str) -> None:
    """The command's output, then in the same burst data on a closed channel (after
    CLOSE), data after EOF, or stderr data after EOF. ssh writes the output it has,
    drops data after EOF (status 0) and ends at stderr data after EOF (255); keytool
    dropped the output too and ended at every one of them."""

    async def behaviour(process: object) -> None:
        process.stdout.write("before\n")  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)
        status = (String(b"exit-status"), Boolean(False), UInt32(0))
        if after == "close":
            _raw(process, MSG_CHANNEL_REQUEST, *status)
            _raw(process, MSG_CHANNEL_EOF)
            _raw(process, MSG_CHANNEL_CLOSE)
            _raw(process, MSG_CHANNEL_DATA, String(b"after\n"))
        else:
            _raw(process, MSG_CHANNEL_EOF)
            if after == "eof":
                _raw(process, MSG_CHANNEL_DATA, String(b"after\n"))
            else:
                _raw(process, MSG_CHANNEL_EXTENDED_DATA, UInt32(1), String(b"after\n"))
            _raw(process, MSG_CHANNEL_REQUEST, *status)
            _raw(process, MSG_CHANNEL_CLOSE)
        await asyncio.sleep(1)

    with _AsyncsshThread(_NoAuth, process_factory=behaviour) as server:
        seen = {c: (r.returncode, r.stdout, b"Traceback" in r.stderr)
                for c, r in _both(server, tmp_path)}  # fmt: skip
    status = 255 if after == "eof-stderr" else 0
    assert seen["keytool"] == (status, b"before\n", False)
    if after == "close":
        # ssh ignores data for a channel it has not freed yet, and ends (255) at data
        # for one it has: which, depends on how the burst is read (a loaded machine)
        assert seen["ssh"][1:] == (b"before\n", False) and seen["ssh"][0] in (0, 255)
    else:
        assert seen["ssh"] == seen["keytool"]


def test_copy_id_takes_a_disconnect_with_a_reason_at_its_word(tmp_path: Path) -> None:
    """A server that says DISCONNECT (with a reason) before the key exchange: ssh-copy-id
    makes one connection and fails; keytool retried five times more, as if MaxStartups
    had dropped it. A connection closed without a word is still retried (here twice,
    then the server says why, and the retries end)."""
    import socket
    import struct
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    counts = {"say": 0, "close": 0, "said": 0}
    mode = {"now": "say"}

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                if mode["now"] == "close" and counts["close"] == 2:
                    mode["now"] = "said"  # two retries seen: now say why, to end them
                counts[mode["now"]] += 1
                conn.sendall(b"SSH-2.0-Hostile\r\n")
                if mode["now"] in ("say", "said"):
                    text = b"go away"
                    payload = bytes([1]) + struct.pack(">I", 11) + struct.pack(">I", len(text))
                    payload += text + struct.pack(">I", 0)
                    padding = 8 - (len(payload) + 5) % 8 + 8
                    packet = bytes([padding]) + payload + bytes(padding)
                    conn.sendall(struct.pack(">I", len(packet)) + packet)
                with contextlib.suppress(OSError):
                    conn.recv(4096)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    key = tmp_path / "id"
    subprocess.run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                   capture_output=True, timeout=60, check=True)  # fmt: skip
    try:
        for now in ("say", "close"):
            mode["now"] = now
            done = subprocess.run(
                [*KEYTOOL, "copy-id", "-F", "none", "-i", f"{key}.pub", "-p", str(port),
                 "-o", f"UserKnownHostsFile={tmp_path / 'known'}", "-o", "BatchMode=yes",
                 "-o", "GlobalKnownHostsFile=/dev/null", "someone@127.0.0.1"],
                capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
            )  # fmt: skip
            assert done.returncode == 1 and "Traceback" not in done.stderr
            assert "go away" in done.stderr  # in "close", the third connection's word
    finally:
        listener.close()
    assert counts["say"] == 1
    assert counts["close"] == 2 and counts["said"] == 1


def test_copy_id_gives_up_a_silent_server_as_server_alive_says(tmp_path: Path) -> None:
    """A server that stops reading and answering once the install script started:
    ssh-copy-id (ssh) gives it up after ServerAliveInterval x (ServerAliveCountMax + 1)
    seconds; keytool copy-id waited two minutes (its own limit), ignoring them."""

    async def behaviour(process: object) -> None:
        process.stdout.write("hello\n")  # type: ignore[attr-defined]
        connection = process.channel.get_connection()  # type: ignore[attr-defined]
        connection._transport.pause_reading()  # deaf from now on, connection open
        await asyncio.sleep(60)

    key = tmp_path / "id"
    subprocess.run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                   capture_output=True, timeout=60, check=True)  # fmt: skip
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)  # ssh-copy-id's temp files go there
    tools = ([require("ssh-copy-id"), "-f", "-F", "/dev/null"], [*KEYTOOL, "copy-id", "-F", "none"])
    with _AsyncsshThread(_NoAuth, process_factory=behaviour) as server:
        for tool in tools:
            done = subprocess.run(
                [*tool, "-i", f"{key}.pub", "-p", str(server.port), "-o", "BatchMode=yes",
                 "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2",
                 "-o", f"UserKnownHostsFile={tmp_path / 'known'}",
                 "-o", "GlobalKnownHostsFile=/dev/null",
                 "-o", "StrictHostKeyChecking=accept-new", "someone@127.0.0.1"],
                capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=40,
                env={**base_env(), "HOME": str(home)},
            )  # fmt: skip
            assert done.returncode != 0
            assert "not responding" in done.stderr, (tool, done.stderr)

"""Texts a server sends for a person, as OpenSSH 9.2's ssh shows them: through its log
functions, which escape them (strnvis VIS_SAFE | VIS_OCTAL, in every locale): printable
ASCII, tab, newline, CR, BEL and backspace as they are, a backslash doubled, every other
byte (UTF-8 too) as \\ooo. keytool showed each such byte as "?". A test-only asyncssh
server sends a DISCONNECT, a DEBUG message and a refused channel open; keytool exec and
ssh side by side."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import free_port, require

asyncssh = pytest.importorskip("asyncssh")
from asyncssh.packet import Boolean, String, UInt32  # noqa: E402

#: Latin-1, UTF-8, a newline, a tab, CR, ESC, DEL, a backslash, BEL and backspace
TEXT = b"caf\xe9 \xc3\xa9 nl\nX tab\tY cr\rZ esc\x1b[31m del\x7f bs\\ bel\a bs2\b end"
#: what ssh printed for it, in C.UTF-8 and in C alike
LOGGED = b"caf\\351 \\303\\251 nl\nX tab\tY cr\rZ esc\\033[31m del\\177 bs\\\\ bel\a bs2\b end"
LOCALES = ["C.UTF-8", "C"]


class _Raw(str):
    """A reason asyncssh sends as these very bytes (it encodes a str as UTF-8)."""

    def encode(self, *args: object, **kwargs: object) -> bytes:  # type: ignore[override]
        return TEXT


class _Server(asyncssh.SSHServer):  # type: ignore[misc]
    """Anybody is in; a DEBUG message first when ``debug``; every direct-tcpip channel
    refused with TEXT."""

    debug = False

    def connection_made(self, conn: object) -> None:
        if self.debug:
            conn.send_packet(4, Boolean(True), String(TEXT), String(b""))  # type: ignore[attr-defined]

    def begin_auth(self, username: str) -> bool:
        return False

    def connection_requested(self, *args: object) -> None:
        raise asyncssh.ChannelOpenError(1, _Raw("x"))


class _Debugging(_Server):
    debug = True


async def _goodbye(process: object) -> None:
    connection = process.channel.get_connection()  # type: ignore[attr-defined]
    connection.send_packet(1, UInt32(11), String(TEXT), String(b""))
    await asyncio.sleep(1)


async def _ran(process: object) -> None:
    process.stdout.write("ran\n")  # type: ignore[attr-defined]
    process.exit(0)  # type: ignore[attr-defined]


class _Thread:
    """The asyncssh server in a thread, on a port the kernel picks."""

    def __init__(self, factory: type, process: object) -> None:
        self.factory, self.process = factory, process
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            key = asyncssh.generate_private_key("ssh-ed25519")
            # port 0: the kernel's free port, bound at once (no race with other tests)
            self.server = await asyncssh.create_server(
                self.factory, "127.0.0.1", 0, server_host_keys=[key],
                process_factory=self.process, agent_forwarding=False,
                x11_forwarding=False,
            )  # fmt: skip
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def __enter__(self) -> _Thread:
        self.thread.start()
        assert self.ready.wait(20) and self.port, "no free port"
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()
            # the connections' own tasks (a goodbye still sleeping) end with the loop
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(20)


def _both(
    server: _Thread, tmp_path: Path, locale: str, *args: str
) -> dict[str, subprocess.CompletedProcess[bytes]]:
    """ssh and keytool exec against ``server`` with ``args`` before the destination."""
    seen = {}
    for client in ("ssh", "keytool"):
        program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
        seen[client] = subprocess.run(
            [*program, "-F", "none", "-p", str(server.port), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={tmp_path / client}",
             "-o", "GlobalKnownHostsFile=/dev/null",
             "-o", "StrictHostKeyChecking=accept-new", *args],
            capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
            env=base_env(HOME=str(tmp_path), LC_ALL=locale),
        )  # fmt: skip
    return seen


@pytest.mark.parametrize("locale", LOCALES)
def test_a_disconnect_text_as_ssh_logs_it(tmp_path: Path, locale: str) -> None:
    """ssh: "Received disconnect from 127.0.0.1 port P:11: TEXT"; keytool says it in its
    own words, with the same bytes for TEXT (it showed "?" for each odd byte)."""
    with _Thread(_Server, _goodbye) as server:
        seen = _both(server, tmp_path, locale, "someone@127.0.0.1", "cmd")
        port = server.port
    theirs = f"Received disconnect from 127.0.0.1 port {port}:11: ".encode() + LOGGED + b"\r\n"
    assert seen["ssh"].returncode == seen["keytool"].returncode == 255
    assert theirs in seen["ssh"].stderr, seen["ssh"].stderr
    ours = b"keytool: disconnected by the server: " + LOGGED + b" (by application)\n"
    assert ours in seen["keytool"].stderr, seen["keytool"].stderr


@pytest.mark.parametrize("locale", LOCALES)
def test_a_debug_message_as_ssh_v_logs_it(tmp_path: Path, locale: str) -> None:
    """With -v, ssh logs "debug1: Remote: TEXT" (without -v nothing, always_display or
    not); keytool -v has the same TEXT after its own words."""
    with _Thread(_Debugging, _ran) as server:
        quiet = _both(server, tmp_path, locale, "someone@127.0.0.1", "cmd")
        seen = _both(server, tmp_path, locale, "-v", "someone@127.0.0.1", "cmd")
    for client in ("ssh", "keytool"):
        assert quiet[client].returncode == seen[client].returncode == 0
        assert b"tab" not in quiet[client].stderr
    assert b"debug1: Remote: " + LOGGED + b"\r\n" in seen["ssh"].stderr
    assert b"keytool: server debug message: " + LOGGED + b"\n" in seen["keytool"].stderr


@pytest.mark.parametrize("locale", LOCALES)
def test_a_refused_forward_as_ssh_logs_it(tmp_path: Path, locale: str) -> None:
    """-L, a connection to it refused by the server: ssh logs "channel 2: open failed:
    administratively prohibited: TEXT", keytool the same TEXT after its words."""
    import socket
    import time

    seen = {}
    with _Thread(_Server, _ran) as server:
        for client, program in (("ssh", [require("ssh")]), ("keytool", [*KEYTOOL, "exec"])):
            local = free_port()  # below the ephemeral range: nobody else is given it
            job = subprocess.Popen(
                [*program, "-F", "none", "-p", str(server.port), "-o", "BatchMode=yes",
                 "-o", f"UserKnownHostsFile={tmp_path / client}",
                 "-o", "GlobalKnownHostsFile=/dev/null",
                 "-o", "StrictHostKeyChecking=accept-new", "-N",
                 "-L", f"{local}:127.0.0.1:9", "someone@127.0.0.1"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env=base_env(HOME=str(tmp_path), LC_ALL=locale),
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 20
                while True:
                    try:
                        with socket.create_connection(("127.0.0.1", local), timeout=5) as conn:
                            conn.settimeout(10)
                            assert conn.recv(10) == b""
                        break
                    except ConnectionRefusedError:
                        assert time.monotonic() < deadline, "the forward never listened"
                        time.sleep(0.1)
                time.sleep(0.5)
            finally:
                job.terminate()
                _, err = job.communicate(timeout=20)
            seen[client] = err
    assert b"open failed: administratively prohibited: " + LOGGED + b"\r\n" in seen["ssh"]
    assert (
        b"the server did not connect: administratively prohibited: " + LOGGED + b"\n"
        in (seen["keytool"])
    ), seen["keytool"]


@pytest.mark.parametrize("locale", LOCALES)
def test_a_refused_stdio_forward_shows_the_text_escaped(tmp_path: Path, locale: str) -> None:
    """-W refused: ssh logs "channel 0: open failed: administratively prohibited: TEXT";
    keytool's error line has TEXT escaped the same way (\\ooo, not "?"; CR, BEL and
    backspace as they are, as ssh leaves them)."""
    with _Thread(_Server, _ran) as server:
        seen = _both(server, tmp_path, locale, "-W", "127.0.0.1:9", "someone@127.0.0.1")
    assert seen["ssh"].returncode == seen["keytool"].returncode == 255
    assert b"administratively prohibited: " + LOGGED + b"\r\n" in seen["ssh"].stderr
    assert b"administratively prohibited: " + LOGGED + b"\n" in seen["keytool"].stderr

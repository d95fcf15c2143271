"""Port forwarding against a hostile server (asyncssh, test-only): channels the client
never asked for are refused, and the forwards go on; an agent or X11 channel never
asked for is a warning, in ssh's words. The server records what keytool answered."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen, ssh_words
from tests.peers import free_port, stop_process

asyncssh = pytest.importorskip("asyncssh")

from tests.interop.test_client_forward import EchoService  # noqa: E402
from tests.interop.test_client_peers import _AnyKeyServer, _AsyncsshThread  # noqa: E402


def warning(what: str) -> list[str]:
    """What ssh says when a server opens an agent or X11 channel it did not ask for."""
    return [
        f"Warning: ssh server tried {what} forwarding.",
        "Warning: this is probably a break-in attempt by a malicious server.",
    ]


class _HostileForwarder(_AnyKeyServer):  # type: ignore[misc]
    """Takes any key; once the user is in, opens forwarded-tcpip channels: one for a
    port never asked for, then (if a forward was asked for) one for it, and sends a
    line through that one, recording the echo."""

    def __init__(self, record: list[object]) -> None:
        self.record = record
        self.asked: list[int] = []

    def connection_made(self, conn: object) -> None:
        self.conn = conn

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        self.asked.append(listen_port)
        self.record.append(("tcpip-forward", listen_host, listen_port))
        return True

    def auth_completed(self) -> None:
        asyncio.get_event_loop().create_task(self._hostile())

    async def _hostile(self) -> None:
        await asyncio.sleep(0.5)  # the -R requests, if any, have come
        unasked = free_port()
        try:
            await self.conn.open_connection("localhost", unasked, "10.0.0.1", 5555)  # type: ignore[attr-defined]
            self.record.append("unasked: opened")
        except asyncssh.ChannelOpenError as exc:
            self.record.append(("unasked", exc.code))
        try:  # the client's agent, which it did not offer (no -A); opened as a hostile
            # server would, past asyncssh's own check
            channel = self.conn.create_agent_channel()  # type: ignore[attr-defined]
            await channel.open(asyncssh.SSHUNIXSession)
            self.record.append("agent: opened")
        except asyncssh.ChannelOpenError as exc:
            self.record.append(("agent", exc.code))
        try:  # an X11 connection, which it did not ask for (no -X)
            await self.conn.create_x11_connection(asyncssh.SSHTCPSession, "127.0.0.1", 6010)  # type: ignore[attr-defined]
            self.record.append("x11: opened")
        except asyncssh.ChannelOpenError as exc:
            self.record.append(("x11", exc.code))
        for port in self.asked:
            reader, writer = await self.conn.open_connection("localhost", port, "10.0.0.1", 5556)  # type: ignore[attr-defined]
            writer.write(b"through keytool\n")
            self.record.append(("echo", await asyncio.wait_for(reader.readline(), 10)))
            writer.close()


def run_against(tmp_path: Path, record: list[object], *flags: str) -> str:
    key = keygen(tmp_path / "id")
    with _AsyncsshThread(lambda: _HostileForwarder(record)) as server:
        proc = subprocess.Popen(
            [*KEYTOOL, "exec", "-F", "none", "-p", str(server.port), "-i", str(key),
             "-o", f"UserKnownHostsFile={server.known_hosts(tmp_path)}",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-N", *flags,
             "user@127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=base_env(),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while len(record) < (5 if flags else 3) and time.monotonic() < deadline:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.05)
            assert proc.poll() is None  # still serving
        finally:
            stop_process(proc)
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.stdout is not None
        proc.stdout.close()
    assert "Traceback" not in err
    return err


def test_unasked_forwarded_channel_is_refused_without_remote_forwards(tmp_path: Path) -> None:
    record: list[object] = []
    err = run_against(tmp_path, record)
    # refused by the connection core: administratively prohibited (1), the agent and
    # X11 too, which ssh warns of as a likely break-in attempt
    assert record == [("unasked", 1), ("agent", 1), ("x11", 1)]
    assert ssh_words(err) == [*warning("agent"), *warning("X11")]


def test_unasked_port_refused_and_the_asked_one_served(tmp_path: Path) -> None:
    record: list[object] = []
    service = EchoService()
    try:
        port = free_port()
        err = run_against(tmp_path, record, "-R", f"{port}:127.0.0.1:{service.port}")
    finally:
        service.close()
    assert record[0] == ("tcpip-forward", "localhost", port)
    assert record[1] == ("unasked", 1)  # no such forward
    assert record[2] == ("agent", 1)  # not offered
    assert record[3] == ("x11", 1)  # not asked for
    assert record[4] == ("echo", b"through keytool\n")
    # the service records a connection once it is closed: keytool was stopped just now
    deadline = time.monotonic() + 10
    while not service.received and time.monotonic() < deadline:
        time.sleep(0.02)
    assert service.received == [b"through keytool\n"]
    assert ssh_words(err) == [*warning("agent"), *warning("X11")]

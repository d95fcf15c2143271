"""Shared helpers for the transport interop tests: host keys made once per session, and
a handshake that goes as far as the transport layer goes (a "none" auth answer); for
the interop tests at large, a wait for a server's log line and a process's end."""

from __future__ import annotations

import asyncio
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

from keytool.client import Transport, open_transport
from keytool.keys.base import PublicKey
from keytool.transport.config import TransportConfig
from keytool.transport.events import Algorithms
from keytool.wire import Reader, Writer
from tests.peers import require, run

#: RFC 4252 §5.2: SSH_MSG_USERAUTH_REQUEST for the "none" method
NONE_REQUEST = (
    Writer().byte(50).string(b"root").string(b"ssh-connection").string(b"none").getvalue()
)

#: file name in a server folder -> ssh-keygen arguments
HOST_KEYS = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa": ["-t", "rsa", "-b", "3072"],
}


def server_kexinit_packet() -> bytes:
    """A plausible KEXINIT from a server (curve25519, ed25519, aes128-ctr)."""
    from keytool.transport.handshake import kexinit_payload

    payload = kexinit_payload(
        ["curve25519-sha256"], ["ssh-ed25519"], ["aes128-ctr"], ["hmac-sha2-256"], bytes(16)
    )
    padding = 8 - (5 + len(payload)) % 8
    padding += 8 if padding < 4 else 0
    return struct.pack(">IB", 1 + len(payload) + padding, padding) + payload + bytes(padding)


def make_host_keys(folder: Path) -> Path:
    keygen = require("ssh-keygen")
    folder.mkdir(parents=True, exist_ok=True)
    for name, args in HOST_KEYS.items():
        run(
            [keygen, "-q", *args, "-N", "", "-f", folder / f"ssh_host_{name}_key"]
        ).check_returncode()
    return folder


def place_host_keys(source: Path, server_folder: Path, kinds: dict[str, str]) -> None:
    """Copy prepared keys into a server folder under the names tests.peers.Sshd expects
    (``kinds`` maps Sshd's name, e.g. "ecdsa", to a prepared one, e.g. "ecdsa521")."""
    server_folder.mkdir(parents=True, exist_ok=True)
    for target, prepared in kinds.items():
        for suffix in ("", ".pub"):
            destination = server_folder / f"ssh_host_{target}_key{suffix}"
            shutil.copy(source / f"ssh_host_{prepared}_key{suffix}", destination)
            destination.chmod(0o600)


@dataclass
class Outcome:
    algorithms: Algorithms
    strict_kex: bool
    host_key: PublicKey
    methods: list[str]
    session_id: bytes
    server_sig_algs: tuple[str, ...] | None
    trace: list[str] = field(default_factory=list)


async def accept_any(key: PublicKey, algorithm: str) -> None:
    return None


async def none_auth(transport: Transport, timeout: float = 10) -> list[str]:
    """Send a "none" user auth request; the methods the server lists in its failure."""
    await transport.send(NONE_REQUEST)
    reply = await transport.receive(timeout=timeout)
    assert reply[0] == 51, f"expected USERAUTH_FAILURE, got message {reply[0]}"
    r = Reader(reply)
    r.byte()
    return r.name_list()


async def _handshake(port: int, config: TransportConfig, trace: list[str]) -> Outcome:
    transport = await open_transport(
        "127.0.0.1", port, config, accept_any, connect_timeout=10, handshake_timeout=20
    )
    try:
        methods = await none_auth(transport)
        return Outcome(
            transport.algorithms,
            transport.algorithms.strict_kex,
            transport.host_key,
            methods,
            transport.session_id,
            transport.server_sig_algs,
            trace,
        )
    finally:
        await transport.close()


def handshake(port: int, **config: object) -> Outcome:
    """Connect with keytool's transport, reach ssh-userauth and a "none" answer."""
    trace: list[str] = []
    settings = TransportConfig(trace=trace.append, **config)  # type: ignore[arg-type]

    async def bounded() -> Outcome:
        async with asyncio.timeout(60):
            return await _handshake(port, settings, trace)

    return asyncio.run(bounded())


def wait_for_log(log: Path, text: str, timeout: float = 20.0, count: int = 1) -> str:
    """The server log once ``text`` is in it ``count`` times (servers write it
    asynchronously; on a loaded machine a line can come seconds after the client that
    caused it is gone)."""
    import time

    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace") if log.exists() else ""
        if content.count(text) >= count:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the server log:\n{content[-3000:]}")


def alive(pid: int) -> bool:
    """The process runs (a zombie waiting for its parent, or init, to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"

"""Key lifetimes on the boot clock, checked at every use: a key whose lifetime ran out
while the machine slept (the boot clock moved, the event loop's timer did not fire) is
never listed, used, replaced or removed, whether or not the expiry timer has run."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from agent import daemon, keyring
from agent.keyring import Keyring
from agent.server import AgentServer, Session, handle_request
from keytool import agentproto as proto
from keytool.keys import generate
from keytool.keys.base import PrivateKey


class SuspendableClock:
    """A boot clock that runs with the real one and jumps over a suspend."""

    def __init__(self) -> None:
        self.slept = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.slept


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate("ed25519")


def ask(ring: Keyring, request: proto.Request) -> bytes:
    return handle_request(ring, Session(), proto.encode_request(request)).payload


def test_every_use_checks_the_lifetime(key: PrivateKey) -> None:
    clock = SuspendableClock()
    ring = Keyring(clock)
    added = proto.AddIdentity(key, "c", proto.Constraints(lifetime=3600))
    assert ask(ring, added) == proto.SUCCESS
    blob = key.public.to_wire()
    sign = proto.SignRequest(blob, b"data")
    assert ask(ring, sign) != proto.FAILURE
    clock.slept = 8 * 3600  # overnight; nobody called expire()
    assert ring.find(blob) is None
    assert ask(ring, sign) == proto.FAILURE
    assert ask(ring, proto.RemoveIdentity(blob)) == proto.FAILURE
    assert proto.decode_identities(ask(ring, proto.RequestIdentities())) == []
    assert ring.identities() == []


def test_the_agent_counts_on_the_boot_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's keyring reads CLOCK_BOOTTIME, not the monotonic clock that stops
    while the machine is suspended."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        pytest.skip("no CLOCK_BOOTTIME on this platform")
    slept = [0.0]
    real = time.clock_gettime

    def fake(clock_id: int) -> float:
        return real(clock_id) + (slept[0] if clock_id == boottime else 0.0)

    monkeypatch.setattr(time, "clock_gettime", fake)
    ring = daemon.new_keyring(daemon.AgentOptions(lifetime=3600))
    assert ring.clock is keyring.boot_clock
    ring.add(generate("ed25519"), "c")
    assert len(ring.identities()) == 1
    slept[0] = 2 * 3600.0  # the boot clock went on, the monotonic one stood
    assert ring.identities() == []


def test_a_timer_that_slept_does_not_keep_a_key(tmp_path: Path, key: PrivateKey) -> None:
    """The server's expiry timer is armed for an hour on the event loop's clock; the boot
    clock jumps past the lifetime: the next request already finds no key."""
    clock = SuspendableClock()
    ring = Keyring(clock)

    async def scenario() -> tuple[bytes, bytes]:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(tmp_path / "s"))
        server = AgentServer(ring, listener, sign_threads=0)
        await server.start()
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "s"))

        async def call(request: proto.Request) -> bytes:
            writer.write(proto.frame(proto.encode_request(request)))
            length = proto.LENGTH.unpack(await reader.readexactly(4))[0]
            return await reader.readexactly(length)

        added = proto.AddIdentity(key, "c", proto.Constraints(lifetime=3600))
        assert await call(added) == proto.SUCCESS
        clock.slept = 8 * 3600
        listed = await call(proto.RequestIdentities())
        signed = await call(proto.SignRequest(key.public.to_wire(), b"data"))
        writer.close()
        server.close()
        listener.close()
        return listed, signed

    listed, signed = asyncio.run(scenario())
    assert proto.decode_identities(listed) == []
    assert signed == proto.FAILURE

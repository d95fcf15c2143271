"""keytool's agent client (sync and async) against OpenSSH's ssh-agent and keytool's own,
including session-bind@openssh.com, whose format OpenSSH's ssh-agent checks for real."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from keytool import agentproto as proto
from keytool.agentclient import AgentClient, AsyncAgentClient
from keytool.errors import AgentError
from keytool.keys import generate
from keytool.keys.base import PrivateKey
from tests.interop.agenthelp import RunningAgent as Agent
from tests.interop.agenthelp import keytool_agent, openssh_agent


@pytest.fixture(params=["keytool", "openssh"])
def agent(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Agent]:
    start = keytool_agent if request.param == "keytool" else openssh_agent
    with start(tmp_path / request.param) as running:
        yield running


@pytest.fixture(scope="module")
def user_keys() -> list[PrivateKey]:
    return [generate("ed25519"), generate("ecdsa", 384), generate("rsa", 2048)]


def test_sync_client(agent: Agent, user_keys: list[PrivateKey]) -> None:
    with AgentClient(str(agent.sock)) as client:
        for i, key in enumerate(user_keys):
            client.add(key, f"key {i}", lifetime=600 if i == 0 else None)
        listed = client.identities()
        assert [(k.public, k.comment) for k in listed] == [
            (key.public, f"key {i}") for i, key in enumerate(user_keys)
        ]
        for key in user_keys:
            data = os.urandom(50)
            flags = proto.SSH_AGENT_RSA_SHA2_256 if key.public.key_type == "ssh-rsa" else 0
            signature = client.sign(key.public.to_wire(), data, flags)
            allowed = ("rsa-sha2-256",) if flags else None
            assert key.public.verify(signature, data, allowed)
        client.remove(user_keys[1].public.to_wire())
        with pytest.raises(AgentError, match="refused to remove"):
            client.remove(user_keys[1].public.to_wire())
        with pytest.raises(AgentError, match="refused to sign"):
            client.sign(user_keys[1].public.to_wire(), b"x")
        client.lock(b"pw")
        assert client.identities() == []
        with pytest.raises(AgentError):
            client.unlock(b"not-pw")
    # a wrong unlock may hold this client back: a fresh connection unlocks after the delay
    with AgentClient(str(agent.sock)) as client:
        client.unlock(b"pw")
        assert len(client.identities()) == 2
        client.remove_all()
        assert client.identities() == []


def test_async_client_and_session_bind(agent: Agent, user_keys: list[PrivateKey]) -> None:
    host = generate("ed25519")
    session_id = os.urandom(32)

    async def scenario() -> list[str]:
        client = await AsyncAgentClient.connect(str(agent.sock))
        try:
            await client.add(user_keys[0], "async")
            listed = await client.identities()
            assert [k.comment for k in listed] == ["async"]
            data = os.urandom(40)
            signature = await client.sign(user_keys[0].public.to_wire(), data)
            assert user_keys[0].public.verify(signature, data)
            # the agent checks the host key's signature over the session id
            with pytest.raises(AgentError):
                await client.session_bind(
                    host.public.to_wire(), session_id, host.sign(b"other"), False
                )
            await client.session_bind(
                host.public.to_wire(), session_id, host.sign(session_id), False
            )
            # bound for authentication: no second binding on this connection
            with pytest.raises(AgentError):
                await client.session_bind(
                    host.public.to_wire(), os.urandom(32), host.sign(session_id), False
                )
            return await client.query()
        finally:
            await client.close()

    extensions = asyncio.run(asyncio.wait_for(scenario(), 60))
    if agent.sock.name == "agent.sock":  # keytool's; OpenSSH 9.2 has no query
        assert set(extensions) == {"query", "session-bind@openssh.com"}


def test_unreachable_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(AgentError, match="SSH_AUTH_SOCK is not set"):
        AgentClient()
    with pytest.raises(AgentError, match="is SSH_AUTH_SOCK stale"):
        AgentClient(str(tmp_path / "nothing-here"))

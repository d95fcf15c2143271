"""LocalCommand and PermitLocalCommand, side by side with ssh against sshd: the same
tokens expanded, run at the same moment (the forwards listening, before the session),
with the same output and the session's own status."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.clienthelp import both_clients, keygen
from tests.interop.test_client_forward import EchoService
from tests.peers import Sshd, free_port

TOOLS = ("ssh", "keytool")
TOKENS = "local %h %p %r %n %T %u %% %C %k ~ ${HOME}"


@pytest.fixture
def server(tmp_path: Path) -> Sshd:
    return Sshd(tmp_path / "sshd")


@pytest.fixture
def common(tmp_path: Path, server: Sshd) -> list[str]:
    key = keygen(tmp_path / "id", "ed25519")
    server.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    return [
        "-F", "none", "-p", str(server.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
    ]  # fmt: skip


@pytest.mark.parametrize("permit", ["yes", "no"])
def test_tokens_and_order_as_ssh(server: Sshd, common: list[str], permit: str) -> None:
    with server:
        runs = both_clients(
            *common, "-o", f"PermitLocalCommand={permit}", "-o",
            f"LocalCommand=echo {TOKENS}; exit 3", "root@127.0.0.1", "echo remote; exit 5",
        )  # fmt: skip
    ours, theirs = runs["keytool"], runs["ssh"]
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        theirs.returncode,
        theirs.stdout,
        theirs.stderr,
    )
    assert ours.returncode == 5  # the session's status, not the local command's
    lines = ours.stdout.decode().splitlines()
    if permit == "no":
        assert lines == ["remote"]
    else:
        assert lines[1] == "remote"
        words = lines[0].split()
        port = str(server.port)
        assert words[:8] == ["local", "127.0.0.1", port, "root", "127.0.0.1", "NONE", "root", "%"]
        assert len(words[8]) == 40  # %C, the connection's hash


def test_it_runs_with_the_forwards_listening(
    tmp_path: Path, server: Sshd, common: list[str]
) -> None:
    """As ssh: the -L already listens when LocalCommand runs (a connection to it is
    taken; it is served once the command is done: ssh waits for it meanwhile)."""
    echo = EchoService()
    local = free_port()
    reach = f"exec 3<>/dev/tcp/127.0.0.1/{local} && echo listening"
    with server:
        runs = both_clients(
            *common, "-L", f"{local}:127.0.0.1:{echo.port}", "-o", "PermitLocalCommand=yes",
            "-o", f"LocalCommand=bash -c '{reach}'", "root@127.0.0.1", "echo remote",
        )  # fmt: skip
    for result in runs.values():
        assert (result.returncode, result.stdout) == (0, b"listening\nremote\n"), result.stderr

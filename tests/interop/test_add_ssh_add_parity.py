"""keytool add side by side with ssh-add, byte for byte, against both agents: -d - (keys
read from stdin), names and comments that are not UTF-8, -d with nothing to remove, the
options keytool has no use for (-v, -S) or that only the agent serves (-s, -e: PKCS#11)
or that need a FIDO token (-K), and -L of a key without a comment."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.interop.agenthelp import KEYTOOL, RunningAgent, connect, keytool_agent, openssh_agent
from tests.interop.agenthelp import roundtrip as agent_roundtrip
from tests.peers import require, run

Result = tuple[int, bytes, bytes]


def agent_of(which: str, folder: Path) -> AbstractContextManager[RunningAgent]:
    return keytool_agent(folder) if which == "keytool" else openssh_agent(folder)


@pytest.fixture(params=["ssh-agent", "keytool"])
def agent(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningAgent]:
    with agent_of(request.param, tmp_path / "agent") as running:
        yield running


def tool(which: str) -> list[str]:
    return [require("ssh-add")] if which == "ssh-add" else [*KEYTOOL, "add"]


def add_run(
    which: str,
    sock: Path | str,
    args: list[str | bytes | Path],
    stdin: bytes = b"",
    home: Path | None = None,
) -> Result:
    """ssh-add or keytool add with no terminal; (status, stdout, stderr) as bytes."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_ASKPASS", "DISPLAY")}
    env["SSH_AUTH_SOCK"] = str(sock)
    if home is not None:
        env["HOME"] = str(home)
    done = subprocess.run(
        [*tool(which), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        env=env,
        start_new_session=True,
    )
    return done.returncode, done.stdout, done.stderr


def both(
    agent: RunningAgent,
    args: list[str | bytes | Path],
    stdin: bytes = b"",
    before: list[list[str | bytes | Path]] | None = None,
    home: Path | None = None,
) -> dict[str, Result]:
    """The same command by each tool, the agent emptied and set up by ``before``
    (ssh-add commands) first."""
    seen = {}
    for which in ("ssh-add", "keytool"):
        run([require("ssh-add"), "-D"], env=agent.env())
        for setup in before or []:
            assert add_run("ssh-add", agent.sock, setup)[0] == 0
        seen[which] = add_run(which, agent.sock, args, stdin, home)
    return seen


def key(folder: Path, kind: str, comment: bytes, name: bytes | None = None) -> bytes:
    path = os.fsencode(folder) + b"/" + (name or kind.encode())
    made = subprocess.run(
        [require("ssh-keygen"), "-q", "-t", kind, "-N", "", "-C", comment, "-f", path],
        capture_output=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return path


def test_delete_reads_public_keys_from_stdin(agent: RunningAgent, tmp_path: Path) -> None:
    ec = key(tmp_path, "ecdsa", b"ec comment")
    ed = key(tmp_path, "ed25519", b"")
    other = key(tmp_path, "ed25519", b"not held", b"other")
    ec_line = Path(os.fsdecode(ec + b".pub")).read_bytes()
    ed_line = Path(os.fsdecode(ed + b".pub")).read_bytes()
    stdin = (
        b"# a comment line\n\n"
        + b"  "
        + ec_line.rstrip(b"\n")
        + b"  and more \n"
        + b"junk\n"
        + ed_line
        + Path(os.fsdecode(other + b".pub")).read_bytes()
        + ec_line.replace(b"ecdsa-sha2-nistp256", b"ssh-ed25519", 1)
    )
    seen = both(agent, ["-d", "-"], stdin, before=[[ec, ed]])
    assert seen["keytool"] == seen["ssh-add"]
    assert b"Identity removed: (stdin) ECDSA (ec comment  and more )\n" in seen["ssh-add"][2]
    # nothing removed: status 1
    again = both(agent, ["-d", "-"], ed_line)
    assert again["keytool"] == again["ssh-add"]
    assert again["ssh-add"][0] == 1


def test_names_and_comments_that_are_not_utf8(agent: RunningAgent, tmp_path: Path) -> None:
    path = key(tmp_path, "ed25519", b"caf\xe9 \xff", b"k_\xff\x1bname")
    for args, before in (
        ([path], None),
        (["-d", path], [[path]]),
        (["-d", path], None),  # Could not remove identity "..."
    ):
        seen = both(agent, args, before=before)
        assert seen["keytool"] == seen["ssh-add"], args
    seen = both(agent, ["-d", "-"], Path(os.fsdecode(path + b".pub")).read_bytes(), [[path]])
    assert seen["keytool"] == seen["ssh-add"]
    assert b"caf\xe9 \xff" in seen["ssh-add"][2]


def test_delete_with_nothing_to_remove(agent: RunningAgent, tmp_path: Path) -> None:
    """-d with no files and no default identities: status 1, not a word."""
    home = tmp_path / "home"
    home.mkdir()
    seen = both(agent, ["-d"], home=home)
    assert seen["keytool"] == seen["ssh-add"]
    assert seen["ssh-add"][0] == 1


@pytest.mark.parametrize(
    "args",
    [
        ["-s", "/no/such/pkcs11.so"],
        ["-e", "/no/such/pkcs11.so"],
        ["-d", "-s", "/no/such/pkcs11.so"],
        ["-q", "-t", "60", "-c", "-s", "/no/such/pkcs11.so"],
    ],
)
def test_pkcs11_requests_go_to_the_agent(agent: RunningAgent, args: list[str]) -> None:
    """Both agents refuse (ssh-agent: no such provider; keytool's: no PKCS#11 at all),
    and the tools say so alike, having asked for the PIN when adding."""
    seen = both(agent, [*args], b"1234\n")
    assert seen["keytool"] == seen["ssh-add"]
    assert seen["ssh-add"][0] == 1


def test_pkcs11_requests_on_the_wire(tmp_path: Path) -> None:
    """What each tool sends for -s / -e, byte for byte (an agent that records and
    refuses everything)."""
    sock = tmp_path / "rec.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    server.listen(8)
    seen: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while len(header := conn.recv(4, socket.MSG_WAITALL)) == 4:
                    length = struct.unpack(">I", header)[0]
                    seen.append(conn.recv(length, socket.MSG_WAITALL))
                    conn.sendall(b"\0\0\0\1\5")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        for args in (["-s", "prov"], ["-t", "60", "-c", "-s", "prov"], ["-e", "prov"]):
            sent = {}
            for which in ("ssh-add", "keytool"):
                seen.clear()
                add_run(which, sock, [*args], b"pin\n")
                sent[which] = list(seen)
            assert sent["keytool"] == sent["ssh-add"], args
            assert sent["ssh-add"]
    finally:
        server.close()
        thread.join(5)


@pytest.mark.parametrize("args", [["-v"], ["-vvv"], ["-S", "/no/such/provider.so"]])
def test_verbosity_and_security_key_provider_are_taken(
    agent: RunningAgent, tmp_path: Path, args: list[str]
) -> None:
    path = key(tmp_path, "ed25519", b"plain")
    seen = both(agent, [*args, path])
    assert seen["keytool"] == seen["ssh-add"]
    assert seen["ssh-add"][0] == 0
    assert b"plain" in run([require("ssh-add"), "-L"], env=agent.env()).stdout.encode()


def test_resident_keys_without_a_token(agent: RunningAgent) -> None:
    """-K with no FIDO token (keytool never has one): status 1, ssh-add's words."""
    seen = both(agent, ["-K"])
    status, out, err = seen["ssh-add"]
    assert (seen["keytool"][0], seen["keytool"][1]) == (status, out) == (1, b"")
    prefix = b"Unable to load resident keys: "
    assert err.splitlines()[-1].startswith(prefix)
    assert seen["keytool"][2].splitlines()[-1].startswith(prefix)


def test_list_public_of_a_key_without_comment(agent: RunningAgent) -> None:
    """ssh-add -L prints the comment after a space even when it is empty."""
    from keytool import agentproto as proto
    from keytool.keys import generate

    request = proto.AddIdentity(generate("ed25519"), "")
    with connect(agent.sock) as conn:
        assert agent_roundtrip(conn, proto.encode_request(request)) == proto.SUCCESS
    listed = {which: add_run(which, agent.sock, ["-L"]) for which in ("ssh-add", "keytool")}
    assert listed["keytool"] == listed["ssh-add"]
    assert listed["ssh-add"][1].endswith(b" \n")

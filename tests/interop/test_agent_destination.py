"""Destination-constrained agent keys (ssh-add -h, restrict-destination-v00@openssh.com) and
session-bind@openssh.com, with the real peers: two sshd servers with their own host keys
("allowed" and "other"), OpenSSH's ssh-add, ssh and ssh-agent, keytool's agent, keytool
add -h and keytool exec."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from keytool import agentproto as proto
from keytool.wire import Writer
from tests.interop.agenthelp import (
    KEYTOOL,
    RunningAgent,
    agent_env,
    connect,
    keytool_agent,
    openssh_agent,
    recv_exact,
    roundtrip,
)
from tests.interop.clienthelp import keytool_exec
from tests.peers import Sshd, require, run


class Servers:
    def __init__(self, folder: Path) -> None:
        self.allowed = Sshd(folder / "allowed", host_key_types=("ed25519",))
        self.other = Sshd(folder / "other", host_key_types=("ed25519",))
        # what ssh-add -h and ssh know of them: [127.0.0.1]:PORT lines
        self.known = folder / "known_hosts"
        self.known.write_text(self.allowed.known_hosts_line() + self.other.known_hosts_line())
        # the name ssh-add -h looks up in known_hosts for a server on a port
        self.allowed_name = f"[127.0.0.1]:{self.allowed.port}"
        self.other_name = f"[127.0.0.1]:{self.other.port}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    made = Servers(tmp_path_factory.mktemp("destination"))
    with made.allowed, made.other:
        yield made


@pytest.fixture
def user_key(tmp_path: Path, servers: Servers) -> tuple[Path, Path]:
    """A fresh key pair both servers authorize for root."""
    folder = tmp_path / "client"
    folder.mkdir()
    private = folder / "id_ed25519"
    run(
        [require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "dest", "-f", private]
    ).check_returncode()
    public = Path(f"{private}.pub")
    for server in (servers.allowed, servers.other):
        server.authorized_keys.write_text(public.read_text())
    return private, public


@pytest.fixture(params=["keytool", "openssh"])
def any_agent(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningAgent]:
    start = keytool_agent if request.param == "keytool" else openssh_agent
    with start(tmp_path / "agent") as agent:
        yield agent


def _accepted(server: Sshd, public: Path) -> int:
    """How many times the server logged the key as accepted."""
    fingerprint = run([require("ssh-keygen"), "-lf", public]).stdout.split()[1]
    return sum(
        1
        for line in server.log.read_text(errors="replace").splitlines()
        if "Accepted publickey for root" in line and fingerprint in line
    )


def _ssh(
    agent: RunningAgent, server: Sshd, known: Path, public: Path, user: str = "root"
) -> subprocess.CompletedProcess[str]:
    """The real ssh, its only key in the agent (IdentityFile names the .pub)."""
    return run(
        [
            require("ssh"), "-F", "/dev/null", "-p", str(server.port),
            "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"IdentityFile={public}", "-o", f"IdentityAgent={agent.sock}",
            "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
            f"{user}@127.0.0.1", "echo", "logged-in-via-agent",
        ],
        env=agent.env(),
    )  # fmt: skip


def _exec(
    agent: RunningAgent | _Relay, server: Sshd, known: Path, home: Path
) -> subprocess.CompletedProcess[bytes]:
    """keytool exec with the agent's keys only (an empty home: no default key files)."""
    home.mkdir(exist_ok=True)
    return keytool_exec(
        server.port,
        known,
        "root@127.0.0.1",
        "echo",
        "logged-in-via-agent",
        flags=("-v", "-o", "BatchMode=yes"),
        env=agent.env(HOME=str(home)),
    )


def _ssh_add(agent: RunningAgent, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run([require("ssh-add"), *args], env=agent.env())


def _keytool_add(agent: RunningAgent, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run([*KEYTOOL, "add", *args], env=agent.env())


def _only_in_agent(private: Path) -> None:
    """Remove the private key file: from now on only the agent can sign with it."""
    private.unlink()


# ---------------------------------------------------------------- ssh-add -h into keytool's agent


def test_ssh_add_h_keytool_agent_ssh_logs_in_only_to_the_allowed_host(
    tmp_path: Path, servers: Servers, user_key: tuple[Path, Path]
) -> None:
    private, public = user_key
    with keytool_agent(tmp_path / "agent") as agent:
        added = _ssh_add(agent, "-H", servers.known, "-h", servers.allowed_name, private)
        assert added.returncode == 0, added.stderr
        assert f"Identity added: {private}" in added.stderr
        _only_in_agent(private)
        before_allowed = _accepted(servers.allowed, public)
        before_other = _accepted(servers.other, public)

        allowed = _ssh(agent, servers.allowed, servers.known, public)
        assert allowed.returncode == 0, allowed.stderr + agent.log_text()
        assert allowed.stdout == "logged-in-via-agent\n"
        assert _accepted(servers.allowed, public) == before_allowed + 1

        other = _ssh(agent, servers.other, servers.known, public)
        assert other.returncode != 0
        assert "logged-in-via-agent" not in other.stdout
        assert _accepted(servers.other, public) == before_other
        # the agent hid the key from the connection bound to the other host, and says why
        log = agent.log_text()
        assert "restricted to (ORIGIN) > " + servers.allowed_name in log
        assert "not listing" in log and "not permitted from origin to host key" in log

        # an unbound connection (local use) lists the key, but it signs nothing there
        assert _ssh_add(agent, "-l").returncode == 0
        tested = _ssh_add(agent, "-T", public)
        assert tested.returncode != 0
        assert "never bound to a session" in agent.log_text()


def test_user_part_of_the_destination_is_enforced(
    tmp_path: Path, servers: Servers, user_key: tuple[Path, Path]
) -> None:
    """-h nobody@host: the key is listed on the bound connection (the user is not known
    yet) but signs no authentication as root."""
    private, public = user_key
    with keytool_agent(tmp_path / "agent") as agent:
        spec = f"nobody@{servers.allowed_name}"
        _ssh_add(agent, "-H", servers.known, "-h", spec, private).check_returncode()
        _only_in_agent(private)
        before = _accepted(servers.allowed, public)
        result = _ssh(agent, servers.allowed, servers.known, public)
        assert result.returncode != 0
        assert _accepted(servers.allowed, public) == before
        assert "refused to sign" in agent.log_text()
        assert "for user root" in agent.log_text()


@pytest.mark.parametrize("kind", ["keytool", "openssh"])
def test_unbound_sign_refused_as_ssh_agent_does(
    tmp_path: Path, servers: Servers, user_key: tuple[Path, Path], kind: str
) -> None:
    """Both agents: a constrained key is listed on an unbound connection, and refuses a
    raw sign request there (also of well-formed user authentication data)."""
    private, public = user_key
    start = keytool_agent if kind == "keytool" else openssh_agent
    with start(tmp_path / "agent") as agent:
        _ssh_add(agent, "-H", servers.known, "-h", servers.allowed_name, private).check_returncode()
        listed = _ssh_add(agent, "-L")
        assert listed.returncode == 0 and public.read_text().split()[1] in listed.stdout
        from keytool.keys.pubfile import parse_public_text

        key, _ = parse_public_text(public.read_bytes())
        blob = key.to_wire()
        data = (
            Writer()
            .string(b"\x01" * 32)
            .byte(50)
            .string("root")
            .string("ssh-connection")
            .string("publickey")
            .boolean(True)
            .string("ssh-ed25519")
            .string(blob)
            .getvalue()
        )
        with connect(agent.sock) as sock:
            reply = roundtrip(sock, proto.encode_request(proto.SignRequest(blob, data)))
        assert reply == proto.FAILURE
        assert "unbound connection" in agent.log_text() or "never bound" in agent.log_text()


# ---------------------------------------------------------------- keytool add -h into ssh-agent


def test_keytool_add_h_into_openssh_agent(
    tmp_path: Path, servers: Servers, user_key: tuple[Path, Path]
) -> None:
    private, public = user_key
    with openssh_agent(tmp_path / "agent") as agent:
        added = _keytool_add(agent, "-H", str(servers.known), "-h", servers.allowed_name, private)
        assert added.returncode == 0, added.stderr
        assert added.stderr == f"Identity added: {private} (dest)\n"
        _only_in_agent(private)
        before_other = _accepted(servers.other, public)
        allowed = _ssh(agent, servers.allowed, servers.known, public)
        assert allowed.returncode == 0, allowed.stderr + agent.log_text()
        assert allowed.stdout == "logged-in-via-agent\n"
        other = _ssh(agent, servers.other, servers.known, public)
        assert other.returncode != 0
        assert _accepted(servers.other, public) == before_other
        # ssh-agent holds it as destination-constrained: no signature on an unbound socket
        assert _ssh_add(agent, "-T", public).returncode != 0
        assert "destination-constrained key" in agent.log_text()


def test_keytool_add_h_with_a_large_known_hosts(
    tmp_path: Path, servers: Servers, user_key: tuple[Path, Path]
) -> None:
    """A million lines before the servers' (about 100 MB): keytool reads only the lines
    that may name the host, as ssh-add does (it parsed them all, about 600 MB)."""
    from tests.interop.test_known_hosts_large import filler, run_measured

    private, public = user_key
    large = tmp_path / "known_hosts"
    with large.open("w") as stream:
        block = filler(10000)
        for _ in range(100):
            stream.write(block)
        stream.write(servers.known.read_text())
    with openssh_agent(tmp_path / "agent") as agent:
        add = [*KEYTOOL, "add", "-H", str(large), "-h", servers.allowed_name, str(private)]
        status, stderr, peak = run_measured(add, tmp_path, agent.env())
        assert status == 0, stderr
        assert stderr == f"Identity added: {private} (dest)\n"
        assert peak < 100 * 1024, f"keytool add peaked at {peak // 1024} MB"
        _only_in_agent(private)
        before_other = _accepted(servers.other, public)
        allowed = _ssh(agent, servers.allowed, servers.known, public)
        assert allowed.returncode == 0, allowed.stderr + agent.log_text()
        assert _ssh(agent, servers.other, servers.known, public).returncode != 0
        assert _accepted(servers.other, public) == before_other


def test_keytool_add_h_hop_and_several_destinations(
    tmp_path: Path, servers: Servers, user_key: tuple[Path, Path]
) -> None:
    """Two -h, one of them a hop from the other host: ssh-agent takes the bytes and lets
    the key log in to both servers from here."""
    private, public = user_key
    with openssh_agent(tmp_path / "agent") as agent:
        added = _keytool_add(
            agent,
            "-H",
            str(servers.known),
            "-h",
            servers.allowed_name,
            "-h",
            f"{servers.allowed_name}>root@{servers.other_name}",
            "-h",
            servers.other_name,
            private,
        )
        assert added.returncode == 0, added.stderr
        _only_in_agent(private)
        for server in (servers.allowed, servers.other):
            result = _ssh(agent, server, servers.known, public)
            assert result.returncode == 0, result.stderr


def test_keytool_add_h_errors_as_ssh_add(
    tmp_path: Path, servers: Servers, user_key: tuple[Path, Path]
) -> None:
    private, _public = user_key
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with openssh_agent(tmp_path / "agent") as agent:
        for spec in ("somewhere.invalid", f"user@{servers.allowed_name}>other"):
            ours = _keytool_add(agent, "-H", str(servers.known), "-h", spec, private)
            theirs = _ssh_add(agent, "-H", servers.known, "-h", spec, private)
            assert ours.returncode == theirs.returncode != 0
            assert ours.stderr.count("\n") == 1, ours.stderr
            # the same complaint as ssh-add's
            assert ours.stderr.split(": ", 1)[1] in theirs.stderr, (ours.stderr, theirs.stderr)
        spec = f"root@{servers.allowed_name}>{servers.other_name}"
        ours = _keytool_add(agent, "-H", str(servers.known), "-h", spec, private)
        theirs = _ssh_add(agent, "-H", servers.known, "-h", spec, private)
        assert ours.returncode == theirs.returncode != 0
        assert "cannot specify user on 'from' host" in ours.stderr
        assert "cannot specify user on 'from' host" in theirs.stderr
        # nothing was added by either
        assert "no identities" in _ssh_add(agent, "-l").stdout


def test_default_known_hosts_are_in_the_password_database_home(
    tmp_path: Path, servers: Servers, user_key: tuple[Path, Path]
) -> None:
    """Without -H, ssh-add looks the hosts up in ~/.ssh/known_hosts of the home in the
    password database, not of $HOME: a host known under $HOME alone is unknown to it."""
    private, _public = user_key
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_bytes(servers.known.read_bytes())
    with openssh_agent(tmp_path / "agent") as agent:
        spec = servers.allowed_name
        argv = {"ssh-add": [require("ssh-add")], "keytool": [*KEYTOOL, "add"]}
        seen = {
            tool: run([*program, "-h", spec, private], env=agent.env(HOME=str(home)))
            for tool, program in argv.items()
        }
        assert seen["keytool"].returncode == seen["ssh-add"].returncode != 0
        assert "no identities" in _ssh_add(agent, "-l").stdout


# ---------------------------------------------------------------- keytool exec binds its session


def test_keytool_exec_binds_its_session(
    tmp_path: Path, servers: Servers, user_key: tuple[Path, Path], any_agent: RunningAgent
) -> None:
    """A key ssh-add -h restricted to the allowed host: keytool exec logs in there only
    after telling the agent the session (else the agent refuses to sign), and not on
    the other host."""
    private, public = user_key
    agent = any_agent
    _ssh_add(agent, "-H", servers.known, "-h", servers.allowed_name, private).check_returncode()
    _only_in_agent(private)
    before_allowed = _accepted(servers.allowed, public)
    before_other = _accepted(servers.other, public)

    allowed = _exec(agent, servers.allowed, servers.known, tmp_path / "home")
    assert allowed.returncode == 0, allowed.stderr.decode() + agent.log_text()
    assert allowed.stdout == b"logged-in-via-agent\n"
    assert b"agent bound to the host key and session" in allowed.stderr
    assert _accepted(servers.allowed, public) == before_allowed + 1

    other = _exec(agent, servers.other, servers.known, tmp_path / "home")
    assert other.returncode != 0
    assert other.stdout == b""
    assert _accepted(servers.other, public) == before_other


def test_keytool_exec_with_an_agent_without_session_bind(
    tmp_path: Path, servers: Servers, user_key: tuple[Path, Path]
) -> None:
    """An agent that refuses session-bind (as one that does not know the extension) is
    still used for a key without destination constraints, as ssh uses it."""
    private, _public = user_key
    with keytool_agent(tmp_path / "agent") as agent:
        _ssh_add(agent, private).check_returncode()
        _only_in_agent(private)
        with _bind_refusing_relay(agent, tmp_path / "relay.sock") as relay:
            result = _exec(relay, servers.allowed, servers.known, tmp_path / "home")
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"logged-in-via-agent\n"
        assert b"agent not bound to this session" in result.stderr


# ---------------------------------------------------------------- malformed constraints


def _hop(user: bytes, host: bytes, keys: list[tuple[bytes, int]], ext: bytes = b"") -> bytes:
    w = Writer().string(user).string(host).string(ext)
    for blob, is_ca in keys:
        w.string(blob).byte(is_ca)
    return w.getvalue()


def _constraint(source: bytes, to: bytes, ext: bytes = b"") -> bytes:
    return Writer().string(source).string(to).string(ext).getvalue()


def _add_with(key_wire: bytes, extension: bytes) -> bytes:
    return (
        Writer()
        .byte(proto.SSH_AGENTC_ADD_ID_CONSTRAINED)
        .raw(key_wire)
        .string("c")
        .byte(proto.SSH_AGENT_CONSTRAIN_EXTENSION)
        .string("restrict-destination-v00@openssh.com")
        .raw(extension)
        .getvalue()
    )


def test_malformed_constraints_refused_by_both_agents(
    tmp_path: Path, servers: Servers, user_key: tuple[Path, Path], any_agent: RunningAgent
) -> None:
    from keytool.keyfiles import load_private_file
    from keytool.keys.pubfile import parse_public_text

    private, _public = user_key
    key, _ = load_private_file(str(private))
    host_line = servers.allowed.known_hosts_line().split()
    host, _ = parse_public_text(f"{host_line[1]} {host_line[2]}".encode())
    hk = host.to_wire()
    origin = _hop(b"", b"", [])
    good_to = _hop(b"", b"allowed", [(hk, 0)])

    def wrap(*constraints: bytes) -> bytes:
        return (
            Writer().string(b"".join(Writer().string(c).getvalue() for c in constraints)).getvalue()
        )

    good = wrap(_constraint(origin, good_to))
    bad = {
        "to without keys": wrap(_constraint(origin, _hop(b"", b"allowed", []))),
        "to without host name": wrap(_constraint(origin, _hop(b"", b"", [(hk, 0)]))),
        "from with a user": wrap(_constraint(_hop(b"u", b"h", [(hk, 0)]), good_to)),
        "from host without keys": wrap(_constraint(_hop(b"", b"h", []), good_to)),
        "hop extension": wrap(_constraint(origin, _hop(b"", b"allowed", [(hk, 0)], b"x"))),
        "constraint extension": wrap(_constraint(origin, good_to, b"x")),
        "truncated key": wrap(_constraint(origin, _hop(b"", b"allowed", [(hk[:-3], 0)]))),
        "garbage key": wrap(_constraint(origin, _hop(b"", b"allowed", [(b"\0\0\0\3abc", 0)]))),
        "key without is_ca": wrap(_constraint(origin, _hop(b"", b"allowed", [(hk, 0)])[:-1])),
        "user too long": wrap(_constraint(origin, _hop(b"u" * 257, b"allowed", [(hk, 0)]))),
        "truncated outer": good[:-2],
        "nul in host": wrap(_constraint(origin, _hop(b"", b"al\0lowed", [(hk, 0)]))),
    }
    agent = any_agent
    if agent.sock.name == "ssh-agent.sock":
        # the 256-byte cap on user patterns came to ssh-agent after 9.2; keytool has it
        del bad["user too long"]
    with connect(agent.sock) as sock:
        for name, extension in bad.items():
            reply = roundtrip(sock, _add_with(key.to_wire(), extension))
            assert reply == proto.FAILURE, name
        # still serving, on the same connection; nothing was added
        assert roundtrip(sock, bytes([proto.SSH_AGENTC_REQUEST_IDENTITIES])) == (
            proto.encode_identities([])
        )
        twice = _add_with(key.to_wire(), good) + (
            Writer()
            .byte(proto.SSH_AGENT_CONSTRAIN_EXTENSION)
            .string("restrict-destination-v00@openssh.com")
            .raw(good)
            .getvalue()
        )
        assert roundtrip(sock, twice) == proto.FAILURE
        assert roundtrip(sock, _add_with(key.to_wire(), good)) == proto.SUCCESS
    assert agent.proc.poll() is None
    listed = _ssh_add(agent, "-l")
    assert listed.returncode == 0 and "dest" not in listed.stdout  # comment "c"
    assert len(listed.stdout.splitlines()) == 1


# ---------------------------------------------------------------- helpers


class _Relay:
    """An agent socket in front of another agent that answers session-bind@openssh.com
    with FAILURE, as an agent that does not know the extension does (one client at a
    time: keytool exec opens one agent connection)."""

    def __init__(self, upstream: Path, path: Path) -> None:
        self.upstream = upstream
        self.sock = path
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(str(path))
        self._server.listen(4)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def env(self, **extra: str) -> dict[str, str]:
        return agent_env(self.sock, **extra)

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with client, connect(self.upstream) as upstream:
                while True:
                    header = recv_exact(client, 4)
                    if len(header) < 4:
                        break
                    payload = recv_exact(client, int.from_bytes(header, "big"))
                    bind = proto.encode_request(proto.Extension(proto.EXT_SESSION_BIND))
                    if payload.startswith(bind):
                        reply = proto.FAILURE
                    else:
                        reply = roundtrip(upstream, payload)
                    client.sendall(len(reply).to_bytes(4, "big") + reply)

    def close(self) -> None:
        self._server.close()


@contextmanager
def _bind_refusing_relay(agent: RunningAgent, path: Path) -> Iterator[_Relay]:
    relay = _Relay(agent.sock, path)
    try:
        yield relay
    finally:
        relay.close()

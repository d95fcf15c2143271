"""keytool exec against a real OpenSSH sshd: streams, exit status, window handling,
authentication by key file, by a real ssh-agent, by password; MaxAuthTries."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.agenthelp import openssh_agent
from tests.interop.clienthelp import (
    KEYTOOL,
    RELAY_PROXY,
    accepted_keys,
    askpass_env,
    base_env,
    fingerprint,
    install_key,
    keygen,
    keytool_exec,
    offered_keys,
    throwaway_account,
)
from tests.interop.transport_helpers import wait_for_log
from tests.peers import Sshd, require, run


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "keys"
    folder.mkdir()
    return {kind: keygen(folder / f"id_{kind}", kind) for kind in ("ed25519", "rsa", "ecdsa")}


@pytest.fixture
def server(tmp_path: Path, keys: dict[str, Path]) -> Iterator[Sshd]:
    sshd = Sshd(tmp_path / "sshd")
    sshd.authorized_keys.write_text(Path(f"{keys['ed25519']}.pub").read_text())
    with sshd:
        yield sshd


@pytest.fixture
def known(tmp_path: Path, server: Sshd) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(server.known_hosts_line())
    return path


def test_streams_and_exit_status(server: Sshd, known: Path, keys: dict[str, Path]) -> None:
    result = keytool_exec(
        server.port,
        known,
        "root@127.0.0.1",
        "echo out; echo err >&2; exit 7",
        flags=("-i", str(keys["ed25519"])),
    )
    assert result.returncode == 7, result.stderr
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"
    # sshd saw our key, and only that one
    assert accepted_keys(server.log) == [fingerprint(keys["ed25519"])]


def test_words_joined_like_ssh(server: Sshd, known: Path, keys: dict[str, Path]) -> None:
    result = keytool_exec(
        server.port, known, "root@127.0.0.1", "printf", "%s-", "a b", "c",
        flags=("-i", str(keys["ed25519"])),
    )  # fmt: skip
    # ssh sends the words joined by spaces; the remote shell splits them again
    assert result.stdout == b"a-b-c-"


def test_ten_mebibytes_through_cat(server: Sshd, known: Path, keys: dict[str, Path]) -> None:
    """Both windows are exceeded many times: stdin up, stdout back."""
    data = os.urandom(10 * 1024 * 1024)
    result = keytool_exec(
        server.port, known, "root@127.0.0.1", "cat", stdin=data,
        flags=("-i", str(keys["ed25519"])),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == len(data)
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(data).digest()


def test_command_bytes_sent_as_given(server: Sshd, known: Path, keys: dict[str, Path]) -> None:
    """Arguments are bytes: a word that is not UTF-8 reaches the remote shell unchanged."""
    result = keytool_exec(
        server.port, known, "root@127.0.0.1", "printf", "%s", os.fsdecode(b"caf\xe9\xff"),
        flags=("-i", str(keys["ed25519"])),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"caf\xe9\xff"


def test_destination_user_and_option_not_utf8_as_ssh(
    server: Sshd, known: Path, keys: dict[str, Path]
) -> None:
    """A host name, a -l user or an -o User that is not UTF-8, as ssh takes them: the
    host is looked up as its bytes (one line, ssh's words, the byte as \\377), the
    user name goes to the server as its bytes (sshd logs "Invalid user \\377")."""
    bad = os.fsdecode(b"\xff")
    common = ["-F", "none", "-p", str(server.port), "-o", f"UserKnownHostsFile={known}",
              "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
              "-o", "IdentitiesOnly=yes", "-o", f"IdentityFile={keys['rsa']}"]  # fmt: skip
    for flags, destination in (
        ((), f"root@{bad}"),
        (("-l", bad), "127.0.0.1"),
        (("-o", f"User={bad}"), "127.0.0.1"),
    ):
        before = server.log.read_bytes().count(b"Invalid user \\377 from")
        said = {}
        for name, program in (("ssh", [require("ssh")]), ("keytool", [*KEYTOOL, "exec"])):
            result = subprocess.run(
                [*program, *common, *flags, destination, "true"],
                capture_output=True, stdin=subprocess.DEVNULL, timeout=60, env=base_env(),
            )  # fmt: skip
            assert result.returncode == 255, (name, result.stderr)
            said[name] = result.stderr
        assert said["keytool"].count(b"\n") == 1, said["keytool"]
        if destination != "127.0.0.1":  # the host: the same line as ssh's
            assert said["ssh"].startswith(b"ssh: Could not resolve hostname \\377: ")
            assert (
                said["keytool"]
                == b"keytool: " + said["ssh"][len(b"ssh: ") :].rstrip(b"\r\n") + b"\n"
            )
        else:
            after = server.log.read_bytes().count(b"Invalid user \\377 from")
            assert after == before + 2, server.log.read_bytes()[-2000:]
            # ssh's words, the user as ssh shows it
            assert said["ssh"] == b"\\377@127.0.0.1: Permission denied (publickey).\r\n"
            assert said["keytool"].startswith(b"keytool: \\377@127.0.0.1: Permission denied")


def test_large_output_and_remote_hash_of_input(
    server: Sshd, known: Path, keys: dict[str, Path]
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    result = keytool_exec(
        server.port, known, "root@127.0.0.1",
        "sha256sum; head -c 40000000 /dev/zero; echo done >&2",
        stdin=data, flags=("-i", str(keys["ed25519"])),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(data).hexdigest().encode()
    assert result.stdout.startswith(digest + b"  -\n")
    assert len(result.stdout) == len(digest) + 4 + 40_000_000
    assert result.stderr == b"done\n"


@pytest.mark.parametrize("source", ["file", "devnull"])
def test_stdin_from_a_regular_file_or_dev_null(
    tmp_path: Path, server: Sshd, known: Path, keys: dict[str, Path], source: str
) -> None:
    """Files that poll(2) always calls ready (epoll refuses them) are read to the end."""
    data = os.urandom(1024 * 1024 + 3) if source == "file" else b""
    path = tmp_path / "input"
    path.write_bytes(data)
    args = [
        *KEYTOOL, "exec", "-F", "none", "-p", str(server.port),
        "-o", f"UserKnownHostsFile={known}", "-i", str(keys["ed25519"]),
        "root@127.0.0.1", "--", "sha256sum",
    ]  # fmt: skip
    with open(path if source == "file" else os.devnull, "rb") as stdin:
        result = subprocess.run(
            args, stdin=stdin, capture_output=True, env=base_env(), timeout=60, check=False
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == hashlib.sha256(data).hexdigest().encode() + b"  -\n"


def test_output_that_cannot_be_written_is_one_line(
    server: Sshd, known: Path, keys: dict[str, Path]
) -> None:
    args = [
        *KEYTOOL, "exec", "-F", "none", "-p", str(server.port),
        "-o", f"UserKnownHostsFile={known}", "-i", str(keys["ed25519"]),
        "root@127.0.0.1", "--", "head -c 100000 /dev/zero",
    ]  # fmt: skip
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            args, stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE,
            env=base_env(), timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 255
    assert result.stderr == b"keytool: cannot write to standard output: No space left on device\n"


def test_killed_by_signal_exits_255(server: Sshd, known: Path, keys: dict[str, Path]) -> None:
    result = keytool_exec(
        server.port, known, "root@127.0.0.1", "kill -TERM $$",
        flags=("-i", str(keys["ed25519"]), "-v"),
    )  # fmt: skip
    assert result.returncode == 255
    assert b"signal TERM" in result.stderr


def test_verbose_tells_each_step(server: Sshd, known: Path, keys: dict[str, Path]) -> None:
    result = keytool_exec(
        server.port, known, "root@127.0.0.1", "exit 3", flags=("-v", "-i", str(keys["ed25519"]))
    )
    assert result.returncode == 3
    trace = result.stderr.decode()
    for step in (
        "TCP connection established",
        "server version: SSH-2.0-OpenSSH",
        "negotiation:",
        f"found in known_hosts at {known}:1",
        "session id",
        "the server accepts: publickey",
        f"offering public key: ED25519 {fingerprint(keys['ed25519'])}",
        "authenticated with public key",
        "session channel 0 opened",
        "exit status 3",
    ):
        assert step in trace, step


def test_rsa_key_signs_with_sha2(server: Sshd, known: Path, keys: dict[str, Path]) -> None:
    server.authorized_keys.write_text(Path(f"{keys['rsa']}.pub").read_text())
    result = keytool_exec(
        server.port, known, "root@127.0.0.1", "true", flags=("-v", "-i", str(keys["rsa"]))
    )
    assert result.returncode == 0, result.stderr
    assert b"signature rsa-sha2-512" in result.stderr
    assert accepted_keys(server.log) == [fingerprint(keys["rsa"])]
    assert "pkalg rsa-sha2-512" in server.log.read_text()


def test_wrong_key_lists_what_was_tried(server: Sshd, known: Path, keys: dict[str, Path]) -> None:
    result = keytool_exec(
        server.port, known, "root@127.0.0.1", "true",
        flags=("-i", str(keys["ecdsa"]), "-o", "IdentitiesOnly=yes"),
    )  # fmt: skip
    assert result.returncode == 255
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "Permission denied" in lines[0]
    assert fingerprint(keys["ecdsa"]) in lines[0]
    assert "Traceback" not in result.stderr.decode()
    assert accepted_keys(server.log) == []


def test_unknown_host_refused_without_terminal(
    server: Sshd, tmp_path: Path, keys: dict[str, Path]
) -> None:
    empty = tmp_path / "empty_known_hosts"
    result = keytool_exec(
        server.port, empty, "root@127.0.0.1", "true", flags=("-i", str(keys["ed25519"]))
    )
    assert result.returncode == 255
    assert b"Host key verification failed" in result.stderr
    # refused before any authentication was tried
    assert offered_keys(server.log) == []


def ssh_exec(port: int, known: Path, key: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """OpenSSH's ssh, as keytool_exec runs keytool, for the same decision."""
    return run(
        [
            require("ssh"), "-F", "none", "-p", str(port), "-i", str(key),
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", *options, "root@127.0.0.1", "true",
        ],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize("hash_name", ["sha256", "md5"])
def test_visual_host_key_shows_the_randomart_ssh_shows(
    server: Sshd, known: Path, keys: dict[str, Path], hash_name: str
) -> None:
    for kind in ("ed25519", "ecdsa", "rsa"):  # the key known_hosts has decides the art
        known.write_text(server.known_hosts_line(kind))
        visual = ("-o", "VisualHostKey=yes", "-o", f"FingerprintHash={hash_name}")
        theirs = ssh_exec(server.port, known, keys["ed25519"], *visual)
        assert theirs.returncode == 0, theirs.stderr
        ours = keytool_exec(
            server.port,
            known,
            "root@127.0.0.1",
            "true",
            flags=("-i", str(keys["ed25519"]), *visual),
        )
        assert ours.returncode == 0, ours.stderr
        # ssh ends its log lines with CR LF; the art itself is the same bytes
        shown = theirs.stderr.replace("\r\n", "\n")
        assert shown.startswith(f"Host key fingerprint is {hash_name.upper()}:"), shown
        assert ours.stderr.decode() == shown
        assert f"[{kind.upper()} " in shown


@pytest.mark.parametrize("batch", ["no", "yes"])
@pytest.mark.parametrize("level", ["INFO", "ERROR", "QUIET"])
def test_log_level_quiets_what_ssh_quiets(
    tmp_path: Path, keys: dict[str, Path], level: str, batch: str
) -> None:
    """Below INFO, ssh's notices ("Permanently added") and the server's banner are not
    shown, BatchMode or not; keytool's stderr is then what ssh's is."""
    banner = tmp_path / "banner"
    banner.write_text("Authorized use only.\n")
    sshd = Sshd(tmp_path / "sshd-banner", {"Banner": str(banner)})
    sshd.authorized_keys.write_text(Path(f"{keys['ed25519']}.pub").read_text())
    options = ("-o", f"LogLevel={level}", "-o", "StrictHostKeyChecking=accept-new",
               "-o", "HostKeyAlgorithms=ssh-ed25519", "-o", f"BatchMode={batch}")  # fmt: skip
    with sshd:
        theirs = run(
            [require("ssh"), "-F", "none", "-p", str(sshd.port), "-i", str(keys["ed25519"]),
             "-o", f"UserKnownHostsFile={tmp_path / 'by_ssh'}",
             "-o", "GlobalKnownHostsFile=/dev/null", *options, "root@127.0.0.1", "true"],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        ours = keytool_exec(
            sshd.port, tmp_path / "by_us", "root@127.0.0.1", "true",
            flags=("-i", str(keys["ed25519"]), *options),
        )  # fmt: skip
    assert theirs.returncode == ours.returncode == 0, (theirs.stderr, ours.stderr)
    assert ours.stderr.decode() == theirs.stderr.replace("\r\n", "\n")
    assert ("Permanently added" in theirs.stderr) == (level == "INFO")
    assert ("Authorized use only." in theirs.stderr) == (level == "INFO")


def test_connection_attempts_wait_for_a_server_that_comes_up(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    """ConnectionAttempts: a connect is tried again a second later, as ssh does; with
    one attempt (the default) a refused connect is final."""
    sshd = Sshd(tmp_path / "sshd-late")
    sshd.authorized_keys.write_text(Path(f"{keys['ed25519']}.pub").read_text())
    known = tmp_path / "known_late"
    known.write_text(sshd.known_hosts_line())
    args = [*KEYTOOL, "exec", "-F", "none", "-p", str(sshd.port), "-i", str(keys["ed25519"]),
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "root@127.0.0.1", "--", "echo up"]  # fmt: skip
    once = subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert once.returncode == 255 and b"Connection refused" in once.stderr
    waiting = subprocess.Popen(
        [*args[:-3], "-o", "ConnectionAttempts=5", *args[-3:]],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        time.sleep(0.5)  # its first attempt is refused; the server starts before the next
        with sshd:
            out, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert (waiting.returncode, out) == (0, b"up\n"), err


def test_host_key_alias_names_the_known_hosts_entry(
    server: Sshd, tmp_path: Path, keys: dict[str, Path]
) -> None:
    key = keys["ed25519"]
    # the key recorded under the alias alone (no [host]:port): as ssh, keytool finds it
    known = tmp_path / "alias_known_hosts"
    known.write_text("web-alias " + server.known_hosts_line().split(" ", 1)[1])
    strict = ("-o", "StrictHostKeyChecking=yes")
    assert (
        ssh_exec(server.port, known, key, *strict, "-o", "HostKeyAlias=Web-Alias").returncode == 0
    )
    ours = keytool_exec(
        server.port, known, "root@127.0.0.1", "echo in",
        flags=("-i", str(key), *strict, "-o", "HostKeyAlias=Web-Alias"),
    )  # fmt: skip
    assert (ours.returncode, ours.stdout) == (0, b"in\n"), ours.stderr
    # without the alias the same file knows nothing of 127.0.0.1: both refuse
    assert ssh_exec(server.port, known, key, *strict).returncode == 255
    plain = keytool_exec(server.port, known, "root@127.0.0.1", "true", flags=("-i", str(key)))
    assert plain.returncode == 255 and b"Host key verification failed" in plain.stderr
    # accept-new records the key under the alias, the line ssh writes
    by_ssh, by_us = tmp_path / "by_ssh", tmp_path / "by_us"
    new = ("-o", "StrictHostKeyChecking=accept-new", "-o", "HostKeyAlgorithms=ssh-ed25519")
    alias = ("-o", "HostKeyAlias=Other-Alias")
    assert ssh_exec(server.port, by_ssh, key, *new, *alias).returncode == 0
    added = keytool_exec(
        server.port, by_us, "root@127.0.0.1", "true", flags=("-i", str(key), *new, *alias)
    )
    assert added.returncode == 0, added.stderr
    assert by_us.read_bytes() == by_ssh.read_bytes()
    assert by_us.read_bytes().startswith(b"other-alias ssh-ed25519 ")


def test_proxy_command_carries_the_connection(
    server: Sshd, known: Path, keys: dict[str, Path]
) -> None:
    result = keytool_exec(
        server.port, known, "root@127.0.0.1", "echo", "through-proxy",
        flags=("-v", "-i", str(keys["ed25519"]), "-o", f"ProxyCommand={RELAY_PROXY}"),
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, b"through-proxy\n"), result.stderr
    trace = result.stderr.decode()
    assert "executing proxy command: bash -c" in trace
    assert f"/dev/tcp/127.0.0.1/{server.port};" in trace  # %h and %p expanded
    assert "connected through the ProxyCommand" in trace
    assert "TCP connection established" not in trace  # keytool opened no socket itself
    assert accepted_keys(server.log)[-1] == fingerprint(keys["ed25519"])


def test_proxy_command_that_fails_is_one_line(known: Path, keys: dict[str, Path]) -> None:
    result = keytool_exec(
        22, known, "root@127.0.0.1", "true",
        flags=("-i", str(keys["ed25519"]), "-o", "ProxyCommand=echo proxy-says-no >&2; exit 1"),
    )  # fmt: skip
    assert result.returncode == 255
    lines = result.stderr.decode().splitlines()
    assert lines[0] == "proxy-says-no"  # the command's own stderr comes through
    assert len(lines) == 2 and lines[1].startswith("keytool: ")
    assert "Traceback" not in result.stderr.decode()


def test_connection_refused_is_one_line(tmp_path: Path) -> None:
    from tests.peers import free_port

    port = free_port()
    result = keytool_exec(port, tmp_path / "kh", "root@127.0.0.1", "true")
    assert result.returncode == 255
    assert result.stderr.decode().count("\n") == 1
    assert f"connect to host 127.0.0.1 port {port}: Connection refused".encode() in result.stderr


# ---- the agent


def test_agent_key_used(tmp_path: Path, server: Sshd, known: Path, keys: dict[str, Path]) -> None:
    with openssh_agent(tmp_path / "agent") as agent:
        run([require("ssh-add"), keys["ed25519"]], env=agent.env()).check_returncode()
        moved = tmp_path / "elsewhere"
        keys["ed25519"].rename(moved)  # only the agent has the private key now
        result = keytool_exec(
            server.port, known, "root@127.0.0.1", "echo", "via-agent",
            flags=("-v",), env=agent.env(),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"via-agent\n"
    assert b"(agent)" in result.stderr
    assert accepted_keys(server.log) == [fingerprint(Path(f"{keys['ed25519']}"))]


def test_identity_agent_picks_the_agent(
    tmp_path: Path, server: Sshd, known: Path, keys: dict[str, Path]
) -> None:
    with openssh_agent(tmp_path / "agent") as agent:
        run([require("ssh-add"), keys["ed25519"]], env=agent.env()).check_returncode()
        keys["ed25519"].rename(tmp_path / "elsewhere")  # only the agent has it now
        # SSH_AUTH_SOCK unset: IdentityAgent names the socket, as a path and as "$VAR"
        by_path = keytool_exec(
            server.port, known, "root@127.0.0.1", "echo", "by-path",
            flags=("-o", f"IdentityAgent={agent.sock}"),
        )  # fmt: skip
        by_variable = keytool_exec(
            server.port, known, "root@127.0.0.1", "echo", "by-variable",
            flags=("-o", "IdentityAgent=$KT_TEST_AGENT"),
            env=base_env(KT_TEST_AGENT=str(agent.sock)),
        )  # fmt: skip
        # SSH_AUTH_SOCK set, IdentityAgent=none: the agent's key is never offered
        offered_before = len(offered_keys(server.log))
        without = keytool_exec(
            server.port, known, "root@127.0.0.1", "true",
            flags=("-o", "IdentityAgent=none"), env=agent.env(),
        )  # fmt: skip
    assert (by_path.returncode, by_path.stdout) == (0, b"by-path\n"), by_path.stderr
    assert (by_variable.returncode, by_variable.stdout) == (0, b"by-variable\n")
    agent_key = fingerprint(Path(f"{keys['ed25519']}"))
    assert accepted_keys(server.log) == [agent_key, agent_key]
    assert without.returncode == 255
    assert b"Permission denied" in without.stderr
    assert agent_key not in offered_keys(server.log)[offered_before:]


@pytest.fixture
def agent_with_ten_keys(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[Path]]]:
    folder = tmp_path / "many"
    folder.mkdir()
    many = [keygen(folder / f"k{i}", comment=f"k{i}") for i in range(10)]
    with openssh_agent(tmp_path / "agent10") as agent:
        run([require("ssh-add"), *many], env=agent.env()).check_returncode()
        yield agent.env(), many


def test_explicit_key_first_with_a_full_agent(
    server: Sshd, known: Path, keys: dict[str, Path],
    agent_with_ten_keys: tuple[dict[str, str], list[Path]],
) -> None:  # fmt: skip
    env, _ = agent_with_ten_keys
    result = keytool_exec(
        server.port, known, "root@127.0.0.1", "true",
        flags=("-i", str(keys["ed25519"])), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # the -i key went first: sshd saw one key, the right one
    assert offered_keys(server.log) == [fingerprint(keys["ed25519"])]


def test_identities_only_offers_no_agent_key(
    server: Sshd, known: Path, keys: dict[str, Path],
    agent_with_ten_keys: tuple[dict[str, str], list[Path]],
) -> None:  # fmt: skip
    env, many = agent_with_ten_keys
    server.authorized_keys.write_text(Path(f"{many[9]}.pub").read_text())
    result = keytool_exec(
        server.port, known, "root@127.0.0.1", "true",
        flags=("-i", str(keys["ecdsa"]), "-o", "IdentitiesOnly=yes"), env=env,
    )  # fmt: skip
    assert result.returncode == 255
    assert offered_keys(server.log) == [fingerprint(keys["ecdsa"])]


def test_full_agent_never_hits_too_many_failures(
    server: Sshd, known: Path,
    agent_with_ten_keys: tuple[dict[str, str], list[Path]],
) -> None:  # fmt: skip
    env, many = agent_with_ten_keys
    server.authorized_keys.write_text(Path(f"{many[9]}.pub").read_text())
    result = keytool_exec(server.port, known, "root@127.0.0.1", "true", env=env)
    assert result.returncode == 255
    message = result.stderr.decode()
    assert "not offered" in message and "IdentitiesOnly" in message
    assert "Too many authentication failures" not in message
    log = server.log.read_text()
    assert "Too many authentication failures" not in log
    assert "maximum authentication attempts exceeded" not in log
    assert len(offered_keys(server.log)) <= 6  # sshd's default MaxAuthTries
    # real ssh in the same place does hit the limit
    ssh = run(
        [
            require("ssh"), "-F", "none", "-p", str(server.port),
            "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes",
            "-o", "IdentityFile=/dev/null", "root@127.0.0.1", "true",
        ],
        env=env,
    )  # fmt: skip
    assert "Too many authentication failures" in ssh.stderr


# ---- passwords


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[Sshd]:
    sshd = Sshd(
        tmp_path / "sshd-pw",
        {"PasswordAuthentication": "yes", "AuthorizedKeysFile": "none"},
    )
    with sshd:
        yield sshd


def test_password_through_askpass(tmp_path: Path, password_server: Sshd) -> None:
    known = tmp_path / "kh-pw"
    known.write_text(password_server.known_hosts_line())
    with throwaway_account() as account:
        env = askpass_env(tmp_path, account.password)
        result = keytool_exec(
            password_server.port, known, f"{account.name}@127.0.0.1", "id -un", env=env
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().strip() == account.name
        prompts = (tmp_path / "askpass.log").read_text()
        assert f"{account.name}@127.0.0.1's password:" in prompts
        assert f"Accepted password for {account.name}" in password_server.log.read_text()
        # the password is never echoed anywhere
        assert account.password.encode() not in result.stderr + result.stdout


def test_wrong_password_three_prompts_then_clear_error(
    tmp_path: Path, password_server: Sshd
) -> None:
    known = tmp_path / "kh-pw"
    known.write_text(password_server.known_hosts_line())
    again = "Permission denied, please try again."
    with throwaway_account() as account:
        env = askpass_env(tmp_path, "not-the-password")
        result = keytool_exec(
            password_server.port, known, f"{account.name}@127.0.0.1", "true", env=env
        )
        # ssh says "try again" before each new prompt, so twice for three prompts
        theirs = subprocess.run(
            [require("ssh"), "-F", "/dev/null", "-p", str(password_server.port), "-o",
             f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
             "-o", "PubkeyAuthentication=no", f"{account.name}@127.0.0.1", "true"],
            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
    assert result.returncode == theirs.returncode == 255
    assert result.stderr.decode().strip().splitlines()[-1].count("password") >= 1
    assert (tmp_path / "askpass.log").read_text().count("password:") == 6
    # sshd's monitor logs a failure after it answered: the last one may come after ssh
    # has gone
    failed = f"Failed password for {account.name}"
    assert wait_for_log(password_server.log, failed, count=6).count(failed) == 6
    assert result.stderr.decode().count(again) == theirs.stderr.count(again) == 2


def test_no_password_prompt_in_batch_mode(tmp_path: Path, password_server: Sshd) -> None:
    known = tmp_path / "kh-pw"
    known.write_text(password_server.known_hosts_line())
    env = askpass_env(tmp_path, "whatever")
    result = keytool_exec(
        password_server.port, known, "root@127.0.0.1", "true",
        flags=("-o", "BatchMode=yes"), env=env,
    )  # fmt: skip
    assert result.returncode == 255
    assert not (tmp_path / "askpass.log").exists()
    assert "Failed password" not in password_server.log.read_text()


def test_base_env_has_no_agent() -> None:
    assert "SSH_AUTH_SOCK" not in base_env()


def test_partial_success_key_then_password(tmp_path: Path, keys: dict[str, Path]) -> None:
    """AuthenticationMethods publickey,password: the key is only a first step."""
    with throwaway_account() as account:
        install_key(account, Path(f"{keys['ed25519']}.pub"))
        sshd = Sshd(
            tmp_path / "sshd-2fa",
            {
                "PasswordAuthentication": "yes",
                "AuthenticationMethods": "publickey,password",
                "AuthorizedKeysFile": ".ssh/authorized_keys",
            },
        )
        known = tmp_path / "kh-2fa"
        known.write_text(sshd.known_hosts_line())
        with sshd:
            result = keytool_exec(
                sshd.port, known, f"{account.name}@127.0.0.1", "id -un",
                flags=("-v", "-i", str(keys["ed25519"])),
                env=askpass_env(tmp_path, account.password),
            )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == account.name
    assert b"partial success" in result.stderr
    log = sshd.log.read_text()
    assert f"Partial publickey for {account.name}" in log
    assert f"Accepted password for {account.name}" in log


def test_keepalives_answered_while_a_command_runs(tmp_path: Path, keys: dict[str, Path]) -> None:
    """sshd sends keepalive@openssh.com every second and drops a client that misses
    two answers: a command that sleeps for 4 s only finishes if every one is answered."""
    sshd = Sshd(
        tmp_path / "sshd-alive",
        {"ClientAliveInterval": "1", "ClientAliveCountMax": "2", "LogLevel": "DEBUG3"},
    )
    sshd.authorized_keys.write_text(Path(f"{keys['ed25519']}.pub").read_text())
    known = tmp_path / "kh-alive"
    known.write_text(sshd.known_hosts_line())
    with sshd:
        result = keytool_exec(
            sshd.port, known, "root@127.0.0.1", "sleep 4; echo done",
            flags=("-i", str(keys["ed25519"])),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"done\n"
    log = sshd.log.read_text()
    # sshd logs each answer it got ("Got 100/N for keepalive": our CHANNEL_FAILURE);
    # how many it asks in 4 s depends on how busy the machine is (it asks after a
    # second without a word), but two unanswered in a row would have ended the command
    assert log.count("for keepalive") >= 1, log[-2000:]
    assert "Timeout, client not responding" not in log


def test_a_reader_gone_away_is_255_as_ssh(server: Sshd, known: Path, keys: dict[str, Path]) -> None:
    """`keytool exec host yes | head -1`: the reader closes, both clients end with 255."""
    base = ["-F", "none", "-p", str(server.port), "-i", str(keys["ed25519"]),
            "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes",
            "root@127.0.0.1", "yes"]  # fmt: skip
    codes = {}
    for name, program in (("ssh", [require("ssh")]), ("keytool", [*KEYTOOL, "exec"])):
        proc = subprocess.Popen([*program, *base], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=base_env())  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == b"y\n"
        proc.stdout.close()
        codes[name] = proc.wait(timeout=60)
        assert b"Traceback" not in proc.stderr.read()
        proc.stderr.close()
    assert codes["keytool"] == codes["ssh"] == 255


def test_s_without_a_subsystem_as_ssh(known: Path) -> None:
    for program in ([require("ssh")], [*KEYTOOL, "exec"]):
        done = subprocess.run([*program, "-F", "none", "-s", "somewhere"], capture_output=True,
                              stdin=subprocess.DEVNULL, env=base_env(), timeout=60)  # fmt: skip
        assert done.returncode == 255
        assert done.stderr.splitlines()[0].endswith(b"You must specify a subsystem to invoke.")

"""Helpers for the client tests: run ``keytool exec`` with bytes in and out, a
throwaway local account with a password, the sshd log's record of authentication."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers import Sshd, require, run, user_db

KEYTOOL = [sys.executable, "-m", "keytool"]


def base_env(**extra: str) -> dict[str, str]:
    """The environment without the caller's agent or askpass, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE")
    }
    env.update(extra)
    return env


#: a ProxyCommand that relays to %h:%p by bash's /dev/tcp: the tokens must be expanded
#: for it to reach the server, and the server sees the connection come from it
RELAY_PROXY = 'bash -c "exec 3<>/dev/tcp/%h/%p; cat <&3 & exec cat >&3"'

#: a ProxyCommand's relay in Python: stdin and stdout to the host and port it is given
#: (argv), ending once the server hangs up (a half-closed socket tells sshd the client
#: is gone). Written to a file by ``relay_script``
RELAY = """
import os, socket, sys, threading
server = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    while data := os.read(0, 65536):
        server.sendall(data)
    server.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := server.recv(65536):
    os.write(1, data)
"""


def relay_script(folder: Path) -> str:
    """The command that runs ``RELAY`` (host and port to be added), from a file in ``folder``."""
    relay = folder / "relay.py"
    relay.write_text(RELAY)
    return f"{sys.executable} {relay}"


def keytool_exec(
    port: int,
    known_hosts: Path,
    destination: str,
    *command: str,
    flags: tuple[str, ...] = (),
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """``keytool exec`` as a user runs it: no ~/.ssh/config, the given known_hosts."""
    args = [
        *KEYTOOL,
        "exec",
        "-F",
        "none",
        "-p",
        str(port),
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        *flags,
        destination,
        "--",
        *command,
    ]
    return subprocess.run(
        args,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        env=dict(env) if env is not None else base_env(),
        timeout=timeout,
        check=False,
    )


def one_line_failure(result: subprocess.CompletedProcess[bytes]) -> str:
    """``keytool exec`` failed as ssh does and as the quality bar wants: status 255,
    nothing on stdout, one stderr line and no traceback; returns that line."""
    stderr = result.stderr.decode()
    assert result.returncode == 255, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert result.stdout == b""
    return lines[0]


def keygen(path: Path, kind: str = "ed25519", comment: str = "") -> Path:
    extra = ["-b", "2048"] if kind == "rsa" else []
    run(
        [require("ssh-keygen"), "-q", "-t", kind, *extra, "-N", "", "-C", comment, "-f", path]
    ).check_returncode()
    return path


def key_login_server(folder: Path, options: dict[str, str] | None = None) -> tuple[Sshd, Path]:
    """An sshd (not started; ``options`` added to its config) that lets root in with a
    new Ed25519 key, and that key."""
    key = keygen(folder / "id", "ed25519", "login")
    sshd = Sshd(folder / "sshd", options)
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    return sshd, key


def server_for(folder: Path, options: dict[str, str] | None = None) -> tuple[Sshd, Path, Path]:
    """An sshd taking a new key (``options`` added to its config); the key, and a
    known_hosts naming the server."""
    sshd, key = key_login_server(folder, options)
    known = folder / "known"
    known.write_text(sshd.known_hosts_line())
    return sshd, key, known


def fingerprint(path: Path) -> str:
    result = run([require("ssh-keygen"), "-lf", f"{path}.pub"])
    result.check_returncode()
    return result.stdout.split()[1]


def accepted_keys(log: Path) -> list[str]:
    """Fingerprints sshd logged as "Accepted publickey", in order."""
    text = log.read_text(errors="replace")
    return re.findall(r"Accepted publickey for \S+ from .* ssh2: \S+ (SHA256:\S+)", text)


def offered_keys(log: Path) -> list[str]:
    """Fingerprints of every publickey request sshd saw (queries and signed requests)."""
    text = log.read_text(errors="replace")
    return re.findall(r"userauth_pubkey: .*?pkblob \S+ (SHA256:\S+)", text)


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    home: Path
    uid: int
    gid: int


@contextmanager
def throwaway_account(shell: str = "/bin/sh") -> Iterator[Account]:
    """A local account with a random password, removed afterwards. Needs root.

    Its home is a fresh temporary folder whose parents anyone may traverse (pytest's
    tmp_path is private to root), because sshd and dropbear read authorized_keys
    and start the shell as the user."""
    if os.geteuid() != 0:
        pytest.skip("creating an account needs root")
    name = f"kt{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    base = Path(tempfile.mkdtemp(prefix="keytool-home-"))
    base.chmod(0o711)
    home = base / name
    user_db(
        [require("useradd"), "-M", "-d", home, "-s", shell, "-K", "MAIL_DIR=/dev/null", name]
    ).check_returncode()
    try:
        entry = pwd.getpwnam(name)
        home.mkdir(mode=0o755)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        user_db([require("chpasswd")], input=f"{name}:{password}\n").check_returncode()
        yield Account(name, password, home, entry.pw_uid, entry.pw_gid)
    finally:
        user_db([require("userdel"), "-f", name])
        shutil.rmtree(base, ignore_errors=True)


def install_key(account: Account, pub: Path) -> Path:
    """~/.ssh/authorized_keys of ``account`` holding ``pub``, with the modes sshd wants."""
    ssh_dir = account.home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(pub.read_text())
    keys.chmod(0o600)
    for path in (ssh_dir, keys):
        os.chown(path, account.uid, account.gid)
    return keys


def askpass_env(folder: Path, answer: str, **extra: str) -> dict[str, str]:
    """Environment that makes keytool ask SSH_ASKPASS (forced) and answer ``answer``;
    the prompts asked are appended to folder/askpass.log."""
    script = folder / "askpass.sh"
    script.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$1" >> "$KT_ASKPASS_LOG"\nprintf "%s\\n" "$KT_ASKPASS_ANSWER"\n'
    )
    script.chmod(0o755)
    return base_env(
        SSH_ASKPASS=str(script),
        SSH_ASKPASS_REQUIRE="force",
        KT_ASKPASS_LOG=str(folder / "askpass.log"),
        KT_ASKPASS_ANSWER=answer,
        **extra,
    )


#: what ssh puts before some of its lines (its function's name, its severity) and
#: keytool before its own; taken off to compare the words
_PREFIXES = ("keytool: ", "unix_listener: ", "channel_setup_fwd_listener_tcpip: ", "Error: ")


def ssh_words(stderr: bytes | str) -> list[str]:
    """stderr's lines as words to compare between ssh and keytool: without ssh's
    carriage returns and the prefixes in ``_PREFIXES``."""
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    lines = []
    for line in text.replace("\r", "").splitlines():
        for prefix in _PREFIXES:
            line = line.removeprefix(prefix)
        lines.append(line)
    return lines


def both_clients(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> dict[str, subprocess.CompletedProcess[bytes]]:
    """The same arguments run by ssh and by ``keytool exec`` (stdin /dev/null), each
    one's result by its name: "ssh" and "keytool"."""
    runs = {}
    for tool, program in (("ssh", [require("ssh")]), ("keytool", [*KEYTOOL, "exec"])):
        runs[tool] = subprocess.run(
            [*program, *args],
            capture_output=True,
            env=dict(env) if env is not None else base_env(),
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    return runs


def keepalive_timers(port: int, timeout: float = 10.0) -> list[bool]:
    """For each established TCP connection to 127.0.0.1:``port`` (the client's side),
    whether its keepalive timer runs (/proc/net/tcp: timer kind 2 while idle). A
    connection with data in flight shows its retransmission timer (kind 1) instead:
    looked at again until none has (a server's message just sent, awaiting its ACK)."""
    deadline = time.monotonic() + timeout
    while True:
        kinds = []
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            remote, state, timer = fields[2], fields[3], fields[5]
            if state == "01" and remote == f"0100007F:{port:04X}":
                kinds.append(timer.split(":")[0])
        if not {"01", "04"} & set(kinds) or time.monotonic() > deadline:
            return [kind == "02" for kind in kinds]
        time.sleep(0.02)


@contextmanager
def hello_service(connections: int) -> Iterator[int]:
    """A TCP service on 127.0.0.1 (its port) that says hello and closes, for each of
    ``connections`` connections."""
    import socket
    import threading

    with socket.create_server(("127.0.0.1", 0)) as service:

        def greet() -> None:
            for _ in range(connections):
                conn, _ = service.accept()
                with conn:
                    conn.sendall(b"hello\n")

        threading.Thread(target=greet, daemon=True).start()
        yield service.getsockname()[1]


def run_stdin_open(args: list[str], timeout: float = 20) -> tuple[int, bytes, bytes]:
    """Run ``args`` with a stdin that stays open (a pipe never closed before it
    ends): its status, stdout and stderr; killed after ``timeout``."""
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=base_env(),
    )  # fmt: skip
    try:
        status = proc.wait(timeout=timeout)
        assert proc.stdout is not None and proc.stderr is not None
        return status, proc.stdout.read(), proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

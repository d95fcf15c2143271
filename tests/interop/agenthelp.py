"""Helpers for the agent tests: key files made by ssh-keygen, running agents (keytool's
and OpenSSH's), an askpass script, raw agent connections."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.peers import require, run

KEYTOOL = [sys.executable, "-m", "keytool"]
KEY_TYPES: dict[str, list[str]] = {"ed25519": [], "ecdsa": ["-b", "256"], "rsa": ["-b", "2048"]}


def make_keys(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    keys = {}
    for kind, extra in KEY_TYPES.items():
        path = folder / f"id_{kind}"
        run(
            [
                require("ssh-keygen"),
                "-q",
                "-t",
                kind,
                *extra,
                "-N",
                "",
                "-C",
                f"kt-{kind}",
                "-f",
                path,
            ]
        ).check_returncode()
        keys[kind] = path
    return keys


def agent_env(sock: Path | str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AGENT_PID", "SSH_ASKPASS")}
    env["SSH_AUTH_SOCK"] = str(sock)
    env.update(extra)
    return env


def wait_for_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        if path.exists():
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(path))
                    return
                except OSError:
                    pass
        time.sleep(0.02)
    raise RuntimeError(f"nothing listened on {path} within {timeout}s")


@dataclass
class RunningAgent:
    sock: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def env(self, **extra: str) -> dict[str, str]:
        return agent_env(self.sock, **extra)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def keytool_agent(
    folder: Path, *flags: str, env: Mapping[str, str] | None = None
) -> Iterator[RunningAgent]:
    """``keytool agent -d -a SOCK`` in the foreground, its debug log in a file."""
    sock = folder / "agent.sock"
    with _running_agent([*KEYTOOL, "agent", "-d", "-a", str(sock), *flags], sock, env) as agent:
        yield agent


@contextmanager
def openssh_agent(
    folder: Path,
    env: Mapping[str, str] | None = None,
    flags: tuple[str, ...] = (),
    program: Path | None = None,
) -> Iterator[RunningAgent]:
    """OpenSSH's ``ssh-agent -D -a SOCK`` in the foreground, its log in a file
    (``program``: a copy of ssh-agent to run instead of the installed one)."""
    sock = folder / "ssh-agent.sock"
    argv = [str(program or require("ssh-agent")), "-D", "-a", str(sock), *flags]
    with _running_agent(argv, sock, env) as agent:
        yield agent


@contextmanager
def _running_agent(
    argv: list[str], sock: Path, env: Mapping[str, str] | None
) -> Iterator[RunningAgent]:
    """Start an agent listening on ``sock``; its stderr goes to a .log beside it."""
    sock.parent.mkdir(parents=True, exist_ok=True)
    log = sock.with_suffix(".log")
    with log.open("wb") as log_handle:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_handle,
            env=dict(env) if env is not None else None,
        )
    agent = RunningAgent(sock, proc, log)
    try:
        wait_for_socket(sock, proc)
        yield agent
    finally:
        agent.stop()


def askpass_script(folder: Path) -> Path:
    """An SSH_ASKPASS program: logs its prompt to $KT_ASKPASS_LOG, prints $KT_ASKPASS_ANSWER,
    exits with $KT_ASKPASS_STATUS (0 unless set)."""
    script = folder / "askpass.sh"
    script.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$1" >> "$KT_ASKPASS_LOG"\n'
        'printf "%s\\n" "$KT_ASKPASS_ANSWER"\n'
        'exit "${KT_ASKPASS_STATUS:-0}"\n'
    )
    script.chmod(0o755)
    return script


def keygen_fingerprints(keys: list[Path], hash_name: str = "sha256") -> str:
    out = ""
    for key in keys:
        result = run([require("ssh-keygen"), "-E", hash_name, "-lf", key])
        result.check_returncode()
        out += result.stdout
    return out


def pub_lines(keys: list[Path]) -> str:
    return "".join(Path(f"{k}.pub").read_text() for k in keys)


def connect(sock: Path, timeout: float = 10.0) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    client.connect(str(sock))
    return client


def recv_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return data
        data += chunk
    return data


def roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(len(payload).to_bytes(4, "big") + payload)
    header = recv_exact(sock, 4)
    assert len(header) == 4, "the agent closed the connection"
    return recv_exact(sock, int.from_bytes(header, "big"))

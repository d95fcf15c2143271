"""A changed host key let through with StrictHostKeyChecking=no, side by side with ssh
against sshd: no port forward is set up (-L, -D, -R), ssh's words are said, and with
ExitOnForwardFailure=yes both give up with ssh's line and status 255."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, keygen
from tests.peers import Sshd, free_port, require

CLIENTS = ("ssh", "keytool")
SAID = "Port forwarding is disabled to avoid man-in-the-middle attacks."


@pytest.fixture
def changed(tmp_path: Path) -> tuple[Sshd, Path, Path]:
    """An sshd taking a new key, and a known_hosts naming another key for it."""
    key = keygen(tmp_path / "id", "ed25519", "login")
    sshd = Sshd(tmp_path / "sshd", {"LogLevel": "DEBUG3"})
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    other = keygen(tmp_path / "other_host", "ed25519")
    kind, blob = Path(f"{other}.pub").read_text().split()[:2]
    known = tmp_path / "known"
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    return sshd, key, known


def _args(sshd: Sshd, key: Path, known: Path, *flags: str) -> list[str]:
    return ["-F", "none", "-p", str(sshd.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=no", *flags, "root@127.0.0.1"]  # fmt: skip


def _program(client: str) -> list[str]:
    return [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("kind", ["-L", "-D", "-R"])
def test_no_port_forwards_after_a_changed_host_key(
    changed: tuple[Sshd, Path, Path], kind: str
) -> None:
    sshd, key, known = changed
    seen = {}
    with sshd:
        for client in CLIENTS:
            port = free_port()
            spec = {"-L": f"{port}:127.0.0.1:{sshd.port}", "-D": str(port)}.get(
                kind, f"{port}:127.0.0.1:{sshd.port}"
            )
            before = len(sshd.log.read_text(errors="replace"))
            proc = subprocess.Popen(
                [*_program(client), *_args(sshd, key, known, kind, spec), "echo ready; sleep 1"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                text=True,
            )  # fmt: skip
            try:
                assert proc.stdout is not None
                ready = proc.stdout.readline()
                # -L and -D listen here, -R at the server: nobody listens either way
                listening = _listening(port)
                _out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            log = sshd.log.read_text(errors="replace")[before:]
            assert "Traceback" not in err
            seen[client] = (proc.returncode, ready, listening, SAID in err, "tcpip-forward" in log)
    assert seen["keytool"] == seen["ssh"]
    assert seen["ssh"] == (0, "ready\n", False, True, False)


@pytest.mark.parametrize("with_forward", [False, True])
def test_exit_on_forward_failure_gives_up_as_ssh(
    changed: tuple[Sshd, Path, Path], with_forward: bool
) -> None:
    """ssh cancels password authentication too after a changed key, so with
    ExitOnForwardFailure=yes it gives up even with no forward asked for."""
    sshd, key, known = changed
    seen = {}
    with sshd:
        for client in CLIENTS:
            flags = ("-D", str(free_port())) if with_forward else ()
            done = subprocess.run(
                [*_program(client),
                 *_args(sshd, key, known, "-o", "ExitOnForwardFailure=yes", *flags), "echo ran"],
                capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
            )  # fmt: skip
            line = "Error: forwarding disabled due to host key check failure"
            seen[client] = (done.returncode, done.stdout, line in done.stderr)
    assert seen["keytool"] == seen["ssh"] == (255, "", True)

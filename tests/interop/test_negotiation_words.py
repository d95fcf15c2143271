"""Nothing in common with the server, side by side with ssh against the same sshd:
ssh's one line ("Unable to negotiate with HOST port PORT: no matching ... found.
Their offer: ..."), which scripts look for, and 255."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import Sshd, require


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    folder = tmp_path_factory.mktemp("negotiation")
    lacking = {
        "MACs": "hmac-sha2-256",
        "KexAlgorithms": "curve25519-sha256",
        "Ciphers": "chacha20-poly1305@openssh.com,aes128-ctr",
    }
    with Sshd(folder, lacking, host_key_types=("ed25519",)) as started:
        yield started


@pytest.mark.parametrize(
    "option",
    [
        "HostKeyAlgorithms=ssh-rsa",
        "KexAlgorithms=ecdh-sha2-nistp256",
        "Ciphers=aes256-ctr",
        "MACs=hmac-sha2-512",
    ],
)
def test_nothing_in_common_said_as_ssh_says_it(tmp_path: Path, server: Sshd, option: str) -> None:
    # the client offers what this server lacks (its one host key is Ed25519, one kex
    # curve25519, one MAC hmac-sha2-256; -o Ciphers=aes128-ctr leaves
    # chacha20-poly1305 out, so a MAC is negotiated)
    key = keygen(tmp_path / "id")
    known = tmp_path / "known"
    known.write_text(server.known_hosts_line())
    extra = ["-o", "Ciphers=aes128-ctr"] if option.startswith("MACs") else []
    seen = {}
    for tool, program in (("ssh", [require("ssh")]), ("keytool", [*KEYTOOL, "exec"])):
        done = subprocess.run(
            [*program, "-F", "none", "-p", str(server.port), "-i", str(key), "-o", option,
             *extra, "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
             "-o", "BatchMode=yes", "root@127.0.0.1", "true"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
            env=base_env(HOME=str(tmp_path)), check=False,
        )  # fmt: skip
        lines = done.stderr.replace("\r\n", "\n").splitlines()
        seen[tool] = (done.returncode, [line.removeprefix("keytool: ") for line in lines])
    assert seen["keytool"] == seen["ssh"]
    status, lines = seen["ssh"]
    assert status == 255 and lines[-1].startswith("Unable to negotiate with 127.0.0.1 port")

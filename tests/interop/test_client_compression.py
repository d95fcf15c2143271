"""Compression (``keytool exec -C``, zlib@openssh.com from the user authentication on,
PROTOCOL §2.2) against sshd and dropbear, side by side with ssh: the same bytes both
ways, compressible or not, and the servers' own word that they compressed."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, install_key, keygen, throwaway_account
from tests.peers import Dropbear, Sshd, require

# 3 MB up (zeros then random), its digest back, then 2 MB of zeros down
UPLOAD = b"\0" * (2 * 1024 * 1024) + os.urandom(1024 * 1024)
COMMAND = "sha256sum; head -c 2000000 /dev/zero"


def expected() -> bytes:
    digest = hashlib.sha256(UPLOAD).hexdigest()
    return f"{digest}  -\n".encode() + b"\0" * 2000000


def run_client(client: str, port: int, key: Path, known: Path, user: str, *flags: str) -> bytes:
    args = ["-F", "none", "-p", str(port), "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", *flags, f"{user}@127.0.0.1", COMMAND]  # fmt: skip
    program = [*KEYTOOL, "exec", "-v"] if client == "keytool" else [require("ssh")]
    done = subprocess.run(
        [*program, *args], input=UPLOAD, capture_output=True, env=base_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    if client == "keytool":
        assert b"compression zlib@openssh.com," in done.stderr
    return done.stdout


def _sshd_taking_a_key(
    tmp_path: Path, options: dict[str, str] | None = None
) -> tuple[Sshd, Path, Path]:
    """An sshd (not started yet) that takes a new key for root: it, the key, known_hosts."""
    key = keygen(tmp_path / "id")
    sshd = Sshd(tmp_path / "sshd", options)
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = tmp_path / "known"
    known.write_text(sshd.known_hosts_line())
    return sshd, key, known


def test_compressed_both_ways_against_sshd(tmp_path: Path) -> None:
    sshd, key, known = _sshd_taking_a_key(tmp_path)
    with sshd:
        out = {c: run_client(c, sshd.port, key, known, "root", "-C") for c in ("ssh", "keytool")}
        log = sshd.log.read_text(errors="replace")
    assert out["keytool"] == out["ssh"] == expected()
    # sshd negotiated zlib@openssh.com both ways and turned it on, for each client
    for way in ("client->server", "server->client"):
        negotiated = [line for line in log.splitlines() if f"kex: {way} cipher" in line]
        assert len(negotiated) == 2
        assert all(line.endswith("compression: zlib@openssh.com [preauth]") for line in negotiated)
    assert log.count("Enabling compression at level 6.") >= 4


@pytest.mark.parametrize("rekey", [(), ("-o", "RekeyLimit=1M")], ids=["once", "re-keyed"])
def test_compressed_against_dropbear(tmp_path: Path, rekey: tuple[str, ...]) -> None:
    """Also across re-keys every megabyte: dropbear starts its streams anew at each
    NEWKEYS after the login, as keytool does now."""
    key = keygen(tmp_path / "id")
    with throwaway_account() as account, Dropbear(tmp_path / "dropbear") as server:
        install_key(account, Path(f"{key}.pub"))
        known = tmp_path / "known"
        known.write_text(server.known_hosts_lines())
        out = run_client("keytool", server.port, key, known, account.name, "-C", *rekey)
    assert out == expected()


def test_compressed_across_re_keys_against_sshd(tmp_path: Path) -> None:
    """At each NEWKEYS after the login the compression streams start anew, both ways,
    as OpenSSH and dropbear start theirs: keytool kept one stream across re-keys, and
    the first re-key (ours, or the server's RekeyLimit) ended the session."""
    sshd, key, known = _sshd_taking_a_key(tmp_path, {"RekeyLimit": "1M 2s"})
    with sshd:
        out = {
            c: run_client(c, sshd.port, key, known, "root", "-C", "-o", "RekeyLimit=1M")
            for c in ("ssh", "keytool")
        }
        log = sshd.log.read_text(errors="replace")
    assert out["keytool"] == out["ssh"] == expected()
    # sshd turned compression on again at re-keys after the logins (once per login
    # otherwise), compressing all along
    assert log.count("Enabling compression at level 6.") > 2

"""Compression (``keytool exec -C``, zlib@openssh.com from the user authentication on,
PROTOCOL §2.2) against sshd and dropbear, side by side with ssh: the same bytes both
ways, compressible or not, and the servers' own word that they compressed, also across
re-keys (ours or the server's), which sshd's log shows one by one."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, install_key, keygen, throwaway_account
from tests.peers import Dropbear, Sshd, require, wait_logged

# 3 MB up (zeros then random), its digest back, then 2 MB of zeros down
UPLOAD = b"\0" * (2 * 1024 * 1024) + os.urandom(1024 * 1024)
COMMAND = "sha256sum; head -c 2000000 /dev/zero"


def expected() -> bytes:
    digest = hashlib.sha256(UPLOAD).hexdigest()
    return f"{digest}  -\n".encode() + b"\0" * 2000000


class Run(NamedTuple):
    """One client run: what came out, its -v trace, and what sshd logged meanwhile."""

    out: bytes
    trace: str
    log: str


def run_client(
    client: str, port: int, key: Path, known: Path, user: str, *flags: str
) -> tuple[bytes, str]:
    """The client's output and its -v trace (keytool's; empty for ssh)."""
    args = ["-F", "none", "-p", str(port), "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", *flags, f"{user}@127.0.0.1", COMMAND]  # fmt: skip
    program = [*KEYTOOL, "exec", "-v"] if client == "keytool" else [require("ssh")]
    done = subprocess.run(
        [*program, *args], input=UPLOAD, capture_output=True, env=base_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    trace = done.stderr.decode(errors="replace") if client == "keytool" else ""
    if client == "keytool":
        assert "compression zlib@openssh.com," in trace
    return done.stdout, trace


def run_logged(sshd: Sshd, client: str, key: Path, known: Path, *flags: str) -> Run:
    """``run_client`` as root against ``sshd``, with the part of sshd's log written
    while it ran (one client at a time: that part is this connection's), up to the
    connection's end, which sshd may log a moment after the client is gone."""
    before = sshd.log.read_text(errors="replace")
    out, trace = run_client(client, sshd.port, key, known, "root", *flags)
    log = wait_logged(sshd.log, ENDED, before.count(ENDED) + 1)
    return Run(out, trace, log[len(before) :])


#: what sshd logs as a logged-in connection ends (the client's disconnect)
ENDED = "Disconnected from user "


class Exchanges(NamedTuple):
    """sshd's log of one connection (LogLevel DEBUG1), told by key exchange: it logs
    "SSH2_MSG_KEXINIT received" once per exchange, and "sent" too, its own first when it
    began the exchange, after the client's when the client did; "ssh_set_newkeys:
    rekeying out" when its side of a re-key is done."""

    total: int  # key exchanges begun, the login's included
    started: list[str]  # who began each one after the login: "client" or "server"
    finished: int  # re-keys whose NEWKEYS sshd sent


def key_exchanges(log: str) -> Exchanges:
    lines = log.splitlines()
    total = sum(line.endswith("SSH2_MSG_KEXINIT received") or
                line.endswith("SSH2_MSG_KEXINIT received [preauth]") for line in lines)  # fmt: skip
    steps = [line.split()[-1] for line in lines
             if line.endswith(("SSH2_MSG_KEXINIT sent", "SSH2_MSG_KEXINIT received"))]  # fmt: skip
    started = ["server" if step == "sent" else "client" for step in steps[::2]]
    finished = sum("ssh_set_newkeys: rekeying out" in line for line in lines)
    return Exchanges(total, started, finished)


def our_re_keys(trace: str) -> list[str]:
    """The re-keys keytool -v reports done, in order ("1", "2"...)."""
    return re.findall(r"re-key (\d+) done", trace)


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
        runs = {c: run_logged(sshd, c, key, known, "-C") for c in ("ssh", "keytool")}
    assert runs["keytool"].out == runs["ssh"].out == expected()
    # sshd negotiated zlib@openssh.com both ways and turned it on, for each client,
    # in the one key exchange of the login
    for run in runs.values():
        assert key_exchanges(run.log) == (1, [], 0)
        for way in ("client->server", "server->client"):
            negotiated = [line for line in run.log.splitlines() if f"kex: {way} cipher" in line]
            assert len(negotiated) == 1
            assert negotiated[0].endswith("compression: zlib@openssh.com [preauth]")
        assert run.log.count("Enabling compression at level 6.") >= 2
    assert our_re_keys(runs["keytool"].trace) == []


#: re-keys in the middle of the megabyte of random bytes (2.6 times the limit; the zeros
#: hardly count once compressed), with data after them: keytool and ssh each re-key at
#: their own count of it (ssh counts before compression: more often)
LIMIT = "384K"


@pytest.mark.parametrize("rekey", [(), ("-o", f"RekeyLimit={LIMIT}")], ids=["once", "re-keyed"])
def test_compressed_against_dropbear(tmp_path: Path, rekey: tuple[str, ...]) -> None:
    """Also across re-keys: dropbear (which re-keys on its own only after 1 GB or an
    hour) starts its streams anew at each NEWKEYS after the login, as keytool does now.
    dropbear logs no key exchange, so keytool's -v trace tells the re-keys."""
    key = keygen(tmp_path / "id")
    with throwaway_account() as account, Dropbear(tmp_path / "dropbear") as server:
        install_key(account, Path(f"{key}.pub"))
        known = tmp_path / "known"
        known.write_text(server.known_hosts_lines())
        out, trace = run_client("keytool", server.port, key, known, account.name, "-C", *rekey)
    assert out == expected()
    done = our_re_keys(trace)
    if rekey:
        # our RekeyLimit started them, one after the other, all finished but perhaps
        # the last one, begun as the session ended; the first one mid-way
        begun = trace.count("re-keying (RFC 4344 limit reached or asked for)")
        assert done and done == [str(n) for n in range(1, len(done) + 1)], trace
        assert begun - 1 <= len(done) <= begun, trace
        assert "the server started a re-key" not in trace
    else:
        assert done == [], trace


def test_compressed_across_our_re_keys_against_sshd(tmp_path: Path) -> None:
    """At each NEWKEYS after the login the compression streams start anew, both ways,
    as OpenSSH and dropbear start theirs: keytool kept one stream across re-keys, and
    the first re-key ended the session. Here -o RekeyLimit starts them (sshd has no
    limit of its own); a run without it is the baseline, in the same log, the same way."""
    sshd, key, known = _sshd_taking_a_key(tmp_path)
    with sshd:
        baseline = run_logged(sshd, "keytool", key, known, "-C")
        runs = {
            c: run_logged(sshd, c, key, known, "-C", "-o", f"RekeyLimit={LIMIT}")
            for c in ("ssh", "keytool")
        }
    assert baseline.out == expected()
    assert key_exchanges(baseline.log) == (1, [], 0)  # the login's, and no other
    enabled = baseline.log.count("Enabling compression at level 6.")
    for client, run in runs.items():
        assert run.out == expected(), client
        total, started, finished = key_exchanges(run.log)
        # re-keys on top of the login's key exchange (the baseline's one), each begun
        # by the client, all done but perhaps the last one, begun as the session ended
        assert started and set(started) == {"client"}, (client, started)
        assert total == 1 + len(started), client
        assert finished >= 1 and len(started) - 1 <= finished <= len(started), client
        # sshd turned its compression on anew at each (it logs its outgoing side)
        assert run.log.count("Enabling compression at level 6.") == enabled + finished, client
    trace = runs["keytool"].trace
    begun = len(key_exchanges(runs["keytool"].log).started)
    assert trace.count("re-keying (RFC 4344 limit reached or asked for)") == begun
    done = our_re_keys(trace)
    assert done == [str(n) for n in range(1, 1 + len(done))] and len(done) >= begun - 1
    assert "the server started a re-key" not in trace


def test_compressed_across_the_servers_re_keys_against_sshd(tmp_path: Path) -> None:
    """The same when sshd's own RekeyLimit starts the re-keys and the clients set none
    (sshd counts the compressed bytes at its own pace: one re-key here, or more)."""
    sshd, key, known = _sshd_taking_a_key(tmp_path, {"RekeyLimit": LIMIT})
    with sshd:
        runs = {c: run_logged(sshd, c, key, known, "-C") for c in ("ssh", "keytool")}
    for client, run in runs.items():
        assert run.out == expected(), client
        total, started, finished = key_exchanges(run.log)
        assert started and set(started) == {"server"}, (client, started)
        assert total == 1 + len(started) and finished == len(started), client
    trace = runs["keytool"].trace
    assert trace.count("the server started a re-key") == len(key_exchanges(runs["keytool"].log)[1])

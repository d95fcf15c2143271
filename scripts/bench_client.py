#!/usr/bin/env python3
"""Benchmark keytool's SSH client against ssh, asyncssh and paramiko, in one run,
against one throwaway local sshd (127.0.0.1, own config and host keys, key login).

    sudo .venv/bin/python scripts/bench_client.py [--runs 15] [--mib 256] [--skip-bulk]

1. Whole process, ``exec -- true``: ``keytool exec user@127.0.0.1 -- true`` against
   ``ssh -o BatchMode=yes user@127.0.0.1 true``, both with curve25519-sha256 pinned
   (and ssh's default kex for reference), and an asyncssh and a paramiko script doing
   the same. Medians over ``--runs`` runs; ratios against ssh with the same kex.
2. Bulk: ``head -c 256M /dev/zero`` streamed back to /dev/null, per cipher, keytool
   against ssh; MiB/s and ratios.

Targets (issue 4): keytool within 1.2x of ssh with the same kex and under 0.6x of
both Python peers; bulk at least 0.5x ssh's with aes128-gcm.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.peers import Sshd, require, run  # noqa: E402

KEX = "curve25519-sha256"
CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
)

ASYNCSSH_SCRIPT = textwrap.dedent(
    """\
    import asyncio, sys
    import asyncssh

    async def main(port, key, known, kex, user):
        async with asyncssh.connect(
            "127.0.0.1", port, username=user, client_keys=[key], known_hosts=known,
            agent_path=None, kex_algs=[kex] if kex else (), config=None,
        ) as conn:
            result = await conn.run("true")
            sys.exit(result.exit_status)

    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]))
    """
)

PARAMIKO_SCRIPT = textwrap.dedent(
    """\
    import sys
    import paramiko

    port, key, known, user = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    client = paramiko.SSHClient()
    client.load_host_keys(known)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", port, username=user, key_filename=key,
                   look_for_keys=False, allow_agent=False)
    _, stdout, _ = client.exec_command("true")
    status = stdout.channel.recv_exit_status()
    client.close()
    sys.exit(status)
    """
)


@contextlib.contextmanager
def bench_account() -> Iterator[str]:
    """A throwaway login with /bin/sh as its shell, removed afterwards (as root).

    Logging in as root would time root's shell start-up files too (a login's bash
    reads ~/.bashrc, which on a developer machine can take longer than SSH itself);
    the benchmark is about the SSH client, so the account's shell starts in no time.
    Without root, the current user is used as is."""
    if os.geteuid() != 0:
        yield pwd.getpwuid(os.getuid()).pw_name
        return
    name = f"ktbench{os.getpid()}"
    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    home.chmod(0o755)
    # password "*": no password login, but not a locked account ("!"), which sshd
    # without PAM refuses even for key logins
    run([require("useradd"), "-M", "-d", home, "-s", "/bin/sh", "-p", "*", name]).check_returncode()
    try:
        yield name
    finally:
        run([require("userdel"), "-f", name])
        shutil.rmtree(home, ignore_errors=True)


def clean_env() -> dict[str, str]:
    """No agent, and bytecode caching on (as for an installed tool)."""
    drop = ("SSH_AUTH_SOCK", "SSH_AGENT_PID", "SSH_ASKPASS", "PYTHONDONTWRITEBYTECODE")
    return {k: v for k, v in os.environ.items() if k not in drop}


def timed(args: list[str], env: dict[str, str], stdout: int | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        args, stdin=subprocess.DEVNULL, stdout=stdout or subprocess.PIPE,
        stderr=subprocess.PIPE, env=env, timeout=600, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(args)}\n{result.stderr!r}")
    return elapsed


def interleaved_medians(
    cases: dict[str, list[str]], env: dict[str, str], runs: int
) -> dict[str, float]:
    """Median wall time of each case; the cases take turns, run after run, so that a
    change in the machine's load falls on all of them alike."""
    for command in cases.values():
        timed(command, env)  # warm-up: page cache, bytecode
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for round_number in range(runs):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(timed(cases[name], env))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--skip-bulk", action="store_true")
    args = parser.parse_args()

    env = clean_env()
    bin_dir = Path(sys.executable).parent
    keytool = str(bin_dir / "keytool") if (bin_dir / "keytool").exists() else None
    keytool_cmd = [keytool] if keytool else [sys.executable, "-m", "keytool"]
    ssh = require("ssh")
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o711)  # the bench account's sshd reads authorized_keys below it
        key = folder / "id_ed25519"
        run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key]).check_returncode()
        server = Sshd(folder / "sshd", {"LogLevel": "ERROR"})
        server.authorized_keys.write_text(Path(f"{key}.pub").read_text())
        server.authorized_keys.chmod(0o644)
        known = folder / "known_hosts"
        known.write_text(server.known_hosts_line())
        (folder / "bench_asyncssh.py").write_text(ASYNCSSH_SCRIPT)
        (folder / "bench_paramiko.py").write_text(PARAMIKO_SCRIPT)
        with server, bench_account() as user:
            port = str(server.port)
            common = [
                "-F", "none", "-p", port, "-i", str(key),
                "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "IdentitiesOnly=yes",
            ]  # fmt: skip
            kex = ["-o", f"KexAlgorithms={KEX}"]
            target = f"{user}@127.0.0.1"
            cases = {
                f"keytool exec -- true ({KEX})": [
                    *keytool_cmd, "exec", *common, *kex, target, "--", "true"
                ],
                f"ssh true ({KEX})": [ssh, *common, *kex, "-o", "BatchMode=yes", target, "true"],
                "ssh true (its default kex)": [ssh, *common, "-o", "BatchMode=yes", target, "true"],
                f"asyncssh script ({KEX})": [
                    sys.executable, str(folder / "bench_asyncssh.py"), port, str(key),
                    str(known), KEX, user,
                ],
                "paramiko script": [
                    sys.executable, str(folder / "bench_paramiko.py"), port, str(key), str(known),
                    user,
                ],
            }  # fmt: skip
            print(f"whole process, median of {args.runs} runs against OpenSSH sshd on 127.0.0.1")
            medians = interleaved_medians(cases, env, args.runs)
            for name, value in medians.items():
                print(f"  {name:<42} {value * 1000:7.1f} ms", flush=True)
            ours = medians[f"keytool exec -- true ({KEX})"]
            same_kex = medians[f"ssh true ({KEX})"]
            print("ratios (keytool / other):")
            for name, value in medians.items():
                if not name.startswith("keytool"):
                    print(f"  vs {name:<39} {ours / value:6.2f}x")
            print(
                f"  targets: <= 1.2x ssh with {KEX}: "
                f"{'met' if ours <= 1.2 * same_kex else 'NOT met'}; < 0.6x asyncssh and paramiko: "
                + (
                    "met"
                    if ours < 0.6 * medians[f"asyncssh script ({KEX})"]
                    and ours < 0.6 * medians["paramiko script"]
                    else "NOT met"
                )
            )
            if args.skip_bulk:
                return
            print(f"\nbulk: head -c {args.mib}M /dev/zero streamed back to /dev/null")
            remote = f"head -c {args.mib}M /dev/zero"
            with open(os.devnull, "wb") as sink:
                for cipher in CIPHERS:
                    rates = {}
                    for name, command in (
                        ("keytool", [*keytool_cmd, "exec", *common, *kex,
                                     "-o", f"Ciphers={cipher}", target, "--", remote]),
                        ("ssh", [ssh, *common, *kex, "-o", "BatchMode=yes",
                                 "-c", cipher, target, remote]),
                    ):  # fmt: skip
                        best = min(timed(command, env, sink.fileno()) for _ in range(3))
                        rates[name] = args.mib / best
                    ratio = rates["keytool"] / rates["ssh"]
                    print(
                        f"  {cipher:<32} keytool {rates['keytool']:7.1f} MiB/s   "
                        f"ssh {rates['ssh']:7.1f} MiB/s   ratio {ratio:5.2f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()

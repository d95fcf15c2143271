#!/usr/bin/env python3
"""keytool copy-id against OpenSSH's ssh-copy-id, side by side, against the same local
sshd servers on 127.0.0.1, logging in with a key held by ssh-agent.

1. One host, whole-process wall time, median of --rounds runs each, with the new key
   not yet installed and already installed. keytool verifies (a second login with the
   new key alone); ssh-copy-id does not. The TCP connections each run opened are
   counted in sshd's log.
2. A fleet of --hosts host entries (default 100), each its own throwaway account
   behind its own port; at most 16 ports per sshd, MaxStartups raised. keytool does
   them all in one run (its default -j 32; median of --fleet-rounds runs),
   ssh-copy-id in a sequential loop over all of them (once: it takes a minute or
   more). The loop is cut in --fleet-rounds parts, each run right after one keytool
   run, so that a drift of the machine's speed weighs on both alike.

Needs root: it creates throwaway accounts (removed at the end), and starts sshd,
ssh-agent and the clients with a private HOME; nothing of the invoking user's ~/.ssh
is read or written.

    sudo .venv/bin/python scripts/bench_copyid.py [--rounds 7] [--hosts 100]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.interop.agenthelp import openssh_agent  # noqa: E402
from tests.interop.clienthelp import Account, keygen, throwaway_account  # noqa: E402
from tests.interop.copyidhelp import USER_KEYS, put_keys  # noqa: E402
from tests.peers import Sshd, free_port, require  # noqa: E402

# the installed entry point, as a user runs it (else the module)
_SCRIPT = Path(sys.executable).parent / "keytool"
KEYTOOL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "keytool"]
PORTS_PER_SSHD = 16


def timed(args: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        list(args), env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{result.stdout}{result.stderr}")
    return elapsed


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far, all cores (Linux /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of our children waited for so far (keytool's, once it ended)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def connections(log: Path) -> int:
    return len(re.findall(r"Connection from 127\.0\.0\.1 port", log.read_text(errors="replace")))


@contextmanager
def sshd_with_ports(folder: Path, accounts: Sequence[Account], ports: int) -> Iterator[Sshd]:
    """One sshd listening on ``ports`` ports (the first is ``.port``)."""
    options = dict(USER_KEYS)
    options.update({"AllowUsers": " ".join(a.name for a in accounts), "LogLevel": "VERBOSE"})
    options["MaxStartups"] = "1000:30:2000"
    server = Sshd(folder, options)
    server.extra_ports = [free_port() for _ in range(ports - 1)]  # type: ignore[attr-defined]
    with server.config.open("a") as config:
        for port in server.extra_ports:  # type: ignore[attr-defined]
            config.write(f"ListenAddress 127.0.0.1:{port}\n")
    with server:
        yield server


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f} ms"


def one_host(work: Path, rounds: int, env: dict[str, str], login: Path, new: Path) -> None:
    with throwaway_account() as account, sshd_with_ports(work / "sshd1", [account], 1) as server:
        known = work / "known_hosts"
        known.write_text(server.known_hosts_line())
        login_line = Path(f"{login}.pub").read_bytes()
        new_line = Path(f"{new}.pub").read_bytes()
        common = [
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-p",
            str(server.port),
        ]
        dest = f"{account.name}@127.0.0.1"
        keytool = [*KEYTOOL, "copy-id", "-F", "none"]
        commands = {
            "ssh-copy-id": [require("ssh-copy-id"), "-i", f"{new}.pub", *common, dest],
            "keytool copy-id": [*keytool, "-i", f"{new}.pub", *common, dest],
        }
        keys_file = account.home / ".ssh" / "authorized_keys"
        print(f"one host: {dest} port {server.port}, logging in with an agent key")
        for args in commands.values():  # warm-up, not measured: caches, bytecode
            put_keys(account, login_line)
            timed(args, env)
        for state in ("new", "already there"):
            times: dict[str, list[float]] = {name: [] for name in commands}
            conns: dict[str, int] = {}
            for _ in range(rounds):
                for name, args in commands.items():
                    put_keys(account, login_line if state == "new" else login_line + new_line)
                    before = connections(server.log)
                    times[name].append(timed(args, env))
                    conns[name] = connections(server.log) - before
                    text = keys_file.read_bytes()
                    assert text == login_line + new_line, f"{name} left {text!r}"
            base = statistics.median(times["ssh-copy-id"])
            for name, values in times.items():
                median = statistics.median(values)
                print(
                    f"  key {state:<13} {name:<16} median {ms(median)}  "
                    f"({conns[name]} TCP connections)  ratio {median / base:.2f}"
                )


def fleet(work: Path, count: int, rounds: int, env: dict[str, str], login: Path, new: Path) -> None:
    login_line = Path(f"{login}.pub").read_bytes()
    new_line = Path(f"{new}.pub").read_bytes()
    with ExitStack() as stack:
        print(f"fleet: creating {count} throwaway accounts ...", flush=True)
        accounts = [stack.enter_context(throwaway_account()) for _ in range(count)]
        groups = [accounts[i : i + PORTS_PER_SSHD] for i in range(0, count, PORTS_PER_SSHD)]
        entries: list[tuple[Account, int]] = []
        known_lines: list[str] = []
        for number, group in enumerate(groups):
            server = stack.enter_context(
                sshd_with_ports(work / f"fleet{number}", group, len(group))
            )
            ports = [server.port, *server.extra_ports]  # type: ignore[attr-defined]
            key_part = server.known_hosts_line().split(" ", 1)[1]
            for account, port in zip(group, ports, strict=True):
                entries.append((account, port))
                known_lines.append(f"[127.0.0.1]:{port} {key_part}")
        known = work / "known_fleet"
        known.write_text("".join(known_lines))
        hosts = work / "hosts"
        hosts.write_text("".join(f"ssh://{a.name}@127.0.0.1:{p}\n" for a, p in entries))
        print(f"fleet: {count} host entries on {len(groups)} sshd processes")
        opts = [
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
        ]

        def reset(group: Sequence[tuple[Account, int]]) -> None:
            for account, _ in group:
                put_keys(account, login_line)

        def check(group: Sequence[tuple[Account, int]]) -> None:
            for account, _ in group:
                text = (account.home / ".ssh" / "authorized_keys").read_bytes()
                assert text == login_line + new_line, f"{account.name}: {text!r}"

        keytool_args = [*KEYTOOL, "copy-id", "-F", "none", "-i", f"{new}.pub", *opts]
        # The loop runs once, in `rounds` parts, each after one keytool run: both see
        # the machine in the same state (its speed drifts over a minute)
        parts = [entries[i::rounds] for i in range(rounds)]
        runs: list[float] = []
        loop_parts: list[float] = []
        own: list[float] = []  # keytool's CPU in each run
        rest: list[float] = []  # the machine's besides: sshd and its children, the agent
        for part in parts:
            reset(entries)
            busy, mine = machine_busy(), children_cpu()
            runs.append(timed([*keytool_args, "--hosts", str(hosts)], env))
            time.sleep(0.5)  # the servers' last processes end
            own.append(children_cpu() - mine)
            rest.append(machine_busy() - busy - own[-1])
            check(entries)
            reset(part)
            start = time.perf_counter()
            for account, port in part:
                args = [require("ssh-copy-id"), "-i", f"{new}.pub", *opts, "-p", str(port)]
                timed([*args, f"{account.name}@127.0.0.1"], env)
            loop_parts.append(time.perf_counter() - start)
            check(part)
        keytool_time = statistics.median(runs)
        loop_time = sum(loop_parts)
        shown = ", ".join(f"{t:.2f}" for t in runs)
        shown_loop = " + ".join(f"{t:.1f}" for t in loop_parts)
        print(f"  keytool copy-id --hosts (-j 32, verified) {keytool_time:6.2f} s  ({shown})")
        print(f"  ssh-copy-id, one host after another {loop_time:6.2f} s  ({shown_loop})")
        print(f"  ratio {keytool_time / loop_time:.3f} (1/{loop_time / keytool_time:.1f})")
        # what bounds the fleet here: the CPU the servers' side needs, whoever the client
        cores = os.cpu_count() or 1
        others = statistics.median(rest)
        print(f"  CPU in a keytool run: keytool {statistics.median(own):.2f} s;")
        print(
            "    the rest of the machine (sshd and its children, ssh-agent, the kernel) "
            f"{others:.2f} s,"
        )
        print(
            f"    so at least {others / cores:.2f} s on {cores} cores even for a client that "
            f"took none (1/20 of the loop: {loop_time / 20:.2f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="runs per tool and case")
    parser.add_argument("--hosts", type=int, default=100, help="fleet size (0: skip)")
    parser.add_argument("--fleet-rounds", type=int, default=5, help="keytool fleet runs")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_copyid.py needs root: it creates throwaway accounts")
    work = Path(tempfile.mkdtemp(prefix="bench-copyid-"))
    try:
        home = work / "home"
        (home / ".ssh").mkdir(parents=True, mode=0o700)  # ssh-copy-id's temp files go here
        login = keygen(work / "login", "ed25519", "login")
        new = keygen(work / "new", "ed25519", "new")
        with openssh_agent(work / "agent") as agent:
            subprocess.run(
                [require("ssh-add"), "-q", str(login)], env=agent.env(), check=True, timeout=30
            )
            env = agent.env(HOME=str(home))
            # as on a user's machine: Python keeps the compiled modules
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            one_host(work, args.rounds, env, login, new)
            if args.hosts:
                fleet(work, args.hosts, args.fleet_rounds, env, login, new)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

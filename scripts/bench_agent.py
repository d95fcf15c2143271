#!/usr/bin/env python3
"""keytool's agent and OpenSSH's ssh-agent side by side, with the same keys.

For each key type: signatures per second and p50/p99 latency at 1, 8 and 64 concurrent
clients (each keeps one request in flight on its own connection), and with a new
connection per request (8 clients); then each agent's peak RSS with 1 and with 100 keys.

Run from the project folder: .venv/bin/python scripts/bench_agent.py [--seconds N]
"""

from __future__ import annotations

import argparse
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from keytool import agentproto as proto  # noqa: E402
from keytool.agentclient import AgentClient  # noqa: E402
from keytool.keys import generate  # noqa: E402
from keytool.keys.base import PrivateKey  # noqa: E402

# what a client signs during user authentication is ~150-400 bytes (RFC 4252 §7)
DATA = os.urandom(32) + b"\x32" + b"x" * 200
CASES = [
    ("ed25519", "ed25519", None, 0),
    ("ecdsa-p256", "ecdsa", 256, 0),
    ("rsa-2048", "rsa", 2048, proto.SSH_AGENT_RSA_SHA2_256),
    ("rsa-4096", "rsa", 4096, proto.SSH_AGENT_RSA_SHA2_512),
]
LOADS = [("1", 1, False), ("8", 8, False), ("64", 64, False), ("new conn", 8, True)]


@dataclass
class Agent:
    name: str
    sock: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def cpu_seconds(self) -> float:
        """User and system time of the agent, all its threads (clock ticks of 1/100 s)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return -1


def start_agent(name: str, folder: Path) -> Agent:
    sock = str(folder / f"{name}.sock")
    if name == "keytool":
        args = [sys.executable, "-m", "keytool", "agent", "-D", "-a", sock]
    else:
        ssh_agent = shutil.which("ssh-agent")
        if ssh_agent is None:
            raise SystemExit("ssh-agent is not installed")
        args = [ssh_agent, "-D", "-a", sock]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(sock)
            return Agent(name, sock, proc)
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit(f"{name} agent did not start")


def load(sock: str, frame: bytes, clients: int, seconds: float, reconnect: bool) -> list[float]:
    """Keep ``clients`` requests in flight for ``seconds``; the latencies of the answers."""
    selector = selectors.DefaultSelector()
    latencies: list[float] = []
    clock = time.perf_counter

    def start(conn: socket.socket | None) -> None:
        if conn is None:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(sock)
            conn.setblocking(False)
            selector.register(conn, selectors.EVENT_READ, [b"", 0.0])
        state = selector.get_key(conn).data
        state[0] = b""
        state[1] = clock()
        conn.send(frame)

    for _ in range(clients):
        start(None)
    deadline = clock() + seconds
    failures = 0
    while clock() < deadline:
        for key, _ in selector.select(1.0):
            conn = key.fileobj
            assert isinstance(conn, socket.socket)
            state = key.data
            chunk = conn.recv(65536)
            if not chunk:
                raise SystemExit("the agent closed a connection during the benchmark")
            buf = state[0] + chunk
            if len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
                state[0] = buf
                continue
            latencies.append(clock() - state[1])
            if buf[4] != proto.SSH_AGENT_SIGN_RESPONSE:
                failures += 1
            if reconnect:
                selector.unregister(conn)
                conn.close()
                start(None)
            else:
                start(conn)
    # let the requests still in flight finish, so the next measurement starts clean
    pending = len(selector.get_map())
    drain_until = clock() + 30
    while pending and clock() < drain_until:
        for key, _ in selector.select(1.0):
            conn = key.fileobj
            assert isinstance(conn, socket.socket)
            buf = key.data[0] + conn.recv(65536)
            key.data[0] = buf
            if len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
                selector.unregister(conn)
                conn.close()
                pending -= 1
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    selector.close()
    if failures:
        raise SystemExit(f"{failures} signature requests failed")
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def check(sock: str, key: PrivateKey, flags: int) -> None:
    with AgentClient(sock) as client:
        signature = client.sign(key.public.to_wire(), DATA, flags)
    if not key.public.verify(signature, DATA):
        raise SystemExit("an agent returned a signature that does not verify")


def bench(folder: Path, seconds: float, rounds: int) -> None:
    keys = {label: generate(kind, bits) for label, kind, bits, _ in CASES}
    agents = [start_agent("keytool", folder), start_agent("ssh-agent", folder)]
    try:
        for agent in agents:
            with AgentClient(agent.sock) as client:
                for label, key in keys.items():
                    client.add(key, label)
        print(f"{'key':<11} {'clients':<9}", end="")
        for agent in agents:
            print(f"{agent.name + ' sig/s':>17} {'p50 ms':>7} {'p99 ms':>7} {'cpu us':>7}", end="")
        print(f"{'ratio':>8}")
        for label, _kind, _bits, flags in CASES:
            key = keys[label]
            request = proto.SignRequest(key.public.to_wire(), DATA, flags)
            frame = proto.frame(proto.encode_request(request))
            for agent in agents:
                check(agent.sock, key, flags)
            for load_name, clients, reconnect in LOADS:
                print(f"{label:<11} {load_name:<9}", end="", flush=True)
                latencies: dict[str, list[float]] = {a.name: [] for a in agents}
                cpu = dict.fromkeys(latencies, 0.0)
                # alternate the agents in short rounds, so a busy moment of the machine
                # does not fall on one of them only
                for round_number in range(rounds):
                    order = agents if round_number % 2 == 0 else agents[::-1]
                    for agent in order:
                        load(agent.sock, frame, clients, 0.2, reconnect)  # warm up
                        before = agent.cpu_seconds()
                        latencies[agent.name] += load(
                            agent.sock, frame, clients, seconds / rounds, reconnect
                        )
                        cpu[agent.name] += agent.cpu_seconds() - before
                rates = []
                for agent in agents:
                    done = latencies[agent.name]
                    rate = len(done) / seconds
                    rates.append(rate)
                    p50 = percentile(done, 0.50) * 1000
                    p99 = percentile(done, 0.99) * 1000
                    per_sig = cpu[agent.name] / len(done) * 1e6
                    print(f"{rate:>17.0f} {p50:>7.2f} {p99:>7.2f} {per_sig:>7.0f}", end="")
                print(f"{rates[0] / rates[1]:>7.2f}x", flush=True)
    finally:
        for agent in agents:
            agent.stop()
    print()
    rss_keys = [keys["ed25519"]]
    many = [keys[label] for label in keys] + [
        generate(("ed25519", "ecdsa", "rsa")[i % 3], (None, 256, 2048)[i % 3])
        for i in range(100 - len(keys))
    ]
    print("peak RSS (VmHWM), keys loaded and each used once:")
    for count, loaded in (("1 key", rss_keys), ("100 keys", many)):
        print(f"  {count:<9}", end="")
        for name in ("keytool", "ssh-agent"):
            agent = start_agent(name, folder)
            try:
                with AgentClient(agent.sock) as client:
                    for i, key in enumerate(loaded):
                        client.add(key, f"key {i}")
                    for key in loaded:
                        is_rsa = key.public.key_type == "ssh-rsa"
                        flags = proto.SSH_AGENT_RSA_SHA2_256 if is_rsa else 0
                        client.sign(key.public.to_wire(), DATA, flags)
                    client.identities()
                print(f"  {name} {agent.peak_rss_kib() / 1024:6.1f} MiB", end="", flush=True)
            finally:
                agent.stop()
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (3)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (6)")
    args = parser.parse_args()
    version = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    print(f"{os.cpu_count()} CPUs; {version}; Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as folder:
        bench(Path(folder), args.seconds, args.rounds)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Local port forwarding throughput, keytool against ssh, in one run against one
throwaway local sshd (127.0.0.1, own config and host keys, key login):

    keytool exec -N -L PORT:127.0.0.1:SERVICE root@127.0.0.1
    ssh -N -L PORT:127.0.0.1:SERVICE root@127.0.0.1

For each cipher, --mib MiB go through the tunnel up (to a service that counts and
discards them) and down (from a service that sends them), --runs times; the tools
take turns, run after run. Prints the median MiB/s of each and the ratio keytool/ssh.

    sudo .venv/bin/python scripts/bench_tunnel.py [--mib 256] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.peers import Sshd, free_port, require, run, stop_process  # noqa: E402

CIPHERS = ("aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com")
KEX = "curve25519-sha256"
_CHUNK = 1 << 20


class Services:
    """Two TCP services on 127.0.0.1: ``sink`` reads to EOF and answers with the byte
    count; ``source`` sends ``size`` bytes and closes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sink = socket.create_server(("127.0.0.1", 0))
        self.source = socket.create_server(("127.0.0.1", 0))
        for listener, serve in ((self.sink, self._drain), (self.source, self._send)):
            threading.Thread(target=self._accept, args=(listener, serve), daemon=True).start()

    @staticmethod
    def _accept(listener: socket.socket, serve: Callable[[socket.socket], None]) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn: socket.socket) -> None:
        with conn:
            total = 0
            while data := conn.recv(_CHUNK):
                total += len(data)
            conn.sendall(f"{total}\n".encode())

    def _send(self, conn: socket.socket) -> None:
        block = bytes(_CHUNK)
        with conn:
            # a first byte from the client starts the clock for both sides alike
            if not conn.recv(1):
                return
            left = self.size
            while left > 0:
                conn.sendall(block[: min(left, _CHUNK)])
                left -= _CHUNK

    def port(self, which: str) -> int:
        listener = self.sink if which == "up" else self.source
        return int(listener.getsockname()[1])


def listening(port: int) -> bool:
    wanted = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(f[1] == wanted and f[3] == "0A" for f in (line.split() for line in lines))


def through(port: int, direction: str, size: int) -> float:
    """Seconds to move ``size`` bytes through the tunnel at ``port``."""
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        start = time.perf_counter()
        if direction == "up":
            block = bytes(_CHUNK)
            left = size
            while left > 0:
                sock.sendall(block[: min(left, _CHUNK)])
                left -= _CHUNK
            sock.shutdown(socket.SHUT_WR)
            answer = sock.makefile("rb").readline()
            if int(answer or b"-1") != size:
                raise SystemExit(f"the sink counted {answer!r}, not {size}")
        else:
            sock.sendall(b"g")
            got = 0
            while data := sock.recv(_CHUNK):
                got += len(data)
            if got != size:
                raise SystemExit(f"came down {got} bytes, not {size}")
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the throwaway sshd logs in as root")
    size = args.mib * 1024 * 1024
    services = Services(size)
    with tempfile.TemporaryDirectory(prefix="bench-tunnel-") as tmp:
        folder = Path(tmp)
        key = folder / "id_ed25519"
        run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key]).check_returncode()
        server = Sshd(folder / "sshd", {"LogLevel": "ERROR"})
        server.authorized_keys.write_text(Path(f"{key}.pub").read_text())
        known = folder / "known_hosts"
        known.write_text(server.known_hosts_line())
        env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK",)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        keytool = [str(Path(sys.executable).parent / "keytool"), "exec"]
        common = [
            "-F", "none", "-p", str(server.port), "-i", str(key), "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"KexAlgorithms={KEX}", "-N",
        ]  # fmt: skip
        tools = {"keytool": keytool, "ssh": [require("ssh")]}
        print(f"{args.mib} MiB through a -L tunnel, median of {args.runs} runs (MiB/s)")
        with server:
            for cipher in CIPHERS:
                rates: dict[tuple[str, str], list[float]] = {}
                for number in range(args.runs):
                    order = list(tools) if number % 2 == 0 else list(reversed(tools))
                    for name in order:
                        local, down = free_port(), free_port()
                        proc = subprocess.Popen(
                            [*tools[name], *common, "-o", f"Ciphers={cipher}",
                             f"-L{local}:127.0.0.1:{services.port('up')}",
                             f"-L{down}:127.0.0.1:{services.port('down')}", "root@127.0.0.1"],
                            stdin=subprocess.DEVNULL, env=env,
                        )  # fmt: skip
                        try:
                            deadline = time.monotonic() + 30
                            while not (listening(local) and listening(down)):
                                if proc.poll() is not None or time.monotonic() > deadline:
                                    raise SystemExit(f"{name} did not listen")
                                time.sleep(0.02)
                            for direction, port in (("up", local), ("down", down)):
                                seconds = through(port, direction, size)
                                rates.setdefault((name, direction), []).append(args.mib / seconds)
                        finally:
                            stop_process(proc)
                for direction in ("up", "down"):
                    ours = statistics.median(rates[("keytool", direction)])
                    theirs = statistics.median(rates[("ssh", direction)])
                    print(
                        f"  {cipher:<30} {direction:<4}  keytool {ours:7.1f}   "
                        f"ssh {theirs:7.1f}   ratio {ours / theirs:5.2f}"
                    )


if __name__ == "__main__":
    main()

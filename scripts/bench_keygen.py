#!/usr/bin/env python3
"""Whole-process timings, side by side in one run: keytool gen against ssh-keygen and
the Python floor (a bare python -c that imports cryptography and writes the same key),
keytool --help against python -c pass, and loading an RSA-4096 key (keytool pub against
ssh-keygen -y). Prints medians and ratios.

    .venv/bin/python scripts/bench_keygen.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

FLOOR = """
import os, sys
from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric import ed25519
k = ed25519.Ed25519PrivateKey.generate()
path = sys.argv[1]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, k.private_bytes(s.Encoding.PEM, s.PrivateFormat.OpenSSH, s.NoEncryption()))
os.close(fd)
with open(path + ".pub", "wb") as f:
    f.write(k.public_key().public_bytes(s.Encoding.OpenSSH, s.PublicFormat.OpenSSH) + b"\\n")
"""


# bytecode caching on, as for an installed tool (some shells here switch it off)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str], before: Callable[[], None] | None = None) -> float:
    if before:
        before()
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    python = sys.executable
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        sys.exit("ssh-keygen is not installed")
    work = Path(tempfile.mkdtemp(prefix="bench-keygen-"))
    key = work / "id"

    def clean() -> None:
        for path in (key, Path(f"{key}.pub")):
            path.unlink(missing_ok=True)

    keytool = [python, "-m", "keytool"]
    rsa = work / "rsa4096"
    subprocess.run([keygen, "-q", "-t", "rsa", "-b", "4096", "-N", "", "-f", str(rsa)], check=True)
    cases: dict[str, tuple[list[str], Callable[[], None] | None]] = {
        "keytool gen -t ed25519": (
            [*keytool, "gen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
            clean,
        ),
        "ssh-keygen -t ed25519": ([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], clean),
        "python floor (ed25519)": ([python, "-c", FLOOR, str(key)], clean),
        "keytool --help": ([*keytool, "--help"], None),
        "python -c pass": ([python, "-c", "pass"], None),
        "keytool pub (rsa-4096)": ([*keytool, "pub", "-f", str(rsa)], None),
        "ssh-keygen -y (rsa-4096)": ([keygen, "-y", "-f", str(rsa)], None),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for argv, before in cases.values():  # warm-up: page cache and bytecode
        timed(argv, before)
    for _ in range(args.runs):  # interleaved, so machine noise hits every case alike
        for name, (argv, before) in cases.items():
            samples[name].append(timed(argv, before))
    shutil.rmtree(work)
    median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    print(f"runs per case: {args.runs} (interleaved); medians of whole-process wall time")
    for name, value in median.items():
        print(f"  {name:28s} {value:7.1f} ms")
    print("ratios:")
    gen = median["keytool gen -t ed25519"]
    floor = median["python floor (ed25519)"]
    print(f"  keytool gen / python floor    {gen / floor:.2f}x  (target <= 1.5x)")
    print(f"  keytool gen / ssh-keygen      {gen / median['ssh-keygen -t ed25519']:.2f}x")
    help_ratio = median["keytool --help"] / median["python -c pass"]
    print(f"  keytool --help / python pass  {help_ratio:.2f}x")
    print(
        "  keytool pub / ssh-keygen -y (rsa-4096) "
        f"{median['keytool pub (rsa-4096)'] / median['ssh-keygen -y (rsa-4096)']:.2f}x"
    )


if __name__ == "__main__":
    main()

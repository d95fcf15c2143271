"""Real SSH peers for the tests: OpenSSH's sshd (system 9.x and a private 10.x) and dropbear,
each started on 127.0.0.1 with its own config and host keys in a temp folder.

In CI (CI=true) a missing peer fails the test instead of skipping it.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OPENSSH10 = ROOT / ".peers" / "openssh10"


def require(binary: str) -> str:
    """The full path of ``binary``; skips (fails in CI) when it is missing."""
    found = shutil.which(binary) or next(
        (str(p) for p in (Path("/usr/sbin") / binary, Path("/usr/bin") / binary) if p.exists()),
        None,
    )
    if found is None:
        missing(f"{binary} is not installed")
    return found  # type: ignore[return-value]


def missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"peer missing in CI: {reason}")
    pytest.skip(reason)


def port_claims() -> Path:
    """Where free_port marks the ports it handed out in this run, one empty file each:
    shared by the parallel workers (their run id is the same), so a port is never handed
    out twice and two tests never start servers on one port (a free port is free only
    until somebody binds it). Without workers, the folder is this process's alone, and
    goes when it ends."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    folder = Path(tempfile.gettempdir()) / f"keytool-tests-ports-{run or os.getpid()}"
    if not folder.exists():
        folder.mkdir(exist_ok=True)
        if not run:
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


#: free_port's ports come from here up to just below the kernel's ephemeral range
LOWEST_PORT = 10000
#: its own generator: pytest-randomly seeds ``random`` alike in every worker and test
_PICK = random.SystemRandom()


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range for bind(port 0) and outgoing connections' local ports."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now that no other test of this run was given.

    It is picked below the ephemeral range: a server that binds port 0 or a connection's
    own end is never given it by the kernel, so it stays free until the test uses it
    (which may be a while: an sshd first makes its host keys)."""
    claims = port_claims()
    low, high = ephemeral_ports()
    below, above = range(LOWEST_PORT, low), range(high + 1, 65536)
    # below the range, or above it on a machine where little is left below
    ports = below if len(below) >= 1000 else above if len(above) >= 1000 else range(1024, 65536)
    for _ in range(1000):
        port = _PICK.choice(ports)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use (or in TIME_WAIT)
        try:
            os.close(os.open(claims / str(port), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue  # handed to another test already
        return port
    raise RuntimeError("no free port left that no other test was given")


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s")


def wait_logged(log: Path, text: str, count: int, timeout: float = 20.0) -> str:
    """The text of ``log`` once ``text`` is in it ``count`` times, or when ``timeout``
    is over (then the test's own checks tell what is missing). A server may log a
    connection a moment after the client is gone: sshd's monitor writes its [preauth]
    child's lines, and its session child its last ones, as they come."""
    deadline = time.monotonic() + timeout
    while True:
        logged = log.read_text(errors="replace") if log.exists() else ""
        if logged.count(text) >= count or time.monotonic() > deadline:
            return logged
        time.sleep(0.02)


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a server we started, by its own process handle (never by name)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def run(args: Iterable[str | os.PathLike[str]], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=60,
        **kw,  # type: ignore[call-overload]
    )


def ssh_login(
    port: int,
    key: os.PathLike[str] | str,
    known_hosts: os.PathLike[str] | str,
    *command: str,
    options: Iterable[str] = (),
    ssh: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real ssh logging in as root on 127.0.0.1 with ``key`` alone, no config, no
    agent; ``options`` go before the destination (``-o Name=value``, ``-v``), ``ssh``
    names another ssh binary."""
    return run(
        [
            ssh or require("ssh"),
            "-F",
            "/dev/null",
            "-p",
            str(port),
            "-i",
            key,
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            *options,
            "root@127.0.0.1",
            *command,
        ],
        env={
            k: v
            for k, v in os.environ.items()
            if k not in ("SSH_AUTH_SOCK", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE")
        },
    )


#: Debian's bash reads ~/.bashrc when sshd starts it (at shell level 1). The tests log in
#: as root, whose .bashrc may be slow or noisy (on the CI image it rebuilds a Python
#: version manager's shims at every login: 0.3 s, and two at once print errors into a
#: test's stderr), so test servers start shells one level up, where it is not read.
NO_BASHRC = {"SetEnv": "SHLVL=1"}
#: for a test about what a login's .bashrc does: bash reads it again
READS_BASHRC = {"SetEnv": "SHLVL=0"}


class Sshd:
    """An OpenSSH sshd on 127.0.0.1:port, its files under ``folder``.

    ``options`` are sshd_config lines that override the defaults here (pin a kex,
    a cipher, a host key type...). ``version`` 10 uses the private OpenSSH 10 copy.
    """

    HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")

    def __init__(
        self,
        folder: Path,
        options: Mapping[str, str] | None = None,
        version: int = 9,
        host_key_types: Iterable[str] = HOST_KEY_TYPES,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        if version >= 10:
            sshd = OPENSSH10 / "usr/sbin/sshd"
            if not sshd.exists():
                missing("OpenSSH 10 is not unpacked (scripts/fetch-openssh10)")
            self.sshd = str(sshd)
            self.keygen = str(OPENSSH10 / "usr/bin/ssh-keygen")
        else:
            self.sshd = require("sshd")
            self.keygen = require("ssh-keygen")
        self.version = version
        self.host_keys: dict[str, Path] = {}
        for kind in host_key_types:
            path = folder / f"ssh_host_{kind}_key"
            if not path.exists():
                # each server makes its own keys; RSA at 2048 bits, as 3072 (ssh-keygen's
                # default) costs about a second a server, most of the suite's set-up time
                size = ["-b", "2048"] if kind == "rsa" else []
                made = run([self.keygen, "-q", "-t", kind, *size, "-N", "", "-f", path])
                made.check_returncode()
            self.host_keys[kind] = path
        self.port = free_port()  # once the keys are made: it is free now
        self.authorized_keys = folder / "authorized_keys"
        if not self.authorized_keys.exists():
            self.authorized_keys.touch(mode=0o600)
        self.log = folder / "sshd.log"
        config: dict[str, str] = {
            "ListenAddress": f"127.0.0.1:{self.port}",
            "PidFile": str(folder / "sshd.pid"),
            "AuthorizedKeysFile": str(self.authorized_keys),
            "StrictModes": "no",
            "UsePAM": "no",
            "PermitRootLogin": "yes",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "LogLevel": "DEBUG1",
            "Subsystem": "sftp internal-sftp",
            "MaxStartups": "100:30:200",
            # forwards listen on 127.0.0.1 alone: with ::1 as well, a -R port taken on
            # 127.0.0.1 by another test's server would be reported bound all the same
            "AddressFamily": "inet",
            **NO_BASHRC,
        }
        if version >= 10:
            libexec = OPENSSH10 / "usr/lib/openssh"
            config["SshdSessionPath"] = str(libexec / "sshd-session")
            if (libexec / "sshd-auth").exists():
                config["SshdAuthPath"] = str(libexec / "sshd-auth")
        config.update(options or {})
        lines = [f"HostKey {p}" for p in self.host_keys.values()]
        for key, value in config.items():
            lines.append(f"{key} {value}")
        self.config = folder / "sshd_config"
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sshd:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        # a server started again appends to its log: only what this start logs counts
        logged = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [self.sshd, "-D", "-E", str(self.log), "-f", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_listening(logged)
        except BaseException:
            self.stop()  # a server that did not come up is not left running
            raise
        return self

    def _wait_listening(self, logged: int, timeout: float = 10.0) -> None:
        """Until sshd says it listens on every port of its config (its log after byte
        ``logged``, at INFO and above): a port that answers may be somebody else's, and
        a probe connection would be one more "Connection from" in the log. Below INFO,
        the port is probed."""
        assert self.proc is not None
        config = self.config.read_text()
        ports = re.findall(r"^ListenAddress 127\.0\.0\.1:(\d+)$", config, re.MULTILINE)
        if not ports or re.search(r"^LogLevel (QUIET|FATAL|ERROR)$", config, re.MULTILINE):
            wait_for_port(self.port, self.proc, timeout)
            return
        wanted = [f"Server listening on 127.0.0.1 port {port}." for port in ports]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = (
                self.log.read_bytes()[logged:].decode(errors="replace") if self.log.exists() else ""
            )
            if all(line in text for line in wanted):
                return
            if self.proc.poll() is not None:
                said = text.strip().splitlines()[-1:] or ["(nothing logged)"]
                raise RuntimeError(f"sshd exited with {self.proc.returncode}: {said[0]}")
            time.sleep(0.01)
        raise RuntimeError(f"sshd did not listen on {', '.join(ports)} within {timeout}s")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def known_hosts_line(self, kind: str = "ed25519") -> str:
        pub = Path(f"{self.host_keys[kind]}.pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n"

    def __enter__(self) -> Sshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Dropbear:
    """A dropbear server on 127.0.0.1:port, its host keys under ``folder``."""

    def __init__(self, folder: Path, extra_args: Iterable[str] = ()) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.dropbear = require("dropbear")
        keygen = require("dropbearkey")
        self.host_keys: dict[str, Path] = {}
        for kind in ("ed25519", "ecdsa", "rsa"):
            path = folder / f"dropbear_{kind}_host_key"
            if not path.exists():
                run([keygen, "-t", kind, "-f", path]).check_returncode()
            self.host_keys[kind] = path
        self.port = free_port()  # once the keys are made: it is free now
        self.extra_args = list(extra_args)
        self.log = folder / "dropbear.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Dropbear:
        args = [self.dropbear, "-F", "-E", "-p", f"127.0.0.1:{self.port}"]
        for path in self.host_keys.values():
            args += ["-r", str(path)]
        self._log_handle = self.log.open("wb")
        self.proc = subprocess.Popen(
            [*args, *self.extra_args],
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
        if hasattr(self, "_log_handle"):
            self._log_handle.close()

    def known_hosts_lines(self) -> str:
        """known_hosts lines for every host key, as dropbearkey -y shows them."""
        lines = []
        for path in self.host_keys.values():
            for line in run([require("dropbearkey"), "-y", "-f", path]).stdout.splitlines():
                if line.startswith(("ssh-", "ecdsa-")):
                    kind, blob = line.split()[:2]
                    lines.append(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        return "".join(lines)

    def __enter__(self) -> Dropbear:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def user_db(
    args: Iterable[str | os.PathLike[str]], **kw: object
) -> subprocess.CompletedProcess[str]:
    """``run`` for useradd, userdel and chpasswd, one at a time across test processes:
    each locks /etc/passwd and gives up at once when another one holds it."""
    with open(Path(tempfile.gettempdir()) / "keytool-tests-user-db.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return run(args, **kw)

"""X11 forwarding (-X, -Y, -x, ForwardX11*, XAuthLocation) in ``keytool exec``, side by
side with ssh: a real X server here (Xvfb, which takes only its own cookie), sshd with
X11Forwarding for a throwaway account, and a real X client at the server (xdpyinfo).
What the X client got, and ssh's words on stderr, are the reference; the real cookie
must never reach the server."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import (
    KEYTOOL,
    Account,
    base_env,
    both_clients,
    install_key,
    keygen,
    ssh_words,
    throwaway_account,
)
from tests.interop.transport_helpers import alive
from tests.peers import Sshd, require, stop_process

#: what the remote side shows of the X server it reached (stable lines of xdpyinfo)
SHOW = 'echo "[$DISPLAY]"; xdpyinfo | grep -E "^(name of display|vendor string|version number):"'


class XServer:
    """Xvfb on a display of its choosing, taking only the cookie in ``xauthority``."""

    def __init__(self, folder: Path) -> None:
        self.xauthority = folder / "Xauthority"
        self.cookie = os.urandom(16).hex()
        read, write = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [require("Xvfb"), "-displayfd", str(write), "-nolisten", "tcp",
                 "-auth", str(self.xauthority)],
                pass_fds=(write,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            os.close(write)
            with os.fdopen(read, "rb") as told:
                number = told.readline().strip()
        except BaseException:
            os.close(read)
            raise
        try:
            if not number:
                raise RuntimeError("Xvfb did not start")
            self.display = f":{int(number)}"
            self.xauthority.touch(mode=0o600)
            self.add_cookie(self.xauthority, self.cookie)
        except BaseException:
            stop_process(self.proc)
            raise

    def add_cookie(self, path: Path, cookie: str) -> None:
        path.touch(mode=0o600)
        subprocess.run(
            [require("xauth"), "-q", "-f", str(path), "add", self.display, "MIT-MAGIC-COOKIE-1",
             cookie],
            check=True, timeout=30,
        )  # fmt: skip

    def close(self) -> None:
        stop_process(self.proc)


class Setup:
    def __init__(self, folder: Path, xserver: XServer, server: Sshd, account: Account) -> None:
        self.folder = folder
        self.xserver = xserver
        self.server = server
        self.account = account
        self.key = folder / "id"
        self.known = folder / "known_hosts"

    def flags(self, *extra: str) -> list[str]:
        return [
            "-F", "none", "-T", "-p", str(self.server.port), "-i", str(self.key),
            "-o", f"UserKnownHostsFile={self.known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", *extra,
        ]  # fmt: skip

    def env(self, **extra: str) -> dict[str, str]:
        values = {
            "HOME": str(self.folder / "home"),
            "DISPLAY": self.xserver.display,
            "XAUTHORITY": str(self.xserver.xauthority),
        }
        values.update(extra)
        env = base_env(**{k: v for k, v in values.items() if v != "unset"})
        for name, value in values.items():
            if value == "unset":  # not even as this run's own environment has it
                env.pop(name, None)
        return env

    def run(
        self, flags: list[str], command: str = SHOW, **env: str
    ) -> dict[str, subprocess.CompletedProcess[bytes]]:
        destination = f"{self.account.name}@127.0.0.1"
        return both_clients(*self.flags(*flags), destination, command, env=self.env(**env))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("x11")
    (folder / "home").mkdir()
    xserver = XServer(folder)
    try:
        with throwaway_account() as account:
            key = keygen(folder / "id", "ed25519", "x11")
            install_key(account, Path(f"{key}.pub"))
            # sshd's xauth says so when the file is new: made now, the words are the same
            remote = account.home / ".Xauthority"
            remote.touch(mode=0o600)
            os.chown(remote, account.uid, account.gid)
            server = Sshd(
                folder / "sshd",
                {"X11Forwarding": "yes", "AuthorizedKeysFile": ".ssh/authorized_keys"},
            )
            (folder / "known_hosts").write_text(server.known_hosts_line())
            with server:
                yield Setup(folder, xserver, server, account)
    finally:
        xserver.close()


#: the display sshd gives a session: the first free from X11DisplayOffset (10) on, so
#: one held a moment longer by an earlier session moves the next one along
_SERVER_DISPLAY = re.compile(rb"localhost:\d+\.0")


def _displays_as_one(text: bytes) -> bytes:
    return _SERVER_DISPLAY.sub(b"localhost:N.0", text)


def _gone(pid: int, wait: float = 10) -> bool:
    """The process ended within ``wait`` seconds (a zombie, which nobody may reap, has)."""
    deadline = time.monotonic() + wait
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _names(pid: int, path: Path) -> bool:
    """Process ``pid``'s command line names ``path``: it is still the master started
    there, not a process that took its pid since."""
    try:
        return str(path).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def same(runs: dict[str, subprocess.CompletedProcess[bytes]]) -> bytes:
    """keytool did what ssh did: exit status, the remote side's output, ssh's words
    (whichever display number sshd chose for each)."""
    ssh, mine = runs["ssh"], runs["keytool"]
    assert mine.returncode == ssh.returncode, (mine.stderr, ssh.stderr)
    assert _displays_as_one(mine.stdout) == _displays_as_one(ssh.stdout), (mine.stderr, ssh.stderr)
    assert ssh_words(_displays_as_one(mine.stderr)) == ssh_words(_displays_as_one(ssh.stderr))
    return mine.stdout


def test_trusted_forwarding_reaches_the_display(setup: Setup) -> None:
    out = same(setup.run(["-Y"]))
    assert out.startswith(b"[localhost:1") and b"vendor string:" in out  # the X server
    # the server holds a cookie for the X client, as long as the real one, never it
    for tool, run in setup.run(["-Y"], "xauth list $DISPLAY").items():
        assert run.returncode == 0, (tool, run.stderr)
        [(_, protocol, cookie)] = [line.split() for line in run.stdout.decode().splitlines()]
        assert protocol == "MIT-MAGIC-COOKIE-1" and len(cookie) == len(setup.xserver.cookie)
        assert cookie != setup.xserver.cookie, tool


def test_forwarding_in_ssh_config_and_x_turning_it_off(setup: Setup) -> None:
    config = setup.folder / "config_x11"
    config.write_text("Host *\n  ForwardX11 yes\n  ForwardX11Trusted yes\n")
    flags = ["-F", str(config)]
    out = same(setup.run(flags))
    assert b"vendor string:" in out
    out = same(setup.run([*flags, "-x"], 'echo "[$DISPLAY]"'))
    assert out == b"[]\n"


@pytest.mark.parametrize("flags", [["-x", "-Y"], ["-Y", "-x"], ["-x", "-X"], ["-X", "-x"]])
def test_the_last_of_x_and_big_x_counts_as_with_ssh(setup: Setup, flags: list[str]) -> None:
    out = same(setup.run(flags, 'echo "[$DISPLAY]"'))
    assert (out == b"[]\n") == (flags[-1] == "-x")


def test_x_client_without_the_fake_cookie_is_rejected(setup: Setup) -> None:
    # the X client at the server shows no cookie: ours is never handed to it
    runs = setup.run(["-Y"], "XAUTHORITY=/dev/null xdpyinfo >/dev/null")
    same(runs)
    assert runs["keytool"].returncode != 0
    assert "X11 connection rejected because of wrong authentication." in ssh_words(
        runs["keytool"].stderr
    )


def test_a_wrong_local_cookie_gets_no_further_than_the_x_server(setup: Setup) -> None:
    wrong = setup.folder / "Xauthority.wrong"
    setup.xserver.add_cookie(wrong, os.urandom(16).hex())
    runs = setup.run(["-Y"], SHOW, XAUTHORITY=str(wrong))
    same(runs)
    assert b"vendor string:" not in runs["keytool"].stdout


def test_untrusted_forwarding_runs_xauth_as_ssh(setup: Setup) -> None:
    """-X (ForwardX11Trusted no): the X server makes an untrusted cookie (xauth
    generate, valid ForwardX11Timeout plus a minute), which is what reaches it. This
    Xvfb has no SECURITY policy file, so it refuses untrusted clients: the X client
    fails the same way through both."""
    log = setup.folder / "xauth.log"
    wrapper = setup.folder / "xauth-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {require("xauth")} "$@"\n')
    wrapper.chmod(0o755)
    flags = ["-X", "-o", "ForwardX11Trusted=no", "-o", f"XAuthLocation={wrapper}"]
    commands: dict[str, list[str]] = {}
    runs = {}
    for timeout in ("0", "5m"):
        log.write_text("")
        runs[timeout] = setup.run([*flags, "-o", f"ForwardX11Timeout={timeout}"], SHOW)
        same(runs[timeout])
        commands[timeout] = log.read_text().splitlines()
    display = setup.xserver.display
    for timeout, extra in (("0", ""), ("5m", " timeout 360")):
        lines = commands[timeout]
        assert len(lines) == 4  # generate, then list, by each client
        for generate, listing in (lines[:2], lines[2:]):
            temp = generate.split()[1]
            assert generate == f"-f {temp} generate {display} MIT-MAGIC-COOKIE-1 untrusted{extra}"
            assert listing == f"-f {temp} list {display}"
            assert not Path(temp).exists()  # removed afterwards
    assert b"Invalid MIT-MAGIC-COOKIE-1 key" in runs["0"]["keytool"].stderr


def test_untrusted_forwarding_ends_with_its_timeout(setup: Setup) -> None:
    # an X connection after ForwardX11Timeout is refused before it reaches the display
    late = "sleep 3; xdpyinfo >/dev/null"
    flags = ["-X", "-o", "ForwardX11Trusted=no", "-o", "ForwardX11Timeout=1"]
    runs = setup.run(flags, late)
    same(runs)
    assert runs["keytool"].returncode != 0
    assert b"Invalid MIT-MAGIC-COOKIE-1 key" not in runs["keytool"].stderr  # not reached
    assert b"unable to open display" in runs["keytool"].stderr


@pytest.mark.parametrize(
    ("flags", "env", "words"),
    [
        (["-Y"], {"DISPLAY": "unset"}, []),  # nothing asked, nothing said
        (["-Y"], {"DISPLAY": ":0;true"}, ['DISPLAY ":0;true" invalid; disabling X11 forwarding']),
        (
            ["-Y", "-o", "XAuthLocation=/nonexistent/xauth"],
            {},
            ["Warning: No xauth data; using fake authentication data for X11 forwarding."],
        ),
        (
            ["-X", "-o", "ForwardX11Trusted=no", "-o", "XAuthLocation=/nonexistent/xauth"],
            {},
            ["Warning: untrusted X11 forwarding setup failed: xauth key data not generated"],
        ),
    ],
)
def test_when_forwarding_cannot_be_had_it_is_said_as_ssh_says_it(
    setup: Setup, flags: list[str], env: dict[str, str], words: list[str]
) -> None:
    runs = setup.run(flags, 'echo "[$DISPLAY]"', **env)
    same(runs)
    assert ssh_words(runs["keytool"].stderr) == words
    # the fake-cookie case still asks for forwarding; the others do not
    assert (runs["keytool"].stdout != b"[]\n") == ("XAuthLocation=/nonexistent/xauth" in flags
                                                   and "-Y" in flags)  # fmt: skip


def test_a_server_without_x11_forwarding_refuses_and_the_command_runs(
    setup: Setup, tmp_path: Path
) -> None:
    options = {"X11Forwarding": "no", "AuthorizedKeysFile": ".ssh/authorized_keys"}
    server = Sshd(tmp_path / "sshd", options)
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    with server:
        flags = ["-F", "none", "-T", "-Y", "-p", str(server.port), "-i", str(setup.key),
                 "-o", f"UserKnownHostsFile={known}",
                 "-o", "GlobalKnownHostsFile=/dev/null"]  # fmt: skip
        runs = both_clients(
            *flags, f"{setup.account.name}@127.0.0.1", 'echo "[$DISPLAY]"', env=setup.env()
        )
    same(runs)
    assert runs["keytool"].stdout == b"[]\n"
    assert ssh_words(runs["keytool"].stderr) == ["X11 forwarding request failed on channel 0"]


def test_a_changed_host_key_turns_x11_off_for_a_master_too(setup: Setup, tmp_path: Path) -> None:
    """The host key changed and StrictHostKeyChecking is off: as ssh, X11 is off (in
    ssh's words), for a session of its own and for a connection-sharing master's own
    session alike; sshd never gets an x11-req."""
    other = keygen(tmp_path / "other", "ed25519", "other")
    wrong = tmp_path / "known_wrong"
    kind, blob = Path(f"{other}.pub").read_text().split()[:2]
    wrong.write_text(f"[127.0.0.1]:{setup.server.port} {kind} {blob}\n")
    sockets = Path(tempfile.mkdtemp(prefix="x1", dir="/tmp"))  # a short socket path
    try:
        for extra in ([], ["-M", "-S", str(sockets / "m"), "-o", "ControlPersist=no"]):
            flags = [
                "-F", "none", "-T", "-Y", "-p", str(setup.server.port), "-i", str(setup.key),
                "-o", f"UserKnownHostsFile={wrong}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=no", *extra,
            ]  # fmt: skip
            before = setup.server.log.stat().st_size
            runs = both_clients(
                *flags, f"{setup.account.name}@127.0.0.1", 'echo "[$DISPLAY]"', env=setup.env()
            )
            same(runs)
            assert runs["keytool"].returncode == 0, runs["keytool"].stderr
            assert runs["keytool"].stdout == b"[]\n", extra
            words = ssh_words(runs["keytool"].stderr)
            assert "X11 forwarding is disabled to avoid man-in-the-middle attacks." in words
            log = setup.server.log.read_bytes()[before:].decode(errors="replace")
            assert log.count("Accepted publickey") == 2, log  # both logged in
            assert "x11-req" not in log
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def test_x11_connections_while_the_session_runs(setup: Setup) -> None:
    # several X clients at once, then one more, through one session; one of those at
    # once may be dropped between sshd and the client (seen through ssh itself): tried
    # again, it must get through
    command = (
        "for i in 1 2 3; do (xdpyinfo >/dev/null 2>&1 || xdpyinfo >/dev/null) & done; "
        "wait; xdpyinfo | grep -c screen"
    )
    started = time.monotonic()
    out = same(setup.run(["-Y"], command))
    assert int(out) >= 1
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("master", ["ssh", "keytool"])
def test_x11_through_a_shared_connection(setup: Setup, master: str) -> None:
    """A session of a connection-sharing client asks for X11: the master (ssh's or
    keytool's, started with -Y) forwards it to its own display, for ssh and keytool
    as clients alike."""
    sockets = Path(tempfile.mkdtemp(prefix="x1", dir="/tmp"))  # a short socket path
    path = sockets / "m"
    master_pid = 0
    programs = {"ssh": [require("ssh")], "keytool": [*KEYTOOL, "exec"]}
    start = [*programs[master], *setup.flags("-Y", "-M", "-S", str(path), "-f", "-N")]
    destination = f"{setup.account.name}@127.0.0.1"
    try:
        done = subprocess.run(
            [*start, destination], env=setup.env(), capture_output=True, timeout=60,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        check = subprocess.run(
            [require("ssh"), "-S", str(path), "-O", "check", destination],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        running = re.search(rb"Master running \(pid=(\d+)\)", check.stderr)
        assert running is not None, check.stderr
        master_pid = int(running.group(1))
        shown = {}
        for client, program in programs.items():
            run = subprocess.run(
                [*program, *setup.flags("-Y", "-S", str(path)), destination, SHOW],
                env=setup.env(DISPLAY="unset"), capture_output=True, timeout=60,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            assert run.returncode == 0, (client, run.stderr)
            shown[client] = run.stdout
        assert _displays_as_one(shown["keytool"]) == _displays_as_one(shown["ssh"])
        assert b"vendor string:" in shown["keytool"]
    finally:
        subprocess.run(
            [require("ssh"), "-S", str(path), "-O", "exit", destination],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        # it would not go: ours, stopped
        if master_pid > 1 and not _gone(master_pid) and _names(master_pid, path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(master_pid, signal.SIGKILL)
        shutil.rmtree(sockets, ignore_errors=True)

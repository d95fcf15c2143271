"""Which hosts ``keytool keyscan`` scans and how it reports them, as ``ssh-keyscan``
does on the same sshd: comma lists of addresses and names, ``-f`` files of
``addrlist namelist`` lines (and ``-f -``), -t in every spelling ssh-keyscan takes,
ssh-keyscan's refusals of a bad -p or -T, and a host that never answers given up
after one line."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import Sshd, require


def scan(tool: str, *args: str, stdin: str = "") -> tuple[int, list[str], str]:
    command = [require("ssh-keyscan")] if tool == "ssh-keyscan" else [*KEYTOOL, "keyscan"]
    done = subprocess.run(
        [*command, *args], input=stdin, capture_output=True, text=True, env=base_env(), timeout=120
    )
    assert "Traceback" not in done.stderr
    return done.returncode, sorted(done.stdout.splitlines()), done.stderr


def same(*args: str, stdin: str = "") -> list[str]:
    ours, theirs = scan("keytool", *args, stdin=stdin), scan("ssh-keyscan", *args, stdin=stdin)
    assert (ours[0], ours[1]) == (theirs[0], theirs[1]), (ours, theirs)
    return ours[1]


def test_comma_lists_of_addresses_and_names(sshd: Sshd) -> None:
    port = str(sshd.port)
    lines = same("-p", port, "-t", "ed25519", "127.0.0.1,localhost")
    assert [line.split()[0] for line in lines] == [f"[127.0.0.1]:{port}", f"[localhost]:{port}"]
    # the first address is the one scanned: one that refuses ends the host
    lines = same("-p", port, "-t", "ed25519", "127.0.0.2,127.0.0.1")
    assert lines == []


def test_hosts_file_lines_and_stdin(sshd: Sshd, tmp_path: Path) -> None:
    port = str(sshd.port)
    text = "# the servers\n127.0.0.1,localhost myname,other   # a comment\n\n   localhost\t\n"
    hosts = tmp_path / "hosts"
    hosts.write_text(text)
    lines = same("-p", port, "-t", "ed25519", "-f", str(hosts))
    names = sorted(line.split()[0] for line in lines)
    assert names == sorted(f"[{n}]:{port}" for n in ("myname", "other", "localhost"))
    assert same("-p", port, "-t", "ed25519", "-f", "-", stdin=text) == lines


@pytest.mark.parametrize(
    "types", ["ssh-ed25519", "RSA", "rsa-sha2-512,ecdsa-sha2-nistp256", "ED25519,ssh-rsa"]
)
def test_type_names_as_ssh_keyscan_takes_them(sshd: Sshd, types: str) -> None:
    assert same("-p", str(sshd.port), "-t", types, "127.0.0.1")


@pytest.mark.parametrize(
    ("flag", "value", "word"),
    [
        ("-p", "0", "port"),
        ("-p", "70000", "port"),
        ("-p", "-1", "port"),
        ("-T", "0", "timeout"),
        ("-T", "-1", "timeout"),
        ("-T", "99999999999", "timeout"),
    ],
)
def test_bad_port_or_timeout_scans_nothing(flag: str, value: str, word: str) -> None:
    ours = scan("keytool", flag, value, "127.0.0.1")
    theirs = scan("ssh-keyscan", flag, value, "127.0.0.1")
    assert ours[0] == theirs[0] == 1 and ours[1] == theirs[1] == []
    assert f"Bad {word} '{value}'" in theirs[2]
    assert ours[2] == f"keytool: Bad {word} '{value}'\n"


@contextmanager
def silent_at(address: str, port: int = 0) -> Iterator[int]:
    """A port that accepts connections (hundreds waiting at once) and never says a word."""
    listener = socket.create_server((address, port), backlog=1024)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def silent() -> Iterator[int]:
    with silent_at("127.0.0.1") as port:
        yield port


def test_a_silent_host_is_one_line_and_the_others_are_scanned(
    sshd: Sshd, silent: int, tmp_path: Path
) -> None:
    ours = scan("keytool", "-T", "1", "-p", str(silent), "127.0.0.1")
    theirs = scan("ssh-keyscan", "-T", "1", "-p", str(silent), "127.0.0.1")
    assert (ours[0], ours[1]) == (theirs[0], theirs[1]) == (1, [])
    assert ours[2].count("\n") == 1 and "timed out" in ours[2]
    # silent hosts among good ones, in one run: 127.0.0.2 answers nothing on sshd's port
    with silent_at("127.0.0.2", sshd.port):
        hosts = tmp_path / "hosts"
        hosts.write_text("127.0.0.2\n127.0.0.1\n127.0.0.2 other\n")
        # -T covers the good host's connection and key exchange too: not 1 s under load
        args = ["-T", "5", "-t", "ed25519", "-p", str(sshd.port), "-f", str(hosts)]
        ours, theirs = scan("keytool", *args), scan("ssh-keyscan", *args)
    assert (ours[0], ours[1]) == (theirs[0], theirs[1]) and ours[0] == 0
    assert [line.split()[0] for line in ours[1]] == [f"[127.0.0.1]:{sshd.port}"]
    timed_out = [line for line in ours[2].splitlines() if "timed out" in line]
    assert len(timed_out) == 2


def test_unknown_key_type_as_ssh_keyscan() -> None:
    """ssh-keyscan's fatal() for a type it does not know: 255, nothing scanned."""
    ours = scan("keytool", "-t", "bogus", "127.0.0.1")
    theirs = scan("ssh-keyscan", "-t", "bogus", "127.0.0.1")
    assert ours[0] == theirs[0] == 255 and ours[1] == theirs[1] == []
    assert 'Unknown key type "bogus"' in theirs[2] and 'Unknown key type "bogus"' in ours[2]

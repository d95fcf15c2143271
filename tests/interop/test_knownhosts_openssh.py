"""known_hosts against OpenSSH itself: matching as ``ssh-keygen -F`` finds lines, hashing
as ``ssh-keygen -H`` writes it, and host key decisions and messages as ``ssh`` makes them
against a real sshd."""

from __future__ import annotations

import fcntl
import os
import re
import select
import subprocess
import termios
from pathlib import Path

import pytest

from keytool import hostcheck, knownhosts
from keytool.errors import HostKeyError
from keytool.keys import generate
from keytool.keys.base import PublicKey
from keytool.keys.pubfile import format_public_line, parse_public_line
from tests.peers import Sshd, require, run

KEY_A = generate("ed25519").public
KEY_B = generate("ecdsa").public

PLAIN = [
    ("foo.example,bar", KEY_A, ""),
    ("*.example,!bad.example", KEY_B, ""),
    ("[foo.example]:2222", KEY_A, ""),
    ("Mixed.Case", KEY_A, ""),
    ("[w?ld]:*", KEY_B, ""),
    ("!neg", KEY_A, ""),
    ("10.0.0.*,!10.0.0.7", KEY_A, ""),
    ("foo.example", KEY_B, "@revoked"),
    ("*.example", KEY_A, "@cert-authority"),
]
HASHED_NAMES = ["hashed.example", "[hashed.example]:2200", "foo.example", "10.0.0.9"]
QUERIES = [
    "foo.example",
    "bar",
    "bad.example",
    "x.example",
    "example",
    "[foo.example]:2222",
    "[foo.example]:22",
    "mixed.case",
    "[wild]:22",
    "[wild]:2",
    "neg",
    "10.0.0.5",
    "10.0.0.7",
    "10.0.0.9",
    "hashed.example",
    "[hashed.example]:2200",
    "[hashed.example]:2201",
    "unknown",
]


def keygen_found_lines(path: Path, name: str) -> list[int]:
    result = run([require("ssh-keygen"), "-F", name, "-f", path])
    return [int(n) for n in re.findall(r"^# Host .* found: line (\d+)", result.stdout, re.M)]


def ours(path: Path, name: str) -> list[int]:
    """Our lines for ``name`` as ssh-keygen -F takes it: the lookup name as given."""
    entries, _ = knownhosts.parse(path.read_bytes(), str(path))
    if name.startswith("[") and not name.endswith("]:22"):
        # prove lookup_name writes the bracketed form ssh-keygen was given
        host, port = name[1:].split("]:")
        assert knownhosts.lookup_name(host, int(port)) == name
        found = knownhosts.matching_entries(entries, host, int(port))
    else:
        found = knownhosts.matching_entries(entries, name, 22)
    return [entry.line_number for entry in found]


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    """Plain, marked, wildcard and negated lines, then lines hashed by ssh-keygen -H."""
    hashed = tmp_path / "to_hash"
    hashed.write_text("".join(f"{name} {format_public_line(KEY_A)}\n" for name in HASHED_NAMES))
    run([require("ssh-keygen"), "-H", "-f", hashed]).check_returncode()
    hashed_text = hashed.read_text()
    assert hashed_text.count("|1|") == len(HASHED_NAMES)
    path = tmp_path / "known_hosts"
    body = "".join(
        f"{marker + ' ' if marker else ''}{hosts} {format_public_line(key)}\n"
        for hosts, key, marker in PLAIN
    )
    path.write_text("# a comment\n" + body + "this line is garbage\n" + hashed_text)
    return path


@pytest.mark.parametrize("name", QUERIES)
def test_matching_agrees_with_ssh_keygen_F(known_hosts: Path, name: str) -> None:
    assert ours(known_hosts, name) == keygen_found_lines(known_hosts, name)


def test_the_queries_exercise_every_kind_of_line(known_hosts: Path) -> None:
    # guard against a vacuous comparison: ssh-keygen finds plain, hashed, marked lines
    found = {n for name in QUERIES for n in keygen_found_lines(known_hosts, name)}
    assert found == (set(range(2, 2 + len(PLAIN))) - {7}) | set(range(12, 12 + len(HASHED_NAMES)))


def test_our_hashed_names_are_found_by_ssh_keygen(tmp_path: Path) -> None:
    path = tmp_path / "kh"
    path.write_text(
        knownhosts.format_entry("Host.Example", 22, KEY_A, hashed=True)
        + "\n"
        + knownhosts.format_entry("host.example", 2222, KEY_B, hashed=True)
        + "\n"
    )
    assert keygen_found_lines(path, "host.example") == [1]
    assert keygen_found_lines(path, "[host.example]:2222") == [2]
    assert keygen_found_lines(path, "[host.example]:2223") == []


# Decisions against a real sshd, compared with what ssh does with the same file.


def server_key(sshd: Sshd, kind: str) -> PublicKey:
    text = Path(f"{sshd.host_keys[kind]}.pub").read_text()
    return parse_public_line(text)[0]


def ssh_stderr(sshd: Sshd, known: Path, *options: str) -> str:
    result = run(
        [
            require("ssh"),
            "-F",
            "/dev/null",
            "-p",
            str(sshd.port),
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "HostKeyAlgorithms=ssh-ed25519",
            *[arg for option in options for arg in ("-o", option)],
            "root@127.0.0.1",
            "true",
        ],
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 255
    return result.stderr


def our_refusal(sshd: Sshd, known: Path, strict: str) -> list[str]:
    with pytest.raises(HostKeyError) as caught:
        hostcheck.verify_host_key(
            "127.0.0.1",
            sshd.port,
            server_key(sshd, "ed25519"),
            user_files=[known],
            global_files=[],
            strict=strict,
        )
    return str(caught.value).splitlines()


def block(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    start = next(i for i, text in enumerate(lines) if text.startswith("@@@"))
    end = lines.index(hostcheck.FAILED)
    return lines[start : end + 1]


@pytest.mark.parametrize("other", [KEY_A, "rsa"], ids=["same-type", "other-type"])
def test_changed_key_block_is_ssh_s(tmp_path: Path, sshd: Sshd, other: PublicKey | str) -> None:
    known_key = server_key(sshd, other) if isinstance(other, str) else other
    known = tmp_path / "known_hosts"
    known.write_text(
        "# first\n" + knownhosts.format_entry("127.0.0.1", sshd.port, known_key) + "\n"
    )
    expected = block(ssh_stderr(sshd, known))
    assert any(text.startswith("Offending") and text.endswith(":2") for text in expected)
    assert our_refusal(sshd, known, "ask") == expected


def test_revoked_key_block_is_ssh_s(tmp_path: Path, sshd: Sshd) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"@revoked * {format_public_line(server_key(sshd, 'ed25519'))}\n")
    expected = block(ssh_stderr(sshd, known))
    assert "WARNING: REVOKED HOST KEY DETECTED!" in expected[1]
    mine = our_refusal(sshd, known, "no")
    assert mine[:6] == expected[:6]
    assert mine[-1] == expected[-1]


def test_unknown_with_strict_yes_is_refused_as_ssh_does(tmp_path: Path, sshd: Sshd) -> None:
    known = tmp_path / "known_hosts"
    stderr = ssh_stderr(sshd, known, "StrictHostKeyChecking=yes")
    assert not known.exists()
    expected = [text for text in stderr.splitlines() if text.startswith(("No ", "Host key"))]
    assert our_refusal(sshd, known, "yes") == expected


@pytest.mark.parametrize("hashed", [False, True], ids=["plain", "hashed"])
def test_accept_new_appends_what_ssh_appends(tmp_path: Path, sshd: Sshd, hashed: bool) -> None:
    # (ssh 9.2 glues its entry onto a last line without newline; we add one: see unit tests)
    start = b"# kept as is\r\n[other]:22 " + format_public_line(KEY_A).encode() + b" x\n"
    by_ssh = tmp_path / "by_ssh"
    by_us = tmp_path / "by_us"
    by_ssh.write_bytes(start)
    by_us.write_bytes(start)
    hash_option = f"HashKnownHosts={'yes' if hashed else 'no'}"
    stderr = ssh_stderr(sshd, by_ssh, "StrictHostKeyChecking=accept-new", hash_option)
    decision = hostcheck.verify_host_key(
        "127.0.0.1",
        sshd.port,
        server_key(sshd, "ed25519"),
        user_files=[by_us],
        global_files=[],
        strict="accept-new",
        hash_known_hosts=hashed,
    )
    assert decision.info[0] in stderr.splitlines()
    name = f"[127.0.0.1]:{sshd.port}"
    if not hashed:
        assert by_us.read_bytes() == by_ssh.read_bytes()
    else:
        theirs, mine = by_ssh.read_bytes(), by_us.read_bytes()
        assert mine.startswith(start + b"|1|")
        # same length and layout, different salt; both found by ssh-keygen for the host
        assert len(mine) == len(theirs) and mine.split(b"|")[0] == theirs.split(b"|")[0]
        assert keygen_found_lines(by_us, name) == keygen_found_lines(by_ssh, name) == [3]
    # ssh now accepts the file we wrote
    assert "Host key verification failed" not in ssh_stderr(
        sshd, by_us, "StrictHostKeyChecking=yes"
    )


def ssh_question_on_a_terminal(sshd: Sshd, known: Path, *options: str) -> list[str]:
    """Run ssh on a pseudo-terminal, read its host key question, answer no."""
    main, child = os.openpty()

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [
            require("ssh"), "-F", "/dev/null", "-p", str(sshd.port),
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "HostKeyAlgorithms=ssh-ed25519", *options, "root@127.0.0.1", "true",
        ],
        stdin=child, stdout=child, stderr=child,
        start_new_session=True, preexec_fn=controlling_terminal,
    )  # fmt: skip
    os.close(child)
    seen = b""
    try:
        while not seen.rstrip().endswith(b"(yes/no/[fingerprint])?"):
            ready, _, _ = select.select([main], [], [], 20)
            assert ready, f"ssh asked nothing: {seen!r}"
            chunk = os.read(main, 4096)
            assert chunk, f"ssh ended: {seen!r}"
            seen += chunk
        os.write(main, b"no\n")
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    # a terminal gets \r\n and a bare \r before the question: compare the text lines
    return [line.rstrip(" ") for line in seen.decode().splitlines() if line.strip()]


@pytest.mark.parametrize("hash_name", ["sha256", "md5"])
@pytest.mark.parametrize("visual", [False, True], ids=["", "VisualHostKey"])
@pytest.mark.parametrize("also_known", [False, True], ids=["new", "known-elsewhere"])
def test_question_on_a_terminal_is_ssh_s(
    tmp_path: Path, sshd: Sshd, also_known: bool, visual: bool, hash_name: str
) -> None:
    known = tmp_path / "known_hosts"
    key = server_key(sshd, "ed25519")
    known.write_text(f"other.example {format_public_line(key)}\n" if also_known else "")
    options = ("-o", f"FingerprintHash={hash_name}")
    options += ("-o", "VisualHostKey=yes") if visual else ()
    expected = ssh_question_on_a_terminal(sshd, known, *options)
    assert any(line.startswith("+--[ED25519 256]") for line in expected) == visual
    assert any(f"fingerprint is {hash_name.upper()}:" in line for line in expected)
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "no"

    with pytest.raises(HostKeyError, match="Host key verification failed"):
        hostcheck.verify_host_key(
            "127.0.0.1",
            sshd.port,
            key,
            user_files=[known],
            global_files=[],
            prompt=prompt,
            address="127.0.0.1",
            visual=visual,
            hash_name=hash_name,
        )
    assert asked[0].rstrip(" ").splitlines() == expected
    assert known.read_text().count("\n") == (1 if also_known else 0)

"""``keytool check`` on files of any size, as sshd reads them: an authorized_keys of
50,000 keys (over 4 MiB) gets the same lines named as a small one, and sshd, which
reads such a file to its end, agrees; what check cannot look at (too big to be a key,
unreadable, not a file, a link to nothing) is said, never passed over as "ok"."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, Account, base_env, install_key, keygen
from tests.interop.test_cli_check import check, ssh_login
from tests.peers import Sshd, require, run

#: keys before the lines under test: the file is then over 4 MiB
FILLER = 50_000


def lines_about(output: str, path: Path) -> list[str]:
    return [line for line in output.splitlines() if line.split(": ", 1)[0].endswith(f" {path}")]


def said_of_lines(output: str, path: Path, first: int) -> list[tuple[int, str]]:
    """The WARN/FAIL lines about ``path``'s lines, each as (its number counted from
    line ``first``, what is said of it)."""
    out = []
    for line in lines_about(output, path):
        level, _, rest = line.partition(" ")
        text = rest.split(": ", 1)[1]
        assert level in ("WARN", "FAIL"), line
        number, _, message = text.removeprefix("line ").partition(": ")
        out.append((int(number) - first, f"{level} {message}"))
    return out


def filler(tmp_path: Path, count: int) -> str:
    """``count`` authorized_keys lines with keys sshd takes: a few real Ed25519 keys
    over and over, each line with its own comment."""
    pubs = [Path(f"{keygen(tmp_path / f'fill{n}')}.pub").read_text().split()[:2] for n in range(4)]
    return "".join(f"{kind} {blob} filler-{n}\n" for n in range(count) for kind, blob in
                   [pubs[n % len(pubs)]])  # fmt: skip


def bad_lines(tmp_path: Path) -> str:
    """A DSA key, an RSA key of 1024 bits, a line sshd cannot read, and a key whose
    options sshd refuses."""
    dsa, weak = tmp_path / "dsa", tmp_path / "weak"
    run([require("ssh-keygen"), "-q", "-t", "dsa", "-N", "", "-f", dsa]).check_returncode()
    made = run([require("ssh-keygen"), "-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", weak])
    made.check_returncode()
    refused = Path(f"{keygen(tmp_path / 'refused')}.pub").read_text()
    return (
        Path(f"{dsa}.pub").read_text()
        + Path(f"{weak}.pub").read_text()
        + "ssh-ed25519 AAAA!!not-base64 broken\n"
        + f'expiry-time="20000101" {refused}'
    )


def folder_with(tmp_path: Path, name: str, text: str) -> Path:
    ssh_dir = tmp_path / name / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True)
    keys_file = ssh_dir / "authorized_keys"
    keys_file.write_text(text)
    keys_file.chmod(0o600)
    return keys_file


def test_large_authorized_keys_named_as_a_small_one(tmp_path: Path) -> None:
    """The same bad lines after 10 keys and after 50,000 (4.9 MB): the same lines said,
    and no "ok" for the file."""
    bad = bad_lines(tmp_path)
    fill = filler(tmp_path, FILLER)
    small = folder_with(tmp_path, "small", "".join(fill.splitlines(keepends=True)[:10]) + bad)
    large = folder_with(tmp_path, "large", fill + bad)
    assert large.stat().st_size > 4 << 20
    small_found, large_found = check("-d", str(small.parent)), check("-d", str(large.parent))
    expected = said_of_lines(small_found.stdout, small, 10)
    assert [n for n, _ in expected] == [1, 2, 3, 4], small_found.stdout
    assert said_of_lines(large_found.stdout, large, FILLER) == expected, large_found.stdout
    assert f"ok   {large}:" not in large_found.stdout
    assert large_found.returncode == small_found.returncode


def test_a_line_too_long_to_hold_is_said(tmp_path: Path) -> None:
    """A line of 2 MiB is said not reviewed (not held whole); one whose NUL comes
    before that ends there, as sshd reads it; the lines after both are reviewed."""
    key = Path(f"{keygen(tmp_path / 'one')}.pub").read_text().split()
    dsa = tmp_path / "dsa"
    run([require("ssh-keygen"), "-q", "-t", "dsa", "-N", "", "-f", dsa]).check_returncode()
    long_comment = "c" * (2 << 20)
    keys_file = folder_with(tmp_path, "home", (
        f"{key[0]} {key[1]} {long_comment}\n"
        f"{key[0]} {key[1]}\0{long_comment}\n"
        + Path(f"{dsa}.pub").read_text()
    ))  # fmt: skip
    found = check("-d", str(keys_file.parent))
    said = lines_about(found.stdout, keys_file)
    assert said == [
        f"WARN {keys_file}: line 1: 1 MiB or longer, as no key line is: not reviewed",
        f"WARN {keys_file}: line 3: a DSA key: sshd no longer accepts it",
    ], found.stdout


def test_what_cannot_be_looked_at_is_said(tmp_path: Path) -> None:
    """A key file over 1 MiB (ssh loads none), a link to nothing, an authorized_keys2
    that is a folder, a known_hosts that is a FIFO, an Included config over 4 MiB:
    each named with why it was not reviewed; a socket or a big file that is no key is
    no more said than before."""
    ssh_dir = tmp_path / "home" / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True)
    key = keygen(tmp_path / "key")
    big_key = ssh_dir / "id_big"
    big_key.write_bytes(key.read_bytes() + b"A" * (1 << 20))
    (ssh_dir / "id_rsa").symlink_to(tmp_path / "not-there")
    (ssh_dir / "authorized_keys2").mkdir()
    os.mkfifo(ssh_dir / "known_hosts")
    extra = tmp_path / "extra.conf"
    extra.write_text("Host *\n" + "#" * (5 << 20) + "\n")
    config = ssh_dir / "config"
    config.write_text(f"Include {extra}\nHost *\n  ForwardAgent yes\n")
    (ssh_dir / "notes").write_bytes(b"not a key\n" * (1 << 17))
    for path in (big_key, extra, config):
        path.chmod(0o600)
    found = check("-d", str(ssh_dir))
    out = found.stdout
    assert found.returncode in (0, 1), found.stderr
    assert f"WARN {big_key}: {big_key.stat().st_size} bytes, over 1 MiB" in out
    assert f"WARN {ssh_dir / 'id_rsa'}: a link to {tmp_path / 'not-there'}, which is not" in out
    assert f"WARN {ssh_dir / 'authorized_keys2'}: a folder, not a file: not reviewed" in out
    assert f"WARN {ssh_dir / 'known_hosts'}: a FIFO, not a file: not reviewed" in out
    assert f"WARN {extra}: {extra.stat().st_size} bytes, over 4 MiB" in out
    assert f"WARN {config}: what it gives every host: not resolved" in out
    assert "notes" not in out
    for path in (big_key, extra, config):
        assert f"ok   {path}:" not in out


def test_unreadable_files_are_said(tmp_path: Path) -> None:
    """Files the one running check cannot read: named, not "ok" (as root, with the
    capabilities that let root read anything dropped)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv")
    ssh_dir = tmp_path / "home" / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True)
    key = keygen(tmp_path / "key")
    shutil.copy(key, ssh_dir / "id_ed25519")
    shutil.copy(f"{key}.pub", ssh_dir / "authorized_keys")
    (ssh_dir / "config").write_text("Host *\n  ForwardAgent yes\n")
    for name in ("id_ed25519", "authorized_keys", "config"):
        os.chown(ssh_dir / name, 65534, 65534)
        (ssh_dir / name).chmod(0o000)
    dropped = "-dac_override,-dac_read_search"
    found = subprocess.run(
        [setpriv, f"--bounding-set={dropped}", f"--inh-caps={dropped}", "--",
         *KEYTOOL, "check", "-d", str(ssh_dir)],
        capture_output=True, text=True, env=base_env(), timeout=60,
    )  # fmt: skip
    for name in ("id_ed25519", "authorized_keys", "config"):
        path = ssh_dir / name
        unread = [line for line in lines_about(found.stdout, path) if "cannot read it (" in line]
        assert unread and unread[0].startswith(f"WARN {path}: "), found.stdout
        assert unread[0].endswith("): not reviewed"), found.stdout
        assert f"ok   {path}:" not in found.stdout


def test_sshd_reads_a_large_authorized_keys_to_its_end(tmp_path: Path, account: Account) -> None:
    """After 50,000 keys, sshd still refuses the DSA key and the one with an expired
    option and lets the last key in; check names just the lines sshd refuses."""
    dsa = tmp_path / "dsa"
    run([require("ssh-keygen"), "-q", "-t", "dsa", "-N", "", "-f", dsa]).check_returncode()
    expired, last = keygen(tmp_path / "expired"), keygen(tmp_path / "last")
    tail = [
        Path(f"{dsa}.pub").read_text(),
        f'expiry-time="20000101" {Path(f"{expired}.pub").read_text()}',
        Path(f"{last}.pub").read_text(),
    ]
    keys_file = install_key(account, Path(f"{last}.pub"))
    keys_file.write_text(filler(tmp_path, FILLER) + "".join(tail))
    assert keys_file.stat().st_size > 4 << 20
    server = Sshd(tmp_path / "sshd", {"AuthorizedKeysFile": ".ssh/authorized_keys"})
    known = tmp_path / "known_hosts"
    with server:
        known.write_text(server.known_hosts_line())
        taken = [ssh_login(server, account, k, known).returncode == 0 for k in (expired, last)]
    assert taken == [False, True]
    found = check("-d", str(keys_file.parent))
    said = said_of_lines(found.stdout, keys_file, FILLER)
    assert [n for n, _ in said] == [1, 2], found.stdout
    assert "DSA" in said[0][1] and "lets no one in" in said[1][1]

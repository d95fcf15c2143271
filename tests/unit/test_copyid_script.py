"""The remote install script run by real local shells (dash, bash) as sshd would run it:
locking against concurrent installers, all-or-nothing replacement, stale locks."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from keytool.copyid import (
    REMOTE_SCRIPT,
    NewKey,
    RemoteFile,
    ShellExchange,
    line_blob,
    plan_install,
    plan_remove,
)
from keytool.keys import generate
from keytool.keys.pubfile import format_public_line

SHELLS = [s for s in ("dash", "bash") if shutil.which(s)]


def new_key(comment: str) -> NewKey:
    key = generate("ed25519").public
    return NewKey(key, format_public_line(key, comment))


def start(home: Path, shell: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [shell, "-c", REMOTE_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"HOME": str(home), "PATH": os.environ["PATH"]},
    )


def read_remote(proc: subprocess.Popen[bytes], exchange: ShellExchange) -> None:
    assert proc.stdout is not None
    while exchange.remote is None:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        if not ready:
            proc.kill()
            raise AssertionError("no complete answer from the script within 30 s")
        data = os.read(proc.stdout.fileno(), 65536)
        assert data, "the script ended before sending the file"
        exchange.feed(data)


def opened(
    home: Path, shell: str = "dash", target: str = ""
) -> tuple[subprocess.Popen[bytes], RemoteFile]:
    """The script started, sent our opening, and what it sent back of the file."""
    proc = start(home, shell)
    assert proc.stdin is not None
    exchange = ShellExchange(target)
    proc.stdin.write(exchange.opening())
    proc.stdin.flush()
    read_remote(proc, exchange)
    assert exchange.remote is not None
    return proc, exchange.remote


def install(home: Path, keys: list[NewKey], shell: str = "dash", target: str = "") -> bytes:
    proc, remote = opened(home, shell, target)
    assert proc.stdin is not None
    edit = plan_install(remote.content, keys)
    proc.stdin.write(ShellExchange.reply(edit.new_text, remote.content))
    proc.stdin.close()
    proc.stdin = None  # communicate() must not flush it again
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_creates_folder_and_file_private(tmp_path: Path, shell: str) -> None:
    key = new_key("a")
    out = install(tmp_path, [key], shell)
    assert out.endswith(b"keytool-copyid done\n")
    ssh = tmp_path / ".ssh"
    assert ssh.stat().st_mode & 0o777 == 0o700
    keys = ssh / "authorized_keys"
    assert keys.stat().st_mode & 0o777 == 0o600
    assert keys.read_bytes() == key.line.encode() + b"\n"
    assert sorted(p.name for p in ssh.iterdir()) == ["authorized_keys"]  # no lock, no temp


def test_keeps_mode_and_bytes(tmp_path: Path, shell: str) -> None:
    ssh = tmp_path / ".ssh"
    ssh.mkdir(mode=0o755)
    keys = ssh / "authorized_keys"
    old = b"# mine\r\nssh-rsa AAAAnotreally comment"
    keys.write_bytes(old)
    keys.chmod(0o640)
    key = new_key("b")
    install(tmp_path, [key], shell)
    assert keys.read_bytes() == old + b"\n" + key.line.encode() + b"\n"
    assert keys.stat().st_mode & 0o777 == 0o640
    assert ssh.stat().st_mode & 0o777 == 0o755


def test_removal_rewrites_the_file_keeping_its_mode(tmp_path: Path, shell: str) -> None:
    ssh = tmp_path / ".ssh"
    ssh.mkdir(mode=0o700)
    keys = ssh / "authorized_keys"
    gone, kept = new_key("gone"), new_key("kept")
    keys.write_bytes(f"{gone.line}\n# note\n{kept.line}\n{gone.line}".encode())
    keys.chmod(0o640)
    proc, remote = opened(tmp_path, shell)
    edit = plan_remove(remote.content, [gone])
    reply = ShellExchange.reply(edit.new_text, remote.content)
    assert reply.startswith(b"write ")
    out, err = proc.communicate(reply, timeout=60)
    assert proc.returncode == 0, err
    assert out.endswith(b"keytool-copyid done\n")
    assert keys.read_bytes() == f"# note\n{kept.line}\n".encode()
    assert keys.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in ssh.iterdir()) == ["authorized_keys"]


def test_other_target_and_symlink(tmp_path: Path, shell: str) -> None:
    real = tmp_path / "elsewhere" / "keys"
    real.parent.mkdir()
    real.write_bytes(b"")
    (tmp_path / "link").symlink_to(real)
    key = new_key("c")
    install(tmp_path, [key], shell, target="link")
    assert (tmp_path / "link").is_symlink()
    assert real.read_bytes() == key.line.encode() + b"\n"
    install(tmp_path, [key], shell, target="deep/er/file")
    assert (tmp_path / "deep").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "deep/er/file").read_bytes() == key.line.encode() + b"\n"


def test_twenty_concurrent_installers_lose_nothing(tmp_path: Path) -> None:
    ssh = tmp_path / ".ssh"
    ssh.mkdir(mode=0o700)
    old = b"# existing line\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== x\n"
    (ssh / "authorized_keys").write_bytes(old)
    keys = [new_key(f"k{i}") for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda k: install(tmp_path, [k]), keys))
    text = (ssh / "authorized_keys").read_bytes()
    assert text.startswith(old)
    blobs = [line_blob(raw) for raw in text.splitlines()]
    assert sorted(blobs[2:]) == sorted(k.blob for k in keys)  # each exactly once


@pytest.mark.parametrize("how", ["eof", "kill"])
@pytest.mark.parametrize("mode", ["append", "write"])
def test_cut_upload_leaves_the_old_file(tmp_path: Path, how: str, mode: str) -> None:
    ssh = tmp_path / ".ssh"
    ssh.mkdir(mode=0o700)
    old = b"".join(new_key(f"o{i}").line.encode() + b"\n" for i in range(50))
    (ssh / "authorized_keys").write_bytes(old)
    proc, remote = opened(tmp_path)
    assert proc.stdin is not None
    current = remote.content
    if mode == "append":
        new_text = plan_install(current, [new_key("n"), new_key("m")]).new_text
    else:  # a removal rewrites the whole file
        new_text = old[: len(old) // 2]
    reply = ShellExchange.reply(new_text, current)
    assert reply.startswith(mode.encode())
    proc.stdin.write(reply[: len(reply) // 2])
    proc.stdin.flush()
    if how == "kill":
        proc.send_signal(signal.SIGKILL)
    proc.stdin.close()
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert (ssh / "authorized_keys").read_bytes() == old
    # a SIGKILLed shell leaves its lock (and temp file) behind: the next run takes the
    # lock over since its owner is gone, and completes
    key = new_key("after")
    install(tmp_path, [key])
    assert (ssh / "authorized_keys").read_bytes() == old + key.line.encode() + b"\n"
    leftovers = {p.name for p in ssh.iterdir()} - {"authorized_keys"}
    assert not {n for n in leftovers if n.endswith("keytool-lock")}


def test_not_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / ".ssh" / "authorized_keys").mkdir(parents=True)
    proc = start(tmp_path, "dash")
    _, err = proc.communicate(b"x\n\n", timeout=30)
    assert proc.returncode != 0
    assert b"not a regular file" in err


def test_openwrt_root_uses_dropbear_file(tmp_path: Path) -> None:
    """Root on OpenWrt: /etc/dropbear/authorized_keys, as ssh-copy-id knows. Run in a
    private mount namespace whose /etc is an empty tmpfs: the real /etc is untouched."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("needs root and unshare(1) for a private /etc")
    private = [unshare, "-m", "--propagation", "private", "sh", "-c"]
    probe = subprocess.run([*private, "mount -t tmpfs x /etc"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("cannot mount a private /etc here")
    key = new_key("openwrt")
    exchange = ShellExchange()
    feed = exchange.opening() + ShellExchange.reply(plan_install(None, [key]).new_text, None)
    inside = (
        "mount -t tmpfs keytool-test /etc && touch /etc/openwrt_release && "
        'dash -c "$1" && cat /etc/dropbear/authorized_keys >&2 && stat -c %a /etc/dropbear >&2'
    )
    result = subprocess.run(
        [*private, inside, "sh", REMOTE_SCRIPT],
        input=feed,
        capture_output=True,
        env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        b"keytool-copyid 3\n/etc/dropbear/authorized_keys\nnone\n" + exchange.mark + b"\n"
    )
    assert result.stderr == key.line.encode() + b"\n700\n"
    assert not (tmp_path / ".ssh").exists()

"""copy-id --hosts: a pipe is read as ssh-keyscan -f reads one; a bad line is named
by file and line before any host is connected to; a byte-order mark is skipped; a
user ssh refuses is refused in ssh's words; --hosts given twice is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import free_port


def _keytool(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    pub = home / "k.pub"
    pub.write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKt4nJwXs1HnVZ9QyzXPKJu6dv6dNqZPVbQkDnb0m6yE k\n"
    )
    env = base_env()
    env["HOME"] = str(home)
    return subprocess.run(
        [*KEYTOOL, "copy-id", "-F", "none", "-o", "BatchMode=yes", "-i", str(pub), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=60,
        check=False,
    )


def test_hosts_from_a_pipe_as_ssh_keyscan(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: each host fails, but is read
    text = f"ssh://a@127.0.0.1:{port}\nssh://b@127.0.0.1:{port}\n"
    scan = subprocess.run(
        ["ssh-keyscan", "-f", "/dev/stdin"], input="127.0.0.1\n", capture_output=True, text=True
    )
    assert "not a regular file" not in scan.stderr  # ssh-keyscan reads the pipe
    result = _keytool(tmp_path / "h", "--hosts", "/dev/stdin", stdin=text)
    assert "not a regular file" not in result.stderr, result.stderr
    assert result.stdout.splitlines()[-1] == "2 hosts: 2 failed", result.stdout
    for device in ("/dev/zero", str(tmp_path)):
        refused = _keytool(tmp_path / "h", "--hosts", device)
        assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1


def test_a_bad_line_is_named_before_any_connection(tmp_path: Path) -> None:
    port = free_port()
    hosts = tmp_path / "hosts"
    for bad, ssh_word in (("-oProxyCommand=x", "hostname"), ("ho\x01st", "hostname")):
        hosts.write_text(f"# fleet\nssh://a@127.0.0.1:{port}\n{bad}\n")
        result = _keytool(tmp_path / "h", "--hosts", str(hosts))
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith(f"keytool: hosts file {hosts} line 3: {ssh_word}")
        assert result.stdout == ""  # nothing was connected to


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    port = free_port()
    hosts = tmp_path / "hosts"
    hosts.write_bytes(f"\ufeffssh://a@127.0.0.1:{port}\n# only\n".encode())
    result = _keytool(tmp_path / "h", "--hosts", str(hosts))
    # read as a host (refused by nothing listening), not as a bad line
    assert "Connection refused" in result.stderr and "line 1" not in result.stderr
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n\n")
    none = _keytool(tmp_path / "h", "--hosts", str(empty))
    assert none.returncode == 1 and none.stderr == f"keytool: no hosts in {empty}\n"


def test_a_user_with_control_characters_is_refused_as_ssh(tmp_path: Path) -> None:
    user = "k\x1b[31mred"
    ssh = subprocess.run(
        ["ssh", "-F", "none", "-G", f"{user}@127.0.0.1"], capture_output=True, text=True
    )
    assert ssh.returncode != 0
    words = ssh.stderr.strip()
    hosts = tmp_path / "hosts"
    hosts.write_text(f"ssh://{user}@127.0.0.1:{free_port()}\n")
    result = _keytool(tmp_path / "h", "--hosts", str(hosts))
    assert result.returncode == 1
    assert result.stderr == f"keytool: hosts file {hosts} line 1: {words}\n"
    assert "\x1b" not in result.stdout + result.stderr
    direct = _keytool(tmp_path / "h", f"{user}@127.0.0.1")
    assert direct.stderr == f"keytool: {words}\n"


def test_hosts_given_twice_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("ssh://x@127.0.0.1:1\n")
    b.write_text("ssh://y@127.0.0.1:1\n")
    result = _keytool(tmp_path / "h", "--hosts", str(a), "--hosts", str(b))
    assert result.returncode == 2 and "--hosts" in result.stderr and result.stdout == ""

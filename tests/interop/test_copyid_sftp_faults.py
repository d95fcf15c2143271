"""``keytool copy-id -s`` against an SFTP server that fails at the worst moments (a
test-only asyncssh server over a folder of the test's, password logins): the remote
authorized_keys is either as before or as intended, never gone, and the failure is
one line, at once."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

asyncssh = pytest.importorskip("asyncssh")

from tests.cli import assert_clean_error  # noqa: E402
from tests.interop.clienthelp import KEYTOOL, base_env, keygen  # noqa: E402
from tests.interop.test_client_peers import _AsyncsshThread  # noqa: E402

OLD = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKnowntoBeKeptKeptKeptKeptKeptKeptKeptKept old\n"


class _PasswordOnly(asyncssh.SSHServer):  # type: ignore[misc]
    """Any password lets one in; no key does (so the key is never taken for there)."""

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return True


def _sftp_server(root: Path, fault: str) -> Callable[[object], object]:
    class Faulty(asyncssh.SFTPServer):  # type: ignore[misc]
        renames = 0

        def __init__(self, chan: object) -> None:
            super().__init__(chan, chroot=str(root).encode())

        def rename(self, oldpath: bytes, newpath: bytes) -> object:
            Faulty.renames += 1
            if fault == "second rename" and Faulty.renames == 2:
                raise asyncssh.SFTPFailure("failure")
            return super().rename(oldpath, newpath)

        def write(self, file_obj: object, offset: int, data: bytes) -> object:
            name = os.fsdecode(getattr(file_obj, "name", b""))
            if fault == "lock write" and name.endswith("-lock"):
                raise asyncssh.SFTPFailure("No space left on device")
            return super().write(file_obj, offset, data)

    return Faulty


@pytest.mark.parametrize("fault", ["second rename", "lock write"])
def test_a_failing_server_leaves_authorized_keys_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """ "second rename": a server without posix-rename (the old file is moved aside,
    then the new one renamed in) refuses the second rename; keytool left no
    authorized_keys at all, the old one under a hidden name. "lock write": the lock is
    created but cannot be written (a full disk); keytool took it for another copy-id's,
    waited 90 s and left it behind."""
    if fault == "second rename":  # a plain SFTP v3 server, as some appliances have
        handler = asyncssh.sftp.SFTPServerHandler
        kept = [e for e in handler._extensions if e[0] != b"posix-rename@openssh.com"]
        monkeypatch.setattr(handler, "_extensions", kept)
    root = tmp_path / "root"
    (root / ".ssh").mkdir(parents=True, mode=0o700)
    keys = root / ".ssh" / "authorized_keys"
    keys.write_bytes(OLD)
    keys.chmod(0o600)
    home = tmp_path / "home"
    home.mkdir()
    new = keygen(tmp_path / "new")
    password = tmp_path / "password"
    password.write_text("anything\n")
    with _AsyncsshThread(_PasswordOnly, sftp_factory=_sftp_server(root, fault)) as server:
        start = time.monotonic()
        result = subprocess.run(
            [*KEYTOOL, "copy-id", "-s", "--no-verify", "-F", "none", "-p", str(server.port),
             "-o", f"UserKnownHostsFile={server.known_hosts(tmp_path)}",
             "-o", "GlobalKnownHostsFile=/dev/null", "--password-file", str(password),
             "-i", f"{new}.pub", "u@127.0.0.1"],
            capture_output=True, text=True, env=base_env(HOME=str(home)),
            stdin=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
        took = time.monotonic() - start
    assert result.returncode != 0
    line = assert_clean_error(result) if not result.stdout else result.stdout
    assert keys.read_bytes() == OLD, line
    assert sorted(p.name for p in keys.parent.iterdir()) == ["authorized_keys"], line
    assert took < 30, line
    if fault == "lock write":
        assert "cannot write the lock" in line and "No space left on device" in line

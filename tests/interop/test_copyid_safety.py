"""authorized_keys never loses a line: 20 concurrent copy-id runs to one account, and
runs killed in the middle of an install or a removal, against a real sshd."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.interop.clienthelp import KEYTOOL, Account, base_env, keygen, throwaway_account
from tests.interop.copyidhelp import (
    copy_id,
    copyid_sshd,
    make_client,
    mode,
    owned_by,
    put_keys,
    ssh_login,
)


def test_twenty_concurrent_installs_keep_every_line(tmp_path: Path) -> None:
    with throwaway_account() as account, copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        login = keygen(tmp_path / "login", "ed25519", "login")
        old = b"# earlier line\n" + Path(f"{login}.pub").read_bytes() + b"# no newline here"
        keys_file = put_keys(account, old)
        keys = [keygen(tmp_path / f"k{i}", "ed25519", f"key-{i}") for i in range(20)]
        env = base_env(HOME=str(client.home))
        procs = [
            subprocess.Popen(
                [
                    *KEYTOOL,
                    "copy-id",
                    "-F",
                    "none",
                    "-o",
                    f"UserKnownHostsFile={client.known_hosts}",
                    "-o",
                    f"IdentityFile={login}",
                    "-i",
                    f"{key}.pub",
                    "-p",
                    str(server.port),
                    f"{account.name}@127.0.0.1",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
            for key in keys
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert b"verified" in out
        text = keys_file.read_bytes()
        assert text.startswith(old + b"\n")
        added = text[len(old) + 1 :].splitlines(keepends=True)
        assert sorted(added) == sorted(Path(f"{k}.pub").read_bytes() for k in keys)
        assert mode(keys_file) == 0o600 and owned_by(keys_file, account)
        assert sorted(p.name for p in keys_file.parent.iterdir()) == ["authorized_keys"]
        for key in keys:
            assert ssh_login(server.port, client.known_hosts, account.name, key).returncode == 0


def _big_file(folder: Path, lines: int) -> bytes:
    """Many authorized_keys lines (one key, many comments), so that an upload takes a
    while and a kill can land in the middle of it."""
    key = keygen(folder / "filler", "ed25519", "")
    base = Path(f"{key}.pub").read_text().strip()
    return "".join(f"{base} filler-{i}\n" for i in range(lines)).encode()


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".keytool-" in p.name and "lock" not in p.name]


def _kill_during(cmd: list[str], env: dict[str, str], folder: Path, phase: str) -> tuple[bool, int]:
    """Start ``cmd`` and SIGKILL it in ``phase``: "read" as soon as the remote script's
    temp copy of the file shows up, "upload" once that copy is complete (sent back to
    keytool, whose answer is on its way), "write" once the complete copy is being
    overwritten (it shrank), "after" once it was renamed into place. Whether ``phase``
    was seen while it ran, and its return code: -SIGKILL when the kill landed, 0 when
    the run was done first."""
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.monotonic() + 60
    full_size = (folder / "authorized_keys").stat().st_size
    temp_seen = copied = reached = False
    try:
        while not reached and proc.poll() is None and time.monotonic() < deadline:
            temps = _temp_files(folder)
            if temps:
                temp_seen = True
                if phase == "read":
                    reached = True
                else:
                    with contextlib.suppress(FileNotFoundError):
                        size = temps[0].stat().st_size
                        copied = copied or size == full_size
                        if phase == "upload":
                            reached = copied
                        elif phase == "write":
                            reached = copied and size < full_size
            elif temp_seen and phase == "after":
                reached = True
            if not reached:
                time.sleep(0.0005)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    return reached, proc.returncode


#: runs of one phase that may finish before the kill, before the test gives up
ATTEMPTS = 5


def _killed_in(
    phase: str, run: tuple[list[str], dict[str, str]], account: Account, start: bytes, done: bytes
) -> bytes:
    """The authorized_keys file after a run from ``start`` (``done`` when it runs to
    its end) was killed in ``phase``; a run that was done before the kill landed is
    checked and made again, from ``start``."""
    cmd, env = run
    for _ in range(ATTEMPTS):
        keys_file = put_keys(account, start)
        reached, code = _kill_during(cmd, env, keys_file.parent, phase)
        _settled(keys_file.parent)
        after = keys_file.read_bytes()
        assert mode(keys_file) == 0o600 and owned_by(keys_file, account)
        if reached and code == -signal.SIGKILL:
            return after
        # done before the kill (or before the phase was seen): then it did its work
        assert code == 0, f"{phase}: the run failed ({code})"
        assert after == done, f"{phase}: the run ended with a wrong file"
    raise AssertionError(f"no kill landed in {phase} in {ATTEMPTS} runs: each was done first")


def _settled(folder: Path) -> None:
    """Wait (bounded) for the remote script of a killed run to notice and clean up."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(".keytool-" not in p.name for p in folder.iterdir()):
            return
        time.sleep(0.02)
    raise AssertionError(f"left behind: {sorted(p.name for p in folder.iterdir())}")


def _account_run(account: Account, tmp_path: Path) -> None:
    login = keygen(tmp_path / "login", "ed25519", "login")
    login_line = Path(f"{login}.pub").read_bytes()
    old = login_line + _big_file(tmp_path, 30000)
    keys_file = put_keys(account, old)
    folder = keys_file.parent
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        env = base_env(HOME=str(client.home))
        base = [
            *KEYTOOL,
            "copy-id",
            "-F",
            "none",
            "-o",
            f"UserKnownHostsFile={client.known_hosts}",
            "-o",
            f"IdentityFile={login}",
            "-p",
            str(server.port),
        ]
        new_line = client.pub_line()
        install = ([*base, f"{account.name}@127.0.0.1"], env)
        for phase in ("read", "upload", "after"):
            after = _killed_in(phase, install, account, old, old + new_line)
            assert after in (old, old + new_line), f"killed in {phase}: file damaged"
        # a removal killed midway: the key's line is there, or gone, nothing else moves
        remove = ([*base, "--remove", f"{account.name}@127.0.0.1"], env)
        after = _killed_in("write", remove, account, old + new_line, old)
        assert after in (old + new_line, old), "killed in a removal: file damaged"
        # and the next run is not stuck behind a lock of a killed one
        put_keys(account, old)
        done = copy_id(client, "-p", str(server.port), f"{account.name}@127.0.0.1", login_key=login)
        assert done.returncode == 0, done.stderr
        assert keys_file.read_bytes() == old + new_line
        assert sorted(p.name for p in folder.iterdir()) == ["authorized_keys"]
        assert ssh_login(server.port, client.known_hosts, account.name, client.key).returncode == 0


def test_killed_runs_leave_the_file_as_before_or_as_intended(tmp_path: Path) -> None:
    with throwaway_account() as account:
        _account_run(account, tmp_path)
    assert not os.path.exists(account.home)


def test_links_put_where_the_new_file_will_be_are_never_followed(tmp_path: Path) -> None:
    """Somebody who may write in the target's folder puts links under every name the
    new file could take (the shell's pid was part of it): the new file's name holds a
    fresh random mark and is created exclusively, so nothing is written through them.
    Old code: the victim file got the key file's lines, and the target became the link."""
    with throwaway_account() as account, copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        login = keygen(tmp_path / "login", "ed25519", "login")
        login_line = Path(f"{login}.pub").read_bytes()
        put_keys(account, login_line)
        shared = account.home / "shared"
        shared.mkdir(mode=0o777)
        shared.chmod(0o777)  # writable by anyone: the other user's links go in here
        target = shared / "ak"
        target.write_bytes(b"# theirs\n")
        victim = account.home / "victim"
        victim.write_bytes(b"precious\n")
        for path in (shared, target, victim):
            os.chown(path, account.uid, account.gid)
        limit = int(Path("/proc/sys/kernel/pid_max").read_text())
        for pid in range(300, min(limit, 1 << 16)):
            (shared / f".ak.keytool-{pid}").symlink_to(victim)
        done = copy_id(client, "-p", str(server.port), "-t", str(target), "--no-verify",
                       f"{account.name}@127.0.0.1", login_key=login)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert victim.read_bytes() == b"precious\n"
        assert not target.is_symlink()
        assert target.read_bytes() == b"# theirs\n" + client.pub_line()
        assert ssh_login(server.port, client.known_hosts, account.name, login).returncode == 0

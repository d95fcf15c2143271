"""``keytool check`` judging as sshd and ssh judge, side by side with them: folders on
the real path to the keys (links followed, as StrictModes follows them), whose folder
it is when root runs check, files a config Includes, authorized_keys options sshd
refuses, exit statuses; and nothing a config names is ever run."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, Account, base_env, install_key, keygen
from tests.interop.test_cli_check import check, ssh_login, strict_setup
from tests.peers import Sshd, require, run


def as_user(account: Account, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """A command run as ``account``, its HOME the account's home."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(account.home)}
    return run([require("runuser"), "-u", account.name, "--", *args], env=env)


def lines_about(output: str, path: Path | str) -> list[str]:
    return [line for line in output.splitlines() if line.split(": ", 1)[0].endswith(f" {path}")]


def refused_folder(log: Path) -> str:
    """The folder sshd's StrictModes named in its log."""
    marker = "bad ownership or modes for directory "
    line = next(line for line in log.read_text().splitlines() if marker in line)
    return line.split(marker, 1)[1].strip()


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder under the system's temporary folder (world-writable, sticky), which
    anyone may pass through."""
    made = Path(tempfile.mkdtemp(prefix="keytool-outside-"))
    made.chmod(0o711)
    yield made
    shutil.rmtree(made, ignore_errors=True)


def test_included_match_exec_and_commands_never_run(tmp_path: Path) -> None:
    """ssh runs a Match exec it finds two Includes down; check runs nothing, and
    does not resolve such a config."""
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    marker = tmp_path / "ran"
    deeper, inner = ssh_dir / "deeper.conf", ssh_dir / "inner.conf"
    commands = (
        f"Host *\n  ProxyCommand touch {marker}\n  KnownHostsCommand /usr/bin/touch {marker}\n"
        f"  LocalCommand touch {marker}\n  PermitLocalCommand yes\n"
    )
    deeper.write_text(f'Match exec "touch {marker}"\n  ForwardAgent yes\n' + commands)
    inner.write_text(f"Host nothing-matches-this\nInclude {deeper}\n")
    config = ssh_dir / "config"
    config.write_text(f"Include {inner}\nHost *\n  StrictHostKeyChecking no\n")
    for path in (deeper, inner, config):
        path.chmod(0o600)
    shown = run([require("ssh"), "-G", "-F", config, "somewhere"], env=base_env(HOME=str(tmp_path)))
    assert shown.returncode == 0, shown.stderr
    assert marker.exists()  # ssh ran it
    marker.unlink()
    found = check("-d", str(ssh_dir))
    assert not marker.exists(), "check ran a command from the config"
    assert f"ok   {config}: has Match exec: not resolved" in found.stdout
    # without the Match exec, the rest is resolved and still nothing runs
    deeper.write_text(commands)
    found = check("-d", str(ssh_dir))
    assert not marker.exists(), "check ran a command from the config"
    assert f"WARN {config}: StrictHostKeyChecking no for every host" in found.stdout


def test_strict_modes_follow_links_to_the_real_folders(
    tmp_path: Path, account: Account, outside: Path
) -> None:
    """authorized_keys in a world-writable folder elsewhere, and ~/.ssh a link to a
    folder under /tmp: sshd names the folder it refuses; check fails that folder."""
    key, keys_file, server, known = strict_setup(tmp_path, account)
    ssh_dir = keys_file.parent
    keys_dir = outside / "keysdir"
    keys_dir.mkdir()
    keys_dir.chmod(0o777)
    moved = keys_dir / "authorized_keys"
    shutil.copy2(keys_file, moved)
    os.chown(moved, account.uid, account.gid)
    keys_file.unlink()
    keys_file.symlink_to(moved)
    with server:
        known.write_text(server.known_hosts_line())
        assert ssh_login(server, account, key, known).returncode != 0
        refused = refused_folder(server.log)
        assert refused == str(keys_dir)
        found = check("-d", str(ssh_dir))
        assert found.returncode == 1, found.stdout
        assert any(
            line.startswith(f"FAIL {refused}: mode 0777") for line in found.stdout.splitlines()
        )
        # --fix leaves a folder outside the user's alone
        check("--fix", "-d", str(ssh_dir))
        assert keys_dir.stat().st_mode & 0o777 == 0o777
        # ~/.ssh itself a link to a private folder under /tmp: /tmp is what sshd refuses
        real_ssh = outside / "ssh"
        shutil.move(str(ssh_dir), real_ssh)
        keys_file_real = real_ssh / "authorized_keys"
        keys_file_real.unlink()
        shutil.copy2(moved, keys_file_real)
        os.chown(keys_file_real, account.uid, account.gid)
        ssh_dir.symlink_to(real_ssh)
        server.log.write_text("")
        assert ssh_login(server, account, key, known).returncode != 0
        refused = refused_folder(server.log)
        assert Path(refused) in real_ssh.parents
        found = check("-d", str(ssh_dir))
        assert found.returncode == 1, found.stdout
        assert lines_about(found.stdout, refused)[0].startswith(f"FAIL {refused}: mode ")


def test_included_config_modes_as_ssh_judges_them(account: Account) -> None:
    """ssh, run by the user, refuses an Included file others can write; a ``~/``
    Include is the user's home, whoever runs check."""
    ssh_dir = account.home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    extra = ssh_dir / "extra.conf"
    extra.write_text("Host *\n  ForwardAgent no\n")
    config = ssh_dir / "config"
    config.write_text("Include ~/.ssh/extra.conf\n")
    config.chmod(0o600)
    extra.chmod(0o666)
    for path in (ssh_dir, extra, config):
        os.chown(path, account.uid, account.gid)
    refused = as_user(account, require("ssh"), "-G", "somewhere")
    assert refused.returncode == 255
    assert f"Bad owner or permissions on {extra}" in refused.stderr
    found = check("-d", str(ssh_dir))
    assert found.returncode == 1, found.stdout
    assert any(line.startswith(f"FAIL {extra}: mode 0666") for line in found.stdout.splitlines())
    assert check("--fix", "-d", str(ssh_dir)).returncode == 0
    assert as_user(account, require("ssh"), "-G", "somewhere").returncode == 0
    # a file of someone else's, even unwritable by others, is refused too
    os.chown(extra, 65534, 65534)
    refused = as_user(account, require("ssh"), "-G", "somewhere")
    assert f"Bad owner or permissions on {extra}" in refused.stderr
    found = check("-d", str(ssh_dir))
    assert found.returncode == 1
    assert f"FAIL {extra}: owned by uid 65534, not by the user or root" in found.stdout


def test_home_owned_by_someone_else_is_the_fault(tmp_path: Path, account: Account) -> None:
    """As root, check judges the folder for the account whose home holds it: a home
    chowned to nobody is what sshd refuses, not .ssh or authorized_keys."""
    key, keys_file, server, known = strict_setup(tmp_path, account)
    ssh_dir = keys_file.parent
    os.chown(account.home, 65534, 65534)
    with server:
        known.write_text(server.known_hosts_line())
        assert ssh_login(server, account, key, known).returncode != 0
        assert refused_folder(server.log) == str(account.home)
    found = check("-d", str(ssh_dir))
    assert found.returncode == 1
    fails = [line for line in found.stdout.splitlines() if line.startswith("FAIL")]
    assert fails == [f"FAIL {account.home}: owned by uid 65534, not by the user or root"]
    # a folder of keys not named .ssh, belonging to the account: nothing fails for that
    keys = account.home / "keys"
    keys.mkdir(mode=0o700)
    shutil.copy2(key, keys / "id_ed25519")
    for path in (keys, keys / "id_ed25519"):
        os.chown(path, account.uid, account.gid)
    found = check("-d", str(keys))
    assert "owned by uid" not in found.stdout, found.stdout


def test_authorized_keys_options_sshd_refuses(tmp_path: Path, account: Account) -> None:
    """Each line's key logs in only if sshd takes its options; a NUL after the key ends
    the line for sshd, which takes the key. check warns of the refused lines only."""
    # each option list, and whether sshd lets its key in (the logins below say so)
    cases = [
        ("bogus-option", False),
        ('permitopen="x"', False),
        ('expiry-time="20000101"', False),
        ('expiry-time="2020"', False),
        ('no-pty,expiry-time="29990101"', True),
        ('permitopen="localhost:22",environment="A=b"', True),
        ("no-pty,", True),
        ('principals="x"', False),
        ('command="a",command="b"', False),
        ('permitlisten="8080",expiry-time="29990101Z"', True),
        ("restrictx", False),
        ('tunnel="x"', False),
        ('restrict,pty,from="127.0.0.1"', True),
    ]
    options = [option for option, _ in cases]
    keys = [keygen(tmp_path / f"k{n}") for n in range(len(options) + 1)]
    lines = [
        f"{opt} {Path(f'{k}.pub').read_text().strip()}"
        for opt, k in zip(options, keys, strict=False)
    ]
    nul = Path(f"{keys[-1]}.pub").read_text().split()
    lines.append(f"{nul[0]} {nul[1]}\0 junk after a NUL")
    keys_file = install_key(account, Path(f"{keys[0]}.pub"))
    keys_file.write_text("\n".join(lines) + "\n")
    server = Sshd(tmp_path / "sshd", {"AuthorizedKeysFile": ".ssh/authorized_keys"})
    known = tmp_path / "known_hosts"
    with server:
        known.write_text(server.known_hosts_line())
        taken = [ssh_login(server, account, k, known).returncode == 0 for k in keys]
    found = check("-d", str(keys_file.parent))
    warned = {
        int(line.split("line ", 1)[1].split(":")[0])
        for line in lines_about(found.stdout, keys_file)
        if line.startswith("WARN") and ": line " in line
    }
    assert taken == [ok for _, ok in cases] + [True]  # the NUL line's key too
    assert warned == {n for n, ok in enumerate(taken, start=1) if not ok}, found.stdout


def test_exit_statuses(tmp_path: Path) -> None:
    """255 when check cannot run (as ssh-keygen's fatal errors), 1 for a FAIL, 0
    otherwise; no ~/.ssh at all is nothing to check."""
    fatal = run([require("ssh-keygen"), "-l", "-f", tmp_path / "missing"])
    missing = check("-d", str(tmp_path / "missing"))
    assert missing.returncode == fatal.returncode == 255
    assert len(missing.stderr.splitlines()) == 1 and "Traceback" not in missing.stderr
    (tmp_path / "file").write_text("")
    assert check("-d", str(tmp_path / "file")).returncode == 255
    home = tmp_path / "home"
    home.mkdir()
    none = subprocess.run([*KEYTOOL, "check"], capture_output=True, text=True,
                          env=base_env(HOME=str(home)), timeout=60)  # fmt: skip
    assert none.returncode == 0, none.stderr
    assert "nothing to check" in none.stdout


def test_someone_elses_key_is_not_refused_by_ssh(account: Account) -> None:
    """ssh judges a key's modes only when the key is the user's own: root's key at
    0644 in the user's folder is taken; check still fails it, for the right reason."""
    ssh_dir = account.home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    os.chown(ssh_dir, account.uid, account.gid)
    key = keygen(ssh_dir / "id_ed25519")
    key.chmod(0o644)
    taken = as_user(account, require("ssh-keygen"), "-y", "-f", key)
    assert taken.returncode == 0 and "UNPROTECTED" not in taken.stderr
    own = keygen(ssh_dir / "id_own")
    own.chmod(0o644)
    os.chown(own, account.uid, account.gid)
    assert "UNPROTECTED" in as_user(account, require("ssh-keygen"), "-y", "-f", own).stderr
    found = check("-d", str(ssh_dir))
    said = lines_about(found.stdout, key)
    assert any(line.startswith(f"FAIL {key}: mode 0644: a private key others") for line in said)
    assert not any("ssh refuses" in line for line in said), said
    assert f"FAIL {own}: mode 0644: a private key others can read (ssh refuses to use it)" in (
        found.stdout.splitlines()
    )

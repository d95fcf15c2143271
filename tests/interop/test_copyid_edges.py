"""keytool copy-id at the edges of a real account on sshd: files and folders it may not
write, links that go nowhere, odd target names and lines, dry runs of a removal, and
what a fleet says of a host. Each case checks the remote file's bytes (and owner), and
ssh-copy-id run against the same account where it has an equivalent."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli import assert_clean_error
from tests.interop.clienthelp import KEYTOOL, Account, base_env, keygen, throwaway_account
from tests.interop.copyidhelp import copy_id, copyid_sshd, make_client, put_keys, ssh_login
from tests.peers import READS_BASHRC, require


def dest(account: Account) -> str:
    return f"{account.name}@127.0.0.1"


def _ssh_copy_id(
    port: int, known: Path, login: Path, pub: Path, account: Account, home: Path
) -> subprocess.CompletedProcess[str]:
    """ssh-copy-id -f (its own check would log in with the login key and stop there)."""
    return subprocess.run(
        [require("ssh-copy-id"), "-f", "-i", str(pub), "-p", str(port), "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", f"IdentityFile={login}", "-o", "IdentitiesOnly=yes", dest(account)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=90,
        env=base_env(HOME=str(home)),
    )  # fmt: skip


@pytest.mark.parametrize("sftp", [False, True])
def test_a_root_owned_file_the_user_may_not_write_is_left_alone(
    tmp_path: Path, account: Account, sftp: bool
) -> None:
    """authorized_keys owned by root, 0644, in the user's own ~/.ssh: ssh-copy-id cannot
    append to it and fails; keytool must not replace it by a rename either (which
    the folder would allow): it fails with one line, and the file is as it was."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    login_line = Path(f"{login}.pub").read_bytes()
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        keys = put_keys(account, login_line, 0o644)
        os.chown(keys, 0, 0)
        theirs = _ssh_copy_id(server.port, client.known_hosts, login, client.pub, account,
                              client.home)  # fmt: skip
        assert theirs.returncode != 0
        assert keys.read_bytes() == login_line
        flags = ["-s"] if sftp else []
        ours = copy_id(client, *flags, "-p", server.port, dest(account), login_key=login)
        assert "is not writable" in assert_clean_error(ours)
        assert keys.read_bytes() == login_line
        info = keys.stat()
        assert (info.st_uid, info.st_mode & 0o777) == (0, 0o644)
        assert sorted(p.name for p in keys.parent.iterdir()) == ["authorized_keys"]


@pytest.mark.parametrize("sftp", [False, True])
def test_a_folder_it_may_not_write_in_fails_at_once(
    tmp_path: Path, account: Account, sftp: bool
) -> None:
    """~/.ssh owned by root (not writable by the user), authorized_keys the user's: the
    lock and the new file cannot be made beside it. keytool says so at once (it used
    to wait a minute for a lock nobody held) and leaves the file as it was."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    login_line = Path(f"{login}.pub").read_bytes()
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        keys = put_keys(account, login_line)
        os.chown(keys.parent, 0, 0)
        keys.parent.chmod(0o755)
        started = time.monotonic()
        flags = ["-s"] if sftp else []
        ours = copy_id(client, *flags, "-p", server.port, dest(account), login_key=login)
        line = assert_clean_error(ours)
        assert time.monotonic() - started < 30
        assert "cannot create" in line
        assert keys.read_bytes() == login_line
        assert sorted(p.name for p in keys.parent.iterdir()) == ["authorized_keys"]


def test_a_link_that_loops_is_named(tmp_path: Path, account: Account) -> None:
    login = keygen(tmp_path / "login", "ed25519", "login")
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        keys = put_keys(account, Path(f"{login}.pub").read_bytes())
        loop = keys.parent / "loop"
        loop.symlink_to("loop")
        os.lchown(loop, account.uid, account.gid)
        ours = copy_id(client, "-t", ".ssh/loop", "-p", server.port, dest(account),
                       login_key=login)  # fmt: skip
        line = assert_clean_error(ours)
        assert "cannot follow the link" in line and "forced command" not in line
        assert loop.is_symlink() and os.readlink(loop) == "loop"


@pytest.mark.parametrize("sftp", [False, True])
@pytest.mark.parametrize("points_to", ["loop", "../nowhere/authorized_keys"])
def test_a_link_that_cannot_be_followed_is_left_alone(
    tmp_path: Path, account: Account, sftp: bool, points_to: str
) -> None:
    """A target link that loops or points into a folder that is not there: said in one
    line, over SFTP as through the shell, and the link stays a link (a rename over it
    would have replaced the user's link by a file of ours)."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        put_keys(account, Path(f"{login}.pub").read_bytes())
        link = account.home / ".ssh" / "loop"
        link.symlink_to(points_to)
        os.lchown(link, account.uid, account.gid)
        flags = ["-s"] if sftp else []
        ours = copy_id(client, *flags, "-t", ".ssh/loop", "-p", server.port, dest(account),
                       login_key=login)  # fmt: skip
        line = assert_clean_error(ours)
        assert "cannot follow the link" in line
        assert link.is_symlink() and os.readlink(link) == points_to
        assert not (account.home / "nowhere").exists()


def test_a_target_named_like_an_option(tmp_path: Path, account: Account) -> None:
    """-t -dash: cp, mv and readlink must not read it as an option (-s did it already)."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        put_keys(account, Path(f"{login}.pub").read_bytes())
        ours = copy_id(client, "-t", "-dash", "--no-verify", "-p", server.port, dest(account),
                       login_key=login)  # fmt: skip
        assert ours.returncode == 0, ours.stderr
        assert (account.home / "-dash").read_bytes() == client.pub_line()


def test_remove_keeps_a_line_with_a_lone_carriage_return(tmp_path: Path, account: Account) -> None:
    """sshd ends lines at a newline only: a carriage return inside a comment is part of
    its line, which --remove takes out whole (and keeps whole in a line it keeps)."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    other = keygen(tmp_path / "other", "ed25519", "my\rcomment")
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        kept = Path(f"{login}.pub").read_bytes() + Path(f"{other}.pub").read_bytes()
        gone = client.pub_line().replace(b"new@client", b"new\rclient")
        keys = put_keys(account, kept + gone)
        ours = copy_id(client, "--remove", "-p", server.port, dest(account), login_key=login)
        assert ours.returncode == 0, ours.stderr
        assert keys.read_bytes() == kept


@pytest.mark.parametrize("sftp", [False, True])
def test_a_removal_from_a_missing_folder_creates_nothing(
    tmp_path: Path, account: Account, sftp: bool
) -> None:
    """--remove with a -t whose folders are not there: nothing to take out, so nothing
    is made (keytool used to create the folders, mode 0700, and take a lock there)."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        keys = put_keys(account, Path(f"{login}.pub").read_bytes())
        before = sorted(p.name for p in account.home.iterdir())
        flags = ["-s"] if sftp else []
        ours = copy_id(client, *flags, "--remove", "-t", "keys/here/authorized_keys", "-p",
                       server.port, dest(account), login_key=login)  # fmt: skip
        assert ours.returncode == 0, ours.stderr
        assert "not there" in ours.stdout and "keys/here/authorized_keys" in ours.stdout
        assert sorted(p.name for p in account.home.iterdir()) == before
        assert not (account.home / "keys").exists()
        # a missing file in a folder that is there: no file, no lock, no copy left
        gone = copy_id(client, *flags, "--remove", "-t", ".ssh/other_keys", "-p", server.port,
                       dest(account), login_key=login)  # fmt: skip
        assert gone.returncode == 0, gone.stderr
        assert "not there" in gone.stdout
        assert sorted(p.name for p in keys.parent.iterdir()) == ["authorized_keys"]


def test_dry_run_of_a_removal_asks_the_server(tmp_path: Path, account: Account) -> None:
    login = keygen(tmp_path / "login", "ed25519", "login")
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        keys = put_keys(account, Path(f"{login}.pub").read_bytes())
        absent = copy_id(client, "-n", "--remove", "-p", server.port, dest(account),
                         login_key=login)  # fmt: skip
        assert absent.returncode == 0, absent.stderr
        assert "not there" in absent.stdout and "would remove" not in absent.stdout
        put_keys(account, keys.read_bytes() + client.pub_line())
        present = copy_id(client, "-n", "--remove", "-p", server.port, dest(account),
                          login_key=login)  # fmt: skip
        assert present.returncode == 0, present.stderr
        assert "would remove" in present.stdout
        assert keys.read_bytes().endswith(client.pub_line())


def test_a_key_held_back_by_its_options_is_named_as_the_cause(
    tmp_path: Path, account: Account
) -> None:
    """The key is in the file under from="10.9.9.9": the server refuses it from here,
    and copy-id names that line's option rather than guessing at sshd_config."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        text = Path(f"{login}.pub").read_bytes() + b'from="10.9.9.9" ' + client.pub_line()
        keys = put_keys(account, text)
        ours = copy_id(client, "-p", server.port, dest(account), login_key=login)
        line = assert_clean_error(ours)
        assert 'from="10.9.9.9"' in line and "-f" in line
        assert keys.read_bytes() == text


def test_fleet_rows_stay_one_line_and_server_words_name_their_host(
    tmp_path: Path, account: Account
) -> None:
    """Two hosts, one of which shows a changed host key and one that refuses the
    password: the table has one row per host, and "Permission denied" lines on stderr
    name the host they are about."""
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        impostor = keygen(tmp_path / "impostor", "ed25519")
        blob = Path(f"{impostor}.pub").read_text().split()[1]
        client.known_hosts.write_text(
            f"[127.0.0.1]:{server.port} ssh-ed25519 {blob}\n"
            + server.known_hosts_line().replace("127.0.0.1", "localhost", 1)
        )
        askpass = tmp_path / "askpass.sh"
        askpass.write_text("#!/bin/sh\necho wrong-password\n")
        askpass.chmod(0o755)
        env = base_env(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force")
        env["HOME"] = str(client.home)
        hosts = [f"ssh://{account.name}@127.0.0.1:{server.port}",
                 f"ssh://{account.name}@localhost:{server.port}"]  # fmt: skip
        done = subprocess.run(
            [*KEYTOOL, "copy-id", "-F", "none", "-o", f"UserKnownHostsFile={client.known_hosts}",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", f"IdentityFile={client.key}",
             "-o", "NumberOfPasswordPrompts=2", *hosts],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=120,
        )  # fmt: skip
        assert done.returncode == 1 and "Traceback" not in done.stderr
        rows = done.stdout.splitlines()
        assert rows[0].split() == ["HOST", "RESULT", "DETAIL"] and len(rows) == 4
        assert rows[1].startswith(hosts[0]) and "failed" in rows[1]
        assert "Host key verification failed." in rows[1]
        assert rows[2].startswith(hosts[1]) and "failed" in rows[2]
        denied = [x for x in done.stderr.splitlines() if "Permission denied" in x]
        assert denied and all(x.startswith(f"{hosts[1]}: ") for x in denied)
        assert not (account.home / ".ssh").exists()


def test_hosts_and_password_cannot_both_come_from_stdin(tmp_path: Path) -> None:
    done = subprocess.run(
        [*KEYTOOL, "copy-id", "--hosts", "-", "--password-file", "-"],
        input="secret\nuser@host\n", capture_output=True, text=True, timeout=60,
        env=base_env(HOME=str(tmp_path)),
    )  # fmt: skip
    assert "cannot both read stdin" in assert_clean_error(done)


def test_a_login_banner_without_a_newline_is_passed_over(tmp_path: Path) -> None:
    """A bash login whose .bashrc prints a greeting with printf (no newline): our
    script's answer follows it on the same line. keytool waited two minutes for a
    header it never saw, then failed; ssh-copy-id installs. Both install now."""
    with throwaway_account("/bin/bash") as account:
        rc = account.home / ".bashrc"
        rc.write_text('printf "welcome, no newline"\n')
        os.chown(rc, account.uid, account.gid)
        greeting = subprocess.run(["su", "-s", "/bin/bash", "-c", "bash -ic true", account.name],
                                  capture_output=True, text=True, timeout=30)  # fmt: skip
        assert "welcome" in greeting.stdout + greeting.stderr  # the file is read
        options = dict(PasswordAuthentication="yes", **READS_BASHRC)
        with copyid_sshd(tmp_path / "sshd", [account], **options) as server:
            client = make_client(tmp_path, server)
            started = time.monotonic()
            ours = copy_id(client, "-p", server.port, dest(account), password=account.password)
            assert ours.returncode == 0, ours.stderr
            assert time.monotonic() - started < 30
            keys = account.home / ".ssh" / "authorized_keys"
            assert keys.read_bytes() == client.pub_line()
            login = ssh_login(server.port, client.known_hosts, account.name, client.key)
            assert login.returncode == 0, login.stderr


def test_a_closed_stdout_does_the_work_in_silence(tmp_path: Path, account: Account) -> None:
    """copy-id ... >&-: the key is installed and the status is 0 (it was a traceback
    and 1), as ssh-copy-id, which writes to stderr."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        keys = put_keys(account, Path(f"{login}.pub").read_bytes())
        argv = [*KEYTOOL, "copy-id", "-F", "none", "-o", f"UserKnownHostsFile={client.known_hosts}",
                "-o", f"IdentityFile={login}", "-i", str(client.pub), "-p", str(server.port),
                dest(account)]  # fmt: skip
        for _ in ("new", "already there"):
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, env=base_env(HOME=str(client.home)), timeout=90,
                                  preexec_fn=lambda: os.close(1))  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert "Traceback" not in done.stderr
            assert keys.read_bytes() == Path(f"{login}.pub").read_bytes() + client.pub_line()


def test_help_flags_and_a_bad_key_file_named(tmp_path: Path) -> None:
    """-h and -? print the usage, as ssh-copy-id's; a -i file that is no key is named."""
    for flag in ("-h", "-?"):
        shown = subprocess.run([*KEYTOOL, "copy-id", flag], capture_output=True, text=True,
                               timeout=60)  # fmt: skip
        assert shown.returncode == 0 and "Usage" in shown.stdout, shown.stderr
    bad = tmp_path / "bad"
    bad.write_bytes(b"\xff\xfe\n")
    good = keygen(tmp_path / "good", "ed25519", "good")
    ours = subprocess.run([*KEYTOOL, "copy-id", "-i", f"{good}.pub", "-i", str(bad),
                           "nobody@127.0.0.1"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=base_env(HOME=str(tmp_path)))  # fmt: skip
    assert str(bad) in assert_clean_error(ours)


@pytest.mark.parametrize("sftp", [False, True])
def test_a_target_under_tilde_is_in_the_home(tmp_path: Path, account: Account, sftp: bool) -> None:
    """-t '~/.ssh/other_keys' (quoted, so no local shell expanded it) is the file in
    the remote home, as sshd's AuthorizedKeysFile reads it; keytool made a folder
    named "~" there."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    files = ".ssh/authorized_keys .ssh/other_keys"
    with copyid_sshd(tmp_path / "sshd", [account], AuthorizedKeysFile=files) as server:
        client = make_client(tmp_path, server)
        put_keys(account, Path(f"{login}.pub").read_bytes())
        flags = ["-s"] if sftp else []
        ours = copy_id(client, *flags, "-t", "~/.ssh/other_keys", "-p", server.port,
                       dest(account), login_key=login)  # fmt: skip
        assert ours.returncode == 0, ours.stderr
        assert "verified" in ours.stdout
        assert (account.home / ".ssh" / "other_keys").read_bytes() == client.pub_line()
        assert not (account.home / "~").exists()
        login_new = ssh_login(server.port, client.known_hosts, account.name, client.key)
        assert login_new.returncode == 0, login_new.stderr


def test_an_sftp_lock_left_by_a_killed_copy_id_is_taken_over_at_once(
    tmp_path: Path, account: Account
) -> None:
    """copy-id -s killed with -9 leaves its lock (and no process to remove it). The
    next run on this machine sees the lock names a process of ours that is gone and
    takes it over at once; it used to wait a minute for it to go stale."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    login_line = Path(f"{login}.pub").read_bytes()
    gone = subprocess.Popen(["true"])
    gone.wait()
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        keys = put_keys(account, login_line)
        lock = keys.parent / ".authorized_keys.keytool-lock"
        lock.write_text(f"sftp@{os.uname().nodename} {gone.pid}\n")
        os.chown(lock, account.uid, account.gid)
        ours = copy_id(client, "-s", "-v", "-p", server.port, dest(account), login_key=login,
                       timeout=45)  # fmt: skip
        assert ours.returncode == 0, ours.stderr
        assert "left by a copy-id killed here" in ours.stderr
        assert keys.read_bytes() == login_line + client.pub_line()
        assert sorted(p.name for p in keys.parent.iterdir()) == ["authorized_keys"]
        login_new = ssh_login(server.port, client.known_hosts, account.name, client.key)
        assert login_new.returncode == 0, login_new.stderr


def test_port_and_user_in_the_order_given(tmp_path: Path, account: Account) -> None:
    """`-o Port=REAL -p WRONG`: as ssh (and so ssh-copy-id, which hands both to ssh in
    the order given), the first wins; `-o User=REAL WRONG@host` too. keytool took -p and
    the destination's user whatever the order, and failed."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    put_keys(account, Path(f"{login}.pub").read_bytes())
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        # "-p +PORT" after it: a port as ssh reads one (a sign allowed), and unused
        args = ["-o", f"Port={server.port}", "-p", "+1", "-o", f"User={account.name}"]
        ours = copy_id(client, *args, "nobody@127.0.0.1", login_key=login)
        assert ours.returncode == 0, ours.stderr
        assert "verified" in ours.stdout
        login_works = ssh_login(server.port, client.known_hosts, account.name, client.key)
        assert login_works.returncode == 0, login_works.stderr


def test_the_first_port_counts_and_a_host_twice_is_done_once(
    tmp_path: Path, account: Account
) -> None:
    """ssh-copy-id hands every -p to ssh, which takes the first: so does keytool (it
    took the last); a destination listed twice is done once, so -f adds the key once."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    login_line = Path(f"{login}.pub").read_bytes()
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        keys = put_keys(account, login_line)
        theirs = subprocess.run(
            [require("ssh-copy-id"), "-f", "-i", str(client.pub), "-p", str(server.port),
             "-p", "1", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={client.known_hosts}",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", f"IdentityFile={login}",
             "-o", "IdentitiesOnly=yes", dest(account)],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=90,
            env=base_env(HOME=str(client.home)),
        )  # fmt: skip
        assert theirs.returncode == 0, theirs.stderr
        assert keys.read_bytes() == login_line + client.pub_line()
        put_keys(account, login_line)
        ours = copy_id(client, "-f", "-p", server.port, "-p", "1", dest(account), dest(account),
                       login_key=login)  # fmt: skip
        assert ours.returncode == 0, ours.stderr
        assert keys.read_bytes() == login_line + client.pub_line()
        assert ours.stdout.count(dest(account)) == 1

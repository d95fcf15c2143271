"""keytool copy-id against real servers: OpenSSH sshd (password, key, agent), login
shells fish and tcsh, an SFTP-only account, dropbear; removal, dry run, StrictModes,
host key mismatch. Each case checks the remote file's exact bytes and modes, and that
real ``ssh -i NEWKEY -o BatchMode=yes`` then logs in (or no longer does)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.cli import assert_clean_error
from tests.interop.agenthelp import openssh_agent
from tests.interop.clienthelp import (
    RELAY_PROXY,
    Account,
    accepted_keys,
    base_env,
    fingerprint,
    keygen,
    throwaway_account,
)
from tests.interop.copyidhelp import (
    copy_id,
    copyid_sshd,
    make_client,
    mode,
    owned_by,
    put_keys,
    ssh_login,
)
from tests.peers import Dropbear, Sshd, require, run


def dest(account: Account) -> str:
    return f"{account.name}@127.0.0.1"


def test_password_install_verify_then_already_there(tmp_path: Path, account: Account) -> None:
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        # no -i: the newest ~/.ssh/id*.pub, as ssh-copy-id picks it
        result = copy_id(client, "-p", server.port, dest(account), password=account.password)
        assert result.returncode == 0, result.stderr
        assert "installed" in result.stdout
        assert "verified: logged in with the new key" in result.stdout
        keys = account.home / ".ssh" / "authorized_keys"
        assert keys.read_bytes() == client.pub_line()
        assert mode(account.home / ".ssh") == 0o700
        assert mode(keys) == 0o600
        assert owned_by(keys, account) and owned_by(keys.parent, account)
        assert sorted(p.name for p in keys.parent.iterdir()) == ["authorized_keys"]
        login = ssh_login(server.port, client.known_hosts, account.name, client.key, "echo in")
        assert login.returncode == 0, login.stderr
        assert login.stdout == "in\n"

        # again, without a password: the key query says it is there; nothing changes
        again = copy_id(client, "-p", server.port, dest(account))
        assert again.returncode == 0, again.stderr
        assert "already there" in again.stdout
        assert keys.read_bytes() == client.pub_line()


def test_verified_when_known_hosts_has_another_key_type(tmp_path: Path, account: Account) -> None:
    """known_hosts holds only the server's RSA key (it also has ed25519 and ECDSA): the
    verification connection, pinned to the key the first one checked, asks for that
    key type first as well, instead of getting ed25519 and calling it a mismatch."""
    with copyid_sshd(tmp_path / "sshd", [account], LogLevel="DEBUG1") as server:
        client = make_client(tmp_path, server)
        client.known_hosts.write_text(server.known_hosts_line("rsa"))
        result = copy_id(client, "-p", server.port, dest(account), password=account.password)
        assert result.returncode == 0, result.stderr
        assert "verified: logged in with the new key" in result.stdout, result.stdout
        keys = account.home / ".ssh" / "authorized_keys"
        assert keys.read_bytes() == client.pub_line()
        # sshd signed with its RSA key on both connections, never with another one
        used = re.findall(r"kex: host key algorithm: (\S+)", server.log.read_text())
        assert used == ["rsa-sha2-512", "rsa-sha2-512"], used


def test_through_a_proxy_command(tmp_path: Path, account: Account) -> None:
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        result = copy_id(
            client, "-v", "-p", server.port, "-o", f"ProxyCommand={RELAY_PROXY}", dest(account),
            password=account.password,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "verified: logged in with the new key" in result.stdout
        assert (account.home / ".ssh" / "authorized_keys").read_bytes() == client.pub_line()
        # both connections (install, verification) went through the relay
        assert result.stderr.count("connected through the ProxyCommand") == 2, result.stderr
        # the verifying connection runs beside the first: -v names its lines
        second = "keytool: second connection: connected through the ProxyCommand"
        assert result.stderr.count(second) == 1, result.stderr
        assert "keytool: second connection: authentication (public key)" in result.stderr
        assert "TCP connection established" not in result.stderr
        assert ssh_login(server.port, client.known_hosts, account.name, client.key).returncode == 0


def test_key_auth_keeps_existing_lines_byte_for_byte(tmp_path: Path, account: Account) -> None:
    login_key = keygen(tmp_path / "login", "ecdsa", "login")
    login_line = Path(f"{login_key}.pub").read_bytes().rstrip(b"\n")
    old = (
        b"# managed by hand\r\n"
        b"\n"
        b'from="127.0.0.1",no-agent-forwarding ' + login_line + b"\n"
        b"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 broken-but-kept  "  # no newline at the end
    )
    keys = put_keys(account, old, 0o640)
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server, kind="rsa")
        result = copy_id(
            client,
            "-i",
            client.pub,
            "-p",
            server.port,
            dest(account),
            login_key=login_key,
        )
        assert result.returncode == 0, result.stderr
        assert "verified" in result.stdout
        assert keys.read_bytes() == old + b"\n" + client.pub_line()
        assert mode(keys) == 0o640  # the file's own mode is kept
        assert owned_by(keys, account)
        assert ssh_login(server.port, client.known_hosts, account.name, client.key).returncode == 0


def test_agent_auth_and_private_key_given(tmp_path: Path, account: Account) -> None:
    login_key = keygen(tmp_path / "login", "ed25519", "login")
    put_keys(account, Path(f"{login_key}.pub").read_bytes())
    with (
        copyid_sshd(tmp_path / "sshd", [account]) as server,
        openssh_agent(tmp_path / "agent") as agent,
    ):
        run([require("ssh-add"), login_key], env=agent.env()).check_returncode()
        client = make_client(tmp_path, server)
        # -i names the private key: its .pub is installed
        result = copy_id(
            client,
            "-i",
            client.key,
            "-p",
            server.port,
            dest(account),
            env=agent.env(),
            login_key=client.key,
        )
        assert result.returncode == 0, result.stderr
        keys = account.home / ".ssh" / "authorized_keys"
        assert keys.read_bytes() == Path(f"{login_key}.pub").read_bytes() + client.pub_line()
        # sshd saw the agent's key log in for the install, then the new key for the check
        assert accepted_keys(server.log) == [fingerprint(login_key), fingerprint(client.key)]
        assert "Accepted password" not in server.log.read_text(errors="replace")
        assert ssh_login(server.port, client.known_hosts, account.name, client.key).returncode == 0


@pytest.mark.parametrize("shell", ["fish", "tcsh"])
def test_login_shell_fish_or_tcsh(tmp_path: Path, shell: str) -> None:
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed")
    with throwaway_account(path) as account, copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        result = copy_id(client, "-p", server.port, dest(account), password=account.password)
        assert result.returncode == 0, result.stderr
        keys = account.home / ".ssh" / "authorized_keys"
        assert keys.read_bytes() == client.pub_line()
        assert (mode(keys.parent), mode(keys)) == (0o700, 0o600)
        login = ssh_login(server.port, client.known_hosts, account.name, client.key, "echo $SHELL")
        assert login.returncode == 0, login.stderr
        assert login.stdout.strip() == path


def test_sftp_only_account(tmp_path: Path, account: Account) -> None:
    old = b"# first line, no newline"
    keys = put_keys(account, old)
    sftp_only = {"Match": f"User {account.name}\n  ForceCommand internal-sftp"}
    with copyid_sshd(tmp_path / "sshd", [account], **sftp_only) as server:
        client = make_client(tmp_path, server)
        # the shell path cannot work here, and says what to do
        refused = copy_id(client, "-p", server.port, dest(account), password=account.password)
        assert "try -s for SFTP" in assert_clean_error(refused)
        assert keys.read_bytes() == old

        result = copy_id(client, "-s", "-p", server.port, dest(account), password=account.password)
        assert result.returncode == 0, result.stderr
        assert "verified" in result.stdout
        assert keys.read_bytes() == old + b"\n" + client.pub_line()
        assert mode(keys) == 0o600 and owned_by(keys, account)
        assert sorted(p.name for p in keys.parent.iterdir()) == ["authorized_keys"]
        login = ssh_login(server.port, client.known_hosts, account.name, client.key, sftp=True)
        assert login.returncode == 0, login.stderr

        removed = copy_id(
            client, "-s", "--remove", "-p", server.port, dest(account), password=account.password
        )
        assert removed.returncode == 0, removed.stderr
        assert keys.read_bytes() == old + b"\n"


def test_sftp_creates_folder_and_file(tmp_path: Path, account: Account) -> None:
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        result = copy_id(client, "-s", "-p", server.port, dest(account), password=account.password)
        assert result.returncode == 0, result.stderr
        keys = account.home / ".ssh" / "authorized_keys"
        assert keys.read_bytes() == client.pub_line()
        assert (mode(keys.parent), mode(keys)) == (0o700, 0o600)
        assert ssh_login(server.port, client.known_hosts, account.name, client.key).returncode == 0


def test_remove_keeps_other_lines_and_mode(tmp_path: Path, account: Account) -> None:
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        other = keygen(tmp_path / "other", "ed25519", "other")
        other_line = Path(f"{other}.pub").read_bytes()
        new_line = client.pub_line().rstrip(b"\n")
        old = (
            b"# keep\n"
            + other_line
            + b'command="/bin/true" '
            + new_line
            + b"\n"
            + new_line.replace(b"new@client", b"second copy")
            + b"\n"
            + b"# last line without newline"
        )
        keys = put_keys(account, old, 0o604)
        assert ssh_login(server.port, client.known_hosts, account.name, client.key).returncode == 0
        # logging in with the key itself runs its forced command, not the script
        forced = copy_id(client, "--remove", "-p", server.port, dest(account))
        assert "forced command" in assert_clean_error(forced)
        assert keys.read_bytes() == old
        result = copy_id(
            client,
            "--remove",
            "-p",
            server.port,
            dest(account),
            password=account.password,
            login_key=keygen(tmp_path / "unknown", "ed25519"),
        )
        assert result.returncode == 0, result.stderr
        assert "removed" in result.stdout
        assert "no longer accepts" in result.stdout
        assert keys.read_bytes() == b"# keep\n" + other_line + b"# last line without newline"
        assert mode(keys) == 0o604 and owned_by(keys, account)
        assert sorted(p.name for p in keys.parent.iterdir()) == ["authorized_keys"]
        login = ssh_login(server.port, client.known_hosts, account.name, client.key)
        assert login.returncode != 0
        assert ssh_login(server.port, client.known_hosts, account.name, other).returncode == 0


def test_dry_run_changes_nothing(tmp_path: Path, account: Account) -> None:
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        result = copy_id(client, "-n", "-p", server.port, dest(account))
        assert result.returncode == 0, result.stderr
        assert "would install" in result.stdout
        assert not (account.home / ".ssh").exists()


def test_strictmodes_refusal_is_explained(tmp_path: Path, account: Account) -> None:
    account.home.chmod(0o757)  # a home others may write to: sshd ignores the keys
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        result = copy_id(client, "-p", server.port, dest(account), password=account.password)
        line = assert_clean_error(result)
        assert "refuses it" in line
        assert "StrictModes: the home folder is writable by group or others" in line
        keys = account.home / ".ssh" / "authorized_keys"
        assert keys.read_bytes() == client.pub_line()  # installed, but it cannot work


def test_host_key_mismatch_installs_nothing(tmp_path: Path, account: Account) -> None:
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        impostor = keygen(tmp_path / "impostor", "ed25519")
        blob = Path(f"{impostor}.pub").read_text().split()[1]
        client.known_hosts.write_text(f"[127.0.0.1]:{server.port} ssh-ed25519 {blob}\n")
        result = copy_id(client, "-p", server.port, dest(account), password=account.password)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert "host key" in result.stderr.lower()

        client.known_hosts.write_text(server.known_hosts_line())
        pinned = copy_id(
            client,
            "--expect-hostkey",
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            "-p",
            server.port,
            dest(account),
            password=account.password,
        )
        assert "not the expected" in assert_clean_error(pinned)
        assert not (account.home / ".ssh").exists()
        log = server.log.read_text(errors="replace")
        assert "password for" not in log  # no password ever reached the server


def dropbear_known(server: Dropbear, path: Path) -> Path:
    path.write_text(server.known_hosts_lines())
    return path


def test_dropbear(tmp_path: Path, account: Account) -> None:
    with Dropbear(tmp_path / "dropbear") as server:
        client = make_client(tmp_path)
        dropbear_known(server, client.known_hosts)
        result = copy_id(client, "-p", server.port, dest(account), password=account.password)
        assert result.returncode == 0, result.stderr
        assert "verified" in result.stdout
        keys = account.home / ".ssh" / "authorized_keys"
        assert keys.read_bytes() == client.pub_line()
        assert (mode(keys.parent), mode(keys)) == (0o700, 0o600)
        login = ssh_login(server.port, client.known_hosts, account.name, client.key, "echo ok")
        assert login.returncode == 0, login.stderr
        assert login.stdout == "ok\n"


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    client = make_client(tmp_path)
    for args in (
        ["-i", tmp_path / "missing.pub", "u@127.0.0.1"],
        ["-j", "0", "u@127.0.0.1"],
        ["--expect-hostkey", "MD5:aa", "u@127.0.0.1"],
        ["--remove", "-f", "u@127.0.0.1"],
        ["-t", "a\nb", "u@127.0.0.1"],
        ["-p", "no-such-service", "u@127.0.0.1"],
        [],
    ):
        result = copy_id(client, *args, env=base_env())
        assert_clean_error(result)
    os.unlink(client.pub)
    os.unlink(client.key)
    assert "keytool gen" in assert_clean_error(copy_id(client, "u@127.0.0.1"))


def test_a_pin_under_strict_checking_records_nothing(tmp_path: Path, account: Account) -> None:
    """StrictHostKeyChecking=yes never writes known_hosts, as with ssh; a host known
    with another key keeps its line when a pin vouches for the server this once."""
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path)
        client.known_hosts.unlink()
        pin = run([require("ssh-keygen"), "-lf", f"{server.host_keys['ed25519']}.pub"])
        fp = pin.stdout.split()[1]
        args = ["--expect-hostkey", fp, "-p", server.port, dest(account)]
        strict = copy_id(client, "-o", "StrictHostKeyChecking=yes", *args,
                         password=account.password)  # fmt: skip
        assert strict.returncode == 0, strict.stderr
        assert not client.known_hosts.exists()
        impostor = keygen(tmp_path / "impostor", "ed25519")
        blob = Path(f"{impostor}.pub").read_text().split()[1]
        other = f"[127.0.0.1]:{server.port} ssh-ed25519 {blob}\n"
        client.known_hosts.write_text(other)
        (account.home / ".ssh" / "authorized_keys").unlink()
        again = copy_id(client, *args, password=account.password)
        assert again.returncode == 0, again.stderr
        assert client.known_hosts.read_text() == other


@pytest.mark.parametrize("peer", ["sshd", "dropbear"])
@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_a_pin_on_another_host_key_of_the_server(
    tmp_path: Path, account: Account, peer: str, kind: str
) -> None:
    """--expect-hostkey with the server's RSA or ECDSA key (as ssh-keyscan -t rsa or
    dropbearkey -y shows it), while the key exchange prefers ed25519: that key is asked
    for and installed through; keytool refused the host."""
    server: Sshd | Dropbear
    if peer == "sshd":
        server = copyid_sshd(tmp_path / "sshd", [account])
    else:
        server = Dropbear(tmp_path / "db")
    with server:
        scanned = run([require("ssh-keyscan"), "-t", kind, "-p", str(server.port), "127.0.0.1"])
        pin = run([require("ssh-keygen"), "-lf", "-"], input=scanned.stdout).stdout.split()[1]
        client = make_client(tmp_path)
        client.known_hosts.write_text("")  # the pin alone vouches for the server
        pinned = copy_id(client, "--expect-hostkey", pin, "-p", server.port, dest(account),
                         password=account.password)  # fmt: skip
        assert pinned.returncode == 0, pinned.stderr
        assert "verified" in pinned.stdout
        keys = account.home / ".ssh" / "authorized_keys"
        assert keys.read_bytes() == client.pub_line()
        # the pin stood for ssh's "yes": the key is recorded as ssh-keyscan shows it,
        # and real ssh, checking strictly, then knows the server
        scanned_line = next(x for x in scanned.stdout.splitlines() if not x.startswith("#"))
        assert client.known_hosts.read_text() == scanned_line + "\n"
        assert "Permanently added" in pinned.stderr
        login = ssh_login(server.port, client.known_hosts, account.name, client.key, "echo ok")
        assert (login.returncode, login.stdout) == (0, "ok\n"), login.stderr
        wrong = copy_id(client, "--expect-hostkey", "SHA256:" + "A" * 43, "-p", server.port,
                        dest(account), password=account.password)  # fmt: skip
        assert "not the expected" in assert_clean_error(wrong)

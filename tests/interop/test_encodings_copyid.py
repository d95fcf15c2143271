"""keytool copy-id with a target whose name is not UTF-8, through the shell and over
SFTP, against a real sshd whose AuthorizedKeysFile names that very file: the name's
bytes reach the server as given, the file is made under them (mode 600), real ``ssh
-i NEWKEY -o BatchMode=yes`` then logs in, and the messages show the name escaped
(``\\351``) as OpenSSH's tools show such names. Names read back from the server (a
link followed) and the diagnosis after a refusal keep the bytes too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli import assert_clean_error
from tests.interop.clienthelp import Account
from tests.interop.copyidhelp import copy_id, copyid_sshd, make_client, mode, owned_by, ssh_login
from tests.peers import Sshd

NAME = b"caf\xe9"  # Latin-1 "café": not UTF-8
SHOWN = "caf\\351"


def dest(account: Account) -> str:
    return f"{account.name}@127.0.0.1"


def reading(server: Sshd, keys_file: bytes) -> Sshd:
    """``server`` with its AuthorizedKeysFile set to ``keys_file``, byte for byte (in a
    file its config includes: the config itself is read back as UTF-8 text)."""
    extra = server.folder / "keys_file.conf"
    extra.write_bytes(b"AuthorizedKeysFile " + keys_file + b"\n")
    config = server.config.read_text()
    line = "AuthorizedKeysFile .ssh/authorized_keys\n"
    assert line in config
    server.config.write_text(config.replace(line, f"Include {extra}\n"))
    return server


def key_folder(account: Account, folder_mode: int = 0o700) -> Path:
    folder = account.home / ".ssh"
    folder.mkdir(mode=folder_mode)
    folder.chmod(folder_mode)
    os.chown(folder, account.uid, account.gid)
    return folder


@pytest.mark.parametrize("sftp", [False, True])
@pytest.mark.parametrize("absolute", [False, True])
def test_installed_under_the_exact_bytes(
    tmp_path: Path, account: Account, sftp: bool, absolute: bool
) -> None:
    folder = os.fsencode(account.home) + b"/.ssh/" if absolute else b".ssh/"
    with reading(copyid_sshd(tmp_path / "sshd", [account]), folder + NAME) as server:
        client = make_client(tmp_path, server)
        flags = ["-s"] if sftp else []
        result = copy_id(
            client, *flags, "-t", os.fsdecode(folder + NAME), "-p", server.port, dest(account),
            password=account.password,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"1 key added to {os.fsdecode(folder)}{SHOWN}" in result.stdout, result.stdout
        assert "verified: logged in with the new key" in result.stdout, result.stdout
        ssh_dir = account.home / ".ssh"
        # the one file made, its name the bytes given: no lock or temp file left
        assert os.listdir(os.fsencode(ssh_dir)) == [NAME]
        keys = Path(os.fsdecode(os.fsencode(ssh_dir) + b"/" + NAME))
        assert keys.read_bytes() == client.pub_line()
        assert mode(keys) == 0o600 and mode(ssh_dir) == 0o700
        assert owned_by(keys, account) and owned_by(ssh_dir, account)
        login = ssh_login(server.port, client.known_hosts, account.name, client.key, "echo in")
        assert login.returncode == 0, login.stderr
        assert login.stdout == "in\n"

        # again: the server takes the key already, nothing changes
        again = copy_id(client, *flags, "-t", os.fsdecode(folder + NAME), "-p", server.port,
                        dest(account))  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "already there" in again.stdout
        assert keys.read_bytes() == client.pub_line()


@pytest.mark.parametrize("sftp", [False, True])
def test_a_link_to_such_a_name_is_followed(tmp_path: Path, account: Account, sftp: bool) -> None:
    """The default target is a link to the file: the server names the file it leads
    to (readlink -f, SFTP realpath), and that name's bytes are what is written."""
    ssh_dir = key_folder(account)
    link = ssh_dir / "authorized_keys"
    os.symlink(NAME, os.fsencode(link))
    os.lchown(link, account.uid, account.gid)
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        flags = ["-s"] if sftp else []
        result = copy_id(client, *flags, "-p", server.port, dest(account),
                         password=account.password)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"1 key added to {account.home}/.ssh/{SHOWN}" in result.stdout, result.stdout
        assert "verified: logged in with the new key" in result.stdout, result.stdout
        assert link.is_symlink() and os.readlink(os.fsencode(link)) == NAME
        assert sorted(os.listdir(os.fsencode(ssh_dir))) == [b"authorized_keys", NAME]
        keys = Path(os.fsdecode(os.fsencode(ssh_dir) + b"/" + NAME))
        assert keys.read_bytes() == client.pub_line()
        assert mode(keys) == 0o600
        assert ssh_login(server.port, client.known_hosts, account.name, client.key).returncode == 0


@pytest.mark.parametrize("sftp", [False, True])
def test_refusal_diagnosed_under_the_exact_bytes(
    tmp_path: Path, account: Account, sftp: bool
) -> None:
    """The file is there already, writable by others: the key goes in (its mode is
    kept) and sshd's StrictModes refuses it; the diagnosis finds the file's mode by its
    own name and says so."""
    ssh_dir = key_folder(account)
    keys = Path(os.fsdecode(os.fsencode(ssh_dir) + b"/" + NAME))
    keys.write_bytes(b"")
    keys.chmod(0o606)
    os.chown(keys, account.uid, account.gid)
    with reading(copyid_sshd(tmp_path / "sshd", [account]), b".ssh/" + NAME) as server:
        client = make_client(tmp_path, server)
        flags = ["-s"] if sftp else []
        result = copy_id(
            client, *flags, "-t", os.fsdecode(b".ssh/" + NAME), "-p", server.port, dest(account),
            password=account.password,
        )  # fmt: skip
        line = assert_clean_error(result)
        assert f"the key is in .ssh/{SHOWN} but the server refuses it" in line, line
        assert f"StrictModes: .ssh/{SHOWN} is writable by group or others (mode 0606)" in line
        assert keys.read_bytes() == client.pub_line()
        assert os.listdir(os.fsencode(ssh_dir)) == [NAME]

"""keytool copy-id and the options of an authorized_keys line, against sshd: a key
behind options that end at a TAB is still that key (sshd takes it, --remove finds it),
and a from= list with commas inside its quotes is named whole when it explains why
sshd refuses the key."""

from __future__ import annotations

from pathlib import Path

from tests.cli import assert_clean_error
from tests.interop.clienthelp import Account, keygen
from tests.interop.copyidhelp import copy_id, copyid_sshd, make_client, put_keys, ssh_login


def dest(account: Account) -> str:
    return f"{account.name}@127.0.0.1"


def test_remove_finds_a_key_whose_options_end_at_a_tab(tmp_path: Path, account: Account) -> None:
    """``no-pty<TAB>ssh-ed25519 AAAA... comment``: sshd reads no-pty as the options
    and logs the key in; --remove takes that line out, and only that line."""
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        other = keygen(tmp_path / "other", "ed25519", "other")
        other_line = Path(f"{other}.pub").read_bytes()
        before = b"# first\n" + other_line
        after = b"restrict\t" + other_line.replace(b"other", b"again") + b"# last\n"
        keys = put_keys(account, before + b"no-pty\t" + client.pub_line() + after)
        # sshd takes the line: the key logs in
        login = ssh_login(server.port, client.known_hosts, account.name, client.key, "echo in")
        assert (login.returncode, login.stdout) == (0, "in\n"), login.stderr
        result = copy_id(
            client,
            "--remove",
            "-i",
            client.pub,
            "-p",
            str(server.port),
            dest(account),
            password=account.password,
            login_key=keygen(tmp_path / "unknown", "ed25519"),
        )
        assert result.returncode == 0, result.stderr
        assert "removed" in result.stdout, result.stdout
        assert keys.read_bytes() == before + after
        refused = ssh_login(server.port, client.known_hosts, account.name, client.key)
        assert refused.returncode == 255, refused.stderr
        assert "Permission denied" in refused.stderr
        assert ssh_login(server.port, client.known_hosts, account.name, other).returncode == 0


def test_a_from_list_with_commas_is_named_whole(tmp_path: Path, account: Account) -> None:
    """The new key is in the file under from="192.0.2.1,198.51.100.7" (neither is
    127.0.0.1): sshd refuses it from here, and copy-id names that option as written,
    not cut at its comma."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        option = b'from="192.0.2.1,198.51.100.7"'
        text = Path(f"{login}.pub").read_bytes() + option + b",no-pty " + client.pub_line()
        keys = put_keys(account, text)
        refused = ssh_login(server.port, client.known_hosts, account.name, client.key)
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
        ours = copy_id(client, "-p", str(server.port), dest(account), login_key=login)
        line = assert_clean_error(ours)
        assert option.decode() + " (install it plainly with -f)" in line, line
        assert "no-pty" not in line
        assert keys.read_bytes() == text

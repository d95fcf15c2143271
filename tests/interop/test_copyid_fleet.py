"""copy-id on several hosts at once: a summary table, one host's failure never stops the
others, and sshd dropping connections past MaxStartups is retried, not reported."""

from __future__ import annotations

import secrets
from contextlib import ExitStack
from pathlib import Path

from tests.interop.clienthelp import keygen, throwaway_account
from tests.interop.copyidhelp import (
    copy_id,
    copyid_sshd,
    make_client,
    mode,
    put_keys,
    ssh_login,
)
from tests.peers import free_port, user_db


def test_fleet_table_and_failures_do_not_stop_others(tmp_path: Path) -> None:
    with ExitStack() as stack:
        accounts = [stack.enter_context(throwaway_account()) for _ in range(2)]
        password = secrets.token_urlsafe(12)  # one password for the fleet
        for account in accounts:
            user_db(["chpasswd"], input=f"{account.name}:{password}\n").check_returncode()
        servers = [
            stack.enter_context(copyid_sshd(tmp_path / f"sshd{i}", [a]))
            for i, a in enumerate(accounts)
        ]
        client = make_client(tmp_path, *servers)
        dead = free_port()  # nothing listens there
        live = [
            f"ssh://{a.name}@127.0.0.1:{s.port}" for a, s in zip(accounts, servers, strict=True)
        ]
        hosts = client.home / "hosts"
        hosts.write_text(
            f"# the fleet\n{live[0]}\n\nssh://{accounts[1].name}@127.0.0.1:{dead}   # down\n"
        )
        result = copy_id(client, "--hosts", hosts, live[1], password=password)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        rows = result.stdout.splitlines()
        assert rows[0].split() == ["HOST", "RESULT", "DETAIL"]
        # hosts given as arguments first, then those of the file, in order
        assert [row.split()[:2] for row in rows[1:4]] == [
            [live[1], "installed"],
            [live[0], "installed"],
            [f"ssh://{accounts[1].name}@127.0.0.1:{dead}", "failed"],
        ]
        assert "Connection refused" in rows[3]
        assert rows[-1] == "3 hosts: 2 installed, 1 failed"
        for account, server in zip(accounts, servers, strict=True):
            keys = account.home / ".ssh" / "authorized_keys"
            assert keys.read_bytes() == client.pub_line()
            assert (mode(keys.parent), mode(keys)) == (0o700, 0o600)
            login = ssh_login(server.port, client.known_hosts, account.name, client.key)
            assert login.returncode == 0, login.stderr

        # all there now: exit status 0, and no password needed
        again = copy_id(client, *live)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[-1] == "2 hosts: 2 already there"


def test_maxstartups_drops_are_retried(tmp_path: Path) -> None:
    with ExitStack() as stack:
        accounts = [stack.enter_context(throwaway_account()) for _ in range(6)]
        # sshd drops every unauthenticated connection beyond the second
        server = stack.enter_context(copyid_sshd(tmp_path / "sshd", accounts, MaxStartups="2"))
        client = make_client(tmp_path, server)
        login = keygen(client.home / "login", "ed25519", "login")
        for account in accounts:
            put_keys(account, Path(f"{login}.pub").read_bytes())
        # 12 entries, each account in two forms (one listed twice would be done once)
        hosts = [h for a in accounts for h in (f"{a.name}@127.0.0.1", f"ssh://{a.name}@127.0.0.1")]
        result = copy_id(client, "-j", "12", "-p", server.port, *hosts, login_key=login)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "12 hosts:" in result.stdout and "failed" not in result.stdout
        log = server.log.read_text(errors="replace")
        assert "past MaxStartups" in log  # the server did drop some
        for account in accounts:
            keys = account.home / ".ssh" / "authorized_keys"
            assert keys.read_bytes() == Path(f"{login}.pub").read_bytes() + client.pub_line()
            assert (
                ssh_login(server.port, client.known_hosts, account.name, client.key).returncode == 0
            )

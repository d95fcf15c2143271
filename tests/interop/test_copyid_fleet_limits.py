"""copy-id on a fleet under a low open-file limit (ulimit -n), against a real sshd:
the soft limit is raised as far as the fleet needs, -j is lowered (said once) when
the hard limit allows fewer hosts at once, and a process that runs out of file
descriptors all the same fails those hosts with one clear reason: never a traceback,
a refusal that is not the server's, a hang, or a run without its summary table."""

from __future__ import annotations

import resource
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.agenthelp import RunningAgent, openssh_agent
from tests.interop.clienthelp import KEYTOOL, Account, keygen, throwaway_account
from tests.interop.copyidhelp import Client, copyid_sshd, make_client, put_keys, ssh_login
from tests.peers import Sshd, require

HOSTS = 30
#: a run may take this long on a loaded machine; the hang this guards against was a
#: host waiting for its channel until the 60 s timeout
BOUND = 45.0
OUT_OF_FILES = "too many open files"


@dataclass
class Fleet:
    accounts: list[Account]
    server: Sshd
    client: Client
    login: Path  # the key that logs in (held by the agent)
    agent: RunningAgent

    def reset(self) -> None:
        """Every account with the login key alone in its authorized_keys."""
        for account in self.accounts:
            put_keys(account, self.login_line())

    def login_line(self) -> bytes:
        return Path(f"{self.login}.pub").read_bytes()

    def hosts_file(self, count: int) -> Path:
        hosts = self.client.home / f"hosts{count}"
        port = self.server.port
        hosts.write_text(
            "".join(f"ssh://{a.name}@127.0.0.1:{port}\n" for a in self.accounts[:count])
        )
        return hosts


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    folder = tmp_path_factory.mktemp("fleet-limits")
    with ExitStack() as stack:
        accounts = [stack.enter_context(throwaway_account()) for _ in range(HOSTS)]
        server = stack.enter_context(
            copyid_sshd(folder / "sshd", accounts, MaxStartups="200:30:400", LogLevel="INFO")
        )
        client = make_client(folder, server)
        login = keygen(client.home / "login", "ed25519", "login")
        agent = stack.enter_context(openssh_agent(folder / "agent"))
        added = subprocess.run(
            [require("ssh-add"), "-q", str(login)], env=agent.env(), capture_output=True
        )
        assert added.returncode == 0, added.stderr
        yield Fleet(accounts, server, client, login, agent)


def open_file_limit(soft: int, hard: int | None) -> Callable[[], None]:
    """A preexec_fn setting the child's open-file limit (``hard`` None: kept)."""

    def lower() -> None:
        kept = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, kept if hard is None else hard))

    return lower


def copy_id_limited(
    fleet: Fleet, soft: int, hard: int | None, jobs: int, count: int
) -> tuple[subprocess.CompletedProcess[str], float]:
    """copy-id on the first ``count`` accounts (the agent logs in) with the open-file
    limit at ``soft`` (and ``hard``; None keeps it); its result and how long it took."""
    client = fleet.client
    env = fleet.agent.env()
    env["HOME"] = str(client.home)
    args = [
        *KEYTOOL, "copy-id", "-F", "none", "-o", f"UserKnownHostsFile={client.known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-i", str(client.pub),
        "-j", str(jobs), "--hosts", str(fleet.hosts_file(count)),
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(
        args, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
        preexec_fn=open_file_limit(soft, hard), timeout=90, check=False,
    )  # fmt: skip
    return result, time.monotonic() - started


def rows_of(result: subprocess.CompletedProcess[str], count: int) -> dict[str, tuple[str, str]]:
    """The summary table's rows by account name: (result, detail); the table and
    its count line must be there."""
    lines = result.stdout.splitlines()
    assert lines and lines[0].split() == ["HOST", "RESULT", "DETAIL"], result.stdout
    assert lines[-1].startswith(f"{count} hosts: "), result.stdout
    rows = {}
    for line in lines[1:-1]:
        host, status, *detail = line.split(None, 2)
        name = host.removeprefix("ssh://").split("@", 1)[0]
        if status == "already":  # "already there"
            status = "already there"
        rows[name] = (status, detail[0] if detail else "")
    assert len(rows) == count, result.stdout
    return rows


def check_installed(fleet: Fleet, rows: dict[str, tuple[str, str]]) -> None:
    """Installed hosts hold the new key after the login key, byte for byte; failed ones
    failed for want of file descriptors and were left as they were."""
    expected = fleet.login_line() + fleet.client.pub_line()
    for account in fleet.accounts:
        if account.name not in rows:
            continue
        status, detail = rows[account.name]
        keys = (account.home / ".ssh" / "authorized_keys").read_bytes()
        if status == "installed":
            assert keys == expected, account.name
            assert "verified: logged in with the new key" in detail, detail
        else:
            assert status == "failed" and detail.startswith(OUT_OF_FILES), (status, detail)
            assert keys == fleet.login_line(), account.name


def test_the_soft_limit_is_raised_for_the_fleet(fleet: Fleet) -> None:
    """ulimit -Sn 64 and -j 30: keytool ran out of files (a KeyError traceback from a
    password database lookup, or hosts "failed: Permission denied" when the agent
    could not be reached); the soft limit is raised as ssh-keyscan raises it."""
    fleet.reset()
    result, took = copy_id_limited(fleet, 64, None, HOSTS, HOSTS)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert took < BOUND
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "lowered" not in result.stderr
    rows = rows_of(result, HOSTS)
    assert {status for status, _ in rows.values()} == {"installed"}, result.stdout
    check_installed(fleet, rows)
    for account in fleet.accounts[:3]:
        login = ssh_login(
            fleet.server.port, fleet.client.known_hosts, account.name, fleet.client.key
        )
        assert login.returncode == 0, login.stderr


def test_jobs_are_lowered_to_what_the_hard_limit_allows(fleet: Fleet) -> None:
    """ulimit -n 64 (soft and hard): -j 30 does not fit; it is lowered, said once,
    and every host is done."""
    fleet.reset()
    result, took = copy_id_limited(fleet, 64, 64, HOSTS, HOSTS)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert took < BOUND
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lowered = [line for line in result.stderr.splitlines() if "lowered" in line]
    assert len(lowered) == 1 and lowered[0].startswith(f"keytool: -j {HOSTS} lowered to ")
    assert "ulimit -n" in lowered[0]
    rows = rows_of(result, HOSTS)
    assert {status for status, _ in rows.values()} == {"installed"}, result.stdout
    check_installed(fleet, rows)
    account = fleet.accounts[-1]
    login = ssh_login(fleet.server.port, fleet.client.known_hosts, account.name, fleet.client.key)
    assert login.returncode == 0, login.stderr


@pytest.mark.parametrize("limit", range(8, 13))
def test_running_out_of_files_fails_hosts_clearly(fleet: Fleet, limit: int) -> None:
    """Limits so low that a single host may not have the files it needs: each host is
    installed (and verified) or fails with "too many open files"; the summary is
    printed, the exit status says whether all were done, nothing hangs."""
    count = 4
    fleet.reset()
    result, took = copy_id_limited(fleet, limit, limit, count, count)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert took < BOUND
    rows = rows_of(result, count)
    check_installed(fleet, rows)
    statuses = {status for status, _ in rows.values()}
    assert result.returncode == (0 if statuses == {"installed"} else 1), result.stdout

"""copy-id's prompts on a terminal while many hosts run: a password prompt holds no
other host up, and ^C at it ends the run at once (the echo back on), naming the hosts
already done, as ssh ends at once at its own password prompt."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.interop.clienthelp import KEYTOOL, Account, base_env, keygen, throwaway_account
from tests.interop.copyidhelp import Client, copyid_sshd, make_client, put_keys, ssh_login
from tests.interop.ptyhelp import Pty, reading_terminal
from tests.peers import Sshd, free_port


def _keytool(client: Client, login_key: Path, *args: str) -> list[str]:
    return [
        *KEYTOOL,
        "copy-id",
        "-F",
        "none",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        f"UserKnownHostsFile={client.known_hosts}",
        "-o",
        f"IdentityFile={login_key}",
        "-i",
        str(client.pub),
        *args,
    ]


def _env(client: Client) -> dict[str, str]:
    env = base_env()
    env["HOME"] = str(client.home)
    return env


def _ports_done(log: Path, user: str) -> set[int]:
    """The ports of an sshd whose connections for ``user`` the client ended itself,
    with a disconnect message (its work there done), as the sshd's log tells: "Connection
    from ... port C on ... port S", later "Disconnected from [authenticating] user U ...
    port C". A connection cut off, or closed otherwise (as a port probe is), does not
    count. A client port may serve two connections to two ports: they end in the order
    begun."""
    text = log.read_text(errors="replace")
    begun: dict[str, list[int]] = {}
    done: set[int] = set()
    pattern = re.compile(
        r"Connection from \S+ port (\d+) on \S+ port (\d+)"
        rf"|Disconnected from (?:authenticating )?user {user} \S+ port (\d+)"
        r"|(?:Connection closed by|Connection reset by|Timeout before authentication for"
        r"|Disconnected from) .*?port (\d+)"
    )
    for found in pattern.finditer(text):
        client, server, ended, other = found.groups()
        if client is not None:
            begun.setdefault(client, []).append(int(server))
        elif begun.get(ended or other):
            port = begun[ended or other].pop(0)
            if ended is not None:
                done.add(port)
    return done


def test_a_password_prompt_holds_no_other_host_up(tmp_path: Path) -> None:
    with ExitStack() as stack:
        asks, quick = (stack.enter_context(throwaway_account()) for _ in range(2))
        # the second server cuts off a client that has not logged in after 15 s: a host
        # held up behind the prompt halfway through its login would not end its work
        # (not 2 s: a first host's connection is begun while keytool loads, and on a
        # loaded machine that alone can take seconds)
        first = stack.enter_context(copyid_sshd(tmp_path / "s1", [asks]))
        # the second one on 16 ports: 16 host entries (one listed twice is done once)
        grace = copyid_sshd(tmp_path / "s2", [quick], LoginGraceTime="15")
        ports = [free_port() for _ in range(15)]
        with grace.config.open("a") as config:
            config.writelines(f"ListenAddress 127.0.0.1:{port}\n" for port in ports)
        second = stack.enter_context(grace)
        client = make_client(tmp_path, first, second)
        key_part = second.known_hosts_line().split(" ", 1)[1]
        with client.known_hosts.open("a") as known:
            known.writelines(f"[127.0.0.1]:{port} {key_part}" for port in ports)
        login = keygen(client.home / "login", "ed25519", "login")
        put_keys(quick, Path(f"{login}.pub").read_bytes())
        # one host asks; the others go on, one after the other, while it does
        hosts = [
            f"ssh://{asks.name}@127.0.0.1:{first.port}",
            *[f"ssh://{quick.name}@127.0.0.1:{port}" for port in (second.port, *ports)],
        ]
        run = Pty(_keytool(client, login, "-j", "2", *hosts), _env(client))
        try:
            assert run.read_until(b"password: ", 30), run.out
            asked = len(run.out)
            # while the prompt stays open (nothing more written, no answer given), the
            # other hosts are done, one after the other: each of the 16 ports of the
            # second server had its connections ended by keytool when done there
            everyone = {second.port, *ports}
            deadline = time.monotonic() + 60
            while _ports_done(second.log, quick.name) != everyone:
                assert time.monotonic() < deadline, (
                    sorted(everyone - _ports_done(second.log, quick.name)),
                    run.out,
                )
                run.read_for(0.1)
                assert len(run.out) == asked, run.out
            run.read_for(0.1)
            assert len(run.out) == asked and run.out.endswith(b"password: "), run.out
            os.write(run.fd, asks.password.encode() + b"\n")
            assert run.wait(60) == 0, run.out
        finally:
            run.close()
        text = run.out.decode(errors="replace")
        assert "17 hosts: 2 installed, 15 already there" in text, text
        # as the real ssh sees it: both accounts take the new key now
        for account, server in ((asks, first), (quick, second)):
            done = ssh_login(server.port, client.known_hosts, account.name, client.key)
            assert done.returncode == 0, done.stderr


def _ssh_interrupted_at_password(port: int, user: str, client: Client) -> tuple[int | None, bool]:
    """What ssh does on ^C at its password prompt: its status, and the echo after."""
    argv = [
        "ssh",
        "-F",
        "none",
        "-o",
        f"UserKnownHostsFile={client.known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "PubkeyAuthentication=no",
        "-p",
        str(port),
        f"{user}@127.0.0.1",
        "true",
    ]
    run = Pty(argv, _env(client))
    try:
        assert run.read_until(b"password: ", 30), run.out
        os.write(run.fd, b"\x03")
        # ends without an Enter (a loaded machine may be slow)
        status = run.wait(20, kill=False)
        if status is None:
            # seen twice in many loaded runs: the reference ssh still at its prompt after
            # ^C; a user presses it again (keytool's side must end at the first)
            os.write(run.fd, b"\x03")
            status = run.wait(20)
        return status, run.echo()
    finally:
        run.close()


class _TwoHosts(NamedTuple):
    """Two accounts on one sshd: ``quick`` takes the login key, ``asks`` a password."""

    asks: Account
    quick: Account
    server: Sshd
    client: Client
    login: Path
    hosts: list[str]  # quick's first: done before asks' question comes


@contextmanager
def _two_hosts(tmp_path: Path) -> Iterator[_TwoHosts]:
    with ExitStack() as stack:
        asks, quick = (stack.enter_context(throwaway_account()) for _ in range(2))
        server = stack.enter_context(copyid_sshd(tmp_path / "s", [asks, quick]))
        client = make_client(tmp_path, server)
        login = keygen(client.home / "login", "ed25519", "login")
        put_keys(quick, Path(f"{login}.pub").read_bytes())
        hosts = [
            f"ssh://{quick.name}@127.0.0.1:{server.port}",
            f"ssh://{asks.name}@127.0.0.1:{server.port}",
        ]
        yield _TwoHosts(asks, quick, server, client, login, hosts)


def test_ctrl_c_at_a_password_prompt_ends_the_run_at_once(tmp_path: Path) -> None:
    with _two_hosts(tmp_path) as (asks, quick, server, client, login, hosts):
        ssh_status, ssh_echo = _ssh_interrupted_at_password(server.port, asks.name, client)
        assert ssh_status is not None and ssh_echo  # ssh: ends at once, echo back on

        run = Pty(_keytool(client, login, "-j", "1", *hosts), _env(client))
        try:
            assert run.read_until(b"password: ", 30), run.out
            os.write(run.fd, b"\x03")
            status = run.wait(20)  # not waiting for Enter (which never comes)
            assert status == ssh_status == -signal.SIGINT, run.out  # both end by the signal
            assert run.echo() == ssh_echo
        finally:
            run.close()
        text = run.out.decode(errors="replace")
        # the host done before the interrupt is named, the other marked
        rows = [line.split()[:2] for line in text.splitlines() if line.startswith("ssh://")]
        assert rows == [[hosts[0], "installed"], [hosts[1], "interrupted"]], text
        assert "interrupted" in text and "2 hosts: 1 installed, 1 interrupted" in text
        assert ssh_login(server.port, client.known_hosts, quick.name, client.key).returncode == 0


def test_sigterm_names_the_hosts_done(tmp_path: Path) -> None:
    with _two_hosts(tmp_path) as (_asks, _quick, _server, client, login, hosts):
        run = Pty(_keytool(client, login, "-j", "1", *hosts), _env(client))
        try:
            assert run.read_until(b"password: ", 30), run.out
            os.kill(run.pid, signal.SIGTERM)
            assert run.wait(20) == -signal.SIGTERM, run.out  # ended by it, the table said
            assert run.echo()
        finally:
            run.close()
        text = run.out.decode(errors="replace")
        assert f"{hosts[0]}" in text and "1 installed, 1 interrupted" in text, text


def _signalled_at_password(
    argv: list[str], env: dict[str, str], signum: int, blocking: bool
) -> tuple[int, bool]:
    """The status of ``argv`` ended by ``signum`` at its password prompt, and whether
    the terminal echoes after. ``blocking``: the program reads the terminal in a
    blocking read begun after the prompt is written (ssh's readpassphrase sees a signal
    before that read only once something is typed): the signal waits for the read.
    keytool's copy-id catches the signals before it writes the prompt."""
    run = Pty(argv, env)
    try:
        assert run.read_until(b"password: ", 30), run.out
        assert not blocking or reading_terminal(run.pid), run.out
        os.kill(run.pid, signum)
        status = run.wait(20)
        assert status is not None, run.out
        return status, run.echo()
    finally:
        run.close()


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGQUIT], ids=str)
def test_a_hang_up_at_a_password_prompt_gives_the_echo_back_as_ssh(
    tmp_path: Path, signum: int
) -> None:
    with _two_hosts(tmp_path) as (asks, _quick, server, client, login, hosts):
        reference = [
            "ssh", "-F", "none", "-o", f"UserKnownHostsFile={client.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no",
            "-p", str(server.port), f"{asks.name}@127.0.0.1", "true",
        ]  # fmt: skip
        ssh = _signalled_at_password(reference, _env(client), signum, blocking=True)
        assert ssh == (-signum, True)  # ssh: ended by the signal, the echo back
        ours = _keytool(client, login, "-j", "1", *hosts)
        assert _signalled_at_password(ours, _env(client), signum, blocking=False) == ssh

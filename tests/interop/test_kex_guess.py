"""A server that sets first_kex_packet_follows in its KEXINIT and sends the key
exchange packet it guessed (RFC 4253 §7.1): keytool exec against ssh, keytool keyscan
against ssh-keyscan, on the same test server (tests/interop/rawserver.py).

The guess is right only when both sides list the same key exchange method first and
the same host key algorithm first; a wrong guess's packet is ignored, a right one's is
the reply. keytool used to judge the guess by what was negotiated: a server listing
curve25519-sha256 first was taken as right although keytool lists mlkem768x25519-sha256
first, and its junk packet as the ECDH reply, where ssh logs in."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.interop.rawserver import OUTPUT, Plan, RawServer, raw_server
from tests.peers import require

ONLY_CURVE25519 = ("-o", "KexAlgorithms=curve25519-sha256")
ONLY_ED25519 = ("-o", "HostKeyAlgorithms=ssh-ed25519")

Outcome = tuple[int | str, bytes]


def _outcome(args: list[str], env: dict[str, str]) -> Outcome:
    try:
        done = subprocess.run(
            args, capture_output=True, stdin=subprocess.DEVNULL, env=env, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "timed out", b""
    assert b"Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout


def _exec_both(server: RawServer, home: Path, *options: str) -> dict[str, Outcome]:
    home.mkdir(exist_ok=True)
    env = base_env(HOME=str(home))
    seen = {}
    for tool, program in (("ssh", [require("ssh")]), ("keytool", [*KEYTOOL, "exec"])):
        seen[tool] = _outcome(
            [*program, "-F", "none", "-p", str(server.port), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={home / f'known_hosts.{tool}'}",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=accept-new",
             *options, "someone@127.0.0.1", "cmd"],
            env,
        )  # fmt: skip
    return seen


def _scan_both(server: RawServer, home: Path) -> dict[str, Outcome]:
    home.mkdir(exist_ok=True)
    env = base_env(HOME=str(home))
    seen = {}
    for tool, program in (("ssh-keyscan", [require("ssh-keyscan")]),
                          ("keytool", [*KEYTOOL, "keyscan"])):  # fmt: skip
        seen[tool] = _outcome([*program, "-t", "ed25519", "-p", str(server.port), "127.0.0.1"], env)
    return seen


@pytest.mark.parametrize(
    ("options", "plan", "right"),
    [
        # ssh lists sntrup761x25519, keytool mlkem768x25519 first; both then agree on
        # the server's first, curve25519-sha256
        pytest.param(ONLY_ED25519, Plan(), False, id="wrong-first-kex"),
        # both list a host certificate first; the server has only ssh-ed25519
        pytest.param(ONLY_CURVE25519, Plan(), False, id="wrong-first-host-key"),
        # the junk packet is taken as the reply: both give up
        pytest.param((*ONLY_CURVE25519, *ONLY_ED25519), Plan(), True, id="right-junk"),
        # the server's real reply is the packet it guessed: both log in
        pytest.param((*ONLY_CURVE25519, *ONLY_ED25519), Plan(guess=None), True, id="right-reply"),
    ],
)
def test_exec_takes_or_ignores_the_guess_as_ssh(
    tmp_path: Path, options: tuple[str, ...], plan: Plan, right: bool
) -> None:
    with raw_server(plan) as server:
        seen = _exec_both(server, tmp_path / "home", *options)
    # the server saw both clients and the guess was what the case says, for both
    assert [one.guess_is_right() for one in server.seen] == [right, right]
    assert seen["keytool"] == seen["ssh"]
    # and ssh did what the case says: logged in and ran the command, or gave up at the
    # junk taken as the reply
    gave_up = right and plan.guess is not None
    assert seen["ssh"] == ((255, b"") if gave_up else (0, OUTPUT))


@pytest.mark.parametrize(
    ("plan", "right"),
    [
        pytest.param(Plan(), False, id="wrong-first-kex"),
        # the server lists each client's first method first (ssh-keyscan's
        # sntrup761x25519, keytool's mlkem768x25519): the junk is taken as the reply
        pytest.param(Plan(lead_with_clients=True), True, id="right-junk"),
    ],
)
def test_keyscan_takes_or_ignores_the_guess_as_ssh_keyscan(
    tmp_path: Path, plan: Plan, right: bool
) -> None:
    with raw_server(plan) as server:
        seen = _scan_both(server, tmp_path / "home")
    assert [one.guess_is_right() for one in server.seen] == [right, right]
    assert seen["keytool"] == seen["ssh-keyscan"]
    # ssh-keyscan printed the host key (a wrong guess ignored), or nothing
    status, printed = seen["ssh-keyscan"]
    if right:
        assert (status, printed) == (1, b"")
    else:
        assert status == 0 and b" ssh-ed25519 AAAA" in printed

"""Keyboard-interactive with no terminal and no askpass (a script, a cron job), keytool
beside ssh: unless BatchMode is set, ssh still tries the method, shows the server's
name and instruction, and answers each prompt with an empty string, which the server
counts as a failed attempt; a round that asks nothing (a push to a phone, a notice)
logs it in. Both clients run in a session of their own, with stdin /dev/null."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, Account, base_env, keygen
from tests.interop.copyidhelp import PAM_KBDINT, copyid_sshd, make_client, pam_failures
from tests.interop.test_client_peers import _AsyncsshThread
from tests.peers import require

asyncssh = pytest.importorskip("asyncssh")


#: each client, as a script runs it
CLIENTS = {"ssh": ["ssh"], "keytool": [*KEYTOOL, "exec"]}


def no_terminal(tool: str, home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``args`` run by ``tool`` (ssh or ``keytool exec``) with no controlling terminal,
    stdin /dev/null, and no askpass (nor a display for ssh's default one)."""
    env = base_env(HOME=str(home))
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    program = [require("ssh")] if tool == "ssh" else CLIENTS[tool]
    return subprocess.run(
        [*program, *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
        timeout=90,
        check=False,
    )


class _KbdintServer(asyncssh.SSHServer):  # type: ignore[misc]
    """Refuses keys; its keyboard-interactive round asks ``prompts`` (none: a push to
    approve on a phone) and lets the user in only when there were none. ``record``
    gets what each client sent."""

    def __init__(self, record: list[str], prompts: list[tuple[str, bool]]) -> None:
        self.record = record
        self.prompts = prompts

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: object) -> bool:
        self.record.append("publickey")
        return False

    def kbdint_auth_supported(self) -> bool:
        return True

    def get_kbdint_challenge(self, username: str, lang: str, submethods: str) -> object:
        self.record.append("keyboard-interactive")
        return ("Push sent", "Approve the login on your phone", "", self.prompts)

    def validate_kbdint_response(self, username: str, responses: list[str]) -> bool:
        self.record.append(f"answers {list(responses)}")
        return not self.prompts


TWO_PROMPTS = [("Password: ", False), ("Code: ", True)]


@pytest.mark.parametrize(
    ("prompts", "flags"),
    [([], ()), ([], ("-q",)), ([], ("-o", "BatchMode=yes")), (TWO_PROMPTS, ())],
    ids=["push", "push-quiet", "push-batchmode", "prompts"],
)
def test_keyboard_interactive_without_a_terminal_as_ssh(
    tmp_path: Path, prompts: list[tuple[str, bool]], flags: tuple[str, ...]
) -> None:
    """A round of no prompts: ssh logs in without a terminal, showing the name and
    instruction (not with -q); with BatchMode it never tries the method. A round with
    prompts: each gets an empty answer, round after round. keytool used to try nothing
    at all ("tried: nothing we could offer")."""
    key = keygen(tmp_path / "id")
    home = tmp_path / "home"
    home.mkdir()
    record: list[str] = []
    seen: dict[str, list[str]] = {}
    runs = {}
    with _AsyncsshThread(lambda: _KbdintServer(record, prompts)) as server:
        known = server.known_hosts(tmp_path)
        args = ["-F", "none", "-p", str(server.port), "-i", str(key),
                "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known}",
                "-o", "GlobalKnownHostsFile=/dev/null", *flags,
                "alice@127.0.0.1", "hello"]  # fmt: skip
        for tool in CLIENTS:
            runs[tool] = no_terminal(tool, home, *args)
            seen[tool] = list(record)
            record.clear()
    ssh, ours = runs["ssh"], runs["keytool"]
    assert seen["keytool"] == seen["ssh"]
    assert (ours.returncode, ours.stdout) == (ssh.returncode, ssh.stdout), ours.stderr
    shown = b"Push sent\r\nApprove the login on your phone\r\n"
    if "BatchMode=yes" in flags:
        assert ssh.returncode == 255 and seen["ssh"] == ["publickey"]
        assert b"Permission denied" in ours.stderr
    elif prompts:
        assert ssh.returncode == 255
        assert seen["ssh"] == ["publickey", *["keyboard-interactive", "answers ['', '']"] * 3]
        # the name and instruction each round, then the refusal (worded each its way)
        assert ssh.stderr.count(shown) == 3 and b"Permission denied" in ssh.stderr
        assert ours.stderr.startswith(shown.replace(b"\r\n", b"\n") * 3)
        assert b"Permission denied" in ours.stderr
    else:
        assert (ssh.returncode, ssh.stdout) == (0, b"ran hello\n"), ssh.stderr
        assert seen["ssh"] == ["publickey", "keyboard-interactive", "answers []"]
        assert ssh.stderr == (b"" if flags else shown)
        # ssh ends its own lines in "\r\n"; keytool in "\n"
        assert ours.stderr == ssh.stderr.replace(b"\r\n", b"\n")


def _kbdint_started(log: Path, start: int) -> int:
    return log.read_bytes()[start:].count(b"Postponed keyboard-interactive for ")


def test_pam_prompts_get_empty_answers_as_many_times_as_from_ssh(
    tmp_path: Path, account: Account
) -> None:
    """sshd with PAM asking its password by keyboard-interactive, no key accepted: with
    no one to ask, ssh answers each round with an empty string, up to
    NumberOfPasswordPrompts rounds; each is a PAM failure (pam_faillock counts them),
    and keytool must cause as many, neither more nor none."""
    with copyid_sshd(tmp_path / "sshd", [account], **PAM_KBDINT) as server:
        client = make_client(tmp_path, server)
        args = ["-F", "none", "-p", str(server.port), "-i", str(client.key),
                "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={client.known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null",
                f"{account.name}@127.0.0.1", "true"]  # fmt: skip
        counted: dict[str, tuple[int, int, int]] = {}
        for tool in CLIENTS:
            start = len(server.log.read_bytes())
            result = no_terminal(tool, client.home, *args)
            assert result.stdout == b""
            assert b"Permission denied" in result.stderr.splitlines()[-1], result.stderr
            counted[tool] = (
                result.returncode,
                pam_failures(server.log, start),
                _kbdint_started(server.log, start),
            )
    # the method started once, then NumberOfPasswordPrompts' rounds, each a PAM failure
    assert counted["ssh"] == (255, 3, 1)
    assert counted["keytool"] == counted["ssh"]

"""User authentication habits of ssh, side by side with ``keytool exec`` against the
same sshd: keyboard-interactive that never asks, PreferredAuthentications' order, a
passphrase typed wrong, passwords that are not UTF-8, and SSH_ASKPASS_REQUIRE."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import (
    KEYTOOL,
    Account,
    base_env,
    install_key,
    keygen,
    throwaway_account,
)
from tests.interop.copyidhelp import copy_id, make_client, ssh_login
from tests.peers import Sshd, require, run

NOT_UTF8 = b"caf\xe9-pw"


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with throwaway_account() as made:
        yield made


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, account: Account) -> Iterator[Sshd]:
    """sshd with password and keyboard-interactive on and no PAM: it offers
    keyboard-interactive and never asks anything by it."""
    options = {
        "AuthorizedKeysFile": ".ssh/authorized_keys",
        "AllowUsers": account.name,
        "PermitRootLogin": "no",
        "PasswordAuthentication": "yes",
        "KbdInteractiveAuthentication": "yes",
    }
    with Sshd(tmp_path_factory.mktemp("authsshd"), options) as started:
        yield started


def _askpass(folder: Path, *answers: bytes) -> dict[str, str]:
    """SSH_ASKPASS (forced) giving ``answers`` in turn (the last one again after that);
    each prompt is logged to folder/asked."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, answer in enumerate(answers):
        (folder / f"answer{number}").write_bytes(answer + b"\n")
    script = folder / "askpass"
    script.write_text(
        "#!/bin/sh\n"
        f'd="{folder}"\n'
        'printf "%s\\n" "$1" >> "$d/asked"\n'
        'n=$(wc -l < "$d/asked")\n'
        f"n=$((n - 1)); if [ $n -ge {len(answers)} ]; then n={len(answers) - 1}; fi\n"
        'cat "$d/answer$n"\n'
    )
    script.chmod(0o755)
    return base_env(SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force")


def _common(server: Sshd, account: Account, known: Path) -> list[str]:
    known.write_text(server.known_hosts_line())
    return ["-F", "none", "-p", str(server.port), "-o", f"UserKnownHostsFile={known}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-l", account.name]  # fmt: skip


def _client(tool: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """ssh or ``keytool exec`` with ``args``, with no terminal to ask on (a session of
    its own), as a script runs them."""
    program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
    return subprocess.run(
        [*program, *args], capture_output=True, env=env, stdin=subprocess.DEVNULL,
        timeout=60, start_new_session=True, check=False,
    )  # fmt: skip


def _side_by_side(
    tmp_path: Path, server: Sshd, account: Account, *args: str, answers: tuple[bytes, ...]
) -> dict[str, tuple[int, bytes, list[str]]]:
    """Each client's status, stdout and the prompts its askpass was given."""
    seen = {}
    for tool in ("ssh", "keytool"):
        folder = tmp_path / tool
        env = _askpass(folder, *answers)
        common = _common(server, account, tmp_path / "known")
        result = _client(tool, [*common, *args], env)
        asked = folder / "asked"
        prompts = asked.read_text().splitlines() if asked.exists() else []
        seen[tool] = (result.returncode, result.stdout, prompts)
    return seen


def _accepted(server: Sshd) -> list[str]:
    return re.findall(r"Accepted (\S+) for", server.log.read_text(errors="replace"))


def test_keyboard_interactive_that_never_asks_leaves_room_for_the_password(
    tmp_path: Path, server: Sshd, account: Account
) -> None:
    """Three keys the server refuses, then keyboard-interactive (offered by an sshd
    without PAM, which never asks anything), then the password: ssh tries
    keyboard-interactive once and asks for the password. keytool tried it three times,
    reached MaxAuthTries and never asked."""
    wrong = [keygen(tmp_path / f"wrong{i}") for i in range(3)]
    keys = [a for key in wrong for a in ("-i", str(key))]
    seen = _side_by_side(
        tmp_path, server, account, "-o", "IdentitiesOnly=yes", *keys, "127.0.0.1", "echo in",
        answers=(account.password.encode(),),
    )  # fmt: skip
    assert seen["keytool"][:2] == seen["ssh"][:2] == (0, b"in\n")
    assert len(seen["keytool"][2]) == len(seen["ssh"][2]) == 1  # one password prompt
    assert _accepted(server)[-2:] == ["password", "password"]


def test_preferred_authentications_order_is_followed(
    tmp_path: Path, server: Sshd, account: Account
) -> None:
    """PreferredAuthentications=password,publickey with a key the server takes: ssh
    asks for the password first and logs in with it; keytool used the key."""
    key = keygen(tmp_path / "good")
    install_key(account, Path(f"{key}.pub"))
    try:
        seen = _side_by_side(
            tmp_path, server, account, "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", "PreferredAuthentications=password,publickey", "127.0.0.1", "echo in",
            answers=(account.password.encode(),),
        )  # fmt: skip
    finally:
        (account.home / ".ssh" / "authorized_keys").unlink()
    assert seen["keytool"] == seen["ssh"]
    assert seen["ssh"][:2] == (0, b"in\n")
    assert _accepted(server)[-2:] == ["password", "password"]


def test_a_wrong_passphrase_is_asked_again(tmp_path: Path, server: Sshd, account: Account) -> None:
    """An encrypted key whose passphrase is typed wrong twice, right the third time:
    ssh asks again (NumberOfPasswordPrompts) and logs in with the key; keytool gave
    the key up after the first answer."""
    key = tmp_path / "locked"
    made = run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "right one", "-f", key])
    made.check_returncode()
    install_key(account, Path(f"{key}.pub"))
    try:
        seen = _side_by_side(
            tmp_path, server, account, "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
            "127.0.0.1", "echo in", answers=(b"wrong", b"wrong again", b"right one"),
        )  # fmt: skip
    finally:
        (account.home / ".ssh" / "authorized_keys").unlink()
    assert seen["keytool"][:2] == seen["ssh"][:2] == (0, b"in\n")
    assert len(seen["keytool"][2]) == len(seen["ssh"][2]) == 3
    assert all("passphrase" in prompt for prompt in seen["keytool"][2])
    assert _accepted(server)[-2:] == ["publickey", "publickey"]


@pytest.fixture
def latin1_password(account: Account) -> Iterator[bytes]:
    """The account's password set, for the test, to bytes that are not UTF-8."""
    chpasswd = [require("chpasswd")]
    subprocess.run(chpasswd, input=account.name.encode() + b":" + NOT_UTF8 + b"\n", check=True)
    try:
        yield NOT_UTF8
    finally:
        entry = f"{account.name}:{account.password}\n".encode()
        subprocess.run(chpasswd, input=entry, check=True)


def test_a_password_that_is_not_utf8_is_sent_as_its_bytes(
    tmp_path: Path, server: Sshd, account: Account, latin1_password: bytes
) -> None:
    """ssh sends the bytes the askpass program printed; keytool replaced the byte that
    is not UTF-8 and was refused. copy-id's --password-file too."""
    seen = _side_by_side(
        tmp_path, server, account, "-o", "PubkeyAuthentication=no", "127.0.0.1", "echo in",
        answers=(latin1_password,),
    )  # fmt: skip
    assert seen["keytool"][:2] == seen["ssh"][:2] == (0, b"in\n")
    client = make_client(tmp_path / "copyid", server)
    (client.home / "password").write_bytes(latin1_password + b"\n")
    args = ["--password-file", str(client.home / "password"), "-p", str(server.port)]
    installed = copy_id(client, *args, f"{account.name}@127.0.0.1")
    try:
        assert installed.returncode == 0, installed.stderr
        login = ssh_login(server.port, client.known_hosts, account.name, client.key, "echo ok")
        assert (login.returncode, login.stdout) == (0, "ok\n"), login.stderr
    finally:
        (account.home / ".ssh" / "authorized_keys").unlink(missing_ok=True)


def test_askpass_prefer_needs_a_display(tmp_path: Path, server: Sshd, account: Account) -> None:
    """SSH_ASKPASS_REQUIRE=prefer without DISPLAY: ssh does not run the askpass program
    (prefer is for a display); keytool ran it."""
    seen = {}
    for tool in ("ssh", "keytool"):
        env = _askpass(tmp_path / tool, account.password.encode())
        env["SSH_ASKPASS_REQUIRE"] = "prefer"
        for name in ("DISPLAY", "WAYLAND_DISPLAY"):
            env.pop(name, None)
        common = _common(server, account, tmp_path / "known")
        args = [*common, "-o", "PubkeyAuthentication=no", "127.0.0.1", "true"]
        result = _client(tool, args, env)
        seen[tool] = (result.returncode, (tmp_path / tool / "asked").exists())
    assert seen["keytool"] == seen["ssh"] == (255, False)


def test_an_askpass_that_cannot_run_is_said(tmp_path: Path, server: Sshd, account: Account) -> None:
    """ssh says why no password could be asked ("ssh_askpass: exec(...): No such
    file or directory"); keytool said it only under -v."""
    missing = tmp_path / "no-such-askpass"
    env = base_env(SSH_ASKPASS=str(missing), SSH_ASKPASS_REQUIRE="force")
    common = _common(server, account, tmp_path / "known")
    for tool in ("ssh", "keytool"):
        result = _client(tool, [*common, "-o", "PubkeyAuthentication=no", "127.0.0.1", "true"], env)
        assert result.returncode == 255, tool
        text = result.stderr.decode()
        assert str(missing) in text and "No such file or directory" in text, (tool, text)
        assert "Permission denied (" in text, (tool, text)
        assert "Traceback" not in text


def test_an_identity_file_that_is_no_key_is_said(
    tmp_path: Path, server: Sshd, account: Account
) -> None:
    """``-i FILE`` where FILE is no key: ssh says 'Load key "FILE": ...' and goes on;
    keytool passed over it in silence."""
    garbage = tmp_path / "not-a-key"
    garbage.write_text("not a key\n")
    garbage.chmod(0o600)
    common = _common(server, account, tmp_path / "known")
    args = [*common, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", str(garbage)]
    for tool in ("ssh", "keytool"):
        result = _client(tool, [*args, "127.0.0.1", "true"], base_env())
        text = result.stderr.decode()
        assert result.returncode == 255, (tool, text)
        assert f'Load key "{garbage}": ' in text, (tool, text)
        assert "Permission denied (" in text, (tool, text)


def test_default_identities_are_in_the_password_database_home(
    tmp_path: Path, server: Sshd, account: Account
) -> None:
    """Without -i, ssh offers ~/.ssh/id_* of the home in the password database, not of
    $HOME (as for its config and known_hosts, and as -G shows them): a key under $HOME
    alone, which the server takes, logs neither in."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    key = keygen(home / ".ssh" / "id_ed25519", "ed25519", "under-HOME")
    keys = install_key(account, Path(f"{key}.pub"))
    before = len(_accepted(server))  # the server is the module's: earlier logins
    try:
        seen = {}
        for tool in ("ssh", "keytool"):
            common = _common(server, account, tmp_path / "known")
            env = base_env(HOME=str(home))
            result = _client(tool, [*common, "-o", "BatchMode=yes", "127.0.0.1", "true"], env)
            seen[tool] = (result.returncode, b"Permission denied" in result.stderr)
        assert seen["keytool"] == seen["ssh"] == (255, True)
        assert "publickey" not in _accepted(server)[before:]
    finally:
        keys.unlink()


@pytest.mark.parametrize("quiet", [False, True])
def test_a_configured_identity_that_is_not_there_is_said_as_ssh_says_it(
    tmp_path: Path, server: Sshd, account: Account, quiet: bool
) -> None:
    """An IdentityFile (from -o or a config file) naming no file: ssh says "no such
    identity: PATH: ..." when it comes to the keys, and nothing with -q."""
    missing = tmp_path / "not-there"
    seen = {}
    for tool in ("ssh", "keytool"):
        common = _common(server, account, tmp_path / "known")
        flags = ["-o", f"IdentityFile={missing}", "-o", "BatchMode=yes", *(["-q"] if quiet else [])]
        result = _client(tool, [*common, *flags, "127.0.0.1", "true"], base_env(HOME=str(tmp_path)))
        lines = result.stderr.decode().replace("\r\n", "\n").splitlines()
        seen[tool] = (result.returncode, [line for line in lines if str(missing) in line])
    assert seen["keytool"] == seen["ssh"]
    said = [] if quiet else [f"no such identity: {missing}: No such file or directory"]
    assert seen["ssh"] == (255, said)

"""keytool copy-id beside ssh-copy-id on one real sshd, where the two used to differ: the
"already there?" query and MaxAuthTries, a certificate named with -i, a given password
that PAM refuses, a comment that is not UTF-8, what -n shows, and what a forced
command prints instead of running the install script."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.cli import assert_clean_error
from tests.interop.agenthelp import openssh_agent
from tests.interop.clienthelp import Account, askpass_env, base_env, fingerprint, keygen
from tests.interop.copyidhelp import (
    PAM_KBDINT,
    copy_id,
    copyid_sshd,
    make_client,
    pam_failures,
    put_keys,
    ssh_login,
)
from tests.peers import require, run


def dest(account: Account) -> str:
    return f"{account.name}@127.0.0.1"


def ssh_copy_id(
    port: int, known: Path, env: Mapping[str, str], *args: str | Path
) -> subprocess.CompletedProcess[str]:
    """ssh-copy-id with no config of the user's, the given known_hosts."""
    return subprocess.run(
        [require("ssh-copy-id"), "-p", str(port), "-F", "/dev/null",
         "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
         *map(str, args)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=90, env=dict(env),
    )  # fmt: skip


def failed_publickey(log: Path, key: Path) -> int:
    """How many publickey requests for ``key`` sshd refused."""
    text = log.read_text(errors="replace")
    return len(re.findall(rf"Failed publickey for .* {re.escape(fingerprint(key))}", text))


def test_a_key_refused_by_the_query_is_not_offered_again(tmp_path: Path, account: Account) -> None:
    """MaxAuthTries 3, the new key and one other key in the agent: ssh-copy-id gets to
    the password (the new key and the other fail, the password is the third attempt).
    keytool's query of the new key was one failure already: it must not offer that key
    again (ssh never offers a key twice), or sshd hangs up before the password."""
    other = keygen(tmp_path / "other", "ed25519", "other")
    keys = account.home / ".ssh" / "authorized_keys"
    with (
        copyid_sshd(tmp_path / "sshd", [account], MaxAuthTries="3") as server,
        openssh_agent(tmp_path / "agent") as agent,
    ):
        client = make_client(tmp_path, server)
        run([require("ssh-add"), client.key, other], env=agent.env()).check_returncode()

        env = askpass_env(tmp_path, account.password, SSH_AUTH_SOCK=str(agent.sock),
                          HOME=str(client.home))  # fmt: skip
        theirs = ssh_copy_id(server.port, client.known_hosts, env, "-i", client.pub,
                             "-o", f"IdentityFile={client.key}", dest(account))  # fmt: skip
        assert theirs.returncode == 0, theirs.stderr
        assert keys.read_bytes() == client.pub_line()
        keys.unlink()

        mark = len(server.log.read_bytes())
        ours = copy_id(client, "-p", server.port, dest(account), password=account.password,
                       env=agent.env())  # fmt: skip
        assert ours.returncode == 0, ours.stderr
        assert "verified" in ours.stdout
        assert keys.read_bytes() == client.pub_line()
        log = tmp_path / "ours.log"
        log.write_bytes(server.log.read_bytes()[mark:])
        # refused once (the query), then accepted by the verification
        assert failed_publickey(log, client.key) == 1
        assert failed_publickey(log, other) == 1
        assert "Accepted password" in log.read_text()


def test_tried_names_the_query(tmp_path: Path, account: Account) -> None:
    """A wrong password after the query: "tried:" lists the query, the other key and
    the password, each once (the new key is not offered a second time)."""
    other = keygen(tmp_path / "other", "ed25519", "other")
    with (
        copyid_sshd(tmp_path / "sshd", [account], MaxAuthTries="3") as server,
        openssh_agent(tmp_path / "agent") as agent,
    ):
        client = make_client(tmp_path, server)
        run([require("ssh-add"), client.key, other], env=agent.env()).check_returncode()
        ours = copy_id(client, "-p", server.port, dest(account), password="wrong",
                       env=agent.env())  # fmt: skip
        line = assert_clean_error(ours)
        tried = line.split("tried: ", 1)[1]
        new, old = fingerprint(client.key), fingerprint(other)
        assert tried.count(new) == 1 and f"{new} (queried: refused)" in tried, line
        assert tried.count(old) == 1 and "password" in tried, line
        assert failed_publickey(server.log, client.key) == 1


def test_a_certificate_is_refused_before_connecting(tmp_path: Path, account: Account) -> None:
    """-i KEY-cert.pub: ssh-copy-id refuses (it wants the private key KEY-cert); keytool
    says in one line to name KEY.pub instead, and connects to nobody."""
    ca = keygen(tmp_path / "ca", "ed25519", "ca")
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        signed = run([require("ssh-keygen"), "-q", "-s", ca, "-I", "id", "-n", account.name,
                      client.pub])  # fmt: skip
        signed.check_returncode()
        cert = Path(f"{client.key}-cert.pub")
        assert cert.exists()
        env = base_env(HOME=str(client.home))
        theirs = ssh_copy_id(server.port, client.known_hosts, env, "-i", cert,
                             "-o", "BatchMode=yes", dest(account))  # fmt: skip
        assert theirs.returncode != 0
        before = server.log.read_text(errors="replace").count("Connection from")
        ours = copy_id(client, "-i", cert, "-p", server.port, dest(account),
                       password=account.password)  # fmt: skip
        line = assert_clean_error(ours)
        assert "certificate" in line and f"-i {client.pub}" in line, line
        assert server.log.read_text(errors="replace").count("Connection from") == before
        assert not (account.home / ".ssh" / "authorized_keys").exists()


def test_a_comment_that_is_not_utf8_is_installed_as_its_bytes(
    tmp_path: Path, account: Account
) -> None:
    """A .pub whose comment is Latin-1: ssh-copy-id installs the line as it is; so must
    keytool, byte for byte, and the key then logs in."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    login_line = Path(f"{login}.pub").read_bytes()
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        fields = client.pub.read_bytes().split()
        client.pub.write_bytes(b" ".join([*fields[:2], b"caf\xe9@h\xf4te"]) + b"\n")
        keys = put_keys(account, login_line)
        env = base_env(HOME=str(client.home))
        theirs = ssh_copy_id(server.port, client.known_hosts, env, "-f", "-i", client.pub,
                             "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                             "-o", f"IdentityFile={login}", dest(account))  # fmt: skip
        assert theirs.returncode == 0, theirs.stderr
        expected = keys.read_bytes()
        assert expected == login_line + client.pub.read_bytes()

        put_keys(account, login_line)
        ours = copy_id(client, "-i", client.pub, "-p", server.port, dest(account),
                       login_key=login)  # fmt: skip
        assert ours.returncode == 0, ours.stderr
        assert keys.read_bytes() == expected
        assert "verified" in ours.stdout
        assert ssh_login(server.port, client.known_hosts, account.name, client.key).returncode == 0


def test_dry_run_shows_the_lines(tmp_path: Path, account: Account) -> None:
    """-n: ssh-copy-id prints the key lines it would add; keytool shows them too (under
    the host's row), and with --remove the lines of the keys it would take out."""
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        client = make_client(tmp_path, server)
        line = client.pub_line().decode().strip()
        env = base_env(HOME=str(client.home))
        theirs = ssh_copy_id(server.port, client.known_hosts, env, "-n", "-i", client.pub,
                             "-o", "BatchMode=yes", dest(account))  # fmt: skip
        assert theirs.returncode == 0, theirs.stderr
        assert line in theirs.stdout.splitlines()
        ours = copy_id(client, "-n", "-p", server.port, dest(account))
        assert ours.returncode == 0, ours.stderr
        rows = ours.stdout.splitlines()
        assert rows[0].startswith(f"{dest(account)}: would install")
        assert [r.strip() for r in rows[1:]].count(line) == 1, ours.stdout
        assert not (account.home / ".ssh" / "authorized_keys").exists()

        put_keys(account, client.pub_line())
        removing = copy_id(client, "-n", "--remove", "-p", server.port, dest(account))
        assert removing.returncode == 0, removing.stderr
        rows = removing.stdout.splitlines()
        assert rows[0].startswith(f"{dest(account)}: would remove")
        assert [r.strip() for r in rows[1:]].count(line) == 1, removing.stdout


def _under_forced_command(
    tmp_path: Path, account: Account, command: str
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """ssh's login, then keytool copy-id, for an account whose logins run ``command``
    (ForceCommand) whatever was asked."""
    login = keygen(tmp_path / "login", "ed25519", "login")
    forced = {"Match": f"User {account.name}\n  ForceCommand {command}"}
    with copyid_sshd(tmp_path / "sshd", [account], **forced) as server:
        client = make_client(tmp_path, server)
        put_keys(account, Path(f"{login}.pub").read_bytes())
        theirs = ssh_login(server.port, client.known_hosts, account.name, login, "true")
        ours = copy_id(client, "-p", server.port, dest(account), login_key=login)
    return theirs, ours


def test_a_forced_commands_words_are_quoted(tmp_path: Path, account: Account) -> None:
    """ForceCommand echo: the failure quotes what the server printed (the same words
    real ssh gets for any command), not "no answer"."""
    theirs, ours = _under_forced_command(tmp_path, account, "/bin/echo forced-here")
    assert theirs.returncode == 0, theirs.stderr
    printed = theirs.stdout.splitlines()[0]
    line = assert_clean_error(ours)
    assert f"printed {printed!r}" in line and "no answer" not in line, line


def test_a_forced_command_killed_by_a_signal_is_said_so(tmp_path: Path, account: Account) -> None:
    """ForceCommand that dies of SIGKILL: sshd sends exit-signal, no exit status;
    keytool said "exit status None"."""
    theirs, ours = _under_forced_command(tmp_path, account, "/bin/kill -KILL $$")
    assert theirs.returncode == 255  # as ssh ends a command killed by a signal
    line = assert_clean_error(ours)
    assert "killed by signal KILL" in line and "None" not in line, line


def test_a_given_password_is_sent_once_by_keyboard_interactive(
    tmp_path: Path, account: Account
) -> None:
    """sshd with PAM asking by keyboard-interactive only: a wrong password typed at the
    prompt is asked again as ssh asks it (each answer may differ), but a wrong one
    from --password-file is sent once: each refusal is a PAM failure (pam_faillock
    counts them), and a fixed answer cannot get better."""
    with copyid_sshd(tmp_path / "sshd", [account], **PAM_KBDINT) as server:
        client = make_client(tmp_path, server)
        asked = askpass_env(tmp_path, "wrong", HOME=str(client.home))
        start = len(server.log.read_bytes())
        theirs = subprocess.run(
            [require("ssh"), "-F", "/dev/null", "-p", str(server.port),
             "-o", f"UserKnownHostsFile={client.known_hosts}",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no",
             "-o", "NumberOfPasswordPrompts=2", dest(account), "true"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=90, env=asked,
        )  # fmt: skip
        assert theirs.returncode == 255
        prompts = pam_failures(server.log, start)
        assert prompts == 2  # PAM works here, and ssh asks again after a refusal

        start = len(server.log.read_bytes())
        # two prompts, not three: each PAM failure costs its delay (about 2 s)
        typed = copy_id(
            client, "-p", server.port, "-o", "NumberOfPasswordPrompts=2", dest(account), env=asked
        )
        assert typed.returncode != 0
        assert pam_failures(server.log, start) == prompts

        start = len(server.log.read_bytes())
        given = copy_id(client, "-p", server.port, dest(account), password="wrong")
        line = assert_clean_error(given)
        assert "Permission denied" in line and line.count("keyboard-interactive") == 2, line
        assert pam_failures(server.log, start) == 1
        assert not (account.home / ".ssh" / "authorized_keys").exists()

        right = copy_id(client, "-p", server.port, dest(account), password=account.password)
        assert right.returncode == 0, right.stderr
        assert (account.home / ".ssh" / "authorized_keys").read_bytes() == client.pub_line()

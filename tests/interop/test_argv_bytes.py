"""Command-line strings as the bytes typed, as OpenSSH's tools take them: a -I principal
and a -n namespace with a Latin-1 byte (ssh-keygen -Y sign / verify side by side with
keytool), a copy-id -t path with one (the exact file name at the server), in C.UTF-8,
C and, when one can be built with localedef, a Latin-1 locale."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, Account, base_env
from tests.peers import require

MESSAGE = b"a message\n"
PRINCIPAL = b"jos\xe9@x"
NAMESPACE = b"fil\xe9"


def _latin1_env(tmp_path: Path) -> dict[str, str]:
    """LC_ALL set to a Latin-1 locale built under ``tmp_path`` (LOCPATH), or a skip."""
    localedef = shutil.which("localedef")
    if localedef is None or not Path("/usr/share/i18n/locales/en_US").exists():
        pytest.skip("localedef or the en_US locale source is missing")
    folder = tmp_path / "locales"
    folder.mkdir()
    made = subprocess.run(
        [localedef, "-i", "en_US", "-f", "ISO-8859-1", str(folder / "en_US.ISO-8859-1")],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    if not (folder / "en_US.ISO-8859-1").exists():
        pytest.skip(f"localedef could not build a Latin-1 locale: {made.stderr!r}")
    return base_env(LOCPATH=str(folder), LC_ALL="en_US.ISO-8859-1")


def _env(tmp_path: Path, locale: str) -> dict[str, str]:
    if locale == "latin1":
        return _latin1_env(tmp_path)
    return base_env(LC_ALL=locale)


LOCALES = ["C.UTF-8", "C", "latin1"]


def _run(argv: list[bytes | str | Path], env: dict[str, str], stdin: bytes = b""):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [os.fsencode(a) for a in argv], input=stdin, capture_output=True, env=env,
        timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("locale", LOCALES)
def test_sign_and_verify_with_latin1_principal_and_namespace(tmp_path: Path, locale: str) -> None:
    """keytool took -I and -n as UTF-8 of the locale's reading of them: in a Latin-1
    locale the principal 0xE9 became C3 A9 and matched no line, the namespace signed was
    another one. ssh-keygen takes the bytes typed."""
    env = _env(tmp_path, locale)
    ssh_keygen = require("ssh-keygen")
    key = tmp_path / "id"
    made = _run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", key], env)
    assert made.returncode == 0, made.stderr
    public = (tmp_path / "id.pub").read_bytes().split()
    signers = tmp_path / "allowed_signers"
    signers.write_bytes(PRINCIPAL + b" " + public[0] + b" " + public[1] + b"\n")
    (tmp_path / "message").write_bytes(MESSAGE)
    signatures = {}
    for tool, program in (
        ("ssh-keygen", [ssh_keygen, "-Y", "sign"]),
        ("keytool", [*KEYTOOL, "sign"]),
    ):
        sig = tmp_path / f"{tool}.sig"
        done = _run([*program, "-f", key, "-n", NAMESPACE], env, MESSAGE)
        assert done.returncode == 0, (tool, done.stderr)
        sig.write_bytes(done.stdout)
        signatures[tool] = sig
    for sig in signatures.values():
        verify = ["-f", signers, "-I", PRINCIPAL, "-n", NAMESPACE, "-s", sig]
        theirs = _run([ssh_keygen, "-Y", "verify", *verify], env, MESSAGE)
        mine = _run([*KEYTOOL, "verify", *verify], env, MESSAGE)
        assert theirs.returncode == 0, theirs.stderr
        assert theirs.stdout.startswith(b'Good "fil\xe9" signature for jos\xe9@x with ')
        assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout)


@pytest.mark.parametrize("locale", LOCALES)
def test_copy_id_target_is_the_bytes_typed(tmp_path: Path, account: Account, locale: str) -> None:
    """In a Latin-1 locale keytool sent the -t name's 0xE9 as UTF-8 (C3 A9): another
    file than the one typed, which sshd's AuthorizedKeysFile (the bytes) never reads.
    As ssh-copy-id, the file made has the exact name."""
    from tests.interop.copyidhelp import copy_id, copyid_sshd, make_client
    from tests.interop.test_encodings_copyid import reading

    env = _env(tmp_path, locale)
    name = b".ssh/keys\xe9"
    server = reading(copyid_sshd(tmp_path / "sshd", [account]), name)
    with server:
        client = make_client(tmp_path, server)
        result = copy_id(
            client, "-t", os.fsdecode(name), "-p", server.port, f"{account.name}@127.0.0.1",
            password=account.password, env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert os.listdir(os.fsencode(account.home / ".ssh")) == [b"keys\xe9"]
    made = Path(os.fsdecode(os.fsencode(account.home / ".ssh") + b"/keys\xe9"))
    assert made.read_bytes() == client.pub_line()


def _exec_both(argv: list[bytes | str | Path], env: dict[str, str]) -> dict[str, tuple[int, bytes]]:
    """ssh and keytool exec with the same arguments: each one's status and stdout."""
    seen = {}
    for tool, program in (("ssh", [require("ssh")]), ("keytool", [*KEYTOOL, "exec"])):
        done = _run([*program, *argv], env)
        seen[tool] = (done.returncode, done.stdout)
    return seen


@pytest.mark.parametrize("locale", LOCALES)
def test_a_host_alias_that_is_not_utf8_matches_its_host_block(tmp_path: Path, locale: str) -> None:
    """keytool said "bad destination 'al\\351s': not UTF-8 text"; ssh -G matches the
    Host block naming those bytes and takes its HostName, User and Port."""
    env = _env(tmp_path, locale)
    config = tmp_path / "config"
    config.write_bytes(b"Host al\xe9s\n  HostName 127.0.0.1\n  User u\xe9ser\n  Port 47250\n")
    seen = _exec_both(["-F", config, "-G", b"al\xe9s"], env)
    assert seen["ssh"][0] == 0
    wanted = [b"host al\xe9s", b"user u\xe9ser", b"hostname 127.0.0.1", b"port 47250"]
    for tool, (status, out) in seen.items():
        assert status == 0, tool
        lines = out.splitlines()
        assert all(line in lines for line in wanted), (tool, out)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_user_name_that_is_not_utf8_reaches_the_server(tmp_path: Path, locale: str) -> None:
    """keytool refused the destination; ssh logs in as the bytes typed (sshd logs
    "Invalid user us\\351r", refuses, 255). keytool now sends the same bytes."""
    from tests.peers import Sshd

    env = _env(tmp_path, locale)
    with Sshd(tmp_path / "sshd", {"LogLevel": "VERBOSE"}) as server:
        known = tmp_path / "known"
        known.write_text(server.known_hosts_line())
        common = ["-F", "none", "-p", str(server.port), "-o", f"UserKnownHostsFile={known}",
                  "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                  "-o", "IdentitiesOnly=yes", "-o", "IdentityFile=/dev/null"]  # fmt: skip
        # the user in the destination, by -l and by -o User: the same bytes each time
        for given in ([b"us\xe9r@127.0.0.1"], [b"-l", b"us\xe9r", b"127.0.0.1"],
                      [b"-o", b"User=us\xe9r", b"127.0.0.1"]):  # fmt: skip
            before = server.log.read_bytes().count(b"Invalid user us\\351r from")
            seen = _exec_both([*common, *given, "true"], env)
            after = server.log.read_bytes()
            assert seen["ssh"][0] == seen["keytool"][0] == 255
            assert after.count(b"Invalid user us\\351r from") == before + 2, (given, after[-2000:])


@pytest.mark.parametrize(
    "host, taken",
    [(b"a\xc2\x85b", True), (b"a\xc2\xa0b", True), (b"a\xe2\x80\xa8b", True), (b"h\xff", True),
     (b"a\x01b", False), (b"a\x7fb", False), (b"a\tb", False), (b"a;b", False)],
)  # fmt: skip
def test_a_host_name_is_checked_byte_by_byte_as_by_ssh(host: bytes, taken: bool) -> None:
    """ssh refuses a host name holding an ASCII control, white space or a shell
    character, and takes any other byte (keytool refused a UTF-8 character that Python
    does not call printable, such as U+0085 or U+00A0)."""
    env = base_env(LC_ALL="C.UTF-8")
    seen = _exec_both(["-F", "none", "-G", host], env)
    assert (seen["ssh"][0] == 0) == taken
    assert seen["keytool"][0] == seen["ssh"][0]

"""RevokedHostKeys in ``keytool exec`` and ``keytool copy-id``, against the real sshd
and the real ssh: every revocation file here is made by ``ssh-keygen -k`` (or is a
plain public key file), and each verdict keytool gives is also asked of ssh with the
very same file. A revoked host key, host certificate or certificate CA is refused
before any authentication (sshd's log shows no userauth request), whatever
StrictHostKeyChecking says; a broken revocation file refuses the connection too."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli import assert_clean_error
from tests.interop.clienthelp import (
    KEYTOOL,
    Account,
    base_env,
    fingerprint,
    keygen,
    keytool_exec,
    one_line_failure,
)
from tests.interop.copyidhelp import copy_id, copyid_sshd, make_client
from tests.peers import OPENSSH10, Sshd, missing, require, run, ssh_login


def openssh10_ssh() -> str:
    """OpenSSH 10's ssh: 9.2 reads RevokedHostKeys without expanding ~ and tokens."""
    ssh = OPENSSH10 / "usr/bin/ssh"
    if not ssh.exists():
        missing("OpenSSH 10 is not unpacked (scripts/fetch-openssh10)")
    return str(ssh)


def make_krl(krl: Path, *sources: Path, ca: Path | None = None) -> Path:
    """``ssh-keygen -k`` of key files (or, with ``ca``, of spec files)."""
    extra: list[str | Path] = ["-s", f"{ca}.pub"] if ca is not None else []
    made = run([require("ssh-keygen"), "-k", "-f", krl, *extra, *sources])
    assert made.returncode == 0, made.stderr
    assert krl.read_bytes().startswith(b"SSHKRL\n\0")
    return krl


def real_ssh(
    server: Sshd, key: Path, known: Path, revoked: str, strict: str = "yes", ssh: str = ""
) -> str:
    """The real ssh with the same RevokedHostKeys; its stderr when refused, "" when it
    logged in."""
    options = ["-o", f"StrictHostKeyChecking={strict}", "-o", f"RevokedHostKeys={revoked}"]
    result = ssh_login(server.port, key, known, "echo", "ssh-in", options=options, ssh=ssh or None)
    if result.returncode == 0:
        assert result.stdout == "ssh-in\n"
        return ""
    assert result.returncode == 255, result.stderr
    return result.stderr


class Log:
    """sshd's log from a point on: what one connection made it write."""

    def __init__(self, server: Sshd) -> None:
        self.server = server
        self.start = server.log.stat().st_size

    def text(self) -> str:
        with self.server.log.open("rb") as stream:
            stream.seek(self.start)
            return stream.read().decode(errors="replace")


def exec_line(
    server: Sshd, key: Path, known: Path, revoked: str, strict: str = "yes", *more: str
) -> subprocess.CompletedProcess[bytes]:
    return keytool_exec(
        server.port,
        known,
        "root@127.0.0.1",
        "echo",
        "keytool-in",
        flags=(
            "-i",
            str(key),
            "-o",
            "BatchMode=yes",
            "-o",
            f"StrictHostKeyChecking={strict}",
            "-o",
            f"RevokedHostKeys={revoked}",
            *more,
        ),
    )


def assert_refused_before_auth(log: Log) -> None:
    text = log.text()
    # the connection reached the key exchange, and no further
    assert "kex: host key algorithm:" in text, text
    assert "userauth-request" not in text
    assert "Accepted publickey" not in text


def assert_logged_in(result: subprocess.CompletedProcess[bytes], log: Log) -> None:
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"keytool-in\n"
    assert "Accepted publickey for root" in log.text()


@dataclass
class Host:
    folder: Path
    server: Sshd
    host_pub: Path  # sshd's ed25519 host key, public
    user: Path  # authorized user key
    other: Path  # a key that is not the host's
    known: Path  # known_hosts recording the host key


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    folder = tmp_path_factory.mktemp("revoked")
    server = Sshd(folder / "sshd", host_key_types=("ed25519",))
    user = keygen(folder / "user")
    other = keygen(folder / "other")
    server.authorized_keys.write_text(Path(f"{user}.pub").read_text())
    with server:
        known = folder / "known_hosts"
        known.write_text(server.known_hosts_line("ed25519"))
        yield Host(folder, server, Path(f"{server.host_keys['ed25519']}.pub"), user, other, known)


# ---------------------------------------------------------------- plain host keys


@pytest.mark.parametrize("strict", ["yes", "no"])
def test_krl_revoking_the_host_key_refuses_before_authentication(host: Host, strict: str) -> None:
    krl = make_krl(host.folder / f"host-{strict}.krl", host.host_pub)
    # with checking off and nothing known, only the revocation can refuse the host
    known = host.known if strict == "yes" else host.folder / f"empty-{strict}"
    if strict == "no":
        known.write_text("")

    log = Log(host.server)
    result = exec_line(host.server, host.user, known, str(krl), strict)
    line = one_line_failure(result)
    host_fp = fingerprint(host.host_pub.with_suffix(""))
    assert f"host key ED25519 {host_fp} of [127.0.0.1]:{host.server.port} revoked by {krl}" in line
    assert "Host key verification failed." in line
    assert result.stdout == b""
    assert_refused_before_auth(log)
    if strict == "no":
        assert known.read_text() == ""  # nothing was recorded for a revoked host

    # the real ssh refuses with the same file, naming the same key
    said = real_ssh(host.server, host.user, known, str(krl), strict)
    assert f"Host key ED25519 {host_fp} revoked by file {krl}" in said


def test_krl_revoking_another_key_connects_with_tokens_expanded(host: Host) -> None:
    # the KRL lives under a folder named after the host: only %h expanded finds it (a
    # revocation file that is not found refuses the connection)
    folder = host.folder / "by-host" / "127.0.0.1"
    folder.mkdir(parents=True)
    make_krl(folder / "other.krl", Path(f"{host.other}.pub"))
    option = f"{host.folder}/by-host/%h/other.krl"

    assert real_ssh(host.server, host.user, host.known, option, ssh=openssh10_ssh()) == ""
    log = Log(host.server)
    result = exec_line(host.server, host.user, host.known, option, "yes", "-v")
    assert_logged_in(result, log)
    assert f"host key not revoked by {folder}/other.krl" in result.stderr.decode()


def test_public_key_file_as_revoked_host_keys(host: Host) -> None:
    other_line = Path(f"{host.other}.pub").read_text()
    listing = host.folder / "revoked_keys"
    listing.write_text(f"# keys we no longer trust\n\n  {other_line}")
    assert real_ssh(host.server, host.user, host.known, str(listing)) == ""
    log = Log(host.server)
    assert_logged_in(exec_line(host.server, host.user, host.known, str(listing)), log)

    # the host's key added (with its comment, after a blank line): refused by both
    listing.write_text(f"# keys we no longer trust\n{other_line}\n{host.host_pub.read_text()}")
    log = Log(host.server)
    result = exec_line(host.server, host.user, host.known, str(listing))
    line = one_line_failure(result)
    assert f"revoked by {listing} (the key is listed at line 4)" in line
    assert_refused_before_auth(log)
    assert "revoked by file" in real_ssh(host.server, host.user, host.known, str(listing))


def test_config_file_and_none(host: Host) -> None:
    krl = make_krl(host.folder / "config.krl", host.host_pub)
    config = host.folder / "config"
    config.write_text(f"Host 127.0.0.1\n    RevokedHostKeys {krl}\n")
    base = ("-F", str(config), "-p", str(host.server.port), "-i", str(host.user))
    known = ("-o", f"UserKnownHostsFile={host.known}", "-o", "GlobalKnownHostsFile=/dev/null")
    args = [*base, *known, "-o", "BatchMode=yes", "root@127.0.0.1", "echo", "keytool-in"]
    keytool = [*KEYTOOL, "exec"]

    log = Log(host.server)
    refused = subprocess.run([*keytool, *args], capture_output=True, env=base_env(), timeout=60)
    assert f"revoked by {krl}" in one_line_failure(refused)
    assert_refused_before_auth(log)

    # -o RevokedHostKeys=none comes first and wins over the file's line, as for ssh
    log = Log(host.server)
    none = ["-o", "RevokedHostKeys=none"]
    allowed = subprocess.run(
        [*keytool, *none, *args], capture_output=True, env=base_env(), timeout=60
    )
    assert_logged_in(allowed, log)
    ssh = run([require("ssh"), *none, *args], env=base_env())
    assert ssh.returncode == 0, ssh.stderr


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("truncated.krl", None, "invalid revoked keys file"),
        ("junk", b"this is not a key\n", "line 1: invalid public key"),
        ("missing", b"", "no such file"),
    ],
)
def test_broken_revocation_file_refuses(
    host: Host, name: str, content: bytes | None, says: str
) -> None:
    path = host.folder / "broken" / name
    path.parent.mkdir(exist_ok=True)
    if content is None:  # a real KRL cut short
        whole = make_krl(host.folder / "whole.krl", Path(f"{host.other}.pub")).read_bytes()
        path.write_bytes(whole[: len(whole) - 5])
    elif name != "missing":
        path.write_bytes(content)

    log = Log(host.server)
    result = exec_line(host.server, host.user, host.known, str(path))
    line = one_line_failure(result)
    assert "cannot check the host key of" in line
    assert str(path) in line and says in line
    assert_refused_before_auth(log)
    said = real_ssh(host.server, host.user, host.known, str(path))
    assert f"Error checking host key ED25519 {fingerprint(host.host_pub.with_suffix(''))}" in said
    assert f"in revoked keys file {path}" in said


# ---------------------------------------------------------------- host certificates


@pytest.fixture(scope="module")
def cert_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """sshd serving an ed25519 host certificate (serial 42) by a CA that known_hosts
    trusts for 127.0.0.1 with @cert-authority (no plain host key recorded)."""
    folder = tmp_path_factory.mktemp("revoked-cert")
    ca = keygen(folder / "host_ca")
    cert = folder / "sshd" / "ssh_host_ed25519_key-cert.pub"
    server = Sshd(
        folder / "sshd", options={"HostCertificate": str(cert)}, host_key_types=("ed25519",)
    )
    host_pub = Path(f"{server.host_keys['ed25519']}.pub")
    signed = run(
        [require("ssh-keygen"), "-q", "-s", ca, "-I", "the-host", "-h", "-n", "127.0.0.1",
         "-z", "42", host_pub]
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    user = keygen(folder / "user")
    other = keygen(folder / "other")
    server.authorized_keys.write_text(Path(f"{user}.pub").read_text())
    with server:
        known = folder / "known_hosts"
        ca_pub = Path(f"{ca}.pub").read_text().strip()
        known.write_text(f"@cert-authority [127.0.0.1]:{server.port} {ca_pub}\n")
        yield Host(folder, server, host_pub, user, other, known)


def host_ca(host: Host) -> Path:
    return host.folder / "host_ca"


def test_host_certificate_not_revoked_connects(cert_host: Host) -> None:
    # revoking another serial of the same CA and another key changes nothing
    spec = cert_host.folder / "spec-other"
    spec.write_text("serial: 41\nserial: 43-50\n")
    krl = make_krl(cert_host.folder / "other.krl", spec, ca=host_ca(cert_host))
    assert real_ssh(cert_host.server, cert_host.user, cert_host.known, str(krl)) == ""
    log = Log(cert_host.server)
    result = exec_line(cert_host.server, cert_host.user, cert_host.known, str(krl), "yes", "-v")
    assert_logged_in(result, log)
    assert "host certificate accepted" in result.stderr.decode()


@pytest.mark.parametrize("how", ["ca-krl", "serial-krl", "ca-listed", "key-krl"])
def test_revoked_host_certificate_refused(cert_host: Host, how: str) -> None:
    ca = host_ca(cert_host)
    folder = cert_host.folder
    if how == "ca-krl":
        revoked = make_krl(folder / "ca.krl", Path(f"{ca}.pub"))
        reason = "its CA key: the key is revoked"
    elif how == "serial-krl":
        spec = folder / "spec-42"
        spec.write_text("serial: 40-42\n")
        revoked = make_krl(folder / "serial.krl", spec, ca=ca)
        reason = "serial 42 is revoked for its CA"
    elif how == "ca-listed":
        revoked = folder / "ca_list"
        revoked.write_text(Path(f"{ca}.pub").read_text())
        reason = "its CA key is listed at line 1"
    else:
        revoked = make_krl(folder / "hostkey.krl", cert_host.host_pub)
        reason = "the key is revoked"

    log = Log(cert_host.server)
    result = exec_line(cert_host.server, cert_host.user, cert_host.known, str(revoked))
    line = one_line_failure(result)
    host_fp = fingerprint(cert_host.host_pub.with_suffix(""))
    assert f"host key ED25519-CERT {host_fp} of [127.0.0.1]:{cert_host.server.port}" in line
    assert f"revoked by {revoked} ({reason})" in line
    text = log.text()
    assert "kex: host key algorithm: ssh-ed25519-cert-v01@openssh.com" in text
    assert "userauth-request" not in text

    said = real_ssh(cert_host.server, cert_host.user, cert_host.known, str(revoked))
    assert f"Host key ED25519-CERT {host_fp} revoked by file {revoked}" in said


# ---------------------------------------------------------------- copy-id


@pytest.fixture
def copyid_server(tmp_path: Path, account: Account) -> Iterator[Sshd]:
    with copyid_sshd(tmp_path / "sshd", [account]) as server:
        yield server


def test_copy_id_refuses_a_revoked_host(
    tmp_path: Path, account: Account, copyid_server: Sshd
) -> None:
    client = make_client(tmp_path, copyid_server)
    pubs = [Path(f"{p}.pub") for p in copyid_server.host_keys.values()]
    krl = make_krl(tmp_path / "hosts.krl", *pubs)
    log = Log(copyid_server)
    result = copy_id(
        client,
        "-p",
        copyid_server.port,
        "-o",
        f"RevokedHostKeys={krl}",
        f"{account.name}@127.0.0.1",
        password=account.password,
    )
    line = assert_clean_error(result)
    assert f"revoked by {krl}" in line
    assert "userauth-request" not in log.text()
    assert not (account.home / ".ssh" / "authorized_keys").exists()

    # the same copy with a KRL of another key installs the key
    other = keygen(tmp_path / "other")
    fine = make_krl(tmp_path / "other.krl", Path(f"{other}.pub"))
    done = copy_id(
        client,
        "-p",
        copyid_server.port,
        "-o",
        f"RevokedHostKeys={fine}",
        f"{account.name}@127.0.0.1",
        password=account.password,
    )
    assert done.returncode == 0, done.stderr
    assert (account.home / ".ssh" / "authorized_keys").read_bytes() == client.pub_line()

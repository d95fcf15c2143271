"""OpenSSH certificates in ``keytool exec``, against the real sshd, ssh, ssh-keygen,
ssh-agent and ssh-add: user certificates to log in (found next to the key, named by
CertificateFile, held by an agent) and host certificates checked against
``@cert-authority`` lines in known_hosts. Every key and certificate here is made by
ssh-keygen, not by keytool."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.agenthelp import openssh_agent
from tests.interop.clienthelp import (
    base_env,
    fingerprint,
    keygen,
    keytool_exec,
    one_line_failure,
)
from tests.peers import Sshd, require, run, ssh_login, wait_logged

LABELS = {"ed25519": "ED25519", "ecdsa": "ECDSA", "rsa": "RSA"}
CERT_ALGORITHMS = {
    "ed25519": "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa": "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "rsa": "rsa-sha2-512-cert-v01@openssh.com",
}
#: a window that closed long ago, for expired certificates
PAST = "20200101:20200102"


def new_key(path: Path, kind: str = "ed25519") -> Path:
    """A key made by ssh-keygen in a fresh folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return keygen(path, kind)


def certify(
    ca: Path,
    pub: Path,
    *,
    key_id: str,
    principals: str,
    serial: int,
    host: bool = False,
    validity: str | None = None,
) -> Path:
    """``ssh-keygen -s CA`` on ``pub``; returns the KEY-cert.pub it wrote."""
    args: list[str | Path] = [require("ssh-keygen"), "-q", "-s", ca, "-I", key_id, "-n", principals]
    args += ["-z", str(serial), *(["-h"] if host else []), *(["-V", validity] if validity else [])]
    result = run([*args, pub])
    assert result.returncode == 0, result.stderr
    cert = pub.with_name(pub.name.removesuffix(".pub") + "-cert.pub")
    assert cert.exists()
    return cert


# ---------------------------------------------------------------- user certificates


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    return new_key(tmp_path / "ca" / "user_ca")


@pytest.fixture
def cert_sshd(tmp_path: Path, ca: Path) -> Iterator[Sshd]:
    """sshd that trusts the user CA and no authorized_keys at all: only a certificate
    logs in."""
    server = Sshd(
        tmp_path / "sshd",
        options={"TrustedUserCAKeys": f"{ca}.pub", "AuthorizedKeysFile": "none"},
    )
    with server:
        yield server


def known_hosts(folder: Path, server: Sshd) -> Path:
    path = folder / "known_hosts"
    path.write_text(server.known_hosts_line("ed25519"))
    return path


def assert_certificate_login(log: Path, key_id: str, serial: int, label: str, ca: Path) -> None:
    """sshd's own record: it checked the certificate and let it in."""
    text = log.read_text(errors="replace")
    assert f'Accepted certificate ID "{key_id}" (serial {serial}) signed by ED25519 CA' in text
    accepted = re.search(r"Accepted publickey for root from .* ssh2: (\S+) (SHA256:\S+)", text)
    assert accepted is not None, text
    assert accepted.group(1) == f"{label}-CERT"
    assert fingerprint(ca) in text  # the CA sshd names is ours


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_certificate_next_to_the_key_logs_in(
    tmp_path: Path, ca: Path, cert_sshd: Sshd, kind: str
) -> None:
    key = keygen(tmp_path / f"id_{kind}", kind)
    certify(ca, Path(f"{key}.pub"), key_id=f"alice-{kind}", principals="root", serial=7)
    known = known_hosts(tmp_path, cert_sshd)

    result = keytool_exec(
        cert_sshd.port, known, "root@127.0.0.1", "echo", "in", flags=("-i", str(key), "-v")
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"in\n"
    assert_certificate_login(cert_sshd.log, f"alice-{kind}", 7, LABELS[kind], ca)
    # the request named the certificate algorithm (for RSA the SHA-512 one)
    log = cert_sshd.log.read_text(errors="replace")
    assert f"pkalg {CERT_ALGORITHMS[kind]}" in log
    # -v tells which certificate was offered: its ID, serial and CA
    trace = result.stderr.decode()
    assert f"offering certificate: {LABELS[kind]}-CERT {fingerprint(key)}" in trace
    assert f"ID 'alice-{kind}' serial 7 CA ED25519 {fingerprint(ca)}" in trace
    # the certificate went first: the plain key was never offered
    assert f"offering public key: {LABELS[kind]} " not in trace


def test_certificate_file_option_with_tokens(tmp_path: Path, ca: Path, cert_sshd: Sshd) -> None:
    key = keygen(tmp_path / "id_ed25519")
    cert = certify(ca, Path(f"{key}.pub"), key_id="by-option", principals="root", serial=3)
    elsewhere = tmp_path / "certs" / "127.0.0.1"  # %h below
    elsewhere.mkdir(parents=True)
    moved = elsewhere / "mine-cert.pub"
    shutil.move(cert, moved)
    known = known_hosts(tmp_path, cert_sshd)

    # without the certificate the server refuses the key
    refused = keytool_exec(
        cert_sshd.port,
        known,
        "root@127.0.0.1",
        "true",
        flags=("-i", str(key), "-o", "BatchMode=yes"),
    )
    assert "Permission denied" in one_line_failure(refused)

    option = f"CertificateFile={tmp_path}/certs/%h/mine-cert.pub"
    result = keytool_exec(
        cert_sshd.port, known, "root@127.0.0.1", "echo", "ok", flags=("-i", str(key), "-o", option)
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"ok\n"
    assert_certificate_login(cert_sshd.log, "by-option", 3, "ED25519", ca)


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_certificate_held_by_the_agent(
    tmp_path: Path, ca: Path, cert_sshd: Sshd, kind: str
) -> None:
    key = keygen(tmp_path / f"id_{kind}", kind)
    certify(ca, Path(f"{key}.pub"), key_id=f"agent-{kind}", principals="root", serial=11)
    known = known_hosts(tmp_path, cert_sshd)
    with openssh_agent(tmp_path / "agent", env=base_env()) as agent:
        env = agent.env()
        added = run([require("ssh-add"), key], env=env)
        assert added.returncode == 0, added.stderr
        assert "Certificate added" in added.stderr  # ssh-add took KEY-cert.pub along
        # nothing on disk any more: only the agent can offer the certificate
        for path in (key, Path(f"{key}.pub"), Path(f"{key}-cert.pub")):
            path.unlink()
        listed = run([require("ssh-add"), "-L"], env=env).stdout
        assert f"{CERT_ALGORITHMS[kind].replace('rsa-sha2-512', 'ssh-rsa')} " in listed

        result = keytool_exec(
            cert_sshd.port, known, "root@127.0.0.1", "echo", "agent", flags=("-v",), env=env
        )
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == b"agent\n"
        assert_certificate_login(cert_sshd.log, f"agent-{kind}", 11, LABELS[kind], ca)
        assert f"pkalg {CERT_ALGORITHMS[kind]}" in cert_sshd.log.read_text(errors="replace")
        assert "(agent), ID" in result.stderr.decode()

        # IdentitiesOnly: the agent's certificate is not offered for another key
        other = keygen(tmp_path / "other")
        only = keytool_exec(
            cert_sshd.port,
            known,
            "root@127.0.0.1",
            "true",
            flags=("-i", str(other), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-v"),
            env=env,
        )
        assert only.returncode != 0
        assert "offering certificate" not in only.stderr.decode()


@pytest.mark.parametrize(
    ("principals", "validity", "sshd_says"),
    [
        ("someone-else", None, "name is not a listed principal"),
        ("root", PAST, "Certificate invalid: expired"),
    ],
)
def test_certificate_the_server_refuses(
    tmp_path: Path,
    ca: Path,
    cert_sshd: Sshd,
    principals: str,
    validity: str | None,
    sshd_says: str,
) -> None:
    key = keygen(tmp_path / "id_ed25519")
    certify(
        ca, Path(f"{key}.pub"), key_id="bad", principals=principals, serial=1, validity=validity
    )
    known = known_hosts(tmp_path, cert_sshd)
    result = keytool_exec(
        cert_sshd.port,
        known,
        "root@127.0.0.1",
        "echo",
        "never",
        flags=("-i", str(key), "-o", "BatchMode=yes"),
    )
    line = one_line_failure(result)
    assert "Permission denied" in line
    assert "ED25519-CERT" in line  # it says the certificate was tried
    assert result.stdout == b""
    log = cert_sshd.log.read_text(errors="replace")
    assert sshd_says in log
    assert "Accepted publickey" not in log


# ---------------------------------------------------------------- host certificates


def host_cert_sshd(
    folder: Path,
    ca: Path,
    kind: str = "ed25519",
    principals: str = "127.0.0.1",
    validity: str | None = None,
) -> Sshd:
    """sshd (not started) whose one host key of ``kind`` has a certificate by ``ca``; the
    user key tmp/user is authorized so that logins can succeed."""
    cert = folder / f"ssh_host_{kind}_key-cert.pub"
    server = Sshd(folder, options={"HostCertificate": str(cert)}, host_key_types=(kind,))
    certify(
        ca,
        Path(f"{server.host_keys[kind]}.pub"),
        key_id=f"host-{kind}",
        principals=principals,
        serial=42,
        host=True,
        validity=validity,
    )
    return server


@pytest.fixture
def host_ca(tmp_path: Path) -> Path:
    return new_key(tmp_path / "hostca" / "host_ca")


@pytest.fixture
def user_key(tmp_path: Path) -> Path:
    return new_key(tmp_path / "user" / "id_ed25519")


def authorize(server: Sshd, key: Path) -> None:
    server.authorized_keys.write_text(Path(f"{key}.pub").read_text())


def ca_line(server: Sshd, ca: Path, marker: str = "@cert-authority") -> str:
    return f"{marker} [127.0.0.1]:{server.port} {Path(f'{ca}.pub').read_text().strip()}\n"


def strict(key: Path, *extra: str) -> tuple[str, ...]:
    return ("-i", str(key), "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", *extra)


def real_ssh(server: Sshd, key: Path, known: Path) -> tuple[int, str]:
    options = ["-v", "-o", "StrictHostKeyChecking=yes"]
    result = ssh_login(server.port, key, known, "true", options=options)
    return result.returncode, result.stderr


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_host_certificate_by_a_known_ca_is_accepted(
    tmp_path: Path, host_ca: Path, user_key: Path, kind: str
) -> None:
    server = host_cert_sshd(tmp_path / "sshd", host_ca, kind)
    authorize(server, user_key)
    with server:
        known = tmp_path / "known_hosts"
        known.write_text(ca_line(server, host_ca))
        before = known.read_bytes()

        # the fixture is right: the real ssh accepts this known_hosts as it is
        code, ssh_trace = real_ssh(server, user_key, known)
        assert code == 0, ssh_trace
        assert f"matches the {LABELS[kind]}-CERT host certificate" in ssh_trace

        result = keytool_exec(
            server.port, known, "root@127.0.0.1", "echo", "hi", flags=strict(user_key, "-v")
        )
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == b"hi\n"
        algorithm = CERT_ALGORITHMS[kind]
        # sshd signed the exchange with its certificate's algorithm
        log = server.log.read_text(errors="replace")
        assert f"kex: host key algorithm: {algorithm}" in log
        trace = result.stderr.decode()
        assert f"ID 'host-{kind}' serial 42, CA ED25519 {fingerprint(host_ca)}" in trace
        assert f"host certificate accepted: signed by the CA at {known}:1" in trace
        # nothing was added: certificates are never written to known_hosts
        assert known.read_bytes() == before


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("principal", "127.0.0.1 is not among its principals (other.example)"),
        ("expired", "expired (valid from 2020-01-01"),
        ("other-ca", "signed by an unknown CA (ED25519 "),
    ],
)
def test_invalid_host_certificate_is_refused_before_authentication(
    tmp_path: Path, host_ca: Path, user_key: Path, case: str, says: str
) -> None:
    signer = new_key(tmp_path / "other_ca" / "ca") if case == "other-ca" else host_ca
    server = host_cert_sshd(
        tmp_path / "sshd",
        signer,
        principals="other.example" if case == "principal" else "127.0.0.1",
        validity=PAST if case == "expired" else None,
    )
    authorize(server, user_key)
    with server:
        known = tmp_path / "known_hosts"
        known.write_text(ca_line(server, host_ca))
        before = known.read_bytes()
        result = keytool_exec(
            server.port, known, "root@127.0.0.1", "echo", "no", flags=strict(user_key)
        )
        line = one_line_failure(result)
        assert f"host certificate of [127.0.0.1]:{server.port} refused: " in line
        assert says in line
        if case == "other-ca":
            assert fingerprint(signer) in line
        assert "Host key verification failed." in line
        assert result.stdout == b""
        assert known.read_bytes() == before
        # the [preauth] child's lines reach the log through the monitor, perhaps after
        # keytool is gone; the monitor says when the child's last one is in
        log = wait_logged(server.log, "monitor_read_log: child log fd closed", 1)
        assert "kex: host key algorithm: ssh-ed25519-cert-v01@openssh.com" in log
        assert "userauth-request" not in log  # refused before any authentication


def test_unknown_ca_falls_back_to_the_known_plain_key(
    tmp_path: Path, host_ca: Path, user_key: Path
) -> None:
    other_ca = new_key(tmp_path / "other_ca" / "ca")
    server = host_cert_sshd(tmp_path / "sshd", other_ca)
    authorize(server, user_key)
    with server:
        known = tmp_path / "known_hosts"
        known.write_text(ca_line(server, host_ca) + server.known_hosts_line("ed25519"))
        before = known.read_bytes()
        code, ssh_trace = real_ssh(server, user_key, known)
        assert code == 0, ssh_trace
        assert "No matching CA found. Retry with plain key" in ssh_trace

        result = keytool_exec(
            server.port, known, "root@127.0.0.1", "echo", "plain", flags=strict(user_key, "-v")
        )
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == b"plain\n"
        trace = result.stderr.decode()
        assert "checking its key as a plain key" in trace
        assert f"host key found in known_hosts at {known}:2" in trace
        assert "kex: host key algorithm: ssh-ed25519-cert-v01@openssh.com" in server.log.read_text(
            errors="replace"
        )
        assert known.read_bytes() == before


def test_unknown_ca_under_accept_new_records_the_plain_key_only(
    tmp_path: Path, host_ca: Path, user_key: Path
) -> None:
    server = host_cert_sshd(tmp_path / "sshd", host_ca)
    authorize(server, user_key)
    with server:
        known = tmp_path / "known_hosts"  # empty: no CA, no key
        result = keytool_exec(
            server.port,
            known,
            "root@127.0.0.1",
            "true",
            flags=("-i", str(user_key), "-o", "StrictHostKeyChecking=accept-new"),
        )
        assert result.returncode == 0, result.stderr.decode()
        # the line added is the plain host key, as ssh adds it; ssh-keygen finds it
        assert known.read_text() == server.known_hosts_line("ed25519")
        found = run([require("ssh-keygen"), "-F", f"[127.0.0.1]:{server.port}", "-f", known])
        assert "ssh-ed25519 " in found.stdout and "cert" not in found.stdout


@pytest.mark.parametrize("revoked", ["ca", "host key"])
def test_revoked_ca_or_host_key_is_refused(
    tmp_path: Path, host_ca: Path, user_key: Path, revoked: str
) -> None:
    server = host_cert_sshd(tmp_path / "sshd", host_ca)
    authorize(server, user_key)
    with server:
        known = tmp_path / "known_hosts"
        if revoked == "ca":
            bad = ca_line(server, host_ca, "@revoked")
        else:
            pub = Path(f"{server.host_keys['ed25519']}.pub").read_text().strip()
            bad = f"@revoked [127.0.0.1]:{server.port} {pub}\n"
        known.write_text(ca_line(server, host_ca) + bad)
        code, ssh_trace = real_ssh(server, user_key, known)
        assert code != 0 and "REVOKED HOST KEY" in ssh_trace  # ssh refuses it too

        result = keytool_exec(server.port, known, "root@127.0.0.1", "true", flags=strict(user_key))
        line = one_line_failure(result)
        what = "its CA key" if revoked == "ca" else "its key"
        assert f"refused: {what} is marked @revoked at {known}:2" in line
        assert "userauth-request" not in server.log.read_text(errors="replace")


def test_lines_without_the_port_serve_any_port(
    tmp_path: Path, host_ca: Path, user_key: Path
) -> None:
    """known_hosts lines for the bare host name (no [host]:port): ssh takes them for a
    server on another port ("checking without port identifier"), a @cert-authority line
    as a plain one, and adds nothing; keytool too, under StrictHostKeyChecking=yes."""
    server = host_cert_sshd(tmp_path / "sshd", host_ca)
    authorize(server, user_key)
    ca = Path(f"{host_ca}.pub").read_text().strip()
    plain = server.known_hosts_line().split(" ", 1)[1]
    with server:
        for line in (f"@cert-authority 127.0.0.1 {ca}\n", f"127.0.0.1 {plain}"):
            known = tmp_path / "known_hosts"
            known.write_text(line)
            code, ssh_trace = real_ssh(server, user_key, known)
            assert code == 0, ssh_trace
            result = keytool_exec(
                server.port, known, "root@127.0.0.1", "echo", "hi", flags=strict(user_key)
            )
            assert result.returncode == 0, result.stderr.decode()
            assert result.stdout == b"hi\n"
            assert known.read_text() == line

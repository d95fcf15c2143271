"""Certificates in the agent, checked against OpenSSH: ssh-add loads ssh-keygen -s
certificates into keytool's agent and the real ssh logs in with them to an sshd that
trusts only the CA; keytool add loads them into OpenSSH's ssh-agent (and keytool's);
lifetimes, confirmations and removals apply to the certificate identity; malformed
certificate adds are refused while the agent keeps serving."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keytool import agentproto as proto
from keytool.keys import load_private
from keytool.keys.base import PrivateKey
from keytool.keys.cert import Certificate, CertifiedPrivate
from keytool.keys.pubfile import parse_public_text
from keytool.wire import Reader, Writer
from tests.interop.agenthelp import KEYTOOL, askpass_script, connect, keytool_agent, make_keys
from tests.interop.agenthelp import RunningAgent as Agent
from tests.interop.agenthelp import openssh_agent as openssh_agent_at
from tests.interop.agenthelp import roundtrip as raw_roundtrip
from tests.peers import Sshd, require, run

KINDS = ["ed25519", "rsa", "ecdsa"]
SERIALS = {"ed25519": 11, "rsa": 22, "ecdsa": 33}
LIST = bytes([proto.SSH_AGENTC_REQUEST_IDENTITIES])


def roundtrip(agent: Agent, payload: bytes) -> bytes:
    with connect(agent.sock) as conn:
        return raw_roundtrip(conn, payload)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, keys of each kind and their -cert.pub, all made by ssh-keygen."""
    folder = tmp_path_factory.mktemp("certkeys")
    ca = folder / "user_ca"
    keygen = require("ssh-keygen")
    run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "ca", "-f", ca]).check_returncode()
    for kind, path in make_keys(folder).items():
        serial = str(SERIALS[kind])
        signed = run(
            [keygen, "-q", "-s", ca, "-I", f"id-{kind}", "-n", "root", "-z", serial, f"{path}.pub"]
        )
        assert signed.returncode == 0, signed.stderr
    return folder


def key_copy(material: Path, kind: str, folder: Path, with_cert: bool = True) -> Path:
    """A private copy of one key (mode 0600), with its .pub and -cert.pub beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / f"id_{kind}"
    shutil.copy(material / f"id_{kind}", key)
    key.chmod(0o600)
    shutil.copy(material / f"id_{kind}.pub", f"{key}.pub")
    if with_cert:
        shutil.copy(material / f"id_{kind}-cert.pub", f"{key}-cert.pub")
    return key


def text(path: Path | str) -> str:
    return Path(path).read_text()


def ca_fingerprint(material: Path) -> str:
    result = run([require("ssh-keygen"), "-lf", material / "user_ca.pub"])
    result.check_returncode()
    return result.stdout.split()[1]


def keygen_list(*files: Path | str) -> str:
    """ssh-keygen -l of each file: what ssh-add -l prints for the identities they hold."""
    out = ""
    for name in files:
        result = run([require("ssh-keygen"), "-lf", name])
        result.check_returncode()
        out += result.stdout
    return out


def ssh_add(agent: Agent, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run([require("ssh-add"), *args], env=agent.env(**env))


def keytool_add(agent: Agent, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYTOOL, "add", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=agent.env(),
    )


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    with keytool_agent(tmp_path / "agent") as running:
        yield running
        assert running.proc.poll() is None, "the agent died"


@pytest.fixture
def openssh_agent(tmp_path: Path) -> Iterator[Agent]:
    with openssh_agent_at(tmp_path / "ssh-agent") as running:
        yield running


@pytest.fixture
def ca_sshd(tmp_path: Path, material: Path) -> Iterator[Sshd]:
    """An sshd that trusts the CA and no key at all: only a certificate logs in."""
    options = {
        "TrustedUserCAKeys": str(material / "user_ca.pub"),
        "AuthorizedKeysFile": "none",
        "LogLevel": "DEBUG2",
    }
    with Sshd(tmp_path / "sshd", options) as server:
        yield server


def ssh_through(agent: Agent, server: Sshd, folder: Path) -> subprocess.CompletedProcess[str]:
    """The real ssh, keys only from the agent (it offers all it holds), as root."""
    known = folder / "known_hosts"
    known.write_text(server.known_hosts_line())
    return run(
        [
            require("ssh"), "-F", "/dev/null", "-p", str(server.port),
            "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known}",
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=no",
            "-o", f"IdentityAgent={agent.sock}",
            "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
            "root@127.0.0.1", "echo", "logged-in-with-cert",
        ],
        env=agent.env(),
    )  # fmt: skip


def assert_cert_login(agent: Agent, server: Sshd, material: Path, kind: str, folder: Path) -> None:
    result = ssh_through(agent, server, folder)
    assert result.returncode == 0, result.stderr + server.log.read_text()[-3000:]
    assert result.stdout == "logged-in-with-cert\n"
    log = server.log.read_text()
    # sshd names the certificate it accepted and the CA that signed it
    assert f'Accepted certificate ID "id-{kind}" (serial {SERIALS[kind]})' in log
    assert f"CA {ca_fingerprint(material)}" in log
    assert "Accepted publickey for root from 127.0.0.1" in log
    if kind == "rsa":
        assert "rsa-sha2-512-cert-v01@openssh.com" in log, "ssh did not use RSA SHA-512"


# -- OpenSSH's ssh-add and ssh with keytool's agent


@pytest.mark.parametrize("kind", KINDS)
def test_ssh_add_loads_certificate_and_ssh_logs_in(
    tmp_path: Path, agent: Agent, ca_sshd: Sshd, material: Path, kind: str
) -> None:
    key = key_copy(material, kind, tmp_path / "client")
    added = ssh_add(agent, key)
    assert added.returncode == 0, added.stderr
    assert f"Certificate added: {key}-cert.pub (id-{kind})" in added.stderr
    # the agent hands back the certificate blob ssh-keygen wrote, byte for byte
    listed = ssh_add(agent, "-L")
    assert listed.stdout == text(f"{key}.pub") + text(f"{key}-cert.pub")
    assert ssh_add(agent, "-l").stdout == keygen_list(f"{key}.pub", f"{key}-cert.pub")
    tested = ssh_add(agent, "-T", f"{key}-cert.pub")
    assert tested.returncode == 0, tested.stderr
    # ssh signs with the plain key when the agent holds it too: remove it (ssh-add -d
    # of the .pub alone leaves the certificate), so the certificate identity signs
    removed = ssh_add(agent, "-d", f"{key}.pub")
    assert removed.returncode == 0, removed.stderr
    assert ssh_add(agent, "-L").stdout == text(f"{key}-cert.pub")
    for name in (key, f"{key}.pub"):
        Path(name).unlink()  # only the agent holds the key now; the cert file stays
    assert_cert_login(agent, ca_sshd, material, kind, tmp_path)
    signed = [line for line in agent.log_text().splitlines() if " signed " in line]
    assert signed and f"ID 'id-{kind}' serial {SERIALS[kind]}" in signed[-1]
    if kind == "rsa":
        # the certificate identity signed with the SHA-2 algorithm ssh's flags asked for
        assert "with rsa-sha2-512-cert-v01@openssh.com" in signed[-1]


def test_plain_key_alone_does_not_log_in(
    tmp_path: Path, agent: Agent, ca_sshd: Sshd, material: Path
) -> None:
    """The control: without its certificate the same key is refused by that sshd."""
    key = key_copy(material, "ed25519", tmp_path / "client", with_cert=False)
    ssh_add(agent, key).check_returncode()
    assert ssh_add(agent, "-L").stdout == text(f"{key}.pub")
    assert ssh_through(agent, ca_sshd, tmp_path).returncode != 0


def test_removing_the_certificate_keeps_the_key(
    tmp_path: Path, agent: Agent, material: Path
) -> None:
    key = key_copy(material, "ecdsa", tmp_path / "client")
    ssh_add(agent, key).check_returncode()
    removed = ssh_add(agent, "-d", f"{key}-cert.pub")
    assert removed.returncode == 0, removed.stderr
    assert ssh_add(agent, "-L").stdout == text(f"{key}.pub")
    assert ssh_add(agent, "-T", f"{key}-cert.pub").returncode != 0
    ssh_add(agent, key).check_returncode()
    removed = ssh_add(agent, "-d", key)  # ssh-add removes KEY-cert.pub's identity too
    assert removed.returncode == 0, removed.stderr
    assert "The agent has no identities." in ssh_add(agent, "-L").stdout


def wait_for_listing(agent: Agent, expected: str, limit: float = 10.0) -> str:
    deadline = time.monotonic() + limit
    listed = ssh_add(agent, "-L").stdout
    while listed != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        listed = ssh_add(agent, "-L").stdout
    return listed


def test_lifetime_expires_the_certificate(tmp_path: Path, agent: Agent, material: Path) -> None:
    key = key_copy(material, "ed25519", tmp_path / "client")
    added = ssh_add(agent, "-t", "1", key)  # the key and its certificate, for 1 second
    assert added.returncode == 0, added.stderr
    assert "Certificate added" in added.stderr
    ssh_add(agent, "-k", key).check_returncode()  # the plain key again, with no lifetime
    assert wait_for_listing(agent, text(f"{key}.pub")) == text(f"{key}.pub")
    assert ssh_add(agent, "-T", f"{key}-cert.pub").returncode != 0
    assert ssh_add(agent, "-T", f"{key}.pub").returncode == 0


def test_confirm_applies_to_the_certificate(tmp_path: Path, material: Path) -> None:
    asked = tmp_path / "asked"
    status = tmp_path / "status"
    status.write_text("0")
    script = askpass_script(tmp_path)
    wrapper = tmp_path / "askpass-wrapper.sh"
    wrapper.write_text(f'#!/bin/sh\nKT_ASKPASS_STATUS=$(cat "{status}") exec "{script}" "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, SSH_ASKPASS=str(wrapper), KT_ASKPASS_LOG=str(asked), DISPLAY=":0")
    key = key_copy(material, "ed25519", tmp_path / "client")
    with keytool_agent(tmp_path / "a", env=env) as agent:
        ssh_add(agent, "-c", key).check_returncode()
        assert ssh_add(agent, "-T", f"{key}-cert.pub").returncode == 0
        assert "kt-ed25519" in asked.read_text()
        status.write_text("1")
        assert ssh_add(agent, "-T", f"{key}-cert.pub").returncode != 0
        assert asked.read_text().count("kt-ed25519") == 2


# -- keytool add, into OpenSSH's ssh-agent and into keytool's


@pytest.mark.parametrize("kind", KINDS)
def test_keytool_add_into_ssh_agent(
    tmp_path: Path, openssh_agent: Agent, ca_sshd: Sshd, material: Path, kind: str
) -> None:
    key = key_copy(material, kind, tmp_path / "client")
    added = keytool_add(openssh_agent, key)
    assert added.returncode == 0, added.stderr
    assert added.stderr == (
        f"Identity added: {key} (kt-{kind})\nCertificate added: {key}-cert.pub (id-{kind})\n"
    )
    both = text(f"{key}.pub") + text(f"{key}-cert.pub")
    assert ssh_add(openssh_agent, "-L").stdout == both
    assert keytool_add(openssh_agent, "-L").stdout == both
    fingerprints = keygen_list(f"{key}.pub", f"{key}-cert.pub")
    assert keytool_add(openssh_agent, "-l").stdout == fingerprints
    assert keytool_add(openssh_agent, "-T", f"{key}-cert.pub").returncode == 0
    assert_cert_login(openssh_agent, ca_sshd, material, kind, tmp_path)
    removed = keytool_add(openssh_agent, "-d", key)
    assert removed.returncode == 0, removed.stderr
    assert f"Identity removed: {key}-cert.pub" in removed.stderr
    assert "The agent has no identities." in ssh_add(openssh_agent, "-L").stdout


def test_keytool_add_into_keytool_agent(
    tmp_path: Path, agent: Agent, ca_sshd: Sshd, material: Path
) -> None:
    key = key_copy(material, "rsa", tmp_path / "client")
    added = keytool_add(agent, key)
    assert added.returncode == 0, added.stderr
    assert f"Certificate added: {key}-cert.pub (id-rsa)" in added.stderr
    assert ssh_add(agent, "-L").stdout == text(f"{key}.pub") + text(f"{key}-cert.pub")
    assert_cert_login(agent, ca_sshd, material, "rsa", tmp_path)
    removed = keytool_add(agent, "-d", key)
    assert removed.returncode == 0, removed.stderr
    assert "The agent has no identities." in ssh_add(agent, "-L").stdout


def test_keytool_add_messages_match_ssh_add(
    tmp_path: Path, openssh_agent: Agent, material: Path
) -> None:
    """Add and delete print what OpenSSH's ssh-add prints for the same files."""
    key = key_copy(material, "ecdsa", tmp_path / "client")
    theirs = ssh_add(openssh_agent, key)
    theirs_gone = ssh_add(openssh_agent, "-d", key)
    ours = keytool_add(openssh_agent, key)
    ours_gone = keytool_add(openssh_agent, "-d", key)
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr)
    assert (ours_gone.returncode, ours_gone.stderr) == (theirs_gone.returncode, theirs_gone.stderr)
    ours = keytool_add(openssh_agent, "-t", "600", key)
    theirs = ssh_add(openssh_agent, "-t", "600", key)
    assert ours.stderr == theirs.stderr


def test_keytool_add_lifetime_into_ssh_agent(
    tmp_path: Path, openssh_agent: Agent, material: Path
) -> None:
    key = key_copy(material, "ed25519", tmp_path / "client")
    added = keytool_add(openssh_agent, "-t", "1", key)
    assert added.returncode == 0, added.stderr
    assert added.stderr.count("Lifetime set to 1 seconds") == 2  # the key and the cert
    assert wait_for_listing(openssh_agent, "The agent has no identities.\n") == (
        "The agent has no identities.\n"
    )


def test_a_certificate_for_another_key_is_skipped(
    tmp_path: Path, openssh_agent: Agent, agent: Agent, material: Path
) -> None:
    key = key_copy(material, "ed25519", tmp_path / "client")
    shutil.copy(material / "id_ecdsa-cert.pub", f"{key}-cert.pub")
    for target in (openssh_agent, agent):
        theirs = ssh_add(target, key)
        ours = keytool_add(target, key)
        assert ours.returncode == theirs.returncode == 0
        assert f"Certificate {key}-cert.pub does not match private key {key}" in ours.stderr
        assert "Certificate added" not in ours.stderr + theirs.stderr
        assert ssh_add(target, "-L").stdout == text(f"{key}.pub")
    # deleting with the mismatched certificate beside the key stops there, as ssh-add does
    deleted = keytool_add(openssh_agent, "-d", key)
    assert deleted.returncode != 0
    assert deleted.stderr.splitlines()[-1].endswith(
        f"Certificate {key}-cert.pub does not match private key {key}"
    )


def test_certificate_lifetime_follows_its_validity(
    tmp_path: Path, openssh_agent: Agent, material: Path
) -> None:
    """As ssh-add does since OpenSSH 10.1: an expired certificate is not loaded, and one
    that ends soon stays in the agent at most five minutes past its end."""
    key = key_copy(material, "ed25519", tmp_path / "client", with_cert=False)

    def certify(validity: str) -> None:
        pub = f"{key}.pub"
        sign = ["-s", str(material / "user_ca"), "-I", "short", "-n", "root", "-V", validity, pub]
        made = run([require("ssh-keygen"), "-q", *sign])
        assert made.returncode == 0, made.stderr

    certify("-2h:-1h")
    expired = keytool_add(openssh_agent, key)
    assert expired.returncode == 0, expired.stderr
    assert f"Certificate {key}-cert.pub has already expired; ignored" in expired.stderr
    assert ssh_add(openssh_agent, "-L").stdout == text(f"{key}.pub")
    certify("-1h:+1m")
    added = keytool_add(openssh_agent, key)
    lines = added.stderr.splitlines()
    assert lines[1] == f"Certificate added: {key}-cert.pub (short)"
    assert lines[2].startswith("Lifetime set to ") and lines[2].endswith(" seconds")
    assert 0 < int(lines[2].split()[3]) <= 60 + 300
    assert ssh_add(openssh_agent, "-L").stdout == text(f"{key}.pub") + text(f"{key}-cert.pub")


# -- raw agent messages: broken certificate adds


def add_message(
    cert_blob: bytes, private: PrivateKey, comment: str = "raw", name: str | None = None
) -> bytes:
    """ADD_IDENTITY for a certificate, in PROTOCOL.agent's form, from any blob: the key
    type (the blob's own unless ``name``), the blob, the private fields of ``private``
    that a certificate does not hold, the comment."""
    fields = CertifiedPrivate(_cert_for(private), private).fields_to_wire()
    r = Reader(fields, "fields")
    r.string()  # the real certificate of ``private``: swapped for ``cert_blob``
    if name is None:
        name = Reader(cert_blob, "blob").ascii()
    return (
        Writer()
        .byte(proto.SSH_AGENTC_ADD_IDENTITY)
        .string(name)
        .string(cert_blob)
        .raw(r.rest())
        .string(comment)
        .getvalue()
    )


def _cert_for(private: PrivateKey) -> Certificate:
    from keytool.keys import generate
    from keytool.keys.cert import sign

    return sign(private.public, generate("ed25519"), key_id="scratch", principals=["root"])


def load(material: Path, kind: str) -> tuple[PrivateKey, Certificate]:
    private, _ = load_private((material / f"id_{kind}").read_bytes(), None)
    cert, _ = parse_public_text((material / f"id_{kind}-cert.pub").read_bytes())
    assert isinstance(cert, Certificate)
    return private, cert


def broken_adds(material: Path) -> dict[str, bytes]:
    ed_private, ed_cert = load(material, "ed25519")
    rsa_private, rsa_cert = load(material, "rsa")
    ec_private, ec_cert = load(material, "ecdsa")
    good = add_message(ed_cert.to_wire(), ed_private)
    flipped = bytearray(rsa_cert.to_wire())
    flipped[-5] ^= 0x01  # inside the CA's signature
    at_id = ed_cert.to_wire().index(b"id-ed25519")
    renamed = bytearray(ed_cert.to_wire())
    renamed[at_id] = ord("X")  # a signed field changed
    constrained = bytearray(add_message(ed_cert.to_wire(), ec_private))
    constrained[0] = proto.SSH_AGENTC_ADD_ID_CONSTRAINED
    return {
        "cert of ecdsa key, ed25519 private": add_message(ec_cert.to_wire(), ed_private),
        "cert of ed25519 key, another private": add_message(ed_cert.to_wire(), _other("ed25519")),
        "cert of rsa key, another private": add_message(rsa_cert.to_wire(), _other("rsa")),
        "cert of ecdsa key, another private": add_message(ec_cert.to_wire(), _other("ecdsa")),
        "broken CA signature": add_message(bytes(flipped), rsa_private),
        "key id changed after signing": add_message(bytes(renamed), ed_private),
        "constrained, wrong private": bytes(constrained) + bytes([1, 0, 0, 0, 60]),
        "truncated in the certificate": good[:60],
        "truncated in the private part": good[: len(good) - 40],
        "truncated comment": good[:-2],
        "certificate length beyond the message": good[:37] + b"\x00\xff\xff\xff" + good[41:],
        "trailing bytes": good + b"junk",
        "certificate blob of a plain key": add_message(
            ed_private.public.to_wire(), ed_private, name=ed_cert.key_type
        ),
        "empty certificate": add_message(b"", ed_private, name=ed_cert.key_type),
    }


def _other(kind: str) -> PrivateKey:
    from keytool.keys import generate

    return generate(kind, 2048) if kind == "rsa" else generate(kind)


def test_broken_certificate_adds_are_refused(agent: Agent, material: Path) -> None:
    """Each answered FAILURE on a connection that goes on serving. (OpenSSH 9.2's
    ssh-agent takes an RSA certificate with another key's private numbers; keytool's
    checks every certified private key against its certificate.)"""
    ed_key = material / "id_ed25519"
    ssh_add(agent, ed_key).check_returncode()  # the key and its certificate
    before = ssh_add(agent, "-L").stdout
    assert before == text(f"{ed_key}.pub") + text(f"{ed_key}-cert.pub")
    with connect(agent.sock) as conn:
        for what, message in broken_adds(material).items():
            assert raw_roundtrip(conn, message) == proto.FAILURE, what
            assert agent.proc.poll() is None, f"the agent died on: {what}"
        assert len(proto.decode_identities(raw_roundtrip(conn, LIST))) == 2
    assert ssh_add(agent, "-L").stdout == before
    assert ssh_add(agent, "-T", f"{ed_key}-cert.pub").returncode == 0
    # and a well-formed certificate add is still taken
    key = material / "id_rsa"
    private, cert = load(material, "rsa")
    assert roundtrip(agent, add_message(cert.to_wire(), private, "kt-rsa")) == proto.SUCCESS
    assert ssh_add(agent, "-L").stdout == before + text(f"{key}-cert.pub")


@pytest.mark.parametrize("flags", [0, proto.SSH_AGENT_RSA_SHA2_256, proto.SSH_AGENT_RSA_SHA2_512])
def test_rsa_certificate_signs_as_ssh_agent_does(
    agent: Agent, openssh_agent: Agent, material: Path, flags: int
) -> None:
    """A SIGN_REQUEST for the RSA certificate blob: keytool's agent returns the very bytes
    OpenSSH's agent returns (PKCS#1 v1.5 is deterministic), algorithm chosen by flags."""
    key = material / "id_rsa"
    for target in (agent, openssh_agent):
        ssh_add(target, key).check_returncode()
    _private, cert = load(material, "rsa")
    data = os.urandom(200)
    request = proto.encode_request(proto.SignRequest(cert.to_wire(), data, flags))
    ours = proto.decode_sign_response(roundtrip(agent, request))
    theirs = proto.decode_sign_response(roundtrip(openssh_agent, request))
    assert ours == theirs
    assert cert.verify(ours, data)
    # the plain key's blob is another identity, signing the same way
    plain = proto.encode_request(proto.SignRequest(cert.key.to_wire(), data, flags))
    assert proto.decode_sign_response(roundtrip(agent, plain)) == ours
    # removing the certificate leaves the plain key signing
    removal = proto.encode_request(proto.RemoveIdentity(cert.to_wire()))
    assert roundtrip(agent, removal) == proto.SUCCESS
    assert roundtrip(agent, request) == proto.FAILURE
    assert proto.decode_sign_response(roundtrip(agent, plain)) == ours
    assert len(proto.decode_identities(roundtrip(agent, LIST))) == 1


# -- ssh-add -k: plain keys only (OpenSSH 9.2 has no -C, "certificates only")


@pytest.mark.parametrize("target", ["ssh-agent", "keytool agent"])
def test_key_only_adds_and_removes_the_plain_key_as_ssh_add(
    tmp_path: Path, openssh_agent: Agent, agent: Agent, material: Path, target: str
) -> None:
    """-k skips KEY-cert.pub when adding and when removing: ssh-add -k and keytool add -k
    leave the agent holding the same identities and print the same lines."""
    into = openssh_agent if target == "ssh-agent" else agent
    key = key_copy(material, "ed25519", tmp_path / "client")
    results = {}
    for name, tool in (("ssh-add", ssh_add), ("keytool", keytool_add)):
        added = tool(into, "-k", key)
        only_key = ssh_add(into, "-L").stdout
        tool(into, key).check_returncode()  # now the key and its certificate
        removed = tool(into, "-d", "-k", key)
        only_cert = ssh_add(into, "-L").stdout
        missing = tool(into, "-d", "-k", key)  # the plain key is gone already
        ssh_add(into, "-D").check_returncode()
        results[name] = (added, only_key, removed, only_cert, missing)
    theirs, ours = results["ssh-add"], results["keytool"]
    assert theirs[1] == text(f"{key}.pub"), "ssh-add -k did not add the plain key alone"
    assert theirs[3] == text(f"{key}-cert.pub"), "ssh-add -d -k did not keep the certificate"
    assert ours[1] == theirs[1]
    assert ours[3] == theirs[3]
    for mine, real in ((ours[0], theirs[0]), (ours[2], theirs[2])):
        assert real.returncode == 0, real.stderr
        assert (mine.returncode, mine.stdout, mine.stderr) == (0, real.stdout, real.stderr)
    assert theirs[4].returncode != 0 and ours[4].returncode != 0
    assert ours[4].stderr == theirs[4].stderr


def test_key_only_of_a_key_without_certificate(
    tmp_path: Path, openssh_agent: Agent, material: Path
) -> None:
    key = key_copy(material, "rsa", tmp_path / "client", with_cert=False)
    theirs = ssh_add(openssh_agent, "-k", key)
    listed = ssh_add(openssh_agent, "-L").stdout
    theirs_gone = ssh_add(openssh_agent, "-d", "-k", key)
    ours = keytool_add(openssh_agent, "-k", key)
    assert ssh_add(openssh_agent, "-L").stdout == listed == text(f"{key}.pub")
    ours_gone = keytool_add(openssh_agent, "-d", "-k", key)
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr)
    assert (ours_gone.returncode, ours_gone.stderr) == (theirs_gone.returncode, theirs_gone.stderr)
    assert "The agent has no identities." in ssh_add(openssh_agent, "-L").stdout


def test_certificates_only_flag_is_not_in_openssh_9_2(
    tmp_path: Path, openssh_agent: Agent, material: Path
) -> None:
    """ssh-add -C (certificates only) came after 9.2: that ssh-add refuses it, and so does
    keytool add, with one line and nothing added."""
    key = key_copy(material, "ed25519", tmp_path / "client")
    theirs = ssh_add(openssh_agent, "-C", key)
    ours = keytool_add(openssh_agent, "-C", key)
    if theirs.returncode == 0:
        pytest.skip("this ssh-add has -C (OpenSSH newer than 9.2)")
    assert "unknown option -- C" in theirs.stderr
    assert ours.returncode != 0
    assert len(ours.stderr.splitlines()) == 1 and "-C" in ours.stderr
    assert "Traceback" not in ours.stderr
    assert "The agent has no identities." in ssh_add(openssh_agent, "-L").stdout

"""Certificates (keytool.keys.cert) against the real ssh-keygen, both ways.

ssh-keygen -s certifies -> keytool parses the same bytes back, fields as -L shows them;
keytool certifies -> ssh-keygen -L reads every field we set, and the CA signature checks.
A tampered certificate is refused, as OpenSSH refuses it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from pathlib import Path

import pytest

from keytool.errors import FormatError
from keytool.keys import cert
from keytool.keys.blob import private_from_reader, public_from_wire
from keytool.keys.fingerprint import fingerprint
from keytool.keys.pubfile import format_public_line, parse_public_line
from keytool.wire import Reader
from tests.interop.keysets import keygen_key, our_key, ssh_keygen
from tests.peers import run

KINDS = [
    pytest.param("ed25519", 256, id="ed25519"),
    pytest.param("rsa", 2048, id="rsa-2048"),
    pytest.param("ecdsa", 256, id="ecdsa-256"),
    pytest.param("ecdsa", 384, id="ecdsa-384"),
    pytest.param("ecdsa", 521, id="ecdsa-521"),
]
UTC = {**os.environ, "TZ": "UTC"}


def show(path: Path) -> str:
    """What ssh-keygen -L prints of a certificate file (times in UTC)."""
    result = subprocess.run(
        [ssh_keygen(), "-L", "-f", str(path)], capture_output=True, text=True, env=UTC
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(("kind", "bits"), KINDS)
@pytest.mark.parametrize("ca_kind", ["ed25519", "rsa", "ecdsa"])
def test_keygen_certificate_reads_back_byte_for_byte(
    tmp_path: Path, kind: str, bits: int, ca_kind: str
) -> None:
    ca_key = keygen_key(ca_kind, 2048 if ca_kind == "rsa" else 256, tmp_path)
    ca = ca_key.write(tmp_path / "ca")
    user = keygen_key(kind, bits, tmp_path)
    pub = tmp_path / "user.pub"
    pub.write_text(user.public_line + "\n")
    how = ["-I", "id of alice", "-n", "alice,bob", "-z", "42", "-V", "20250101:20300101"]
    result = run([ssh_keygen(), "-q", "-s", ca, *how, "-O", "force-command=ls -l", pub])
    assert result.returncode == 0, result.stderr
    line = (tmp_path / "user-cert.pub").read_text().rstrip("\n")
    parsed, comment = parse_public_line(line)
    assert isinstance(parsed, cert.Certificate)
    assert comment == user.comment
    assert format_public_line(parsed, comment) == line
    assert parsed.key == user.public
    assert parsed.key_type == user.public.key_type + cert.SUFFIX
    assert (parsed.key_id, parsed.serial) == ("id of alice", 42)
    assert parsed.principals == ("alice", "bob")
    assert parsed.cert_type == cert.USER
    assert [o.name for o in parsed.critical] == ["force-command"]
    assert parsed.critical[0].value == "ls -l"
    assert [o.name for o in parsed.extensions] == sorted(cert.DEFAULT_EXTENSIONS)
    ca_public = ca_key.public
    assert parsed.ca == ca_public
    listing = show(tmp_path / "user-cert.pub")
    using = f"(using {parsed.signature_type})"
    assert f"Signing CA: {ca_public.label} {fingerprint(ca_public)} {using}" in listing
    assert f"Public key: {parsed.label} {fingerprint(parsed)}" in listing


@pytest.mark.parametrize(("kind", "bits"), KINDS)
def test_our_certificate_as_ssh_keygen_reads_it(tmp_path: Path, kind: str, bits: int) -> None:
    ca = our_key("rsa", 2048)
    key = our_key(kind, bits).public
    made = cert.sign(
        key,
        ca,
        key_id="web host",
        principals=["www.example.com", "*.example.net"],
        cert_type=cert.HOST,
        serial=2**63 + 5,
        valid_after=1_800_000_000,
        valid_before=1_900_000_000,
    )
    path = tmp_path / "host-cert.pub"
    path.write_text(format_public_line(made, "a comment") + "\n")
    listing = show(path).splitlines()
    assert listing[0] == f"{path}:"
    assert listing[1:] == [
        f"        Type: {made.key_type} host certificate",
        f"        Public key: {made.label} {fingerprint(made)}",
        f"        Signing CA: RSA {fingerprint(ca.public)} (using rsa-sha2-512)",
        '        Key ID: "web host"',
        f"        Serial: {2**63 + 5}",
        "        Valid: from 2027-01-15T08:00:00 to 2030-03-17T17:46:40",
        "        Principals: ",
        "                www.example.com",
        "                *.example.net",
        "        Critical Options: (none)",
        "        Extensions: (none)",
    ]


def test_user_certificate_options_as_ssh_keygen_reads_them(tmp_path: Path) -> None:
    made = cert.sign(
        our_key("ed25519", 256).public,
        our_key("ecdsa", 384),
        key_id="alice",
        principals=["alice"],
        critical=[
            cert.Option.text("source-address", "127.0.0.1/32,::1"),
            cert.Option.text("force-command", "uptime"),
        ],
    )
    path = tmp_path / "u-cert.pub"
    path.write_text(format_public_line(made, "") + "\n")
    listing = show(path)
    assert "        Valid: forever\n" in listing
    assert (
        "        Critical Options: \n"
        "                force-command uptime\n"
        "                source-address 127.0.0.1/32,::1\n"
        "        Extensions: \n"
        "                permit-X11-forwarding\n"
        "                permit-agent-forwarding\n"
        "                permit-port-forwarding\n"
        "                permit-pty\n"
        "                permit-user-rc\n"
    ) in listing


def test_tampered_certificate_is_refused_by_both(tmp_path: Path) -> None:
    made = cert.sign(our_key("ed25519", 256).public, our_key("ed25519", 256), principals=["a"])
    blob = bytearray(made.to_wire())
    # the principal "a" sits before the validity: make it "b"
    at = blob.index(b"\x00\x00\x00\x01a")
    blob[at + 4] = ord("b")
    with pytest.raises(FormatError, match="does not verify"):
        public_from_wire(bytes(blob))
    path = tmp_path / "bad-cert.pub"
    path.write_text(f"{made.key_type} {base64.b64encode(bytes(blob)).decode()}\n")
    result = run([ssh_keygen(), "-L", "-f", path])
    assert result.returncode != 0


def test_certificate_signed_by_a_certificate_is_refused() -> None:
    ca = our_key("ed25519", 256)
    inner = cert.sign(our_key("ecdsa", 256).public, ca, principals=["x"])
    made = cert.sign(our_key("rsa", 2048).public, ca, principals=["x"])
    made.ca = inner
    made.signature = ca.sign(made.signed_part())
    with pytest.raises(FormatError, match="signed by a certificate"):
        public_from_wire(made.to_wire())


@pytest.mark.parametrize(("kind", "bits"), KINDS)
def test_agent_form_of_a_certified_key(kind: str, bits: int) -> None:
    private = our_key(kind, bits)
    made = cert.sign(private.public, our_key("ed25519", 256), principals=["p"])
    paired = cert.CertifiedPrivate(made, private)
    r = Reader(paired.to_wire(), "agent key")
    back = private_from_reader(r)
    r.done()
    assert isinstance(back, cert.CertifiedPrivate)
    assert back.public == made
    algorithm = cert.cert_name("rsa-sha2-512" if kind == "rsa" else private.public.key_type)
    assert algorithm in made.signature_algorithms
    signature = back.sign(b"data", algorithm)
    assert made.verify(signature, b"data", allowed=(algorithm,))
    assert private.public.verify(signature, b"data")


def test_problem_names_what_is_wrong() -> None:
    now = int(time.time())
    ca = our_key("ed25519", 256)
    key = our_key("ecdsa", 256).public
    host = cert.sign(key, ca, cert_type=cert.HOST, principals=["*.example.com"])
    assert host.problem(host=True, now=now, principal="a.example.com", wildcard=True) is None
    assert host.problem(host=True, now=now, principal="example.org", wildcard=True)
    assert host.problem(host=False, now=now) == "not a user certificate"
    window = cert.sign(key, ca, principals=["u"], valid_after=now + 60, valid_before=now + 120)
    assert window.problem(host=False, now=now) == "not yet valid"
    assert window.problem(host=False, now=now + 120) == "expired"
    assert window.problem(host=False, now=now + 60, principal="u") is None
    assert window.problem(host=False, now=now + 60, principal="v") == "v is not a listed principal"
    nobody = cert.sign(key, ca)
    assert nobody.problem(host=False, now=now) == "it lists no principals"

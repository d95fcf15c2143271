"""Signatures against the real ssh-keygen, through SSHSIG (PROTOCOL.sshsig).

ssh-keygen -Y sign -> keytool's verify(); keytool's sign() -> ssh-keygen -Y verify and
-Y check-novalidate. Each direction also rejects a tampered message or signature.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

import pytest

from keytool import sshsig
from keytool.files import PRIVATE_MODE, write_atomic
from keytool.keys import PrivateKey, cert, openssh
from keytool.keys.blob import signature_algorithm
from keytool.keys.fingerprint import fingerprint
from keytool.keys.pubfile import format_public_line
from tests.interop.keysets import keygen_key, our_key, ssh_keygen
from tests.peers import run

NAMESPACE = "file"
MESSAGE = b"a message signed for the keytool interop tests\n"
BEGIN, END = sshsig.BEGIN, sshsig.END

KEYS = [
    pytest.param("ed25519", 256, id="ed25519"),
    pytest.param("rsa", 2048, id="rsa-2048"),
    pytest.param("ecdsa", 256, id="ecdsa-256"),
    pytest.param("ecdsa", 384, id="ecdsa-384"),
    pytest.param("ecdsa", 521, id="ecdsa-521"),
]


def unarmor(text: str) -> bytes:
    lines = text.strip().splitlines()
    assert (lines[0], lines[-1]) == (BEGIN, END)
    return base64.b64decode("".join(lines[1:-1]), validate=True)


def parse_sshsig(text: str) -> sshsig.Signature:
    sig = sshsig.parse(text.encode("ascii"))
    assert sig.reserved == b""
    return sig


def signed_data(namespace: str, hash_algorithm: str, message: bytes) -> bytes:
    """What an SSHSIG signature signs, for ``message``."""
    return sshsig.signed_data(
        namespace, hash_algorithm, hashlib.new(hash_algorithm, message).digest()
    )


def build_sshsig(key: PrivateKey, message: bytes, algorithm: str | None = None) -> str:
    signature = key.sign(signed_data(NAMESPACE, "sha512", message), algorithm)
    return sshsig.armor(key.public, NAMESPACE, "sha512", signature)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# --- ssh-keygen signs, keytool verifies ---


@pytest.mark.parametrize(("kind", "bits"), KEYS)
def test_we_verify_ssh_keygen_signatures(kind: str, bits: int, tmp_path: Path) -> None:
    theirs = keygen_key(kind, bits, tmp_path)
    path = theirs.write(tmp_path / "id")
    result = run([ssh_keygen(), "-Y", "sign", "-f", path, "-n", NAMESPACE], input=MESSAGE.decode())
    assert result.returncode == 0, result.stderr
    sig = parse_sshsig(result.stdout)
    assert sig.namespace == NAMESPACE
    key = sig.key
    assert format_public_line(key, theirs.comment) == theirs.public_line
    data = signed_data(sig.namespace, sig.hash_algorithm, MESSAGE)
    assert key.verify(sig.signature, data)
    if kind == "rsa":
        # SSHSIG refuses SHA-1; ssh-keygen signs RSA with rsa-sha2-512
        assert signature_algorithm(sig.signature) == "rsa-sha2-512"
    # a changed message, a flipped signature byte or another namespace: not valid
    assert not key.verify(sig.signature, signed_data(NAMESPACE, sig.hash_algorithm, b"x"))
    assert not key.verify(flip(sig.signature, len(sig.signature) - 5), data)
    assert not key.verify(sig.signature, flip(data, len(data) - 1))
    assert not key.verify(sig.signature, signed_data("email", sig.hash_algorithm, MESSAGE))


# --- keytool signs, ssh-keygen verifies ---


def check_novalidate(
    signature_file: Path, message: str = MESSAGE.decode(), namespace: str = NAMESPACE
) -> subprocess.CompletedProcess[str]:
    """``ssh-keygen -Y check-novalidate`` of ``message`` against ``signature_file``."""
    check: list[str | Path] = [
        ssh_keygen(), "-Y", "check-novalidate", "-n", namespace, "-s", signature_file,
    ]  # fmt: skip
    return run(check, input=message)


def _sign_and_check(key: PrivateKey, tmp_path: Path, algorithm: str | None = None) -> None:
    signature_file = tmp_path / "message.sig"
    signature_file.write_text(build_sshsig(key, MESSAGE, algorithm))
    shown = fingerprint(key.public)

    result = check_novalidate(signature_file)
    assert result.returncode == 0, result.stderr
    assert f'Good "{NAMESPACE}" signature with {key.public.label} key {shown}' in result.stdout

    signers = tmp_path / "allowed_signers"
    signers.write_text(f"tester@example.org {format_public_line(key.public)}\n")
    verify: list[str | Path] = [
        ssh_keygen(), "-Y", "verify", "-f", signers, "-I", "tester@example.org",
        "-n", NAMESPACE, "-s", signature_file,
    ]  # fmt: skip
    result = run(verify, input=MESSAGE.decode())
    assert result.returncode == 0, result.stderr
    assert f"for tester@example.org with {key.public.label} key {shown}" in result.stdout

    # the real peer rejects a tampered message and a wrong namespace
    tampered = check_novalidate(signature_file, MESSAGE.decode().replace("signed", "forged"))
    assert tampered.returncode != 0
    assert "Good" not in tampered.stdout
    other = check_novalidate(signature_file, namespace="email")
    assert other.returncode != 0


@pytest.mark.parametrize(("kind", "bits"), KEYS)
def test_ssh_keygen_verifies_our_signatures(kind: str, bits: int, tmp_path: Path) -> None:
    _sign_and_check(our_key(kind, bits), tmp_path)


def test_ssh_keygen_verifies_our_rsa_sha2_256(tmp_path: Path) -> None:
    _sign_and_check(our_key("rsa", 2048), tmp_path, "rsa-sha2-256")


def test_ssh_keygen_refuses_our_tampered_signature(tmp_path: Path) -> None:
    key = our_key("ed25519", 256)
    text = build_sshsig(key, MESSAGE)
    blob = unarmor(text)
    body = base64.b64encode(flip(blob, len(blob) - 3)).decode("ascii")
    signature_file = tmp_path / "message.sig"
    signature_file.write_text(f"{BEGIN}\n{body}\n{END}\n")
    result = check_novalidate(signature_file)
    assert result.returncode != 0
    assert "Good" not in result.stdout


@pytest.mark.parametrize(("kind", "bits"), KEYS)
def test_ssh_keygen_signs_with_our_key_file(kind: str, bits: int, tmp_path: Path) -> None:
    # our private key file, used by ssh-keygen to sign, verified by keytool
    key = our_key(kind, bits)
    path = tmp_path / "id"
    write_atomic(path, openssh.dump(key, "signer"), PRIVATE_MODE)
    result = run([ssh_keygen(), "-Y", "sign", "-f", path, "-n", NAMESPACE], input=MESSAGE.decode())
    assert result.returncode == 0, result.stderr
    sig = parse_sshsig(result.stdout)
    assert sig.key == key.public
    assert key.public.verify(sig.signature, signed_data(NAMESPACE, sig.hash_algorithm, MESSAGE))


# --- certificates: the signature names the certificate, the certified key signs ---


@pytest.mark.parametrize(("kind", "bits"), KEYS)
def test_certificate_signatures_both_ways(kind: str, bits: int, tmp_path: Path) -> None:
    ca = our_key("ed25519", 256)
    key = our_key(kind, bits)
    certified = cert.CertifiedPrivate(cert.sign(key.public, ca, principals=["tester"]), key)
    algorithm = "rsa-sha2-512" if kind == "rsa" else None
    # keytool signs with the certificate: ssh-keygen names the signer by it
    signature_file = tmp_path / "ours.sig"
    signature_file.write_text(build_sshsig(certified, MESSAGE, algorithm))
    result = check_novalidate(signature_file)
    assert result.returncode == 0, result.stderr
    shown = f"{key.public.label}-CERT key {fingerprint(key.public)}"
    assert f'Good "{NAMESPACE}" signature with {shown}' in result.stdout
    sig = parse_sshsig(signature_file.read_text())
    sshsig.verify(sig, NAMESPACE, hashlib.sha512(MESSAGE).digest())
    # ssh-keygen signs with a certificate ssh-keygen -s made: keytool verifies
    theirs_key = keygen_key(kind, bits, tmp_path)
    path = theirs_key.write(tmp_path / "id")
    Path(f"{path}.pub").write_text(theirs_key.public_line + "\n")
    ca_path = our_key_file(ca, tmp_path / "ca")
    run([ssh_keygen(), "-q", "-s", ca_path, "-I", "id", "-n", "tester", f"{path}.pub"])
    result = run([ssh_keygen(), "-Y", "sign", "-f", f"{path}-cert.pub", "-n", NAMESPACE],
                 input=MESSAGE.decode())  # fmt: skip
    assert result.returncode == 0, result.stderr
    theirs = parse_sshsig(result.stdout)
    assert isinstance(theirs.key, cert.Certificate) and theirs.key.ca == ca.public
    sshsig.verify(theirs, NAMESPACE, hashlib.sha512(MESSAGE).digest())
    with pytest.raises(sshsig.SignatureError):
        sshsig.verify(theirs, NAMESPACE, hashlib.sha512(MESSAGE + b"!").digest())


def test_sha1_signature_by_an_rsa_certificate_is_refused(tmp_path: Path) -> None:
    key = our_key("rsa", 2048)
    certified = cert.CertifiedPrivate(cert.sign(key.public, our_key("ed25519", 256)), key)
    signature_file = tmp_path / "sha1.sig"
    signature_file.write_text(build_sshsig(certified, MESSAGE, "ssh-rsa"))
    assert check_novalidate(signature_file).returncode != 0  # ssh-keygen refuses it
    sig = parse_sshsig(signature_file.read_text())
    with pytest.raises(sshsig.SignatureError):
        sshsig.verify(sig, NAMESPACE, hashlib.sha512(MESSAGE).digest())


def our_key_file(key: PrivateKey, path: Path) -> Path:
    write_atomic(path, openssh.dump(key, "ca"), PRIVATE_MODE)
    return path

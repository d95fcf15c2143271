"""SSH signatures made with OpenSSH certificates: ``keytool sign`` / ``keytool verify``
against ``ssh-keygen -Y sign / verify / check-novalidate / find-principals``, with
certificates that ``ssh-keygen -s`` made. Whatever ssh-keygen prints and its exit status
are the reference; every verdict is asked of both."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from keytool import sshsig
from keytool.keys.blob import signature_algorithm
from keytool.keys.cert import Certificate
from tests.interop.agenthelp import keytool_agent, openssh_agent
from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require, run

MESSAGE = b"a release tarball, or any file\n" * 40
NOW_VALID = "20200101:21000101"
EXPIRED = "20100101:20200101"  # valid in 2015, not in 2005 nor now


def keytool(
    *args: str | Path, stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*KEYTOOL, *map(str, args)], input=stdin, capture_output=True, env=env or base_env(),
        timeout=60,
    )  # fmt: skip


def keygen(
    *args: str | Path, stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require("ssh-keygen"), *map(str, args)], input=stdin, capture_output=True,
        env=env or base_env(), timeout=60,
    )  # fmt: skip


def new_key(path: Path, kind: str = "ed25519", bits: str = "256") -> Path:
    run([require("ssh-keygen"), "-q", "-t", kind, "-b", bits, "-N", "", "-C", "", "-f", path])
    return path


def certify(ca: Path, key: Path, out: Path, *options: str) -> Path:
    """``ssh-keygen -s CA`` of KEY.pub, the certificate moved to ``out``."""
    run([require("ssh-keygen"), "-q", "-s", ca, "-I", "signer-id", *options, f"{key}.pub"])
    shutil.move(f"{key}-cert.pub", out)
    return out


def pub(path: Path) -> str:
    return " ".join(path.read_text().split()[:2])


def ssh_keygen_signs(cert: Path, namespace: str = "file") -> bytes:
    made = keygen("-Y", "sign", "-f", cert, "-n", namespace, stdin=MESSAGE)
    assert made.returncode == 0, made.stderr
    return made.stdout


@dataclass
class Setup:
    folder: Path
    ca: Path
    other_ca: Path
    user: Path  # private key; user-cert.pub beside it: alice,bob, valid now
    certs: dict[str, Path]  # name -> certificate file
    signatures: dict[str, Path]  # name -> ssh-keygen's signature with that certificate


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    folder = tmp_path_factory.mktemp("certsig")
    ca = new_key(folder / "ca")
    other_ca = new_key(folder / "other_ca")
    user = new_key(folder / "user")
    (folder / "certs").mkdir()
    certs = {
        "good": certify(
            ca, user, folder / "certs" / "good-cert.pub", "-n", "alice,bob", "-V", NOW_VALID
        ),
        "expired": certify(
            ca, user, folder / "certs" / "expired-cert.pub", "-n", "alice", "-V", EXPIRED
        ),
        "host": certify(
            ca, user, folder / "certs" / "host-cert.pub", "-h", "-n", "alice", "-V", NOW_VALID
        ),
        "no-principals": certify(ca, user, folder / "certs" / "none-cert.pub", "-V", NOW_VALID),
    }
    shutil.copy(certs["good"], f"{user}-cert.pub")
    signatures = {}
    for name, cert in certs.items():
        # ssh-keygen finds the private key of X-cert.pub as X
        signing = folder / f"{name}"
        shutil.copy(user, signing)
        os.chmod(signing, 0o600)
        shutil.copy(cert, f"{signing}-cert.pub")
        signatures[name] = folder / f"{name}.sig"
        signatures[name].write_bytes(ssh_keygen_signs(Path(f"{signing}-cert.pub")))
    return Setup(folder, ca, other_ca, user, certs, signatures)


def same_verdicts(setup: Setup, line: str, identity: str, signature: Path,
                  namespace: str = "file", options: tuple[str, ...] = ()) -> bytes:  # fmt: skip
    """keytool verify and --find-principals answer as ssh-keygen -Y verify and -Y
    find-principals do (status and stdout); keytool's stdout of verify."""
    signers = setup.folder / "allowed_signers"
    signers.write_text(line + "\n")
    args = ["-f", str(signers), "-I", identity, "-n", namespace, "-s", str(signature), *options]
    mine = keytool("verify", *args, stdin=MESSAGE)
    reference = keygen("-Y", "verify", *args, stdin=MESSAGE)
    assert (mine.returncode, mine.stdout) == (reference.returncode, reference.stdout), (
        mine.stderr, reference.stderr)  # fmt: skip
    if mine.returncode != 0:
        assert len(mine.stderr.splitlines()) == 1, mine.stderr
    find = ["-f", str(signers), "-s", str(signature), *options]
    mine_found = keytool("verify", "--find-principals", *find)
    reference_found = keygen("-Y", "find-principals", *find)
    assert (mine_found.returncode, mine_found.stdout) == (
        reference_found.returncode, reference_found.stdout)  # fmt: skip
    return mine.stdout


def ca_line(setup: Setup, principals: str, options: str = "", ca: Path | None = None) -> str:
    extra = f"{options}," if options else ""
    return f"{principals} {extra}cert-authority {pub(Path(f'{ca or setup.ca}.pub'))}"


def test_good_certificate_signer(setup: Setup) -> None:
    said = same_verdicts(setup, ca_line(setup, "alice,carol"), "alice", setup.signatures["good"])
    fingerprint = keygen("-l", "-f", f"{setup.user}.pub").stdout.split()[1]
    # ssh-keygen names the signer by the certificate type and the certified key
    assert said == b'Good "file" signature for alice with ED25519-CERT key ' + fingerprint + b"\n"


@pytest.mark.parametrize(
    ("principals", "options", "identity", "cert", "verify_time"),
    [
        ("alice,carol", "", "carol", "good", None),  # the line lists carol, the cert not
        ("alice,carol", "", "bob", "good", None),  # the cert lists bob, the line not
        ("*", "", "bob", "good", None),
        ("*,!bob", "", "bob", "good", None),
        ("a*", "", "alice", "good", None),
        ("alice", "", "alice", "expired", None),
        ("alice", "", "alice", "expired", "verify-time=20150601"),
        ("alice", "", "alice", "expired", "verify-time=20050601"),
        ("alice", "", "alice", "good", "verify-time=21100101"),
        ("alice", "", "alice", "host", None),
        ("alice", "", "alice", "no-principals", None),
        ("alice", 'namespaces="git"', "alice", "good", None),
        ("alice", 'namespaces="git,f*"', "alice", "good", None),
        ("alice", 'valid-before="20200101"', "alice", "good", None),
        ("alice", 'valid-before="20200101"', "alice", "good", "verify-time=20191201"),
        ("alice", 'valid-after="20990101"', "alice", "good", None),
    ],
)
def test_cert_authority_lines_decide_as_ssh_keygen(
    setup: Setup, principals: str, options: str, identity: str, cert: str, verify_time: str | None
) -> None:
    line = ca_line(setup, principals, options)
    extra = ("-O", verify_time) if verify_time else ()
    same_verdicts(setup, line, identity, setup.signatures[cert], options=extra)


def test_another_ca_refuses(setup: Setup) -> None:
    line = ca_line(setup, "alice", ca=setup.other_ca)
    assert same_verdicts(setup, line, "alice", setup.signatures["good"]).startswith(b"Could not")


def test_plain_key_line_and_certificate_signature_never_meet(setup: Setup) -> None:
    good = setup.signatures["good"]
    # the certified key on a plain line does not allow its certificate
    plain = f"alice {pub(Path(f'{setup.user}.pub'))}"
    assert same_verdicts(setup, plain, "alice", good).startswith(b"Could not")
    # a cert-authority line naming the signing key itself is not its CA
    user_as_ca = f"alice cert-authority {pub(Path(f'{setup.user}.pub'))}"
    assert same_verdicts(setup, user_as_ca, "alice", good).startswith(b"Could not")
    # nor does it allow a signature by that key without the certificate
    plain_sig = setup.folder / "plain.sig"
    plain_sig.write_bytes(ssh_keygen_signs(setup.user))
    assert same_verdicts(setup, user_as_ca, "alice", plain_sig).startswith(b"Could not")
    # a line holding the certificate itself, as a key, matches exactly that certificate
    exact = f"alice {pub(setup.certs['good'])}"
    assert same_verdicts(setup, exact, "alice", good).startswith(b"Good")
    other = f"alice {pub(setup.certs['expired'])}"
    assert same_verdicts(setup, other, "alice", good).startswith(b"Could not")


def test_namespace_of_the_signature(setup: Setup) -> None:
    # a signature for "file" checked as one for "git"
    line = ca_line(setup, "alice")
    said = same_verdicts(setup, line, "alice", setup.signatures["good"], namespace="git")
    assert said == b"Could not verify signature.\n"


def test_check_novalidate_and_find_principals(setup: Setup) -> None:
    for signature in setup.signatures.values():
        novalidate = ["-n", "file", "-s", str(signature)]
        mine = keytool("verify", *novalidate, stdin=MESSAGE)
        reference = keygen("-Y", "check-novalidate", *novalidate, stdin=MESSAGE)
        assert (mine.returncode, mine.stdout) == (reference.returncode, reference.stdout)
        assert b"ED25519-CERT key" in mine.stdout
    signers = setup.folder / "allowed_signers"
    signature = setup.signatures["good"]
    for line, found in (
        (ca_line(setup, "*"), b"alice\nbob\n"),
        (ca_line(setup, "b*,a*,alice"), b"bob\nalice\nalice\n"),
        (ca_line(setup, "carol") + "\n" + ca_line(setup, "bob,alice"), b"bob\nalice\n"),
    ):
        signers.write_text(line + "\n")
        find = ["-f", str(signers), "-s", str(signature)]
        mine = keytool("verify", "--find-principals", *find)
        reference = keygen("-Y", "find-principals", *find)
        assert (mine.returncode, mine.stdout) == (reference.returncode, reference.stdout)
        assert mine.stdout == found


@pytest.mark.parametrize(("kind", "bits"), [("ed25519", "256"), ("rsa", "2048"), ("ecdsa", "384")])
def test_keytool_signs_with_a_certificate(tmp_path: Path, kind: str, bits: str) -> None:
    ca = new_key(tmp_path / "ca")
    key = new_key(tmp_path / "id", kind, bits)
    cert = certify(ca, key, tmp_path / "id-cert.pub", "-n", "alice", "-V", NOW_VALID)
    signed = keytool("sign", "-f", cert, "-n", "file", stdin=MESSAGE)
    assert signed.returncode == 0, signed.stderr
    ours = tmp_path / "ours.sig"
    ours.write_bytes(signed.stdout)
    # the signature names the certificate, and an RSA key signs with rsa-sha2-512
    parsed = sshsig.parse(signed.stdout)
    assert isinstance(parsed.key, Certificate)
    assert parsed.key.to_wire() == base64.b64decode(cert.read_text().split()[1])
    if kind == "rsa":
        assert signature_algorithm(parsed.signature) == "rsa-sha2-512"
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice cert-authority {pub(Path(f'{ca}.pub'))}\n")
    check = ["-Y", "verify", "-f", signers, "-I", "alice", "-n", "file", "-s", ours]
    verdict = keygen(*check, stdin=MESSAGE)
    assert verdict.returncode == 0, verdict.stderr
    label = {"ed25519": b"ED25519", "rsa": b"RSA", "ecdsa": b"ECDSA"}[kind]
    assert verdict.stdout.startswith(
        b'Good "file" signature for alice with ' + label + b"-CERT key"
    )
    assert keygen(*check, stdin=MESSAGE + b"!").returncode != 0
    found = keygen("-Y", "find-principals", "-f", signers, "-s", ours)
    assert found.stdout == b"alice\n"
    if kind == "ed25519":  # deterministic: the very bytes ssh-keygen writes
        assert signed.stdout == ssh_keygen_signs(cert)


def test_a_private_key_signs_as_itself_beside_its_certificate(tmp_path: Path) -> None:
    ca = new_key(tmp_path / "ca")
    key = new_key(tmp_path / "id")
    certify(ca, key, tmp_path / "id-cert.pub", "-n", "alice", "-V", NOW_VALID)
    ours = keytool("sign", "-f", key, "-n", "file", stdin=MESSAGE)
    theirs = keygen("-Y", "sign", "-f", key, "-n", "file", stdin=MESSAGE)
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout  # ED25519: the plain key, as ssh-keygen
    assert not isinstance(sshsig.parse(ours.stdout).key, Certificate)


@pytest.mark.parametrize("agent_kind", ["ssh-agent", "keytool-agent"])
def test_signing_with_a_certificate_held_by_the_agent(tmp_path: Path, agent_kind: str) -> None:
    ca = new_key(tmp_path / "ca")
    key = new_key(tmp_path / "id", "rsa", "2048")
    cert = certify(ca, key, tmp_path / "id-cert.pub", "-n", "alice", "-V", NOW_VALID)
    lone = new_key(tmp_path / "lone")  # in the agent without a certificate
    lone_cert = certify(ca, lone, tmp_path / "lone-cert.pub", "-n", "alice", "-V", NOW_VALID)
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice cert-authority {pub(Path(f'{ca}.pub'))}\n")
    start = openssh_agent if agent_kind == "ssh-agent" else keytool_agent
    with start(tmp_path / "agent") as agent:
        env = base_env(SSH_AUTH_SOCK=str(agent.sock))
        added = subprocess.run([require("ssh-add"), str(key)], env=env, capture_output=True,
                               timeout=60)  # fmt: skip
        assert added.returncode == 0 and b"Certificate added" in added.stderr, added.stderr
        loose = tmp_path / "loose"
        shutil.copy(lone, loose)
        os.chmod(loose, 0o600)
        assert subprocess.run([require("ssh-add"), str(loose)], env=env, capture_output=True,
                              timeout=60).returncode == 0  # fmt: skip
        os.unlink(key)  # only the agent can sign with it now
        os.unlink(lone)
        made = {
            flags: keytool("sign", *flags, "-f", cert, "-n", "file", stdin=MESSAGE, env=env)
            for flags in ((), ("-U",))
        }
        # the agent holds lone's key, not its certificate: ssh-keygen -U fails, so do we
        missing = keytool("sign", "-U", "-f", lone_cert, "-n", "file", stdin=MESSAGE, env=env)
        reference = keygen("-Y", "sign", "-U", "-f", lone_cert, "-n", "file", stdin=MESSAGE,
                           env=env)  # fmt: skip
    assert reference.returncode != 0
    assert missing.returncode != 0 and missing.stdout == b""
    assert len(missing.stderr.splitlines()) == 1
    for signed in made.values():
        assert signed.returncode == 0, signed.stderr
        signature = tmp_path / "sig"
        signature.write_bytes(signed.stdout)
        verdict = keygen("-Y", "verify", "-f", signers, "-I", "alice", "-n", "file",
                         "-s", signature, stdin=MESSAGE)  # fmt: skip
        assert verdict.returncode == 0, verdict.stderr
        assert b"RSA-CERT key" in verdict.stdout


def test_a_certificate_of_another_key_is_refused(tmp_path: Path) -> None:
    ca = new_key(tmp_path / "ca")
    key = new_key(tmp_path / "id")
    other = new_key(tmp_path / "other")
    certify(ca, other, tmp_path / "id-cert.pub", "-n", "alice", "-V", NOW_VALID)
    cert = tmp_path / "id-cert.pub"
    reference = keygen("-Y", "sign", "-f", cert, "-n", "file", stdin=MESSAGE)
    ours = keytool("sign", "-f", cert, "-n", "file", stdin=MESSAGE)
    assert reference.returncode != 0 and reference.stdout == b""
    assert ours.returncode != 0 and ours.stdout == b""
    assert len(ours.stderr.splitlines()) == 1
    # with no private key beside the certificate, and no agent: the same
    os.unlink(key)
    assert keygen("-Y", "sign", "-f", cert, "-n", "file", stdin=MESSAGE).returncode != 0
    alone = keytool("sign", "-f", cert, "-n", "file", stdin=MESSAGE)
    assert alone.returncode != 0 and len(alone.stderr.splitlines()) == 1


def test_malformed_certificates_are_one_line(setup: Setup, tmp_path: Path) -> None:
    # a signature whose certificate the CA did not sign (its key id changed afterwards)
    good = sshsig.parse(setup.signatures["good"].read_bytes())
    assert isinstance(good.key, Certificate)
    forged = Certificate.__new__(type(good.key))
    for name in Certificate.__slots__:
        setattr(forged, name, getattr(good.key, name))
    forged.key_id = "someone-else"
    forged.signed = None  # written from its fields, the changed key id with them
    text = sshsig.armor(forged, good.namespace, good.hash_algorithm, good.signature)
    bad = tmp_path / "forged.sig"
    bad.write_text(text)
    signers = tmp_path / "allowed_signers"
    signers.write_text(ca_line(setup, "alice") + "\n")
    args = ["-f", str(signers), "-I", "alice", "-n", "file", "-s", str(bad)]
    assert keygen("-Y", "verify", *args, stdin=MESSAGE).returncode != 0
    for command in (
        ["verify", *args],
        ["verify", "-n", "file", "-s", str(bad)],
        ["verify", "--find-principals", "-f", str(signers), "-s", str(bad)],
    ):
        done = keytool(*command, stdin=MESSAGE)
        assert done.returncode != 0
        assert len(done.stderr.splitlines()) == 1 and b"Traceback" not in done.stderr
    # a cert-authority line whose key is broken
    line = ca_line(setup, "alice")
    signers.write_text(line[:-8] + "\n")  # the key's base64 cut short
    done = keytool("verify", *args[:-1], str(setup.signatures["good"]), stdin=MESSAGE)
    assert done.returncode != 0 and len(done.stderr.splitlines()) == 1
    # a certificate file that is not one, to sign with
    junk = tmp_path / "junk-cert.pub"
    junk.write_text("ssh-ed25519-cert-v01@openssh.com AAAAC3NzaC1lZDI1NTE5\n")
    shutil.copy(setup.user, tmp_path / "junk")
    done = keytool("sign", "-f", junk, "-n", "file", stdin=MESSAGE)
    assert done.returncode != 0 and len(done.stderr.splitlines()) == 1

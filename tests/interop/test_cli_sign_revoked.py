"""``keytool verify -r`` against ``ssh-keygen -Y verify -r``: signatures made by
ssh-keygen with a plain key and with a certificate, revocation files made by
``ssh-keygen -k`` (keys, serials, key IDs, CA keys) or plain public key files. For
every file both are asked the same question; keytool must print what ssh-keygen
prints and exit as it exits, and the reference verdict is checked too, so that a file
that revokes nothing cannot make the test pass."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require, run

MESSAGE = b"release notes\n" * 100
GOOD = 0
REVOKED = 255


def keygen(*args: str | Path) -> None:
    done = run([require("ssh-keygen"), *args])
    assert done.returncode == 0, done.stderr


def new_key(path: Path) -> Path:
    keygen("-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path)
    return path


def sign(key_file: Path, out: Path) -> Path:
    made = subprocess.run(
        [require("ssh-keygen"), "-Y", "sign", "-f", str(key_file), "-n", "file"],
        input=MESSAGE, capture_output=True, env=base_env(), timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    out.write_bytes(made.stdout)
    return out


@dataclass
class Setup:
    folder: Path
    plain: Path  # private key that signed plain.sig
    user: Path  # private key whose certificate (serial 7, ID "carol") signed cert.sig
    ca: Path
    other: Path
    signers: Path  # allowed_signers: alice with the plain key, carol through the CA


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    folder = tmp_path_factory.mktemp("revokedsig")
    plain, user, ca, other = (new_key(folder / n) for n in ("plain", "user", "ca", "other"))
    keygen("-q", "-s", ca, "-I", "carol", "-n", "carol", "-z", "7", f"{user}.pub")
    sign(plain, folder / "plain.sig")
    sign(Path(f"{user}-cert.pub"), folder / "cert.sig")
    signers = folder / "allowed_signers"
    signers.write_text(
        f"alice {Path(f'{plain}.pub').read_text().strip()}\n"
        f"carol cert-authority {Path(f'{ca}.pub').read_text().strip()}\n"
    )
    return Setup(folder, plain, user, ca, other, signers)


def krl(setup: Setup, name: str, *sources: Path, ca: Path | None = None) -> Path:
    path = setup.folder / f"{name}.krl"
    extra: list[str | Path] = ["-s", f"{ca}.pub"] if ca is not None else []
    keygen("-k", "-f", path, *extra, *sources)
    return path


def spec(setup: Setup, name: str, text: str) -> Path:
    path = setup.folder / name
    path.write_text(text)
    return path


def verdicts(setup: Setup, signature: str, identity: str, revoked: Path) -> int:
    """keytool verify -r and ssh-keygen -Y verify -r on the same files: same stdout,
    same status (returned); keytool says why on one stderr line when it refuses."""
    args = ["-f", str(setup.signers), "-I", identity, "-n", "file"]
    args += ["-s", str(setup.folder / signature), "-r", str(revoked)]

    def ask(command: list[str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            command, input=MESSAGE, capture_output=True, env=base_env(), timeout=60
        )

    reference = ask([require("ssh-keygen"), "-Y", "verify", *args])
    mine = ask([*KEYTOOL, "verify", *args])
    assert (mine.returncode, mine.stdout) == (reference.returncode, reference.stdout), (
        mine.stderr,
        reference.stderr,
    )
    if mine.returncode != 0:
        assert mine.stdout == b"Could not verify signature.\n"
        lines = mine.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in lines[0], mine.stderr
    return reference.returncode


def test_plain_key_revoked_by_krl_and_by_key_file(setup: Setup) -> None:
    plain_pub = Path(f"{setup.plain}.pub")
    assert verdicts(setup, "plain.sig", "alice", krl(setup, "plain", plain_pub)) == REVOKED
    other_line = Path(f"{setup.other}.pub").read_text()
    listing = spec(setup, "revoked_keys", f"# gone\n{other_line}{plain_pub.read_text()}")
    assert verdicts(setup, "plain.sig", "alice", listing) == REVOKED
    # by fingerprint (a "hash:" line of ssh-keygen's KRL spec)
    fp = run([require("ssh-keygen"), "-lf", plain_pub]).stdout.split()[1]
    by_hash = krl(setup, "plain-hash", spec(setup, "spec-hash", f"hash: {fp}\n"))
    assert verdicts(setup, "plain.sig", "alice", by_hash) == REVOKED


def test_plain_key_not_revoked(setup: Setup) -> None:
    other_pub = Path(f"{setup.other}.pub")
    assert verdicts(setup, "plain.sig", "alice", krl(setup, "other", other_pub)) == GOOD
    assert verdicts(setup, "plain.sig", "alice", other_pub) == GOOD
    empty = spec(setup, "empty", "")
    assert verdicts(setup, "plain.sig", "alice", empty) == GOOD


@pytest.mark.parametrize(
    ("name", "lines", "expected"),
    [
        ("serial", "serial: 5-9\n", REVOKED),
        ("other-serial", "serial: 8\nserial: 1-6\n", GOOD),
        ("key-id", "id: carol\n", REVOKED),
        ("other-id", "id: dave\n", GOOD),
    ],
)
def test_certificate_by_serial_and_key_id(
    setup: Setup, name: str, lines: str, expected: int
) -> None:
    revoked = krl(setup, f"cert-{name}", spec(setup, f"spec-{name}", lines), ca=setup.ca)
    assert verdicts(setup, "cert.sig", "carol", revoked) == expected


def test_certificate_by_its_ca_or_its_key(setup: Setup) -> None:
    ca_pub = Path(f"{setup.ca}.pub")
    assert verdicts(setup, "cert.sig", "carol", krl(setup, "ca", ca_pub)) == REVOKED
    assert verdicts(setup, "cert.sig", "carol", ca_pub) == REVOKED  # a key list
    user_pub = Path(f"{setup.user}.pub")
    assert verdicts(setup, "cert.sig", "carol", krl(setup, "user", user_pub)) == REVOKED
    # the same serial under another CA revokes nothing
    elsewhere = krl(setup, "other-ca", spec(setup, "spec-7", "serial: 7\n"), ca=setup.other)
    assert verdicts(setup, "cert.sig", "carol", elsewhere) == GOOD


def test_broken_revocation_files(setup: Setup) -> None:
    whole = krl(setup, "whole", Path(f"{setup.other}.pub")).read_bytes()
    cut = setup.folder / "cut.krl"
    cut.write_bytes(whole[:-3])
    junk = spec(setup, "junk", "not a key at all\n")
    for path in (cut, junk, setup.folder / "missing"):
        assert verdicts(setup, "plain.sig", "alice", path) == REVOKED


def test_without_allowed_signers_r_still_applies(setup: Setup) -> None:
    """keytool's choice: -r counts in check-novalidate mode too (ssh-keygen -Y
    check-novalidate has no -r), so a revoked signer never reads as good."""
    revoked = krl(setup, "plain-novalidate", Path(f"{setup.plain}.pub"))
    args = ["verify", "-n", "file", "-s", str(setup.folder / "plain.sig")]
    good = subprocess.run([*KEYTOOL, *args], input=MESSAGE, capture_output=True, timeout=60)
    assert good.returncode == 0, good.stderr
    refused = subprocess.run(
        [*KEYTOOL, *args, "-r", str(revoked)], input=MESSAGE, capture_output=True, timeout=60
    )
    assert refused.returncode == REVOKED
    assert refused.stdout == b"Could not verify signature.\n"
    assert f"is revoked by {revoked}" in refused.stderr.decode()

"""``-O`` for ``keytool sign`` and ``keytool verify`` as ssh-keygen -Y takes it:
``hashalg=`` to sign, ``verify-time=`` and ``print-pubkey`` to verify, anything else
refused as ssh-keygen refuses it. ssh-keygen 9.2's output and status are the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.test_cli_sign import keygen, keytool, make_key

MESSAGE = b"v1.0 release notes\n"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """An Ed25519 key (its signatures are deterministic), a user certificate of it, and
    an allowed_signers file naming the key for alice and its CA for bob."""
    folder = tmp_path_factory.mktemp("sign-options")
    key = make_key(folder, "ed25519", "256")
    ca = make_key(folder, "ecdsa", "256")
    made = keygen("-q", "-s", ca, "-I", "bob-cert", "-n", "bob", f"{key}.pub")
    assert made.returncode == 0, made.stderr
    pub = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    ca_pub = " ".join(Path(f"{ca}.pub").read_text().split()[:2])
    signers = folder / "allowed_signers"
    signers.write_text(f"alice {pub}\nbob cert-authority {ca_pub}\n")
    return key, Path(f"{key}-cert.pub"), signers


@pytest.mark.parametrize("hashalg", ["sha256", "sha512"])
def test_hashalg_signs_as_ssh_keygen(setup: tuple[Path, Path, Path], hashalg: str) -> None:
    key, _, signers = setup
    args = ["-f", str(key), "-n", "file", "-O", f"hashalg={hashalg}"]
    theirs = keygen("-Y", "sign", *args, stdin=MESSAGE)
    mine = keytool("sign", *args, stdin=MESSAGE)
    assert mine.returncode == theirs.returncode == 0, mine.stderr
    assert mine.stdout == theirs.stdout  # Ed25519: the same bytes, the hash named inside
    sig = signers.parent / f"{hashalg}.sig"
    sig.write_bytes(mine.stdout)
    check = ["-f", str(signers), "-I", "alice", "-n", "file", "-s", str(sig)]
    assert keygen("-Y", "verify", *check, stdin=MESSAGE).returncode == 0


@pytest.mark.parametrize("option", ["hashalg=md5", "hashalg=SHA256", "bogus", "verify-time=2020"])
def test_sign_refuses_what_ssh_keygen_refuses(
    setup: tuple[Path, Path, Path], tmp_path: Path, option: str
) -> None:
    key = setup[0]
    message = tmp_path / "message"
    message.write_bytes(MESSAGE)
    args = ["-f", str(key), "-n", "file", "-O", option, str(message)]
    theirs = keygen("-Y", "sign", *args)
    assert theirs.returncode != 0
    mine = keytool("sign", *args)
    assert mine.returncode != 0 and not (tmp_path / "message.sig").exists()
    assert len(mine.stderr.splitlines()) == 1 and b"Traceback" not in mine.stderr


def test_print_pubkey_as_ssh_keygen(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    key, cert, signers = setup
    for signer, public, identity in ((key, Path(f"{key}.pub"), "alice"), (cert, cert, "bob")):
        made = keygen("-Y", "sign", "-f", signer, "-n", "file", stdin=MESSAGE)
        assert made.returncode == 0, made.stderr
        sig = tmp_path / "message.sig"
        sig.write_bytes(made.stdout)
        for check in (
            ["-f", str(signers), "-I", identity, "-n", "file", "-s", str(sig)],
            ["-n", "file", "-s", str(sig)],  # -Y check-novalidate
        ):
            operation = "verify" if "-f" in check else "check-novalidate"
            theirs = keygen("-Y", operation, *check, "-O", "print-pubkey", stdin=MESSAGE)
            mine = keytool("verify", *check, "-O", "print-pubkey", stdin=MESSAGE)
            assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout)
            assert mine.returncode == 0
            # the signer's key, or its whole certificate, as ssh-keygen printed it
            assert mine.stdout.splitlines()[-1].split() == public.read_bytes().split()[:2]
        # a refused signature prints no key
        check = ["-f", str(signers), "-I", "carol", "-n", "file", "-s", str(sig)]
        theirs = keygen("-Y", "verify", *check, "-O", "print-pubkey", stdin=MESSAGE)
        mine = keytool("verify", *check, "-O", "print-pubkey", stdin=MESSAGE)
        assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout)
        assert mine.stdout == b"Could not verify signature.\n"


def test_verify_options_refused_where_ssh_keygen_refuses_them(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    key, _, signers = setup
    made = keygen("-Y", "sign", "-f", key, "-n", "file", stdin=MESSAGE)
    sig = tmp_path / "message.sig"
    sig.write_bytes(made.stdout)
    verify = ["-f", str(signers), "-I", "alice", "-n", "file", "-s", str(sig)]
    cases = [
        (["-Y", "verify", *verify], ["verify", *verify], "hashalg=sha512"),
        (["-Y", "verify", *verify], ["verify", *verify], "bogus"),
        (
            ["-Y", "find-principals", "-f", str(signers), "-s", str(sig)],
            ["verify", "--find-principals", "-f", str(signers), "-s", str(sig)],
            "print-pubkey",
        ),
        (
            ["-Y", "match-principals", "-f", str(signers), "-I", "alice"],
            ["verify", "--match-principals", "-f", str(signers), "-I", "alice"],
            "verify-time=20200101",
        ),
    ]
    for theirs_args, mine_args, option in cases:
        theirs = keygen(*theirs_args, "-O", option, stdin=MESSAGE)
        mine = keytool(*mine_args, "-O", option, stdin=MESSAGE)
        # ssh-keygen 9.2: 255, or 246 for match-principals (its -10 error code as the
        # status); keytool: 255, as for its other -Y failures
        assert theirs.returncode != 0 and mine.returncode == 255, (option, theirs, mine)
        assert f'Invalid option "{option}"'.encode() in theirs.stderr
        assert mine.stderr == f'keytool: Invalid option "{option}"\n'.encode()
        assert mine.stdout == theirs.stdout  # verify: "Could not verify signature."

"""allowed_signers files read as ssh-keygen reads them: ``keytool verify
--match-principals`` against ``ssh-keygen -Y match-principals``, and bad lines in
``verify`` and ``--find-principals``, which ssh-keygen reports and passes over (a line
for another principal is not even parsed). ssh-keygen's output and status are the
reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.test_cli_sign import keygen, keytool, make_key

MESSAGE = b"a release tarball\n"
IDENTITIES = [
    "alice@example.com", "x@corp.example", "bob", "a.dev", "evil.dev", "two words",
    "alice", "carol", "dave", "nobody", "*", "",
]  # fmt: skip


def lines(key: Path, ca: Path) -> dict[str, str]:
    pub = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    ca_pub = " ".join(Path(f"{ca}.pub").read_text().split()[:2])
    return {
        "patterns": (
            f"alice@example.com,*@corp.example {pub}\n"
            "# a comment, then a blank line\n\n"
            f'bob namespaces="git,file" {pub}\n'
            f"*.dev,!evil.dev {pub} a comment\n"
            f'"two words",carol valid-after="20200101",valid-before="20991231Z" {pub}\n'
            f"dave cert-authority {ca_pub}\n"
            f"  bob   {pub}\n"
        ),
        "bad for others": f"bob garbage\nalice {pub}\ncarol nonsense\n",
        "bad then good": f'alice garbage\nalice namespaces="git {pub}\nalice {pub}\n',
        "bad options": f'alice valid-after="2020" {pub}\nalice {pub}\nbob unknown {pub}\n',
    }


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("principals")
    key = make_key(folder, "ed25519", "256")
    ca = folder / "ca"
    made = keygen("-q", "-t", "ed25519", "-N", "", "-C", "", "-f", ca)
    assert made.returncode == 0, made.stderr
    message = folder / "message"
    message.write_bytes(MESSAGE)
    signed = keygen("-Y", "sign", "-f", key, "-n", "file", message)
    assert signed.returncode == 0, signed.stderr
    return key, ca, folder / "message.sig"


@pytest.fixture(params=["patterns", "bad for others", "bad then good", "bad options"])
def signers(request: pytest.FixtureRequest, tmp_path: Path, keys: tuple[Path, Path, Path]) -> Path:
    """An allowed_signers file of each kind."""
    key, ca, _ = keys
    path = tmp_path / "allowed_signers"
    path.write_text(lines(key, ca)[request.param])
    return path


def test_match_principals_as_ssh_keygen(signers: Path) -> None:
    for identity in IDENTITIES:
        args = ["-f", str(signers), "-I", identity]
        theirs = keygen("-Y", "match-principals", *args)
        mine = keytool("verify", "--match-principals", *args)
        assert mine.stdout == theirs.stdout, (identity, theirs.stderr, mine.stderr)
        # ssh-keygen 9.2 exits with 210 (no line matched) or 252 (a bad line among the
        # matching ones): its negative error code as the status; keytool too, and says
        # the bad line, then "No principal matched.", as it does
        assert mine.returncode == theirs.returncode, (identity, theirs.stderr, mine.stderr)
        said = mine.stderr.decode().splitlines()
        assert len(said) == len(theirs.stderr.decode().splitlines()), (theirs, mine)
        assert b"Traceback" not in mine.stderr
        if mine.returncode:
            assert said[-1] == "keytool: No principal matched.", said


def test_bad_lines_are_passed_over_as_ssh_keygen_does(
    signers: Path, keys: tuple[Path, Path, Path]
) -> None:
    signature = keys[2]
    verified = 0
    for identity in IDENTITIES:
        if not identity:
            continue
        args = ["-f", str(signers), "-I", identity, "-n", "file", "-s", str(signature)]
        theirs = keygen("-Y", "verify", *args, stdin=MESSAGE)
        mine = keytool("verify", *args, stdin=MESSAGE)
        assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), identity
        bad_lines = theirs.stderr.decode().splitlines()  # ssh-keygen: one per bad line reached
        said = mine.stderr.decode().splitlines()
        if mine.returncode == 0:  # each bad line reported, in a line of its own
            assert len(said) == len(bad_lines), (theirs, mine)
            assert all(line.endswith("; line ignored") for line in said)
            verified += 1
        else:  # one line: why not; here no good line is about the signer: the bad one
            assert len(said) == 1, mine.stderr
            if bad_lines:
                number = bad_lines[0].split(":")[1]  # ssh-keygen's "FILE:N: why"
                assert f"line {number}: " in said[0], (said, bad_lines)
                assert said[0].endswith("(the line is ignored)"), said
    assert verified, "each file has a good line, bad lines before it or not"
    args = ["-f", str(signers), "-s", str(signature)]
    theirs = keygen("-Y", "find-principals", *args)
    mine = keytool("verify", "--find-principals", *args)
    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout)
    assert mine.returncode == 0
    said = mine.stderr.decode().splitlines()
    assert len(said) == len(theirs.stderr.decode().splitlines())
    assert all(line.endswith("; line ignored") for line in said)

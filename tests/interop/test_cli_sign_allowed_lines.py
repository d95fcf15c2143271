"""allowed_signers lines read as ssh-keygen 9.2 reads them (sshsig.c): where a line
ends, what separates the principals from the key, which options a line may hold and
how its times are read. Each case runs ``ssh-keygen -Y verify`` and ``keytool verify``
on the same files; the status and the output must agree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.test_cli_sign import base_env, keygen, keytool, make_key
from tests.peers import require

MESSAGE = b"release notes\n"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """alice's key and mallory's, and a signature of MESSAGE by each."""
    folder = tmp_path_factory.mktemp("allowed-lines")
    made: dict[str, Path] = {}
    for name in ("alice", "mallory"):
        (folder / name).mkdir()
        key = make_key(folder / name, "ed25519", "256")
        made[name] = key
        signed = keygen("-Y", "sign", "-f", key, "-n", "file", stdin=MESSAGE)
        assert signed.returncode == 0, signed.stderr
        (folder / f"{name}.sig").write_bytes(signed.stdout)
    return made


def _pub(key: Path) -> str:
    return " ".join(Path(f"{key}.pub").read_text().split()[:2])


def both(
    signers: Path, sig: Path, identity: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    args = ["-f", str(signers), "-I", identity, "-n", "file", "-s", str(sig), *extra]
    theirs = subprocess.run(
        [require("ssh-keygen"), "-Y", "verify", *args],
        input=MESSAGE,
        capture_output=True,
        env=env,
        timeout=60,
    )
    mine = keytool("verify", *args, stdin=MESSAGE, env=env)
    assert b"Traceback" not in mine.stderr
    return theirs, mine


@pytest.mark.parametrize(
    "separator",
    ["\x1c", "\x0b", "\x0c", "\r", "\x85", "\u2028"],
    ids=["FS", "VT", "FF", "CR", "NEL", "LS"],
)
def test_a_comment_cannot_start_a_line(
    keys: dict[str, Path], tmp_path: Path, separator: str
) -> None:
    """Only a newline ends a line: a comment holding another line break cannot name a
    second signer (here mallory's key for bob, inside alice's line)."""
    signers = tmp_path / "allowed_signers"
    line = f"alice {_pub(keys['alice'])} laptop{separator}bob {_pub(keys['mallory'])}\n"
    signers.write_bytes(line.encode("utf-8"))
    sig = keys["mallory"].parent.parent / "mallory.sig"
    theirs, mine = both(signers, sig, "bob")
    assert theirs.returncode == mine.returncode == 255
    assert mine.stdout == theirs.stdout == b"Could not verify signature.\n"
    find = ["-Y", "find-principals", "-f", str(signers), "-s", str(sig)]
    theirs_found = keygen(*find)
    mine_found = keytool("verify", "--find-principals", "-f", str(signers), "-s", str(sig))
    assert theirs_found.returncode == mine_found.returncode == 255
    assert mine_found.stdout == theirs_found.stdout == b""
    # alice's own signature still verifies through the same line, for both
    theirs, mine = both(signers, keys["alice"].parent.parent / "alice.sig", "alice")
    assert theirs.returncode == mine.returncode == 0
    assert mine.stdout == theirs.stdout


@pytest.mark.parametrize("blank", ["\t", " \t ", "\t\t"])
def test_tabs_separate_the_principals(keys: dict[str, Path], tmp_path: Path, blank: str) -> None:
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice{blank}{_pub(keys['alice'])}\n")
    sig = keys["alice"].parent.parent / "alice.sig"
    theirs, mine = both(signers, sig, "alice")
    assert theirs.returncode == mine.returncode == 0
    assert mine.stdout == theirs.stdout and b"alice" in mine.stdout
    found = keytool("verify", "--find-principals", "-f", str(signers), "-s", str(sig))
    assert found.returncode == 0 and found.stdout == b"alice\n"


@pytest.mark.parametrize(
    "options",
    [
        'valid-before="20200101",valid-before="20990101"',
        'valid-after="20200101",valid-after="20990101"',
        'namespaces="git",namespaces="*"',
        "namespaces=file",
        'namespaces="file',
        'namespaces="file",',
        'valid-after="20990101",valid-before="20200101"',
        'valid-after="20200101",valid-before="20200101"',
        'valid-after="19700101Z"',
        'valid-after="20200101UTC"',
        'valid-after="20200230"',
        'NAMESPACES="file",Valid-Before="20990101"',
        'namespaces="fi\\"le"',
        "cert-authority",
        "no-touch-required",
        'valid-before="20990101"x',
    ],
)
def test_options_as_ssh_keygen_reads_them(
    keys: dict[str, Path], tmp_path: Path, options: str
) -> None:
    """A line whose options ssh-keygen refuses grants nothing, through either tool;
    one it takes grants the same."""
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice {options} {_pub(keys['alice'])}\n")
    theirs, mine = both(signers, keys["alice"].parent.parent / "alice.sig", "alice")
    assert mine.returncode == theirs.returncode, (theirs.stderr, mine.stderr)
    assert mine.stdout == theirs.stdout


@pytest.mark.parametrize(
    ("line_time", "verify_time"),
    [
        ("20250701", "20250701043000Z"),  # New York is on daylight saving time then
        ("20250701Z", "20250630193000"),
        ("20250701", "20250701033000Z"),
        ("20250115", "20250115043000Z"),  # and not then
        ("20250115", "20250115053000Z"),
    ],
)
def test_times_are_read_without_daylight_saving(
    keys: dict[str, Path], tmp_path: Path, line_time: str, verify_time: str
) -> None:
    """ssh-keygen reads a local time with daylight saving off (its struct tm is
    zeroed): in July, 00:30 in New York by the clock is not yet 01:00 by its rule."""
    signers = tmp_path / "allowed_signers"
    signers.write_text(f'alice valid-after="{line_time}" {_pub(keys["alice"])}\n')
    env = {**base_env(), "TZ": "America/New_York"}
    if not Path("/usr/share/zoneinfo/America/New_York").exists():
        pytest.skip("no time zone data")
    sig = keys["alice"].parent.parent / "alice.sig"
    theirs, mine = both(signers, sig, "alice", "-O", f"verify-time={verify_time}", env=env)
    assert mine.returncode == theirs.returncode, (theirs.stderr, mine.stderr)
    assert mine.stdout == theirs.stdout


@pytest.mark.parametrize(
    "verify_time", ["20250101UTC", "20250101utc", "20250230", "19691231", "19700101Z", "2025"]
)
def test_verify_time_forms(keys: dict[str, Path], tmp_path: Path, verify_time: str) -> None:
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice {_pub(keys['alice'])}\n")
    sig = keys["alice"].parent.parent / "alice.sig"
    theirs, mine = both(signers, sig, "alice", "-O", f"verify-time={verify_time}")
    assert mine.returncode == theirs.returncode, (theirs.stderr, mine.stderr)
    assert mine.stdout == theirs.stdout
    if mine.returncode:
        assert mine.stderr.decode().splitlines() == ['keytool: Invalid "verify-time" option']

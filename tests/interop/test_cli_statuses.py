"""Exit statuses of the key commands, side by side with ssh-keygen given the same
failure: 255 (ssh-keygen's fatal()) for a missing or broken file, a wrong passphrase,
a bad type or size; 1 where ssh-keygen says 1 (-L of a file with no certificate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import keytool
from tests.peers import require, run

CASES = [
    ("-l -f missing", "fingerprint -f missing"),
    ("-l -f garbage", "fingerprint -f garbage"),
    ("-r host -f missing", "fingerprint -r host -f missing"),
    ("-y -f missing", "pub -f missing"),
    ("-y -f garbage", "pub -f garbage"),
    ("-y -P wrong -f locked", "pub -P wrong -f locked"),
    ("-p -P wrong -N new -f locked", "passwd -P wrong -N new -f locked"),
    ("-p -P a -N b -f missing", "passwd -P a -N b -f missing"),
    ("-c -C x -f missing", "comment -C x -f missing"),
    ("-e -f missing", "export -f missing"),
    ("-i -f missing", "import -f missing"),
    ("-i -f garbage", "import -f garbage"),
    ("-q -t rsa -b 100 -N '' -f new", "gen -q -t rsa -b 100 -N '' -f new"),
    ("-q -t bogus -N '' -f new", "gen -q -t bogus -N '' -f new"),
    ("-s missing -I id plain.pub", "cert -s missing -I id plain.pub"),
    ("-L -f missing", "cert -L -f missing"),
    ("-L -f plain.pub", "cert -L -f plain.pub"),
    ("-Y sign -f missing -n file garbage", "sign -f missing -n file garbage"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = tmp_path_factory.mktemp("statuses")
    keygen = require("ssh-keygen")
    run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", made / "plain"]).check_returncode()
    run([keygen, "-q", "-t", "ed25519", "-N", "right", "-f", made / "locked"]).check_returncode()
    (made / "garbage").write_text("no key here\n")
    return made


@pytest.mark.parametrize(("theirs", "ours"), CASES, ids=[c[1] for c in CASES])
def test_status_as_ssh_keygen(folder: Path, theirs: str, ours: str) -> None:
    def words(line: str) -> list[str]:
        return [w.strip("'") if w == "''" else w for w in line.split()]

    reference = run([require("ssh-keygen"), *words(theirs)], cwd=folder)
    result = keytool(*words(ours), cwd=folder, timeout=60)
    assert result.returncode == reference.returncode, (result.stderr, reference.stderr)
    assert reference.returncode in (1, 255)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not (folder / "new").exists()

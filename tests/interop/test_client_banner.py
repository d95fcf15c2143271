"""sshd's login banner (Banner FILE) as ssh shows it, side by side with keytool exec:
a legal notice longer than 2000 characters, lines ending CR LF, escape sequences."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import Sshd, require

NOTICE = (
    "".join(
        f"Legal notice line {n:02d}: use of this system is monitored and logged.\r\n"
        for n in range(40)
    )
    + "END OF NOTICE\r\n"
)


@pytest.mark.parametrize(
    "banner",
    [NOTICE, "Authorized use only.\r\n\tTabbed line, caf\u00e9\r\nbell\x07 esc\x1b[2J end\n"],
    ids=["long-crlf", "controls"],
)
def test_the_banner_as_ssh_shows_it(tmp_path: Path, banner: str) -> None:
    """keytool cut the banner at 2000 characters ("...") and showed each CR as "?";
    ssh shows it all, CR as it is, and other control characters escaped."""
    (tmp_path / "banner").write_bytes(banner.encode())
    key = keygen(tmp_path / "id")
    with Sshd(tmp_path / "sshd", {"Banner": str(tmp_path / "banner")}) as server:
        server.authorized_keys.write_bytes(Path(f"{key}.pub").read_bytes())
        known = tmp_path / "known"
        known.write_text(server.known_hosts_line())
        common = ["-F", "none", "-p", str(server.port), "-i", str(key),
                  "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                  "-o", "BatchMode=yes", "root@127.0.0.1", "echo ran"]  # fmt: skip
        seen = {}
        for tool, program in (("ssh", [require("ssh")]), ("keytool", [*KEYTOOL, "exec"])):
            done = subprocess.run(
                [*program, *common], capture_output=True, stdin=subprocess.DEVNULL,
                env=base_env(HOME=str(tmp_path), LC_ALL="C.UTF-8"), timeout=60, check=False,
            )  # fmt: skip
            seen[tool] = (done.returncode, done.stdout, done.stderr)
    assert seen["keytool"][:2] == seen["ssh"][:2] == (0, b"ran\n")
    theirs, ours = seen["ssh"][2], seen["keytool"][2]
    if "\x1b" in banner:
        # ssh escapes BEL and ESC its way (\a, \033), keytool as "?": the rest alike
        assert b"\x1b" not in ours and b"\x07" not in ours
        assert ours.count(b"\r\n") == theirs.count(b"\r\n") == 2
        assert "Tabbed line, caf\u00e9\r\n".encode() in ours
    else:
        assert ours == theirs == banner.encode()

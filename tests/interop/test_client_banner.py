"""sshd's login banner (Banner FILE) as ssh shows it, side by side with keytool exec:
a legal notice longer than 2000 characters, lines ending CR LF, escape sequences, bytes
that are not UTF-8 (keytool refused those)."""

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


def both_with_banner(
    tmp_path: Path, banner: bytes, locale: str
) -> dict[str, tuple[int, bytes, bytes]]:
    """ssh and keytool exec logging in to an sshd showing ``banner``, in ``locale``:
    each one's status, stdout and stderr."""
    (tmp_path / "banner").write_bytes(banner)
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
                env=base_env(HOME=str(tmp_path), LC_ALL=locale), timeout=60, check=False,
            )  # fmt: skip
            seen[tool] = (done.returncode, done.stdout, done.stderr)
    return seen


@pytest.mark.parametrize(
    "banner",
    [NOTICE, "Authorized use only.\r\n\tTabbed line, caf\u00e9\r\nbell\x07 esc\x1b[2J end\n"],
    ids=["long-crlf", "controls"],
)
def test_the_banner_as_ssh_shows_it(tmp_path: Path, banner: str) -> None:
    """keytool cut the banner at 2000 characters ("...") and showed each CR as "?";
    ssh shows it all, CR as it is, and other control characters escaped."""
    seen = both_with_banner(tmp_path, banner.encode(), "C.UTF-8")
    assert seen["ssh"][:2] == (0, b"ran\n")
    assert seen["keytool"] == seen["ssh"]
    if "\x1b" not in banner:
        assert seen["ssh"][2] == banner.encode()


#: Latin-1, an escape sequence, BEL, CR LF, a tab, valid UTF-8 and DEL
LATIN1 = b"Welcome caf\xe9 \x1b[31mred\x07\r\n\tcaf\xc3\xa9, del\x7f\n"


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_a_latin1_banner_as_ssh_shows_it(tmp_path: Path, locale: str) -> None:
    """keytool refused the login: "malformed authentication message: malformed
    authentication message: text is not UTF-8" (255); ssh shows the banner escaped
    for its locale and runs the command."""
    seen = both_with_banner(tmp_path, LATIN1, locale)
    assert seen["ssh"][:2] == (0, b"ran\n")
    assert seen["keytool"] == seen["ssh"]
    # what ssh printed: the invalid byte, ESC, BEL and DEL in octal, CR LF and tab as
    # they are, valid UTF-8 kept in a UTF-8 locale only
    shown = b"\\303\\251" if locale == "C" else "\u00e9".encode()
    expected = b"Welcome caf\\351 \\033[31mred\\007\r\n\tcaf" + shown + b", del\\177\n"
    assert seen["ssh"][2] == expected

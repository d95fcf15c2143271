"""A bad ssh_config value that holds a byte that is not UTF-8 (or a control byte):
``keytool exec -G`` names it as OpenSSH's ``ssh -G`` does, as ``\\ooo`` (never as
Python's surrogate escape), and exits as ssh does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require


def _run(command: list[str], home: Path) -> tuple[str, int]:
    result = subprocess.run(
        command,
        capture_output=True,
        env=base_env(HOME=str(home)),
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    lines = result.stderr.decode("utf-8", "surrogateescape").splitlines()
    first = next((line for line in lines if " line " in line), "")
    return first.removeprefix("keytool: "), result.returncode


#: (the line, whether keytool's words are ssh's own: else only the value is compared)
LINES = [
    (b"IdentitiesOnly \371es", True),
    (b"Compression \371", True),
    (b"StrictHostKeyChecking \371", True),
    (b"RequestTTY \033[1m", True),
    (b"VerifyHostKeyDNS \371", True),
    (b"UpdateHostKeys \371", True),
    (b"LogLevel \371", True),
    (b"Ciphers \371", True),
    (b"Bogus\371 x", True),
    (b"ConnectTimeout \371", False),
    (b"ControlMaster \371", False),
    (b"ControlPersist \371", False),
    (b"ConnectionAttempts \371", True),
    (b"AddressFamily \371", False),
    (b"StreamLocalBindMask \371", True),
]


@pytest.mark.parametrize(("line", "same_words"), LINES)
def test_bad_byte_shown_as_ssh_shows_it(tmp_path: Path, line: bytes, same_words: bool) -> None:
    ssh = require("ssh")
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "nb"
    config.write_bytes(b"Host x\n    " + line + b"\n")
    theirs, their_status = _run([ssh, "-G", "-F", str(config), "x"], home)
    ours, our_status = _run([*KEYTOOL, "exec", "-G", "-F", str(config), "x"], home)
    assert our_status == their_status == 255
    assert "\\udc" not in ours and ours.isascii() and ours.isprintable()
    if same_words:
        assert ours == theirs
    else:
        value = line.partition(b" ")[2].decode("utf-8", "surrogateescape")
        escaped = "".join(c if " " <= c < "\x7f" else f"\\{ord(c) & 0xFF:03o}" for c in value)
        assert escaped in ours and ours.startswith(f"{config} line 2: ")

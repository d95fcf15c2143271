"""Algorithm lists that name something keytool does not implement (ssh knows it:
sntrup761, umac, CBC ciphers), side by side with ssh against an sshd that has it
first: the name is left out of keytool's offer, so the next one is picked, as ssh
picks its first; a list of nothing keytool implements is one line and 255."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import Sshd, require

SERVER = {
    "Ciphers": "aes256-cbc,aes128-ctr,chacha20-poly1305@openssh.com",
    "MACs": "umac-128-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    "KexAlgorithms": "sntrup761x25519-sha512@openssh.com,curve25519-sha256,ecdh-sha2-nistp256",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, Path]]:
    folder = tmp_path_factory.mktemp("lists")
    key = keygen(folder / "id")
    with Sshd(folder / "sshd", SERVER) as started:
        started.authorized_keys.write_bytes(Path(f"{key}.pub").read_bytes())
        yield started, key


def _run(program: list[str], server: Sshd, key: Path, home: Path, *flags: str) -> tuple[int, str]:
    known = home / "known"
    known.write_text(server.known_hosts_line())
    done = subprocess.run(
        [*program, "-F", "none", "-p", str(server.port), "-i", str(key), *flags,
         "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
         "root@127.0.0.1", "echo ran"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        env=base_env(HOME=str(home)), check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def _negotiated(server: Sshd, start: int) -> dict[str, str]:
    """What sshd's log (DEBUG1) says it agreed on for the connection logged after
    ``start``: the kex method, and the client-to-server cipher and MAC."""
    text = server.log.read_text(errors="replace")[start:]
    kex = re.search(r"kex: algorithm: (\S+)", text)
    sent = re.search(r"kex: client->server cipher: (\S+) MAC: (\S+)", text)
    assert kex is not None and sent is not None, text
    return {"kex": kex.group(1), "cipher": sent.group(1), "mac": sent.group(2)}


@pytest.mark.parametrize(
    ("flags", "what", "ssh_took", "keytool_took"),
    [
        (("-o", "KexAlgorithms=sntrup761x25519-sha512@openssh.com,ecdh-sha2-nistp256"),
         "kex", "sntrup761x25519-sha512@openssh.com", "ecdh-sha2-nistp256"),
        (("-o", "KexAlgorithms=^sntrup761x25519-sha512@openssh.com,ecdh-sha2-nistp256"),
         "kex", "sntrup761x25519-sha512@openssh.com", "ecdh-sha2-nistp256"),
        (("-c", "aes256-cbc,aes128-ctr"), "cipher", "aes256-cbc", "aes128-ctr"),
        (("-c", "aes128-ctr", "-o", "MACs=umac-128-etm@openssh.com,hmac-sha2-512-etm@openssh.com"),
         "mac", "umac-128-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"),
    ],
)  # fmt: skip
def test_a_name_keytool_lacks_is_left_out_of_the_offer(
    tmp_path: Path,
    server: tuple[Sshd, Path],
    flags: tuple[str, ...],
    what: str,
    ssh_took: str,
    keytool_took: str,
) -> None:
    """ssh takes the list's first name, which the server has; keytool, which lacks
    it, the next one (sshd's log says which each one agreed on; keytool's default
    list would have led to another)."""
    sshd, key = server
    took = {}
    for tool, program in (("ssh", [require("ssh")]), ("keytool", [*KEYTOOL, "exec"])):
        start = len(sshd.log.read_text(errors="replace"))
        assert _run(program, sshd, key, tmp_path, *flags) == (0, "ran\n"), tool
        took[tool] = _negotiated(sshd, start)[what]
    assert took == {"ssh": ssh_took, "keytool": keytool_took}


def test_a_list_of_nothing_keytool_implements_is_one_line(
    tmp_path: Path, server: tuple[Sshd, Path]
) -> None:
    status, said = _run([*KEYTOOL, "exec"], *server, tmp_path, "-c", "aes256-cbc")
    assert status == 255
    assert said == "keytool: Ciphers: keytool implements none of aes256-cbc\n"

"""PubkeyAcceptedAlgorithms in ``keytool exec``, side by side with ssh against sshd: what
sshd's log shows was offered and accepted (pkalg) is the reference."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import Sshd, require


def login(client: str, sshd: Sshd, key: Path, known: Path, *options: str) -> int:
    flags = ["-F", "none", "-p", str(sshd.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
             "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
             "-o", "BatchMode=yes", *options]  # fmt: skip
    if client == "keytool":
        args = [*KEYTOOL, "exec", *flags, "root@127.0.0.1", "--", "true"]
    else:
        args = [require("ssh"), *flags, "root@127.0.0.1", "true"]
    done = subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL, env=base_env())
    assert b"Traceback" not in done.stderr
    return done.returncode


#: sshd's last line for a connection (at its end in authentication, after a login), the
#: lines of the connection's requests written before it
ENDED = re.compile(
    r"^(?:Connection closed by|Connection reset by|Disconnected from) ", re.MULTILINE
)


def offered(sshd: Sshd, since: int) -> list[str]:
    """The pkalg of each publickey request sshd got since ``since`` (its log's length),
    once sshd has logged the end of the connection: its unprivileged process's lines
    reach the log through the privileged one, the last maybe after the client is gone."""
    deadline = time.monotonic() + 20
    while not ENDED.search(text := sshd.log.read_text(errors="replace")[since:]):
        assert time.monotonic() < deadline, f"sshd did not log the connection's end:\n{text}"
        time.sleep(0.05)
    lines = [line for line in text.splitlines() if "userauth_pubkey: authenticated" in line]
    return [line.split("pkalg ")[1].split()[0] for line in lines]


@pytest.mark.parametrize(
    ("server", "options", "kind"),
    [
        ("ssh-rsa", (), "rsa"),  # a server that takes only SHA-1 (but lists SHA-2 too)
        (None, ("PubkeyAcceptedAlgorithms=^rsa-sha2-256",), "rsa"),
        (None, ("PubkeyAcceptedAlgorithms=-rsa-sha2-512",), "rsa"),
        (None, ("PubkeyAcceptedAlgorithms=ssh-ed25519",), "ecdsa"),  # never offered
        (None, ("PubkeyAcceptedKeyTypes=ecdsa-sha2-nistp256",), "ecdsa"),
    ],
)
def test_offered_and_accepted_as_with_ssh(
    tmp_path: Path, server: str | None, options: tuple[str, ...], kind: str
) -> None:
    key = keygen(tmp_path / f"id_{kind}", kind, "user")
    config = {"LogLevel": "DEBUG2"}  # a line with the pkalg of every publickey request
    if server:
        config["PubkeyAcceptedAlgorithms"] = server
    sshd = Sshd(tmp_path / "sshd", config)
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    option_args = [arg for option in options for arg in ("-o", option)]
    with sshd:
        results = {}
        for client in ("ssh", "keytool"):
            mark = len(sshd.log.read_text(errors="replace"))
            status = login(client, sshd, key, known, *option_args)
            results[client] = (status, offered(sshd, mark))
    # the same status, and the same requests (a query, then the signed one) in order
    assert results["keytool"] == results["ssh"]
    if server or "ssh-ed25519" in options[0]:
        assert results["ssh"][0] == 255

"""RekeyLimit by data, kept as ssh keeps it, against sshd: the same random bytes piped
through ``cat`` (to the server and back) or read from a file at the server, with ssh
and with keytool; sshd's log (LogLevel DEBUG1) counts the key exchanges each client
causes.

ssh checks the limit before every packet it sends (new keys first when the packet would
pass it) and after every packet it reads, and sends no channel data while a key exchange
runs. keytool held what came in during a key exchange and sent it all (up to a channel
window, 2 MB) under the next keys: a seventh or less of ssh's key exchanges for the
same data."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from keytool import sshconfig
from keytool.session import connect, options_from_config
from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import Sshd, require

#: what sshd logs once per key exchange, the first one included
NEWKEYS = "SSH2_MSG_NEWKEYS received"
LIMIT = "64K"


class Server:
    """An sshd that takes our key, and the ssh options that reach it."""

    def __init__(self, folder: Path) -> None:
        self.key = keygen(folder / "id_ed25519")
        self.sshd = Sshd(folder / "sshd")
        self.sshd.authorized_keys.write_text(Path(f"{self.key}.pub").read_text())
        self.known = folder / "known"
        self.known.write_text(self.sshd.known_hosts_line())
        self.options = [f"Port={self.sshd.port}", f"IdentityFile={self.key}", "BatchMode=yes",
                        f"UserKnownHostsFile={self.known}", "GlobalKnownHostsFile=/dev/null",
                        f"RekeyLimit={LIMIT}", "User=root"]  # fmt: skip

    def mark(self) -> int:
        return len(self.sshd.log.read_bytes())

    def kexes_since(self, mark: int) -> int:
        return self.sshd.log.read_bytes()[mark:].decode(errors="replace").count(NEWKEYS)

    def run(self, client: str, command: str, stdin: Path | None) -> tuple[bytes, int]:
        """The output of ``command`` run by ``client`` (ssh or keytool exec) with the
        file ``stdin`` as its input, and the key exchanges sshd logged for it."""
        program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
        flags = ["-F", "none"] + [f"-o{option}" for option in self.options]
        mark = self.mark()
        # a file, as the user's "< file": both clients read it in large pieces and send
        # packets of the server's maximum size (a pipe's small writes make small packets)
        with open(stdin if stdin is not None else os.devnull, "rb") as given:
            result = subprocess.run(
                [*program, *flags, "127.0.0.1", command],
                stdin=given, capture_output=True, env=base_env(), timeout=180,
            )  # fmt: skip
        assert result.returncode == 0, (client, result.stderr)
        return result.stdout, self.kexes_since(mark)

    def run_asyncio(self, command: str, data: bytes) -> tuple[bytes, int]:
        """The same through the asyncio client (keytool.session, as copy-id uses it)."""
        resolved = sshconfig.load("127.0.0.1", config_file="none", overrides=self.options)

        async def go() -> bytes:
            client = await connect(options_from_config(resolved))
            try:
                result = await client.run(command, data)
            finally:
                await client.close()
            assert result.exit_status == 0, result.stderr
            return result.stdout

        mark = self.mark()
        output = asyncio.run(go())
        return output, self.kexes_since(mark)


@pytest.fixture
def server(tmp_path: Path) -> Server:
    return Server(tmp_path)


def test_data_sent_rekeys_as_often_as_ssh(server: Server) -> None:
    """1 MB through cat: sent and echoed; about ssh's number of key exchanges (over 30
    with OpenSSH 9.2: its packets are 32 KB, so new keys come every packet or two) from
    keytool exec and from the asyncio client alike, not one per channel window."""
    data = os.urandom(1024 * 1024)
    given = server.sshd.folder / "given"
    given.write_bytes(data)
    counts = {}
    with server.sshd:
        for client in ("ssh", "keytool"):
            output, counts[client] = server.run(client, "cat", given)
            assert output == data, client
        output, counts["asyncio"] = server.run_asyncio("cat", data)
        assert output == data
    assert counts["ssh"] >= 1024 // 64, counts  # ssh keeps the limit
    for client in ("keytool", "asyncio"):
        assert counts[client] >= 0.8 * counts["ssh"], counts


def test_data_received_rekeys_as_with_ssh(server: Server) -> None:
    """4 MB from a file at the server. Both clients start new keys at the first packet
    read past the limit; what the server sent before our KEXINIT reached it comes in
    under the old keys still, for ssh as for keytool, so the counts depend on speed
    (ssh 4 to 22, keytool 6 to 16 on a busy machine): both re-key, the data intact."""
    made = server.sshd.folder / "made"
    made.write_bytes(os.urandom(4 * 1024 * 1024))
    digest = hashlib.sha256(made.read_bytes()).hexdigest()
    counts = {}
    with server.sshd:
        for client in ("ssh", "keytool"):
            output, counts[client] = server.run(client, f"cat {made}", None)
            assert hashlib.sha256(output).hexdigest() == digest, client
    for client in ("ssh", "keytool"):
        assert counts[client] >= 3, counts  # the first key exchange and 2 or more re-keys

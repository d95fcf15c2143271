"""keytool add -l / -L beside ssh-add against an agent whose list holds a key blob
OpenSSH cannot read. As ssh-add (ssh_fetch_identitylist): a blob of a key type it does
not know is left out; any other blob it cannot read (truncated, malformed for its
type) spoils the whole list: nothing listed, "error fetching identities: REASON",
status 1. Key type names OpenSSH also takes (ED25519, rsa-sha2-256...) are listed
under their usual name."""

from __future__ import annotations

import base64
import os
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.interop.agenthelp import KEYTOOL
from tests.peers import require


def string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


@pytest.fixture(scope="module")
def ed25519(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real Ed25519 public key blob."""
    key = tmp_path_factory.mktemp("key") / "id"
    subprocess.run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    return base64.b64decode(key.with_suffix(".pub").read_text().split()[1])


BLOBS = {
    # a type name OpenSSH does not know, well formed: skipped
    "unknown-type": string(b"frobnicate-v01@example.com") + os.urandom(40),
    # a known type, its key the wrong size: invalid format
    "ed25519-short": string(b"ssh-ed25519") + string(b"\0" * 5),
    # the type name's length runs past the blob: invalid format
    "truncated": b"\0\0\0\x10ssh",
    # what the fuzz pass sent: random bytes, the first a huge length
    "garbage": b"\xde\xad\xbe\xef" + os.urandom(36),
    # a known type, its key string cut short: incomplete message
    "ed25519-cut": string(b"ssh-ed25519") + b"\0\0\0\x20ab",
}


@contextmanager
def fake_agent(folder: Path, blobs: list[bytes]) -> Iterator[Path]:
    """An agent on a Unix socket answering every request with an identities answer
    listing ``blobs`` (each with the comment "c")."""
    path = folder / "agent.sock"
    answer = b"\x0c" + struct.pack(">I", len(blobs))
    answer += b"".join(string(blob) + string(b"c") for blob in blobs)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def one(conn: socket.socket) -> None:
        with conn, suppress(OSError):
            conn.settimeout(10)
            while True:
                head = conn.recv(4)
                if len(head) < 4:
                    return
                wanted = struct.unpack(">I", head)[0]
                while wanted:
                    got = conn.recv(wanted)
                    if not got:
                        return
                    wanted -= len(got)
                conn.sendall(string(answer))

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def listing(which: str, sock: Path, flag: str) -> tuple[int, str, str]:
    tool = [require("ssh-add")] if which == "ssh-add" else [*KEYTOOL, "add"]
    env = dict(os.environ, SSH_AUTH_SOCK=str(sock))
    done = subprocess.run(
        [*tool, flag], capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL
    )
    return done.returncode, done.stdout, done.stderr


def both(tmp_path: Path, blobs: list[bytes], flag: str) -> dict[str, tuple[int, str, str]]:
    with fake_agent(tmp_path, blobs) as sock:
        return {which: listing(which, sock, flag) for which in ("ssh-add", "keytool")}


def stderr_words(text: str) -> str:
    return text.strip().removeprefix("keytool: ")


@pytest.mark.parametrize("flag", ["-l", "-L"])
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("ed25519-short", "invalid format"),
        ("truncated", "invalid format"),
        ("garbage", "invalid format"),
        ("ed25519-cut", "incomplete message"),
    ],
)
@pytest.mark.parametrize("with_good_key", [False, True], ids=["alone", "after-a-good-key"])
def test_an_unreadable_blob_spoils_the_list(
    tmp_path: Path, ed25519: bytes, flag: str, case: str, reason: str, with_good_key: bool
) -> None:
    blobs = [ed25519, BLOBS[case]] if with_good_key else [BLOBS[case]]
    seen = both(tmp_path, blobs, flag)
    for status, out, err in seen.values():
        assert (status, out) == (1, "")
        assert stderr_words(err) == f"error fetching identities: {reason}"
    assert seen["keytool"] == seen["ssh-add"]


@pytest.mark.parametrize("flag", ["-l", "-L"])
def test_a_key_of_an_unknown_type_is_left_out(tmp_path: Path, ed25519: bytes, flag: str) -> None:
    seen = both(tmp_path, [BLOBS["unknown-type"], ed25519, BLOBS["unknown-type"]], flag)
    status, out, err = seen["keytool"]
    assert seen["keytool"] == seen["ssh-add"]
    assert (status, err) == (0, "")
    assert len(out.splitlines()) == 1 and "?" not in out and "unknown" not in out


@pytest.mark.parametrize("flag", ["-l", "-L"])
def test_only_keys_of_unknown_types_list_nothing(tmp_path: Path, flag: str) -> None:
    """Not "The agent has no identities." (it listed some): nothing, status 0."""
    seen = both(tmp_path, [BLOBS["unknown-type"]], flag)
    assert seen["keytool"] == seen["ssh-add"] == (0, "", "")


@pytest.mark.parametrize("flag", ["-l", "-L"])
@pytest.mark.parametrize("name", [b"ED25519", b"ed25519", b"ssh-ed25519\0"])
def test_other_names_of_a_type_are_listed_under_its_own(
    tmp_path: Path, ed25519: bytes, flag: str, name: bytes
) -> None:
    blob = string(name) + ed25519[len(string(b"ssh-ed25519")) :]
    seen = both(tmp_path, [blob], flag)
    assert seen["keytool"] == seen["ssh-add"]
    status, out, err = seen["keytool"]
    assert (status, err) == (0, "")
    assert out.startswith("ssh-ed25519 ") if flag == "-L" else out.endswith(" c (ED25519)\n")


def test_sign_refuses_in_one_line(tmp_path: Path, ed25519: bytes) -> None:
    """Another reader of the agent's list (sign -U): the same reason, one line."""
    key = tmp_path / "key.pub"
    key.write_text("ssh-ed25519 " + base64.b64encode(ed25519).decode() + " me\n")
    with fake_agent(tmp_path, [BLOBS["garbage"]]) as sock:
        env = dict(os.environ, SSH_AUTH_SOCK=str(sock))
        done = subprocess.run(
            [*KEYTOOL, "sign", "-U", "-f", key, "-n", "file", "-"],
            input="data",
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert done.returncode != 0
    assert done.stderr.strip() == "keytool: error fetching identities: invalid format"

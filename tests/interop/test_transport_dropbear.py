"""keytool's transport against dropbear: each algorithm both support pinned on keytool's
side, the host key checked against dropbear's own key files, and strict kex."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keytool.errors import NegotiationError
from keytool.keys.pubfile import decode_key
from tests.interop.transport_helpers import handshake, wait_for_log
from tests.peers import Dropbear, require, run

# what Debian 12's dropbear 2022.83 offers of keytool's lists
SHARED = [
    ("kex_algorithms", "curve25519-sha256"),
    ("kex_algorithms", "curve25519-sha256@libssh.org"),
    ("kex_algorithms", "ecdh-sha2-nistp256"),
    ("kex_algorithms", "ecdh-sha2-nistp384"),
    ("kex_algorithms", "ecdh-sha2-nistp521"),
    ("kex_algorithms", "diffie-hellman-group14-sha256"),
    ("host_key_algorithms", "ssh-ed25519"),
    ("host_key_algorithms", "ecdsa-sha2-nistp256"),
    ("host_key_algorithms", "rsa-sha2-256"),
    ("ciphers", "chacha20-poly1305@openssh.com"),
    ("ciphers", "aes128-ctr"),
    ("ciphers", "aes256-ctr"),
    ("macs", "hmac-sha2-256"),
]

FIELD = {
    "kex_algorithms": "kex",
    "host_key_algorithms": "host_key",
    "ciphers": "cipher_in",
    "macs": "mac_in",
}

KEY_FILES = {"ssh-ed25519": "ed25519", "ecdsa-sha2-nistp256": "ecdsa", "rsa-sha2-256": "rsa"}


@pytest.fixture(scope="module")
def dropbear(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dropbear]:
    server = Dropbear(tmp_path_factory.mktemp("dropbear"))
    with server:
        yield server


def dropbear_public(server: Dropbear, kind: str) -> str:
    """The host key as dropbearkey prints it (``type base64 comment``)."""
    result = run([require("dropbearkey"), "-y", "-f", server.host_keys[kind]])
    line = next(line for line in result.stdout.splitlines() if line.startswith(("ssh-", "ecdsa-")))
    return line


@pytest.mark.parametrize(("option", "name"), SHARED, ids=[name for _, name in SHARED])
def test_dropbear_algorithm(dropbear: Dropbear, option: str, name: str) -> None:
    config: dict[str, object] = {option: (name,)}
    if option == "macs":
        config["ciphers"] = ("aes128-ctr",)
    outcome = handshake(dropbear.port, **config)
    assert getattr(outcome.algorithms, FIELD[option]) == name
    # Debian's dropbear has the Terrapin fix: strict kex both ways
    assert outcome.strict_kex
    # dropbear decrypted our request and answered with its methods
    assert outcome.methods == ["publickey", "password"]
    if option == "host_key_algorithms":
        key_type, blob = dropbear_public(dropbear, KEY_FILES[name]).split()[:2]
        assert outcome.host_key == decode_key(key_type, blob)


def test_dropbear_no_common_cipher(dropbear: Dropbear) -> None:
    with pytest.raises(NegotiationError) as caught:
        handshake(dropbear.port, ciphers=("aes256-gcm@openssh.com",))
    message = str(caught.value)
    assert message.startswith(f"Unable to negotiate with 127.0.0.1 port {dropbear.port}: ")
    assert "no matching cipher found. Their offer: chacha20-poly1305@openssh.com" in message
    # dropbear saw the same failure from its side
    wait_for_log(Path(dropbear.log), "No matching algo enc c->s")

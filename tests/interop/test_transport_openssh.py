"""keytool's transport against real OpenSSH sshd 9.2 and 10.0: every kex, host key
algorithm, cipher and MAC pinned one at a time in sshd_config, strict kex, re-keying.

Each test checks sshd's own log: it names the algorithm it negotiated, it reset its
sequence numbers (which sshd does only under strict kex), and it decrypted our "none"
user auth request.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from keytool.keys import PrivateKey, generate
from keytool.keys.pubfile import decode_key
from keytool.transport.config import (
    DEFAULT_CIPHERS,
    DEFAULT_HOST_KEY,
    DEFAULT_KEX,
    DEFAULT_MACS,
    TransportConfig,
)
from keytool.wire import Writer
from tests.interop.transport_helpers import (
    accept_any,
    handshake,
    make_host_keys,
    place_host_keys,
    wait_for_log,
)
from tests.peers import Sshd

NONE_SEEN = "userauth-request for user root service ssh-connection method none"
STRICT_SEEN = "resetting send seqnr"


@pytest.fixture(scope="module")
def host_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_host_keys(tmp_path_factory.mktemp("hostkeys"))


def start(
    folder: Path,
    host_keys: Path,
    options: dict[str, str],
    version: int,
    kinds: dict[str, str] | None = None,
) -> Sshd:
    kinds = kinds or {"ed25519": "ed25519", "ecdsa": "ecdsa", "rsa": "rsa"}
    place_host_keys(host_keys, folder, kinds)
    return Sshd(folder, options, version=version, host_key_types=tuple(kinds)).start()


@pytest.fixture(params=[9, 10], ids=["openssh9", "openssh10"])
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Sshd]]:
    started: list[Sshd] = []
    yield started
    for server in started:
        server.stop()


def check_log(server: Sshd, *lines: str) -> str:
    log = wait_for_log(server.log, NONE_SEEN)
    for line in lines:
        assert line in log, f"{line!r} not in the sshd log"
    return log


@pytest.mark.parametrize("kex", DEFAULT_KEX)
def test_kex(kex: str, version: int, host_keys: Path, tmp_path: Path, servers: list[Sshd]) -> None:
    if kex.startswith("mlkem") and version < 10:
        pytest.skip("mlkem768x25519-sha256 needs OpenSSH 9.9 or later")
    server = start(tmp_path / "sshd", host_keys, {"KexAlgorithms": kex}, version)
    servers.append(server)
    outcome = handshake(server.port)
    assert outcome.algorithms.kex == kex
    assert outcome.strict_kex
    assert "publickey" in outcome.methods
    check_log(server, f"kex: algorithm: {kex}", STRICT_SEEN)
    assert any(f"key exchange {kex}," in line for line in outcome.trace)


HOST_KEY_FILES = {
    "ssh-ed25519": ("ed25519", "ed25519"),
    "ecdsa-sha2-nistp256": ("ecdsa", "ecdsa"),
    "ecdsa-sha2-nistp384": ("ecdsa", "ecdsa384"),
    "ecdsa-sha2-nistp521": ("ecdsa", "ecdsa521"),
    "rsa-sha2-512": ("rsa", "rsa"),
    "rsa-sha2-256": ("rsa", "rsa"),
}


# plain host keys here; certificate host keys are tests/interop/test_client_cert.py's
@pytest.mark.parametrize("algorithm", [a for a in DEFAULT_HOST_KEY if "-cert-" not in a])
def test_host_key_algorithm(
    algorithm: str, version: int, host_keys: Path, tmp_path: Path, servers: list[Sshd]
) -> None:
    target, prepared = HOST_KEY_FILES[algorithm]
    server = start(
        tmp_path / "sshd",
        host_keys,
        {"HostKeyAlgorithms": algorithm},
        version,
        kinds={target: prepared},
    )
    servers.append(server)
    outcome = handshake(server.port)
    assert outcome.algorithms.host_key == algorithm
    # the server proved it holds exactly the key in its host key file
    public = (host_keys / f"ssh_host_{prepared}_key.pub").read_text()
    assert outcome.host_key == decode_key(public.split()[0], public.split()[1])
    check_log(server, f"kex: host key algorithm: {algorithm}", STRICT_SEEN)


@pytest.mark.parametrize("cipher", DEFAULT_CIPHERS)
def test_cipher(
    cipher: str, version: int, host_keys: Path, tmp_path: Path, servers: list[Sshd]
) -> None:
    server = start(tmp_path / "sshd", host_keys, {"Ciphers": cipher}, version)
    servers.append(server)
    outcome = handshake(server.port)
    assert outcome.algorithms.cipher_out == outcome.algorithms.cipher_in == cipher
    check_log(
        server,
        f"kex: client->server cipher: {cipher} MAC:",
        f"kex: server->client cipher: {cipher} MAC:",
        STRICT_SEEN,
    )


@pytest.mark.parametrize("mac", DEFAULT_MACS)
def test_mac(mac: str, version: int, host_keys: Path, tmp_path: Path, servers: list[Sshd]) -> None:
    server = start(tmp_path / "sshd", host_keys, {"Ciphers": "aes128-ctr", "MACs": mac}, version)
    servers.append(server)
    outcome = handshake(server.port)
    assert outcome.algorithms.mac_out == outcome.algorithms.mac_in == mac
    check_log(
        server,
        f"kex: client->server cipher: aes128-ctr MAC: {mac} compression: none",
        f"kex: server->client cipher: aes128-ctr MAC: {mac} compression: none",
    )


def test_defaults_pick_openssh_10s_post_quantum_kex(
    host_keys: Path, tmp_path: Path, servers: list[Sshd]
) -> None:
    server = start(tmp_path / "sshd", host_keys, {}, 10)
    servers.append(server)
    outcome = handshake(server.port)
    assert outcome.algorithms.kex == "mlkem768x25519-sha256"
    assert outcome.algorithms.host_key == "ssh-ed25519"
    assert outcome.server_sig_algs is not None and "rsa-sha2-512" in outcome.server_sig_algs
    check_log(server, "kex: algorithm: mlkem768x25519-sha256")


def publickey_auth_request(key: PrivateKey, session_id: bytes) -> bytes:
    """RFC 4252 §7: a signed publickey request for root (auth proper is auth.py's job;
    this only gets the connection past sshd's pre-auth phase)."""
    algorithm = key.default_algorithm
    blob = key.public.to_wire()
    head = (
        Writer()
        .byte(50)
        .string(b"root")
        .string(b"ssh-connection")
        .string(b"publickey")
        .boolean(True)
        .string(algorithm.encode())
        .string(blob)
        .getvalue()
    )
    signature = key.sign(Writer().string(session_id).raw(head).getvalue(), algorithm)
    return head + Writer().string(signature).getvalue()


def authorize(server: Sshd) -> PrivateKey:
    user_key = generate("ed25519")
    blob = base64.b64encode(user_key.public.to_wire()).decode()
    server.authorized_keys.write_text(f"{user_key.public.key_type} {blob}\n")
    return user_key


#: RFC 4254 §4: a global request sshd does not know; it answers REQUEST_FAILURE (82)
UNKNOWN_GLOBAL_REQUEST = Writer().byte(80).string(b"nothing@keytool").boolean(True).getvalue()


def test_rekey_started_by_sshd(host_keys: Path, tmp_path: Path, servers: list[Sshd]) -> None:
    # RekeyLimit's time part: once authenticated (sshd never re-keys before), sshd
    # starts a key exchange before the first packet it sends after one second
    server = start(tmp_path / "sshd", host_keys, {"RekeyLimit": "default 1"}, 9)
    servers.append(server)
    user_key = authorize(server)
    trace: list[str] = []

    async def scenario() -> tuple[int, int]:
        from keytool.client import open_transport

        config = TransportConfig(trace=trace.append)
        async with asyncio.timeout(30):
            transport = await open_transport("127.0.0.1", server.port, config, accept_any)
            await transport.send(publickey_auth_request(user_key, transport.session_id))
            success = await transport.receive(timeout=10)
            await asyncio.sleep(1.5)
            await transport.send(UNKNOWN_GLOBAL_REQUEST)
            # sshd also sends its own global request (hostkeys-00@openssh.com) first
            while (await transport.receive(timeout=10))[0] != 82:
                pass
            count = transport.kex_count
            await transport.close()
        return success[0], count

    first, kex_count = asyncio.run(scenario())
    assert first == 52  # USERAUTH_SUCCESS
    assert kex_count >= 2  # once a second: a slow machine may see a third
    assert trace.count("the server started a re-key") == kex_count - 1
    wait_for_log(server.log, "Accepted publickey for root")
    log = wait_for_log(server.log, "SSH2_MSG_NEWKEYS received", count=kex_count)
    # every key exchange was started by sshd's KEXINIT, and completed
    assert log.count("SSH2_MSG_KEXINIT sent") == kex_count
    assert log.count("SSH2_MSG_NEWKEYS received") == kex_count


def test_rekey_started_by_keytool_after_its_byte_limit(
    host_keys: Path, tmp_path: Path, servers: list[Sshd]
) -> None:
    server = start(tmp_path / "sshd", host_keys, {}, 9)
    servers.append(server)
    user_key = authorize(server)
    trace: list[str] = []

    async def scenario() -> int:
        from keytool.client import open_transport

        config = TransportConfig(trace=trace.append, rekey_bytes=512)
        async with asyncio.timeout(30):
            transport = await open_transport("127.0.0.1", server.port, config, accept_any)
            await transport.send(publickey_auth_request(user_key, transport.session_id))
            assert (await transport.receive(timeout=10))[0] == 52
            for _ in range(30):
                await transport.send(UNKNOWN_GLOBAL_REQUEST)
                while (await transport.receive(timeout=10))[0] != 82:
                    pass
            count = transport.kex_count
            await transport.close()
        return count

    kex_count = asyncio.run(scenario())
    assert kex_count >= 3
    log = wait_for_log(server.log, "SSH2_MSG_NEWKEYS received", count=kex_count)
    assert "Accepted publickey for root" in log
    # every key exchange after the first was started by keytool's KEXINIT
    assert log.count("SSH2_MSG_KEXINIT received") == kex_count
    assert log.count("SSH2_MSG_NEWKEYS received") == kex_count
    assert any(line.startswith("re-keying") for line in trace)

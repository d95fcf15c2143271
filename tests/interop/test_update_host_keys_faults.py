"""UpdateHostKeys against a server that lies (asyncssh, test-only, with an Ed25519 and an
ECDSA host key): proofs signed by the wrong key, refused, cut short, a garbled key
list. keytool runs the command, says one line at most, and known_hosts stays as it was;
ssh, run against the same server, is the reference for an honest one and for each
lie."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import require

asyncssh = pytest.importorskip("asyncssh")

from tests.interop.test_client_peers import _AnyKeyServer, _AsyncsshThread  # noqa: E402

_PROVE = "_process_hostkeys_prove_00_at_openssh_dot_com_global_request"


def _prefix(conn: object) -> bytes:
    from asyncssh.packet import String

    return String("hostkeys-prove-00@openssh.com") + String(conn._session_id)  # type: ignore[attr-defined]


def wrong_signer(conn: object, packet: object) -> None:
    """Every proof signed by the Ed25519 host key, whatever key it is for."""
    from asyncssh.packet import String

    keys = conn._all_server_host_keys  # type: ignore[attr-defined]
    signer = next(k for k in keys.values() if k.algorithm == b"ssh-ed25519")
    proofs = b""
    while packet:
        blob = packet.get_string()  # type: ignore[attr-defined]
        proofs += String(signer.sign(_prefix(conn) + String(blob)))
    conn._report_global_response(proofs)  # type: ignore[attr-defined]


def refuses(conn: object, packet: object) -> None:
    conn._report_global_response(False)  # type: ignore[attr-defined]


def cut_short(conn: object, packet: object) -> None:
    conn._report_global_response(b"\x00\x00\x01\x00garbage")  # type: ignore[attr-defined]


def garbled_list(conn: object) -> None:
    conn._send_global_request(b"hostkeys-00@openssh.com", b"\x00\x00\x00\x09ssh-e")  # type: ignore[attr-defined]


def run_both(tmp_path: Path, server: _AsyncsshThread) -> dict[str, tuple[int, str, bytes]]:
    key = keygen(tmp_path / "id")
    before = server.known_hosts(tmp_path).read_bytes()
    out: dict[str, tuple[int, str, bytes]] = {}
    for client in ("ssh", "keytool"):
        known = tmp_path / f"known_{client}"
        known.write_bytes(before)
        flags = ["-F", "none", "-p", str(server.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
                 "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                 "-o", "BatchMode=yes", "-o", "UpdateHostKeys=yes"]  # fmt: skip
        if client == "keytool":
            args = [*KEYTOOL, "exec", *flags, "user@127.0.0.1", "--", "uname"]
        else:
            args = [require("ssh"), *flags, "user@127.0.0.1", "uname"]
        done = subprocess.run(
            args, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=base_env(),
            timeout=60,
        )  # fmt: skip
        assert "Traceback" not in done.stderr
        assert done.stdout == "ran uname\n", done.stderr  # the command ran all the same
        out[client] = (done.returncode, done.stderr, known.read_bytes())
    return out


def server_with_ecdsa() -> _AsyncsshThread:
    ecdsa = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
    return _AsyncsshThread(_AnyKeyServer, (ecdsa,), send_server_host_keys=True)


def test_an_honest_server_s_new_key_is_learned(tmp_path: Path) -> None:
    with server_with_ecdsa() as server:
        out = run_both(tmp_path, server)
        ecdsa = server.host_keys[1].export_public_key().decode().split()  # type: ignore[attr-defined]
    assert out["keytool"][2] == out["ssh"][2]
    assert (
        out["ssh"][2].decode().splitlines()[1] == f"[127.0.0.1]:{server.port} {ecdsa[0]} {ecdsa[1]}"
    )
    assert out["keytool"][:2] == (0, "")


@pytest.mark.parametrize(
    ("hostile", "said"),
    [
        (wrong_signer, "the proof for the ecdsa-sha2-nistp256 host key is not valid"),
        (refuses, "Server failed to confirm ownership of private host keys"),
        (cut_short, "UpdateHostKeys: "),
    ],
)
def test_a_lying_server_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hostile: Callable[..., None], said: str
) -> None:
    monkeypatch.setattr(asyncssh.connection.SSHServerConnection, _PROVE, hostile)
    with server_with_ecdsa() as server:
        before = server.known_hosts(tmp_path).read_bytes()
        out = run_both(tmp_path, server)
    assert out["ssh"][2] == before  # ssh refuses the lie too
    status, stderr, after = out["keytool"]
    assert (status, after) == (0, before)
    assert len(stderr.splitlines()) == 1 and said in stderr, stderr


def test_a_garbled_key_list_is_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        asyncssh.connection.SSHServerConnection, "send_server_host_keys", garbled_list
    )
    with server_with_ecdsa() as server:
        before = server.known_hosts(tmp_path).read_bytes()
        out = run_both(tmp_path, server)
    assert out["ssh"][2] == before
    assert out["keytool"] == (0, "", before)

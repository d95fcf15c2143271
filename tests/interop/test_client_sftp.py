"""The client library against real sshd: SFTP on its internal-sftp, key queries
without signing, several channels on one connection."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from keytool.errors import AuthError, SftpError
from keytool.keyfiles import load_private_file
from keytool.session import Client, ConnectOptions, Prompts, connect, open_connection
from keytool.transport import sftp as fx
from tests.interop.clienthelp import (
    accepted_keys,
    fingerprint,
    keepalive_timers,
    keygen,
    offered_keys,
)
from tests.peers import Sshd

T = TypeVar("T")


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "keys"
    folder.mkdir()
    return {name: keygen(folder / name) for name in ("good", "other")}


@pytest.fixture
def server(tmp_path: Path, keys: dict[str, Path]) -> Iterator[Sshd]:
    sshd = Sshd(tmp_path / "sshd")
    sshd.authorized_keys.write_text(Path(f"{keys['good']}.pub").read_text())
    with sshd:
        yield sshd


def options(server: Sshd, tmp_path: Path, key: Path | None) -> ConnectOptions:
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    return ConnectOptions(
        host="127.0.0.1",
        user="root",
        port=server.port,
        identity_files=(str(key),) if key else (),
        identities_only=True,
        agent=False,
        batch_mode=True,
        user_known_hosts=(str(known),),
        global_known_hosts=(),
        timeout=20,
    )


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(make(), 60)

    return asyncio.run(bounded())


def test_sftp_operations_seen_on_disk(tmp_path: Path, server: Sshd, keys: dict[str, Path]) -> None:
    area = tmp_path / "remote"
    area.mkdir()
    payload = os.urandom(200_000) + b"last line without newline"

    async def scenario() -> dict[str, object]:
        client = await connect(options(server, tmp_path, keys["good"]))
        seen: dict[str, object] = {}
        try:
            async with await client.open_sftp() as sftp:
                await sftp.mkdir(str(area / ".ssh"), 0o700)
                seen["realpath"] = await sftp.realpath(f"{area}/./.ssh/..")
                target = str(area / ".ssh" / "authorized_keys")
                temp = target + ".tmp"
                await sftp.write_file(
                    temp, payload, flags=fx.FXF_WRITE | fx.FXF_CREAT | fx.FXF_EXCL,
                    mode=0o600, fsync=True,
                )  # fmt: skip
                seen["fsync"] = fx.FSYNC in sftp.extensions
                seen["posix_rename"] = fx.POSIX_RENAME in sftp.extensions
                await sftp.rename(temp, target)
                attrs = await sftp.stat(target)
                seen["size"] = attrs.size
                seen["mode"] = attrs.permissions
                seen["read"] = await sftp.read_file(target)
                await sftp.chmod(target, 0o640)
                seen["chmod"] = os.stat(target).st_mode  # what the server did, on disk
                seen["missing"] = await sftp.exists(str(area / "nope"))
                with pytest.raises(SftpError) as info:
                    await sftp.open(str(area / "nope"), fx.FXF_READ)
                seen["error_code"] = info.value.code
                link = area / "link"
                os.symlink(target, link)
                seen["lstat_link"] = (await sftp.lstat(str(link))).permissions
                await sftp.write_file(str(area / "gone"), b"x")
                await sftp.remove(str(area / "gone"))
                # posix-rename replaces an existing file, as rename(2)
                await sftp.write_file(str(area / "new"), b"replacement")
                await sftp.rename(str(area / "new"), target)
        finally:
            await client.close()
        return seen

    seen = run(scenario)
    assert seen["realpath"] == str(area)
    assert seen["fsync"] and seen["posix_rename"]
    assert seen["size"] == len(payload)
    assert seen["read"] == payload
    assert seen["mode"] is not None and stat.S_IMODE(int(seen["mode"])) == 0o600  # type: ignore[call-overload]
    # what sshd's sftp server did, on disk
    assert stat.S_IMODE((area / ".ssh").stat().st_mode) == 0o700
    target = area / ".ssh" / "authorized_keys"
    assert target.read_bytes() == b"replacement"
    assert stat.S_IMODE(int(seen["chmod"])) == 0o640  # type: ignore[call-overload]
    assert not (area / ".ssh" / "authorized_keys.tmp").exists()
    assert not (area / "gone").exists()
    assert seen["missing"] is None
    assert seen["error_code"] == fx.FX_NO_SUCH_FILE
    assert stat.S_ISLNK(int(seen["lstat_link"]))  # type: ignore[call-overload]


def test_exclusive_create_refuses_existing(
    tmp_path: Path, server: Sshd, keys: dict[str, Path]
) -> None:
    existing = tmp_path / "existing"
    existing.write_bytes(b"keep me")

    async def scenario() -> int:
        client = await connect(options(server, tmp_path, keys["good"]))
        try:
            async with await client.open_sftp() as sftp:
                with pytest.raises(SftpError) as info:
                    await sftp.write_file(
                        str(existing), b"x", flags=fx.FXF_WRITE | fx.FXF_CREAT | fx.FXF_EXCL
                    )
                return info.value.code
        finally:
            await client.close()

    assert run(scenario) == fx.FX_FAILURE
    assert existing.read_bytes() == b"keep me"


def test_query_key_without_signing(tmp_path: Path, server: Sshd, keys: dict[str, Path]) -> None:
    good, _ = load_private_file(keys["good"])
    other, _ = load_private_file(keys["other"])

    async def scenario() -> tuple[bool, bool, bytes]:
        client = await open_connection(options(server, tmp_path, None), Prompts(batch_mode=True))
        try:
            yes = await client.query_key(good.public)
            no = await client.query_key(other.public)
            await client.authenticate(keys_only=[good])
            result = await client.run("echo ok")
            return yes, no, result.stdout
        finally:
            await client.close()

    yes, no, out = run(scenario)
    assert (yes, no, out) == (True, False, b"ok\n")
    # sshd saw both queries, and one login with the good key
    assert offered_keys(server.log)[:2] == [fingerprint(keys["good"]), fingerprint(keys["other"])]
    assert accepted_keys(server.log) == [fingerprint(keys["good"])]


def test_keys_only_refused_lists_the_key(
    tmp_path: Path, server: Sshd, keys: dict[str, Path]
) -> None:
    other, _ = load_private_file(keys["other"])

    async def scenario() -> None:
        client = await open_connection(options(server, tmp_path, None), Prompts(batch_mode=True))
        try:
            await client.authenticate(keys_only=[other])
        finally:
            await client.close()

    with pytest.raises(AuthError, match="Permission denied") as info:
        run(scenario)
    assert fingerprint(keys["other"]) in str(info.value)


def test_channels_in_parallel_on_one_connection(
    tmp_path: Path, server: Sshd, keys: dict[str, Path]
) -> None:
    async def scenario() -> list[bytes]:
        client: Client = await connect(options(server, tmp_path, keys["good"]))
        try:
            results = await asyncio.gather(
                *(client.run(f"sleep 0.2; echo {i}") for i in range(4)),
                client.run("cat", input=b"piped"),
            )
            return [r.stdout for r in results]
        finally:
            await client.close()

    assert run(scenario) == [b"0\n", b"1\n", b"2\n", b"3\n", b"piped"]
    assert len(accepted_keys(server.log)) == 1


def test_tcp_keep_alive_on_the_library_s_connection(
    tmp_path: Path, server: Sshd, keys: dict[str, Path]
) -> None:
    """copy-id's client sets SO_KEEPALIVE as ssh does (TCPKeepAlive yes), unless told
    no: the kernel's keepalive timer runs on the connection sshd took."""

    async def timers(keepalive: bool) -> list[bool]:
        made = options(server, tmp_path, keys["good"]).replace(tcp_keep_alive=keepalive)
        client = await connect(made)
        try:
            await client.run("true")
            return keepalive_timers(server.port)
        finally:
            await client.close()

    assert run(lambda: timers(True)) == [True]
    assert run(lambda: timers(False)) == [False]

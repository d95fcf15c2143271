"""The client against other servers: dropbear (key and password logins into a
throwaway account) and an in-process asyncssh server (keyboard-interactive, banners,
partial success), which only the tests use."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from keytool.keys import generate
from keytool.keys.pubfile import format_public_line
from tests.interop.clienthelp import (
    KEYTOOL,
    Account,
    askpass_env,
    install_key,
    keygen,
    keytool_exec,
)
from tests.peers import Dropbear, require

asyncssh = pytest.importorskip("asyncssh")


@pytest.fixture
def dropbear_server(tmp_path: Path) -> Iterator[Dropbear]:
    server = Dropbear(tmp_path / "dropbear")
    with server:
        yield server


def dropbear_known(server: Dropbear, folder: Path) -> Path:
    known = folder / "known_dropbear"
    known.write_text(server.known_hosts_lines())
    return known


def test_dropbear_key_login(tmp_path: Path, dropbear_server: Dropbear, account: Account) -> None:
    key = keygen(tmp_path / "id")
    install_key(account, Path(f"{key}.pub"))
    result = keytool_exec(
        dropbear_server.port,
        dropbear_known(dropbear_server, tmp_path),
        f"{account.name}@127.0.0.1",
        "id -un; echo to-stderr >&2; exit 4",
        flags=("-i", str(key), "-v"),
    )
    assert result.returncode == 4, result.stderr
    assert result.stdout.decode().strip() == account.name
    assert b"to-stderr\n" in result.stderr
    assert b"server version: SSH-2.0-dropbear" in result.stderr


def test_dropbear_password_and_stdin(
    tmp_path: Path, dropbear_server: Dropbear, account: Account
) -> None:
    data = bytes(range(256)) * 20000  # 5 MB through dropbear's windows
    result = keytool_exec(
        dropbear_server.port,
        dropbear_known(dropbear_server, tmp_path),
        f"{account.name}@127.0.0.1",
        "cat",
        stdin=data,
        env=askpass_env(tmp_path, account.password),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == data
    assert "password:" in (tmp_path / "askpass.log").read_text()


# ---- asyncssh, in this process, on another thread


class _KbdintServer(asyncssh.SSHServer):  # type: ignore[misc]
    """Shows a banner, refuses public keys (recording that it saw ours), then asks
    two keyboard-interactive prompts."""

    def __init__(self, record: list[str], authorized: str) -> None:
        self.record = record
        self.authorized = authorized

    def connection_made(self, conn: object) -> None:
        conn.send_auth_banner("Authorized use only\n")  # type: ignore[attr-defined]

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: object) -> bool:
        ok = key.export_public_key().split()[1].decode() == self.authorized  # type: ignore[attr-defined]
        self.record.append(f"publickey {ok}")
        return False

    def kbdint_auth_supported(self) -> bool:
        return True

    def get_kbdint_challenge(self, username: str, lang: str, submethods: str) -> object:
        return ("Two factors", "Answer both", "", [("Password: ", False), ("Code: ", True)])

    def validate_kbdint_response(self, username: str, responses: list[str]) -> bool:
        self.record.append(f"kbdint {responses}")
        return list(responses) == ["s3cret", "s3cret"]


class _AnyKeyServer(asyncssh.SSHServer):  # type: ignore[misc]
    """An asyncssh server that lets any user in with any public key."""

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: object) -> bool:
        return True


class _AsyncsshThread:
    """An asyncssh server in a thread of the test process; ``host_keys`` after its
    Ed25519 one, ``process_factory`` runs each session (default: says "ran COMMAND"),
    ``options`` for asyncssh.create_server."""

    def __init__(
        self,
        factory: object,
        host_keys: tuple[object, ...] = (),
        process_factory: object = None,
        **options: object,
    ) -> None:
        self.process_factory = process_factory
        self.loop = asyncio.new_event_loop()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_keys = (self.host_key, *host_keys)
        self.options = options
        self.ready = threading.Event()
        self.port = 0
        self.factory = factory
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def handle(process: object) -> None:
            process.stdout.write(f"ran {process.command}\n")  # type: ignore[attr-defined]
            process.exit(0)  # type: ignore[attr-defined]

        async def start() -> None:
            self.server = await asyncssh.create_server(
                self.factory,
                "127.0.0.1",
                0,
                server_host_keys=list(self.host_keys),
                process_factory=self.process_factory or handle,
                agent_forwarding=False,
                x11_forwarding=False,
                **self.options,
            )
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def __enter__(self) -> _AsyncsshThread:
        self.thread.start()
        assert self.ready.wait(20)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(20)

    def known_hosts(self, folder: Path) -> Path:
        line = self.host_key.export_public_key().decode().split()
        path = folder / "known_asyncssh"
        path.write_text(f"[127.0.0.1]:{self.port} {line[0]} {line[1]}\n")
        return path


def test_banner_refused_key_then_keyboard_interactive(tmp_path: Path) -> None:
    key = generate("ed25519")
    key_file = tmp_path / "id"
    from keytool.keys import openssh

    key_file.write_bytes(openssh.dump(key, "", None))
    key_file.chmod(0o600)
    authorized = format_public_line(key.public).split()[1]
    record: list[str] = []
    with _AsyncsshThread(lambda: _KbdintServer(record, authorized)) as server:
        result = keytool_exec(
            server.port,
            server.known_hosts(tmp_path),
            "alice@127.0.0.1",
            "hello",
            flags=("-i", str(key_file), "-v"),
            env=askpass_env(tmp_path, "s3cret"),
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"ran hello\n"
    stderr = result.stderr.decode()
    assert "Authorized use only" in stderr  # the banner is shown
    assert "the server refused the key" in stderr
    assert "Two factors" in stderr
    assert record == ["publickey True", "kbdint ['s3cret', 's3cret']"]
    prompts = (tmp_path / "askpass.log").read_text()
    assert "Password: " in prompts and "Code: " in prompts
    assert "s3cret" not in stderr


class _KbdintOnly(_KbdintServer):
    """A server that offers keyboard-interactive and nothing else."""

    def public_key_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return True


def test_keyboard_interactive_wrong_answers_clear_error(tmp_path: Path) -> None:
    record: list[str] = []
    with _AsyncsshThread(lambda: _KbdintOnly(record, "")) as server:
        result = keytool_exec(
            server.port,
            server.known_hosts(tmp_path),
            "bob@127.0.0.1",
            "true",
            env=askpass_env(tmp_path, "wrong"),
        )
    assert result.returncode == 255
    last = result.stderr.decode().strip().splitlines()[-1]
    assert "Permission denied" in last and "keyboard-interactive" in last
    assert record[0] == "kbdint ['wrong', 'wrong']"
    assert "Traceback" not in result.stderr.decode()


def test_keyboard_interactive_on_a_terminal_as_ssh(tmp_path: Path) -> None:
    """On a terminal: the server's name and instruction, then each prompt as ssh shows
    it; the answer to a prompt the server wants echoed ("Code: ") shows as typed, the
    password does not. ssh against the same server is the reference."""
    from tests.interop.test_client_terminal import OnTerminal

    key_file = tmp_path / "id"
    from keytool.keys import openssh

    key_file.write_bytes(openssh.dump(generate("ed25519"), "", None))
    key_file.chmod(0o600)
    shown = {}
    record: list[str] = []
    with _AsyncsshThread(lambda: _KbdintOnly(record, "")) as server:
        known = server.known_hosts(tmp_path)
        for client in ("ssh", "keytool"):
            args = ["-F", "none", "-p", str(server.port), "-i", str(key_file),
                    "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                    "alice@127.0.0.1", "hello"]  # fmt: skip
            program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
            term = OnTerminal([*program, *args])
            term.read_until(b"Password: ")
            term.type(b"s3cret\r")
            term.read_until(b"Code: ")
            term.type(b"s3cret\r")
            assert term.finish() == 0, term.seen
            shown[client] = term.seen
    # byte for byte but for ssh's own lines, which it ends in "\r\n" even on a
    # terminal (that makes "\r\r\n" there); keytool ends them in "\n"
    assert shown["keytool"] == shown["ssh"].replace(b"\r\r\n", b"\r\n")
    assert shown["ssh"].count(b"s3cret") == 1  # the code, echoed; never the password
    assert record == ["kbdint ['s3cret', 's3cret']"] * 2

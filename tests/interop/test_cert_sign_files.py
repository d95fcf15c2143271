"""Files that are there already, side by side with ssh-keygen: a certificate written
over an existing KEY-cert.pub (``keytool cert`` / ``ssh-keygen -s``) keeps its mode,
and a signature over an existing FILE.sig (``keytool sign`` / ``ssh-keygen -Y sign``)
is asked about on stdout, the answer read from stdin."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import require

TOOLS = ("ssh-keygen", "keytool")


def _run(argv: list[str], cwd: Path, answer: bytes = b"", umask: int = 0o022) -> tuple[int, bytes]:
    done = subprocess.run(
        argv, cwd=cwd, input=answer, capture_output=True, timeout=60, umask=umask,
        env=base_env(HOME=str(cwd)), start_new_session=True,
    )  # fmt: skip
    assert b"Traceback" not in done.stderr
    return done.returncode, done.stdout


# ---------------------------------------------------------------- cert


@pytest.mark.parametrize("umask", [0o022, 0o077])
@pytest.mark.parametrize("existing", [0o600, 0o640, 0o664, None])
def test_a_certificate_written_over_one_keeps_its_mode(
    tmp_path: Path, existing: int | None, umask: int
) -> None:
    key = keygen(tmp_path / "user", "ed25519", "me")
    ca = keygen(tmp_path / "ca", "ed25519", "ca")
    seen = {}
    for tool in TOOLS:
        folder = tmp_path / tool
        folder.mkdir()
        (folder / "k.pub").write_bytes(Path(f"{key}.pub").read_bytes())
        cert = folder / "k-cert.pub"
        if existing is not None:
            cert.write_text("old\n")
            cert.chmod(existing)
        program = [require("ssh-keygen")] if tool == "ssh-keygen" else [*KEYTOOL, "cert"]
        status, _ = _run(
            [*program, "-q", "-s", str(ca), "-I", "id", "-n", "u", "k.pub"], folder, umask=umask
        )
        shown = subprocess.run(
            [require("ssh-keygen"), "-L", "-f", str(cert)], capture_output=True, timeout=60
        )
        seen[tool] = (status, cert.stat().st_mode & 0o7777, shown.returncode)
    assert seen["keytool"] == seen["ssh-keygen"]
    assert seen["ssh-keygen"][0] == 0


# ---------------------------------------------------------------- sign


def _sign(tool: str, folder: Path, key: Path, names: list[str], answer: bytes) -> tuple[int, bytes]:
    program = [require("ssh-keygen"), "-Y", "sign"] if tool == "ssh-keygen" else [*KEYTOOL, "sign"]
    return _run([*program, "-f", str(key), "-n", "file", *names], folder, answer)


def _signing_folder(tmp_path: Path, tool: str, names: list[str]) -> Path:
    folder = tmp_path / tool
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(f"the message {name}\n".encode())
        (folder / f"{name}.sig").write_text("old\n")
        os.chmod(folder / f"{name}.sig", 0o640)
    return folder


def _results(folder: Path, names: list[str]) -> list[tuple[bytes, int]]:
    return [
        ((folder / f"{n}.sig").read_bytes(), (folder / f"{n}.sig").stat().st_mode & 0o7777)
        for n in names
    ]


@pytest.mark.parametrize(
    ("names", "answer"),
    [
        (["data"], b"y\n"),
        (["data"], b"Y\n"),
        (["data"], b"yes\n"),
        (["data"], b"n\n"),
        (["data"], b""),  # no answer at all
        (["data"], b"\n"),
        (["one", "two"], b"n\ny\n"),
        (["one", "two"], b"y\nn\n"),
        (["one", "two"], b"no\ny\n"),  # ssh-keygen reads two characters of an answer
        (["one", "two"], b"y\n"),  # the second question finds no answer
    ],
)
def test_a_signature_file_there_already_is_asked_about(
    tmp_path: Path, names: list[str], answer: bytes
) -> None:
    """Ed25519 signatures are deterministic: the files written are the same bytes."""
    key = keygen(tmp_path / "id", "ed25519", "me")
    seen = {}
    for tool in TOOLS:
        folder = _signing_folder(tmp_path, tool, names)
        seen[tool] = (_sign(tool, folder, key, names, answer), _results(folder, names))
    assert seen["keytool"] == seen["ssh-keygen"]
    assert seen["ssh-keygen"][0][1].startswith(f"{names[0]}.sig already exists.".encode())


def test_force_overwrites_without_asking(tmp_path: Path) -> None:
    """--force (keytool's own) writes what ssh-keygen writes when told y, asking nothing."""
    key = keygen(tmp_path / "id", "ed25519", "me")
    theirs = _signing_folder(tmp_path, "ssh-keygen", ["data"])
    mine = _signing_folder(tmp_path, "keytool", ["data"])
    status, _ = _sign("ssh-keygen", theirs, key, ["data"], b"y\n")
    forced = _run([*KEYTOOL, "sign", "--force", "-f", str(key), "-n", "file", "data"], mine, b"n\n")
    assert forced == (status, b"")
    assert _results(mine, ["data"]) == _results(theirs, ["data"])

"""``keytool sign`` hashes a message the same from a file, stdin or a FIFO (the first
bytes ``files.pipe_start`` read, then the rest), and an allowed_signers line of a key
type keytool does not use (``keys.blob.UNSUPPORTED``) is skipped quietly where a type
no one knows is a bad line. Real ``ssh-keygen -Y sign / verify`` is the reference:
ed25519 signatures are deterministic, so keytool's must be byte for byte its own."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from keytool import allowedsigners
from keytool.errors import FormatError
from keytool.wire import Reader, Writer
from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require

# past pipe_start's first read (64 KiB) and sign.py's _CHUNK (1 MiB): several reads
MESSAGE = bytes(range(256)) * 10_000 + b"the end\n"


def keygen(*args: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require("ssh-keygen"), *map(str, args)],
        input=stdin,
        capture_output=True,
        env=base_env(),
        timeout=60,
    )


def keytool(*args: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*KEYTOOL, *map(str, args)], input=stdin, capture_output=True, env=base_env(), timeout=60
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys made by ssh-keygen: ed25519 (the signer), ecdsa, dsa and a CA."""
    path = tmp_path_factory.mktemp("sign_hashing")
    for name, kind in (("ed", "ed25519"), ("ec", "ecdsa"), ("dsa", "dsa"), ("ca", "ed25519")):
        assert keygen("-q", "-t", kind, "-N", "", "-C", name, "-f", path / name).returncode == 0
    return path


@pytest.fixture(scope="module")
def reference(folder: Path) -> bytes:
    """ssh-keygen's signature of MESSAGE, read from a regular file."""
    message = folder / "reference.msg"
    message.write_bytes(MESSAGE)
    assert keygen("-Y", "sign", "-f", folder / "ed", "-n", "file", message).returncode == 0
    return Path(f"{message}.sig").read_bytes()


def verified_by_ssh_keygen(folder: Path, signature: bytes) -> bool:
    allowed = folder / "allowed_signers"
    allowed.write_text(f"me@x {' '.join((folder / 'ed.pub').read_text().split()[:2])}\n")
    sig = folder / "to_verify.sig"
    sig.write_bytes(signature)
    args = ("-Y", "verify", "-f", allowed, "-I", "me@x", "-n", "file", "-s", sig)
    return keygen(*args, stdin=MESSAGE).returncode == 0


def test_a_file_hashes_as_ssh_keygen(folder: Path, reference: bytes, tmp_path: Path) -> None:
    message = tmp_path / "file.msg"
    message.write_bytes(MESSAGE)
    done = keytool("sign", "-f", folder / "ed", "-n", "file", message)
    assert done.returncode == 0, done.stderr
    assert f"Signing file {message}".encode() in done.stderr
    assert Path(f"{message}.sig").read_bytes() == reference


def test_stdin_hashes_as_ssh_keygen(folder: Path, reference: bytes) -> None:
    done = keytool("sign", "-f", folder / "ed", "-n", "file", stdin=MESSAGE)
    assert done.returncode == 0, done.stderr
    assert done.stdout == reference
    assert verified_by_ssh_keygen(folder, done.stdout)


def _write_slowly(path: Path) -> None:
    """A writer that comes late and writes in pieces, so the first read gets a part."""
    time.sleep(0.2)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, MESSAGE[:1000])
        time.sleep(0.2)
        view = memoryview(MESSAGE)[1000:]
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def test_a_fifo_with_a_writer_hashes_as_ssh_keygen(
    folder: Path, reference: bytes, tmp_path: Path
) -> None:
    fifo = tmp_path / "message.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=_write_slowly, args=(fifo,))
    writer.start()
    try:
        done = keytool("sign", "-f", folder / "ed", "-n", "file", fifo)
    finally:
        writer.join(30)
    assert done.returncode == 0, done.stderr
    signature = Path(f"{fifo}.sig").read_bytes()
    assert signature == reference
    assert verified_by_ssh_keygen(folder, signature)


def test_a_fifo_nothing_writes_to_is_refused(folder: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "lonely.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    done = keytool("sign", "-f", folder / "ed", "-n", "file", fifo)
    assert time.monotonic() - started < 20
    assert done.returncode != 0
    assert f"keytool: {fifo}: not a regular file".encode() in done.stderr
    assert not Path(f"{fifo}.sig").exists()


# ---- allowed_signers lines of key types keytool does not use


def _line(path: Path) -> str:
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode()


@pytest.fixture(scope="module")
def other_lines(folder: Path) -> dict[str, str]:
    """Key parts of allowed_signers lines: the types of keys.blob.UNSUPPORTED (security
    keys made from ordinary keys' points, no token needed), a DSA certificate, and a
    type no one knows."""
    r = Reader(base64.b64decode(_line(folder / "ed").split()[1]))
    r.string()
    sk_ed = Writer().string("sk-ssh-ed25519@openssh.com").string(r.string()).string("ssh:")
    r = Reader(base64.b64decode(_line(folder / "ec").split()[1]))
    r.string()
    curve, point = r.string(), r.string()
    sk_ec = Writer().string("sk-ecdsa-sha2-nistp256@openssh.com").string(curve).string(point)
    sk_ec.string("ssh:")
    done = keygen("-s", folder / "ca", "-I", "dsa cert", folder / "dsa.pub")
    assert done.returncode == 0, done.stderr
    return {
        "dsa": _line(folder / "dsa"),
        "dsa-cert": _line(folder / "dsa-cert"),
        "sk-ed25519": f"sk-ssh-ed25519@openssh.com {_b64(sk_ed.getvalue())}",
        "sk-ecdsa": f"sk-ecdsa-sha2-nistp256@openssh.com {_b64(sk_ec.getvalue())}",
        "unknown": f"ssh-foo {_b64(Writer().string('ssh-foo').getvalue())}",
    }


@pytest.mark.parametrize("kind", ["dsa", "dsa-cert", "sk-ed25519", "sk-ecdsa", "unknown"])
def test_lines_keytool_does_not_use(
    folder: Path, reference: bytes, other_lines: dict[str, str], kind: str
) -> None:
    allowed = folder / f"allowed_{kind}"
    text = f"other@x {other_lines[kind]}\nme@x {_line(folder / 'ed')}\n"
    allowed.write_text(text)
    # parsed: a type ssh-keygen reads is skipped, a type no one knows is a bad line
    if kind == "unknown":
        with pytest.raises(FormatError, match="line 1: invalid key"):
            allowedsigners.parse(text)
    else:
        assert [s.principals for s in allowedsigners.parse(text)] == ["me@x"]
    sig = folder / f"reference_{kind}.sig"
    sig.write_bytes(reference)
    for identity in ("me@x", "other@x"):
        args = ("-f", allowed, "-I", identity, "-n", "file", "-s", sig)
        theirs = keygen("-Y", "verify", *args, stdin=MESSAGE)
        mine = keytool("verify", *args, stdin=MESSAGE)
        assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), mine.stderr
        assert mine.returncode == (0 if identity == "me@x" else 255)
        if identity == "other@x":
            # keytool says which lines it could not read: only the unknown type's
            assert (b"line 1: invalid key" in mine.stderr) == (kind == "unknown"), mine.stderr

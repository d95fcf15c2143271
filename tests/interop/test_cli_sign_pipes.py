"""The signature (-s) and allowed_signers (-f) files of ``keytool verify`` as
``ssh-keygen -Y verify / find-principals / check-novalidate`` takes them: one that is
missing, empty, garbage or a directory is a signature that does not verify (ssh-keygen's
stdout and status 255, and one line on stderr saying why), and a pipe or FIFO
(``-s <(...)``, ``-f /dev/fd/N``) is read to its end. ssh-keygen's stdout and status are
the reference."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require

MESSAGE = b"a release tarball\n" * 20
IDENTITY = "alice@example.com"
SIG = "@signature"  # where a command line takes the signature file
ALLOWED = "@allowed_signers"  # and the allowed_signers file


def commands(operation: str) -> tuple[list[str], list[str]]:
    """ssh-keygen's command line for ``operation`` and keytool's, with SIG and ALLOWED
    standing for the files."""
    if operation == "verify":
        args = ["-f", ALLOWED, "-I", IDENTITY, "-n", "file", "-s", SIG]
        return [require("ssh-keygen"), "-Y", "verify", *args], [*KEYTOOL, "verify", *args]
    if operation == "find-principals":
        args = ["-f", ALLOWED, "-s", SIG]
        return (
            [require("ssh-keygen"), "-Y", "find-principals", *args],
            [*KEYTOOL, "verify", "--find-principals", *args],
        )
    args = ["-n", "file", "-s", SIG]
    return [require("ssh-keygen"), "-Y", "check-novalidate", *args], [*KEYTOOL, "verify", *args]


def run(argv: list[str], files: Mapping[str, str]) -> subprocess.CompletedProcess[bytes]:
    """``argv`` with SIG and ALLOWED replaced by the paths in ``files``, MESSAGE on stdin."""
    args = [files.get(arg, arg) for arg in argv]
    return subprocess.run(args, input=MESSAGE, capture_output=True, env=base_env(), timeout=60)


def _write_all(fd: int, content: bytes) -> None:
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        pass  # the reader stopped early: an error, or its size cap
    finally:
        os.close(fd)


def run_piped(
    argv: list[str],
    contents: Mapping[str, bytes],
    fifo_dir: Path | None = None,
    stdin: bytes = MESSAGE,
) -> subprocess.CompletedProcess[bytes]:
    """``argv`` with SIG and ALLOWED replaced by pipes a thread fills with ``contents``:
    an os.pipe() passed as /dev/fd/N (what ``<(...)`` gives), or with ``fifo_dir`` a
    named FIFO made there; ``stdin`` on stdin."""
    paths: dict[str, str] = {}
    threads: list[threading.Thread] = []
    read_ends: list[int] = []
    fifos: list[str] = []
    for name, content in contents.items():
        if fifo_dir is None:
            read, write = os.pipe()
            read_ends.append(read)
            paths[name] = f"/dev/fd/{read}"
            thread = threading.Thread(target=_write_all, args=(write, content))
        else:
            path = str(fifo_dir / f"{name.lstrip('@')}.fifo")
            if not os.path.exists(path):
                os.mkfifo(path)
            fifos.append(path)
            paths[name] = path
            thread = threading.Thread(
                target=lambda p=path, c=content: _write_all(os.open(p, os.O_WRONLY), c)
            )
        thread.start()
        threads.append(thread)
    try:
        return subprocess.run(
            [paths.get(arg, arg) for arg in argv],
            input=stdin,
            capture_output=True,
            env=base_env(),
            pass_fds=read_ends,
            timeout=60,
        )
    finally:
        for fd in read_ends:
            os.close(fd)  # a writer the command never read from gets EPIPE
        # a FIFO the command never opened: a reader of ours lets its writer through
        releases = [os.open(path, os.O_RDONLY | os.O_NONBLOCK) for path in fifos]
        for thread in threads:
            thread.join(30)
        for fd in releases:
            os.close(fd)


def assert_one_line(result: subprocess.CompletedProcess[bytes]) -> str:
    text = result.stderr.decode()
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    return text


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A good signature of MESSAGE by ssh-keygen, and an allowed_signers file naming
    IDENTITY for its key."""
    folder = tmp_path_factory.mktemp("pipes")
    key = folder / "id_ed25519"
    keygen = require("ssh-keygen")
    made = subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)],
        capture_output=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    sign = [keygen, "-Y", "sign", "-f", str(key), "-n", "file"]
    made = subprocess.run(sign, input=MESSAGE, capture_output=True, timeout=60)
    assert made.returncode == 0, made.stderr
    signature = folder / "message.sig"
    signature.write_bytes(made.stdout)
    pub = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    allowed = folder / "allowed_signers"
    allowed.write_text(f"{IDENTITY} {pub}\n")
    return signature, allowed


def bad_files(folder: Path) -> dict[str, str]:
    """A file of each kind that cannot be read as a signature or allowed_signers file,
    by kind: missing, empty, garbage, a directory."""
    empty = folder / "empty"
    empty.write_bytes(b"")
    garbage = folder / "garbage"
    # a malformed first line, and bytes that are no text at all
    garbage.write_bytes(f"{IDENTITY} garbage\n".encode() + b"\xff\xfe\x00\x01\n")
    directory = folder / "directory"
    directory.mkdir()
    return {
        "missing": str(folder / "missing"),
        "empty": str(empty),
        "garbage": str(garbage),
        "directory": str(directory),
    }


def _same_as_ssh_keygen(
    theirs_argv: list[str], mine_argv: list[str], files: dict[str, str], kind: str
) -> subprocess.CompletedProcess[bytes]:
    """Both run on the same files: the same status and stdout, and ssh-keygen's 255."""
    theirs = run(theirs_argv, files)
    mine = run(mine_argv, files)
    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), (
        kind,
        theirs.stderr,
        mine.stderr,
    )
    assert mine.returncode == 255, kind
    return mine


@pytest.mark.parametrize("operation", ["verify", "find-principals", "check-novalidate"])
def test_bad_signature_file_as_ssh_keygen(
    operation: str, signed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, allowed = signed
    theirs_argv, mine_argv = commands(operation)
    for kind, path in bad_files(tmp_path).items():
        mine = _same_as_ssh_keygen(theirs_argv, mine_argv, {SIG: path, ALLOWED: str(allowed)}, kind)
        # ssh-keygen: nothing on stdout for find-principals, else its verdict
        verdict = b"" if operation == "find-principals" else b"Could not verify signature.\n"
        assert mine.stdout == verdict, kind
        line = assert_one_line(mine)
        if kind == "directory":
            assert "is a directory, not a signature file" in line


@pytest.mark.parametrize("operation", ["verify", "find-principals"])
def test_bad_allowed_signers_file_as_ssh_keygen(
    operation: str, signed: tuple[Path, Path], tmp_path: Path
) -> None:
    signature, _ = signed
    theirs_argv, mine_argv = commands(operation)
    for kind, path in bad_files(tmp_path).items():
        files = {SIG: str(signature), ALLOWED: path}
        mine = _same_as_ssh_keygen(theirs_argv, mine_argv, files, kind)
        line = assert_one_line(mine)
        if kind == "directory":
            assert "is a directory, not an allowed signers file" in line


@pytest.mark.parametrize("fifo", [False, True], ids=["pipe", "fifo"])
@pytest.mark.parametrize("operation", ["verify", "find-principals", "check-novalidate"])
def test_pipes_read_as_ssh_keygen(
    operation: str, fifo: bool, signed: tuple[Path, Path], tmp_path: Path
) -> None:
    signature, allowed = signed
    theirs_argv, mine_argv = commands(operation)
    contents = {SIG: signature.read_bytes(), ALLOWED: allowed.read_bytes()}
    fifo_dir = tmp_path if fifo else None
    theirs = run_piped(theirs_argv, contents, fifo_dir)
    mine = run_piped(mine_argv, contents, fifo_dir)
    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), (
        theirs.stderr,
        mine.stderr,
    )
    assert mine.returncode == 0, mine.stderr
    assert mine.stderr == b""
    expected = IDENTITY.encode() + b"\n" if operation == "find-principals" else b'Good "file"'
    assert mine.stdout.startswith(expected)
    # the same pipes with another message: the signature read from them does not verify
    if operation != "find-principals":
        theirs = run_piped(theirs_argv, contents, fifo_dir, MESSAGE + b"!")
        mine = run_piped(mine_argv, contents, fifo_dir, MESSAGE + b"!")
        assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout)
        assert mine.returncode == 255
        assert_one_line(mine)


def test_process_substitution_as_ssh_keygen(signed: tuple[Path, Path]) -> None:
    """The command line of the report: ``-f <(cat allowed) -s <(cat sig)`` in bash."""
    signature, allowed = signed
    script = '"$@" -f <(cat "$ALLOWED") -I "$IDENTITY" -n file -s <(cat "$SIG")'
    env = base_env(ALLOWED=str(allowed), SIG=str(signature), IDENTITY=IDENTITY)
    theirs, mine = (
        subprocess.run(
            [require("bash"), "-c", script, "bash", *command],
            input=MESSAGE,
            capture_output=True,
            env=env,
            timeout=60,
        )
        for command in ([require("ssh-keygen"), "-Y", "verify"], [*KEYTOOL, "verify"])
    )
    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), mine.stderr
    assert mine.returncode == 0
    assert mine.stdout.startswith(f'Good "file" signature for {IDENTITY}'.encode())


def test_pipe_over_the_size_cap_refused(signed: tuple[Path, Path]) -> None:
    """A pipe is read to its end, but no further than files.MAX_TEXT_FILE_SIZE: past it,
    a signature that does not verify, said in one line."""
    from keytool.files import MAX_TEXT_FILE_SIZE

    _, allowed = signed
    _, mine_argv = commands("verify")
    huge = {SIG: b"-" * (MAX_TEXT_FILE_SIZE + 1), ALLOWED: allowed.read_bytes()}
    mine = run_piped(mine_argv, huge)
    assert (mine.returncode, mine.stdout) == (255, b"Could not verify signature.\n")
    assert "too large for a signature file" in assert_one_line(mine)

"""A key that cannot be saved, side by side with ssh-keygen: keytool gen, passwd and
comment over a full disk, a read-only key or .pub, a .pub that is a folder, a
read-only filesystem, a link to no file.

ssh-keygen rewrites files in place, the key before its .pub: where the .pub then
fails, it has already replaced the key. keytool checks both and writes both to temp
files before either takes its name, so the same failure, said in the same words
with the same exit status, leaves both old files as they were and no temp file."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.interop.fshelp import fill, small_tmpfs
from tests.peers import require

TOOLS = ("ssh-keygen", "keytool")
#: root, but file modes enforced: as a user's ssh-keygen sees a 0400 key
NO_OVERRIDE = ("setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner,-chown", "--")
#: a keytool subcommand and the ssh-keygen flags that do the same
SUBCOMMANDS: dict[str, list[str]] = {"gen": [], "passwd": ["-p"], "comment": ["-c"]}


def _run(
    tool: str,
    command: str,
    args: list[str],
    cwd: Path,
    stdin: str = "",
    prefix: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    program = [require("ssh-keygen"), *SUBCOMMANDS[command]] if tool == "ssh-keygen" else [
        *KEYTOOL, command]  # fmt: skip
    return subprocess.run(
        [*prefix, *program, *args], input=stdin, capture_output=True, text=True, timeout=120,
        cwd=cwd, env=base_env(HOME=str(cwd)), check=False,
    )  # fmt: skip


def _said(done: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    """Exit status, stdout, and the one line on stderr without keytool's prefix."""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) <= 1, done.stderr
    return done.returncode, done.stdout, lines[0].removeprefix("keytool: ") if lines else ""


def _make_pair(key: Path) -> None:
    made = subprocess.run(
        [require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "old", "-f", str(key)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr


def _state(folder: Path) -> dict[str, tuple[str, int] | str]:
    """Every name in ``folder`` (temp files too): a file's sha256 and mode, else its kind."""
    seen: dict[str, tuple[str, int] | str] = {}
    for entry in sorted(folder.iterdir()):
        info = entry.lstat()
        if stat.S_ISREG(info.st_mode):
            digest = hashlib.sha256(entry.read_bytes()).hexdigest()
            seen[entry.name] = (digest, stat.S_IMODE(info.st_mode))
        else:
            seen[entry.name] = "link" if stat.S_ISLNK(info.st_mode) else "other"
    return seen


def _modes(folder: Path) -> dict[str, int | str]:
    return {name: v[1] if isinstance(v, tuple) else v for name, v in _state(folder).items()}


def _no_override(tmp_path: Path) -> tuple[str, ...]:
    """The setpriv prefix, once it is seen to enforce modes for root; else skipped."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv")
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    probe.chmod(0o400)
    tried = subprocess.run([*NO_OVERRIDE, "test", "-w", str(probe)], capture_output=True)
    probe.unlink()
    if tried.returncode != 1:
        pytest.skip("setpriv cannot take root's override of file modes here")
    return NO_OVERRIDE


# 1. a full disk: both files written before either is renamed


@pytest.mark.parametrize("pages", [0, 1])
def test_a_new_pair_on_a_full_disk(tmp_path: Path, pages: int) -> None:
    """No room for the key, or room for the key alone: the same words and status as
    ssh-keygen; ssh-keygen leaves a key with an empty .pub where the key fitted,
    keytool leaves nothing."""
    said = {}
    for tool in TOOLS:
        with small_tmpfs(tmp_path / tool / "full", "256k") as full:
            fill(full, pages)
            done = _run(tool, "gen", ["-q", "-t", "ed25519", "-N", "", "-f", "full/k"],
                        tmp_path / tool)  # fmt: skip
            said[tool] = _said(done)
            if tool == "keytool":
                assert set(_state(full)) == {".filler"}
    assert said["keytool"] == said["ssh-keygen"]
    assert said["ssh-keygen"][0] != 0 and "No space left on device" in said["ssh-keygen"][2]


def test_a_pair_replaced_on_a_full_disk_stays_whole(tmp_path: Path) -> None:
    """Room for one new file: ssh-keygen rewrites the pair in place and needs no more;
    keytool writes the new key and .pub beside the old ones and cannot, and says so
    as ssh-keygen says it when the .pub does not fit (a new pair in that room): the
    old key and .pub are left as they were."""
    with small_tmpfs(tmp_path / "ssh-keygen" / "full", "256k") as full:
        fill(full, 1)
        fresh = _said(_run("ssh-keygen", "gen", ["-q", "-t", "ed25519", "-N", "", "-f",
                                                 "full/k"], tmp_path / "ssh-keygen"))  # fmt: skip
    with small_tmpfs(tmp_path / "keytool" / "full", "256k") as full:
        _make_pair(full / "k")
        fill(full, 1)
        before = _state(full)
        done = _run("keytool", "gen", ["-q", "-t", "ed25519", "-N", "", "-f", "full/k",
                                       "--force"], tmp_path / "keytool")  # fmt: skip
        assert _said(done) == fresh
        assert _state(full) == before


# 1. and 2. a .pub that cannot be written: the key is not replaced


def test_a_pub_that_is_a_folder_leaves_the_key(tmp_path: Path) -> None:
    said, kept = {}, {}
    for tool in TOOLS:
        folder = tmp_path / tool
        folder.mkdir()
        _make_pair(folder / "k")
        (folder / "k.pub").unlink()
        (folder / "k.pub").mkdir()
        before = _state(folder)
        done = _run(tool, "gen", ["-q", "-t", "ed25519", "-N", "", "-f", "k"], folder, "y\n")
        said[tool] = _said(done)
        kept[tool] = _state(folder) == before
    assert said["keytool"] == said["ssh-keygen"]
    assert said["ssh-keygen"][0] != 0
    assert kept["keytool"]  # ssh-keygen has replaced the key by then


@pytest.mark.parametrize("command", ["gen", "comment"])
def test_a_read_only_pub_leaves_the_key(tmp_path: Path, command: str) -> None:
    """A .pub we may not write (0444, for a user): ssh-keygen gen and -c replace the
    key, then fail on the .pub; keytool fails the same way before it writes either."""
    prefix = _no_override(tmp_path)
    said, kept = {}, {}
    for tool in TOOLS:
        folder = tmp_path / tool
        folder.mkdir()
        _make_pair(folder / "k")
        (folder / "k.pub").chmod(0o444)
        before = _state(folder)
        args = ["-q", "-t", "ed25519", "-N", ""] if command == "gen" else ["-C", "new"]
        done = _run(tool, command, [*args, "-f", "k"], folder, "y\n", prefix)
        # stdout left out: ssh-keygen's fatal() exits without flushing it to a pipe
        status, _, line = _said(done)
        said[tool] = (status, line)
        kept[tool] = _state(folder) == before
    assert said["keytool"] == said["ssh-keygen"]
    assert said["ssh-keygen"][0] != 0
    assert kept["keytool"]  # ssh-keygen has replaced the key by then


# 2. a read-only key


@pytest.mark.parametrize("command", ["gen", "passwd", "comment"])
def test_a_read_only_key_is_left_alone(tmp_path: Path, command: str) -> None:
    """``chmod 400 key`` keeps it from ssh-keygen gen, -p and -c: from keytool too."""
    prefix = _no_override(tmp_path)
    args = {
        "gen": ["-q", "-t", "ed25519", "-N", ""],
        "passwd": ["-P", "", "-N", "secret12"],
        "comment": ["-C", "new"],
    }[command]
    said, after = {}, {}
    for tool in TOOLS:
        folder = tmp_path / tool
        folder.mkdir()
        _make_pair(folder / "k")
        (folder / "k").chmod(0o400)
        before = _state(folder)
        said[tool] = _said(_run(tool, command, [*args, "-f", "k"], folder, "y\n", prefix))
        after[tool] = _state(folder) == before
    assert said["keytool"] == said["ssh-keygen"]
    assert after["keytool"] == after["ssh-keygen"] is True
    assert said["ssh-keygen"][0] != 0


# 3. a read-only filesystem, a missing folder: the file named as given, the real reason


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("gen", ["-q", "-t", "ed25519", "-N", "", "-f", "rom/k"]),
        ("gen", ["-q", "-t", "ed25519", "-N", "", "-f", "./rom/new"]),
        ("passwd", ["-P", "", "-N", "secret12", "-f", "rom/k"]),
        ("comment", ["-C", "new", "-f", "rom/k"]),
    ],
)
def test_a_read_only_filesystem(tmp_path: Path, command: str, args: list[str]) -> None:
    said = {}
    for tool in TOOLS:
        with small_tmpfs(tmp_path / tool / "rom", "256k") as rom:
            _make_pair(rom / "k")
            remounted = subprocess.run(["mount", "-o", "remount,ro", str(rom)],
                                       capture_output=True, check=False)  # fmt: skip
            if remounted.returncode != 0:
                pytest.skip("cannot make a tmpfs read-only here")
            before = _state(rom)
            said[tool] = _said(_run(tool, command, args, tmp_path / tool, "y\n"))
            assert _state(rom) == before
    assert said["keytool"] == said["ssh-keygen"]
    assert said["ssh-keygen"][0] != 0


@pytest.mark.parametrize("name", ["nowhere/k", "loop"])
def test_a_key_that_cannot_be_made_there(tmp_path: Path, name: str) -> None:
    """A folder missing, a link to itself: no question, ssh-keygen's words and status."""
    said = {}
    for tool in TOOLS:
        folder = tmp_path / tool
        folder.mkdir()
        (folder / "loop").symlink_to("loop")
        done = _run(tool, "gen", ["-q", "-t", "ed25519", "-N", "", "-f", name], folder)
        said[tool] = (*_said(done), _modes(folder))
    assert said["keytool"] == said["ssh-keygen"]
    assert said["ssh-keygen"][0] != 0


# 4. a link to no file


def test_a_link_to_no_file_is_written_through_without_a_question(tmp_path: Path) -> None:
    done = {}
    for tool in TOOLS:
        folder = tmp_path / tool
        folder.mkdir()
        (folder / "k").symlink_to("target")
        made = _run(tool, "gen", ["-q", "-t", "ed25519", "-N", "", "-f", "k"], folder)
        derived = subprocess.run(
            [require("ssh-keygen"), "-y", "-f", "k"], cwd=folder, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
        pub = (folder / "k.pub").read_text().split()[:2] if (folder / "k.pub").exists() else []
        done[tool] = (*_said(made), _modes(folder), derived.stdout.split()[:2] == pub)
    assert done["keytool"] == done["ssh-keygen"]
    assert done["ssh-keygen"][0] == 0 and done["ssh-keygen"][-1]

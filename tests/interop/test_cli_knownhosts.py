"""``keytool known-hosts -F / -R / -H`` against ``ssh-keygen -F / -R / -H`` on copies of
one known_hosts file: the same output, exit status, rewritten bytes, FILE.old and mode
(-H salts at random, so there ssh-keygen -F is asked to find each host in our file)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require, run


def keys(tmp_path: Path) -> dict[str, str]:
    found = {}
    for kind in ("ed25519", "ecdsa", "rsa"):
        path = tmp_path / f"k_{kind}"
        run([require("ssh-keygen"), "-q", "-t", kind, "-N", "", "-f", path]).check_returncode()
        found[kind] = " ".join(Path(f"{path}.pub").read_text().split()[:2])
    return found


@pytest.fixture
def original(tmp_path: Path) -> bytes:
    k = keys(tmp_path)
    hashed = tmp_path / "hashed"
    hashed.write_text(f"hashed.example {k['rsa']}\n[hashed.example]:2200 {k['ed25519']}\n")
    run([require("ssh-keygen"), "-H", "-f", hashed]).check_returncode()
    lines = [
        "# a comment, kept",
        f"foo.example,10.0.0.1 {k['ed25519']}",
        f"[foo.example]:2222 {k['ed25519']} a comment",
        f"*.wild.example,!bad.wild.example {k['ecdsa']}",
        f"other.example {k['rsa']}",
        f"@cert-authority foo.example {k['ecdsa']}",
        f"@revoked foo.example {k['rsa']}",
        "",
        *hashed.read_text().splitlines(),
        f"foo.example  {k['ecdsa']}   spaced",
    ]
    # the last line without a newline
    return "\n".join(lines).encode()


def both(
    tmp_path: Path, original: bytes, *args: str, typed: str = "known_hosts"
) -> dict[str, tuple[object, ...]]:
    """Run ssh-keygen and keytool on copies of ``original`` (-f ``typed``, a name of
    it); what each printed, its status, and the file (and FILE.old) it left."""
    results = {}
    for name, tool in (("ssh-keygen", [require("ssh-keygen")]), ("keytool", [*KEYTOOL])):
        folder = tmp_path / name
        folder.mkdir()
        path = folder / "known_hosts"
        path.write_bytes(original)
        path.chmod(0o644)
        command = [*tool, "known-hosts"] if name == "keytool" else tool
        done = subprocess.run(
            [*command, *args, "-f", typed],
            capture_output=True, cwd=folder, env=base_env(), timeout=60,
        )  # fmt: skip
        old = folder / "known_hosts.old"
        results[name] = (
            done.returncode,
            done.stdout,
            done.stderr.decode().strip().removeprefix("keytool: "),
            path.read_bytes(),
            stat.S_IMODE(path.stat().st_mode),
            old.read_bytes() if old.exists() else None,
        )
        shutil.rmtree(folder)
    return results


@pytest.mark.parametrize(
    "host",
    [
        "foo.example",
        "10.0.0.1",
        "[foo.example]:2222",
        "a.wild.example",
        "bad.wild.example",
        "hashed.example",
        "[hashed.example]:2200",
        "absent.example",
    ],
)
def test_find_as_ssh_keygen(tmp_path: Path, original: bytes, host: str) -> None:
    results = both(tmp_path, original, "-F", host)
    assert results["keytool"] == results["ssh-keygen"]


@pytest.mark.parametrize(
    "host",
    ["foo.example", "[foo.example]:2222", "a.wild.example", "hashed.example", "other.example"],
)
def test_remove_as_ssh_keygen(tmp_path: Path, original: bytes, host: str) -> None:
    results = both(tmp_path, original, "-R", host)
    ours, theirs = results["keytool"], results["ssh-keygen"]
    assert ours == theirs
    status, _, _, new, mode, old = ours
    assert status == 0 and new != original and mode == 0o644
    assert old == original  # the previous contents, byte for byte


def test_remove_absent_changes_nothing(tmp_path: Path, original: bytes) -> None:
    results = both(tmp_path, original, "-R", "absent.example")
    assert results["keytool"] == results["ssh-keygen"]
    status, stdout, stderr, new, _, old = results["keytool"]
    assert (status, stdout, new, old) == (0, b"", original, None)
    assert stderr == "Host absent.example not found in known_hosts"


@pytest.mark.parametrize("args", [("-R", "foo.example"), ("-R", "absent.example"), ("-H",)])
def test_the_file_is_named_as_typed(tmp_path: Path, original: bytes, args: tuple[str]) -> None:
    """ssh-keygen names -f's file as typed ("./known_hosts updated."); keytool
    printed it normalized ("known_hosts updated.")."""
    results = both(tmp_path, original, *args, typed="./known_hosts")
    ours, theirs = results["keytool"], results["ssh-keygen"]
    assert ours[:2] == theirs[:2]
    assert ours[2] == str(theirs[2]).replace("\r\n", "\n")  # ssh-keygen's log lines end CR LF
    assert b"./known_hosts" in theirs[1] or "./known_hosts" in str(theirs[2])


def test_hash_is_what_ssh_keygen_finds(tmp_path: Path, original: bytes) -> None:
    ours_file = tmp_path / "ours"
    ours_file.write_bytes(original)
    ours_file.chmod(0o640)
    done = subprocess.run(
        [*KEYTOOL, "known-hosts", "-H", "-f", str(ours_file)],
        capture_output=True, env=base_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ours.old").read_bytes() == original
    assert stat.S_IMODE(ours_file.stat().st_mode) == 0o640
    theirs_file = tmp_path / "theirs"
    theirs_file.write_bytes(original)
    run([require("ssh-keygen"), "-H", "-f", theirs_file]).check_returncode()
    ours_lines = ours_file.read_text().splitlines()
    theirs_lines = theirs_file.read_text().splitlines()
    assert len(ours_lines) == len(theirs_lines)
    for mine, its in zip(ours_lines, theirs_lines, strict=True):
        if its.startswith("|1|"):
            # hashed alike: a fresh salt each, the same key and comment after it
            assert mine.startswith("|1|") and mine.split(" ", 1)[1] == its.split(" ", 1)[1]
        else:
            assert mine == its
    # ssh-keygen finds every host in our hashed file on the lines it finds it in its own
    for host in ("foo.example", "10.0.0.1", "[foo.example]:2222", "other.example"):
        found = [
            [line for line in run([require("ssh-keygen"), "-F", host, "-f", path]).stdout
             .splitlines() if line.startswith("# Host")]
            for path in (ours_file, theirs_file)
        ]  # fmt: skip
        assert found[0] == found[1] and found[0], host


@pytest.mark.parametrize("args", [("-R", "foo.example"), ("-R", "absent.example"), ("-H",)])
def test_a_file_with_an_unreadable_line_is_not_rewritten(
    tmp_path: Path, original: bytes, args: tuple[str, ...]
) -> None:
    broken = original.replace(b"\n\n", b"\nnot a key line at all\n")
    results = both(tmp_path, broken, *args)
    for status, _stdout, stderr, new, _, old in results.values():
        assert status == 1 and new == broken and old is None
        assert "not a valid known_hosts file" in stderr
    # one line from keytool, naming the line
    assert "line 8 cannot be read" in str(results["keytool"][2])
    assert len(str(results["keytool"][2]).splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [("-F", "x", "-f", "/nonexistent/known_hosts"), ("-f", "known_hosts"), ("-H", "-R", "x")],
)
def test_bad_use_is_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    (tmp_path / "known_hosts").write_text("")
    done = subprocess.run(
        [*KEYTOOL, "known-hosts", *args],
        capture_output=True, cwd=tmp_path, env=base_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert len(done.stderr.decode().splitlines()) == 1, done.stderr
    assert b"Traceback" not in done.stderr
    assert os.listdir(tmp_path) == ["known_hosts"]


def test_an_old_file_that_is_a_folder_is_named(tmp_path: Path) -> None:
    """FILE.old that cannot be replaced: both tools leave the file whole, and say so
    naming FILE.old (not the file itself)."""
    line = f"host1 {keys(tmp_path)['ed25519']}\n".encode()
    said = {}
    for name, tool in (("ssh-keygen", [require("ssh-keygen")]), ("keytool", [*KEYTOOL])):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "known_hosts").write_bytes(line)
        (folder / "known_hosts.old").mkdir()
        command = [*tool, "known-hosts"] if name == "keytool" else tool
        done = subprocess.run([*command, "-R", "host1", "-f", "known_hosts"],
                              capture_output=True, cwd=folder, env=base_env(),
                              timeout=60)  # fmt: skip
        assert done.returncode != 0
        assert (folder / "known_hosts").read_bytes() == line
        said[name] = done.stderr.decode()
    assert "known_hosts.old" in said["ssh-keygen"] and "Is a directory" in said["ssh-keygen"]
    assert said["keytool"] == "keytool: cannot keep known_hosts.old: Is a directory\n"


def test_lines_as_ssh_keygen_reads_them(tmp_path: Path) -> None:
    """A damaged key after a known type is kept by -R and -H (keytool refused the whole
    file); a line of a type OpenSSH does not have is not listed by -F; a wildcard line
    -H cannot hash is named on stderr; a name outside ASCII is lowercased as ssh does
    (A-Z only) before it is hashed."""
    k = keys(tmp_path)
    text = (
        f"a.example {k['ed25519']}\n"
        "damaged.example ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABgQCx38L3\n"
        f"foo.example {k['ecdsa']}\n"
        f"*.w.example,!b.w.example {k['rsa']}\n"
        f"\u00c9COLE.example {k['rsa']}\n"
        f"z.example {k['ed25519']}\n"
    ).encode()
    lines = text.splitlines(keepends=True)
    for args in (("-R", "z.example"), ("-R", "damaged.example")):
        results = both(tmp_path, text, *args)
        assert results["keytool"] == results["ssh-keygen"], args
        assert results["keytool"][0] == 0
    removed = both(tmp_path, text, "-R", "z.example")["keytool"]
    assert removed[3] == b"".join(lines[:-1])  # the damaged line kept, byte for byte
    odd_type = b"foo.example badtype AAAA\n" + text
    results = both(tmp_path, odd_type, "-F", "foo.example")
    assert results["keytool"] == results["ssh-keygen"]
    assert b"badtype" not in results["keytool"][1] and b"line 4" in results["keytool"][1]
    hashed = {}
    for name, tool in (("ssh-keygen", [require("ssh-keygen")]), ("keytool", [*KEYTOOL])):
        folder = tmp_path / f"h-{name}"
        folder.mkdir()
        (folder / "known_hosts").write_bytes(text)
        command = [*tool, "known-hosts"] if name == "keytool" else tool
        done = subprocess.run([*command, "-H", "-f", "known_hosts"], capture_output=True,
                              text=True, cwd=folder, env=base_env(), timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr.startswith(
            "known_hosts:4: ignoring host name with wildcard: *.w.example,!b.w.example\n"
        )
        hashed[name] = folder / "known_hosts"
    for path in hashed.values():  # each tool's hashes found by ssh-keygen, by ssh's rules
        # ssh looks "\u00c9COLE.example" up as "\u00c9cole.example" (only A-Z lowered)
        found_e = run([require("ssh-keygen"), "-F", "\u00c9cole.example", "-f", path])
        assert found_e.returncode == 0 and "line 5" in found_e.stdout, path
        assert " ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABgQCx38L3\n" in path.read_text()


def test_errors_and_an_empty_file_name_as_ssh_keygen(tmp_path: Path) -> None:
    """A file that is not there is 255 for both (1 would read as "host not found" in
    ssh-keygen -F h || add); -f '' never means ~/.ssh/known_hosts (keytool edited it)."""
    default = tmp_path / ".ssh" / "known_hosts"
    default.parent.mkdir()
    line = f"x {keys(tmp_path)['ed25519']}\n".encode()
    default.write_bytes(line)
    for tool in ([require("ssh-keygen")], [*KEYTOOL, "known-hosts"]):
        missing = subprocess.run([*tool, "-F", "x", "-f", str(tmp_path / "absent")],
                                 capture_output=True, env=base_env(), timeout=60)  # fmt: skip
        assert missing.returncode == 255, tool
        empty = subprocess.run([*tool, "-R", "x", "-f", ""], capture_output=True,
                               env=base_env(HOME=str(tmp_path)), timeout=60)  # fmt: skip
        assert empty.returncode != 0 and not empty.stdout, tool
        assert default.read_bytes() == line and not default.with_name("known_hosts.old").exists()


def test_a_link_to_another_filesystem_is_rewritten(tmp_path: Path) -> None:
    """known_hosts a symbolic link to a file on another filesystem (/dev/shm): -R worked
    for ssh-keygen and failed for keytool (no hard link across filesystems for .old)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem here")
    k = keys(tmp_path)
    text = f"a.example {k['ed25519']}\nz.example {k['ecdsa']}\n".encode()
    target = Path(tempfile.mkdtemp(dir=shm)) / "kh"
    try:
        target.write_bytes(text)
        link = tmp_path / "known_hosts"
        link.symlink_to(target)
        done = subprocess.run([*KEYTOOL, "known-hosts", "-R", "z.example", "-f", str(link)],
                              capture_output=True, text=True, env=base_env(),
                              timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert link.is_symlink() and target.read_bytes() == text.splitlines(keepends=True)[0]
        assert (tmp_path / "known_hosts.old").read_bytes() == text
    finally:
        shutil.rmtree(target.parent)


@pytest.mark.parametrize(
    "args",
    [("-l",), ("-q",), ("-q", "-l"), ("-l", "-E", "md5"), ("-H",)],
)
@pytest.mark.parametrize("host", ["foo.example", "hashed.example", "absent.example"])
def test_find_with_its_flags_as_ssh_keygen(
    tmp_path: Path, original: bytes, args: tuple[str, ...], host: str
) -> None:
    """ssh-keygen -F HOST with -l (fingerprints), -q (no "# Host" lines), -E and -H
    (the lines found, hashed; the file unchanged): keytool refused these."""
    results = both(tmp_path, original, "-F", host, *args)
    ours, theirs = results["keytool"], results["ssh-keygen"]
    if "-H" not in args:
        assert ours == theirs
    else:  # fresh salts: the same lines but for the hashes
        assert ours[0] == theirs[0] and ours[2:] == theirs[2:]
        mine, its = ours[1].splitlines(), theirs[1].splitlines()  # type: ignore[attr-defined]
        assert len(mine) == len(its)
        for a, b in zip(mine, its, strict=True):
            if b.startswith(b"|1|") and not original.count(b):
                assert a.startswith(b"|1|") and a.split(b" ", 1)[1] == b.split(b" ", 1)[1]
            else:
                assert a == b
    assert ours[3] == original
    assert ours[0] == (1 if host == "absent.example" else 0)

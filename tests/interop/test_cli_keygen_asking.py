"""How keytool gen, passwd, comment, pub, export, import and fingerprint ask and what they
take, side by side with ssh-keygen: the file name asked for without -f, passphrases that
do not match, the old passphrase's prompt, -b and -a limits, long comments, comment's -a
and -Z, and a key rewritten by a new file renamed over it (hard links, extended
attributes, the folder)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.interop.test_client_terminal import OnTerminal
from tests.peers import require

SSH_KEYGEN = "ssh-keygen"


def _tools() -> dict[str, list[str]]:
    """The same command by ssh-keygen and by keytool (its subcommand added by callers)."""
    return {"openssh": [require(SSH_KEYGEN)], "keytool": list(KEYTOOL)}


def _argv(tool: str, keygen: list[str], ours: list[str]) -> list[str]:
    return [*_tools()[tool], *(keygen if tool == "openssh" else ours)]


def _no_terminal(
    argv: list[str], home: Path, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """``argv`` without a controlling terminal, ``stdin`` its input."""
    return subprocess.run(
        argv, input=stdin, capture_output=True, timeout=120, env=base_env(HOME=str(home)),
        start_new_session=True, check=False,
    )  # fmt: skip


def _default_home(tool: str, home: Path) -> Path:
    """ssh-keygen's defaults are under the account's home, keytool's under $HOME."""
    return Path(pwd.getpwuid(os.getuid()).pw_dir) if tool == "openssh" else home


def _error_line(result: subprocess.CompletedProcess[bytes]) -> bytes:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert b"Traceback" not in result.stderr
    return lines[0].removeprefix(b"keytool: ")


def _make_key(path: Path, passphrase: str = "", comment: str = "c") -> None:
    made = subprocess.run(
        [require(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", path],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr


def _opens(path: Path, passphrase: str) -> bool:
    return (
        subprocess.run(
            [require(SSH_KEYGEN), "-y", "-P", passphrase, "-f", path],
            capture_output=True,
            timeout=60,
            check=False,
        ).returncode
        == 0
    )


# 1. the file asked for without -f


def test_gen_asks_for_the_file_on_a_terminal(tmp_path: Path) -> None:
    """ssh-keygen says what it makes, then asks where (its default in parentheses);
    keytool took the path typed there as the passphrase."""
    shown = {}
    for tool in ("openssh", "keytool"):
        home = tmp_path / tool / "home"
        home.mkdir(parents=True)
        key = tmp_path / tool / "typed"
        argv = _argv(tool, ["-t", "ed25519", "-N", ""], ["gen", "-t", "ed25519", "-N", ""])
        term = OnTerminal(argv, env=base_env(HOME=str(home)))
        term.read_until(b"): ")
        term.type(str(key).encode() + b"\r")
        assert term.finish() == 0, term.seen
        assert key.exists() and Path(f"{key}.pub").exists(), term.seen
        default = _default_home(tool, home) / ".ssh" / "id_ed25519"
        first = term.seen.replace(b"\r\n", b"\n").split(b"\n")[:2]
        first[1] = first[1].replace(str(key).encode(), b"TYPED")  # echoed as typed
        shown[tool] = [line.replace(str(default).encode(), b"DEFAULT") for line in first]
    assert shown["keytool"] == shown["openssh"]
    assert shown["openssh"][0] == b"Generating public/private ed25519 key pair."
    assert shown["openssh"][1] == b"Enter file in which to save the key (DEFAULT): TYPED"


def test_gen_reads_the_file_from_stdin_without_a_terminal(tmp_path: Path) -> None:
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        argv = _argv(tool, ["-t", "ed25519", "-N", ""], ["gen", "-t", "ed25519", "-N", ""])
        done = _no_terminal(argv, tmp_path, f"{key}\n".encode())
        assert done.returncode == 0, done.stderr
        assert _opens(key, ""), tool
        prompt = done.stdout.split(b"\n")[1]
        default = _default_home(tool, tmp_path) / ".ssh" / "id_ed25519"
        assert prompt.startswith(f"Enter file in which to save the key ({default}): ".encode())


@pytest.mark.parametrize("command", ["passwd", "comment"])
def test_passwd_and_comment_ask_which_key(tmp_path: Path, command: str) -> None:
    """ssh-keygen -p and -c ask "Enter file in which the key is (~/.ssh/id_rsa): "."""
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        _make_key(key, "")
        if command == "passwd":
            theirs, ours = ["-p", "-P", "", "-N", "new"], ["passwd", "-P", "", "-N", "new"]
        else:
            theirs, ours = ["-c", "-C", "new"], ["comment", "-C", "new"]
        done = _no_terminal(_argv(tool, theirs, ours), tmp_path, f"{key}\n".encode())
        assert done.returncode == 0, done.stderr
        default = _default_home(tool, tmp_path) / ".ssh" / "id_rsa"
        assert done.stdout.startswith(f"Enter file in which the key is ({default}): ".encode())
        if command == "passwd":
            assert _opens(key, "new"), tool
        else:
            assert Path(f"{key}.pub").read_text().split()[2] == "new", tool


READERS = {
    "pub": (["-y"], ["pub"]),
    "export": (["-e"], ["export"]),
    "import": (["-i"], ["import"]),
    "fingerprint": (["-l"], ["fingerprint"]),
}


@pytest.mark.parametrize("command", sorted(READERS))
def test_readers_ask_which_file_and_print_what_ssh_keygen_prints(
    tmp_path: Path, command: str
) -> None:
    """ssh-keygen -y, -e, -i and -l without -f ask for the file, then print the same."""
    key = tmp_path / "key"
    _make_key(key, "")
    if command == "import":  # an RFC 4716 file to read
        exported = subprocess.run(
            [require(SSH_KEYGEN), "-e", "-f", key], capture_output=True, timeout=60, check=True
        )
        key = tmp_path / "key.rfc"
        key.write_bytes(exported.stdout)
    printed = {}
    for tool in ("openssh", "keytool"):
        theirs, ours = READERS[command]
        done = _no_terminal(_argv(tool, theirs, ours), tmp_path, f"{key}\n".encode())
        assert done.returncode == 0, done.stderr
        default = _default_home(tool, tmp_path) / ".ssh" / "id_rsa"
        question = f"Enter file in which the key is ({default}): ".encode()
        assert done.stdout.startswith(question), done.stdout
        printed[tool] = done.stdout.removeprefix(question)
    assert printed["keytool"] == printed["openssh"]
    assert printed["openssh"].count(b"\n") >= 1


# 4. and 5. passphrases


def test_gen_asks_again_when_the_passphrases_differ(tmp_path: Path) -> None:
    shown = {}
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        term = OnTerminal(_argv(tool, ["-t", "ed25519", "-f", str(key)], ["gen", "-f", str(key)]))
        for answer in (b"one", b"two", b"three", b"three"):
            start = len(term.seen)
            term.read_until(b": ", start=start)
            term.type(answer + b"\r")
        assert term.finish() == 0, term.seen
        assert _opens(key, "three"), tool
        lines = term.seen.replace(b"\r\n", b"\n").split(b"\n")
        shown[tool] = [line.strip(b"\r") for line in lines if b"passphrase" in line.lower()]
    assert shown["keytool"] == shown["openssh"]
    assert b"Passphrases do not match.  Try again." in shown["openssh"]


def test_passwd_asks_for_the_old_passphrase_and_stops_at_a_mismatch(tmp_path: Path) -> None:
    seen = {}
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        _make_key(key, "old")
        before = key.read_bytes()
        term = OnTerminal(_argv(tool, ["-p", "-f", str(key)], ["passwd", "-f", str(key)]))
        term.read_until(b": ")
        first_prompt = term.seen.strip()
        term.type(b"old\r")
        for answer in (b"one", b"two"):
            start = len(term.seen)
            term.read_until(b": ", start=start)
            term.type(answer + b"\r")
        status = term.finish()
        assert key.read_bytes() == before, tool
        said = [x.strip() for x in term.seen.replace(b"\r\n", b"\n").split(b"\n")]
        seen[tool] = (
            status,
            first_prompt,
            any(x.endswith(b"Pass phrases do not match.  Try again.") for x in said),
        )
    assert seen["keytool"] == seen["openssh"]
    assert seen["openssh"] == (1, b"Enter old passphrase:", True)


# 3. and 7. -b and -a


@pytest.mark.parametrize("key_type", ["ed25519", "rsa", "ecdsa"])
@pytest.mark.parametrize("bits", ["0", "-1"])
def test_bits_too_small_for_every_type(tmp_path: Path, key_type: str, bits: str) -> None:
    done = {}
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        args = ["-q", "-t", key_type, "-b", bits, "-N", "", "-f", str(key)]
        result = _no_terminal(_argv(tool, args, ["gen", *args]), tmp_path)
        done[tool] = (result.returncode, _error_line(result), key.exists())
    assert done["keytool"] == done["openssh"]
    assert done["openssh"][0] == 255


def test_bits_of_ed25519_said_nothing_with_q(tmp_path: Path) -> None:
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        args = ["-q", "-t", "ed25519", "-b", "1024", "-N", "", "-f", str(key)]
        result = _no_terminal(_argv(tool, args, ["gen", *args]), tmp_path)
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), tool


def test_rounds_above_65536_are_taken(tmp_path: Path) -> None:
    """ssh-keygen takes -a up to INT_MAX (an unencrypted key uses no rounds)."""
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        args = ["-q", "-t", "ed25519", "-a", "65537", "-N", "", "-f", str(key)]
        result = _no_terminal(_argv(tool, args, ["gen", *args]), tmp_path)
        assert result.returncode == 0, (tool, result.stderr)
        over = ["-q", "-t", "ed25519", "-a", str(2**31), "-N", "", "-f", str(key) + "2"]
        refused = _no_terminal(_argv(tool, over, ["gen", *over]), tmp_path)
        assert refused.returncode == 255, tool
        _error_line(refused)


# 6. long comments


def test_a_long_comment_is_cut_at_1023_bytes(tmp_path: Path) -> None:
    long = "é" * 700 + "x"  # 1401 bytes: the cut falls inside a two-byte character
    written = {}
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        args = ["-q", "-t", "ed25519", "-N", "", "-C", long, "-f", str(key)]
        made = _no_terminal(_argv(tool, args, ["gen", *args]), tmp_path)
        assert made.returncode == 0, made.stderr
        made_comment = Path(f"{key}.pub").read_bytes().rstrip(b"\n").split(b" ", 2)[2]
        changed = _no_terminal(
            _argv(tool, ["-c", "-C", "z" + long, "-f", str(key)], ["comment", "-C", "z" + long,
                  "-f", str(key)]), tmp_path,
        )  # fmt: skip
        assert changed.returncode == 0, changed.stderr
        changed_comment = Path(f"{key}.pub").read_bytes().rstrip(b"\n").split(b" ", 2)[2]
        written[tool] = (made_comment, changed_comment)
    assert written["keytool"] == written["openssh"]
    assert len(written["openssh"][0]) == 1023


# 8. comment -a and -Z


def test_comment_takes_rounds_and_cipher(tmp_path: Path) -> None:
    from keytool.keys import openssh

    kept = {}
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        _make_key(key, "pw")
        args = ["-C", "new", "-P", "pw", "-a", "7", "-Z", "aes128-ctr", "-f", str(key)]
        done = _no_terminal(_argv(tool, ["-c", *args], ["comment", *args]), tmp_path)
        assert done.returncode == 0, done.stderr
        outer = openssh.parse(key.read_bytes())
        kept[tool] = (outer.rounds, outer.cipher, _opens(key, "pw"))
    assert kept["keytool"] == kept["openssh"]
    assert kept["openssh"] == (7, "aes128-ctr", True)


def test_comment_keeps_a_passphrase_typed_at_its_prompt(tmp_path: Path) -> None:
    """ssh-keygen -c asks for the passphrase and writes the key again with it; keytool
    wrote the key without one when it was typed (only -P kept it)."""
    kept = {}
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        _make_key(key, "pw")
        args = ["-C", "renamed", "-f", str(key)]
        done = _no_terminal(_argv(tool, ["-c", *args], ["comment", *args]), tmp_path, b"pw\n")
        assert done.returncode == 0, done.stderr
        pub = Path(f"{key}.pub").read_text().split()
        kept[tool] = (_opens(key, ""), _opens(key, "pw"), pub[2:])
        listed = subprocess.run([require(SSH_KEYGEN), "-l", "-f", str(key)], capture_output=True,
                                text=True, timeout=60, check=True)  # fmt: skip
        assert listed.stdout.split()[2] == "renamed", listed.stdout
    assert kept["keytool"] == kept["openssh"] == (False, True, ["renamed"])


# 2. a new file renamed over the key


def test_passwd_keeps_extended_attributes_and_warns_of_hard_links(tmp_path: Path) -> None:
    """ssh-keygen -p rewrites the file in place (the attributes stay, every name gets
    the new key); keytool renames a new file over it: the attributes are copied, and
    the other names, which keep the old key, are said."""
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        _make_key(key, "")
        try:
            os.setxattr(key, "user.keytool-test", b"kept")
        except OSError:
            pytest.skip("no user extended attributes here")
        other = tmp_path / f"{tool}-other"
        os.link(key, other)
        args = ["-P", "", "-N", "new", "-f", str(key)]
        done = _no_terminal(_argv(tool, ["-p", *args], ["passwd", *args]), tmp_path)
        assert done.returncode == 0, done.stderr
        assert os.getxattr(key, "user.keytool-test") == b"kept", tool
        assert _opens(key, "new"), tool
        if tool == "openssh":
            assert _opens(other, "new")
        else:
            assert _opens(other, "")  # the old key, unencrypted: said on stderr
            assert b"hard link" in done.stderr and b"old key" in done.stderr
            assert len(done.stderr.strip().splitlines()) == 1


def test_gen_over_a_key_says_its_other_hard_links_keep_the_old_key(tmp_path: Path) -> None:
    """ssh-keygen writes a new key into the old file (every name gets it); keytool
    renames a new file over it, so another hard link keeps the old key: gen says so,
    as passwd and comment say it (it said nothing)."""
    for tool in ("openssh", "keytool"):
        key = tmp_path / f"{tool}-key"
        _make_key(key, "")
        other = tmp_path / f"{tool}-other"
        os.link(key, other)
        before = other.read_bytes()
        args = ["-q", "-t", "ed25519", "-N", "", "-f", str(key)]
        done = _no_terminal(_argv(tool, args, ["gen", *args]), tmp_path, b"y\n")
        assert done.returncode == 0, done.stderr
        assert key.read_bytes() != before, tool  # a new key
        if tool == "openssh":
            assert other.read_bytes() == key.read_bytes()
        else:
            assert other.read_bytes() == before  # the old key: said on stderr
            assert b"had 1 other hard link: it keeps the old key" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_a_folder_not_writable_is_named(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """ssh-keygen -p rewrites in place, so a folder it may not write does not stop it;
    keytool, which never cuts a key file, names the folder as the reason, in
    ssh-keygen's words and with its status for a key not saved."""
    import tempfile

    nobody = pwd.getpwnam("nobody")
    top = Path(tempfile.mkdtemp(dir="/tmp"))  # a folder nobody may pass through
    top.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(top, ignore_errors=True))
    for tool in ("openssh", "keytool"):
        folder = top / tool
        folder.mkdir(mode=0o755)
        key = folder / "key"
        _make_key(key, "")
        os.chown(key, nobody.pw_uid, nobody.pw_gid)
        before = key.read_bytes()
        args = ["-P", "", "-N", "new", "-f", str(key)]
        argv = _argv(tool, ["-p", *args], ["passwd", *args])
        as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                     "--clear-groups", *argv]  # fmt: skip
        done = _no_terminal(as_nobody, tmp_path)
        if tool == "openssh":
            assert done.returncode == 0, done.stderr
        else:
            assert done.returncode == 1
            line = _error_line(done).decode()
            assert line == (
                f'Saving key "{key}" failed: folder {folder} is not writable (the file is '
                "replaced by a new one written there, never rewritten in place)"
            )
            assert key.read_bytes() == before

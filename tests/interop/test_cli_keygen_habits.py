"""Habits of ssh-keygen that keytool's key file commands keep, each run side by side
with ssh-keygen on the same input: short passphrases, the key type's own name for -t,
the umask on a new .pub, ``-lf -``, ``Comment removed``, a key file's owner kept when
root rewrites it, and a public file of several keys never cut down to one."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cli import assert_clean_error, keytool
from tests.interop.clienthelp import KEYTOOL
from tests.peers import require, run


def ssh_keygen(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return run([require("ssh-keygen"), *args])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("passphrase", ["a", "abcd"])
def test_a_short_passphrase_is_taken_for_openssh_format(tmp_path: Path, passphrase: str) -> None:
    """ssh-keygen 9.2 takes any passphrase for its own format (gen and -p)."""
    theirs = ssh_keygen("-q", "-t", "ed25519", "-N", passphrase, "-f", tmp_path / "theirs")
    assert theirs.returncode == 0, theirs.stderr
    made = keytool("gen", "-q", "-N", passphrase, "-f", tmp_path / "ours")
    assert made.returncode == 0, made.stderr
    loaded = ssh_keygen("-y", "-P", passphrase, "-f", tmp_path / "ours")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split()[:2] == (tmp_path / "ours.pub").read_text().split()[:2]
    changed = keytool("passwd", "-P", passphrase, "-N", "xy", "-f", tmp_path / "ours")
    assert changed.returncode == 0, changed.stderr
    assert ssh_keygen("-y", "-P", "xy", "-f", tmp_path / "ours").returncode == 0


def test_a_short_passphrase_is_refused_for_pem_as_by_ssh_keygen(tmp_path: Path) -> None:
    theirs = ssh_keygen("-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "abcd", "-f",
                        tmp_path / "theirs")  # fmt: skip
    assert theirs.returncode != 0 and "too short" in theirs.stderr
    ours = keytool("gen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "abcd", "-f",
                   tmp_path / "ours")  # fmt: skip
    assert "too short" in assert_clean_error(ours)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "bits"),
    [
        ("ssh-ed25519", None),
        ("ssh-rsa", None),
        ("rsa-sha2-512", "2048"),
        ("ecdsa-sha2-nistp384", None),
        ("ecdsa-sha2-nistp521", None),
        ("ecdsa-sha2-nistp384", "256"),
    ],
)
def test_the_key_type_by_its_ssh_name(tmp_path: Path, name: str, bits: str | None) -> None:
    """-t ssh-ed25519, ecdsa-sha2-nistp384...: the same kind and size of key as
    ssh-keygen makes (an ECDSA name picks its curve unless -b says otherwise)."""
    size = ["-b", bits] if bits else []
    theirs = ssh_keygen("-q", "-t", name, *size, "-N", "", "-f", tmp_path / "theirs")
    assert theirs.returncode == 0, theirs.stderr
    ours = keytool("gen", "-q", "-t", name, *size, "-N", "", "-f", tmp_path / "ours")
    assert ours.returncode == 0, ours.stderr

    def kind(path: Path) -> tuple[str, str]:
        listed = ssh_keygen("-l", "-f", path)
        assert listed.returncode == 0, listed.stderr
        words = listed.stdout.split()
        return words[0], words[-1]

    assert kind(tmp_path / "ours") == kind(tmp_path / "theirs")


def test_a_key_type_name_in_other_case_is_refused_as_by_ssh_keygen(tmp_path: Path) -> None:
    theirs = ssh_keygen("-q", "-t", "SSH-ED25519", "-N", "", "-f", tmp_path / "theirs")
    assert theirs.returncode != 0
    ours = keytool("gen", "-q", "-t", "SSH-ED25519", "-N", "", "-f", tmp_path / "ours")
    assert "unknown key type" in assert_clean_error(ours)
    assert not (tmp_path / "ours").exists()


@pytest.mark.parametrize("umask", [0o077, 0o027, 0o022])
def test_the_new_pub_file_follows_the_umask(tmp_path: Path, umask: int) -> None:
    def made(args: list[str]) -> None:
        done = subprocess.run(args, capture_output=True, text=True, timeout=60,
                              preexec_fn=lambda: os.umask(umask))  # fmt: skip
        assert done.returncode == 0, done.stderr

    made([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "t")])
    made([*KEYTOOL, "gen", "-q", "-N", "", "-f", str(tmp_path / "o")])
    assert mode(tmp_path / "o.pub") == mode(tmp_path / "t.pub") == 0o644 & ~umask
    assert mode(tmp_path / "o") == mode(tmp_path / "t") == 0o600


def test_fingerprint_reads_key_lines_from_stdin(tmp_path: Path) -> None:
    """ssh-keyscan HOST | ssh-keygen -lf -: several lines, a comment line, another's key."""
    for name, kind in (("a", "ed25519"), ("b", "ecdsa")):
        ssh_keygen("-q", "-t", kind, "-N", "", "-C", f"{name}@x", "-f", tmp_path / name)
    text = "# scanned\n" + "".join(f"[h]:22 {(tmp_path / f'{n}.pub').read_text()}" for n in "ab")
    theirs = run([require("ssh-keygen"), "-l", "-f", "-"], input=text)
    assert theirs.returncode == 0, theirs.stderr
    ours = keytool("fingerprint", "-f", "-", input=text)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout and len(ours.stdout.splitlines()) == 2
    for bad in ("junk\n", ""):
        theirs = run([require("ssh-keygen"), "-l", "-f", "-"], input=bad)
        assert theirs.returncode != 0
        assert "(stdin) is not a public key file" in theirs.stderr
        line = assert_clean_error(keytool("fingerprint", "-f", "-", input=bad))
        assert line == "keytool: (stdin) is not a public key file"


def test_an_empty_comment_is_comment_removed(tmp_path: Path) -> None:
    ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", "hello", "-f", tmp_path / "t")
    (tmp_path / "o").write_bytes((tmp_path / "t").read_bytes())
    (tmp_path / "o").chmod(0o600)
    theirs = ssh_keygen("-c", "-C", "", "-f", tmp_path / "t")
    ours = keytool("comment", "-C", "", "-f", tmp_path / "o")
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout == "Old comment: hello\nComment removed\n"


def test_passwd_of_a_pem_key_prints_no_comment_as_ssh_keygen(tmp_path: Path) -> None:
    """A PEM key holds no comment (and no .pub is there to give one): no line for it."""
    ssh_keygen("-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", tmp_path / "t")
    (tmp_path / "t.pub").unlink()
    (tmp_path / "o").write_bytes((tmp_path / "t").read_bytes())
    (tmp_path / "o").chmod(0o600)
    theirs = ssh_keygen("-p", "-P", "", "-N", "secret1", "-f", tmp_path / "t")
    ours = keytool("passwd", "-P", "", "-N", "secret1", "-f", tmp_path / "o")
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to own files as another user")
@pytest.mark.parametrize("command", ["passwd", "comment"])
def test_root_rewriting_a_users_key_leaves_it_the_users(tmp_path: Path, command: str) -> None:
    """sudo ssh-keygen -p (or -c) -f ~bob/.ssh/id_ed25519: the files stay bob's. keytool
    used to leave them root's, a key bob could no longer read."""
    nobody = 65534
    for name in ("t", "o"):
        ssh_keygen("-q", "-t", "ed25519", "-N", "old pass", "-C", "bob", "-f", tmp_path / name)
        for path in (tmp_path / name, tmp_path / f"{name}.pub"):
            os.chown(path, nobody, nobody)
        (tmp_path / name).chmod(0o400)
    if command == "passwd":
        args = ["-P", "old pass", "-N", "new pass"]
        theirs = ssh_keygen("-p", *args, "-f", tmp_path / "t")
    else:
        args = ["-P", "old pass", "-C", "robert"]
        theirs = ssh_keygen("-c", *args, "-f", tmp_path / "t")
    assert theirs.returncode == 0, theirs.stderr
    ours = keytool(command, *args, "-f", tmp_path / "o")
    assert ours.returncode == 0, ours.stderr
    for name in ("", ".pub"):
        mine, their = (os.stat(tmp_path / f"{n}{name}") for n in "ot")
        assert (mine.st_uid, mine.st_gid) == (their.st_uid, their.st_gid) == (nobody, nobody)
        assert stat.S_IMODE(mine.st_mode) == stat.S_IMODE(their.st_mode)


def test_comment_never_cuts_a_file_of_several_keys(tmp_path: Path) -> None:
    """keytool comment on a .pub alone is keytool's own; on a file of several keys (an
    authorized_keys) it kept the first key and dropped the rest. Refused now, file
    unchanged, as ssh-keygen -c refuses it."""
    for name in ("a", "b"):
        ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", name, "-f", tmp_path / name)
    text = b"# mine\n" + (tmp_path / "a.pub").read_bytes() + (tmp_path / "b.pub").read_bytes()
    for name in ("theirs", "ours"):
        (tmp_path / name).write_bytes(text)
        (tmp_path / name).chmod(0o600)
    theirs = ssh_keygen("-c", "-C", "new", "-f", tmp_path / "theirs")
    assert theirs.returncode != 0
    ours = keytool("comment", "-C", "new", "-f", tmp_path / "ours")
    assert "not one key" in assert_clean_error(ours)
    assert (tmp_path / "ours").read_bytes() == (tmp_path / "theirs").read_bytes() == text


@pytest.mark.parametrize(
    ("fmt", "end"), [("PKCS8", "ENCRYPTED PRIVATE KEY"), ("PEM", "RSA PRIVATE KEY")]
)
def test_a_cut_encrypted_pem_key_is_not_a_wrong_passphrase(
    tmp_path: Path, fmt: str, end: str
) -> None:
    """The right passphrase on a key file cut short: ssh-keygen refuses the file, and
    keytool says it is damaged (it blamed the passphrase)."""
    key = tmp_path / "key"
    ssh_keygen("-q", "-t", "rsa", "-b", "2048", "-m", fmt, "-N", "secret1", "-f", key)
    cut = tmp_path / "cut"
    cut.write_bytes(key.read_bytes()[:900] + f"\n-----END {end}-----\n".encode())
    cut.chmod(0o600)
    theirs = ssh_keygen("-y", "-P", "secret1", "-f", cut)
    assert theirs.returncode != 0 and "passphrase" not in theirs.stderr
    line = assert_clean_error(keytool("pub", "-P", "secret1", "-f", cut))
    assert "cut short or damaged" in line and "passphrase" not in line
    whole = keytool("pub", "-P", "secret1", "-f", key)
    assert (
        whole.returncode == 0
        and whole.stdout.split()[:2] == (Path(f"{key}.pub").read_text().split()[:2])
    )


def test_import_names_a_file_it_cannot_read(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("junk\n")
    theirs = ssh_keygen("-i", "-f", junk)
    assert theirs.returncode != 0
    assert assert_clean_error(keytool("import", "-f", junk)).startswith(f"keytool: {junk}: ")


def test_a_comment_that_is_not_utf8_is_written_as_given(tmp_path: Path) -> None:
    """gen -C with bytes that are not UTF-8 (a Latin-1 terminal): ssh-keygen writes them
    as they are; keytool refused them."""
    comment = os.fsdecode(b"caf\xe9")
    theirs = ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", tmp_path / "t")
    assert theirs.returncode == 0, theirs.stderr
    ours = keytool("gen", "-q", "-N", "", "-C", comment, "-f", tmp_path / "o")
    assert ours.returncode == 0, ours.stderr
    assert (tmp_path / "o.pub").read_bytes().split(b" ")[2] == b"caf\xe9\n"
    assert (tmp_path / "t.pub").read_bytes().split(b" ")[2] == b"caf\xe9\n"
    # and ssh-keygen reads the same comment from the private key file itself
    for name in ("o", "t"):
        (tmp_path / f"{name}.pub").unlink()
    shown = [ssh_keygen("-l", "-f", tmp_path / n).stdout.split()[2] for n in ("o", "t")]
    assert shown[0] == shown[1] == "caf\\351"

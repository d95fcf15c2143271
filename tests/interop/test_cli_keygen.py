"""keytool gen / fingerprint / pub / passwd / comment against the real ssh-keygen."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import assert_clean_error, keytool
from tests.interop.clienthelp import KEYTOOL
from tests.peers import require, run

CASES = [
    ("ed25519", None),
    ("rsa", 2048),
    ("rsa", 3072),
    ("rsa", 4096),
    ("ecdsa", 256),
    ("ecdsa", 384),
    ("ecdsa", 521),
]
PASSPHRASE = "correct horse"


def ssh_keygen(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return run([require("ssh-keygen"), *args])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("passphrase", ["", PASSPHRASE], ids=["plain", "encrypted"])
@pytest.mark.parametrize(("key_type", "bits"), CASES, ids=[f"{t}-{b}" for t, b in CASES])
def test_our_keys_through_ssh_keygen(
    tmp_path: Path, key_type: str, bits: int | None, passphrase: str
) -> None:
    key = tmp_path / "id_test"
    args = ["gen", "-t", key_type, "-f", key, "-N", passphrase, "-C", "tester@example"]
    if bits:
        args += ["-b", str(bits)]
    made = keytool(*args)
    assert made.returncode == 0, made.stderr
    assert mode(key) == 0o600
    assert mode(Path(f"{key}.pub")) == 0o644
    our_pub = Path(f"{key}.pub").read_text()

    # ssh-keygen derives the same public key (and comment) from our private key file
    derived = ssh_keygen("-y", "-P", passphrase, "-f", key)
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout == our_pub

    # the fingerprint and randomart gen printed are ssh-keygen's
    theirs = ssh_keygen("-lv", "-f", key)
    assert theirs.returncode == 0, theirs.stderr
    fp_line, *art = theirs.stdout.splitlines()
    fingerprint = fp_line.split()[1]
    assert f"{fingerprint} tester@example" in made.stdout
    assert "\n".join(art) in made.stdout

    for hash_name in ("sha256", "md5", "sha1", "SHA384", "sha512"):
        ours = keytool("fingerprint", "-v", "-E", hash_name, "-f", key)
        assert ours.returncode == 0, ours.stderr
        assert ours.stdout == ssh_keygen("-lv", "-E", hash_name, "-f", key).stdout


THEIR_CASES = [
    (key_type, bits, fmt)
    for key_type, bits in CASES
    if bits != 4096
    for fmt in ("default", "PEM", "PKCS8")
    if not (key_type == "ed25519" and fmt != "default")  # ssh-keygen: ed25519 only its own
]


@pytest.mark.parametrize("passphrase", ["", PASSPHRASE], ids=["plain", "encrypted"])
@pytest.mark.parametrize(("key_type", "bits", "fmt"), THEIR_CASES)
def test_ssh_keygen_keys_through_ours(
    tmp_path: Path, key_type: str, bits: int | None, passphrase: str, fmt: str
) -> None:
    key = tmp_path / "theirs"
    args: list[str | Path] = ["-q", "-t", key_type, "-N", passphrase, "-C", "them@x", "-f", key]
    if bits:
        args += ["-b", str(bits)]
    if fmt != "default":
        args += ["-m", fmt]
    assert ssh_keygen(*args).returncode == 0
    their_pub = Path(f"{key}.pub").read_text().split()

    ours = keytool("pub", "-f", key, "-P", passphrase)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.split()[:2] == their_pub[:2]

    assert keytool("fingerprint", "-f", key).stdout == ssh_keygen("-l", "-f", key).stdout
    Path(f"{key}.pub").unlink()  # now the fingerprint comes from the private file itself
    assert keytool("fingerprint", "-f", key).stdout == ssh_keygen("-l", "-f", key).stdout


def test_fingerprint_of_authorized_keys_and_known_hosts(tmp_path: Path) -> None:
    keys = []
    for name, key_type in (("a", "ed25519"), ("b", "ecdsa"), ("c", "rsa")):
        path = tmp_path / name
        assert (
            ssh_keygen("-q", "-t", key_type, "-N", "", "-C", f"{name}@x", "-f", path).returncode
            == 0
        )
        keys.append(Path(f"{path}.pub").read_text().split())
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(
        "# a comment line\n"
        f'from="10.0.0.0/8",no-pty,command="echo \\"hi there\\"" {" ".join(keys[0])}\n'
        f"{keys[1][0]} {keys[1][1]}\n"
        f"no-agent-forwarding {keys[2][0]} {keys[2][1]}\n"
        f"{keys[1][0]} {keys[1][1]}\n"
    )
    known = tmp_path / "known_hosts"
    known.write_text(
        f"host1,10.1.1.1 {keys[0][0]} {keys[0][1]}\n"
        f"[host2]:2222 {keys[1][0]} {keys[1][1]} note\n"
        f"@revoked * {keys[2][0]} {keys[2][1]}\n"
    )
    hashed = tmp_path / "hashed_hosts"
    hashed.write_text(known.read_text())
    assert ssh_keygen("-H", "-f", hashed).returncode == 0
    for path in (authorized, known, hashed):
        for flags in (["-l"], ["-l", "-E", "md5"], ["-lv"]):
            theirs = ssh_keygen(*flags, "-f", path)
            ours = keytool(
                "fingerprint", *flags[1:], *(["-v"] if "-lv" in flags else []), "-f", path
            )
            assert ours.returncode == 0, ours.stderr
            assert ours.stdout == theirs.stdout, path.name


def test_gen_default_path_creates_ssh_dir_0700(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # the file asked for, as ssh-keygen asks: an empty answer takes the default
    result = keytool("gen", "-t", "ecdsa", "-N", "", env={"HOME": str(home)}, input="\n")
    assert result.returncode == 0, result.stderr
    assert mode(home / ".ssh") == 0o700
    assert mode(home / ".ssh" / "id_ecdsa") == 0o600
    # ssh-keygen derives exactly our .pub, comment included: user@host, as its own
    import getpass
    import socket

    derived = ssh_keygen("-y", "-f", home / ".ssh" / "id_ecdsa")
    assert derived.stdout == (home / ".ssh" / "id_ecdsa.pub").read_text()
    assert derived.stdout.split()[2] == f"{getpass.getuser()}@{socket.gethostname()}"


def test_gen_never_overwrites_without_force(tmp_path: Path) -> None:
    key = tmp_path / "k"
    assert keytool("gen", "-f", key, "-N", "").returncode == 0
    before = key.read_bytes(), Path(f"{key}.pub").read_bytes()
    line = assert_clean_error(keytool("gen", "-f", key, "-N", ""))
    assert "already exists" in line
    assert (key.read_bytes(), Path(f"{key}.pub").read_bytes()) == before
    assert keytool("gen", "-f", key, "-N", "", "--force").returncode == 0
    assert key.read_bytes() != before[0]
    assert ssh_keygen("-y", "-f", key).stdout == Path(f"{key}.pub").read_text()


def test_gen_without_passphrase_and_terminal_refuses(tmp_path: Path) -> None:
    key = tmp_path / "k"
    line = assert_clean_error(keytool("gen", "-f", key))
    assert "-N" in line
    assert not key.exists()


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["-t", "rsa", "-b", "768"], "minimum is 1024"),
        (["-t", "ecdsa", "-b", "300"], "256, 384 or 521"),
        (["-t", "dsa"], "DSA"),
        (["-t", "foo"], "unknown key type"),
    ],
)
def test_gen_refuses_bad_types_and_sizes(tmp_path: Path, args: list[str], expect: str) -> None:
    key = tmp_path / "k"
    assert expect in assert_clean_error(keytool("gen", *args, "-f", key, "-N", ""))
    assert not key.exists()


def test_gen_warns_below_2048(tmp_path: Path) -> None:
    key = tmp_path / "k"
    result = keytool("gen", "-t", "rsa", "-b", "1024", "-f", key, "-N", "")
    assert result.returncode == 0
    assert "weak" in result.stderr
    assert ssh_keygen("-l", "-f", key).stdout.startswith("1024 ")


def test_gen_rounds_recorded_in_key(tmp_path: Path) -> None:
    key = tmp_path / "k"
    assert keytool("gen", "-f", key, "-N", PASSPHRASE, "-a", "3").returncode == 0
    from keytool.keys import openssh

    assert openssh.parse(key.read_bytes()).rounds == 3
    assert ssh_keygen("-y", "-P", PASSPHRASE, "-f", key).returncode == 0
    assert keytool("gen", "-f", tmp_path / "d", "-N", PASSPHRASE).returncode == 0
    assert openssh.parse((tmp_path / "d").read_bytes()).rounds == 24


def test_passwd_and_comment(tmp_path: Path) -> None:
    key = tmp_path / "k"
    assert (
        ssh_keygen("-q", "-t", "ed25519", "-N", PASSPHRASE, "-C", "old", "-f", key).returncode == 0
    )
    original = key.read_bytes()
    # the key itself must survive every rewrite below: only its wrapping changes
    public = ssh_keygen("-y", "-P", PASSPHRASE, "-f", key).stdout.split()[:2]
    line = assert_clean_error(keytool("passwd", "-f", key, "-P", "wrong one", "-N", "new secret"))
    assert "incorrect passphrase" in line
    assert key.read_bytes() == original
    assert keytool("passwd", "-f", key, "-P", PASSPHRASE, "-N", "new secret").returncode == 0
    assert ssh_keygen("-y", "-P", PASSPHRASE, "-f", key).returncode != 0
    assert ssh_keygen("-y", "-P", "new secret", "-f", key).stdout.split() == [*public, "old"]
    assert mode(key) == 0o600

    result = keytool("comment", "-f", key, "-P", "new secret", "-C", "brand new")
    assert result.returncode == 0, result.stderr
    assert ssh_keygen("-l", "-f", key).stdout.split()[2:4] == ["brand", "new"]
    Path(f"{key}.pub").unlink()
    listed = ssh_keygen("-y", "-P", "new secret", "-f", key).stdout
    assert listed.split() == [*public, "brand", "new"]

    assert keytool("passwd", "-f", key, "-P", "new secret", "-N", "").returncode == 0
    assert ssh_keygen("-y", "-P", "", "-f", key).stdout.split() == [*public, "brand", "new"]


#: private key modes OpenSSH refuses (any bit for group or others) and takes
TOO_OPEN = [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o610, 0o601]
PRIVATE_ENOUGH = [0o400, 0o600, 0o700]


@pytest.mark.parametrize("key_mode", TOO_OPEN + PRIVATE_ENOUGH, ids=lambda m: f"{m:04o}")
def test_pub_matches_ssh_keygen_and_checks_permissions(tmp_path: Path, key_mode: int) -> None:
    key = tmp_path / "k"
    assert ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", "me", "-f", key).returncode == 0
    assert keytool("pub", "-f", key).stdout == ssh_keygen("-y", "-f", key).stdout
    key.chmod(key_mode)
    theirs = ssh_keygen("-y", "-f", key)
    ours = keytool("pub", "-f", key)
    if key_mode in TOO_OPEN:
        # OpenSSH refuses it: a bit for group or others is enough
        assert theirs.returncode != 0 and theirs.stdout == ""
        assert f"Permissions {key_mode:04o} for '{key}' are too open." in theirs.stderr
        line = assert_clean_error(ours)
        assert f"permissions {key_mode:04o} for '{key}' are too open" in line
        assert f"chmod 600 '{key}'" in line
        assert ours.stdout == ""
    else:
        assert theirs.returncode == 0, theirs.stderr
        assert (ours.returncode, ours.stdout) == (0, theirs.stdout), ours.stderr
        assert ours.stderr == ""


def test_crlf_and_missing_final_newline_load(tmp_path: Path) -> None:
    key = tmp_path / "k"
    assert (
        ssh_keygen("-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", key, "-m", "PEM").returncode
        == 0
    )
    expected = ssh_keygen("-y", "-f", key).stdout.split()[:2]
    for variant in (key.read_bytes().replace(b"\n", b"\r\n"), key.read_bytes().rstrip(b"\n")):
        key.write_bytes(variant)
        result = keytool("pub", "-f", key)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[:2] == expected


@pytest.mark.parametrize(
    "damage",
    [
        "truncated",
        "garbage",
        "empty",
        "flipped",
        "missing",
        "directory",
        "dsa",
        "fifo",
        "device",
        "huge",
    ],
)
def test_bad_files_give_one_clear_line(tmp_path: Path, damage: str) -> None:
    key = tmp_path / "k"
    assert ssh_keygen("-q", "-t", "ed25519", "-N", "", "-f", key).returncode == 0
    data = key.read_bytes()
    if damage == "truncated":
        key.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        key.write_bytes(os.urandom(300))
    elif damage == "empty":
        key.write_bytes(b"")
    elif damage == "flipped":
        lines = data.splitlines()
        lines[3] = bytes(reversed(lines[3]))
        key.write_bytes(b"\n".join(lines) + b"\n")
    elif damage == "missing":
        key.unlink()
    elif damage == "directory":
        key.unlink()
        key.mkdir()
    elif damage == "fifo":  # no writer: reading it would wait forever
        key.unlink()
        os.mkfifo(key, 0o600)
    elif damage == "device":  # endless zeros
        key.unlink()
        key.symlink_to("/dev/zero")
    elif damage == "huge":  # sparse: eight GiB that must not all be read
        with key.open("r+b") as file:
            file.truncate(8 << 30)
    elif damage == "dsa":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import dsa

        pem = dsa.generate_private_key(2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        key.write_bytes(pem)
    Path(f"{key}.pub").unlink()
    commands: list[list[str | Path]] = [["pub", "-f", key], ["passwd", "-f", key, "-N", ""]]
    # the public half is intact when flipped: -l still works, as ssh-keygen's; a FIFO is
    # read by -l as ssh-keygen reads one (-f <(...)), waiting for its writer
    if damage not in ("flipped", "fifo"):
        commands.append(["fingerprint", "-f", key])
    if damage in ("fifo", "device"):
        commands.append(["comment", "-f", key, "-C", "x"])
    for command in commands:
        line = assert_clean_error(keytool(*command, timeout=60))
        assert line.startswith("keytool: ")
        if damage == "dsa":
            assert "DSA" in line
        if damage in ("fifo", "device"):
            assert "not a regular file" in line
        if damage == "huge":
            assert "too large" in line


def test_help_does_not_import_cryptography_and_module_entry_works() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "keytool", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "gen" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert not any(name.startswith("cryptography") for name in imported)


def test_pub_file_bytes_as_ssh_keygen_writes_them(tmp_path: Path) -> None:
    for comment in ("", "two words"):
        ours, theirs = tmp_path / f"ours{len(comment)}", tmp_path / f"theirs{len(comment)}"
        assert keytool("gen", "-f", ours, "-N", "", "-C", comment).returncode == 0
        made = ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", theirs)
        assert made.returncode == 0
        # same layout byte for byte, apart from the key itself
        our_fields = Path(f"{ours}.pub").read_bytes().split(b" ", 2)
        their_fields = Path(f"{theirs}.pub").read_bytes().split(b" ", 2)
        assert our_fields[0] == their_fields[0]
        assert our_fields[2:] == their_fields[2:]


def test_non_utf8_passphrases_are_the_bytes_ssh_keygen_uses(tmp_path: Path) -> None:
    """Arguments are bytes; a passphrase that is not UTF-8 works as with ssh-keygen."""
    first, second = os.fsdecode(b"\xff\xfe-secret"), os.fsdecode(b"caf\xe9-latin1")
    key = tmp_path / "k"
    assert ssh_keygen("-q", "-t", "ed25519", "-N", first, "-C", "me", "-f", key).returncode == 0
    expected = ssh_keygen("-y", "-P", first, "-f", key).stdout
    assert expected.startswith("ssh-ed25519 ")
    ours = keytool("pub", "-f", key, "-P", first)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == expected
    changed = keytool("passwd", "-f", key, "-P", first, "-N", second)
    assert changed.returncode == 0, changed.stderr
    assert ssh_keygen("-y", "-P", first, "-f", key).returncode != 0
    assert ssh_keygen("-y", "-P", second, "-f", key).stdout == expected
    ours_key = tmp_path / "ours"
    assert keytool("gen", "-f", ours_key, "-N", first, "-C", "me").returncode == 0
    derived = ssh_keygen("-y", "-P", first, "-f", ours_key)
    assert derived.stdout == Path(f"{ours_key}.pub").read_text()


@pytest.mark.parametrize(
    ("comment", "expect"),
    [("two\nlines", "one line"), ("carriage\rreturn", "one line")],
)
def test_comments_that_would_break_a_pub_line_are_refused(
    tmp_path: Path, comment: str, expect: str
) -> None:
    key = tmp_path / "k"
    assert expect in assert_clean_error(keytool("gen", "-f", key, "-N", "", "-C", comment))
    assert not key.exists() and not Path(f"{key}.pub").exists()
    assert ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", "kept", "-f", key).returncode == 0
    before = key.read_bytes(), Path(f"{key}.pub").read_bytes()
    for target in (key, Path(f"{key}.pub")):
        line = assert_clean_error(keytool("comment", "-f", target, "-C", comment))
        assert expect in line
    assert (key.read_bytes(), Path(f"{key}.pub").read_bytes()) == before


def test_gen_refuses_an_empty_file_name(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    line = assert_clean_error(keytool("gen", "-f", "", "-N", "", env={"HOME": str(home)}))
    assert "-f" in line
    assert not (home / ".ssh").exists()


@pytest.mark.parametrize("answer", ["y", "n", ""])
def test_overwrite_question_as_ssh_keygen_asks_it(tmp_path: Path, answer: str) -> None:
    """An existing file: ssh-keygen's question on stdout, its answer a line of stdin."""
    seen = {}
    for tool in ("ssh-keygen", "keytool"):
        key = tmp_path / tool / "k"
        key.parent.mkdir()
        ssh_keygen("-q", "-t", "ed25519", "-N", "", "-f", key)
        before = key.read_bytes()
        program = [require("ssh-keygen")] if tool == "ssh-keygen" else [*KEYTOOL, "gen"]
        done = subprocess.run(
            [*program, "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
            input=f"{answer}\n" if answer else "", capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        replaced = key.read_bytes() != before
        question = done.stdout.replace(str(key), "FILE")
        seen[tool] = (done.returncode, replaced, question.split("? ")[0] + "? ")
        if replaced:  # a whole new pair, its .pub matching
            assert (
                ssh_keygen("-y", "-f", key).stdout.split()[:2]
                == Path(f"{key}.pub").read_text().split()[:2]
            )
    assert seen["keytool"] == seen["ssh-keygen"]
    assert seen["ssh-keygen"][:2] == ((0, True) if answer == "y" else (1, False))
    assert seen["ssh-keygen"][2] == "FILE already exists.\nOverwrite (y/n)? "


def test_a_lone_pub_file_is_asked_about_by_its_own_name(tmp_path: Path) -> None:
    """Only FILE.pub exists (somebody's key kept there): keytool asks about FILE.pub,
    not about FILE (ssh-keygen replaces it without a word); "n" keeps it byte for byte,
    "y" writes a pair that ssh-keygen reads as one."""
    key = tmp_path / "k"
    pub = Path(f"{key}.pub")
    pub.write_text("ssh-ed25519 AAAA kept\n")
    refused = subprocess.run(
        [*KEYTOOL, "gen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        input="n\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1  # as ssh-keygen's "n" to its own question
    assert refused.stdout == f"{pub} already exists.\nOverwrite (y/n)? "
    assert refused.stderr.strip() == f"keytool: {pub} already exists; not overwriting (use --force)"
    assert pub.read_text() == "ssh-ed25519 AAAA kept\n" and not key.exists()
    agreed = subprocess.run(
        [*KEYTOOL, "gen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        input="y\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert agreed.returncode == 0, agreed.stderr
    assert ssh_keygen("-y", "-f", key).stdout.split()[:2] == pub.read_text().split()[:2]


@pytest.mark.parametrize(
    ("kind", "fmt", "secret"),
    [("rsa", "PEM", ""), ("ecdsa", "PKCS8", "secret1"), ("rsa", "PKCS8", "")],
)
def test_comment_on_a_pem_or_pkcs8_key_as_ssh_keygen(
    tmp_path: Path, kind: str, fmt: str, secret: str
) -> None:
    """ssh-keygen -c saves such a key in OpenSSH's format with the comment (the same
    passphrase) and writes FILE.pub to match; keytool comment does the same."""
    original = tmp_path / "original"
    ssh_keygen("-q", "-t", kind, "-m", fmt, "-N", secret, "-C", "old", "-f", original)
    done = {}
    for tool in ("ssh-keygen", "keytool"):
        key = tmp_path / tool
        key.write_bytes(original.read_bytes())
        key.chmod(0o600)
        Path(f"{key}.pub").write_bytes(Path(f"{original}.pub").read_bytes())
        flags = ["-C", "new comment", "-P", secret, "-f", str(key)]
        result = ssh_keygen("-c", *flags) if tool == "ssh-keygen" else keytool("comment", *flags)
        assert result.returncode == 0, result.stderr
        private = key.read_bytes()
        assert private.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
        # ssh-keygen reads it back with the same passphrase, and the comment is there
        derived = ssh_keygen("-y", "-P", secret, "-f", key)
        assert derived.returncode == 0, derived.stderr
        done[tool] = (
            result.stdout,
            derived.stdout,
            Path(f"{key}.pub").read_text(),
            ssh_keygen("-l", "-f", key).stdout.replace(str(key), "KEY"),
            mode(key),
        )
    assert done["keytool"] == done["ssh-keygen"]
    assert done["ssh-keygen"][1].endswith(" new comment\n")


@pytest.mark.parametrize("command", ["passwd", "comment"])
def test_a_linked_key_is_rewritten_through_its_link(tmp_path: Path, command: str) -> None:
    """Key files reached by symbolic links (dotfiles kept elsewhere): the file linked
    to gets the change and the links stay links, as with ssh-keygen -p and -c."""
    outcome = {}
    for tool in ("ssh-keygen", "keytool"):
        real = tmp_path / tool / "real"
        real.mkdir(parents=True)
        ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", "was", "-f", real / "k")
        link = tmp_path / tool / "k"
        link.symlink_to(real / "k")
        Path(f"{link}.pub").symlink_to(real / "k.pub")
        if command == "passwd":
            flags = ["-P", "", "-N", "secret99", "-f", str(link)]
            program = ["-p"] if tool == "ssh-keygen" else ["passwd"]
        else:
            flags = ["-C", "now", "-f", str(link)]
            program = ["-c"] if tool == "ssh-keygen" else ["comment"]
        result = ssh_keygen(*program, *flags) if tool == "ssh-keygen" else keytool(*program, *flags)
        assert result.returncode == 0, result.stderr
        assert link.is_symlink() and Path(f"{link}.pub").is_symlink()
        secret = "secret99" if command == "passwd" else ""
        refused = ssh_keygen("-y", "-P", "", "-f", real / "k").returncode != 0
        derived = ssh_keygen("-y", "-P", secret, "-f", real / "k")
        assert derived.returncode == 0, derived.stderr
        outcome[tool] = (
            refused,
            derived.stdout.split()[2:],
            (real / "k.pub").read_text().split()[2:],
            mode(real / "k"),
            sorted(p.name for p in real.iterdir()),
        )
    assert outcome["keytool"] == outcome["ssh-keygen"]
    assert outcome["ssh-keygen"][0] == (command == "passwd")


def test_fingerprint_of_a_key_beside_a_broken_pub(tmp_path: Path) -> None:
    """FILE.pub holds garbage (or is a folder): ssh-keygen -l and -e pass it over and
    read the key file itself; so does keytool."""
    for broken in ("garbage", "folder"):
        key = tmp_path / broken / "k"
        key.parent.mkdir()
        ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", "mine", "-f", key)
        pub = Path(f"{key}.pub")
        pub.unlink()
        if broken == "garbage":
            pub.write_text("garbage\n")
        else:
            pub.mkdir()
        for ours, theirs in ((["fingerprint"], ["-l"]), (["export"], ["-e"])):
            expected = ssh_keygen(*theirs, "-f", key)
            got = keytool(*ours, "-f", key)
            assert expected.returncode == 0, expected.stderr
            assert (got.returncode, got.stdout) == (0, expected.stdout), got.stderr


NOT_UTF8 = b"caf\xe9 \x01x"  # Latin-1 and a control byte: any bytes may be a comment


def _not_utf8_pair(folder: Path) -> Path:
    """A key pair ssh-keygen made with a comment that is not UTF-8."""
    key = folder / "latin"
    made = subprocess.run(
        [require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key), "-C", NOT_UTF8],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return key


def _bytes_of(*args: str | os.PathLike[str], program: str = "keytool") -> tuple[int, bytes]:
    argv = [*KEYTOOL, *map(str, args)] if program == "keytool" else [require(program), *args]
    done = subprocess.run(argv, capture_output=True, timeout=60)
    return done.returncode, done.stdout


@pytest.mark.parametrize("locale_name", ["C.UTF-8", "C"])
def test_comments_that_are_not_utf8_as_ssh_keygen(tmp_path: Path, locale_name: str) -> None:
    """The comment's bytes survive passwd and comment-less rewrites, are printed raw by
    -y and escaped by -l (its mprintf) in either locale, and export takes the file."""
    key = _not_utf8_pair(tmp_path)
    env_locale = {"LC_ALL": locale_name, "LANG": locale_name}
    old = os.environ.copy()
    os.environ.update(env_locale)
    try:
        for ours, theirs, path in (
            (["fingerprint", "-f"], ["-l", "-f"], key),
            (["fingerprint", "-f"], ["-l", "-f"], Path(f"{key}.pub")),
            (["pub", "-f"], ["-y", "-f"], key),
            (["export", "-f"], ["-e", "-f"], Path(f"{key}.pub")),
        ):
            mine = _bytes_of(*ours, path)
            assert mine == _bytes_of(*theirs, path, program="ssh-keygen"), (ours, mine)
            assert mine[0] == 0
    finally:
        os.environ.clear()
        os.environ.update(old)
    # passwd keeps the comment byte for byte inside the encrypted key
    assert _bytes_of("passwd", "-f", key, "-P", "", "-N", "secret77")[0] == 0
    derived = _bytes_of("-y", "-P", "secret77", "-f", key, program="ssh-keygen")
    assert derived[0] == 0 and derived[1].endswith(b" " + NOT_UTF8 + b"\n")


def test_known_hosts_edits_keep_lines_that_are_not_utf8(tmp_path: Path) -> None:
    """A known_hosts line with a comment or host name that is not UTF-8: ssh-keygen -R
    and -H rewrite the file and keep it; keytool too, to the same bytes."""
    key = _not_utf8_pair(tmp_path)
    blob = " ".join(Path(f"{key}.pub").read_bytes().split(b" ")[:2][i].decode() for i in (0, 1))
    text = (
        f"host1 {blob} ".encode() + NOT_UTF8 + b"\n"
        + b"[h\xe9st]:2222 " + blob.encode() + b"\n"
        + f"host2 {blob}\n".encode()
    )  # fmt: skip
    for flags in (["-R", "host2"], ["-H"], ["-R", "[h\xe9st]:2222"]):
        results = {}
        for tool in ("ssh-keygen", "keytool"):
            known = tmp_path / f"{tool}_known"
            known.write_bytes(text)
            argv = list(flags)
            done = (
                subprocess.run([require("ssh-keygen"), *argv, "-f", str(known)],
                               capture_output=True, timeout=60)
                if tool == "ssh-keygen"
                else subprocess.run([*KEYTOOL, "known-hosts", *argv, "-f", str(known)],
                                    capture_output=True, timeout=60)
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            results[tool] = known.read_bytes()
        if flags[0] == "-H":  # salts differ: compare the lines that are not hashed
            results = {t: b"".join(x for x in r.splitlines(True) if b"|1|" not in x)
                       for t, r in results.items()}  # fmt: skip
        assert results["keytool"] == results["ssh-keygen"], flags
        if flags[0] == "-R":
            assert NOT_UTF8 in results["keytool"]


def test_fingerprint_labels_of_keys_without_a_comment(tmp_path: Path) -> None:
    """ssh-keygen -l's label for a key file and its .pub when a comment is missing: the
    .pub's own name for a .pub without one, the key's empty comment, "no comment" when
    nothing can be read."""
    made = {
        "bare_private": ["-N", "", "-C", ""],
        "empty_pub": ["-N", "", "-C", ""],
        "locked": ["-N", "secret", "-C", ""],
        "pub_stripped": ["-N", "", "-C", "inside"],
        "locked_stripped": ["-N", "secret", "-C", "inside"],
    }
    for name, args in made.items():
        ssh_keygen("-q", "-t", "ed25519", *args, "-f", tmp_path / name)
    for name in ("bare_private", "locked"):
        (tmp_path / f"{name}.pub").unlink()
    for name in ("pub_stripped", "locked_stripped"):
        pub = tmp_path / f"{name}.pub"
        pub.write_text(" ".join(pub.read_text().split()[:2]) + "\n")
    for name in made:
        for path in (tmp_path / name, tmp_path / f"{name}.pub"):
            if not path.exists():
                continue
            theirs = ssh_keygen("-l", "-f", path)
            mine = keytool("fingerprint", "-f", str(path))
            assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), path

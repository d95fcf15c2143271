"""keytool gen -A against ssh-keygen -A, and the keys it makes served by the real sshd."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.cli import assert_clean_error, keytool
from tests.peers import Sshd, require, run, ssh_login

TYPES = ("rsa", "ecdsa", "ed25519")


def prefix_with_ssh_dir(path: Path) -> Path:
    (path / "etc/ssh").mkdir(parents=True)
    return path


def ssh_dir(prefix: Path) -> Path:
    return prefix / "etc/ssh"


def listing(prefix: Path) -> dict[str, int]:
    """Every file under PREFIX/etc/ssh and its mode."""
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in ssh_dir(prefix).iterdir()}


def snapshot(prefix: Path) -> dict[str, tuple[bytes, int, int]]:
    """Each file's bytes, inode and mtime: a rewrite with the same bytes shows too."""
    found = {}
    for p in ssh_dir(prefix).iterdir():
        info = p.stat()
        found[p.name] = (p.read_bytes(), info.st_ino, info.st_mtime_ns)
    return found


def ssh_keygen_all(prefix: Path) -> str:
    made = run([require("ssh-keygen"), "-A", "-f", prefix])
    assert made.returncode == 0, made.stderr
    assert made.stderr == ""
    return made.stdout


def as_ours(ssh_keygen_output: str) -> str:
    """ssh-keygen names itself in the line; keytool names itself."""
    return ssh_keygen_output.replace("ssh-keygen: ", "keytool: ")


def test_same_files_modes_types_and_sizes_as_ssh_keygen(tmp_path: Path) -> None:
    ours = prefix_with_ssh_dir(tmp_path / "ours")
    theirs = prefix_with_ssh_dir(tmp_path / "theirs")
    made = keytool("gen", "-A", "-f", ours)
    assert made.returncode == 0, made.stderr
    assert made.stderr == ""
    their_output = ssh_keygen_all(theirs)
    assert made.stdout == as_ours(their_output)
    assert "RSA ECDSA ED25519" in their_output  # the three 9.2 types, nothing else

    assert listing(ours) == listing(theirs)
    assert sorted(listing(ours)) == sorted(
        name for kind in TYPES for name in (f"ssh_host_{kind}_key", f"ssh_host_{kind}_key.pub")
    )
    for kind in TYPES:
        key = ssh_dir(ours) / f"ssh_host_{kind}_key"
        their_key = ssh_dir(theirs) / f"ssh_host_{kind}_key"
        # ssh-keygen reads our private key (no .pub beside the copy, so it must) ...
        alone = tmp_path / f"alone_{kind}"
        alone.write_bytes(key.read_bytes())
        alone.chmod(0o600)
        listed = run([require("ssh-keygen"), "-l", "-f", alone])
        their_listed = run([require("ssh-keygen"), "-l", "-f", their_key])
        assert listed.returncode == 0, listed.stderr
        # ... and finds the size, comment and type ssh-keygen -A gives its own
        bits, _fp, *rest = listed.stdout.split()
        their_bits, _their_fp, *their_rest = their_listed.stdout.split()
        assert (bits, rest) == (their_bits, their_rest)
        # the .pub is the private key's public key, with the same comment
        derived = run([require("ssh-keygen"), "-y", "-f", key])
        assert derived.returncode == 0, derived.stderr
        assert derived.stdout == Path(f"{key}.pub").read_text()
        # no passphrase, as ssh-keygen -A: ssh-keygen -y above asked for none
        assert derived.stdout.split()[2:] == Path(f"{their_key}.pub").read_text().split()[2:]


def test_sshd_serves_the_keys_and_ssh_sees_them(tmp_path: Path) -> None:
    prefix = prefix_with_ssh_dir(tmp_path / "root")
    assert keytool("gen", "-A", "-f", prefix).returncode == 0
    folder = ssh_dir(prefix)
    made = snapshot(prefix)
    # Sshd keeps host keys already in its folder: HostKey lines name the files made above
    server = Sshd(folder)
    assert {name: snapshot(prefix)[name] for name in made} == made
    config = server.config.read_text()
    for kind in TYPES:
        assert f"HostKey {folder / f'ssh_host_{kind}_key'}\n" in config
    checked = run([require("sshd"), "-t", "-f", server.config])
    assert checked.returncode == 0, checked.stderr

    client = tmp_path / "client"
    made_client = run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", client])
    assert made_client.returncode == 0, made_client.stderr
    server.authorized_keys.write_text(Path(f"{client}.pub").read_text())
    with server:
        scanned = run([require("ssh-keyscan"), "-p", str(server.port), "127.0.0.1"])
        assert scanned.returncode == 0, scanned.stderr
        seen = {tuple(line.split()[1:3]) for line in scanned.stdout.splitlines()}
        ours = {
            tuple((folder / f"ssh_host_{kind}_key.pub").read_text().split()[:2]) for kind in TYPES
        }
        assert seen == ours
        for kind in TYPES:
            # ssh trusts only this host key; the server must sign with the private half
            pub = (folder / f"ssh_host_{kind}_key.pub").read_text().split()
            known = tmp_path / f"known_{kind}"
            known.write_text(f"[127.0.0.1]:{server.port} {pub[0]} {pub[1]}\n")
            algorithms = {"rsa": "rsa-sha2-512", "ecdsa": pub[0], "ed25519": pub[0]}[kind]
            login = ssh_login(
                server.port,
                client,
                known,
                "echo",
                "logged-in",
                options=(
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    f"HostKeyAlgorithms={algorithms}",
                ),
            )
            assert login.returncode == 0, login.stderr
            assert login.stdout == "logged-in\n"


def test_rerun_and_partly_filled_folder_as_ssh_keygen(tmp_path: Path) -> None:
    ours = prefix_with_ssh_dir(tmp_path / "ours")
    theirs = prefix_with_ssh_dir(tmp_path / "theirs")
    assert keytool("gen", "-A", "-f", ours).returncode == 0
    ssh_keygen_all(theirs)
    before = snapshot(ours)

    again = keytool("gen", "-A", "-f", ours)
    their_again = ssh_keygen_all(theirs)
    assert their_again == ""  # nothing to make: ssh-keygen -A prints nothing
    assert (again.returncode, again.stdout, again.stderr) == (0, as_ours(their_again), "")
    assert snapshot(ours) == before

    # ECDSA gone, the Ed25519 key empty (ssh-keygen -A remakes an empty key), the RSA
    # key replaced by one ssh-keygen made: only ECDSA and Ed25519 are made again
    for prefix in (ours, theirs):
        for name in ("ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub"):
            (ssh_dir(prefix) / name).unlink()
        (ssh_dir(prefix) / "ssh_host_ed25519_key").write_bytes(b"")
    rsa = ssh_dir(ours) / "ssh_host_rsa_key"
    rsa.unlink()
    Path(f"{rsa}.pub").unlink()
    made = run([require("ssh-keygen"), "-q", "-t", "rsa", "-N", "", "-C", "kept", "-f", rsa])
    assert made.returncode == 0, made.stderr
    kept = {k: v for k, v in snapshot(ours).items() if k.startswith("ssh_host_rsa_key")}

    partial = keytool("gen", "-A", "-f", ours)
    assert partial.returncode == 0, partial.stderr
    their_partial = ssh_keygen_all(theirs)
    assert partial.stdout == as_ours(their_partial)
    assert "ECDSA ED25519" in their_partial and "RSA" not in their_partial
    assert {k: v for k, v in snapshot(ours).items() if k.startswith("ssh_host_rsa_key")} == kept
    assert listing(ours) == listing(theirs)
    for kind in ("ecdsa", "ed25519"):
        key = ssh_dir(ours) / f"ssh_host_{kind}_key"
        derived = run([require("ssh-keygen"), "-y", "-f", key])
        assert derived.returncode == 0, derived.stderr
        assert derived.stdout == Path(f"{key}.pub").read_text()


def test_pem_host_keys_as_ssh_keygen_writes_them(tmp_path: Path) -> None:
    ours = prefix_with_ssh_dir(tmp_path / "ours")
    theirs = prefix_with_ssh_dir(tmp_path / "theirs")
    made = keytool("gen", "-A", "-m", "PEM", "-f", ours)
    assert made.returncode == 0, made.stderr
    theirs_made = run([require("ssh-keygen"), "-A", "-m", "PEM", "-f", theirs])
    assert theirs_made.returncode == 0, theirs_made.stderr
    for kind in TYPES:
        key = ssh_dir(ours) / f"ssh_host_{kind}_key"
        their_key = ssh_dir(theirs) / f"ssh_host_{kind}_key"
        # RSA and ECDSA in PEM, Ed25519 in OpenSSH's format: the header ssh-keygen wrote
        assert key.read_text().splitlines()[0] == their_key.read_text().splitlines()[0]
        derived = run([require("ssh-keygen"), "-y", "-f", key])
        assert derived.stdout.split()[:2] == Path(f"{key}.pub").read_text().split()[:2]


def test_a_failed_write_leaves_no_key_without_its_pub(tmp_path: Path) -> None:
    prefix = prefix_with_ssh_dir(tmp_path / "root")
    # the RSA .pub cannot take its name (a folder is there): the RSA key must not appear
    blocker = ssh_dir(prefix) / "ssh_host_rsa_key.pub"
    blocker.mkdir()
    (blocker / "inside").write_text("x")
    line = assert_clean_error(keytool("gen", "-A", "-f", prefix))
    assert "ssh_host_rsa_key.pub" in line
    assert sorted(p.name for p in ssh_dir(prefix).iterdir()) == ["ssh_host_rsa_key.pub"]
    # ssh-keygen -A leaves no RSA private key either
    their = run([require("ssh-keygen"), "-A", "-f", prefix])
    assert "Unable to move" in their.stderr
    assert not (ssh_dir(prefix) / "ssh_host_rsa_key").exists()


def test_missing_folder_and_bad_combinations_write_nothing(tmp_path: Path) -> None:
    line = assert_clean_error(keytool("gen", "-A", "-f", tmp_path / "nowhere"))
    assert "no such directory" in line
    assert not (tmp_path / "nowhere").exists()
    # ssh-keygen -A fails there too, without making the folder
    their = run([require("ssh-keygen"), "-A", "-f", tmp_path / "nowhere"])
    assert "Could not save your private key" in their.stderr
    assert not (tmp_path / "nowhere").exists()

    prefix = prefix_with_ssh_dir(tmp_path / "root")
    for args in (
        ["-t", "rsa"],
        ["-b", "4096"],
        ["-C", "comment"],
        ["-N", "secret pass"],
        ["--force"],
        ["-m", "PEM", "-Z", "aes128-ctr"],
        ["-m", "DER"],
        ["-Z", "rot13"],
    ):
        line = assert_clean_error(keytool("gen", "-A", "-f", prefix, *args))
        assert line.startswith("keytool: "), line
        assert os.listdir(ssh_dir(prefix)) == []

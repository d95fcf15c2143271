"""Inputs a fuzz pass found keytool taking where ssh-keygen does not, each beside
ssh-keygen 9.2 on the same input: a damaged encrypted key (``check``), a FIFO nothing
writes to (every command reading a file), a damaged key blob on an allowed_signers line
(``verify --match-principals``, ``--find-principals``, ``verify``) and a signature file
whose armour ssh-keygen refuses (CRLF line ends, a blank line before it)."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require, run

MESSAGE = b"a release tarball\n" * 20


def keytool(
    *args: str | Path, stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*KEYTOOL, *map(str, args)], input=stdin, capture_output=True,
        env=env or base_env(), timeout=60,
    )  # fmt: skip


def keygen(*args: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require("ssh-keygen"), *map(str, args)], input=stdin, capture_output=True, timeout=60
    )


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Keys made by ssh-keygen, a message and its signature, an allowed_signers file."""
    folder = tmp_path_factory.mktemp("fuzz")
    keys = {}
    for name, flags in (("ed", ["-t", "ed25519"]), ("ed_pw", ["-t", "ed25519"])):
        path = folder / name
        secret = "secret" if name.endswith("_pw") else ""
        run([require("ssh-keygen"), "-q", *flags, "-N", secret, "-C", "", "-f", path])
        keys[name] = path
    message = folder / "msg"
    message.write_bytes(MESSAGE)
    signed = keygen("-Y", "sign", "-f", keys["ed"], "-n", "file", message)
    assert signed.returncode == 0, signed.stderr
    keys["msg"], keys["sig"] = message, folder / "msg.sig"
    return keys


# ---- 2. check: a damaged encrypted key is a FAIL, never "ok ... None bits"


def _cut_short(key: Path, target: Path) -> None:
    """``key`` with its last 32 bytes gone (the ciphertext cut short), re-armoured."""
    lines = key.read_text().splitlines()
    blob = base64.b64decode("".join(line for line in lines if not line.startswith("-----")))
    body = base64.b64encode(blob[:-32]).decode()
    wrapped = "\n".join(body[i : i + 70] for i in range(0, len(body), 70))
    target.write_text(
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{wrapped}\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    target.chmod(0o600)


def test_check_fails_a_damaged_encrypted_key(material: dict[str, Path], tmp_path: Path) -> None:
    home = tmp_path / "home"
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    home.chmod(0o755)
    key = ssh_dir / "id_ed25519"
    _cut_short(material["ed_pw"], key)
    refused = keygen("-y", "-P", "secret", "-f", key)
    assert refused.returncode == 255 and refused.stdout == b""  # ssh-keygen cannot load it
    done = subprocess.run(
        [*KEYTOOL, "check"], capture_output=True, text=True, env=base_env(HOME=str(home)),
        stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    about = [line for line in done.stdout.splitlines() if str(key) in line]
    assert len(about) == 1, done.stdout
    assert about[0].startswith(f"FAIL {key}: a damaged private key: ssh cannot load it ("), about
    assert "None" not in done.stdout, done.stdout
    assert done.returncode == 1, (done.stdout, done.stderr)
    # the same key whole: ok, with its type and size
    key.write_bytes(material["ed_pw"].read_bytes())
    done = subprocess.run(
        [*KEYTOOL, "check"], capture_output=True, text=True, env=base_env(HOME=str(home)),
        stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert f"ok   {key}: mode 0600, ssh-ed25519 256 bits, passphrase" in done.stdout
    assert done.returncode == 0, done.stdout


# ---- 4. a FIFO nothing writes to: refused within seconds, one line, non-zero


def _fifo_commands(material: dict[str, Path], fifo: Path) -> list[list[str | Path]]:
    sig, key = material["sig"], material["ed"]
    return [
        ["fingerprint", "-f", fifo],
        ["fingerprint", "-r", "host.example", "-f", fifo],
        ["export", "-f", fifo],
        ["import", "-f", fifo],
        ["krl", "-Q", "-f", fifo, f"{key}.pub"],
        ["pub", "-f", fifo],
        ["cert", "-L", "-f", fifo],
        ["known-hosts", "-F", "host.example", "-f", fifo],
        ["verify", "-n", "file", "-s", fifo],
        ["verify", "-f", fifo, "-I", "a@x", "-n", "file", "-s", sig],
        ["verify", "--find-principals", "-f", fifo, "-s", sig],
        ["verify", "--match-principals", "-f", fifo, "-I", "a@x"],
        ["sign", "-f", key, "-n", "file", fifo],
    ]


def test_a_fifo_nothing_writes_to_is_refused(material: dict[str, Path], tmp_path: Path) -> None:
    """Every command that reads a file ends within seconds on a FIFO nothing writes to,
    with one line and a non-zero status. They run side by side, each on a FIFO of its
    own (each waits its second for a writer)."""
    started = time.monotonic()
    running = []
    for number, command in enumerate(_fifo_commands(material, tmp_path / "f")):
        fifo = tmp_path / f"f{number}"
        os.mkfifo(fifo)
        argv = [str(fifo) if part == tmp_path / "f" else str(part) for part in command]
        proc = subprocess.Popen(
            [*KEYTOOL, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=base_env(),
        )  # fmt: skip
        running.append((argv, fifo, proc))
    for argv, fifo, proc in running:
        try:
            _, err = proc.communicate(MESSAGE if argv[0] in ("verify", "sign") else b"", 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"keytool {argv[0]} waited on a FIFO nothing writes to")
        stderr = err.decode()
        assert proc.returncode != 0, argv
        said = [line for line in stderr.splitlines() if line.startswith("keytool:")]
        assert "Traceback" not in stderr, stderr
        assert said, (argv, stderr)
        assert said[0].startswith(f"keytool: {fifo}: not a regular file") or said[0] in (
            f"keytool: {fifo} holds no public key",  # fingerprint -r, as for a file with none
        ), (argv, said)
        if argv[0] != "verify":  # verify: its "No principal matched." after it
            assert len(stderr.splitlines()) == 1, (argv, stderr)
        assert not Path(f"{fifo}.sig").exists()
    assert time.monotonic() - started < 30


def test_a_fifo_with_a_writer_is_still_read(material: dict[str, Path], tmp_path: Path) -> None:
    """As ssh-keygen reads one: ``fingerprint -f FIFO`` and ``verify -s FIFO`` when
    something writes to it, and stdin through ``-f /dev/stdin``."""
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    pub = Path(f"{material['ed']}.pub").read_bytes()
    outs = []
    for command in (
        [*KEYTOOL, "fingerprint", "-f", str(fifo)],
        [require("ssh-keygen"), "-lf", str(fifo)],
    ):
        reader = subprocess.Popen(command, stdout=subprocess.PIPE, env=base_env())
        fifo.write_bytes(pub)
        outs.append((reader.communicate(timeout=60)[0], reader.returncode))
    assert outs[0] == outs[1] and outs[0][1] == 0
    piped = keytool("fingerprint", "-f", "/dev/stdin", stdin=pub)
    assert piped.returncode == 0 and piped.stdout == outs[0][0]


# ---- 5. a damaged key blob on an allowed_signers line


def _damaged_signers(material: dict[str, Path], folder: Path) -> Path:
    """alice@x's line with a byte of its key type changed in the blob, then a line
    for *@x."""
    pub = " ".join(Path(f"{material['ed']}.pub").read_text().split()[:2])
    damaged = pub.replace("AAAAC3NzaC1lZDI1NTE5", "AAAAC3NzaCllZDI1NTE5", 1)
    assert damaged != pub
    path = folder / "as"
    path.write_text(f"alice@x {damaged}\n*@x {pub}\n")
    return path


def test_match_principals_stops_at_a_damaged_key(material: dict[str, Path], tmp_path: Path) -> None:
    signers = _damaged_signers(material, tmp_path)
    for identity in ("alice@x", "bob@x", "nobody@y"):
        args = ["-f", signers, "-I", identity]
        theirs = keygen("-Y", "match-principals", *args)
        mine = keytool("verify", "--match-principals", *args)
        assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), identity
        said, told = mine.stderr.decode().splitlines(), theirs.stderr.decode().splitlines()
        assert len(said) == len(told), (said, told)
        if identity == "alice@x":  # ssh-keygen: "as:1: invalid key", no answer, 252
            assert theirs.returncode == 252 and told[0] == f"{signers}:1: invalid key"
            assert said == [f"keytool: {signers} line 1: invalid key",
                            "keytool: No principal matched."]  # fmt: skip
        elif identity == "nobody@y":
            assert theirs.returncode == 210 and said == ["keytool: No principal matched."]


def test_verify_and_find_principals_pass_over_a_damaged_key(
    material: dict[str, Path], tmp_path: Path
) -> None:
    signers = _damaged_signers(material, tmp_path)
    sig = material["sig"]
    cases = [
        (["-Y", "find-principals", "-f", signers, "-s", sig],
         ["verify", "--find-principals", "-f", signers, "-s", sig]),
        (["-Y", "verify", "-f", signers, "-I", "alice@x", "-n", "file", "-s", sig],
         ["verify", "-f", signers, "-I", "alice@x", "-n", "file", "-s", sig]),
        (["-Y", "verify", "-f", signers, "-I", "bob@x", "-n", "file", "-s", sig],
         ["verify", "-f", signers, "-I", "bob@x", "-n", "file", "-s", sig]),
    ]  # fmt: skip
    for theirs_args, mine_args in cases:
        theirs = keygen(*theirs_args, stdin=MESSAGE)
        mine = keytool(*mine_args, stdin=MESSAGE)
        assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), mine_args
        # ssh-keygen names the damaged line where it reads it (not for bob@x, whom the
        # line does not name: it is passed over unparsed); keytool too
        named = f"{signers}:1: invalid key" in theirs.stderr.decode()
        assert named == ("bob@x" not in mine_args)
        assert (f"{signers} line 1: invalid key" in mine.stderr.decode()) == named, mine.stderr


# ---- 7. a signature file's armour: what ssh-keygen accepts and nothing else


def _variants(text: bytes) -> dict[str, bytes]:
    lines = text.split(b"\n")
    body = lines[1:-2]
    return {
        "as made": text,
        "crlf": text.replace(b"\n", b"\r\n"),
        "crlf after BEGIN": text.replace(b"-----\n", b"-----\r\n", 1),
        "crlf after END only": text.rstrip(b"\n") + b"\r\n",
        "blank line before": b"\n" + text,
        "space before": b" " + text,
        "space after BEGIN": text.replace(b"-----\n", b"----- \n", 1),
        "space before END": text.replace(b"\n-----END", b"\n -----END"),
        "blank lines after": text + b"\n\n",
        "no final newline": text.rstrip(b"\n"),
        "spaces and CRs in the base64": b"\n".join(
            [lines[0], *(b" " + line + b"\t\r" for line in body), *lines[-2:]]
        ),
        "an empty line in the base64": b"\n".join([lines[0], body[0], b"", *body[1:], *lines[-2:]]),
        "junk after END": text.rstrip(b"\n") + b" junk\n",
        "no newline before END": text.replace(b"\n-----END", b"-----END"),
        "bad base64": text.replace(body[0][:4], b"!!!!", 1),
    }


def test_signature_armour_as_ssh_keygen_reads_it(material: dict[str, Path], tmp_path: Path) -> None:
    good = material["sig"].read_bytes()
    refused = 0
    for name, text in _variants(good).items():
        sig = tmp_path / "variant.sig"
        sig.write_bytes(text)
        theirs = keygen("-Y", "check-novalidate", "-n", "file", "-s", sig, stdin=MESSAGE)
        mine = keytool("verify", "-n", "file", "-s", sig, stdin=MESSAGE)
        assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), name
        if theirs.returncode:
            refused += 1
            said = mine.stderr.decode().splitlines()
            assert len(said) == 1, (name, said)
            first = theirs.stderr.decode().splitlines()[0]  # ssh-keygen's reason
            reason = first.split(": ", 1)[1] if first.startswith("sshsig_") else first
            if reason.startswith("Couldn't parse signature"):
                assert said[0] == f"keytool: {sig}: {reason}", (name, said, first)
            else:  # "decode base64: invalid format"
                assert said[0].endswith(reason), (name, said, first)
    assert refused >= 7  # not a comparison of what both accept alone

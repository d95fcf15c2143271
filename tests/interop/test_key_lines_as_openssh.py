"""Key lines read as OpenSSH 9.2 reads them, each verdict asked of the real peer too:
a line ends at its first NUL (OpenSSH reads it as a C string), a key's base64 is
decoded as b64_pton decodes it (only the canonical encoding, C white space passed
over), and an authorized_keys option list ends where sshd's scanner ends it (``\\"``
skipped as a pair, ``\\\\`` two ordinary characters).

- known_hosts: ``ssh`` and ``keytool exec`` against a real sshd, same file, same verdict;
- authorized_keys: the key sshd lets in through a line is the key keytool says the line
  holds, and ``keytool copy-id --remove`` of that key takes the line out;
- ``ssh-keygen -l``, ``-Y verify`` and ``-k`` against ``keytool fingerprint``, ``verify``
  and ``krl`` on the same files.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keytool.audit_keyopts import refusal
from keytool.authkeys import parse_line
from keytool.errors import FormatError
from keytool.knownhosts import hash_name
from tests.cli import keytool
from tests.interop.clienthelp import KEYTOOL, base_env, keygen, keytool_exec
from tests.peers import Sshd, require, run, ssh_login

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def words(pub: Path) -> tuple[str, str]:
    key_type, b64 = pub.read_text().split()[:2]
    return key_type, b64


def leftover_bits(b64: str) -> str:
    """The same bytes with a bit set past the last byte (the word must end in '=')."""
    core = b64.rstrip("=")
    assert core != b64
    last = ALPHABET[ALPHABET.index(core[-1]) ^ 1]
    return core[:-1] + last + b64[len(core) :]


@dataclass
class Peer:
    folder: Path
    server: Sshd
    host_type: str  # the server's ECDSA host key: its base64 ends in '='
    host_b64: str
    ed_host: str  # its Ed25519 host key, type and base64: no '=' at the end
    login: Path  # a key sshd lets in through a line of its own
    ed: Path
    rsa: Path
    ec: Path


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    folder = tmp_path_factory.mktemp("key-lines")
    server = Sshd(
        folder / "sshd",
        {"PubkeyAcceptedAlgorithms": "+ssh-rsa"},
        host_key_types=("ecdsa", "ed25519"),
    )
    login = keygen(folder / "login", "ed25519", "login")
    ed = keygen(folder / "ed", "ed25519", "ed")
    rsa = keygen(folder / "rsa", "rsa", "rsa")
    ec = keygen(folder / "ec", "ecdsa", "ec")
    host_type, host_b64 = words(Path(f"{server.host_keys['ecdsa']}.pub"))
    assert host_b64.endswith("=")
    ed_host = " ".join(words(Path(f"{server.host_keys['ed25519']}.pub")))
    assert not ed_host.endswith("=")
    with server:
        yield Peer(folder, server, host_type, host_b64, ed_host, login, ed, rsa, ec)


def host_name(peer: Peer) -> str:
    return f"[127.0.0.1]:{peer.server.port}"


# ---------------------------------------------------------------- known_hosts


def verdicts(peer: Peer, known: Path, *more: str, ed_host: bool = False) -> tuple[int, int, str]:
    """(ssh's status, keytool exec's, keytool's stderr) logging in with ``known``, the
    server showing its ECDSA host key (its Ed25519 one with ``ed_host``)."""
    algorithm = "ssh-ed25519" if ed_host else "ecdsa-sha2-nistp256"
    host_options = ("-o", "StrictHostKeyChecking=yes", "-o", f"HostKeyAlgorithms={algorithm}")
    peer.server.authorized_keys.write_text(Path(f"{peer.login}.pub").read_text())
    theirs = ssh_login(peer.server.port, peer.login, known, "true", options=[*host_options, *more])
    mine = keytool_exec(
        peer.server.port,
        known,
        "root@127.0.0.1",
        "true",
        flags=("-i", str(peer.login), "-o", "BatchMode=yes", *host_options, *more),
    )
    return theirs.returncode, mine.returncode, mine.stderr.decode(errors="replace")


def known_lines(peer: Peer, form: str) -> bytes:
    key, name = f"{peer.host_type} {peer.host_b64}", host_name(peer)
    kind, b64 = peer.host_type, peer.host_b64
    plain = f"{name} {key}\n"
    hashed = hash_name(name)
    _, _, salt, digest = hashed.split("|")
    lines = {
        "canonical": plain,
        "key with C white space inside": f"{name} {kind} {b64[:20]}\f{b64[20:]}\n",
        "revoked, then NUL": f"@revoked * {key}\0\n{plain}",
        "revoked, then NUL and more": f"@revoked * {key}\0 trailing junk\n{plain}",
        "key with extra padding": f"{name} {key}=\n",
        "unpadded key with extra padding": f"{name} {peer.ed_host}=\n",
        "unpadded key with two extra padding": f"{name} {peer.ed_host}==\n",
        "key with padding missing": f"{name} {kind} {b64.rstrip('=')}\n",
        "key with leftover bits": f"{name} {kind} {leftover_bits(b64)}\n",
        "key with padding inside": f"{name} {kind} {b64[:8]}={b64[8:]}\n",
        "hashed, canonical": f"{hashed} {key}\n",
        "hashed, salt with leftover bits": f"|1|{leftover_bits(salt)}|{digest} {key}\n",
        "hashed, hash with leftover bits": f"|1|{salt}|{leftover_bits(digest)} {key}\n",
        "hashed, salt with padding missing": f"|1|{salt.rstrip('=')}|{digest} {key}\n",
        "hashed, hash with extra padding": f"|1|{salt}|{digest}= {key}\n",
        "NUL at the start, then the line": f"\0{plain}",
    }
    return lines[form].encode()


@pytest.mark.parametrize(
    ("form", "accepted"),
    [
        ("canonical", True),
        ("key with C white space inside", True),
        ("revoked, then NUL", False),
        ("revoked, then NUL and more", False),
        ("key with extra padding", False),
        ("unpadded key with extra padding", False),
        ("unpadded key with two extra padding", False),
        ("key with padding missing", False),
        ("key with leftover bits", False),
        ("key with padding inside", False),
        ("hashed, canonical", True),
        ("hashed, salt with leftover bits", False),
        ("hashed, hash with leftover bits", False),
        ("hashed, salt with padding missing", False),
        ("hashed, hash with extra padding", False),
        ("NUL at the start, then the line", False),
    ],
)
def test_known_hosts_line_as_ssh_reads_it(peer: Peer, form: str, accepted: bool) -> None:
    known = peer.folder / f"known-{form.replace(' ', '-').replace(',', '')}"
    known.write_bytes(known_lines(peer, form))
    theirs, mine, said = verdicts(peer, known, ed_host=form.startswith("unpadded"))
    assert theirs == (0 if accepted else 255)
    assert mine == theirs, said
    if form.startswith("revoked"):
        assert "revoked" in said.lower(), said


def test_revoked_host_keys_list_line_after_a_nul(peer: Peer) -> None:
    """RevokedHostKeys as a list of keys: ``\\0junk`` is a blank line for ssh (the list
    stays usable, the host is let in), and ``KEY\\0junk`` revokes KEY."""
    known = peer.folder / "known-for-revoked"
    known.write_bytes(known_lines(peer, "canonical"))
    other = " ".join(words(Path(f"{peer.ed}.pub")))
    listing = peer.folder / "revoked-list"
    listing.write_bytes(f"{other}\n\0not a key\n".encode())
    theirs, mine, said = verdicts(peer, known, "-o", f"RevokedHostKeys={listing}")
    assert theirs == mine == 0, said
    listing.write_bytes(f"{other}\n{peer.host_type} {peer.host_b64}\0junk\n".encode())
    theirs, mine, said = verdicts(peer, known, "-o", f"RevokedHostKeys={listing}")
    assert theirs == mine == 255
    assert "revoked" in said, said


# ---------------------------------------------------------------- authorized_keys


def sshd_lets_in(peer: Peer, key: Path) -> bool:
    known = peer.folder / "known-for-login"
    known.write_text(f"{host_name(peer)} {peer.host_type} {peer.host_b64}\n")
    result = ssh_login(peer.server.port, key, known, "true")
    assert result.returncode in (0, 255), result.stderr
    return result.returncode == 0


def keytool_key(line: bytes) -> bytes | None:
    """The key blob keytool's parser finds in ``line``, when the options before it are
    ones sshd takes (as ``keytool check`` judges them); None for none."""
    try:
        entry = parse_line(line.decode("utf-8", "surrogateescape"))
    except FormatError:
        return None
    if entry is None or (entry.options and refusal(entry.options + " ", time.time())):
        return None
    return entry.key.to_wire()


def blob(pub: Path) -> bytes:
    import base64

    return base64.b64decode(words(pub)[1])


def auth_line(peer: Peer, form: str) -> bytes:
    ed, rsa, ec = (" ".join(words(Path(f"{k}.pub"))) for k in (peer.ed, peer.rsa, peer.ec))
    ec_type, ec_b64 = words(Path(f"{peer.ec}.pub"))
    lines = {
        "backslash before a quote": f'command="/bin/echo \\\\" {ed} looks-fine" {rsa} hidden',
        "backslash-quote pair outside quotes": f'no-pty,x=\\" {ed} {rsa}',
        "NUL first": f"\0 {ed}",
        "NUL after a form feed in the key": f"{ec}\f\0hidden",
        "NUL inside a quoted option": f'command="echo \0" {ed}',
        "NUL in the comment": f"{ed} laptop\0 {rsa}",
        "extra padding": f"{ec}=",
        "unpadded key with extra padding": f"{ed}= laptop",
        "padding missing": f"{ec_type} {ec_b64.rstrip('=')}",
        "leftover bits": f"{ec_type} {leftover_bits(ec_b64)}",
    }
    return lines[form].encode() + b"\n"


AUTH_FORMS = [
    "backslash before a quote",
    "backslash-quote pair outside quotes",
    "NUL first",
    "NUL after a form feed in the key",
    "NUL inside a quoted option",
    "NUL in the comment",
    "extra padding",
    "unpadded key with extra padding",
    "padding missing",
    "leftover bits",
]


@pytest.mark.parametrize("form", AUTH_FORMS)
def test_authorized_keys_line_holds_the_key_sshd_lets_in(peer: Peer, form: str) -> None:
    line = auth_line(peer, form)
    peer.server.authorized_keys.write_bytes(line)
    let_in = [key for key in (peer.ed, peer.rsa, peer.ec) if sshd_lets_in(peer, key)]
    assert len(let_in) <= 1
    expected = blob(Path(f"{let_in[0]}.pub")) if let_in else None
    assert keytool_key(line) == expected


@pytest.mark.parametrize(
    ("form", "key"),
    [("backslash before a quote", "rsa"), ("NUL after a form feed in the key", "ec")],
)
def test_copy_id_remove_takes_out_the_line_sshd_uses(peer: Peer, form: str, key: str) -> None:
    target = {"rsa": peer.rsa, "ec": peer.ec}[key]
    login_line = Path(f"{peer.login}.pub").read_bytes()
    peer.server.authorized_keys.write_bytes(auth_line(peer, form) + login_line)
    assert sshd_lets_in(peer, target)
    known = peer.folder / "known-for-copy-id"
    known.write_text(f"{host_name(peer)} {peer.host_type} {peer.host_b64}\n")
    result = subprocess.run(
        [
            *KEYTOOL,
            "copy-id",
            "--remove",
            "--no-verify",
            "-F",
            "none",
            "-i",
            f"{target}.pub",
            "-p",
            str(peer.server.port),
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            f"IdentityFile={peer.login}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-t",
            str(peer.server.authorized_keys),
            "root@127.0.0.1",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=base_env(HOME=str(peer.folder)),
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert peer.server.authorized_keys.read_bytes() == login_line
    assert not sshd_lets_in(peer, target)


# ---------------------------------------------------------------- ssh-keygen


def pub_forms(pub: Path) -> dict[str, str]:
    key_type, b64 = words(pub)
    return {
        "extra padding": f"{key_type} {b64}= c\n",
        "two extra padding": f"{key_type} {b64}== c\n",
        "padding missing": f"{key_type} {b64.rstrip('=')} c\n",
        "leftover bits": f"{key_type} {leftover_bits(b64) if b64.endswith('=') else b64} c\n",
        "padding inside": f"{key_type} {b64[:8]}={b64[8:]} c\n",
        "bad character": f"{key_type} {b64[:8]}*{b64[9:]} c\n",
        "url-safe alphabet": f"{key_type} {b64.replace('+', '-').replace('/', '_')} c\n",
        "C white space inside": f"{key_type} {b64[:8]}\v{b64[8:]} c\n",
        "NUL after the key": f"{key_type} {b64}\0junk\n",
    }


@pytest.mark.parametrize(
    "form",
    [
        "extra padding",
        "two extra padding",
        "padding missing",
        "leftover bits",
        "padding inside",
        "bad character",
        "url-safe alphabet",
        "C white space inside",
        "NUL after the key",
    ],
)
@pytest.mark.parametrize("kind", ["ed", "ec"])
def test_fingerprint_of_a_pub_file_as_ssh_keygen(
    peer: Peer, tmp_path: Path, form: str, kind: str
) -> None:
    pub = tmp_path / "key.pub"
    key = peer.ed if kind == "ed" else peer.ec
    pub.write_bytes(pub_forms(Path(f"{key}.pub"))[form].encode())
    theirs = run([require("ssh-keygen"), "-l", "-f", pub])
    mine = keytool("fingerprint", "-f", pub)
    assert "Traceback" not in mine.stderr
    assert (mine.returncode == 0) == (theirs.returncode == 0), (theirs.stderr, mine.stderr)
    if theirs.returncode == 0:
        assert mine.stdout.split()[1] == theirs.stdout.split()[1]


@pytest.mark.parametrize(
    "form",
    ["extra padding", "padding missing", "leftover bits", "padding inside", "NUL after the key"],
)
@pytest.mark.parametrize("kind", ["ed", "ec"])
def test_krl_key_spec_as_ssh_keygen(peer: Peer, tmp_path: Path, form: str, kind: str) -> None:
    spec = tmp_path / "spec"
    key = peer.ed if kind == "ed" else peer.ec
    spec.write_bytes(b"key: " + pub_forms(Path(f"{key}.pub"))[form].encode())
    theirs = run([require("ssh-keygen"), "-k", "-f", tmp_path / "theirs.krl", spec])
    mine = keytool("krl", "-f", tmp_path / "mine.krl", spec)
    assert "Traceback" not in mine.stderr
    assert (mine.returncode == 0) == (theirs.returncode == 0), (theirs.stderr, mine.stderr)


MESSAGE = b"release notes\n"


def signature(key: Path) -> Path:
    sig = Path(f"{key}.msg.sig")
    if not sig.exists():
        signed = subprocess.run(
            [require("ssh-keygen"), "-Y", "sign", "-f", key, "-n", "file"],
            input=MESSAGE,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert signed.returncode == 0, signed.stderr
        sig.write_bytes(signed.stdout)
    return sig


def signer_lines(peer: Peer, form: str) -> str:
    ed, ec = (" ".join(words(Path(f"{k}.pub"))) for k in (peer.ed, peer.ec))
    ec_type, ec_b64 = words(Path(f"{peer.ec}.pub"))
    return {
        "NUL after the key": f"alice {ec}\0junk\n",
        "NUL after a form feed in the key": f"alice {ec}\f\0junk\n",
        "NUL in the principals": f"mallory\0 {ec}\nalice\0x {ec}\n",
        "extra padding": f"alice {ec}=\n",
        "unpadded key with extra padding": f"alice {ed}==\n",
        "padding missing": f"alice {ec_type} {ec_b64.rstrip('=')}\n",
        "leftover bits": f"alice {ec_type} {leftover_bits(ec_b64)}\n",
        "backslash before a quote": f'alice namespaces="file,\\\\" {ed} x" {ec}\n',
        "backslash-quote pair": f'alice namespaces="file,\\" {ed} x" {ec}\n',
    }[form]


@pytest.mark.parametrize(
    "form",
    [
        "NUL after the key",
        "NUL after a form feed in the key",
        "NUL in the principals",
        "extra padding",
        "unpadded key with extra padding",
        "padding missing",
        "leftover bits",
        "backslash before a quote",
        "backslash-quote pair",
    ],
)
@pytest.mark.parametrize("signer", ["ed", "ec"])
def test_verify_with_allowed_signers_as_ssh_keygen(
    peer: Peer, tmp_path: Path, form: str, signer: str
) -> None:
    signers = tmp_path / "allowed_signers"
    signers.write_bytes(signer_lines(peer, form).encode())
    sig = signature(peer.ed if signer == "ed" else peer.ec)
    args = ["-f", str(signers), "-I", "alice", "-n", "file", "-s", str(sig)]
    theirs = subprocess.run(
        [require("ssh-keygen"), "-Y", "verify", *args],
        input=MESSAGE,
        capture_output=True,
        timeout=60,
        check=False,
    )
    mine = subprocess.run(
        [*KEYTOOL, "verify", *args], input=MESSAGE, capture_output=True, timeout=60, check=False
    )
    assert b"Traceback" not in mine.stderr
    assert mine.returncode == theirs.returncode, (theirs.stdout, mine.stdout, mine.stderr)
    assert (mine.returncode == 0) == mine.stdout.startswith(b"Good")

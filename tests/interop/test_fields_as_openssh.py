"""Lines whose words stand apart by white space other than spaces and tabs, read side
by side with OpenSSH 9.2: ssh and sshd cut the words of known_hosts, authorized_keys,
allowed_signers, revoked keys and .pub lines at spaces and tabs only, skip only those
at a line's start, and decode a key's base64 passing over the C white space inside it
(a CRLF line's carriage return). Python's split() and strip() cut at any white space
(U+00A0, form feed, vertical tab, the file separators...), so keytool once trusted
lines that ssh ignores, and ignored lines that ssh trusts. Each case runs the OpenSSH
tool and keytool on the same files; their verdicts must agree."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.agenthelp import openssh_agent
from tests.interop.clienthelp import KEYTOOL, base_env, keygen, keytool_exec
from tests.interop.copyidhelp import Client, copy_id
from tests.peers import Sshd, require, ssh_login

NBSP = b"\xc2\xa0"  # U+00A0 in UTF-8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, Path]]:
    """One sshd for the module (its Ed25519 host key alone) letting root in with a login
    key, and that key."""
    folder = tmp_path_factory.mktemp("fields")
    key = keygen(folder / "login", "ed25519", "login")
    sshd = Sshd(folder / "sshd", host_key_types=("ed25519",))
    sshd.authorized_keys.write_bytes(Path(f"{key}.pub").read_bytes())
    with sshd:
        yield sshd, key


def _words(pub: Path) -> tuple[bytes, bytes]:
    """The key type and base64 of a .pub file."""
    kind, b64 = pub.read_bytes().split(b" ")[:2]
    return kind, b64


# ---------------------------------------------------------------- known_hosts, ssh


#: known_hosts text (%(h)s the server's name, %(t)s its key type, %(k)s its base64)
#: and whether ssh takes the server's key as known with it
KNOWN_HOSTS = {
    "U+00A0 after the host": (b"%(h)s\xc2\xa0%(t)s %(k)s\n", False),
    "form feed after the host": (b"%(h)s\x0c%(t)s %(k)s\n", False),
    "vertical tab after the type": (b"%(h)s %(t)s\x0b%(k)s\n", False),
    "file separator after the key": (b"%(h)s %(t)s %(k)s\x1c\n", False),
    "vertical tab at the start": (b"\x0b%(h)s %(t)s %(k)s\n", False),
    "vertical tab inside the host field": (b"other\x0b,%(h)s %(t)s %(k)s\n", True),
    "form feed inside the base64": (b"%(h)s %(t)s %(k20)s\x0c%(krest)s\n", True),
    "@revoked then a tab": (b"%(h)s %(t)s %(k)s\n@revoked\t%(h)s %(t)s %(k)s\n", True),
    "@revoked then U+00A0": (b"%(h)s %(t)s %(k)s\n@revoked\xc2\xa0%(h)s %(t)s %(k)s\n", True),
    # no space on the line: the marker ends at its first tab, and the key is revoked
    "@revoked, tabs alone": (b"%(h)s %(t)s %(k)s\n@revoked\t%(h)s\t%(t)s\t%(k)s\n", False),
    "@revoked twice": (b"%(h)s %(t)s %(k)s\n@revoked @revoked %(h)s %(t)s %(k)s\n", True),
}


@pytest.mark.parametrize("case", KNOWN_HOSTS)
def test_a_known_hosts_line_trusts_the_server_as_for_ssh(
    server: tuple[Sshd, Path], tmp_path: Path, case: str
) -> None:
    sshd, key = server
    template, known = KNOWN_HOSTS[case]
    kind, b64 = _words(Path(f"{sshd.host_keys['ed25519']}.pub"))
    name = f"[127.0.0.1]:{sshd.port}".encode()
    text = template % {b"h": name, b"t": kind, b"k": b64, b"k20": b64[:20], b"krest": b64[20:]}
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_bytes(text)
    strict = ["-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no"]
    theirs = ssh_login(sshd.port, key, known_hosts, "echo in", options=strict)
    flags = ("-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", *strict)
    mine = keytool_exec(sshd.port, known_hosts, "root@127.0.0.1", "echo in", flags=flags)
    assert b"Traceback" not in mine.stderr
    assert (theirs.returncode == 0) is known, theirs.stderr
    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout.encode())
    assert known_hosts.read_bytes() == text


# ------------------------------------------------------- known_hosts, ssh-keygen -F -R -H


def _both_edit(tmp_path: Path, text: bytes, *args: str) -> tuple[list[object], list[object]]:
    """ssh-keygen and keytool known-hosts with ``args`` on copies of ``text``: each one's
    status, stdout and file afterwards (hashed names masked)."""
    seen = []
    for program in ([require("ssh-keygen")], [*KEYTOOL, "known-hosts"]):
        path = tmp_path / f"known_{len(seen)}"
        path.write_bytes(text)
        done = subprocess.run(
            [*program, *args, "-f", str(path)], capture_output=True, env=base_env(), timeout=60
        )
        assert b"Traceback" not in done.stderr
        written = re.sub(rb"\|1\|[^ ]+", b"HASHED", path.read_bytes())
        seen.append([done.returncode, done.stdout.replace(bytes(path), b"FILE"), written])
    return seen[0], seen[1]


def test_a_crlf_blank_line_is_one_ssh_keygen_cannot_read(tmp_path: Path) -> None:
    """A line holding a carriage return alone is not blank for ssh-keygen: -R refuses
    to rewrite the file (keytool once took the line for a blank one and rewrote it)."""
    key = keygen(tmp_path / "k")
    kind, b64 = _words(Path(f"{key}.pub"))
    text = b"\r\nh1 %s %s\n" % (kind, b64)
    theirs, mine = _both_edit(tmp_path, text, "-R", "h1")
    assert theirs[0] == mine[0] == 1
    assert theirs[2] == mine[2] == text


def test_hashing_a_crlf_file_keeps_its_carriage_returns(tmp_path: Path) -> None:
    """ssh-keygen -H writes each line's key and comment back as they were, a CRLF
    line's carriage return and trailing blanks included."""
    key = keygen(tmp_path / "k")
    kind, b64 = _words(Path(f"{key}.pub"))
    text = b"h1 %s %s\r\nh2,h3 %s %s c \t\r\n" % (kind, b64, kind, b64)
    theirs, mine = _both_edit(tmp_path, text, "-H")
    assert theirs[0] == mine[0] == 0
    assert theirs[2] == mine[2]
    assert (
        theirs[2] == b"HASHED %s %s\r\n" % (kind, b64) + b"HASHED %s %s c \t\r\n" % (kind, b64) * 2
    )


@pytest.mark.parametrize(
    "line, args",
    [
        (b"h0\x0b,h1 %(t)s %(k)s\n", ("-F", "h1")),  # found: the name after the comma
        (b"@revoked\th1 %(t)s %(k)s\n", ("-F", "h1")),  # not a marker ssh-keygen reads
        (b"h1 %(t)s %(k)s c\x0c\n", ("-l", "-F", "h1")),  # the comment keeps its form feed
        (b"@revoked\th1\t%(t)s\t%(k)s\n", ("-F", "h1")),  # tabs alone: a marker
        (b"@revoked\th1\t%(t)s\t%(k)s\nh2 %(t)s %(k)s\n", ("-H",)),
    ],
    ids=[
        "vertical-tab-in-hosts",
        "revoked-then-tab",
        "comment-form-feed",
        "revoked-tabs-alone",
        "hash-revoked-tabs-alone",
    ],
)
def test_ssh_keygen_finds_the_same_lines(tmp_path: Path, line: bytes, args: tuple[str]) -> None:
    key = keygen(tmp_path / "k")
    kind, b64 = _words(Path(f"{key}.pub"))
    theirs, mine = _both_edit(tmp_path, line % {b"t": kind, b"k": b64}, *args)
    assert theirs == mine


# ---------------------------------------------------------------- authorized_keys, sshd


@pytest.mark.parametrize(
    "line",
    [
        b"%(t)s\xc2\xa0%(k)s new\n",  # U+00A0 between type and base64
        b"%(t)s %(k)s\x0cnew\n",  # a form feed before the comment
        b"\x0c%(t)s %(k)s new\n",  # a form feed at the start
    ],
    ids=["nbsp-after-type", "form-feed-before-comment", "form-feed-first"],
)
def test_copy_id_installs_a_key_sshd_does_not_take_from_its_line(
    server: tuple[Sshd, Path], tmp_path: Path, line: bytes
) -> None:
    """A line holding the new key with white space sshd does not cut at: sshd refuses
    the key, and copy-id installs it (it once said the key was already there)."""
    sshd, login = server
    client, before = _new_key_line(sshd, login, tmp_path, line)
    assert ssh_login(sshd.port, client.key, client.known_hosts).returncode != 0
    mine = copy_id(
        client, "-i", client.pub, "-t", sshd.authorized_keys, "-p", str(sshd.port),
        "--no-verify", "root@127.0.0.1", login_key=login,
    )  # fmt: skip
    assert mine.returncode == 0, mine.stderr
    assert sshd.authorized_keys.read_bytes() == before + client.pub_line()
    assert ssh_login(sshd.port, client.key, client.known_hosts).returncode == 0


def test_copy_id_removes_a_key_sshd_takes_from_its_line(
    server: tuple[Sshd, Path], tmp_path: Path
) -> None:
    """A vertical tab inside the key's base64: sshd's decoder passes over it and takes
    the key; copy-id --remove takes that line out (it once left it, key still in)."""
    sshd, login = server
    line = b"%(t)s %(k20)s\x0b%(krest)s new\n"
    client, _ = _new_key_line(sshd, login, tmp_path, line)
    assert ssh_login(sshd.port, client.key, client.known_hosts).returncode == 0
    mine = copy_id(
        client, "--remove", "-i", client.pub, "-t", sshd.authorized_keys, "-p",
        str(sshd.port), "root@127.0.0.1", login_key=login,
    )  # fmt: skip
    assert mine.returncode == 0, mine.stderr
    assert sshd.authorized_keys.read_bytes() == Path(f"{login}.pub").read_bytes()
    assert ssh_login(sshd.port, client.key, client.known_hosts).returncode != 0


def _new_key_line(sshd: Sshd, login: Path, folder: Path, line: bytes) -> tuple[Client, bytes]:
    """A client with a new key, and the server's authorized_keys: the login key's line,
    then ``line`` (%(t)s, %(k)s: the new key's type and base64; %(k20)s and %(krest)s:
    its base64 cut after 20 characters)."""
    home = folder / "home"
    (home / ".ssh").mkdir(parents=True)
    known = home / ".ssh" / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    new = keygen(home / ".ssh" / "id_ed25519", "ed25519", "new")
    kind, b64 = _words(Path(f"{new}.pub"))
    text = Path(f"{login}.pub").read_bytes()
    text += line % {b"t": kind, b"k": b64, b"k20": b64[:20], b"krest": b64[20:]}
    sshd.authorized_keys.write_bytes(text)
    return Client(home, known, new), text


# ------------------------------------------------- allowed_signers and revoked keys lists


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """A key, another key, a message and the first key's signature of it (namespace file)."""
    folder = tmp_path_factory.mktemp("signed")
    key, other = keygen(folder / "signer"), keygen(folder / "other")
    message = folder / "message"
    message.write_bytes(b"release notes\n")
    done = subprocess.run(
        [require("ssh-keygen"), "-Y", "sign", "-f", str(key), "-n", "file", str(message)],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return key, other, message, Path(f"{message}.sig")


def _both_verify(
    signers: Path, signed: tuple[Path, Path, Path, Path], *extra: str
) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
    """(status, stdout) of ssh-keygen -Y verify and keytool verify, identity ``alice``."""
    _, _, message, sig = signed
    args = ["-f", str(signers), "-I", "alice", "-n", "file", "-s", str(sig), *extra]
    seen = []
    for program in ([require("ssh-keygen"), "-Y", "verify"], [*KEYTOOL, "verify"]):
        done = subprocess.run(
            [*program, *args], input=message.read_bytes(), capture_output=True, timeout=60,
            env=base_env(),
        )  # fmt: skip
        assert b"Traceback" not in done.stderr
        seen.append((done.returncode, done.stdout))
    return seen[0], seen[1]


@pytest.mark.parametrize(
    "line, good",
    [
        (b"alice %(t)s\x0b%(k)s\n", False),  # type and base64 apart by a vertical tab
        (b"alice %(t)s %(k)s\x1c\n", False),  # a file separator after the base64
        (b"alice %(t)s %(k)s\xc2\xa0laptop\n", False),  # U+00A0 before the comment
        (b"\ralice %(t)s %(k)s\n", False),  # a carriage return first: no principal
        (b"alice %(t)s %(k20)s\x0b%(krest)s\n", True),  # a vertical tab inside the base64
    ],
    ids=["vt-after-type", "fs-after-key", "nbsp-before-comment", "cr-first", "vt-in-base64"],
)
def test_an_allowed_signers_line_is_read_as_by_ssh_keygen(
    signed: tuple[Path, Path, Path, Path], tmp_path: Path, line: bytes, good: bool
) -> None:
    kind, b64 = _words(Path(f"{signed[0]}.pub"))
    signers = tmp_path / "allowed_signers"
    signers.write_bytes(line % {b"t": kind, b"k": b64, b"k20": b64[:20], b"krest": b64[20:]})
    theirs, mine = _both_verify(signers, signed)
    assert (theirs[0] == 0) is good
    assert mine == theirs


@pytest.mark.parametrize(
    "text",
    [b"\r\n%(t)s %(k)s\n", b"%(t)s %(k)s\xc2\xa0other\n", b"\x0c%(t)s %(k)s\n"],
    ids=["crlf-blank-line", "nbsp-before-comment", "form-feed-first"],
)
def test_a_revoked_keys_line_ssh_keygen_cannot_read_fails_the_check(
    signed: tuple[Path, Path, Path, Path], tmp_path: Path, text: bytes
) -> None:
    """-r FILE listing another key, on a line that is no key for OpenSSH: the list
    cannot be used, and neither tool takes the signature as good."""
    kind, b64 = _words(Path(f"{signed[0]}.pub"))
    signers = tmp_path / "allowed_signers"
    signers.write_bytes(b"alice %s %s\n" % (kind, b64))
    other_kind, other_b64 = _words(Path(f"{signed[1]}.pub"))
    revoked = tmp_path / "revoked"
    revoked.write_bytes(text % {b"t": other_kind, b"k": other_b64})
    theirs, mine = _both_verify(signers, signed, "-r", str(revoked))
    assert theirs[0] != 0
    assert mine == theirs


# ------------------------------------------------------------------ .pub files, ssh-add


@pytest.mark.parametrize(
    "line",
    [
        b"%(t)s %(k)s laptop\x0bwork\n",  # the comment holds its vertical tab
        b"\t%(t)s %(k)s my laptop \n",  # and its trailing space
        b"%(t)s\xc2\xa0%(k)s laptop\n",  # no key: U+00A0 is no separator
        b"\x0c%(t)s %(k)s laptop\n",  # no key: a form feed is not skipped
    ],
    ids=["vt-in-comment", "trailing-space", "nbsp-after-type", "ff-first"],
)
def test_a_pub_file_names_the_key_as_for_ssh_add(tmp_path: Path, line: bytes) -> None:
    """ssh-add -d KEY.pub and keytool add -d KEY.pub, the key in the agent: the same
    status and messages (the comment as ssh-add reads it from the .pub)."""
    key = keygen(tmp_path / "id", "ed25519", "private")
    kind, b64 = _words(Path(f"{key}.pub"))
    pub = tmp_path / "named.pub"
    pub.write_bytes(line % {b"t": kind, b"k": b64})
    seen = []
    with openssh_agent(tmp_path / "agent") as agent:
        env = base_env(SSH_AUTH_SOCK=str(agent.sock))
        for program in ([require("ssh-add")], [*KEYTOOL, "add"]):
            subprocess.run(
                [require("ssh-add"), "-q", str(key)], env=env, check=True, timeout=60,
                capture_output=True,
            )  # fmt: skip
            done = subprocess.run(
                [*program, "-d", str(pub)], capture_output=True, env=env, timeout=60
            )
            assert b"Traceback" not in done.stderr
            said = done.stdout + done.stderr if done.returncode == 0 else b""
            seen.append((done.returncode == 0, said.replace(b"keytool: ", b"")))
    assert seen[1] == seen[0]


# ---------------------------------------------------------------- certificates, ssh-keygen


@pytest.mark.parametrize("separator", [b"\x0c", b"\xc2\xa0", b"\t"])
def test_a_key_to_certify_and_a_certificate_to_list_read_as_by_ssh_keygen(
    tmp_path: Path, separator: bytes
) -> None:
    """A .pub line or a certificate line whose type and base64 stand apart by a form
    feed or U+00A0: ssh-keygen -s and -L refuse it (keytool once certified and listed
    it); by a tab, both take it."""
    ca, user = keygen(tmp_path / "ca"), keygen(tmp_path / "user")
    signed = subprocess.run(
        [require("ssh-keygen"), "-q", "-s", ca, "-I", "id", "-n", "p", f"{user}.pub"],
        capture_output=True, env=base_env(), timeout=60, check=False,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    cert = Path(f"{user}-cert.pub").read_bytes()
    pub = Path(f"{user}.pub").read_bytes()
    taken = separator == b"\t"
    statuses = {}
    for name, program in (("ssh-keygen", [require("ssh-keygen")]), ("keytool", [*KEYTOOL, "cert"])):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "k.pub").write_bytes(pub.replace(b" ", separator, 1))
        (folder / "c.pub").write_bytes(cert.replace(b" ", separator, 1))
        made = subprocess.run(
            [*program, "-s", ca, "-I", "id", "-n", "p", "k.pub"],
            capture_output=True, cwd=folder, env=base_env(), timeout=60, check=False,
        )  # fmt: skip
        listed = subprocess.run(
            [*program, "-L", "-f", "c.pub"],
            capture_output=True, cwd=folder, env=base_env(), timeout=60, check=False,
        )  # fmt: skip
        statuses[name] = (made.returncode == 0, (folder / "k-cert.pub").exists(), listed.returncode)
    assert statuses["keytool"] == statuses["ssh-keygen"]
    assert statuses["ssh-keygen"][:2] == (taken, taken)
    assert (statuses["ssh-keygen"][2] == 0) == taken

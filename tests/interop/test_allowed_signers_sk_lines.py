"""allowed_signers lines whose key keytool does not use but ssh-keygen 9.2 reads: FIDO
security keys (sk-ssh-ed25519, sk-ecdsa-sha2-nistp256, and the latter under its
signature algorithm's name webauthn-sk-ecdsa-sha2-nistp256@openssh.com), DSA, and
certificates of them. ssh-keygen reads such a line quietly: it grants nothing to an
ed25519 signature, and match-principals lists it. A certificate whose CA signature
does not verify, or of a type that does not exist, is its "invalid key".

Each case runs ``ssh-keygen -Y verify / find-principals / match-principals`` and
``keytool verify`` on the same files (check-novalidate reads no allowed_signers
file); the status, the output and the complaints must agree."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from tests.interop.test_cli_sign import keygen, keytool, make_key

MESSAGE = b"release notes\n"
SK_ED25519 = "sk-ssh-ed25519@openssh.com"
SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com"
WEBAUTHN = "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"


def _string(data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return struct.pack(">I", len(raw)) + raw


def _fields(blob: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(blob):
        (n,) = struct.unpack(">I", blob[i : i + 4])
        out.append(blob[i + 4 : i + 4 + n])
        i += 4 + n
    return out


def _blob(pub: Path) -> bytes:
    return base64.b64decode(pub.read_text().split()[1])


def _line(key_type: str, blob: bytes) -> str:
    return f"{key_type} {base64.b64encode(blob).decode()}"


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each key line by name (security keys built by hand from real points, as
    PROTOCOL.u2f lays them out; certificates made by ssh-keygen -s), plus the signer's
    own line ("signer") and its signature's path ("sig")."""
    folder = tmp_path_factory.mktemp("sk-lines")
    made: dict[str, str] = {}
    keys = {}
    for kind, bits in (("ed25519", "256"), ("ecdsa", "256"), ("dsa", "1024")):
        (folder / kind).mkdir()
        keys[kind] = make_key(folder / kind, kind, bits)
    ca = make_key(folder, "ed25519", "256")  # id_ed25519_256 in folder itself
    signer = Path(f"{keys['ed25519']}.pub")
    signed = keygen("-Y", "sign", "-f", keys["ed25519"], "-n", "file", stdin=MESSAGE)
    assert signed.returncode == 0, signed.stderr
    (folder / "msg.sig").write_bytes(signed.stdout)
    made["sig"] = str(folder / "msg.sig")
    made["signer"] = " ".join(signer.read_text().split()[:2])
    point = _fields(_blob(Path(f"{keys['ecdsa']}.pub")))[2]
    ed = _fields(_blob(signer))[1]
    sk_ed = _string(SK_ED25519) + _string(ed) + _string("ssh:")
    ecdsa_fields = _string("nistp256") + _string(point) + _string("ssh:")
    made["sk-ed25519"] = _line(SK_ED25519, sk_ed)
    made["sk-ecdsa"] = _line(SK_ECDSA, _string(SK_ECDSA) + ecdsa_fields)
    made["webauthn"] = _line(WEBAUTHN, _string(WEBAUTHN) + ecdsa_fields)
    made["webauthn, sk-ecdsa blob"] = _line(WEBAUTHN, _string(SK_ECDSA) + ecdsa_fields)
    made["sk-ecdsa, webauthn blob"] = _line(SK_ECDSA, _string(WEBAUTHN) + ecdsa_fields)
    made["dsa"] = " ".join(Path(f"{keys['dsa']}.pub").read_text().split()[:2])
    for name in ("sk-ed25519", "sk-ecdsa", "dsa"):
        pub = folder / f"{name}.pub"
        pub.write_text(made[name] + "\n")
        certified = keygen("-q", "-s", ca, "-I", "id", "-n", "alice@x", pub)
        assert certified.returncode == 0, certified.stderr
        cert = " ".join((folder / f"{name}-cert.pub").read_text().split()[:2])
        made[f"{name} cert"] = cert
        # the same certificate, its CA signature's last byte changed
        key_type, text = cert.split()
        blob = base64.b64decode(text)
        made[f"{name} cert, bad signature"] = _line(key_type, blob[:-1] + bytes([blob[-1] ^ 1]))
    # webauthn-sk-ecdsa certificates do not exist: the name is no key type
    cert_type, cert_blob = made["sk-ecdsa cert"].split()
    name = WEBAUTHN.replace("@", "-cert-v01@")
    renamed = _string(name) + base64.b64decode(cert_blob)[4 + len(cert_type) :]
    made["webauthn cert"] = _line(name, renamed)
    return made


def _said(stderr: bytes, mine: bool, signers: Path) -> list[str]:
    """The complaints about lines, and match-principals' last word, in one wording:
    ssh-keygen's ``FILE:N: why`` is keytool's ``keytool: FILE line N: why`` (with
    "; line ignored" where it goes on). keytool's own explanation of a refusal, which
    ssh-keygen does not give, is left out."""
    out = []
    for line in stderr.decode().splitlines():
        if mine:
            line = line.removeprefix("keytool: ").removesuffix("; line ignored")
        else:
            path, sep, rest = line.partition(":")
            number, sep2, why = rest.partition(": ")
            if sep and sep2 and number.isdigit():
                line = f"{path} line {number}: {why}"
        if line.startswith(f"{signers} line ") or line == "No principal matched.":
            out.append(line)
    return out


def readings(
    signers: Path, sig: str, matched: tuple[str, str]
) -> list[tuple[list[str | Path], list[str | Path]]]:
    """The readings of ``signers`` both tools make, as (ssh-keygen's arguments,
    keytool's): verify as alice@x and as bob@x, find-principals, and match-principals
    for each of ``matched``."""
    return [
        (["-Y", "verify", "-f", signers, "-I", "alice@x", "-n", "file", "-s", sig],
         ["verify", "-f", signers, "-I", "alice@x", "-n", "file", "-s", sig]),
        (["-Y", "verify", "-f", signers, "-I", "bob@x", "-n", "file", "-s", sig],
         ["verify", "-f", signers, "-I", "bob@x", "-n", "file", "-s", sig]),
        (["-Y", "find-principals", "-f", signers, "-s", sig],
         ["verify", "--find-principals", "-f", signers, "-s", sig]),
        *(
            (["-Y", "match-principals", "-f", signers, "-I", who],
             ["verify", "--match-principals", "-f", signers, "-I", who])
            for who in matched
        ),
    ]  # fmt: skip


def _compare(signers: Path, sig: str) -> list[tuple[str, int]]:
    """Run every reading of ``signers`` through both tools; assert they agree."""
    results = []
    for theirs_args, mine_args in readings(signers, sig, ("alice@x", "bob@x")):
        theirs = keygen(*theirs_args, stdin=MESSAGE)
        mine = keytool(*map(str, mine_args), stdin=MESSAGE)
        assert b"Traceback" not in mine.stderr
        got = (mine.returncode, mine.stdout, _said(mine.stderr, True, signers))
        want = (theirs.returncode, theirs.stdout, _said(theirs.stderr, False, signers))
        assert got == want, mine_args
        results.append((theirs_args[1], theirs.returncode))
    return results


CASES = [
    "sk-ed25519",
    "sk-ecdsa",
    "webauthn",
    "webauthn, sk-ecdsa blob",
    "sk-ecdsa, webauthn blob",
    "dsa",
    "sk-ed25519 cert",
    "sk-ecdsa cert",
    "dsa cert",
    "sk-ed25519 cert, bad signature",
    "sk-ecdsa cert, bad signature",
    "dsa cert, bad signature",
    "webauthn cert",
]


@pytest.mark.parametrize("name", CASES)
def test_a_line_keytool_does_not_use(lines: dict[str, str], tmp_path: Path, name: str) -> None:
    """alice@x's line holds the key; a later line lets anyone at x sign with the
    ed25519 key that made the signature."""
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice@x {lines[name]}\n*@x {lines['signer']}\n")
    _compare(signers, lines["sig"])


@pytest.mark.parametrize(
    "options",
    ['namespaces="git"', "namespaces=git", "cert-authority", 'valid-before="20200101"', "bogus"],
)
@pytest.mark.parametrize("name", ["sk-ed25519", "webauthn", "sk-ecdsa cert"])
def test_options_of_such_a_line(
    lines: dict[str, str], tmp_path: Path, name: str, options: str
) -> None:
    """Their options are read as on any line: a bad one makes a bad line."""
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice@x {options} {lines[name]}\n*@x {lines['signer']}\n")
    _compare(signers, lines["sig"])


@pytest.mark.parametrize(
    "rest",
    ['namespaces="x AAAA', "ssh-ed25519", "foo", "foo AAAA bar", "ssh-ed25519 !!!"],
)
def test_a_key_ssh_keygen_cannot_read(lines: dict[str, str], tmp_path: Path, rest: str) -> None:
    """Said in ssh-keygen's words: "invalid options", "missing key", "invalid key"."""
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice@x {rest}\n*@x {lines['signer']}\n")
    _compare(signers, lines["sig"])


def test_only_the_signer_line_grants(lines: dict[str, str], tmp_path: Path) -> None:
    """With every such line and no line for the signer, no one is found."""
    signers = tmp_path / "allowed_signers"
    good = [n for n in CASES if "bad" not in n and n != "webauthn cert"]
    signers.write_text("".join(f"alice@x {lines[n]}\n" for n in good))
    outcome = dict(_compare(signers, lines["sig"]))
    assert outcome["find-principals"] != 0  # both tools found no one

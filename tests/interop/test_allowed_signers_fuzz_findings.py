"""allowed_signers lines on which keytool and ssh-keygen 9.2 once disagreed, found by
running both on generated files: lines with empty principals (``""``, ``,id``), a line
of one word or a carriage return (ssh-keygen cuts the principals at its newline:
principals, no key), the words for a bad ``valid-after`` time, a ``#`` or a lone word
where the key should be ("missing key" or "invalid key"), and certificates of ed25519
or ECDSA keys whose CA is a DSA key (whose signature ssh-keygen checks: so does
keytool now, for certificates of DSA keys too).

Each case runs ``ssh-keygen -Y verify / find-principals / match-principals`` and
``keytool verify`` on the same file; the status, the output and the complaints about
lines must agree (as tests/interop/test_allowed_signers_sk_lines.py compares them)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.interop.test_allowed_signers_sk_lines import _said, readings
from tests.interop.test_cli_sign import keygen, keytool, make_key

MESSAGE = b"release notes\n"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The signer's key line ("signer") and its signature's path ("sig"); "dsa-ca
    ed25519", "dsa-ca ecdsa" and "dsa-ca dsa": certificates of an ed25519, an ECDSA
    and a DSA key that ssh-keygen -s made with a DSA CA key (the DSA key itself), and
    each with its CA signature changed ("..., bad signature")."""
    folder = tmp_path_factory.mktemp("fuzz-findings")
    keys = {}
    for kind, bits in (("ed25519", "256"), ("ecdsa", "384"), ("dsa", "1024")):
        (folder / kind).mkdir()
        keys[kind] = make_key(folder / kind, kind, bits)
    signer = make_key(folder, "ed25519", "256")
    signed = keygen("-Y", "sign", "-f", signer, "-n", "file", stdin=MESSAGE)
    assert signed.returncode == 0, signed.stderr
    (folder / "msg.sig").write_bytes(signed.stdout)
    out = {"sig": str(folder / "msg.sig")}
    out["signer"] = " ".join(Path(f"{signer}.pub").read_text().split()[:2])
    for kind in ("ed25519", "ecdsa", "dsa"):
        certified = keygen(
            "-q", "-s", keys["dsa"], "-I", "id", "-n", "alice@x", f"{keys[kind]}.pub"
        )
        assert certified.returncode == 0, certified.stderr
        key_type, text = Path(f"{keys[kind]}-cert.pub").read_text().split()[:2]
        out[f"dsa-ca {kind}"] = f"{key_type} {text}"
        # the same certificate, the last byte of its CA signature changed
        blob = base64.b64decode(text)
        changed = base64.b64encode(blob[:-1] + bytes([blob[-1] ^ 1])).decode()
        out[f"dsa-ca {kind}, bad signature"] = f"{key_type} {changed}"
    return out


def _compare(signers: Path, sig: str) -> None:
    """Every reading of ``signers`` through both tools: they must agree."""
    for theirs_args, mine_args in readings(signers, sig, ("alice@x", "a,b")):
        theirs = keygen(*theirs_args, stdin=MESSAGE)
        mine = keytool(*map(str, mine_args), stdin=MESSAGE)
        assert b"Traceback" not in mine.stderr
        got = (mine.returncode, mine.stdout)
        want = (theirs.returncode, theirs.stdout)
        assert got == want, (mine_args, mine.stderr, theirs.stderr)
        if theirs.returncode == 0:  # keytool names the lines it ignored when it succeeds
            assert _said(mine.stderr, True, signers) == _said(theirs.stderr, False, signers)


# each: the lines before the signer's, {signer} its key
LINES = {
    # empty principals: the line matches, and names no one (find-principals succeeds
    # and prints nothing); a later line for the same key is not read
    "quoted empty principals": '"" {signer}\n',
    "an empty first principal": ",alice@x {signer}\n",
    "empty principals and options": '""valid-after="200101120000" {signer}\n',
    # one word, then the newline: principals, no key ("missing key"), not an invalid
    # line, and passed over when its principals do not match -I
    "a single word": "g\n",
    "a quoted single word": '"alice@x"\n',
    "a carriage return alone": "\r\n",
    "a bad valid-after time": 'alice@x valid-after="2020010" {signer}\n',
    "a bad valid-before time": '*@x valid-before="20201301" {signer}\n',
    "a hash where the key is": "alice@x #x\nalice@x #x y\n",
    # one word where the key should be: with blanks after it (before the newline) it
    # is an invalid key, else a missing one
    "a word, then blanks": "alice@x cert-authority \nalice@x AAAA\t\nalice@x AAAA\n",
    "a certificate of an ed25519 key by a DSA CA": "alice@x {dsa-ca ed25519}\n",
    "a certificate of an ECDSA key by a DSA CA": "alice@x {dsa-ca ecdsa}\n",
    "such a certificate with bad options": 'alice@x namespaces="a",namespaces="b" {dsa-ca ecdsa}\n',
    # the DSA CA's signature is checked, as by ssh-keygen: a bad one is an invalid key
    "a certificate by a DSA CA, its signature changed": "alice@x {dsa-ca ed25519, bad signature}\n",
    "a DSA certificate by a DSA CA, its signature changed": "alice@x {dsa-ca dsa, bad signature}\n",
    "a DSA certificate by a DSA CA": "alice@x {dsa-ca dsa}\n",
}


@pytest.mark.parametrize("name", list(LINES))
def test_finding(made: dict[str, str], tmp_path: Path, name: str) -> None:
    """The line, then one that lets anyone at x sign with the signer's key."""
    signers = tmp_path / "allowed_signers"
    lines = LINES[name]
    for key, value in made.items():
        lines = lines.replace(f"{{{key}}}", value)
    signers.write_text(f"{lines}*@x {made['signer']}\n")
    _compare(signers, made["sig"])


def test_a_last_word_without_newline(made: dict[str, str], tmp_path: Path) -> None:
    """A last line of one word and no newline is an invalid line for ssh-keygen."""
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"*@x {made['signer']}\nalice@x")
    _compare(signers, made["sig"])

"""``keytool krl`` against the real OpenSSH tools. Keys, CAs and certificates are made
by ssh-keygen and ssh-keygen -s. KRLs keytool writes are judged by ``ssh-keygen -Q``
(revoked exactly what the spec names, for every spec line kind) and by a real sshd's
RevokedKeys with the real ssh logging in; KRLs ssh-keygen writes (bitmaps, ranges,
lists, sparse 64-bit serials) are queried by ``keytool krl -Q`` with ssh-keygen -Q's
very output and exit status; -u keeps earlier revocations; bad KRLs and bad spec
lines are one line on stderr and leave the KRL file as it was."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from keytool.wire import Reader
from tests.cli import assert_clean_error, keytool
from tests.peers import ROOT, Sshd, require, run, ssh_login

# certificates of the user key "u": name -> (CA, serial, key ID)
CERTS = {
    "c5": ("ca", 5, "alice"),
    "c6": ("ca", 6, "bob"),
    "c15": ("ca", 15, "carol"),
    "c21": ("ca", 21, "dave"),
    "c0": ("ca", 0, "stolen"),
    "c5_ca2": ("ca2", 5, "stolen"),
}
PLAIN = ("u", "v", "w")


def keygen(*args: str | Path) -> str:
    done = run([require("ssh-keygen"), *args])
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Keys:
    folder: Path

    def pub(self, name: str) -> Path:
        """The file to query for ``name``: a .pub, or a certificate's -cert.pub."""
        suffix = "-cert.pub" if name in CERTS else ".pub"
        return self.folder / f"{name}{suffix}"

    def line(self, name: str) -> str:
        return self.pub(name).read_text().strip()

    def fingerprint(self, name: str) -> str:
        return keygen("-l", "-f", self.pub(name)).split()[1]

    def all(self) -> list[str]:
        return ["ca", *PLAIN, *CERTS]


def make_keys(folder: Path) -> Keys:
    folder.mkdir(parents=True, exist_ok=True)
    for name, kind in (("ca", "ed25519"), ("ca2", "ed25519"), *((n, "ed25519") for n in PLAIN)):
        keygen("-q", "-t", kind, "-N", "", "-C", f"{name} key", "-f", folder / name)
    # v is RSA: the explicit and hash revocations are checked on both key kinds
    (folder / "v").unlink()
    (folder / "v.pub").unlink()
    keygen("-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "v key", "-f", folder / "v")
    for name, (ca, serial, key_id) in CERTS.items():
        # a copy of u per certificate, so ssh finds NAME-cert.pub beside NAME
        shutil.copy(folder / "u", folder / name)
        shutil.copy(folder / "u.pub", folder / f"{name}.pub")
        (folder / name).chmod(0o600)
        keygen(
            "-q",
            "-s",
            folder / ca,
            "-I",
            key_id,
            "-n",
            "root",
            "-z",
            str(serial),
            folder / f"{name}.pub",
        )
    return Keys(folder)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("krl-keys"))


def keygen_query(krl: Path, files: list[Path]) -> tuple[int, str]:
    done = run([require("ssh-keygen"), "-Q", "-f", krl, *files])
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, done.stdout


def revoked_by_keygen(keys: Keys, krl: Path) -> set[str]:
    """The names ssh-keygen -Q says REVOKED, every other one saying ok."""
    names = keys.all()
    _, out = keygen_query(krl, [keys.pub(n) for n in names])
    lines = out.splitlines()
    assert len(lines) == len(names), out
    verdicts = {}
    for name, line in zip(names, lines, strict=True):
        assert line.startswith(f"{keys.pub(name)} ("), line
        verdicts[name] = line.rsplit(": ", 1)[1]
    assert set(verdicts.values()) <= {"ok", "REVOKED"}, verdicts
    return {name for name, verdict in verdicts.items() if verdict == "REVOKED"}


def assert_same_query(keys: Keys, krl: Path, names: list[str] | None = None) -> None:
    files = [keys.pub(n) for n in names or keys.all()]
    expected = keygen_query(krl, files)
    ours = keytool("krl", "-Q", "-f", krl, *files)
    assert ours.stderr == ""
    assert (ours.returncode, ours.stdout) == expected


U_CERTS = set(CERTS)
CA_CERTS = {n for n, (ca, _, _) in CERTS.items() if ca == "ca"}


# (spec lines, -s argument, what must be revoked); {NAME} is NAME's key line,
# {fp:NAME} its SHA256 fingerprint
SPECS = {
    "serial": ("serial: 5", "ca", {"c5"}),
    "range": ("serial: 10-20\nserial: 0x15  # 21", "ca", {"c15", "c21"}),
    "id": ("id: stolen", "ca", {"c0"}),
    "id any CA": ("id: stolen", "none", {"c0", "c5_ca2"}),
    "serial any CA": ("serial: 5", "none", {"c5", "c5_ca2"}),
    "key rsa": ("key: {v}", None, {"v"}),
    "key of certificates": ("key: {u}", None, {"u", *U_CERTS}),
    "key line of a certificate": ("key: {c6}", None, {"u", *U_CERTS}),
    "sha256": ("sha256: {w}", None, {"w"}),
    "sha1": ("sha1: {v}", None, {"v"}),
    "hash": ("# comment\n\nhash: {fp:v}", None, {"v"}),
    "hash of the CA": ("hash: {fp:ca}", None, {"ca", *CA_CERTS}),
    "certificate line": ("{c6}\n{c0}", None, {"c6", "c0"}),
    "public key line": ("{w}", None, {"w"}),
    "mixed": ("serial: 6\nid: dave\nkey: {w}\nhash: {fp:v}", "ca", {"c6", "c21", "w", "v"}),
    # a CR ends no line: the ID is "stolen\r", which no certificate has
    "id with a CR": ("id: stolen\r\nid: dave", "ca", {"c21"}),
    "key line with a CR": ("{w}\r", None, {"w"}),
    # strtoull takes a leading +, on either side of a range
    "serial with a plus": ("serial: +5\nserial: +0xf-+21", "ca", {"c5", "c15", "c21"}),
}


def fill(keys: Keys, text: str) -> str:
    for name in keys.all():
        text = text.replace(f"{{fp:{name}}}", keys.fingerprint(name))
        text = text.replace(f"{{{name}}}", keys.line(name))
    return text + "\n"


@pytest.mark.parametrize("case", list(SPECS))
def test_keytool_krl_revokes_exactly_what_ssh_keygen_sees(
    keys: Keys, tmp_path: Path, case: str
) -> None:
    text, ca, expected = SPECS[case]
    spec = tmp_path / "spec"
    spec.write_text(fill(keys, text))
    krl = tmp_path / "krl"
    ca_args = [] if ca is None else ["-s", "none" if ca == "none" else keys.folder / f"{ca}.pub"]
    made = keytool("krl", "-f", krl, *ca_args, spec)
    assert (made.returncode, made.stdout, made.stderr) == (0, f"Revoking from {spec}\n", "")
    assert revoked_by_keygen(keys, krl) == expected
    assert_same_query(keys, krl)
    # ssh-keygen given the same spec revokes the same keys
    theirs = tmp_path / "theirs"
    keygen("-k", "-f", theirs, *ca_args, spec)
    assert revoked_by_keygen(keys, theirs) == expected


def test_public_key_files_as_ssh_keygen_takes_them(keys: Keys, tmp_path: Path) -> None:
    krl = tmp_path / "krl"
    made = keytool("krl", "-q", "-f", krl, keys.pub("v"), keys.pub("c15"))
    assert (made.returncode, made.stdout, made.stderr) == (0, "", "")
    assert revoked_by_keygen(keys, krl) == {"v", "c15"}


def test_version_and_comment_as_ssh_keygen_dumps_them(keys: Keys, tmp_path: Path) -> None:
    krl = tmp_path / "krl"
    made = keytool(
        "krl", "-f", krl, "-z", "42", "-C", "weekly list", "-s", keys.folder / "ca.pub", "-"
    )
    assert made.returncode == 0, made.stderr
    dump = keygen("-Q", "-l", "-f", krl)
    assert "# KRL version 42\n" in dump
    assert "# Comment: weekly list\n" in dump


def test_a_version_with_a_plus_as_ssh_keygen_takes_it(keys: Keys, tmp_path: Path) -> None:
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    keygen("-k", "-q", "-z", "+5", "-f", theirs, keys.pub("u"))
    made = keytool("krl", "-q", "-z", "+5", "-f", ours, keys.pub("u"))
    assert (made.returncode, made.stderr) == (0, "")
    assert "# KRL version 5\n" in keygen("-Q", "-l", "-f", theirs)
    assert "# KRL version 5\n" in keygen("-Q", "-l", "-f", ours)


@pytest.mark.parametrize(
    "args", [("-k", "-z", "abc", "-f", "{dir}/k.krl", "{u}"), ("-Q", "{u}"), ("-k", "{u}")]
)
def test_a_usage_error_exits_255_as_ssh_keygen(
    keys: Keys, tmp_path: Path, args: tuple[str, ...]
) -> None:
    filled = [a.format(dir=tmp_path, u=keys.pub("u")) for a in args]
    theirs = run([require("ssh-keygen"), *filled], cwd=tmp_path)
    ours = keytool("krl", *filled, cwd=tmp_path)
    assert_clean_error(ours)
    assert ours.returncode == theirs.returncode == 255


# ---- KRLs ssh-keygen writes, read by keytool krl -Q

PROBE_SERIALS = [1, 2, 3, 4, 76, 77, 78, 499, 500, 501, 502, 732, 733, 734, 999, 1000, 1001]
PROBE_SERIALS += [4999, 5000, 6000, 6001, 7000, 7001, 7002, 7003, 8998, 9000, 1000003]
PROBE_SERIALS += [2**40, 2**40 + 1, 2**63 + 5, 2**64 - 2, 2**64 - 1]


@pytest.fixture(scope="module")
def probes(keys: Keys) -> list[Path]:
    """Certificates of u by the CA with every serial in PROBE_SERIALS."""
    folder = keys.folder / "probes"
    folder.mkdir()
    made = []
    for serial in PROBE_SERIALS:
        pub = folder / f"s{serial}.pub"
        shutil.copy(keys.folder / "u.pub", pub)
        keygen("-q", "-s", keys.folder / "ca", "-I", f"probe{serial}", "-z", str(serial), pub)
        made.append(folder / f"s{serial}-cert.pub")
    return made


def cert_section_kinds(data: bytes) -> set[int]:
    """The certificate subsection types in a KRL (PROTOCOL.krl §2)."""
    r = Reader(data)
    r.raw(8 + 4 + 8 + 8 + 8)
    r.string()
    r.string()
    kinds = set()
    while r.remaining:
        kind = r.byte()
        body = Reader(r.string())
        if kind == 1:
            body.string()
            body.string()
            while body.remaining:
                kinds.add(body.byte())
                body.string()
    return kinds


DENSE = [n for n in range(1, 1001) if n not in (77, 500, 501, 733)]
KEYGEN_SPECS = {
    "dense": ("\n".join(f"serial: {n}" for n in DENSE), {0x21, 0x22}),
    "every third": ("\n".join(f"serial: {n}" for n in range(7000, 9001, 3)), {0x22}),
    "sparse": (
        "serial: 3\nserial: 1000003\nserial: 1099511627776\nserial: 9223372036854775813\n"
        "serial: 18446744073709551615\nserial: 5000-6000\nserial: 2\n",
        {0x20, 0x21},
    ),
    "everything": (
        "serial: 1-500\nserial: 734\nid: probe999\nid: carol\nkey: {v}\nsha1: {w}\n"
        "serial: 1099511627777\n",
        {0x21, 0x23},
    ),
}


@pytest.mark.parametrize("case", list(KEYGEN_SPECS))
def test_keytool_queries_ssh_keygen_krls_as_ssh_keygen_does(
    keys: Keys, probes: list[Path], tmp_path: Path, case: str
) -> None:
    text, kinds = KEYGEN_SPECS[case]
    spec = tmp_path / "spec"
    spec.write_text(fill(keys, text))
    krl = tmp_path / "krl"
    keygen("-k", "-f", krl, "-s", keys.folder / "ca.pub", spec)
    assert kinds <= cert_section_kinds(krl.read_bytes())
    files = [*probes, *(keys.pub(n) for n in keys.all())]
    expected = keygen_query(krl, files)
    assert "REVOKED" in expected[1] and ": ok\n" in expected[1]
    ours = keytool("krl", "-Q", "-f", krl, *files)
    assert ours.stderr == ""
    assert (ours.returncode, ours.stdout) == expected
    # one file at a time: the exit status alone says revoked (1) or not (0)
    for probe in probes[:6]:
        assert keytool("krl", "-Q", "-f", krl, probe).returncode == keygen_query(krl, [probe])[0]


def test_keytool_rewrites_ssh_keygen_bitmaps_that_ssh_keygen_still_reads(
    keys: Keys, probes: list[Path], tmp_path: Path
) -> None:
    spec = tmp_path / "spec"
    spec.write_text("\n".join(f"serial: {n}" for n in [*DENSE, *range(7000, 9001, 3)]) + "\n")
    krl = tmp_path / "krl"
    keygen("-k", "-f", krl, "-s", keys.folder / "ca.pub", spec)
    before = keygen_query(krl, probes)
    empty = tmp_path / "empty"
    empty.write_text("")
    updated = keytool("krl", "-u", "-q", "-f", krl, empty)
    assert updated.returncode == 0, updated.stderr
    assert 0x22 in cert_section_kinds(krl.read_bytes())  # keytool writes bitmaps too
    assert keygen_query(krl, probes) == before


# ---- -u


def test_update_keeps_earlier_revocations(keys: Keys, tmp_path: Path) -> None:
    krl = tmp_path / "krl"
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("serial: 5\nid: carol\n")
    second.write_text(fill(keys, "key: {w}\nserial: 21"))
    ca = keys.folder / "ca.pub"
    assert keytool("krl", "-f", krl, "-s", ca, first).returncode == 0
    assert revoked_by_keygen(keys, krl) == {"c5", "c15"}
    updated = keytool("krl", "-u", "-f", krl, "-s", ca, second)
    assert updated.returncode == 0, updated.stderr
    assert revoked_by_keygen(keys, krl) == {"c5", "c15", "c21", "w"}
    # and a KRL ssh-keygen made, updated by keytool, and the other way round
    keygen("-k", "-f", krl, "-s", ca, first)
    assert keytool("krl", "-u", "-f", krl, "-s", ca, second).returncode == 0
    assert revoked_by_keygen(keys, krl) == {"c5", "c15", "c21", "w"}
    assert keytool("krl", "-f", krl, "-s", ca, first).returncode == 0
    keygen("-k", "-u", "-f", krl, "-s", ca, second)
    assert revoked_by_keygen(keys, krl) == {"c5", "c15", "c21", "w"}


def test_without_u_the_krl_is_replaced(keys: Keys, tmp_path: Path) -> None:
    krl = tmp_path / "krl"
    spec = tmp_path / "spec"
    spec.write_text("serial: 5\n")
    ca = keys.folder / "ca.pub"
    assert keytool("krl", "-f", krl, "-s", ca, spec).returncode == 0
    spec.write_text("serial: 6\n")
    assert keytool("krl", "-f", krl, "-s", ca, spec).returncode == 0
    assert revoked_by_keygen(keys, krl) == {"c6"}


# ---- bad input


def corrupt_krls(good: bytes) -> dict[str, bytes]:
    return {
        "truncated": good[:-3],
        "bad version": good[:8] + b"\0\0\0\2" + good[12:],
        "trailing byte": good + b"\x01",
        "unknown section": good + b"\x09\0\0\0\0",
    }


@pytest.mark.parametrize("case", ["truncated", "bad version", "trailing byte", "unknown section"])
def test_a_corrupt_krl_is_one_line_as_ssh_keygen_refuses_it(
    keys: Keys, tmp_path: Path, case: str
) -> None:
    krl = tmp_path / "krl"
    spec = tmp_path / "spec"
    spec.write_text("serial: 5\nid: x\n")
    keygen("-k", "-f", krl, "-s", keys.folder / "ca.pub", spec)
    bad = tmp_path / "bad"
    bad.write_bytes(corrupt_krls(krl.read_bytes())[case])
    theirs = run([require("ssh-keygen"), "-Q", "-f", bad, keys.pub("c5")])
    assert theirs.returncode not in (0, 1) and "Invalid KRL file" in theirs.stderr
    ours = keytool("krl", "-Q", "-f", bad, keys.pub("c5"))
    line = assert_clean_error(ours)
    assert ours.returncode == 255 and ours.stdout == ""
    assert line.startswith(f"keytool: invalid KRL file {bad}: "), line
    # -u on it: refused, the file left as it was
    before = bad.read_bytes()
    updated = keytool("krl", "-u", "-f", bad, "-s", keys.folder / "ca.pub", spec)
    assert "invalid KRL file" in assert_clean_error(updated)
    assert bad.read_bytes() == before


def test_a_text_file_is_not_a_krl(keys: Keys, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"ssh-ed25519 AAAA\n")
    line = assert_clean_error(keytool("krl", "-Q", "-f", bad, keys.pub("c5")))
    assert "not a KRL" in line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("serial: five", 'invalid serial "five"'),
        ("serial: 8\r", "invalid serial"),
        ("serial: 9-3", "invalid serial range 9:3"),
        ("hash: MD5:00:11", "unsupported hash algorithm"),
        ("key: ssh-ed25519 !!!", "invalid key"),
        ("something else", "invalid key"),
    ],
)
def test_a_bad_spec_line_names_file_and_line_and_changes_nothing(
    keys: Keys, tmp_path: Path, line: str, message: str
) -> None:
    ca = keys.folder / "ca.pub"
    krl = tmp_path / "krl"
    good = tmp_path / "good"
    good.write_text("serial: 5\n")
    assert keytool("krl", "-f", krl, "-s", ca, good).returncode == 0
    before = krl.read_bytes()
    spec = tmp_path / "spec"
    spec.write_text(f"serial: 6\n# fine so far\n{line}\nserial: 7\n")
    # ssh-keygen refuses the same line
    theirs = run([require("ssh-keygen"), "-k", "-f", tmp_path / "theirs", "-s", ca, spec])
    assert theirs.returncode != 0
    for update in ([], ["-u"]):
        result = keytool("krl", *update, "-q", "-f", krl, "-s", ca, spec)
        error = assert_clean_error(result)
        assert error.startswith(f"keytool: {spec}:3: "), error
        assert message in error
        assert krl.read_bytes() == before
    assert revoked_by_keygen(keys, krl) == {"c5"}


def test_serial_lines_without_a_ca_are_refused(keys: Keys, tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.write_text("serial: 5\n")
    line = assert_clean_error(keytool("krl", "-f", tmp_path / "krl", spec))
    assert "needs a CA key" in line
    assert not (tmp_path / "krl").exists()


def test_update_of_a_missing_krl_is_refused(tmp_path: Path) -> None:
    line = assert_clean_error(keytool("krl", "-u", "-f", tmp_path / "krl", "-"))
    assert "does not exist" in line
    assert not (tmp_path / "krl").exists()


# ---- the decisive one: sshd's RevokedKeys


@pytest.fixture
def revoking_server(keys: Keys, tmp_path: Path) -> Iterator[tuple[Sshd, Path, Path]]:
    """(sshd trusting the CA for users, with v and w in authorized_keys and the KRL
    as RevokedKeys, the KRL, known_hosts)."""
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(keys.line("v") + "\n" + keys.line("w") + "\n")
    krl = tmp_path / "revoked.krl"
    server = Sshd(
        tmp_path / "sshd",
        options={
            "TrustedUserCAKeys": str(keys.folder / "ca.pub"),
            "AuthorizedKeysFile": str(authorized),
            "RevokedKeys": str(krl),
        },
    )
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    with server:
        yield server, krl, known


def login(server: Sshd, keys: Keys, name: str, known: Path) -> bool:
    result = ssh_login(server.port, keys.folder / name, known, "echo logged-in")
    return (result.returncode, result.stdout) == (0, "logged-in\n")


def test_sshd_refuses_what_a_keytool_krl_revokes(
    keys: Keys, tmp_path: Path, revoking_server: tuple[Sshd, Path, Path]
) -> None:
    server, krl, known = revoking_server
    spec = tmp_path / "spec"
    spec.write_text(fill(keys, "serial: 5\nkey: {v}"))
    made = keytool("krl", "-f", krl, "-s", keys.folder / "ca.pub", spec)
    assert made.returncode == 0, made.stderr

    assert not login(server, keys, "c5", known)
    assert login(server, keys, "c6", known)
    assert not login(server, keys, "v", known)
    assert login(server, keys, "w", known)
    log = server.log.read_text()
    revoked = f"revoked by file {krl}"
    assert f"Authentication key ED25519-CERT {keys.fingerprint('c5')} {revoked}" in log
    assert f"Authentication key RSA {keys.fingerprint('v')} {revoked}" in log
    assert 'Accepted certificate ID "bob" (serial 6)' in log
    assert 'Accepted certificate ID "alice"' not in log
    assert "Error checking authentication key" not in log
    assert log.count(revoked) == 2

    # revoking the CA key by its hash, with -u: every certificate it signed goes
    spec.write_text(f"hash: {keys.fingerprint('ca')}\n")
    updated = keytool("krl", "-u", "-f", krl, spec)
    assert updated.returncode == 0, updated.stderr
    assert not login(server, keys, "c6", known)
    assert not login(server, keys, "v", known)  # still revoked after the update
    assert login(server, keys, "w", known)
    log = server.log.read_text()
    # sshd checks the certificate with its CA in one go, and names the certificate
    assert log.count(f"Authentication key ED25519-CERT {keys.fingerprint('u')} {revoked}") == 2
    assert log.count(f"Authentication key RSA {keys.fingerprint('v')} {revoked}") == 2
    assert len(re.findall(r"Accepted publickey for root .* ID bob \(serial 6\)", log)) == 1
    assert re.search(r"Failed publickey for root .* ED25519-CERT .* ID bob \(serial 6\)", log)
    assert "Error checking authentication key" not in log


def test_sshd_refuses_a_certificate_revoked_by_key_id_for_any_ca(
    keys: Keys, tmp_path: Path, revoking_server: tuple[Sshd, Path, Path]
) -> None:
    server, krl, known = revoking_server
    spec = tmp_path / "spec"
    spec.write_text("id: stolen\nid: carol\n")
    assert keytool("krl", "-f", krl, "-s", "none", spec).returncode == 0
    assert not login(server, keys, "c0", known)
    assert not login(server, keys, "c15", known)
    assert login(server, keys, "c21", known)
    log = server.log.read_text()
    assert log.count(f"Authentication key ED25519-CERT {keys.fingerprint('u')} revoked") == 2
    assert 'Accepted certificate ID "dave" (serial 21)' in log


def test_a_key_file_that_does_not_load_stops_the_query_as_ssh_keygen(
    keys: Keys, tmp_path: Path
) -> None:
    krl = tmp_path / "krl"
    spec = tmp_path / "spec"
    spec.write_text("serial: 5\n")
    keygen("-k", "-f", krl, "-s", keys.folder / "ca.pub", spec)
    missing = tmp_path / "missing.pub"
    theirs = run([require("ssh-keygen"), "-Q", "-f", krl, keys.pub("c5"), missing])
    ours = keytool("krl", "-Q", "-f", krl, keys.pub("c5"), missing)
    assert ours.returncode == theirs.returncode == 255
    # ssh-keygen's own line is lost in its stdio buffer when it exits on the error
    assert ours.stdout == f"{keys.pub('c5')} (u key): REVOKED\n"
    assert str(missing) in assert_clean_error(ours)


# ---- key IDs that are not UTF-8


def odd_id_certificate(folder: Path) -> Path:
    """A certificate of u by ca (no serial) whose key ID is the bytes b"id\\xff"."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "u"):
        keygen("-q", "-t", "ed25519", "-N", "", "-C", f"{name} key", "-f", folder / name)
    keygen("-q", "-s", folder / "ca", "-I", os.fsdecode(b"id\xff"), folder / "u.pub")
    return folder / "u-cert.pub"


@pytest.mark.parametrize(
    ("line", "revoked"), [(b"id: other", False), (b"id: id\xfe", False), (b"id: id\xff", True)]
)
def test_a_key_id_that_is_not_utf8_is_compared_as_bytes(
    tmp_path: Path, line: bytes, revoked: bool
) -> None:
    from keytool import revokedkeys
    from keytool.keys.pubfile import parse_public_text

    cert = odd_id_certificate(tmp_path / "keys")
    spec = tmp_path / "spec"
    spec.write_bytes(line + b"\n")
    ca = tmp_path / "keys" / "ca.pub"
    ours, theirs = tmp_path / "ours.krl", tmp_path / "theirs.krl"
    assert keytool("krl", "-q", "-s", ca, "-f", ours, spec).returncode == 0
    keygen("-k", "-q", "-s", ca, "-f", theirs, spec)
    for krl in (ours, theirs):
        expected = keygen_query(krl, [cert])
        assert expected[0] == int(revoked)
        # ssh-keygen's verdict on either KRL is keytool's, and the client's
        # RevokedHostKeys check (revokedkeys) says the same
        query = keytool("krl", "-Q", "-f", krl, cert)
        assert (query.returncode, query.stdout, query.stderr) == (*expected, "")
        key, _ = parse_public_text(cert.read_bytes())
        assert (revokedkeys.revocation(krl.read_bytes(), key) is not None) is revoked


# ---- pipes, devices, modes, stdout

TOOLS = {"ssh-keygen": ["ssh-keygen"], "keytool": [sys.executable, "-m", "keytool", "krl"]}


def in_bash(folder: Path, command: str, tool: str) -> CompletedProcess[str]:
    """``command`` run by bash in ``folder`` with "$@" as ``tool`` (ssh-keygen or keytool
    krl): process substitution, pipes and umask as a shell user writes them."""
    args = [require(a) if a == "ssh-keygen" else a for a in TOOLS[tool]]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return run([require("bash"), "-c", command, "bash", *args], cwd=folder, env=env)


@pytest.mark.parametrize(
    "command",
    [
        '"$@" -Q -f <(cat o.krl) u.pub',
        'cat o.krl | "$@" -Q -f /dev/stdin u.pub',
        '"$@" -Q -f o.krl <(cat u.pub) v.pub',
        '"$@" -Q -f o.krl <(cat v.pub)',
        '"$@" -k -f k.krl <(cat u.pub) && "$@" -Q -f k.krl u.pub v.pub',
        '"$@" -k -f /dev/null u.pub && test -c /dev/null',
        '"$@" -q -k -f /dev/stdout u.pub > k.krl && "$@" -Q -f k.krl u.pub v.pub',
        '"$@" -q -k -f /dev/stdout u.pub | cat > k.krl && "$@" -Q -f k.krl u.pub v.pub',
    ],
)
def test_pipes_and_devices_as_ssh_keygen_takes_them(
    keys: Keys, tmp_path: Path, command: str
) -> None:
    for name in ("u", "v"):
        shutil.copy(keys.pub(name), tmp_path / f"{name}.pub")
    keygen("-k", "-q", "-f", tmp_path / "o.krl", tmp_path / "u.pub")
    theirs = in_bash(tmp_path, command, "ssh-keygen")
    assert theirs.returncode in (0, 1), theirs.stderr
    ours = in_bash(tmp_path, command, "keytool")
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, "")


@pytest.mark.parametrize("umask", ["077", "022", "002", "027"])
def test_a_new_krl_takes_the_umask_and_an_existing_one_keeps_its_mode(
    keys: Keys, tmp_path: Path, umask: str
) -> None:
    shutil.copy(keys.pub("u"), tmp_path / "u.pub")
    krl = tmp_path / "k.krl"
    modes = {}
    for tool in TOOLS:
        krl.unlink(missing_ok=True)
        seen = []
        for prepare, flags in ((None, ""), (0o640, "-u"), (0o604, "")):
            if prepare is not None:
                krl.chmod(prepare)
            done = in_bash(tmp_path, f'umask {umask} && "$@" -k {flags} -q -f k.krl u.pub', tool)
            assert done.returncode == 0, done.stderr
            seen.append(oct(krl.stat().st_mode))
        modes[tool] = seen
    assert modes["keytool"] == modes["ssh-keygen"]


def full_stdout(args: list[str | Path]) -> CompletedProcess[str]:
    """``args`` with stdout on /dev/full: every write to it fails."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [str(a) for a in args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60
        )


@pytest.mark.parametrize("name", ["u", "v"])
def test_a_query_that_cannot_print_is_255_never_revoked(
    keys: Keys, tmp_path: Path, name: str
) -> None:
    krl = tmp_path / "o.krl"
    keygen("-k", "-q", "-f", krl, keys.pub("u"))
    theirs = full_stdout([require("ssh-keygen"), "-Q", "-f", krl, keys.pub(name)])
    assert theirs.returncode in (0, 1)  # ssh-keygen does not notice
    ours = full_stdout([sys.executable, "-m", "keytool", "krl", "-Q", "-f", krl, keys.pub(name)])
    assert ours.returncode == 255
    assert assert_clean_error(ours) == (
        "keytool: cannot write to standard output: No space left on device"
    )


def test_a_krl_is_written_though_revoking_from_cannot_be_printed(
    keys: Keys, tmp_path: Path
) -> None:
    theirs, ours = tmp_path / "theirs.krl", tmp_path / "ours.krl"
    assert full_stdout([require("ssh-keygen"), "-k", "-f", theirs, keys.pub("u")]).returncode == 0
    made = full_stdout([sys.executable, "-m", "keytool", "krl", "-f", ours, keys.pub("u")])
    assert made.returncode == 255 and "standard output" in assert_clean_error(made)
    assert keygen_query(ours, [keys.pub("u")]) == keygen_query(theirs, [keys.pub("u")])

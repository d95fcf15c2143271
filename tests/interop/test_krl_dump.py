"""``keytool krl -Q -l`` against ssh-keygen -Q -l: KRLs made by the real ssh-keygen -k
with every section kind (serial lists, ranges and bitmaps, key IDs, explicit keys,
SHA1 and SHA256 hashes, one CA's and any CA's sections, with and without -z and -C)
print byte for byte what ssh-keygen prints for them, in the same time zone and locale;
a bad KRL is one line on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import assert_clean_error, keytool
from tests.peers import require, run

LOCALES = {"C": {"LC_ALL": "C"}, "UTF-8": {"LANG": "C.UTF-8"}}


def keygen(*args: str | Path) -> str:
    done = run([require("ssh-keygen"), *args])
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("krldump")
    for name, kind in (("ca", "ed25519"), ("ca2", "ecdsa"), ("u", "ed25519"), ("v", "rsa")):
        keygen("-q", "-t", kind, "-N", "", "-C", f"{name} key", "-f", folder / name)
    return folder


def env_for(locale: str) -> dict[str, str]:
    """Only what both tools read: the path, UTC, the locale."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", **LOCALES[locale]}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def both(
    krl: Path, *files: Path, locale: str = "C"
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    args = ["krl", "-Q", "-l", "-f", str(krl), *map(str, files)]
    cwd = Path(__file__).resolve().parents[2]
    theirs = subprocess.run(
        [require("ssh-keygen"), *args[1:]], capture_output=True, env=env_for(locale), timeout=60
    )
    ours = subprocess.run(
        [sys.executable, "-m", "keytool", *args],
        capture_output=True,
        env=env_for(locale),
        timeout=60,
        cwd=cwd,
    )
    return theirs, ours


def make_krl(folder: Path, name: str, spec: str, *options: str | Path) -> Path:
    (folder / f"{name}.spec").write_bytes(spec.encode("utf-8", "surrogateescape"))
    krl = folder / f"{name}.krl"
    keygen("-k", "-f", krl, *options, folder / f"{name}.spec")
    return krl


def line(keys: Path, name: str) -> str:
    return (keys / f"{name}.pub").read_text().strip()


def fingerprint(keys: Path, name: str) -> str:
    return keygen("-l", "-f", keys / f"{name}.pub").split()[1]


def specs(keys: Path) -> dict[str, tuple[str, list[str | Path]]]:
    ca = ["-s", keys / "ca.pub"]
    sparse = "".join(f"serial: {n}\n" for n in (3, 1000, 50000, 2**40))
    dense = "".join(f"serial: {n}\n" for n in range(1, 200, 3))  # ssh-keygen: a bitmap
    return {
        "serial list": (sparse, ca),
        "ranges": ("serial: 10-500\nserial: 501-600\nserial: 9000-2000000\n", ca),
        "bitmap": (dense, ca),
        "mixed serials": (sparse + dense + "serial: 100000-100100\n", ca),
        "key ids": ("id: alice\nid: bob smith\nid: Zed\nid: 42\n", ca),
        "serials and ids": ("serial: 7\nid: carol\n", ["-z", "12", *ca]),
        "explicit keys": (f"key: {line(keys, 'u')}\nkey: {line(keys, 'v')}\n", []),
        "sha1": (f"sha1: {line(keys, 'u')}\nsha1: {line(keys, 'v')}\n", []),
        "sha256": (f"sha256: {line(keys, 'u')}\nsha256: {line(keys, 'v')}\n", []),
        "hash": (f"hash: {fingerprint(keys, 'v')}\nhash: {fingerprint(keys, 'u')}\n", []),
        "any CA": ("serial: 5\nserial: 8-90\nid: anyone\n", ["-s", "none"]),
        "version and comment": (
            f"serial: 4\nkey: {line(keys, 'u')}\n",
            ["-z", "18446744073709551615", "-C", "revoked by the ops team", *ca],
        ),
        "nothing": ("", []),
        "nothing but a comment": ("", ["-C", "empty list", "-z", "3"]),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "serial list",
        "ranges",
        "bitmap",
        "mixed serials",
        "key ids",
        "serials and ids",
        "explicit keys",
        "sha1",
        "sha256",
        "hash",
        "any CA",
        "version and comment",
        "nothing",
        "nothing but a comment",
    ],
)
def test_dump_is_ssh_keygens(keys: Path, tmp_path: Path, kind: str) -> None:
    spec, options = specs(keys)[kind]
    krl = make_krl(tmp_path, "k", spec, *options)
    theirs, ours = both(krl)
    assert theirs.returncode == 0, theirs.stderr
    assert len(theirs.stdout.splitlines()) >= 3
    assert ours.stderr == b""
    assert (ours.returncode, ours.stdout) == (0, theirs.stdout)


def test_every_section_in_one_krl_with_queries(keys: Path, tmp_path: Path) -> None:
    """Two CAs (in the order they came, one CA's later lines merged into its section),
    any CA, keys and hashes in one KRL grown with -u, then the per-key answers."""
    parts = {name: spec for name, (spec, _) in specs(keys).items()}
    krl = make_krl(tmp_path, "k", parts["mixed serials"], "-s", keys / "ca2.pub")
    for spec, options in (
        (parts["ranges"], ["-s", keys / "ca.pub"]),
        (parts["any CA"], ["-s", "none"]),
        (parts["explicit keys"] + parts["sha1"] + parts["sha256"], []),
        (parts["key ids"], ["-s", keys / "ca2.pub", "-C", "all kinds"]),
    ):
        (tmp_path / "more.spec").write_text(spec)
        keygen("-k", "-u", "-f", krl, *options, tmp_path / "more.spec")
    theirs, ours = both(krl, keys / "u.pub", keys / "ca.pub")
    assert theirs.returncode == 1  # u is revoked
    assert b"# Wildcard CA" in theirs.stdout and theirs.stdout.count(b"# CA key") == 2
    assert (ours.returncode, ours.stdout, ours.stderr) == (1, theirs.stdout, theirs.stderr)


@pytest.mark.parametrize("locale", ["C", "UTF-8"])
def test_comment_and_key_ids_are_escaped_as_ssh_keygen_does(
    keys: Path, tmp_path: Path, locale: str
) -> None:
    """Tabs, control bytes, DEL, invalid UTF-8 and non-ASCII letters in the comment and
    the key IDs: octal escapes as ssh-keygen's for the same locale."""
    ids = "id: tab\there\nid: caf\u00e9 \u00fcber\nid: bad\udcff\x01x\nid: del\x7f\n"
    ids += "id: \u65e5\u672c\nid: nbsp\u00a0shy\u00adzwsp\u200b\n"
    krl = make_krl(tmp_path, "odd", ids, "-s", keys / "ca.pub", "-C", "c\tom\u00e9\x02 end")
    theirs, ours = both(krl, locale=locale)
    assert theirs.returncode == 0, theirs.stderr
    assert b"\\011" in theirs.stdout  # it did escape the tab
    assert (ours.returncode, ours.stdout) == (0, theirs.stdout)


def test_generated_time_follows_tz(keys: Path, tmp_path: Path) -> None:
    krl = make_krl(tmp_path, "k", "serial: 1\n", "-s", keys / "ca.pub")
    for zone in ("UTC", "Asia/Tokyo", "America/New_York"):
        env = {"TZ": zone}
        theirs = run([require("ssh-keygen"), "-Q", "-l", "-f", krl], env={**os.environ, **env})
        ours = keytool("krl", "-Q", "-l", "-f", krl, env=env)
        assert theirs.returncode == ours.returncode == 0
        assert ours.stdout == theirs.stdout


def test_a_bad_krl_is_one_line(keys: Path, tmp_path: Path) -> None:
    good = make_krl(tmp_path, "k", "serial: 1-9\n", "-s", keys / "ca.pub").read_bytes()
    for name, data in (("cut", good[:-3]), ("text", b"serial: 1\n"), ("empty", b"")):
        bad = tmp_path / f"{name}.krl"
        bad.write_bytes(data)
        theirs, ours = both(bad)
        assert theirs.returncode != 0 and theirs.stdout == b""
        assert ours.stdout == b""
        result = keytool("krl", "-Q", "-l", "-f", bad)
        line = assert_clean_error(result)
        assert str(bad) in line


def test_l_needs_q(keys: Path, tmp_path: Path) -> None:
    krl = make_krl(tmp_path, "k", "serial: 1\n", "-s", keys / "ca.pub")
    assert_clean_error(keytool("krl", "-l", "-f", krl, keys / "u.pub"))


def handmade_krl(path: Path, *sections: tuple[Path | None, bytes, bytes]) -> Path:
    """A KRL with certificate sections ssh-keygen never writes: (CA public key file or
    None for any CA, reserved string, subsections)."""
    import base64
    import struct

    def string(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    out = b"SSHKRL\n\0" + struct.pack(">IQQQ", 1, 1, 1700000000, 0) + string(b"") * 2
    for ca, reserved, body in sections:
        blob = base64.b64decode(ca.read_text().split()[1]) if ca else b""
        out += b"\1" + string(string(blob) + string(reserved) + body)
    path.write_bytes(out)
    return path


def test_a_ca_section_revoking_nothing_is_no_section(keys: Path, tmp_path: Path) -> None:
    """An empty bitmap, list or ID list, or only a reserved string: OpenSSH makes a CA's
    scope when something is revoked in it, so -Q -l shows none and -u writes none."""
    import struct

    serial = struct.pack(">Q", 7)
    empty_bitmap = b"\x22" + struct.pack(">I", 12) + struct.pack(">Q", 5) + b"\0" * 4
    cases = {
        "empty bitmap": [(keys / "ca.pub", b"", empty_bitmap)],
        "reserved only": [(keys / "ca.pub", b"junk", b"")],
        "empty lists": [(None, b"", b"\x20\0\0\0\0\x23\0\0\0\0")],
        # the scope comes where its first revocation is: ca2's first, then ca's
        "empty, then another CA, then it again": [
            (keys / "ca.pub", b"", empty_bitmap),
            (keys / "ca2.pub", b"", b"\x20" + struct.pack(">I", 8) + serial),
            (keys / "ca.pub", b"", b"\x20" + struct.pack(">I", 8) + struct.pack(">Q", 9)),
        ],
    }
    for name, sections in cases.items():
        krl = handmade_krl(tmp_path / f"{name}.krl", *sections)
        theirs, ours = both(krl)
        assert theirs.returncode == 0, theirs.stderr
        assert (ours.returncode, ours.stdout, ours.stderr) == (0, theirs.stdout, b""), name
        # rewritten with -u: the same bytes as ssh-keygen -u writes
        (tmp_path / "nothing").write_text("")
        copy = tmp_path / "copy.krl"
        copy.write_bytes(krl.read_bytes())
        keygen("-k", "-u", "-q", "-f", copy, tmp_path / "nothing")
        updated = keytool("krl", "-u", "-q", "-f", krl, tmp_path / "nothing")
        assert updated.returncode == 0, updated.stderr
        assert krl.read_bytes() == copy.read_bytes(), name

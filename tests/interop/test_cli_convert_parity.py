"""``keytool fingerprint`` / ``export`` / ``import`` side by side with ``ssh-keygen -l``,
``-r``, ``-e`` and ``-i`` on the files they used to part ways on: DSA and security keys
in key lists, pipes as -f, certificates as PKCS8, encrypted keys without a .pub, key
lists whose first line is no key, RFC4716 files without BEGIN or END, PEM files with
text or other blocks around the key, NUL bytes in a line."""

from __future__ import annotations

import base64
import shlex
import subprocess
from pathlib import Path

import pytest

from keytool.wire import Reader, Writer
from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require, run


def both(
    keytool_args: list[str], keygen_args: list[str], stdin: bytes = b""
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    """keytool and ssh-keygen run alike (no terminal: a passphrase comes from stdin)."""
    done = []
    for command in ([*KEYTOOL, *keytool_args], [require("ssh-keygen"), *keygen_args]):
        done.append(
            subprocess.run(
                command,
                input=stdin,
                capture_output=True,
                env=base_env(),
                timeout=60,
                start_new_session=True,
            )
        )
    return done[0], done[1]


def same(keytool_args: list[str], keygen_args: list[str], stdin: bytes = b"") -> bytes:
    ours, theirs = both(keytool_args, keygen_args, stdin)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), ours.stderr
    assert b"Traceback" not in ours.stderr
    return ours.stdout


def one_line_error(keytool_args: list[str], keygen_args: list[str], name: str) -> str:
    """Both fail with the same status and no output; ours says so in one line naming the file."""
    ours, theirs = both(keytool_args, keygen_args)
    assert theirs.returncode != 0 and ours.returncode == theirs.returncode
    assert ours.stdout == theirs.stdout == b""
    lines = ours.stderr.decode().splitlines()
    assert len(lines) == 1 and name in lines[0] and "https://" not in lines[0], lines
    return lines[0]


def keygen(path: Path, kind: str, comment: str, *extra: str) -> Path:
    run([require("ssh-keygen"), "-q", "-t", kind, *extra, "-C", comment, "-f", path])
    return path


def key_line(path: Path) -> str:
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def sk_lines(folder: Path) -> list[str]:
    """Security-key public lines made from ordinary keys' points, as a FIDO token's
    key reads (no token needed to list or convert a public key)."""
    ed = keygen(folder / "for_sk_ed", "ed25519", "x", "-N", "")
    ec = keygen(folder / "for_sk_ec", "ecdsa", "x", "-N", "", "-b", "256")
    r = Reader(base64.b64decode(key_line(ed).split()[1]))
    r.string()
    ed_blob = Writer().string("sk-ssh-ed25519@openssh.com").string(r.string()).string("ssh:")
    r = Reader(base64.b64decode(key_line(ec).split()[1]))
    r.string()
    curve, point = r.string(), r.string()
    ec_blob = Writer().string("sk-ecdsa-sha2-nistp256@openssh.com").string(curve).string(point)
    ec_blob.string("ssh:")
    return [
        f"sk-ssh-ed25519@openssh.com {base64.b64encode(ed_blob.getvalue()).decode()} sk ed",
        f"sk-ecdsa-sha2-nistp256@openssh.com {base64.b64encode(ec_blob.getvalue()).decode()} skec",
    ]


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    made = {
        "ed": keygen(tmp_path / "id_ed", "ed25519", "ed key", "-N", ""),
        "rsa": keygen(tmp_path / "id_rsa", "rsa", "rsa key", "-N", "", "-b", "2048"),
        "dsa": keygen(tmp_path / "id_dsa", "dsa", "dsa key", "-N", ""),
    }
    sk_ed, sk_ec = sk_lines(tmp_path)
    (tmp_path / "sk.pub").write_text(f"{sk_ec}\n{sk_ed}\n")
    made["sk"] = tmp_path / "sk.pub"
    made["sk_ec"] = tmp_path / "sk_ec.pub"
    made["sk_ec"].write_text(f"{sk_ec}\n")
    made["dsa_pub"] = Path(f"{made['dsa']}.pub")
    authorized = tmp_path / "authorized_keys"
    pub = {name: Path(f"{made[name]}.pub").read_text() for name in ("ed", "dsa", "rsa")}
    authorized.write_text(
        f"{pub['ed']}no-touch-required {sk_ed}\nrestrict {pub['dsa']}{sk_ec}\n{pub['rsa']}"
    )
    made["authorized"] = authorized
    known = tmp_path / "known_hosts"
    known.write_text(
        f"host1,10.0.0.1 {key_line(made['dsa'])}\n[h]:2222 {sk_ed}\nhost2 {key_line(made['ed'])}\n"
    )
    made["known"] = known
    return made


# ---- 1. DSA and security keys are listed, exported and given SSHFP as by ssh-keygen


@pytest.mark.parametrize("name", ["sk", "sk_ec", "dsa_pub", "dsa", "authorized", "known"])
@pytest.mark.parametrize("flags", [[], ["-v"], ["-E", "md5"], ["-B"]])
def test_fingerprint_lists_dsa_and_security_keys(
    keys: dict[str, Path], name: str, flags: list[str]
) -> None:
    file = str(keys[name])
    out = same(["fingerprint", *flags, "-f", file], ["-l", *flags, "-f", file])
    assert b"(DSA)" in out or b"-SK)" in out


@pytest.mark.parametrize("name", ["sk", "sk_ec", "dsa_pub", "dsa"])
@pytest.mark.parametrize("fmt", ["RFC4716", "PKCS8", "PEM"])
def test_export_dsa_and_security_keys(keys: dict[str, Path], name: str, fmt: str) -> None:
    file = str(keys[name])
    ours, theirs = both(["export", "-m", fmt, "-f", file], ["-e", "-m", fmt, "-f", file])
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), ours.stderr
    if theirs.returncode:  # no PKCS8 or PEM form of a security key
        assert name.startswith("sk") and len(ours.stderr.splitlines()) == 1
        return
    exported = keys["ed"].parent / "exported"
    exported.write_bytes(ours.stdout)
    path = str(exported)
    imported, reference = both(["import", "-m", fmt, "-f", path], ["-i", "-m", fmt, "-f", path])
    assert imported.stdout == f"{key_line(keys[name].with_suffix(''))}\n".encode()
    if reference.returncode == 0:
        assert reference.stdout == imported.stdout
    else:  # ssh-keygen -i -m PEM reads only RSA's PKCS#1 form; keytool reads this too
        assert fmt == "PEM"


@pytest.mark.parametrize("name", ["sk", "sk_ec", "dsa_pub", "dsa", "authorized"])
@pytest.mark.parametrize("generic", [[], ["-g"]])
def test_sshfp_of_dsa_and_security_keys(
    keys: dict[str, Path], name: str, generic: list[str]
) -> None:
    file = str(keys[name])
    ours, theirs = both(
        ["fingerprint", "-r", "h.", *generic, "-f", file], ["-r", "h.", *generic, "-f", file]
    )
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (0, ours.stdout)
    # a security key has no SSHFP algorithm: nothing written, said on stderr, status 0
    assert bool(ours.stdout) != bool(ours.stderr), ours.stderr


# ---- 2. pipes, FIFOs, /dev/stdin as -f


def piped(args: list[str], source: Path) -> list[str]:
    """``args`` with the last one read through ``<(cat FILE)``."""
    return [*args, f"<(cat {shlex.quote(str(source))})"]


@pytest.mark.parametrize(
    ("ours", "theirs", "name"),
    [
        (["fingerprint", "-f"], ["-l", "-f"], "authorized"),
        (["fingerprint", "-f"], ["-l", "-f"], "sk"),
        (["fingerprint", "-r", "h", "-f"], ["-r", "h", "-f"], "authorized"),
        (["export", "-f"], ["-e", "-f"], "authorized"),
        (["export", "-m", "PKCS8", "-f"], ["-e", "-m", "PKCS8", "-f"], "dsa_pub"),
        (["fingerprint", "-f"], ["-l", "-f"], "ed"),  # a private key: not read from a pipe
    ],
)
def test_pipes_are_read_as_ssh_keygen_reads_them(
    keys: dict[str, Path], ours: list[str], theirs: list[str], name: str
) -> None:
    keytool_line = shlex.join([*KEYTOOL, *ours[:-1]]) + " " + " ".join(piped(ours[-1:], keys[name]))
    keygen_line = (
        shlex.join([require("ssh-keygen"), *theirs[:-1]])
        + " "
        + " ".join(piped(theirs[-1:], keys[name]))
    )
    done = [
        subprocess.run(["bash", "-c", line], capture_output=True, env=base_env(), timeout=60)
        for line in (keytool_line, keygen_line)
    ]
    assert (done[0].returncode, done[0].stdout) == (done[1].returncode, done[1].stdout)
    assert len(done[0].stderr.splitlines()) == (1 if done[1].returncode else 0), done[0].stderr


def test_a_fifo_and_dev_stdin_are_read(keys: dict[str, Path], tmp_path: Path) -> None:
    text = keys["authorized"].read_bytes()
    same(["fingerprint", "-f", "/dev/stdin"], ["-l", "-f", "/dev/stdin"], text)
    rfc = same(["export", "-f", str(keys["ed"])], ["-e", "-f", str(keys["ed"])])
    same(["import", "-f", "/dev/stdin"], ["-i", "-f", "/dev/stdin"], rfc)
    fifo = tmp_path / "fifo"
    import os

    os.mkfifo(fifo)
    outs = []
    for command in (
        [*KEYTOOL, "fingerprint", "-f", str(fifo)],
        [require("ssh-keygen"), "-lf", str(fifo)],
    ):
        reader = subprocess.Popen(command, stdout=subprocess.PIPE, env=base_env())
        fifo.write_bytes(text)
        outs.append((reader.communicate(timeout=60)[0], reader.returncode))
    assert outs[0] == outs[1] and outs[0][1] == 0


def test_a_directory_is_still_refused(tmp_path: Path) -> None:
    for ours, theirs in ((["fingerprint"], ["-l"]), (["export"], ["-e"]), (["import"], ["-i"])):
        done, reference = both([*ours, "-f", str(tmp_path)], [*theirs, "-f", str(tmp_path)])
        assert done.returncode == reference.returncode != 0 and done.stdout == b""
        assert len(done.stderr.splitlines()) == 1


# ---- 3. a certificate as PKCS8 and PEM


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
@pytest.mark.parametrize("fmt", ["RFC4716", "PKCS8", "PEM"])
def test_export_of_a_certificate(tmp_path: Path, kind: str, fmt: str) -> None:
    ca = keygen(tmp_path / "ca", "ed25519", "ca", "-N", "")
    key = keygen(tmp_path / "id", kind, "k", "-N", "")
    run([require("ssh-keygen"), "-q", "-s", ca, "-I", "id", f"{key}.pub"])
    cert = str(tmp_path / "id-cert.pub")
    out = same(["export", "-m", fmt, "-f", cert], ["-e", "-m", fmt, "-f", cert])
    assert out


# ---- 4. an encrypted private key without a .pub: -P, or asked


@pytest.mark.parametrize("form", [["-m", "PEM"], ["-m", "PKCS8"], []])
def test_export_of_an_encrypted_key_without_pub(tmp_path: Path, form: list[str]) -> None:
    key = keygen(tmp_path / "lonely", "rsa", "c", "-N", "secret", "-b", "2048", *form)
    Path(f"{key}.pub").unlink()
    for fmt in ("RFC4716", "PKCS8"):
        m = ["-m", fmt]
        assert same(
            ["export", *m, "-P", "secret", "-f", str(key)],
            ["-e", *m, "-P", "secret", "-f", str(key)],
        )
        # asked for it: without a terminal, the answer is read from stdin, as ssh-keygen
        assert same(["export", *m, "-f", str(key)], ["-e", *m, "-f", str(key)], b"secret\n")
    if form:  # an openssh-key-v1 file tells its public key without the passphrase
        one_line_error(
            ["export", "-P", "wrong", "-f", str(key)],
            ["-e", "-P", "wrong", "-f", str(key)],
            key.name,
        )


# ---- 5. the first key line that parses


def test_export_takes_the_first_line_that_is_a_key(keys: dict[str, Path], tmp_path: Path) -> None:
    rsa, ed = Path(f"{keys['rsa']}.pub").read_text(), Path(f"{keys['ed']}.pub").read_text()
    for i, text in enumerate(
        [
            f"restrict {rsa}{ed}",  # options first: not a key line
            f"garbage\n{rsa}",
            f"# note\n\n{ed}",
            f"{keys['dsa_pub'].read_text()}{rsa}",  # DSA first: that one
            f"  {ed}",
        ]
    ):
        path = tmp_path / f"list{i}"
        path.write_text(text)
        for fmt in ("RFC4716", "PKCS8"):
            same(["export", "-m", fmt, "-f", str(path)], ["-e", "-m", fmt, "-f", str(path)])


# ---- 6. RFC4716 without its BEGIN or END line


@pytest.mark.parametrize("cut", ["begin", "end", "both", "no final newline", "crlf"])
def test_import_of_rfc4716_without_begin_or_end(
    keys: dict[str, Path], tmp_path: Path, cut: str
) -> None:
    text = same(["export", "-f", str(keys["rsa"])], ["-e", "-f", str(keys["rsa"])])
    lines = text.splitlines(keepends=True)
    if cut in ("begin", "both"):
        lines = lines[1:]
    if cut in ("end", "both"):
        lines = lines[:-1]
    body = b"".join(lines)
    if cut == "no final newline":
        body = body.rstrip(b"\n")
    if cut == "crlf":
        body = body.replace(b"\n", b"\r\n")
    path = tmp_path / "ssh2"
    path.write_bytes(body)
    for m in ([], ["-m", "RFC4716"]):
        assert same(["import", *m, "-f", str(path)], ["-i", *m, "-f", str(path)])


# ---- 7. PEM with text or another block before the public key


@pytest.mark.parametrize("before", [b"some text first\n", b"PRIVATE", b"PRIVATE+text"])
def test_import_pkcs8_skips_what_comes_before(
    keys: dict[str, Path], tmp_path: Path, before: bytes
) -> None:
    pem = same(
        ["export", "-m", "PKCS8", "-f", str(keys["rsa"])],
        ["-e", "-m", "PKCS8", "-f", str(keys["rsa"])],
    )
    private = tmp_path / "p8"
    private.write_bytes(keys["rsa"].read_bytes())
    private.chmod(0o600)
    run([require("ssh-keygen"), "-q", "-p", "-N", "", "-m", "PKCS8", "-f", private])
    prefix = {
        b"PRIVATE": private.read_bytes(),
        b"PRIVATE+text": b"notes\n" + private.read_bytes() + b"more\n",
    }.get(before, before)
    path = tmp_path / "pem"
    path.write_bytes(prefix + pem + b"trailing\n")
    assert same(["import", "-m", "PKCS8", "-f", str(path)], ["-i", "-m", "PKCS8", "-f", str(path)])


# ---- 8. errors: one line of keytool's own, naming the file


def test_errors_name_the_file_in_plain_words(keys: dict[str, Path], tmp_path: Path) -> None:
    bad_pem = tmp_path / "bad_pem"
    bad_pem.write_bytes(b"-----BEGIN PUBLIC KEY-----\nMIIBbad=\n-----END PUBLIC KEY-----\n")
    one_line_error(
        ["import", "-m", "PKCS8", "-f", str(bad_pem)],
        ["-i", "-m", "PKCS8", "-f", str(bad_pem)],
        "bad_pem",
    )
    bad_private = tmp_path / "bad_private"
    bad_private.write_bytes(
        b"-----BEGIN RSA PRIVATE KEY-----\nMIIBbad=\n-----END RSA PRIVATE KEY-----\n"
    )
    bad_private.chmod(0o600)
    for ours, theirs in ((["fingerprint"], ["-l"]), (["export"], ["-e"]), (["pub"], ["-y"])):
        one_line_error(
            [*ours, "-f", str(bad_private)], [*theirs, "-f", str(bad_private)], "bad_private"
        )
    lonely = keygen(tmp_path / "lonely", "rsa", "c", "-N", "secret", "-b", "2048", "-m", "PEM")
    Path(f"{lonely}.pub").unlink()
    one_line_error(["fingerprint", "-f", str(lonely)], ["-l", "-f", str(lonely)], "lonely")


# ---- 9. a NUL byte ends a line's key


def test_a_nul_byte_ends_the_line(keys: dict[str, Path], tmp_path: Path) -> None:
    ed, rsa = key_line(keys["ed"]).encode(), key_line(keys["rsa"]).encode()
    path = tmp_path / "nul"
    path.write_bytes(
        ed + b"\0junk\n" + rsa + b" com\0ment\n" + b'from="x" ' + ed + b"\0tail\n"
        + b"h1,h2 " + rsa + b"\n" + ed + b"\n" + rsa + b" #hash\n"
    )  # fmt: skip
    for flags in ([], ["-v"], ["-B"]):
        out = same(["fingerprint", *flags, "-f", str(path)], ["-l", *flags, "-f", str(path)])
        assert out.count(b"(ED25519)") == 3
    same(["fingerprint", "-r", "h", "-f", str(path)], ["-r", "h", "-f", str(path)])
    same(["export", "-f", str(path)], ["-e", "-f", str(path)])

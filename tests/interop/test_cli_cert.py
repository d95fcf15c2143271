"""``keytool cert`` against the real OpenSSH tools: ``-L`` prints what ``ssh-keygen -L``
prints; the certificates ``keytool cert -s`` makes are read by ``ssh-keygen -L`` with
the fields asked for, hold the validity window ssh-keygen computes for the same -V,
and are accepted and refused by a real sshd (user certificates) and a real ssh (host
certificates) as OpenSSH's own would be. A CA key in ssh-agent or ``keytool agent``
signs with -U."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.cli import assert_clean_error
from tests.interop.agenthelp import keytool_agent, openssh_agent
from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import Sshd, require, run, ssh_login

UTC = base_env(TZ="UTC")
BITS = {"ed25519": "256", "rsa": "2048", "ecdsa": "256"}


def keytool(
    *args: str | Path, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYTOOL, *map(str, args)],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        env=env or UTC,
        timeout=60,
    )


def keygen(
    *args: str | Path, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    return run([require("ssh-keygen"), *args], input=stdin.decode(), env=env or UTC)


def make_key(folder: Path, name: str, kind: str = "ed25519", passphrase: str = "") -> Path:
    path = folder / name
    made = keygen(
        "-q", "-t", kind, "-b", BITS[kind], "-N", passphrase, "-C", f"{name} key", "-f", path
    )
    assert made.returncode == 0, made.stderr
    return path


def listing(path: Path, env: dict[str, str] | None = None) -> str:
    """ssh-keygen -L of a file (which must succeed)."""
    shown = keygen("-L", "-f", path, env=env)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def field(text: str, name: str) -> str:
    match = re.search(rf"^        {name}: (.*)$", text, re.M)
    assert match, text
    return match.group(1)


def block(text: str, name: str) -> list[str]:
    """The indented lines under ``Principals:``, ``Critical Options:`` or ``Extensions:``."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"        {name}:"))
    if lines[start].endswith("(none)"):
        return []
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith(" " * 16):
            break
        out.append(line.strip())
    return out


# ---- keytool cert -L == ssh-keygen -L


LISTED_OPTIONS = [
    "-O",
    "force-command=/bin/echo forced",
    "-O",
    "source-address=127.0.0.1,10.0.0.0/8",
    "-O",
    "verify-required",
    "-O",
    "no-touch-required",
    "-O",
    "extension:login@example.com=alice",
    "-O",
    "extension:flag@example.com",
    "-O",
    "critical:strict@example.com",
    "-O",
    "critical:limit@example.com=7",
    "-O",
    "no-pty",
]


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ecdsa"])
@pytest.mark.parametrize("ca_kind", ["ed25519", "rsa", "ecdsa"])
def test_listing_of_keygen_certificates_is_byte_identical(
    tmp_path: Path, kind: str, ca_kind: str
) -> None:
    ca = make_key(tmp_path, "ca", ca_kind)
    user = make_key(tmp_path, "user", kind)
    how = ["-I", "alice@example", "-n", "alice,root", "-z", "12345", "-V", "20250101:20300101"]
    made = keygen("-q", "-s", ca, *how, *LISTED_OPTIONS, f"{user}.pub")
    assert made.returncode == 0, made.stderr
    cert = tmp_path / "user-cert.pub"
    theirs = keygen("-L", "-f", cert)
    ours = keytool("cert", "-L", "-f", cert)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert "UNKNOWN OPTION: 00000005616c696365 (len 9)" in ours.stdout
    assert "UNKNOWN FLAG OPTION" in ours.stdout
    # the MD5 form of the fingerprints too
    for hash_name in ("md5", "sha512"):
        assert (
            keytool("cert", "-L", "-E", hash_name, "-f", cert).stdout
            == keygen("-L", "-E", hash_name, "-f", cert).stdout
        )
    # keytool fingerprint of the certificate file names the certified key, as ssh-keygen -l
    assert keytool("fingerprint", "-f", cert).stdout == keygen("-l", "-f", cert).stdout


@pytest.mark.parametrize(
    "validity",
    [None, "+52w", "-1d:forever", "always:20300101", "20250101:20300101123456", "0x10:0x7fffffff"],
)
@pytest.mark.parametrize("host", [False, True])
def test_listing_validity_forms_and_host_certificates(
    tmp_path: Path, validity: str | None, host: bool
) -> None:
    ca = make_key(tmp_path, "ca")
    key = make_key(tmp_path, "ssh_host_key")
    flags = ["-h", "-n", "server.example.com,127.0.0.1"] if host else ["-O", "clear"]
    made = keygen(
        "-q", "-s", ca, "-I", "id", *flags, *(["-V", validity] if validity else []), f"{key}.pub"
    )
    assert made.returncode == 0, made.stderr
    cert = tmp_path / "ssh_host_key-cert.pub"
    for env in (UTC, base_env(TZ="Europe/Berlin")):
        theirs = keygen("-L", "-f", cert, env=env)
        ours = keytool("cert", "-L", "-f", cert, env=env)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    assert (" host certificate" in ours.stdout) == host


def test_listing_several_lines_and_stdin(tmp_path: Path) -> None:
    ca = make_key(tmp_path, "ca")
    user = make_key(tmp_path, "user")
    assert keygen("-q", "-s", ca, "-I", "one", f"{user}.pub").returncode == 0
    line = (tmp_path / "user-cert.pub").read_text()
    many = tmp_path / "many"
    many.write_text(
        f"# certificates\n{line}\n  {line}not a key\n{(tmp_path / 'user.pub').read_text()}"
    )
    theirs = keygen("-L", "-f", many)
    ours = keytool("cert", "-L", "-f", many)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (0, ours.stdout)
    assert ours.stdout.count(f"{many}:") == 2
    # each line that is not a certificate: one complaint, as ssh-keygen makes one
    assert len(ours.stderr.splitlines()) == len(theirs.stderr.splitlines()) == 3
    for source in (line, line + line):
        theirs = keygen("-L", "-f", "-", stdin=source.encode())
        ours = keytool("cert", "-L", "-f", "-", stdin=source.encode())
        assert ours.stdout.startswith("(stdin):1:\n")
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)


def test_listing_nothing_but_bad_lines_fails_like_ssh_keygen(tmp_path: Path) -> None:
    ca = make_key(tmp_path, "ca")
    user = make_key(tmp_path, "user")
    assert keygen("-q", "-s", ca, "-I", "one", f"{user}.pub").returncode == 0
    kind, blob, comment = (tmp_path / "user-cert.pub").read_text().split(" ", 2)
    middle = len(blob) // 2
    flipped = blob[:middle] + ("A" if blob[middle] != "A" else "B") + blob[middle + 1 :]
    corrupt = tmp_path / "corrupt-cert.pub"
    corrupt.write_text(f"{kind} {flipped} {comment}")
    for path in (corrupt, tmp_path / "user.pub"):
        theirs = keygen("-L", "-f", path)
        ours = keytool("cert", "-L", "-f", path)
        assert theirs.returncode != 0 and theirs.stdout == ""
        assert ours.stdout == ""
        line = assert_clean_error(ours)
        assert str(path) in line
    assert "is not a certificate" in keytool("cert", "-L", "-f", tmp_path / "user.pub").stderr
    assert_clean_error(keytool("cert", "-L", "-f", tmp_path / "missing"))


# ---- keytool cert -s, read by ssh-keygen


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ecdsa"])
@pytest.mark.parametrize("ca_kind", ["ed25519", "rsa", "ecdsa"])
def test_keytool_certificates_read_by_ssh_keygen(tmp_path: Path, kind: str, ca_kind: str) -> None:
    ca = make_key(tmp_path, "ca", ca_kind)
    user = make_key(tmp_path, "user", kind)
    made = keytool(
        "cert", "-s", ca, "-I", "alice@example", "-n", "alice,root", "-z", "77",
        "-V", "20250101:20300101", *LISTED_OPTIONS, f"{user}.pub",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    cert = tmp_path / "user-cert.pub"
    assert cert.stat().st_mode & 0o777 == 0o644
    assert cert.read_text().endswith(" user key\n")  # the key's comment, as ssh-keygen keeps it
    theirs = listing(cert)
    assert keytool("cert", "-L", "-f", cert).stdout == theirs
    assert field(theirs, "Type").endswith(" user certificate")
    assert field(theirs, "Key ID") == '"alice@example"'
    assert field(theirs, "Serial") == "77"
    assert field(theirs, "Valid") == "from 2025-01-01T00:00:00 to 2030-01-01T00:00:00"
    assert block(theirs, "Principals") == ["alice", "root"]
    assert block(theirs, "Critical Options") == [
        "force-command /bin/echo forced",
        "limit@example.com UNKNOWN OPTION: 0000000137 (len 5)",
        "source-address 127.0.0.1,10.0.0.0/8",
        "strict@example.com UNKNOWN FLAG OPTION",
        "verify-required",
    ]
    assert block(theirs, "Extensions") == [
        "flag@example.com UNKNOWN FLAG OPTION",
        "login@example.com UNKNOWN OPTION: 00000005616c696365 (len 9)",
        "no-touch-required",
        "permit-X11-forwarding",
        "permit-agent-forwarding",
        "permit-port-forwarding",
        "permit-user-rc",
    ]
    ca_fingerprint = keygen("-l", "-f", f"{ca}.pub").stdout.split()[1]
    assert ca_fingerprint in field(theirs, "Signing CA")
    if ca_kind == "rsa":  # ssh-keygen's default for an RSA CA
        assert field(theirs, "Signing CA").endswith("(using rsa-sha2-512)")
    # the report on stderr, word for word what ssh-keygen says of the same request
    assert made.stderr == (
        f'Signed user key {cert}: id "alice@example" serial 77 for alice,root '
        "valid from 2025-01-01T00:00:00 to 2030-01-01T00:00:00\n"
    )
    assert made.stdout == ""
    assert keytool("fingerprint", "-f", cert).stdout == keygen("-l", "-f", cert).stdout


def test_same_request_same_certificate_fields_as_ssh_keygen(tmp_path: Path) -> None:
    """Both tools certify the same key with the same flags: every line of -L but the
    nonce-free ones is equal, the report lines too (serials counted up from +5)."""
    ca = make_key(tmp_path, "ca", "rsa")
    keys = [make_key(tmp_path, f"k{i}") for i in range(2)]
    for i, key in enumerate(keys):
        shutil.copy(f"{key}.pub", tmp_path / f"theirs{i}.pub")
    request = [
        "-I",
        "id",
        "-h",
        "-n",
        "h1,h2",
        "-z",
        "+5",
        "-O",
        "extension:e=v",
        "-t",
        "rsa-sha2-256",
    ]
    theirs = keygen("-s", ca, *request, *[tmp_path / f"theirs{i}.pub" for i in range(2)])
    ours = keytool("cert", "-s", ca, *request, *[f"{k}.pub" for k in keys])
    assert theirs.returncode == ours.returncode == 0, ours.stderr
    assert ours.stderr == theirs.stderr.replace("theirs", "k")
    for i, key in enumerate(keys):
        mine = listing(Path(f"{key}-cert.pub"))
        reference = listing(tmp_path / f"theirs{i}-cert.pub")
        assert mine.replace(f"{key}-cert.pub", "X") == reference.replace(
            str(tmp_path / f"theirs{i}-cert.pub"), "X"
        )
        assert field(mine, "Serial") == str(5 + i)
        assert "(using rsa-sha2-256)" in mine
    assert keytool("cert", "-s", ca, "-I", "x", "-t", "ssh-rsa", f"{keys[0]}.pub").returncode == 0
    assert "(using ssh-rsa)" in listing(Path(f"{keys[0]}-cert.pub"))


def test_private_key_path_certifies_its_pub(tmp_path: Path) -> None:
    ca = make_key(tmp_path, "ca")
    user = make_key(tmp_path, "id_ed25519")
    theirs = keygen("-q", "-s", ca, "-I", "x", user)
    assert theirs.returncode == 0
    reference = (tmp_path / "id_ed25519-cert.pub").read_text()
    (tmp_path / "id_ed25519-cert.pub").unlink()
    ours = keytool("cert", "-q", "-s", ca, "-I", "x", user)
    assert ours.returncode == 0 and ours.stderr == ""
    written = (tmp_path / "id_ed25519-cert.pub").read_text()
    assert written.split(" ")[2:] == reference.split(" ")[2:] == ["id_ed25519", "key\n"]
    assert listing(tmp_path / "id_ed25519-cert.pub")


VALIDITY = [
    "+52w",
    "+1h30m",
    "-1d:+4w",
    "+1h:+2h",
    "always:forever",
    "always:+1d",
    "-5m:forever",
    "20250101:20300101",
    "202501011230:20250701",
    "20250101123456:20300101Z",
    "20250701UTC:20350101",
    "20250230:20250310",
    "20250715123000:20250716",
    "0x10:0x7fffffff",
    # refused by both
    "20250230:20250301",
    "+1h:+1h",
    "1d",
    "20251301:forever",
    "+3551w",
    "-1d:always",
]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_validity_as_ssh_keygen_computes_it(tmp_path: Path, zone: str) -> None:
    env = base_env(TZ=zone)
    ca = make_key(tmp_path, "ca")
    user = make_key(tmp_path, "user")
    shutil.copy(f"{user}.pub", tmp_path / "theirs.pub")
    for validity in VALIDITY:
        theirs = keygen("-q", "-s", ca, "-I", "x", "-V", validity, tmp_path / "theirs.pub", env=env)
        ours = keytool("cert", "-q", "-s", ca, "-I", "x", "-V", validity, f"{user}.pub", env=env)
        assert (ours.returncode == 0) == (theirs.returncode == 0), (validity, ours.stderr)
        if ours.returncode:
            assert_clean_error(ours)
            continue
        mine = window(listing(tmp_path / "user-cert.pub", UTC))
        reference = window(listing(tmp_path / "theirs-cert.pub", UTC))
        if "+" in validity or validity.startswith("-"):
            # relative to "now": the runs are seconds apart (and a +SPAN start is on a minute)
            for a, b in zip(mine, reference, strict=True):
                assert (a is None) == (b is None), validity
                if a is not None and b is not None:
                    assert abs((a - b).total_seconds()) <= 120, validity
        else:
            assert mine == reference, validity


def window(shown: str) -> tuple[datetime | None, datetime | None]:
    valid = field(shown, "Valid")
    parse = datetime.fromisoformat
    if valid == "forever":
        return None, None
    if valid.startswith("after "):
        return parse(valid[6:]), None
    if valid.startswith("before "):
        return None, parse(valid[7:])
    start, end = re.fullmatch(r"from (\S+) to (\S+)", valid).groups()  # type: ignore[union-attr]
    return parse(start), parse(end)


@pytest.mark.parametrize(
    "source", ["127.0.0.1", "10.0.0.0/8", "127.1", "::1/128", "10.0.0.1/8", "1.2.3.4/33", "x", ""]
)
def test_source_address_lists_as_ssh_keygen_takes_them(tmp_path: Path, source: str) -> None:
    ca = make_key(tmp_path, "ca")
    user = make_key(tmp_path, "user")
    option = f"source-address={source}"
    theirs = keygen("-q", "-s", ca, "-I", "x", "-O", option, f"{user}.pub")
    (tmp_path / "user-cert.pub").unlink(missing_ok=True)
    ours = keytool("cert", "-q", "-s", ca, "-I", "x", "-O", option, f"{user}.pub")
    assert (ours.returncode == 0) == (theirs.returncode == 0), (ours.stderr, theirs.stderr)
    assert (tmp_path / "user-cert.pub").exists() == (ours.returncode == 0)
    if ours.returncode:
        assert_clean_error(ours)


# ---- errors: one line, no file written or clobbered


@pytest.fixture
def signed(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    """(CA key with passphrase "secret", the user key, its existing certificate)."""
    ca = make_key(tmp_path, "ca", passphrase="secret")
    user = make_key(tmp_path, "user")
    cert = tmp_path / "user-cert.pub"
    cert.write_text("the certificate that was there\n")
    yield ca, user, cert
    assert cert.read_text() == "the certificate that was there\n"
    assert [p.name for p in tmp_path.iterdir() if ".keytool-" in p.name] == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-I", "x", "-V", "+1x"], "invalid -V"),
        (["-I", "x", "-V", "20300101:20250101"], "empty"),
        (["-I", "x", "-V", "1d"], "invalid -V"),
        (["-I", "x", "-O", "no-such-option"], "unknown certificate option"),
        (["-I", "x", "-O", "source-address=10.0.0.1/8"], "source-address"),
        (["-I", "x", "-O", "force-command="], "force-command"),
        (["-I", "x", "-z", "twelve"], "serial"),
        (["-I", "x", "-n", "a,,b"], "principal"),
        (["-I", "x", "-t", "rsa-sha2-256"], "-t"),
        (["-n", "root"], "-I"),
        (["-I", "x", "-P", "wrong"], "passphrase"),
    ],
)
def test_bad_requests_are_one_line_and_write_nothing(
    signed: tuple[Path, Path, Path], args: list[str], words: str
) -> None:
    ca, user, _ = signed
    passphrase = [] if "-P" in args else ["-P", "secret"]
    result = keytool("cert", "-s", ca, *passphrase, *args, f"{user}.pub")
    line = assert_clean_error(result)
    assert words in line, line


def test_wrong_passphrase_through_askpass_is_one_line(
    signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    ca, user, cert = signed
    askpass = tmp_path / "askpass.sh"
    askpass.write_text('#!/bin/sh\necho "$ANSWER"\n')
    askpass.chmod(0o755)
    env = base_env(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", TZ="UTC")
    assert_clean_error(
        keytool("cert", "-s", ca, "-I", "x", f"{user}.pub", env={**env, "ANSWER": "no"})
    )
    good = keytool("cert", "-s", ca, "-I", "x", f"{user}.pub", env={**env, "ANSWER": "secret"})
    assert good.returncode == 0, good.stderr
    assert field(listing(cert), "Key ID") == '"x"'
    cert.write_text("the certificate that was there\n")  # for the fixture's check


def test_a_certificate_is_not_certified(signed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    ca, user, cert = signed
    other = make_key(tmp_path, "ca2")
    assert keygen("-q", "-s", other, "-I", "x", "-O", "clear", f"{user}.pub").returncode == 0
    keygen_cert = cert.read_text()
    cert.write_text("the certificate that was there\n")
    real = tmp_path / "real-cert.pub"
    real.write_text(keygen_cert)
    line = assert_clean_error(keytool("cert", "-s", ca, "-P", "secret", "-I", "x", real))
    assert "certificate" in line
    assert real.read_text() == keygen_cert
    assert not (tmp_path / "real-cert-cert.pub").exists()
    # ssh-keygen refuses it too
    assert keygen("-s", other, "-I", "x", real).returncode != 0


def test_public_ca_key_without_u_is_one_line(signed: tuple[Path, Path, Path]) -> None:
    ca, user, _ = signed
    line = assert_clean_error(keytool("cert", "-s", f"{ca}.pub", "-I", "x", f"{user}.pub"))
    assert "-U" in line


# ---- -U: the CA key in an agent


@pytest.mark.parametrize("agent_kind", ["ssh-agent", "keytool agent"])
@pytest.mark.parametrize("ca_kind", ["ed25519", "rsa"])
def test_ca_key_in_an_agent(tmp_path: Path, agent_kind: str, ca_kind: str) -> None:
    ca = make_key(tmp_path, "ca", ca_kind)
    user = make_key(tmp_path, "user")
    start = openssh_agent if agent_kind == "ssh-agent" else keytool_agent
    with start(tmp_path / "agent") as agent:
        env = agent.env(TZ="UTC")
        added = subprocess.run(
            [require("ssh-add"), str(ca)], capture_output=True, env=env, timeout=30
        )
        assert added.returncode == 0, added.stderr
        made = keytool(
            "cert", "-U", "-s", f"{ca}.pub", "-I", "via-agent", "-n", "root", f"{user}.pub", env=env
        )
        assert made.returncode == 0, made.stderr
        shown = listing(tmp_path / "user-cert.pub")
        assert field(shown, "Key ID") == '"via-agent"'
        ca_fingerprint = keygen("-l", "-f", f"{ca}.pub").stdout.split()[1]
        assert ca_fingerprint in field(shown, "Signing CA")
        if ca_kind == "rsa":
            assert field(shown, "Signing CA").endswith("(using rsa-sha2-512)")
        # a CA key the agent does not hold: one line, nothing written
        other = make_key(tmp_path, "other")
        (tmp_path / "user-cert.pub").unlink()
        refused = keytool("cert", "-U", "-s", f"{other}.pub", "-I", "x", f"{user}.pub", env=env)
        assert "agent does not hold" in assert_clean_error(refused)
        assert not (tmp_path / "user-cert.pub").exists()


# ---- the decisive ones: a real sshd and a real ssh


def ssh(
    server: Sshd, key: Path, known_hosts: Path, *options: str, command: str = "echo logged-in"
) -> subprocess.CompletedProcess[str]:
    return ssh_login(server.port, key, known_hosts, command, options=options)


@pytest.fixture
def user_ca_server(tmp_path: Path) -> Iterator[tuple[Sshd, Path, Path]]:
    """(sshd trusting ca.pub for users and no authorized_keys, the CA, known_hosts)."""
    ca = make_key(tmp_path, "ca")
    server = Sshd(
        tmp_path / "sshd",
        options={
            "TrustedUserCAKeys": str(ca) + ".pub",
            "AuthorizedKeysFile": "none",
            "LogLevel": "DEBUG2",
        },
    )
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    with server:
        yield server, ca, known


def test_sshd_accepts_a_user_certificate_from_keytool(
    tmp_path: Path, user_ca_server: tuple[Sshd, Path, Path]
) -> None:
    server, ca, known = user_ca_server
    user = make_key(tmp_path, "id_user")
    # without a certificate the key alone is refused (no authorized_keys at all)
    assert ssh(server, user, known).returncode != 0
    made = keytool(
        "cert",
        "-s",
        ca,
        "-I",
        "alice-laptop",
        "-n",
        "root",
        "-z",
        "31",
        "-V",
        "-5m:+1h",
        f"{user}.pub",
    )
    assert made.returncode == 0, made.stderr
    # ssh picks up id_user-cert.pub beside the key
    result = ssh(server, user, known)
    assert (result.returncode, result.stdout) == (0, "logged-in\n"), result.stderr
    log = server.log.read_text()
    assert 'Accepted certificate ID "alice-laptop" (serial 31)' in log
    assert re.search(
        r"Accepted publickey for root .* ED25519-CERT SHA256:\S+ ID alice-laptop \(serial 31\)", log
    )


@pytest.mark.parametrize(
    ("request_args", "other_ca", "reason"),
    [
        (["-n", "alice"], False, "Certificate invalid: name is not a listed principal"),
        (["-n", "root", "-V", "20200101:20210101"], False, "Certificate invalid: expired"),
        (["-n", "root", "-V", "+1d:+2d"], False, "Certificate invalid: not yet valid"),
        (
            ["-n", "root", "-O", "source-address=10.9.9.9"],
            False,
            "with valid certificate but not from a permitted source address (127.0.0.1)",
        ),
        (["-n", "root"], True, "is not listed in"),
    ],
)
def test_sshd_refuses_a_certificate_it_should_not_take(
    tmp_path: Path,
    user_ca_server: tuple[Sshd, Path, Path],
    request_args: list[str],
    other_ca: bool,
    reason: str,
) -> None:
    server, ca, known = user_ca_server
    user = make_key(tmp_path, "id_user")
    if other_ca:
        ca = make_key(tmp_path, "other_ca")
    made = keytool("cert", "-s", ca, "-I", "refused-id", *request_args, f"{user}.pub")
    assert made.returncode == 0, made.stderr
    cert = tmp_path / "id_user-cert.pub"
    result = ssh(server, user, known, "-o", f"CertificateFile={cert}")
    assert result.returncode != 0 and result.stdout == ""
    log = server.log.read_text()
    assert reason in log
    assert "Accepted certificate" not in log
    assert re.search(r"Failed publickey for root .* ED25519-CERT .* ID refused-id", log)


def test_force_command_in_the_certificate_runs_instead(
    tmp_path: Path, user_ca_server: tuple[Sshd, Path, Path]
) -> None:
    server, ca, known = user_ca_server
    user = make_key(tmp_path, "id_user")
    made = keytool(
        "cert",
        "-s",
        ca,
        "-I",
        "forced",
        "-n",
        "root",
        "-O",
        "force-command=echo forced by the CA",
        f"{user}.pub",
    )
    assert made.returncode == 0, made.stderr
    result = ssh(server, user, known, command="echo what the user asked")
    assert (result.returncode, result.stdout) == (0, "forced by the CA\n"), result.stderr
    assert "forced-command (key-option) 'echo forced by the CA'" in server.log.read_text()


@pytest.mark.parametrize("host_kind", ["ed25519", "rsa"])
def test_ssh_trusts_a_keytool_host_certificate_through_cert_authority(
    tmp_path: Path, host_kind: str
) -> None:
    host_ca = make_key(tmp_path, "host_ca")
    user = make_key(tmp_path, "id_user")
    folder = tmp_path / "sshd"
    host_key = folder / f"ssh_host_{host_kind}_key"
    server = Sshd(
        folder,
        options={"HostCertificate": f"{host_key}-cert.pub"},
        host_key_types=[host_kind],
    )
    made = keytool(
        "cert", "-s", host_ca, "-I", "the-server", "-h", "-n", "127.0.0.1", f"{host_key}.pub"
    )
    assert made.returncode == 0, made.stderr
    assert made.stderr.startswith(f"Signed host key {host_key}-cert.pub")
    server.authorized_keys.write_text(Path(f"{user}.pub").read_text())
    known = tmp_path / "known_hosts"
    ca_line = " ".join(Path(f"{host_ca}.pub").read_text().split()[:2])
    known.write_text(f"@cert-authority [127.0.0.1]:{server.port} {ca_line}\n")
    with server:
        result = ssh(server, user, known, "-v", "-o", "StrictHostKeyChecking=yes")
        assert (result.returncode, result.stdout) == (0, "logged-in\n"), result.stderr
        assert "Server host certificate: " in result.stderr
        assert 'ID "the-server"' in result.stderr
        assert "is known and matches the" in result.stderr and "host certificate" in result.stderr
        # a host certificate for another name is refused (and the plain key is unknown)
        again = keytool(
            "cert", "-s", host_ca, "-I", "elsewhere", "-h", "-n", "other.example", f"{host_key}.pub"
        )
        assert again.returncode == 0, again.stderr
        server.stop()
        server.start()
        refused = ssh(server, user, known, "-o", "StrictHostKeyChecking=yes")
        assert refused.returncode != 0 and refused.stdout == ""
        assert "Certificate invalid: name is not a listed principal" in refused.stderr

"""ssh-keyscan -c / -D and ssh-keygen -r / -B parity: ``keytool keyscan -c`` and
``keyscan -D`` against ssh-keyscan on the same sshd (host certificates made by
ssh-keygen -s -h and loaded with HostCertificate), ``keytool fingerprint -r`` and
``fingerprint -B`` against ssh-keygen on the same files.

ssh-keyscan runs its connections in parallel, so its line order varies from run to run:
the lines are compared sorted.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from keytool.keys.pubfile import parse_public_line
from keytool.wire import Reader, Writer
from tests.cli import assert_clean_error, keytool
from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import Dropbear, Sshd, require, run

KINDS = ("ed25519", "ecdsa", "rsa")


def scan(tool: str, *args: str | Path) -> tuple[int, list[str], str]:
    command = [require("ssh-keyscan")] if tool == "ssh-keyscan" else [*KEYTOOL, "keyscan"]
    done = subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, env=base_env(), timeout=60
    )
    return done.returncode, sorted(done.stdout.splitlines()), done.stderr


def keygen_out(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run([require("ssh-keygen"), *args])


def key_part(line: str) -> str:
    return " ".join(line.split()[:2])


def certify_host(ca: Path, host_key: Path, key_id: str) -> Path:
    done = keygen_out("-q", "-s", ca, "-I", key_id, "-h", "-n", "127.0.0.1", f"{host_key}.pub")
    assert done.returncode == 0, done.stderr
    return Path(f"{host_key}-cert.pub")


@pytest.fixture
def cert_sshd(tmp_path: Path) -> Iterator[Sshd]:
    """sshd with an ed25519, an ecdsa and an rsa host key, each with a host certificate
    of one CA (ssh-keygen -s -h), loaded with HostCertificate lines."""
    ca = keygen(tmp_path / "host_ca")
    server = Sshd(tmp_path / "sshd")
    lines = [f"HostCertificate {certify_host(ca, path, f'host-{kind}')}"
             for kind, path in server.host_keys.items()]  # fmt: skip
    server.config.write_text(server.config.read_text() + "\n".join(lines) + "\n")
    with server:
        yield server


# ---- keyscan -c


@pytest.mark.parametrize("types", [None, "ed25519", "ecdsa", "rsa", "rsa,ed25519"])
def test_keyscan_c_prints_the_host_certificates_as_ssh_keyscan(
    cert_sshd: Sshd, types: str | None
) -> None:
    args = ["-c", "-p", str(cert_sshd.port), *(["-t", types] if types else []), "127.0.0.1"]
    ours, theirs = scan("keytool", *args), scan("ssh-keyscan", *args)
    assert (ours[0], ours[1]) == (theirs[0], theirs[1]) and ours[0] == 0
    kinds = types.split(",") if types else KINDS
    # the very certificates sshd loaded, each certifying the host key it holds
    loaded = sorted(key_part(Path(f"{cert_sshd.host_keys[k]}-cert.pub").read_text())
                    for k in kinds)  # fmt: skip
    assert ours[1] == loaded
    for line in ours[1]:
        certificate, _ = parse_public_line(line)
        host_keys = [parse_public_line(Path(f"{p}.pub").read_text())[0]
                     for p in cert_sshd.host_keys.values()]  # fmt: skip
        assert certificate.plain in host_keys and certificate.plain is not certificate


def test_keyscan_c_without_host_certificates_prints_nothing(sshd: Sshd) -> None:
    args = ["-c", "-p", str(sshd.port), "127.0.0.1"]
    ours, theirs = scan("keytool", *args), scan("ssh-keyscan", *args)
    assert (ours[0], ours[1]) == (theirs[0], theirs[1]) == (1, [])


def test_keyscan_c_host_names_never_printed_even_with_h(cert_sshd: Sshd) -> None:
    args = ["-c", "-H", "-t", "ed25519", "-p", str(cert_sshd.port), "127.0.0.1"]
    ours, theirs = scan("keytool", *args), scan("ssh-keyscan", *args)
    assert ours[:2] == theirs[:2] and len(ours[1]) == 1
    assert ours[1][0].startswith("ssh-ed25519-cert-v01@openssh.com ")


class SwapHostKey:
    """A man in the middle on 127.0.0.1 that replaces the host key blob (K_S) of the
    server's kex reply with ``blob``, leaving the server's signature as it is."""

    def __init__(self, target_port: int, blob: bytes) -> None:
        self.target_port = target_port
        self.blob = blob
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.swapped = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=self._rewrite, args=(server, client), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()
            src.close()

    def _rewrite(self, src: socket.socket, dst: socket.socket) -> None:
        stream = src.makefile("rb")
        try:
            while not (line := stream.readline()).startswith(b"SSH-"):  # banner lines
                if not line:
                    return
                dst.sendall(line)
            dst.sendall(line)
            while True:  # plaintext packets (RFC 4253 §6) until the kex reply
                length = stream.read(4)
                body = stream.read(int.from_bytes(length, "big"))
                payload = body[1 : len(body) - body[0]]
                if payload[:1] != bytes((31,)):  # SSH_MSG_KEX_ECDH_REPLY
                    dst.sendall(length + body)
                    continue
                old = Reader(payload[1:]).string()
                rest = Writer().byte(31).string(self.blob).getvalue() + payload[5 + len(old) :]
                padding = 8 - (5 + len(rest)) % 8 + 8  # at least 4, a multiple of 8 in all
                packet = bytes((padding,)) + rest + bytes(padding)
                self.swapped += 1  # before the client can see it and exit
                dst.sendall(len(packet).to_bytes(4, "big") + packet)
                break
            while data := stream.read1(65536):
                dst.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            dst.close()
            src.close()

    def close(self) -> None:
        self.listener.close()


def test_keyscan_c_prints_only_a_certificate_the_server_signed_with(
    tmp_path: Path, cert_sshd: Sshd
) -> None:
    """A man in the middle shows another key's certificate (same CA, same names) in
    place of the server's: ssh-keyscan prints it (it shows keys before checking the
    signature); keytool checks the exchange hash's signature first and prints nothing."""
    ca = tmp_path / "host_ca"
    decoy = keygen(tmp_path / "decoy")
    decoy_cert = certify_host(ca, decoy, "decoy").read_text()
    blob = parse_public_line(decoy_cert)[0].to_wire()
    proxy = SwapHostKey(cert_sshd.port, blob)
    try:
        args = ["-c", "-t", "ed25519", "-p", str(proxy.port), "127.0.0.1"]
        theirs = scan("ssh-keyscan", *args)
        ours = scan("keytool", *args)
    finally:
        proxy.close()
    assert proxy.swapped == 2
    assert theirs[1] == [key_part(decoy_cert)]  # the swap reached the peer's client
    assert ours[0] == 1 and ours[1] == []
    errors = [line for line in ours[2].splitlines() if not line.startswith("#")]
    assert len(errors) == 1 and "does not verify" in errors[0], ours[2]


# ---- keyscan -D


@pytest.mark.parametrize("types", [None, "ed25519", "ecdsa", "rsa"])
def test_keyscan_d_prints_sshfp_records_as_ssh_keyscan(sshd: Sshd, types: str | None) -> None:
    args = ["-D", "-p", str(sshd.port), *(["-t", types] if types else []), "127.0.0.1"]
    ours, theirs = scan("keytool", *args), scan("ssh-keyscan", *args)
    assert (ours[0], ours[1]) == (theirs[0], theirs[1]) and ours[0] == 0
    # the records of the server's own host key files, as ssh-keygen -r writes them
    kinds = types.split(",") if types else KINDS
    expected = []
    for kind in kinds:
        made = keygen_out("-r", "127.0.0.1", "-f", f"{sshd.host_keys[kind]}.pub")
        expected += made.stdout.splitlines()
    assert ours[1] == sorted(expected) and len(ours[1]) == 2 * len(kinds)
    assert f"; 127.0.0.1:{sshd.port} SSH-2.0-OpenSSH" in ours[2]


def test_keyscan_d_of_dropbear_and_of_a_certificate_server(tmp_path: Path, cert_sshd: Sshd) -> None:
    """SSHFP records name the plain key even when the server has certificates, and
    dropbear's keys give the same records as with ssh-keyscan."""
    args = ["-D", "-p", str(cert_sshd.port), "127.0.0.1"]
    ours, theirs = scan("keytool", *args), scan("ssh-keyscan", *args)
    assert ours[:2] == theirs[:2] and len(ours[1]) == 6
    with Dropbear(tmp_path / "dropbear") as dropbear:
        args = ["-D", "-p", str(dropbear.port), "localhost"]
        ours, theirs = scan("keytool", *args), scan("ssh-keyscan", *args)
    assert ours[:2] == theirs[:2] and len(ours[1]) == 6
    assert all(line.startswith("localhost IN SSHFP ") for line in ours[1])


def test_keyscan_c_with_d_is_refused_in_one_line(sshd: Sshd) -> None:
    line = assert_clean_error(keytool("keyscan", "-c", "-D", "-p", str(sshd.port), "127.0.0.1"))
    assert "-c" in line and "-D" in line


# ---- fingerprint -r (ssh-keygen -r)


def keygen_file(folder: Path, kind: str, bits: str | None = None) -> Path:
    path = folder / f"id_{kind}{bits or ''}"
    extra = ["-b", bits] if bits else []
    made = keygen_out("-q", "-t", kind, *extra, "-N", "", "-C", f"{kind} key", "-f", path)
    assert made.returncode == 0, made.stderr
    return path


FILE_KINDS = [("ed25519", None), ("rsa", "2048"), ("ecdsa", "256"), ("ecdsa", "384"),
              ("ecdsa", "521")]  # fmt: skip


@pytest.mark.parametrize(("kind", "bits"), FILE_KINDS)
@pytest.mark.parametrize("generic", [False, True])
def test_fingerprint_r_as_ssh_keygen_r(
    tmp_path: Path, kind: str, bits: str | None, generic: bool
) -> None:
    path = keygen_file(tmp_path, kind, bits)
    g = ["-g"] if generic else []
    for file in (path, Path(f"{path}.pub")):
        theirs = keygen_out("-r", "host.example.com.", "-f", file, *g)
        ours = keytool("fingerprint", "-r", "host.example.com.", "-f", file, *g)
        assert (
            (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (0, ours.stdout)
        )
        assert len(ours.stdout.splitlines()) == 2
        assert ("IN TYPE44 \\# " in ours.stdout) == generic


def test_fingerprint_r_where_ssh_keygen_finds_the_key(tmp_path: Path) -> None:
    """The first bare key line of the file; a private key without its .pub; a
    private key whose .pub holds another key (the .pub wins, as with ssh-keygen)."""
    ed = keygen_file(tmp_path, "ed25519")
    rsa = keygen_file(tmp_path, "rsa", "2048")
    listing = tmp_path / "listing"
    listing.write_text(
        "# comment\n\n"
        f"restrict {Path(f'{rsa}.pub').read_text()}"  # options first: not a bare key
        f"   {Path(f'{ed}.pub').read_text()}"
        f"{Path(f'{rsa}.pub').read_text()}"
    )
    lonely = tmp_path / "lonely"
    lonely.write_bytes(ed.read_bytes())
    lonely.chmod(0o600)
    mixed = tmp_path / "mixed"
    mixed.write_bytes(rsa.read_bytes())
    mixed.chmod(0o600)
    Path(f"{mixed}.pub").write_text(Path(f"{ed}.pub").read_text())
    for file in (listing, lonely, mixed):
        theirs = keygen_out("-r", "h", "-f", file)
        ours = keytool("fingerprint", "-r", "h", "-f", file)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), file
        assert " SSHFP 4 " in ours.stdout  # the ed25519 key each time


def test_fingerprint_r_without_f_reads_the_host_keys_of_etc_ssh() -> None:
    theirs = keygen_out("-r", "server.example.")
    ours = keytool("fingerprint", "-r", "server.example.")
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    present = [k for k in KINDS if Path(f"/etc/ssh/ssh_host_{k}_key").exists()]
    assert len(ours.stdout.splitlines()) == 2 * len(present)
    if not present:
        assert_clean_error(ours)


def test_fingerprint_r_bad_input_is_one_line(tmp_path: Path) -> None:
    ca = keygen(tmp_path / "ca")
    host = keygen_file(tmp_path, "ed25519")
    certificate = certify_host(ca, host, "h")
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\n")
    for file in (certificate, garbage, tmp_path / "missing"):
        theirs = keygen_out("-r", "h", "-f", file)
        ours = keytool("fingerprint", "-r", "h", "-f", file)
        assert ours.stdout == theirs.stdout == ""  # ssh-keygen writes no record either
        if file == certificate:  # no record for it, said, and no failure: as ssh-keygen
            assert ours.returncode == theirs.returncode == 0
            assert len(ours.stderr.splitlines()) == 1 and file.name in ours.stderr
            continue
        assert str(file.name) in assert_clean_error(ours)
    assert "-r" in assert_clean_error(keytool("fingerprint", "-r", "h", "-B", "-f", host))
    assert "-g" in assert_clean_error(keytool("fingerprint", "-g", "-f", host))


# ---- fingerprint -B (ssh-keygen -B)


def bubble_files(tmp_path: Path) -> list[Path]:
    files: list[Path] = []
    for kind, bits in FILE_KINDS[:3]:
        path = keygen_file(tmp_path, kind, bits)
        files += [path, Path(f"{path}.pub")]
    lonely = tmp_path / "lonely_private"  # no .pub beside it
    lonely.write_bytes(files[0].read_bytes())
    lonely.chmod(0o600)
    ca = keygen(tmp_path / "ca", comment="the ca")
    files += [lonely, certify_host(ca, files[0], "h")]
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(  # a bare key without comment first: "no comment"
        f"{key_part(files[3].read_text())}\n"
        f'command="echo a b",no-pty {files[1].read_text()}'
        f"# note\n{files[5].read_text()}"
    )
    known = tmp_path / "known_hosts"
    known.write_text(
        f"example.com,10.0.0.1 {key_part(files[1].read_text())}\n"
        f"[h]:2222 {key_part(files[3].read_text())} trailing comment\n"
        f"@cert-authority *.example.com {key_part(Path(f'{ca}.pub').read_text())}\n"
    )
    made = keygen_out("-H", "-f", known)
    assert made.returncode == 0, made.stderr
    return [*files, authorized, known]


def test_fingerprint_b_as_ssh_keygen_b(tmp_path: Path) -> None:
    for file in bubble_files(tmp_path):
        for extra in ([], ["-v"], ["-v", "-E", "md5"]):
            theirs = keygen_out("-B", *extra, "-f", file)
            ours = keytool("fingerprint", "-B", *extra, "-f", file)
            assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), file
            assert ours.returncode == 0 and "-" in ours.stdout.split()[1]


def test_fingerprint_b_bad_input_is_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_text("# nothing\nnot a key\n")
    for file in (garbage, tmp_path / "missing"):
        theirs = keygen_out("-B", "-f", file)
        ours = keytool("fingerprint", "-B", "-f", file)
        assert theirs.returncode != 0 and ours.stdout == theirs.stdout == ""
        assert_clean_error(ours)

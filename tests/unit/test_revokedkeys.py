"""revokedkeys.py and RevokedHostKeys in ssh_config without the outside world: a KRL
or a list of public keys, read as authfile.c's sshkey_check_revoked reads them; the
config keyword as ssh reads it (first line wins, several files, "none", ~ and tokens).
The real ssh, sshd and ssh-keygen judge the same files in
tests/interop/test_client_revoked_hostkeys.py and tests/interop/test_cli_sign_revoked.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from keytool import krl, revokedkeys
from keytool.errors import FormatError, KeytoolError
from keytool.keys import cert
from keytool.keys.ed25519 import Ed25519Private
from keytool.keys.pubfile import format_public_line
from keytool.sshconfig import resolve

CA = Ed25519Private(bytes(range(32)))
HOST = Ed25519Private(bytes(range(2, 34)))
OTHER = Ed25519Private(bytes(range(3, 35)))
HOST_CERT = cert.sign(HOST.public, CA, cert_type=cert.HOST, key_id="h", principals=["h"], serial=9)


def line(key: Ed25519Private | cert.Certificate, comment: str = "c") -> str:
    public = key if isinstance(key, cert.Certificate) else key.public
    return format_public_line(public, comment) + "\n"


def test_key_list_revokes_the_key_its_certificates_and_certificates_of_a_listed_ca() -> None:
    data = f"# revoked\n\n  \t{line(OTHER)}{line(HOST)}".encode()
    assert revokedkeys.revocation(data, HOST.public) == "the key is listed at line 4"
    assert revokedkeys.revocation(data, HOST_CERT) == "the key is listed at line 4"
    assert revokedkeys.revocation(data, CA.public) is None
    by_ca = line(CA).encode()
    assert revokedkeys.revocation(by_ca, HOST_CERT) == "its CA key is listed at line 1"
    assert revokedkeys.revocation(by_ca, HOST.public) is None
    # a certificate line revokes the key it certifies (compared without the certificate)
    assert revokedkeys.revocation(line(HOST_CERT).encode(), HOST.public) is not None


def test_empty_and_comment_only_files_revoke_nothing() -> None:
    for data in (b"", b"\n", b"# nothing\n   # indented\n"):
        assert revokedkeys.revocation(data, HOST_CERT) is None


def test_a_bad_line_makes_the_file_unusable_but_dsa_lines_are_skipped() -> None:
    with pytest.raises(FormatError, match="line 2"):
        revokedkeys.revocation(f"{line(OTHER)}ssh-ed25519 !!!\n".encode(), HOST.public)
    with pytest.raises(FormatError, match="line 1"):
        revokedkeys.revocation(b'from="x" ' + line(HOST).encode(), HOST.public)
    dsa = b"ssh-dss AAAAB3NzaC1kc3MAAACBAP== old\n"
    assert revokedkeys.revocation(dsa + line(HOST).encode(), HOST.public) is not None


def test_krl_files_by_their_magic() -> None:
    made = krl.Krl()
    made.revoke_serials(CA.public, 9)
    data = krl.to_bytes(made)
    assert revokedkeys.revocation(data, HOST_CERT) == "serial 9 is revoked for its CA"
    assert revokedkeys.revocation(data, HOST.public) is None
    with pytest.raises(FormatError):
        revokedkeys.revocation(data[:-2], HOST_CERT)


def test_load_names_the_file_and_rereads_it_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "revoked"
    with pytest.raises(KeytoolError, match="no such file"):
        revokedkeys.check_file(path, HOST.public)
    path.write_text(line(OTHER))
    assert revokedkeys.check_file(path, HOST.public) is None
    path.write_text(line(OTHER) + line(HOST) + "# changed\n")
    assert revokedkeys.check_file(path, HOST.public) == "the key is listed at line 2"
    path.write_text("junk\n")
    with pytest.raises(FormatError, match=f"invalid revoked keys file {path}: line 1"):
        revokedkeys.check_file(path, HOST.public)


def res(text: str, *overrides: str) -> tuple[str, ...]:
    return resolve(text, "h", overrides, user="me", home="/home/me").revoked_host_keys


def test_revoked_host_keys_in_ssh_config() -> None:
    assert res("") == ()
    # first line wins, one file on it (as ssh 9.2), ~ and tokens expanded as other file
    # options
    config = "Host h\n RevokedHostKeys ~/krl\nRevokedHostKeys /later\n"
    assert res(config) == ("/home/me/krl",)
    assert res("RevokedHostKeys /etc/%h-%r.krl\n") == ("/etc/h-me.krl",)
    assert res(config, "RevokedHostKeys=none") == ()
    assert res("RevokedHostKeys none\nRevokedHostKeys /x\n") == ()
    with pytest.raises(FormatError, match="extra arguments at end of line"):
        res("RevokedHostKeys none /x\n")
    with pytest.raises(FormatError, match="extra arguments at end of line"):
        res("RevokedHostKeys /a /b\n")
    with pytest.raises(FormatError, match='no argument after keyword "revokedhostkeys"'):
        res("", "RevokedHostKeys=")  # ssh's words for -o RevokedHostKeys=
    with pytest.raises(FormatError, match="Missing argument"):
        res("", "RevokedHostKeys ''")  # an empty value given
    assert not resolve("RevokedHostKeys /k\n", "h", user="me", home="/").warnings

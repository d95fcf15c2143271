"""Text that is not UTF-8 in known_hosts and ssh_config, read and written as ssh does:
as bytes (surrogate escapes in between), never a line skipped or a traceback."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from keytool import hostcheck, knownhosts, sshconfig
from keytool import knownhosts_edit as edit
from keytool.cli import knownhosts as cli
from keytool.keys import generate
from keytool.keys.fingerprint import fingerprint
from keytool.keys.pubfile import format_public_line

KEY_A = generate("ed25519").public
KEY_B = generate("ed25519").public
PLAIN = format_public_line(KEY_A).encode()

#: the host's line with a byte that is not UTF-8 in its comment, after another name's
#: line holding one in its host field
TEXT = b"caf\xe9 " + format_public_line(KEY_B).encode() + b"\n"
TEXT += b"[h.example]:2222 " + PLAIN + b" comment \xe9\n"


def test_parse_and_scan_read_the_lines_that_are_not_utf8() -> None:
    every, warnings = knownhosts.parse(TEXT, "kh")
    assert warnings == []
    assert [(e.hosts, e.comment) for e in every] == [
        ("caf\udce9", ""),
        ("[h.example]:2222", "comment \udce9"),
    ]
    found, warnings = knownhosts.scan([TEXT], ["[h.example]:2222", "h.example"], "kh")
    assert warnings == [] and found == every[1:]
    status = knownhosts.check(found, "h.example", 2222, KEY_A)
    assert isinstance(status, knownhosts.Known)
    found, _ = knownhosts.scan([TEXT], ["caf\udce9"], "kh")
    assert found == every[:1]


def test_scan_key_finds_a_line_that_is_not_utf8() -> None:
    found = knownhosts.scan_key([TEXT], KEY_A, "kh")
    assert [(e.hosts, e.line_number) for e in found] == [("[h.example]:2222", 2)]
    assert [e.hosts for e in knownhosts.scan_key([TEXT], KEY_B, "kh")] == ["caf\udce9"]


def test_a_name_that_is_not_utf8_is_written_as_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_bytes(TEXT)
    hostcheck.add_known_host(path, "ali\udce9s", 22, KEY_A, False)
    assert path.read_bytes() == TEXT + b"ali\xe9s " + PLAIN + b"\n"
    decision = hostcheck.verify_host_key(
        "ali\udce9s", 22, KEY_A, user_files=[path], global_files=[], strict="yes"
    )
    assert isinstance(decision.status, knownhosts.Known)
    assert decision.status.entry.line_number == 3
    line = knownhosts.format_entry("ali\udce9s", 22, KEY_A)
    assert knownhosts.append_entry(b"x", line) == b"x\nali\xe9s " + PLAIN + b"\n"


def test_accept_new_records_an_alias_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    decision = hostcheck.verify_host_key(
        "caf\udce9", 22, KEY_A, user_files=[path], global_files=[], strict="accept-new"
    )
    assert decision.added_to == path
    assert path.read_bytes() == b"caf\xe9 " + PLAIN + b"\n"


@pytest.mark.parametrize(
    "setting, host, user",
    [("User ro\udce9ot", b"h", b"ro\xe9ot"), ("HostName CAF\udce9\xc9", b"caf\xe9\xc3\x89", b"me")],
)
def test_percent_c_is_the_hash_of_the_bytes(setting: str, host: bytes, user: bytes) -> None:
    text = f"{setting}\nControlPath %C\nMatch exec true\n"
    config = sshconfig.resolve(text, "h", user="me", home="/", local_hostname="l")
    assert config.control_path == hashlib.sha1(b"l" + host + b"22" + user).hexdigest()


def test_fingerprints_found_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kh"
    path.write_bytes(b"\x1b[2Jh.example " + PLAIN + b" comment \xe9\x1b[31m\n")
    found = edit.find(path.read_bytes(), "\x1b[2Jh.example")
    assert len(found) == 1
    assert cli.run("\x1b[2Jh.example", None, False, str(path), True) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"\\033[2Jh.example ED25519 {fingerprint(KEY_A)} comment \\351\\033[31m"


def test_known_hosts_messages_on_stderr_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kh"
    path.write_bytes(b"*\x1b]0;pwned\x07\x1b[2J " + PLAIN + b"\n*.ex\xe9 " + PLAIN + b"\n")
    assert cli.run(None, "no\udce9\x1b[31m", False, str(path)) == 0
    assert cli.run(None, None, True, str(path)) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"Host no\\351\\033[31m not found in {path}",
        f"{path}:1: ignoring host name with wildcard: *\\033]0;pwned\x07\\033[2J",
        f"{path}:2: ignoring host name with wildcard: *.ex\\351",
    ]

"""authorized_keys lines with options: parsed, re-serialised unchanged, and fingerprinted
as ``ssh-keygen -l`` fingerprints the same file."""

from __future__ import annotations

from pathlib import Path

from keytool import authkeys
from keytool.keys.fingerprint import describe
from tests.interop.keysets import KINDS, keygen_key, ssh_keygen
from tests.peers import run

OPTIONS = [
    "",
    'from="10.0.0.0/8,192.168.1.1",no-pty,command="echo \\"hi there\\""',
    "no-port-forwarding,no-agent-forwarding,no-X11-forwarding",
    'restrict,pty,environment="NAME=a value, with comma"',
    'command="ls -l \\"/some dir\\"",permitopen="host:22"',
    "cert-authority",
    'expiry-time="20300101"',
]
# ssh-keygen 9.2 -l shows a comment-less line with the previous line's comment (or its
# options), so only the first line, without options, goes without a comment
COMMENTS = ["", "comment with spaces", "user@host", "a  b\tc", "x", "last one", "π ünïcode"]


def test_options_parse_and_serialise_unchanged(tmp_path: Path) -> None:
    lines = []
    for index, (kind, bits) in enumerate(KINDS):
        key_line = " ".join(keygen_key(kind, bits, tmp_path).public_line.split()[:2])
        comment = COMMENTS[index]
        line = key_line + (f" {comment}" if comment else "")
        lines.append(f"{OPTIONS[index]} {line}" if OPTIONS[index] else line)

    entries = []
    for index, line in enumerate(lines):
        entry = authkeys.parse_line(line)
        assert entry is not None
        assert entry.options == OPTIONS[index]
        assert entry.comment == COMMENTS[index]
        assert entry.to_line() == line
        entries.append(entry)

    # the real peer reads the same lines and prints the same keys and comments
    path = tmp_path / "authorized_keys"
    path.write_text("# a comment line\n\n" + "\n".join(lines) + "\n")
    result = run([ssh_keygen(), "-l", "-f", path])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        # a line without a comment reads "no comment" (None), as ssh-keygen prints it
        describe(entry.key, entry.comment or None)
        for entry in entries
    ]
    assert authkeys.parse_line("# a comment line") is None
    assert authkeys.parse_line("   ") is None


def test_the_issue_example_line(tmp_path: Path) -> None:
    key_line = " ".join(keygen_key("ed25519", 256, tmp_path).public_line.split()[:2])
    line = f'from="10.0.0.0/8,192.168.1.1",no-pty,command="echo \\"hi there\\"" {key_line} c d'
    entry = authkeys.parse_line(line)
    assert entry is not None
    assert entry.options == 'from="10.0.0.0/8,192.168.1.1",no-pty,command="echo \\"hi there\\""'
    assert entry.comment == "c d"
    assert entry.to_line() == line

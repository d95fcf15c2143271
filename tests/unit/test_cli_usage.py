"""Command lines that do not parse: one line on stderr and exit status 2, like every
other keytool error (exec's, 255 as ssh's: its other statuses are the remote
command's); help itself still prints in full."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import assert_clean_error, keytool


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["gen", "-N", "", "-f", "{key}", "-t"], "gen: Option '-t' requires an argument"),
        (["gen", "-N", "", "-f", "{key}", "-b", "many"], "gen: Invalid value for '-b'"),
        (["gen", "-N", "", "-f", "{key}", "--bogus"], "gen: No such option: --bogus"),
        (["fingerprint", "-f"], "fingerprint: Option '-f' requires an argument"),
        # numbers of ASCII digits only, as strtonum reads them
        (["copy-id", "-j", "1_000", "h"], "copy-id: Invalid value for '-j': '1_000'"),
        (
            ["gen", "-N", "", "-f", "{key}", "-b", "\uff14\uff10\uff19\uff16"],
            "gen: Invalid value for '-b'",
        ),
        (["exec"], "exec: Missing argument"),
        (["exec", "-S"], "exec: Option '-S' requires an argument"),
        (["exec", "-O"], "exec: Option '-O' requires an argument"),
        # options after the destination are read as ssh reads them, errors too
        (["exec", "host", "-Z", "ls"], "exec: No such option: -Z"),
        (["exec", "host", "-p"], "exec: Option '-p' requires an argument"),
        (["exec", "host", "--help"], "exec: No such option: --help"),
        (["add", "-E"], "add: Option '-E' requires an argument"),
        (["bogus"], "No such command 'bogus'"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], expect: str) -> None:
    key = tmp_path / "k"
    result = keytool(*(a.replace("{key}", str(key)) for a in args), timeout=60)
    line = assert_clean_error(result)
    assert result.returncode == (255 if args[0] == "exec" else 2)
    assert line.startswith(f"keytool: {expect}"), line
    assert line.endswith("--help)")
    assert result.stdout == ""
    assert not key.exists()


def test_help_still_prints() -> None:
    top = keytool("--help", timeout=60)
    assert top.returncode == 0 and "copy-id" in top.stdout and top.stderr == ""
    gen = keytool("gen", "--help", timeout=60)
    assert gen.returncode == 0 and "-t" in gen.stdout and "-N" in gen.stdout
    # flags, --help among them, take no value: no <bool> placeholder beside them
    assert "<bool>" not in top.stdout and "<bool>" not in gen.stdout
    # a flag that counts (-v, -vv) shows no default either
    for command in ("copy-id", "add", "exec"):
        shown = keytool(command, "--help", timeout=60)
        assert shown.returncode == 0 and "-v" in shown.stdout
        assert "[default: 0]" not in shown.stdout, command


def test_bare_keytool_prints_the_help_once() -> None:
    bare = keytool(timeout=60)
    assert bare.returncode == 2 and bare.stderr == ""
    assert bare.stdout.count("Usage: keytool") == 1 and "copy-id" in bare.stdout

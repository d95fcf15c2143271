"""authorized_keys options as sshd reads them (sshd(8), auth-options.c): the option list
ends at the first space or TAB outside quotes, and commas split it outside quotes only."""

from __future__ import annotations

import pytest

from keytool.authkeys import parse_line, split_option_list, split_options
from keytool.keys.ed25519 import Ed25519Private
from keytool.keys.pubfile import format_public_line


@pytest.fixture(scope="module")
def key_line() -> str:
    return format_public_line(Ed25519Private.generate().public, "me@host")


@pytest.mark.parametrize("blank", [" ", "\t", "\t ", " \t"], ids=repr)
def test_options_end_at_a_space_or_a_tab(key_line: str, blank: str) -> None:
    entry = parse_line(f"no-pty{blank}{key_line}")
    assert entry is not None
    assert entry.options == "no-pty"
    assert format_public_line(entry.key, entry.comment) == key_line
    assert entry.comment == "me@host"


def test_a_tab_inside_quotes_belongs_to_the_option(key_line: str) -> None:
    entry = parse_line(f'command="echo\ta b",no-pty\t{key_line}')
    assert entry is not None
    assert entry.options == 'command="echo\ta b",no-pty'
    assert split_options('from="a b"\tssh-ed25519 AAAA c') == ('from="a b"', "ssh-ed25519 AAAA c")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ('from="a,b",no-pty', ['from="a,b"', "no-pty"]),
        ('no-pty,from="192.0.2.1,198.51.100.7"', ["no-pty", 'from="192.0.2.1,198.51.100.7"']),
        ('command="a,b,c",from="x,y",restrict', ['command="a,b,c"', 'from="x,y"', "restrict"]),
        ("no-pty,,restrict", ["no-pty", "restrict"]),
    ],
)
def test_option_lists_split_at_commas_outside_quotes(options: str, expected: list[str]) -> None:
    assert split_option_list(options) == expected

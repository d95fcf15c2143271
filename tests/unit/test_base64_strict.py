"""Base64 and line ends as OpenSSH reads them (b64_pton, C strings), without the peers:
the forms ssh-keygen was seen to refuse or take (tests/interop/test_key_lines_as_openssh.py
asks it), held here as plain expectations."""

from __future__ import annotations

import base64

import pytest

from keytool.authkeys import split_options
from keytool.errors import FormatError
from keytool.fields import b64_decode, c_line
from keytool.keys.pubfile import decode_blob
from keytool.knownhosts import _split_hashed, hash_name

DATA = bytes(range(40, 80))  # 40 bytes: one '=' of padding
WORD = base64.b64encode(DATA).decode()


@pytest.mark.parametrize(
    "word",
    [
        WORD + "=",  # extra padding
        WORD + "==",
        WORD.rstrip("="),  # padding missing
        WORD[:-2] + "b=",  # bits left over in the last character
        WORD[:8] + "=" + WORD[8:],  # padding inside
        WORD[:8] + "====" + WORD[8:],
        WORD[:8] + "*" + WORD[9:],  # not of the alphabet
        WORD.replace("+", "-").replace("/", "_") + "-_",
        "=",
        "A",
    ],
)
def test_refused_as_b64_pton_refuses(word: str) -> None:
    with pytest.raises(ValueError):
        b64_decode(word)
    with pytest.raises(FormatError):
        decode_blob(word)


def test_unpadded_data_with_extra_padding_refused() -> None:
    word = base64.b64encode(b"abc").decode()
    assert b64_decode(word) == b"abc"
    for extra in ("=", "==", "===="):
        with pytest.raises(ValueError):
            b64_decode(word + extra)


@pytest.mark.parametrize("space", ["\r", "\n", "\v", "\f"])
def test_c_white_space_passed_over(space: str) -> None:
    assert b64_decode(WORD[:5] + space + WORD[5:] + space) == DATA
    assert b64_decode((WORD[:-1] + space + "=").encode()) == DATA
    with pytest.raises(ValueError):
        b64_decode(WORD[:5] + space + WORD[5:], skip_space=False)


def test_hashed_name_parts_must_be_canonical() -> None:
    hashed = hash_name("example.com")
    salt, digest = _split_hashed(hashed)
    _, _, salt64, digest64 = hashed.split("|")
    for bad in (
        f"|1|{salt64[:-2]}{chr(ord(salt64[-2]) ^ 1)}=|{digest64}",
        f"|1|{salt64}|{digest64[:-2]}{chr(ord(digest64[-2]) ^ 1)}=",
        f"|1|{salt64.rstrip('=')}|{digest64}",
        f"|1|{salt64}|{digest64}=",
        f"|1|{salt64[:4]}\f{salt64[4:]}|{digest64}",
    ):
        with pytest.raises(FormatError):
            _split_hashed(bad)
    assert (salt, digest) == _split_hashed(hashed)


def test_line_ends_at_its_first_nul() -> None:
    assert c_line("a b\0c") == "a b"
    assert c_line("\0a") == ""
    assert c_line("abc") == "abc"


@pytest.mark.parametrize(
    ("line", "options"),
    [
        ('command="echo \\\\" a b" c d', 'command="echo \\\\" a b"'),
        ('command="echo \\" a" b', 'command="echo \\" a"'),
        ('x=\\" a', 'x=\\"'),
        ("no-pty\tkey", "no-pty"),
        # the last backslash pairs with the quote: a second quote closes
        ('a="\\\\\\\\"" b', 'a="\\\\\\\\""'),
    ],
)
def test_options_end_where_sshd_ends_them(line: str, options: str) -> None:
    assert split_options(line)[0] == options


@pytest.mark.parametrize("line", ['command="echo \\\\\\" a', 'a="\\\\\\\\" b'])
def test_unclosed_quote_is_refused(line: str) -> None:
    with pytest.raises(FormatError):
        split_options(line)

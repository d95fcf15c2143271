"""keytool.fields: words cut at spaces and tabs only, as OpenSSH cuts its key lines."""

from __future__ import annotations

import pytest

from keytool.fields import base64_word, blank_or_line_end, first_word, skip_blanks, split_blanks


@pytest.mark.parametrize(
    "line, maxsplit, words",
    [
        ("a b c", -1, ["a", "b", "c"]),
        (" \t a \t b  c d ", 2, ["a", "b", "c d "]),  # the rest as it is
        ("a b ", 2, ["a", "b"]),  # no empty last word
        ("a  b c", 1, ["a", "b c"]),
        ("", 2, []),
        (" \t ", 2, []),
        ("a\xa0b\x0bc\x0cd\x1ce\x85f\r", -1, ["a\xa0b\x0bc\x0cd\x1ce\x85f\r"]),
        ("\x0ba b", 1, ["\x0ba", "b"]),  # only spaces and tabs skipped first
    ],
)
def test_split_blanks(line: str, maxsplit: int, words: list[str]) -> None:
    assert split_blanks(line, maxsplit) == words


def test_first_word_and_skip_blanks() -> None:
    assert first_word("\t@revoked\t host x") == ("@revoked", "host x")
    assert first_word("word") == ("word", "")
    assert first_word(" ") == ("", "")
    assert skip_blanks(" \t\r x ") == "\r x "


def test_base64_word_drops_c_white_space_only() -> None:
    assert base64_word("AA\rA\x0bA\x0c=\n") == "AAAA="
    assert base64_word(b"AA\rAA") == b"AAAA"
    assert base64_word("AA\xa0AA\x1c") == "AA\xa0AA\x1c"


@pytest.mark.parametrize(
    "line, blank", [("", True), (" \t", True), ("\r", True), (" \r", True), ("\x0c", False)]
)
def test_blank_or_line_end(line: str, blank: bool) -> None:
    assert blank_or_line_end(line) is blank

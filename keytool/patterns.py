"""OpenSSH's host patterns: ``*`` and ``?`` wildcards, ``!`` negation.

Used by known_hosts (comma-separated lists, case-insensitive) and ssh_config ``Host``
lines (space-separated arguments, case-sensitive). Unlike ``fnmatch`` there are no
``[...]`` classes: a ``[`` is literal, which known_hosts needs for ``[host]:port``.
"""

from __future__ import annotations

from collections.abc import Iterable

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """Lowercased as ssh lowercases host names and patterns: A-Z only (tolower in the
    C locale), so a name in another script is hashed, matched and expanded as ssh does."""
    return text.translate(_ASCII_LOWER)


def match_pattern(name: str, pattern: str) -> bool:
    """True when ``pattern`` (``*`` any run, ``?`` one character) covers all of ``name``."""
    if "*" not in pattern and "?" not in pattern:
        return name == pattern  # most patterns are plain names: no scan
    # Greedy scan with one backtrack point (the last ``*``): linear in practice and never
    # recursive, so a hostile pattern like ``*a*a*a*…`` cannot blow the stack.
    n = p = 0
    star = -1
    star_n = 0
    while n < len(name):
        if p < len(pattern) and pattern[p] == "*":
            star, star_n = p, n
            p += 1
        elif p < len(pattern) and (pattern[p] == "?" or pattern[p] == name[n]):
            n += 1
            p += 1
        elif star >= 0:
            star_n += 1
            n = star_n
            p = star + 1
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def match_any(name: str, patterns: Iterable[str]) -> bool:
    """OpenSSH's rule for a pattern list: some positive pattern matches ``name`` and no
    ``!pattern`` does. A list of only negations therefore never matches."""
    positive = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if match_pattern(name, pattern[1:]):
                return False
        elif not positive and match_pattern(name, pattern):
            positive = True
    return positive

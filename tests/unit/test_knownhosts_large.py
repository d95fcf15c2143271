"""Large known_hosts: a host is looked up without decoding the other lines' keys, by a
scan that decides as parsing every line would, whatever the file's blocks are."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keytool import hostcheck, knownhosts, knownhosts_update
from keytool import knownhosts_edit as edit
from keytool.errors import HostKeyError
from keytool.keys import generate
from keytool.keys.base import PublicKey
from keytool.keys.pubfile import format_public_line

KEY_A = generate("ed25519").public
KEY_B = generate("ed25519").public
KEY_EC = generate("ecdsa").public


def line(hosts: str, key: PublicKey, marker: str = "", comment: str = "") -> str:
    text = f"{marker + ' ' if marker else ''}{hosts} {format_public_line(key, comment)}"
    return text + "\n"


MIXED = (
    (
        "# h.example in a comment\n"
        + line("h.example,10.0.0.1", KEY_A)
        + line("[h.example]:2222", KEY_B, comment="h.example too")
        + line("*.example,!bad.example", KEY_EC)
        + line("H.EXAMPLE", KEY_EC).replace("\n", "\r\n")
        + line(knownhosts.hash_name("h.example"), KEY_B)
        + line(knownhosts.hash_name("[h.example]:2222"), KEY_A)
        + line("h.example", KEY_A, "@revoked")
        + line("*", KEY_EC, "@cert-authority")
        + "h.example ssh-ed25519 AAAAnotakey\n"  # malformed: a warning
        + "h.example\n"
        + "@bogus h.example ssh-ed25519 AAAA\n"
        + "|1|bad|hash "
        + format_public_line(KEY_A)
        + "\n"
        + "h.ex\xe9mple ssh-ed25519 AAAA\n"
        + "other.example "
        + format_public_line(KEY_A)
        + "\n"
        + "\n"
        + line("!h.example,*", KEY_B)
    ).encode("utf-8")
    + b"h.example \xff\xfe\n"
    + line("h.example", KEY_B).rstrip("\n").encode()
)

NAMES = ["h.example", "[h.example]:2222", "bad.example", "other.example", "absent", "[x]:1"]


def by_parsing(text: bytes, names: list[str]) -> list[knownhosts.KnownHost]:
    entries, _ = knownhosts.parse(text, "kh")
    return [e for e in entries if any(knownhosts.hosts_match(e.hosts, n) for n in names)]


@given(st.integers(min_value=1, max_value=200), st.sampled_from(NAMES), st.sampled_from(NAMES))
def test_scan_finds_what_parsing_every_line_finds(size: int, first: str, second: str) -> None:
    chunks = [MIXED[i : i + size] for i in range(0, len(MIXED), size)]
    entries, warnings = knownhosts.scan(knownhosts.line_blocks(chunks), [first, second], "kh")
    assert entries == by_parsing(MIXED, [first, second])
    every, _ = knownhosts.parse(MIXED, "kh")
    for key in (KEY_A, KEY_B, KEY_EC):
        for name, port in (("h.example", 22), ("h.example", 2222), ("bad.example", 22)):
            if knownhosts.lookup_name(name, port) in (first, second):
                status = knownhosts.check(entries, name, port, key)
                assert status == knownhosts.check(every, name, port, key)
    assert all(w.line_number for w in warnings)


def test_bad_lines_naming_the_host_are_warned_others_never_looked_at() -> None:
    _, warnings = knownhosts.scan([MIXED], ["h.example"], "kh")
    assert [w.line_number for w in warnings] == [10, 11, 12, 18]
    _, warnings = knownhosts.scan([MIXED], ["absent"], "kh")
    assert warnings == []  # no line holds the name: none is looked at


def test_scan_key_finds_the_key_under_any_name() -> None:
    found = knownhosts.scan_key(knownhosts.text_blocks(MIXED, 64), KEY_A, "kh")
    expected = knownhosts.entries_with_key(knownhosts.parse(MIXED, "kh")[0], KEY_A)
    assert found == expected and len(found) == 3


@given(st.integers(min_value=1, max_value=300), st.sampled_from(NAMES))
def test_edits_are_what_they_were_line_by_line(size: int, name: str) -> None:
    blocks = list(knownhosts.text_blocks(MIXED, size))
    assert b"".join(blocks) == MIXED
    found = edit.find(blocks, name)
    lines = MIXED.decode("utf-8", "surrogateescape").removesuffix("\n").split("\n")
    assert [(f.number, f.line) for f in found] == [
        (n, text)
        for n, text in enumerate(lines, start=1)
        if (fields := edit.line_fields(text)) is not None
        and edit._known_type(fields)
        and knownhosts.hosts_match(fields[1], name)
    ]
    new, removed = edit.remove(MIXED, name)
    gone = {f.number for f in removed}
    kept = [text for n, text in enumerate(lines, start=1) if n not in gone]
    assert new == "".join(f"{t}\n" for t in kept).encode("utf-8", "surrogateescape")


class Counting:
    """Counts the keys decoded while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = knownhosts.decode_key

        def counted(*args: object, **kwargs: object) -> PublicKey:
            self.count += 1
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(knownhosts, "decode_key", counted)


def many(count: int, last: str) -> bytes:
    body = "".join(f"host{i}.example {format_public_line(KEY_EC)}\n" for i in range(count))
    return (body + last).encode()


def test_checking_a_host_decodes_only_its_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole file was parsed, every key decoded, to check one host."""
    path = tmp_path / "kh"
    path.write_bytes(many(20000, line("[h.example]:2222", KEY_A)))
    decoded = Counting(monkeypatch)
    files = {"user_files": [str(path)], "global_files": []}
    assert hostcheck.host_key_hints_for("h.example", 2222, **files) == (["ssh-ed25519"], False)
    decision = hostcheck.verify_host_key("h.example", 2222, KEY_A, strict="yes", **files)  # type: ignore[arg-type]
    assert isinstance(decision.status, knownhosts.Known)
    assert decoded.count == 1  # one line names the host: read once for both looks


def test_a_fleet_reads_the_file_once_for_every_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """copy-id names its hosts first: each host's checks are then answered from one
    read of the file (it was read again for each host, a fleet's file at that)."""
    path = tmp_path / "kh"
    hosts = [(f"host{i}.example", 2200 + i) for i in range(0, 40, 7)]
    path.write_bytes(many(3000, "".join(line(f"[{h}]:{p}", KEY_A) for h, p in hosts)))
    opened = []
    real = hostcheck._open_known_hosts

    def counted(name: str) -> object:
        opened.append(name)
        return real(name)

    monkeypatch.setattr(hostcheck, "_open_known_hosts", counted)
    monkeypatch.setattr(hostcheck, "_EXPECTED", set())
    monkeypatch.setattr(hostcheck, "_SCANNED", {})
    hostcheck.expect_lookups(hosts)
    files = {"user_files": [str(path)], "global_files": []}
    for host, port in hosts:
        decision = hostcheck.verify_host_key(host, port, KEY_A, strict="yes", **files)  # type: ignore[arg-type]
        assert isinstance(decision.status, knownhosts.Known)
        with pytest.raises(HostKeyError, match="HAS CHANGED"):
            hostcheck.verify_host_key(host, port, KEY_B, strict="yes", **files)  # type: ignore[arg-type]
    assert opened == [str(path)]


def test_update_host_keys_decodes_only_the_host_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    text = many(20000, line("[h.example]:2222", KEY_B))
    calls = []
    real = knownhosts_update._Line.key

    def counted(self: knownhosts_update._Line) -> PublicKey | None:
        calls.append(self.number)
        return real(self)

    monkeypatch.setattr(knownhosts_update._Line, "key", counted)
    plan = knownhosts_update.plan([("kh", text)], "[h.example]:2222", [KEY_A])
    assert (plan.new, plan.old, plan.blocked) == ((KEY_A,), (KEY_B,), "")
    new, changes = knownhosts_update.replace_entries(text, "[h.example]:2222", [KEY_A], False)
    assert new == many(20000, line("[h.example]:2222", KEY_A))
    assert [c.line for c in changes] == [20001, 0]
    assert calls == [20001, 20001]

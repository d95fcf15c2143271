"""copy-id planning: the new authorized_keys bytes, compared by key blob, every other
line kept byte for byte; and our side of the remote script's protocol."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keytool.copyid import (
    REMOTE_COMMAND,
    REMOTE_SCRIPT,
    NewKey,
    PathInfo,
    RemoteFile,
    ShellExchange,
    line_blob,
    mode_from_ls,
    parse_diagnosis,
    plan_install,
    plan_remove,
    refusal_causes,
)
from keytool.errors import KeytoolError, ProtocolError
from keytool.keys import generate
from keytool.keys.pubfile import format_public_line

ED = generate("ed25519").public
ED2 = generate("ed25519").public
EC = generate("ecdsa", 256).public


def new(key: object, comment: str = "me@laptop") -> NewKey:
    assert key is not None
    return NewKey(key, format_public_line(key, comment))  # type: ignore[arg-type]


def line(key: object, comment: str = "old") -> bytes:
    return format_public_line(key, comment).encode() + b"\n"  # type: ignore[arg-type]


def test_install_into_missing_file() -> None:
    edit = plan_install(None, [new(ED)])
    assert edit.new_text == line(ED, "me@laptop")
    assert [k.key for k in edit.added] == [ED]


def test_install_into_empty_file() -> None:
    edit = plan_install(b"", [new(ED)])
    assert edit.new_text == line(ED, "me@laptop")


def test_install_appends_after_a_last_line_without_newline() -> None:
    old = b"# keep me\r\n" + line(EC).rstrip(b"\n")
    edit = plan_install(old, [new(ED)])
    assert edit.new_text == old + b"\n" + line(ED, "me@laptop")


def test_install_keeps_every_existing_byte() -> None:
    old = (
        b"  # comment with trailing spaces   \n"
        b"\n"
        b"garbage that is not a key\n"
        b'from="10.0.0.0/8",command="echo hi" ' + line(EC, "with options") + b"\t\n"
    )
    edit = plan_install(old, [new(ED)])
    assert edit.new_text is not None
    assert edit.new_text.startswith(old)
    assert edit.new_text[len(old) :] == line(ED, "me@laptop")


def test_install_compares_by_blob_ignoring_options_and_comment() -> None:
    old = b'no-pty,from="1.2.3.4" ' + line(ED, "another comment")
    edit = plan_install(old, [new(ED), new(EC)])
    assert edit.new_text == old + line(EC, "me@laptop")
    assert [k.key for k in edit.present] == [ED]
    assert [k.key for k in edit.added] == [EC]


def test_install_nothing_to_do() -> None:
    old = line(ED)
    edit = plan_install(old, [new(ED)])
    assert edit.new_text is None
    assert not edit.added


def test_install_force_appends_even_when_present() -> None:
    edit = plan_install(line(ED), [new(ED)], force=True)
    assert edit.new_text == line(ED) + line(ED, "me@laptop")


def test_install_same_key_twice_once() -> None:
    edit = plan_install(b"", [new(ED), new(ED, "other")])
    assert edit.new_text == line(ED, "me@laptop")


def test_remove_keeps_other_lines_byte_for_byte() -> None:
    old = b"# header\n" + line(EC) + b'command="x" ' + line(ED) + line(ED2) + line(ED, "again")
    edit = plan_remove(old, [new(ED)])
    assert edit.new_text == b"# header\n" + line(EC) + line(ED2)
    assert edit.removed_lines == 2
    assert [k.key for k in edit.removed] == [ED]


def test_remove_last_line_without_newline() -> None:
    old = line(EC) + line(ED).rstrip(b"\n")
    assert plan_remove(old, [new(ED)]).new_text == line(EC)


def test_remove_absent_key_changes_nothing() -> None:
    edit = plan_remove(line(EC), [new(ED)])
    assert edit.new_text is None
    assert [k.key for k in edit.present] == [ED]
    assert plan_remove(None, [new(ED)]).new_text is None


def test_line_blob() -> None:
    assert line_blob(line(ED)) == ED.to_wire()
    assert line_blob(b'restrict,command="a b" ' + line(ED)) == ED.to_wire()
    assert line_blob(b"# " + line(ED)) is None
    assert line_blob(b"ssh-ed25519 !!!notbase64") is None
    assert line_blob(b"\xff\xfe") is None


KEYS = [ED, ED2, EC]
LINE = st.one_of(
    st.sampled_from(KEYS).map(lambda k: line(k)),
    st.sampled_from(KEYS).map(lambda k: b'from="x" ' + line(k, "c")),
    st.binary(max_size=40)
    .filter(lambda b: b"\n" not in b and b"\r" not in b)
    .map(lambda b: b + b"\n"),
    st.just(b"# comment\n"),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(LINE, max_size=8), st.booleans(), st.sets(st.sampled_from(range(3)), min_size=1))
def test_plans_keep_lines_and_leave_each_key_once(
    lines: list[bytes], cut_last_newline: bool, picked: set[int]
) -> None:
    old = b"".join(lines)
    if cut_last_newline and old.endswith(b"\n"):
        old = old[:-1]
    keys = [new(KEYS[i]) for i in sorted(picked)]
    installed = plan_install(old, keys)
    text = installed.new_text if installed.new_text is not None else old
    assert text.startswith(old)
    blobs = [line_blob(raw) for raw in text.splitlines()]
    for key in keys:
        assert key.blob in blobs
    removed = plan_remove(text, keys)
    after = removed.new_text if removed.new_text is not None else text
    assert all(line_blob(raw) not in {k.blob for k in keys} for raw in after.splitlines())
    # every surviving line is an original line, in order
    kept = [
        raw
        for raw in text.splitlines(keepends=True)
        if line_blob(raw) not in {k.blob for k in keys}
    ]
    assert after == b"".join(kept)


def test_script_travels_through_any_login_shell() -> None:
    # inside '...' for sh, bash, fish, csh and tcsh alike: no quote, no backslash
    # escape fish would take, no history "!", one line for csh
    assert "'" not in REMOTE_SCRIPT
    assert "\\\\" not in REMOTE_SCRIPT
    assert "!" not in REMOTE_SCRIPT
    assert "\n" not in REMOTE_SCRIPT
    assert f"exec sh -c '{REMOTE_SCRIPT}'" == REMOTE_COMMAND
    assert "umask 077" in REMOTE_SCRIPT


def test_exchange_reads_header_and_file_in_pieces() -> None:
    exchange = ShellExchange("", mark="m" * 32)
    assert exchange.opening() == b"keytool-copyid 3 " + b"m" * 32 + b"\n\n"
    stream = (
        b"Welcome to the login script\nkeytool-copyid 3\n.ssh/authorized_keys\nfile\n"
        + b"ab\ncd"
        + b"m" * 32
        + b"\n"
    )
    remote = None
    for byte in stream:
        got = exchange.feed(bytes([byte]))
        remote = remote or got
    assert remote is not None
    assert remote.path == ".ssh/authorized_keys"
    assert remote.content == b"ab\ncd"
    assert not exchange.done
    exchange.feed(b"keytool-copyid done\n")
    assert exchange.done


def test_exchange_mark_is_fresh_and_ends_the_file() -> None:
    assert ShellExchange().mark != ShellExchange().mark
    exchange = ShellExchange(mark="abc")
    # bytes of the file that look like the end of it do not end it
    remote = exchange.feed(b"keytool-copyid 3\nf\nfile\nab\nabcd\nabc\nkeytool-copyid done\n")
    assert remote is not None and remote.content == b"ab\nabcd\n"
    assert exchange.done


def test_exchange_missing_file_and_replies() -> None:
    exchange = ShellExchange("keys/extra", mark="0f")
    assert exchange.opening() == b"keytool-copyid 3 0f\nkeys/extra\n"
    assert exchange.feed(b"keytool-copyid 3\nkeys/extra\nnone\n") is None
    remote = exchange.feed(b"0f\n")
    assert remote == RemoteFile("keys/extra", None, None)
    assert ShellExchange.reply(None, b"x\n") == b"keep\n"
    # the new bytes extend the old ones: only the lines to add travel
    assert ShellExchange.reply(b"abc\n", None) == b"append 1\nabc\n"
    assert ShellExchange.reply(b"x\nabc\nd\n", b"x\n") == b"append 2\nabc\nd\n"
    assert ShellExchange.reply(b"x\nabc\n", b"x") == b"append 2\n\nabc\n"
    # anything else is the whole file
    assert ShellExchange.reply(b"abc\n", b"x\n") == b"write 4\nabc\n"
    assert ShellExchange.reply(b"x\na\0c\n", b"x\n") == b"write 6\nx\na\0c\n"
    assert ShellExchange.reply(b"", None) == b"write 0\n"


def test_exchange_refuses_bad_output() -> None:
    with pytest.raises(ProtocolError):
        ShellExchange().feed(b"keytool-copyid 3\nx\n-1\n")
    with pytest.raises(ProtocolError):
        ShellExchange(mark="ab").feed(b"keytool-copyid 3\nx\nnone\nzzab\n")
    with pytest.raises(ProtocolError):
        ShellExchange().feed(b"x" * (70 * 1024))
    with pytest.raises(KeytoolError):
        ShellExchange("a\nb")


def test_mode_from_ls() -> None:
    assert mode_from_ls("-rw-------") == 0o600
    assert mode_from_ls("drwxr-xr-x.") == 0o755
    assert mode_from_ls("drwxrwxrwt") == 0o1777
    assert mode_from_ls("-rwsr-S---") == 0o6740
    assert PathInfo.parse("drwxrwxr-x 2 1001 1001 4096 Jan 1 00:00 .") == PathInfo(0o775, 1001)
    assert PathInfo.parse("ls: cannot access") is None


def test_refusal_causes_name_group_writable_home_first() -> None:
    remote = parse_diagnosis(
        RemoteFile(".ssh/authorized_keys", b"", None),
        b"drwxrwxr-x 2 1001 1001 4096 Jan 1 00:00 .\n"
        b"drwx------ 2 1001 1001 4096 Jan 1 00:00 .ssh\n"
        b"-rw------- 1 1001 1001 80 Jan 1 00:00 .ssh/authorized_keys\n",
    )
    causes = refusal_causes(remote)
    assert causes[0].startswith("StrictModes: the home folder is writable by group or others")
    assert "AuthorizedKeysFile" in causes[1]
    plain = refusal_causes(RemoteFile("x", b"", 0o600, PathInfo(0o755, 1), PathInfo(0o700, 1)))
    assert "AuthorizedKeysFile" in plain[0]


def test_a_file_without_its_end_mark_is_bounded() -> None:
    """A remote shell that sends the header, then bytes without end: refused past the
    largest file read back, never kept growing (and once the file is in, only the tail
    that may hold the done line is kept)."""
    from keytool.copyid import MAX_REMOTE_FILE, ShellExchange

    exchange = ShellExchange(mark="ab" * 16)
    assert exchange.feed(b"keytool-copyid 3\n.ssh/authorized_keys\nfile\n") is None
    chunk = b"x" * (1024 * 1024)
    with pytest.raises(ProtocolError, match="over 16 MiB"):
        for _ in range(MAX_REMOTE_FILE // len(chunk) + 2):
            exchange.feed(chunk)
    done = ShellExchange(mark="cd" * 16)
    remote = done.feed(b"keytool-copyid 3\nf\nnone\n" + b"cd" * 16 + b"\n")
    assert remote is not None and remote.content is None
    for _ in range(64):
        done.feed(chunk)
    assert len(done._buffer) < 64 and not done.done
    done.feed(b"keytool-copyid done\n")
    assert done.done


def test_what_a_server_says_is_printed_made_safe() -> None:
    from keytool.cli.copyid import _line
    from keytool.copyid_host import HostResult
    from keytool.fleet import one_line

    result = HostResult("u@h", "installed", "1 key added to .ssh/\x1b]0;PWNED\x07\x1b[2Jkeys")
    assert "\x1b" not in _line(result) and "\x07" not in _line(result)
    assert _line(result).endswith("1 key added to .ssh/?]0;PWNED??[2Jkeys")
    assert "\x1b" not in one_line("line one\nHost key \x1b[31mchanged\x1b[0m\nfailed.")

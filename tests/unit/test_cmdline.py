"""ssh's ~C command line read as ssh reads it (keytool.cmdline); the interop tests type
it into both clients on a terminal."""

from __future__ import annotations

import pytest

from keytool import cmdline
from keytool.forwardspec import DynamicForward, LocalForward, RemoteForward


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("", cmdline.NOTHING),
        ("   -", cmdline.NOTHING),
        ("-L 8080:db:5432", cmdline.LOCAL),
        ("L8080:db:5432", cmdline.LOCAL),  # the dash may be left out
        ("-D 1080", cmdline.LOCAL),
        ("-R 9000:localhost:22", cmdline.REMOTE),
        ("-KL 8080", cmdline.CANCEL_LOCAL),
        ("-KD [127.0.0.1]:1080", cmdline.CANCEL_DYNAMIC),
        ("  -KR 9000", cmdline.CANCEL_REMOTE),
    ],
)
def test_what_a_line_asks_for(line: str, kind: str) -> None:
    assert cmdline.parse(line, False).kind == kind


def test_the_forwards_it_names() -> None:
    local = cmdline.parse("-L 127.0.0.1:8080:db:5432", False).forward
    assert local == LocalForward("127.0.0.1", 8080, "db", 5432)
    dynamic = cmdline.parse("-D 1080", False).forward
    assert isinstance(dynamic, DynamicForward) and dynamic.listen_port == 1080
    remote = cmdline.parse("-R 0:localhost:22", False).forward
    assert isinstance(remote, RemoteForward) and remote.listen_port == 0
    cancel = cmdline.parse("-KL [::1]:8080", False)
    assert (cancel.bind, cancel.port, cancel.path) == ("::1", 8080, None)
    # a cancel matches by where it listens, -KD only dynamic forwards
    assert cmdline.matches(LocalForward(None, 8080, "db", 5432), cmdline.parse("-KL 8080", False))
    elsewhere = cmdline.parse("KL [127.0.0.1]:8080", False)
    assert not cmdline.matches(LocalForward("::1", 8080, "h", 1), elsewhere)
    assert not cmdline.matches(DynamicForward(None, 8080), cmdline.parse("-KL 8080", False))
    assert cmdline.matches(DynamicForward(None, 8080), cmdline.parse("-KD 8080", False))


@pytest.mark.parametrize(
    ("line", "permit", "words"),
    [
        ("bogus", False, ("Invalid command.",)),
        ("-K", False, ("Invalid command.",)),
        ("!ls", False, ("Invalid command.",)),  # only with PermitLocalCommand
        ("-L nonsense", False, ("Bad local forwarding specification.",)),
        ("-D a:b:c", False, ("Bad local forwarding specification.",)),
        ("-R a:b", False, ("Bad remote forwarding specification.",)),
        ("-KL a:b:c", False, ("Bad forwarding close specification.",)),
    ],
)
def test_ssh_s_words_for_a_bad_line(line: str, permit: bool, words: tuple[str, ...]) -> None:
    command = cmdline.parse(line, permit)
    assert (command.kind, command.words) == (cmdline.SAY, words)


def test_help_and_local_commands() -> None:
    shown = cmdline.parse("?", False).words
    assert shown[0] == "Commands:" and len(shown) == 7
    assert cmdline.parse("h", True).words[-1].endswith("Execute local command")
    command = cmdline.parse("!echo hi", True)
    assert (command.kind, command.command) == (cmdline.LOCAL_COMMAND, "echo hi")

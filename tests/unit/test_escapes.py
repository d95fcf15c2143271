"""ssh's escapes on a terminal (keytool.ttymodes): what is taken, what is sent on, and
the words ssh writes for them."""

from __future__ import annotations

from keytool import ttymodes as tty


def test_escapes_only_at_the_start_of_a_line() -> None:
    escapes = tty.Escapes()
    assert escapes.feed(b"~?ls ~. x\r~B~R~#") == (
        b"ls ~. x\r",
        [tty.HELP, tty.BREAK, tty.REKEY, tty.LIST],
    )
    # another character after the escape: both are sent; ~~ sends one ~
    assert escapes.feed(b"~x\n~~\n~C") == (b"~x\n~\n", [tty.COMMAND_LINE])
    # input after ~. is dropped; an escape cut between two reads is still one
    assert escapes.feed(b"\n~.rest") == (b"\n", [tty.DISCONNECT])
    split = tty.Escapes(ord("\x01"))
    assert split.feed(b"\x01") == (b"", [])
    assert split.feed(b"B~.") == (b"~.", [tty.BREAK])


def test_words_as_ssh_writes_them() -> None:
    text = tty.help_text(ord("~"))
    assert text.startswith("~?\r\nSupported escape sequences:\r\n")
    assert " ~.   - terminate connection (and any multiplexed sessions)\r\n" in text
    assert " ~B   - send a BREAK to the remote system\r\n" in text
    assert text.endswith(
        " ~~   - send the escape character by typing it twice\r\n"
        "(Note that escapes are only recognized immediately after newline.)\r\n"
    )
    shared = tty.help_text(ord("~"), shared=True)
    assert " ~.   - terminate session\r\n" in shared and "multiplexed" not in shared
    assert tty.echo(1, tty.DISCONNECT) == "\x01.\r\n"
    assert tty.echo(ord("~"), tty.COMMAND_LINE) == "commandline disabled\r\n"
    assert tty.echo(ord("~"), tty.HELP) == ""
    assert tty.open_channels([(0, "session")]) == (
        "The following connections are open:\r\n  #0 session\r\n"
    )

"""What is taken of a line typed at a prompt or printed by an askpass program, as
OpenSSH takes it (readpassphrase and ssh_askpass read into a 1024-byte C string), and
whom ControlMaster=ask asks (ssh's ask_permission: askpass alone). The interop tests
type the same lines into ssh-keygen and keytool."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from keytool import prompting, terminal


@pytest.mark.parametrize(
    ("typed", "taken"),
    [
        (b"secret\n", "secret"),
        (b"a" * 1100 + b"\n", "a" * 1023),  # 1023 bytes, the rest of the line dropped
        (b"a" * 1023 + b"\n", "a" * 1023),
        (b"ab\rcd\n", "ab"),  # a carriage return typed (^V ^M) ends it
        (b"ab\0cd\n", "ab"),  # and a NUL, where the C string ends
        (b"sec", "sec"),  # end of input after some text
        (b"\n", ""),
        (b"p\xe9w\n", "p\udce9w"),  # not UTF-8: its bytes kept
    ],
)
def test_a_typed_line_as_readpassphrase_takes_it(typed: bytes, taken: str) -> None:
    assert terminal.typed_line(typed) == taken


def test_nothing_typed_at_all_is_no_answer() -> None:
    assert terminal.typed_line(b"") is None


def _askpass(folder: Path, printed: bytes) -> Path:
    """A program that prints ``printed`` and logs each prompt asked."""
    (folder / "answer").write_bytes(printed)
    script = folder / "askpass"
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{folder}/asked"\ncat "{folder}/answer"\n'
    )
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    ("printed", "taken"),
    [
        (b"a" * 1100 + b"\n", "a" * 1023),  # ssh reads 1023 bytes of it
        (b"a" * 1030, "a" * 1023),
        (b"ab\rcd\n", "ab"),
        (b"ab\0cd\n", "ab"),
        (b"first\nsecond\n", "first"),
    ],
)
def test_an_askpass_answer_as_ssh_askpass_takes_it(
    tmp_path: Path, printed: bytes, taken: str
) -> None:
    program = str(_askpass(tmp_path, printed))
    assert terminal.run_askpass(program, "Passphrase: ") == taken
    assert asyncio.run(prompting.run_askpass(program, "Passphrase: ")) == taken


#: the askpass environment of a ControlMaster=ask master, and whether ssh's would ask
#: (and so allow, the program answering yes): on a display or forced, never "never"
PERMISSION = {
    "no askpass": ({"DISPLAY": ":0"}, False),
    "no display": ({"SSH_ASKPASS": "{askpass}"}, False),
    "prefer, no display": ({"SSH_ASKPASS": "{askpass}", "SSH_ASKPASS_REQUIRE": "prefer"}, False),
    "display": ({"SSH_ASKPASS": "{askpass}", "DISPLAY": ":0"}, True),
    "wayland": ({"SSH_ASKPASS": "{askpass}", "WAYLAND_DISPLAY": "wayland-0"}, True),
    "forced": ({"SSH_ASKPASS": "{askpass}", "SSH_ASKPASS_REQUIRE": "FORCE"}, True),
    "never": ({"SSH_ASKPASS": "{askpass}", "SSH_ASKPASS_REQUIRE": "Never", "DISPLAY": ":0"}, False),
}  # fmt: skip


@pytest.mark.parametrize(("env", "asked"), PERMISSION.values(), ids=PERMISSION.keys())
def test_a_permission_is_asked_through_askpass_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], asked: bool
) -> None:
    """Never on the terminal (that would hold the master up, unseen, as a client
    waits): with no askpass program to run, a no."""
    program = _askpass(tmp_path, b"yes\n")
    for name in ("SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(askpass=program))

    def no_terminal(prompt: str, hidden: bool = False) -> str | None:
        raise AssertionError(f"asked on the terminal: {prompt!r}")

    monkeypatch.setattr(terminal, "ask_terminal", no_terminal)
    assert terminal.ask_permission("Allow shared connection to host? ") is asked
    asked_file = tmp_path / "asked"
    shown = asked_file.read_text() if asked_file.exists() else ""
    assert shown == ("Allow shared connection to host? \n" if asked else "")

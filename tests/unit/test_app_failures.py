"""Failures no command sees coming end in one line, never a traceback: too little
memory (``ulimit -v``: a MemoryError, or a compiled module that cannot be mapped, as
cryptography's under a low limit: "ImportError: ..._rust.abi3.so: failed to map
segment from shared object" after 20 lines of traceback, status 1). The status is
the command's usual failure: 255 in ssh-keygen's place and for exec, else 1."""

from __future__ import annotations

import pytest

from keytool.cli import app


def _main(monkeypatch: pytest.MonkeyPatch, args: list[str], error: BaseException) -> int:
    def fail(_args: list[str]) -> int:
        raise error

    monkeypatch.setattr(app, "_run", fail)
    with pytest.raises(SystemExit) as ended:
        app.main(args)
    assert isinstance(ended.value.code, int)
    return ended.value.code


LIBRARY = "/usr/lib/python3/site-packages/cryptography/hazmat/bindings/_rust.abi3.so"


@pytest.mark.parametrize(("command", "status"), [("gen", 255), ("exec", 255), ("add", 1)])
def test_a_module_that_cannot_be_mapped_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str, status: int
) -> None:
    error = ImportError(f"{LIBRARY}: failed to map segment from shared object", path=LIBRARY)
    assert _main(monkeypatch, [command], error) == status
    err = capsys.readouterr().err
    assert err == f"keytool: cannot load {LIBRARY}: failed to map segment from shared object\n"


@pytest.mark.parametrize(("command", "status"), [("passwd", 255), ("agent", 1)])
def test_out_of_memory_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str, status: int
) -> None:
    assert _main(monkeypatch, [command], MemoryError()) == status
    assert capsys.readouterr().err == "keytool: out of memory\n"


def test_a_name_missing_in_our_own_modules_is_a_bug_shown_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ImportError):
        _main(monkeypatch, ["gen"], ImportError("cannot import name 'x' from 'keytool.y'"))

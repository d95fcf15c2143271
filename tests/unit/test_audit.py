"""The best-practice rules of keytool check, over hand-made snapshots."""

from __future__ import annotations

from keytool.audit import FileFacts, review

USER = 1000


def levels(*files: FileFacts) -> list[tuple[str, str, int | None]]:
    return [(f.path, f.level, f.fix_mode) for f in review(list(files), USER)]


def test_folders() -> None:
    assert (
        levels(FileFacts("/h", "home", 0o755, USER), FileFacts("/h/.ssh", "ssh_dir", 0o700, USER))
        == []
    )
    assert levels(FileFacts("/h", "home", 0o775, USER)) == [("/h", "fail", 0o755)]
    assert levels(FileFacts("/h/.ssh", "ssh_dir", 0o750, USER)) == [("/h/.ssh", "warn", 0o700)]
    assert levels(FileFacts("/h/.ssh", "ssh_dir", 0o770, USER)) == [("/h/.ssh", "fail", 0o700)]
    assert levels(FileFacts("/h/.ssh", "ssh_dir", 0o700, 0)) == []  # root may own it
    assert levels(FileFacts("/h/.ssh", "ssh_dir", 0o700, 1234))[0][1] == "fail"


def test_files() -> None:
    key = FileFacts("/k", "private", 0o600, USER, "ssh-ed25519", 256, True)
    assert levels(key) == []
    assert levels(FileFacts("/k", "private", 0o640, USER, "ssh-ed25519", 256, True)) == [
        ("/k", "fail", 0o600)
    ]
    assert [
        x[1] for x in levels(FileFacts("/k", "private", 0o600, USER, "ssh-rsa", 1024, False))
    ] == [
        "warn",
        "warn",
    ]
    assert levels(FileFacts("/a", "authorized_keys", 0o644, USER)) == [("/a", "warn", 0o600)]
    assert levels(FileFacts("/a", "authorized_keys", 0o664, USER)) == [("/a", "fail", 0o600)]
    assert levels(FileFacts("/c", "config", 0o600, USER)) == []
    assert levels(FileFacts("/p", "public", 0o644, USER, "ssh-dss", 1024)) == [("/p", "warn", None)]
    assert levels(FileFacts("/p", "public", 0o666, USER, "ssh-ed25519", 256)) == [
        ("/p", "warn", 0o644)
    ]

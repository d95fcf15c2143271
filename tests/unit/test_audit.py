"""The best-practice rules of keytool check, over hand-made snapshots."""

from __future__ import annotations

from keytool import audit
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


def test_authorized_keys_lines() -> None:
    lines = [
        audit.KeyLine(1, "ssh-ed25519", 256),
        audit.KeyLine(2, "ssh-dss", None),
        audit.KeyLine(3, "ssh-rsa", 768),
        audit.KeyLine(4, "ssh-rsa", 1024),
        audit.KeyLine(5, "ssh-rsa", 3072),
        audit.KeyLine(6, None, None, "bad base64"),
    ]
    found = [audit.review_key_line("ak", line) for line in lines]
    said = [(f.level, f.message) for f in found if f is not None]
    assert said == [
        ("warn", "line 2: a DSA key: sshd no longer accepts it"),
        ("warn", "line 3: an RSA key of 768 bits: sshd refuses it"),
        ("warn", "line 4: an RSA key of 1024 bits: too weak today (under 2048)"),
        ("warn", "line 6: sshd cannot read it (bad base64)"),
    ]


def test_config_for_every_host() -> None:
    safe = audit.EveryHost("ask", ("~/.ssh/known_hosts",), "no")
    assert audit.review_config("c", safe) == []
    risky = audit.EveryHost("no", ("/dev/null",), "yes", ("ssh-dss", "ssh-rsa"))
    said = [f.message.split(" for every host")[0] for f in audit.review_config("c", risky)]
    assert said == [
        "StrictHostKeyChecking no",
        "UserKnownHostsFile /dev/null",
        "ForwardAgent",
        "ssh-dss, ssh-rsa allowed",
    ]
    # accept-new still refuses a changed key; one real file among them still remembers
    kept = audit.EveryHost("accept-new", ("/dev/null", "~/.ssh/kh"), "no")
    assert audit.review_config("c", kept) == []

"""What ssh refuses in a config file, and what it takes that looks odd, side by side
with ``keytool exec -G``: a config file others may write, a bad line in a block that
does not apply (or in a file included from one), an unknown keyword; bytes that are
not UTF-8, deprecated keywords, ``Match host=a``, ``ProxyCommand NONE``, the final
pass. ``ssh -G`` on the same file is the reference, its status and its words."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from keytool import sshconfig
from keytool.errors import FormatError
from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require, run


def both(
    config: Path, host: str, *flags: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], ...]:
    """ssh -G and keytool exec -G on the same file and host."""
    env = env or base_env()
    theirs = run(
        [require("ssh"), "-G", "-F", str(config), *flags, host],
        stdin=subprocess.DEVNULL,
        env=env,
    )
    ours = run(
        [*KEYTOOL, "exec", "-G", "-F", str(config), *flags, host],
        stdin=subprocess.DEVNULL,
        env=env,
    )
    return theirs, ours


def errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines on stderr, without ssh's note about the terminal or keytool's name."""
    lines = [line for line in done.stderr.splitlines() if "Pseudo-terminal" not in line]
    return [line.removeprefix("keytool: ") for line in lines]


def shown(done: subprocess.CompletedProcess[str], *keys: str) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.split(" ")[0] in keys]


def assert_same_refusal(config: Path, host: str = "h", *flags: str) -> list[str]:
    theirs, ours = both(config, host, *flags)
    assert theirs.returncode == 255, theirs
    assert (ours.returncode, errors(ours)) == (255, errors(theirs))
    assert ours.stdout == ""
    return errors(theirs)


# --- 1. who may write a config file -------------------------------------------------


@pytest.mark.parametrize("mode", [0o666, 0o602, 0o622])
def test_an_included_file_others_may_write_is_refused_as_by_ssh(tmp_path: Path, mode: int) -> None:
    """Its ProxyCommand would run as us: ssh refuses it (even under -F), keytool too,
    and neither runs the command."""
    marker = tmp_path / "ran"
    included = tmp_path / "inc.conf"
    included.write_text(f"ProxyCommand touch {marker}\n")
    included.chmod(mode)
    config = tmp_path / "config"
    config.write_text(f"Host *\n  Include {included}\n")
    said = assert_same_refusal(config)
    assert said == [f"Bad owner or permissions on {included}"]
    for program in ([require("ssh")], [*KEYTOOL, "exec"]):
        done = run([*program, "-F", str(config), "h", "true"], stdin=subprocess.DEVNULL)
        assert done.returncode == 255
    assert not marker.exists()


def test_an_included_file_of_another_owner_is_refused_as_by_ssh(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to give a file away")
    included = tmp_path / "inc.conf"
    included.write_text("Port 2\n")
    included.chmod(0o644)
    os.chown(included, 65534, 65534)
    config = tmp_path / "config"
    config.write_text(f"Include {included}\n")
    assert_same_refusal(config)
    # an included file from a block that does not apply is checked too
    config.write_text(f"Host nomatch\n  Include {included}\n")
    assert_same_refusal(config)


def test_group_writable_as_ssh_decides(tmp_path: Path) -> None:
    """Group-writable: Debian's ssh takes it when the group's one member is the owner
    (a private group), refuses it otherwise; keytool decides the same."""
    import grp

    included = tmp_path / "inc.conf"
    included.write_text("Port 2\n")
    included.chmod(0o664)
    config = tmp_path / "config"
    config.write_text(f"Include {included}\n")
    groups = [os.getgid()]
    if os.getuid() == 0:
        groups += [g.gr_gid for g in grp.getgrall() if g.gr_name in ("adm", "users", "nogroup")]
    for gid in groups:
        os.chown(included, os.getuid(), gid)
        theirs, ours = both(config, "h")
        assert (ours.returncode, errors(ours)) == (theirs.returncode, errors(theirs)), gid


def test_the_dash_F_file_itself_is_not_checked(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Port 2022\n")
    config.chmod(0o666)
    theirs, ours = both(config, "h")
    assert (theirs.returncode, ours.returncode) == (0, 0)
    assert shown(ours, "port") == shown(theirs, "port") == ["port 2022"]


def test_the_user_config_is_checked_as_an_included_file(tmp_path: Path) -> None:
    """~/.ssh/config: ssh checks it as it checks an included file (same words)."""
    dot_ssh = tmp_path / ".ssh"
    dot_ssh.mkdir()
    user_config = dot_ssh / "config"
    user_config.write_text("Port 2\n")
    user_config.chmod(0o646)
    config = tmp_path / "config"
    config.write_text(f"Include {user_config}\n")
    said = assert_same_refusal(config)
    with pytest.raises(FormatError) as refused:
        sshconfig.load("h", home=str(tmp_path))
    assert [str(refused.value)] == said
    user_config.chmod(0o644)
    assert sshconfig.load("h", home=str(tmp_path)).port == 2


# --- 4. bytes -----------------------------------------------------------------------


def test_bytes_that_are_not_utf8_are_read_as_ssh_reads_them(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_bytes(b"# caf\xe9 au lait\nHost h\n  Port 2200 # \xff\n  User bob\n")
    theirs, ours = both(config, "h")
    assert (theirs.returncode, ours.returncode, errors(ours)) == (0, 0, [])
    assert shown(ours, "port", "user") == shown(theirs, "port", "user")


# --- 6. every line checked, applying or not -----------------------------------------

BAD_LINES = [
    "LocalForward bad",
    "LocalForward 1 2 3",
    "IPQoS bogus",
    "SetEnv noequals",
    "AddKeysToAgent maybe",
    "RekeyLimit 1X",
    "Port",
    "Port abc",
    "Hostname a b",
    "ProxyJump bad:port",
    "Bogus yes",
    "Bogus",
    "ForwardAgent $HOME/x",
]


@pytest.mark.parametrize("line", BAD_LINES)
def test_a_bad_line_in_a_block_that_does_not_apply_as_ssh(tmp_path: Path, line: str) -> None:
    config = tmp_path / "config"
    config.write_text(f"Host nomatch\n  {line}\nHost *\n  User u\n")
    assert_same_refusal(config)


def test_every_bad_line_is_counted_as_by_ssh(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host x\n  Bogus yes\n  Port abc\nHost h\n  SetEnv A\n")
    assert len(assert_same_refusal(config)) == 4


@pytest.mark.parametrize("block", ["Host nomatch", "Host h"])
def test_an_included_file_is_read_and_checked_from_any_block(tmp_path: Path, block: str) -> None:
    included = tmp_path / "inc.conf"
    included.write_text("Port abc\n")
    config = tmp_path / "config"
    config.write_text(f"{block}\n  Include {included}\nHost *\n  User u\n")
    assert_same_refusal(config)


def test_ignore_unknown_before_it_as_ssh(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("IgnoreUnknown bog*,Use*\nHost h\n  Bogus yes\n  UseKeychain no\n")
    theirs, ours = both(config, "h")
    assert (theirs.returncode, ours.returncode, errors(ours)) == (0, 0, errors(theirs))


# --- 5. aliases and deprecated keywords ---------------------------------------------


def test_old_aliases_as_ssh(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host h\n  DSAAuthentication no\n  TISAuthentication no\n")
    theirs, ours = both(config, "h")
    keys = ("pubkeyauthentication", "kbdinteractiveauthentication")
    assert ours.returncode == theirs.returncode == 0
    assert shown(ours, *keys) == shown(theirs, *keys)


DEPRECATED = [
    "Cipher blowfish",
    "UsePrivilegedPort yes",
    "FallBackToRsh no",
    "UseRsh no",
    "RhostsAuthentication no",
    "GlobalKnownHostsFile2 /x",
    "UserKnownHostsFile2 /x",
    "CompressionLevel 5",
    "KerberosAuthentication yes",
    "UseBlacklistedKeys no",
    "RSAAuthentication yes",
]


@pytest.mark.parametrize("option", DEPRECATED)
def test_deprecated_keywords_in_dash_o_as_ssh(tmp_path: Path, option: str) -> None:
    config = tmp_path / "config"
    config.write_text("Host h\n")
    theirs, ours = both(config, "h", "-o", option)
    assert (ours.returncode, errors(ours)) == (theirs.returncode, errors(theirs))
    config.write_text(f"Host h\n  {option}\n")
    theirs, ours = both(config, "h")
    assert (ours.returncode, errors(ours)) == (theirs.returncode, errors(theirs))


# --- 2, 3, 7, 9, 10: values as ssh takes them ---------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "keys", "flags"),
    [
        (
            "Host alias\n  HostName Real.Example\nMatch final\nHost real.example\n  User bob\n"
            "  Port 2000\nHost alias\n  User typed\n",
            "alias",
            ("user", "port", "hostname"),
            (),
        ),
        ("Host a\n  HostName 127.0.0.1\n  ProxyCommand NONE\n", "a", ("proxycommand",), ()),
        ("Host a\n  ProxyJump NONE\n", "a", ("proxyjump", "proxycommand"), ()),
        ("Host a\n  ProxyJump None\n  ProxyCommand nc %h %p\n", "a", ("proxycommand",), ()),
        ("Match host=h\n  User m\nMatch host=h user=x\n  Port 7\n", "h", ("user", "port"), ()),
        ("Host h\n", "h", ("loglevel",), ("-q",)),
        ("Host h\n  LogLevel quiet\n", "h", ("loglevel",), ()),
        (
            "Host h\n  ProxyJump a@b:22,ssh://c@d:23/\n",
            "h",
            ("proxyjump",),
            (),
        ),
        ("Host h\n  ProxyJump root@127.0.0.1:2200\n", "h", ("proxyjump",), ()),
        ("Host h\n  ProxyJump [::1]\n", "h", ("proxyjump",), ()),
        ("Host h\n  EscapeChar \\\\\n", "h", ("escapechar",), ()),
        ("Host h\n  EscapeChar ^A\n", "h", ("escapechar",), ()),
    ],
)
def test_values_as_ssh_G_shows_them(
    tmp_path: Path, text: str, host: str, keys: tuple[str, ...], flags: tuple[str, ...]
) -> None:
    config = tmp_path / "config"
    config.write_text(text)
    theirs, ours = both(config, host, *flags)
    assert (ours.returncode, errors(ours)) == (theirs.returncode, errors(theirs))
    assert shown(ours, *keys) == shown(theirs, *keys)


def test_forward_agent_path_with_a_variable_as_ssh(tmp_path: Path) -> None:
    """ForwardAgent ${VAR}/path is a path, its variable expanded (only $VAR alone names
    a variable holding one)."""
    (tmp_path / "agent").touch()
    config = tmp_path / "config"
    env = base_env(KT_AGENT_DIR=str(tmp_path))
    for value in ("${KT_AGENT_DIR}/agent", "$KT_AGENT_DIR"):
        config.write_text(f"Host h\n  ForwardAgent {value}\n")
        theirs, ours = both(config, "h", env=env)
        assert ours.returncode == theirs.returncode == 0
        assert shown(ours, "forwardagent") == shown(theirs, "forwardagent")


def test_tilde_user_in_paths_as_ssh_expands_it(tmp_path: Path) -> None:
    import pwd

    account = pwd.getpwuid(os.getuid())
    resolved = sshconfig.resolve(
        f"IdentityFile ~{account.pw_name}/id_kt\nUserKnownHostsFile ~{account.pw_name}/kh\n",
        "h",
        user="me",
        home="/elsewhere",
    )
    home = account.pw_dir.rstrip("/")
    assert resolved.identity_files == (f"{home}/id_kt",)
    assert resolved.user_known_hosts_files == (f"{home}/kh",)

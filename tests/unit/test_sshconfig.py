"""ssh_config core: tokenising, warnings, errors, list modifiers, never a stray exception."""

from __future__ import annotations

import contextlib
import os
import shlex
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keytool import sshconfig
from keytool.errors import FormatError, KeytoolError
from keytool.sshconfig import resolve
from keytool.sshconfig_resolved import (
    ConfigSource,
    ResolvedConfig,
    apply_algorithm_list,
    proxy_command,
)
from keytool.sshconfig_values import parse_time
from keytool.sshconfig_words import RUNTIME_TOKENS, split_line


def res(text: str, host: str = "h", *overrides: str) -> ResolvedConfig:
    return resolve(text, host, overrides, user="me", home="/home/me")


def test_split_line_forms_and_quotes() -> None:
    assert split_line("  Port 22", "x") == ("port", ["22"])
    assert split_line("Port=22", "x") == ("port", ["22"])
    assert split_line("Port = 22 # comment", "x") == ("port", ["22"])
    assert split_line("IdentityFile \"~/my key\" 'b c' d\\ e", "x") == (
        "identityfile",
        ["~/my key", "b c", "d e"],
    )
    assert split_line("# all comment", "x") is None
    with pytest.raises(FormatError, match="unterminated quote"):
        split_line('User "open', "x")


def test_first_value_wins_and_identity_files_accumulate() -> None:
    config = res(
        "Host h\n User a\n IdentityFile ~/one\nHost *\n User b\n IdentityFile ~/two\n"
        " IdentityFile ~/one\n"
    )
    assert config.user == "a"
    assert config.identity_files == ("/home/me/one", "/home/me/two")
    assert config.identity_files_given


def test_overrides_win_and_unknown_override_is_an_error() -> None:
    config = res("Port 1\nUser x\n", "h", "Port=2", "IdentityFile ~/k")
    assert (config.port, config.user, config.identity_files) == (2, "x", ("/home/me/k",))
    with pytest.raises(FormatError, match="unknown option"):
        res("", "h", "NoSuchOption=1")
    with pytest.raises(FormatError, match="not allowed"):
        res("", "h", "Host=x")


def test_match_blocks_apply_as_host_blocks_do() -> None:
    config = res("Match all\n User m\nHost *\n User star\n")
    assert config.user == "m" and config.warnings == ()
    config = res("Match !all\n User m\nMatch originalhost h user me\n Port 2\n")
    assert (config.user, config.port) == ("me", 2)
    for bad in ("Match", "Match host", "Match all host x", "Match nosuch x"):
        with pytest.raises(FormatError, match="line 1"):
            res(bad + "\n")


def test_unknown_keywords_are_bad_unless_ignored_and_unsupported_ones_warn() -> None:
    config = res(
        "IgnoreUnknown Use*,frob*\nFrobnicate yes\nUseKeychain yes\nCanonicalizeHostname yes\n"
        "ForwardAgent no\n"
    )
    assert len(config.warnings) == 3
    assert 'Ignored unknown option "frobnicate"' in config.warnings[0]
    assert "canonicalizehostname is not supported" in config.warnings[2]
    # as ssh: an unknown keyword refuses the file, IgnoreUnknown counting only before it
    with pytest.raises(FormatError, match="config: line 1: Bad configuration option: frob"):
        res("Frobnicate yes\nIgnoreUnknown frob*\n")


def test_certificate_files_accumulate_and_expand_as_identity_files() -> None:
    config = res(
        "Host h\n CertificateFile ~/.ssh/%r@%h-cert.pub\nHost *\n CertificateFile /c\n"
        " CertificateFile /c\n",
        "h",
        "CertificateFile=~/first-cert.pub",
    )
    assert config.certificate_files == (
        "/home/me/first-cert.pub",
        "/home/me/.ssh/me@h-cert.pub",
        "/c",
    )
    assert config.warnings == ()
    assert res("Port 1\n").certificate_files == ()
    with pytest.raises(FormatError, match="CertificateFile takes one path"):
        res("CertificateFile a b\n")


def test_ca_signature_algorithms_as_written() -> None:
    assert res("CASignatureAlgorithms +ssh-rsa\n").ca_signature_algorithms == "+ssh-rsa"
    assert res("Port 1\n").ca_signature_algorithms is None


def test_bad_values_name_the_line_even_in_other_blocks() -> None:
    with pytest.raises(FormatError, match="config line 2: Bad port '0'"):
        res("Host other\n Port 0\n")
    with pytest.raises(FormatError, match='unsupported option "maybe"'):  # ssh's words
        res("StrictHostKeyChecking maybe\n")
    with pytest.raises(FormatError, match="keyword port extra arguments at end of line"):
        res("Port 22 23\n")
    with pytest.raises(FormatError, match="unknown token"):
        res("IdentityFile ~/%z\n")


def test_host_negation_and_case() -> None:
    text = "Host *.ex !bad.ex\n User w\nHost BIG\n User big\n"
    assert res(text, "a.ex").user == "w"
    assert res(text, "bad.ex").user == "me"
    assert res(text, "big").user == "me"  # Host patterns are case-sensitive, as in ssh
    assert res(text, "BIG").hostname == "big"


def test_hostname_token_and_lowercase() -> None:
    assert res("HostName %h.Inner.Example\n", "web").hostname == "web.inner.example"
    assert res("", "odd%name").hostname == "odd%name"  # a typed host is not expanded


def test_include_through_the_reader_and_without_one() -> None:
    def reader(pattern: str, system: bool) -> list[ConfigSource]:
        assert (pattern, system) == ("extra.conf", False)
        return [ConfigSource("extra", "User inc\nHost zzz\nPort 9\n")]

    sources = [ConfigSource("main", "Host h\nInclude extra.conf\nPort 3\n")]
    config = resolve(sources, "h", user="me", home="/home/me", include=reader)
    assert (config.user, config.port) == ("inc", 3)
    alone = resolve(sources, "h", user="me", home="/home/me")
    assert "Include not followed" in alone.warnings[0]


def test_include_loop_is_an_error() -> None:
    def reader(pattern: str, system: bool) -> list[ConfigSource]:
        return [ConfigSource("loop", "Include again\n")]

    with pytest.raises(FormatError, match="Too many recursive configuration includes"):
        resolve("Include loop\n", "h", user="me", home="/", include=reader)


def test_environment_variables_in_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KT_DIR", "/srv/%h")  # what a variable holds is not expanded again
    config = res("Host h\n IdentityFile ${KT_DIR}/id_%r\n IdentityAgent ${KT_DIR}/a\n")
    assert config.identity_files == ("/srv/%h/id_me",)
    assert config.identity_agent == "/srv/%h/a"
    monkeypatch.delenv("KT_NOT_SET", raising=False)
    with pytest.raises(FormatError, match="KT_NOT_SET' has no value"):
        res("IdentityFile ${KT_NOT_SET}/k\n")
    with pytest.raises(FormatError, match="unterminated"):
        res("UserKnownHostsFile ~/${HOME\n")


def test_identity_agent_forms() -> None:
    assert res("").identity_agent is None
    assert res("IdentityAgent none\n").identity_agent == "none"
    assert res("IdentityAgent SSH_AUTH_SOCK\n").identity_agent == "SSH_AUTH_SOCK"
    assert res("IdentityAgent $MY_SOCK\n").identity_agent == "$MY_SOCK"  # read when used
    assert res("IdentityAgent ~/a/%h.sock\n").identity_agent == "/home/me/a/h.sock"
    with pytest.raises(FormatError, match="Invalid environment name"):
        res("IdentityAgent $MY/sock\n")


def test_identity_agent_in_the_connect_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from keytool.options import options_from_config

    monkeypatch.setenv("KT_SOCK", "/run/kt.sock")
    monkeypatch.delenv("KT_UNSET", raising=False)
    cases = {
        "": (True, None),  # SSH_AUTH_SOCK's agent
        "IdentityAgent SSH_AUTH_SOCK\n": (True, None),
        "IdentityAgent none\n": (False, None),
        "IdentityAgent $KT_SOCK\n": (True, "/run/kt.sock"),
        "IdentityAgent $KT_UNSET\n": (False, None),  # as ssh: no agent then
        "IdentityAgent ~/agent.sock\n": (True, "/home/me/agent.sock"),
    }
    for text, expected in cases.items():
        options = options_from_config(res(text))
        assert (options.agent, options.agent_socket) == expected, text


def test_proxy_command_as_ssh_takes_it() -> None:
    config = res("Host h\n ProxyCommand ssh -W '%h:%p' \"jump host\" # all of it\n")
    assert config.proxy_command == "ssh -W '%h:%p' \"jump host\" # all of it"
    assert proxy_command(config) == "ssh -W 'h:22' \"jump host\" # all of it"
    assert res("ProxyCommand none\n").proxy_command is None
    assert res("").proxy_command is None
    # ProxyJump and ProxyCommand: ssh uses whichever came first
    jump_first = res("ProxyJump j\nProxyCommand nc %h %p\n")
    assert (jump_first.proxy_jump, jump_first.proxy_command) == ("j", None)
    command_first = res("ProxyCommand nc %h %p\nProxyJump j\n")
    assert (command_first.proxy_jump, command_first.proxy_command) == (None, "nc %h %p")
    with pytest.raises(FormatError, match='no argument after keyword "proxycommand"'):
        res("ProxyCommand\n")


def test_proxy_jump_runs_keytool_as_ssh_runs_ssh() -> None:
    command = proxy_command(res("ProxyJump a,ssh://u@b:2200,[::1]:99\n", "t%1"))
    assert command is not None
    words = shlex.split(command)
    assert words[1:4] == ["-m", "keytool", "exec"]
    # the last hop is connected to through the others; -W names where we go, %h and %p
    assert words[4:] == ["-p", "99", "-o", "ProxyJump=a,ssh://u@b:2200", "-W", "[t%1]:22", "::1"]
    user_and_port = proxy_command(res("ProxyJump ops@bastion:2222\n"))
    assert user_and_port is not None
    assert shlex.split(user_and_port)[4:] == ["-l", "ops", "-p", "2222", "-W", "[h]:22", "bastion"]
    assert res("ProxyJump none\n").proxy_jump is None
    with pytest.raises(FormatError, match='Invalid ProxyJump "b:notaport"'):
        proxy_command(res("ProxyJump b:notaport\n"))


def test_host_key_alias_lowercased() -> None:
    assert res("HostKeyAlias Web-Alias\n").host_key_alias == "web-alias"
    assert res("").host_key_alias is None


def test_control_options_resolved() -> None:
    config = res("")
    assert (config.control_master, config.control_path, config.control_persist) == (
        "no",
        None,
        None,
    )
    config = res(
        "Host H\n ControlMaster AutoAsk\n ControlPath ~/.ssh/cm-%r@%h:%p-%n\n"
        " ControlPersist 1h30m\nHost *\n ControlMaster yes\n ControlPath /other\n"
        " ControlPersist no\n",
        "H",
    )
    assert (config.control_master, config.control_path, config.control_persist) == (
        "autoask",
        "/home/me/.ssh/cm-me@h:22-H",
        5400,
    )
    masters = {"yes": "yes", "TRUE": "yes", "no": "no", "False": "no", "auto": "auto"}
    for word, expected in masters.items():
        assert res(f"ControlMaster {word}\n").control_master == expected
    persists = {"yes": 0, "true": 0, "0": 0, "no": None, "false": None, "600": 600, "1m5s": 65}
    for word, seconds in persists.items():
        assert res(f"ControlPersist {word}\n").control_persist == seconds
    paths = {"none": None, "NONE": None, "~": "/home/me/", "~//cm/%%h": "/home/me/cm/%h"}
    for written, path in paths.items():
        assert res(f"ControlPath {written}\n").control_path == path
    with_uid = resolve("ControlPath %i-%C-%k", "h", user="me", home="/", uid=7)
    assert (
        with_uid.control_path == "7-d88db7ace4a718da1fc9474e4d03580589586832-h"
    )  # %C: SHA-1 of %l%h%p%r


def test_bad_control_values_are_one_clear_error() -> None:
    bad = {
        "ControlMaster maybe": "ControlMaster must be yes, no, ask, auto or autoask, not 'maybe'",
        "ControlPersist YES": "ControlPersist must be yes, no or a time such as 10m, not 'YES'",
        "ControlPersist 2147483648": "ControlPersist must be yes, no or a time",
        "ControlPersist -1": "ControlPersist must be yes, no or a time",
        'ControlPath ""': "ControlPath needs a value",
    }
    for line, message in bad.items():
        # checked in a block that does not apply too, as ssh does
        with pytest.raises(FormatError, match=f"^config line 2: {message}"):
            res(f"Host other\n {line}\n")
    for line, message in {
        "ControlPath": 'no argument after keyword "controlpath"',
        "ControlPath a b": "keyword controlpath extra arguments at end of line",
        "ControlPath /run/%j": "unknown token %j",  # OpenSSH 9.6's jump host: not 9.2's
        "ControlPath /run/a%": "'%' at the end",
        "ControlPath ~no-such-user-kt/cm": "no such user 'no-such-user-kt'",
    }.items():
        with pytest.raises(FormatError, match=f"^config line 1: {message}"):
            res(f"{line}\n")


def test_bad_control_flags_and_options_are_one_line_on_the_command_line() -> None:
    from tests.cli import assert_clean_error, keytool

    for args, message in (
        (["-o", "ControlPersist=YES"], "command-line option 1: ControlPersist must be"),
        (["-o", "ControlMaster=maybe"], "command-line option 1: ControlMaster must be"),
        (["-S", "/run/%z"], "command-line option 1: unknown token %z"),
        (["-O", "bogus"], "Invalid multiplex command."),
    ):
        result = keytool("exec", "-F", "none", *args, "h.invalid", "true", timeout=60)
        assert result.returncode == 255
        assert assert_clean_error(result).startswith(f"keytool: {message}")


def test_parse_time() -> None:
    assert parse_time("90", "x") == 90
    assert parse_time("1m30s", "x") == 90
    assert parse_time("2H", "x") == 7200
    for bad in ("", "1x", "m", "-1", "1.5"):
        with pytest.raises(FormatError):
            parse_time(bad, "x")


def test_apply_algorithm_list() -> None:
    default = ("a1", "a2", "b1")
    assert apply_algorithm_list(None, default) == default
    assert apply_algorithm_list("+c,a1", default) == ("a1", "a2", "b1", "c")
    assert apply_algorithm_list("-a*", default) == ("b1",)
    assert apply_algorithm_list("^b1,c", default) == ("b1", "c", "a1", "a2")
    assert apply_algorithm_list("x,y", default) == ("x", "y")


def test_defaults_are_ssh_s() -> None:
    config = res("")
    assert config.port == 22 and config.user == "me" and config.hostname == "h"
    assert config.strict_host_key_checking == "ask"
    assert config.user_known_hosts_files == (
        "/home/me/.ssh/known_hosts",
        "/home/me/.ssh/known_hosts2",
    )
    assert not config.identity_files_given and config.connect_timeout is None


def test_load_with_F_none_and_missing_file(tmp_path: Path) -> None:
    config = sshconfig.load("h", config_file="none", user="me", home=str(tmp_path))
    assert config.user == "me"
    with pytest.raises(KeytoolError, match="cannot read config file"):
        sshconfig.load("h", config_file=tmp_path / "missing", user="me", home=str(tmp_path))


def test_load_refuses_a_fifo_or_device_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: reading it would wait forever
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(KeytoolError, match="not a regular file"):
            sshconfig.load("h", config_file=path, user="me", home=str(tmp_path))
    # ssh's idiom for "no config": an empty file
    config = sshconfig.load("h", config_file=os.devnull, user="me", home=str(tmp_path))
    assert config.user == "me" and config.port == 22


KEYWORDS = [
    "Host",
    "Match",
    "Include",
    "Port",
    "User",
    "HostName",
    "IdentityFile",
    "ConnectTimeout",
    "StrictHostKeyChecking",
    "UserKnownHostsFile",
    "IgnoreUnknown",
    "BatchMode",
    "ControlMaster",
    "ControlPath",
    "ControlPersist",
]
TOKENS = st.sampled_from([*KEYWORDS, " ", "=", '"', "'", "\\", "#", "%", "%h", "~", "*", "!", "\n"])


@given(st.text(max_size=300), st.text(max_size=20))
def test_arbitrary_text_raises_only_keytool_errors(text: str, host: str) -> None:
    with contextlib.suppress(KeytoolError):
        res(text, host)


@given(
    st.lists(TOKENS | st.text(max_size=6), max_size=40), st.lists(st.text(max_size=20), max_size=3)
)
def test_keyword_soup_raises_only_keytool_errors(parts: list[str], overrides: list[str]) -> None:
    def reader(pattern: str, system: bool) -> list[ConfigSource]:
        return [ConfigSource("inc", "".join(parts[:5]))]

    with contextlib.suppress(KeytoolError):
        resolve("".join(parts), "host", overrides, user="u", home="/h", include=reader)


def test_known_hosts_command_words_and_tokens() -> None:
    """Split into words first (quotes keep a word), then each argument but the program
    expanded; %H %I %K %f %t wait for the run (sshconfig_words.RUNTIME_TOKENS' marks)."""
    resolved = sshconfig.resolve(
        'Host *\n  KnownHostsCommand /bin/kh%h %h "%p and %r" %H%I %% %k\n',
        "box",
        (),
        user="u",
        home="/home/u",
    )
    assert resolved.known_hosts_command == '/bin/kh%h %h "%p and %r" %H%I %% %k'
    marks = RUNTIME_TOKENS
    assert resolved.known_hosts_argv == (
        "/bin/kh%h", "box", "22 and u", marks["H"] + marks["I"], "%", "box",
    )  # fmt: skip
    none = sshconfig.resolve("KnownHostsCommand none\n", "box", (), user="u", home="/home/u")
    assert (none.known_hosts_command, none.known_hosts_argv) == (None, ())
    with pytest.raises(FormatError, match="invalid quotes"):
        sshconfig.resolve('KnownHostsCommand /bin/kh "x\n', "box", (), user="u", home="/home/u")

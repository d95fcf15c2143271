"""ssh_config resolution compared with what OpenSSH's own ``ssh -G`` prints (it resolves
the configuration without connecting), and token expansion with what ``ssh -v`` loads."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from keytool import sshconfig
from keytool.errors import FormatError
from keytool.forwardspec import parse_dynamic_forward, parse_local_forward, parse_remote_forward
from keytool.sshconfig_resolved import ResolvedConfig, apply_algorithm_list
from keytool.sshconfig_words import expand_home
from keytool.transport import config as tconfig
from tests.interop.clienthelp import KEYTOOL, base_env, keygen
from tests.peers import Sshd, require, run

HOME = pwd.getpwuid(os.getuid()).pw_dir

MAIN = """\
# lines before any Host apply to every host
IdentitiesOnly no
# (ssh 9.2 takes this one from any Host block, matching or not: keytool from the
# blocks that match, as every other keyword; here both agree)
StreamLocalBindMask 0111
Host web web.example
    HostName web.internal.Example.com
    HostKeyAlias Web-Alias.Example
    User deploy
    Port 2201
    IdentityFile ~/.ssh/web_key
    IdentityFile ~/.ssh/common
    LocalForward 8080 db:5432
    LocalForward [127.0.0.1]:9000 [::1]:22
    LocalForward 8080 db:5432
    RemoteForward 0 localhost:3000
    DynamicForward 1080
    DynamicForward [127.0.0.1]:1081
    RemoteForward *:9000 [::1]:22
    SessionType none
    ForkAfterAuthentication yes
    SendEnv LANG LC_* KT_*
    SendEnv -LC_A* TZ
    SetEnv ONLY=web
    PubkeyAcceptedAlgorithms +ssh-rsa
    AddKeysToAgent confirm 5m
    VisualHostKey yes
    FingerprintHash MD5
    ConnectionAttempts 3
    ControlPath ~/.ssh/cm-%C-%r@%h:%p
    ControlMaster auto
    ControlPersist 10m
    ForwardX11 yes
    ForwardX11Timeout 1h5m
    StdinNull yes
    EnableEscapeCommandline yes
Host *.example !bad.example
    User wild
    AddKeysToAgent 1h30m
    loglevel Error
    ConnectTimeout 1m5s
    StrictHostKeyChecking accept-new
    UserKnownHostsFile ~/.ssh/known_hosts
    ControlMaster AutoAsk
    ControlPersist 1h30m
    ControlPath %d/%%/%i/%L/%l/%n/%u/%k/%h/%p/%r/%C
Host q?
    ControlPath none
    ControlMaster TRUE
    ControlPersist yes
    VerifyHostKeyDNS ask
    RequestTTY no
    EscapeChar none
    ForwardAgent ~/.ssh/agent-%h.sock
    BindAddress 127.0.0.2
    AddressFamily inet
    RekeyLimit 2G
    Port=2300
    SetEnv FOO=bar "BAZ=a b" FOO=again
    RemoteCommand echo "%r@%h:%p" %n %% done # all of it the command
    ProxyCommand nc -w 5 "%h" %p # not a comment to ssh: all of it is the command
    HostName = %h.Q.example
    IdentityAgent ~/agents/%h-%r.sock
Match host foo
    User matched
Host db*
    AddKeysToAgent ask
    PubkeyAcceptedKeyTypes -rsa*,ssh-rsa*
    LogLevel debug
    UserKnownHostsFile ~/kh_a "~/kh_b"
    GlobalKnownHostsFile /etc/ssh/other_known
    IdentitiesOnly yes
    IdentityFile "~/.ssh/db key"
    StrictHostKeyChecking no
    IdentityAgent none
    HashKnownHosts yes
    BatchMode yes
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    PubkeyAuthentication no
    NumberOfPasswordPrompts 1
    ServerAliveInterval 30
    ServerAliveCountMax 5
    LogLevel quiet
    Ciphers aes128-ctr,aes256-gcm@openssh.com
    MACs -hmac-sha1*,umac*
    KexAlgorithms +diffie-hellman-group14-sha1
    HostKeyAlgorithms ^ssh-ed25519,rsa-sha2-256
    PreferredAuthentications publickey,password
    ClearAllForwardings yes
    GatewayPorts yes
    ExitOnForwardFailure yes
    PermitLocalCommand yes
    KnownHostsCommand /usr/local/bin/kh -q %H "%I x" %h:%p
    ControlPath ${HOME}/cm/%n
    ControlPersist 0
    ControlMaster false
    XAuthLocation /opt/X11/bin/xauth
    ForwardX11Timeout 0
    ForwardX11 no
    TCPKeepAlive no
    NoHostAuthenticationForLocalhost yes
    PermitRemoteOpen 127.0.0.1:8080 [::1]:* *:22
    RequiredRSASize 3072
    IPQoS EF
    RemoteForward 7001
Host yes-host
    ProxyJump ops@bastion:2222,second
    ProxyCommand nc %h %p
    StrictHostKeyChecking yes
    ConnectTimeout 0
    IdentityAgent ${HOME}/yes.sock
    UserKnownHostsFile ${HOME}/kh_%h
    ControlPath ~
    ControlMaster ask
    ControlPersist 600
host OFF-HOST
    identityagent $SSH_AUTH_SOCK
    stricthostkeychecking off
    CONNECTTIMEOUT 12
    UpdateHostKeys ask
    RequestTTY force
    EscapeChar ^B
    ForwardAgent yes
    Compression yes
    AddressFamily inet6
    RekeyLimit 512K 30m
    StreamLocalBindUnlink yes
    LocalForward /run/l.sock db:5432
    RemoteForward /run/r.sock /run/t.sock
    DynamicForward /run/d.sock
    controlpath NONE
    CONTROLMASTER yes
    controlpersist no
Host *
    ControlPath ~/.ssh/everyone-%C
    ControlMaster no
    ControlPersist false
    User fallback
    Port 2222
    SetEnv LATE=1
    SendEnv EVERYONE
    IdentityFile ~/.ssh/everyone
    LocalForward *:7000 h\\:x:1
    IgnoreUnknown UseKeychain
    UseKeychain yes
    ConnectTimeout 7
    IdentityFile ~/.ssh/common
    ForwardX11Trusted no
    BindInterface eth9
    IPQoS af11 0x2c
"""
HOSTS = [
    "web",
    "web.example",
    "WEB",
    "x.example",
    "bad.example",
    "qa",
    "dbmain",
    "yes-host",
    "OFF-HOST",
    "off-host",
    "other",
]


def ssh_g(
    config: str | Path, host: str, *options: str, flags: Sequence[str] = ()
) -> dict[str, list[str]]:
    args = [require("ssh"), "-G", "-F", config, *flags]
    for option in options:
        args += ["-o", option]
    result = run([*args, host], stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    seen: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        seen.setdefault(key, []).append(value)
    return seen


def ssh_defaults() -> dict[str, list[str]]:
    return ssh_g("none", "any")


def expected_from_ssh(seen: dict[str, list[str]]) -> dict[str, object]:
    """ssh -G's words in ResolvedConfig's terms."""
    yes = {"yes": True, "true": True, "no": False, "false": False}
    strict = {"true": "yes", "false": "no", "ask": "ask", "accept-new": "accept-new"}
    timeout = seen["connecttimeout"][0]
    return {
        "hostname": seen["hostname"][0],
        "user": seen["user"][0],
        "port": int(seen["port"][0]),
        # ssh -G shows IdentityFile as written; only ~ is expanded here (tokens: see below)
        "identity_files": tuple(expand_home(p, HOME) for p in seen["identityfile"]),
        "identities_only": yes[seen["identitiesonly"][0]],
        "user_known_hosts_files": tuple(seen["userknownhostsfile"][0].split(" ")),
        "global_known_hosts_files": tuple(seen["globalknownhostsfile"][0].split(" ")),
        "strict_host_key_checking": strict[seen["stricthostkeychecking"][0]],
        # ssh keeps ConnectTimeout 0 as 0, which means no timeout of its own, as ours
        "connect_timeout": None if timeout == "none" else int(timeout),
        "password_authentication": yes[seen["passwordauthentication"][0]],
        "pubkey_authentication": yes[seen["pubkeyauthentication"][0]],
        "kbd_interactive_authentication": yes[seen["kbdinteractiveauthentication"][0]],
        "batch_mode": yes[seen["batchmode"][0]],
        "hash_known_hosts": yes[seen["hashknownhosts"][0]],
        "number_of_password_prompts": int(seen["numberofpasswordprompts"][0]),
        "server_alive_interval": int(seen["serveraliveinterval"][0]),
        "server_alive_count_max": int(seen["serveralivecountmax"][0]),
        "remote_command": seen.get("remotecommand", [None])[0],
        "set_env": tuple(seen.get("setenv", ())),
        "send_env": tuple(seen.get("sendenv", ())),
        "visual_host_key": yes[seen["visualhostkey"][0]],
        "add_keys_to_agent": add_keys(seen["addkeystoagent"][0]),
        "log_level": {"SILENT": "QUIET"}.get(seen["loglevel"][0], seen["loglevel"][0]),
        "fingerprint_hash": seen["fingerprinthash"][0].lower(),
        "connection_attempts": int(seen["connectionattempts"][0]),
        "forward_agent": seen["forwardagent"][0],
        "compression": yes[seen["compression"][0]],
        "address_family": seen["addressfamily"][0],
        "rekey_limit": tuple(int(n) for n in seen["rekeylimit"][0].split()),
        "bind_address": seen.get("bindaddress", [None])[0],
        "bind_interface": seen.get("bindinterface", [None])[0],
        "required_rsa_size": int(seen["requiredrsasize"][0]),
        "request_tty": {"true": "yes", "false": "no"}.get(
            seen["requesttty"][0], seen["requesttty"][0]
        ),
        "escape_char": escape_from_ssh(seen["escapechar"][0]),
        "stream_local_bind_mask": int(seen["streamlocalbindmask"][0], 8),
        "stream_local_bind_unlink": yes[seen["streamlocalbindunlink"][0]],
        "update_host_keys": {"true": "yes", "false": "no"}.get(
            seen["updatehostkeys"][0], seen["updatehostkeys"][0]
        ),
        "host_key_alias": seen.get("hostkeyalias", [None])[0],
        "identity_agent": seen.get("identityagent", [None])[0],
        "known_hosts_command": seen.get("knownhostscommand", [None])[0],
        "permit_local_command": yes[seen["permitlocalcommand"][0]],
        "proxy_command": seen.get("proxycommand", [None])[0],
        "proxy_jump": seen.get("proxyjump", [None])[0],
        "local_forwards": tuple(seen.get("localforward", ())),
        "remote_forwards": tuple(seen.get("remoteforward", ())),
        "dynamic_forwards": tuple(seen.get("dynamicforward", ())),
        "gateway_ports": yes[seen["gatewayports"][0]],
        "exit_on_forward_failure": yes[seen["exitonforwardfailure"][0]],
        "session_type": seen["sessiontype"][0],
        "fork_after_authentication": yes[seen["forkafterauthentication"][0]],
        "control_master": {"true": "yes", "false": "no"}.get(
            seen["controlmaster"][0], seen["controlmaster"][0]
        ),
        "control_path": seen.get("controlpath", [None])[0],
        "control_persist": persist_from_ssh(seen["controlpersist"][0]),
        "forward_x11": yes[seen["forwardx11"][0]],
        "forward_x11_timeout": int(seen["forwardx11timeout"][0]),
        "xauth_location": seen["xauthlocation"][0],
        "stdin_null": yes[seen["stdinnull"][0]],
        "tcp_keep_alive": yes[seen["tcpkeepalive"][0]],
        "enable_escape_commandline": yes[seen["enableescapecommandline"][0]],
        "no_host_authentication_for_localhost": yes[seen["nohostauthenticationforlocalhost"][0]],
        "permit_remote_open": ()
        if seen["permitremoteopen"] == ["any"]
        else tuple(seen["permitremoteopen"][0].split(" ")),
    }


def persist_from_ssh(shown: str) -> int | None:
    """ssh -G's ControlPersist ("no", "yes" or seconds) as ours: None, 0 or seconds."""
    return None if shown == "no" else 0 if shown == "yes" else int(shown)


def escape_from_ssh(shown: str) -> int | None:
    """ssh -G's EscapeChar ("~", "\\^A", "none") as ours."""
    if shown == "none":
        return None
    if shown.startswith("\\^"):
        return ord(shown[2]) & 31
    return ord(shown)


def add_keys(shown: str) -> tuple[str, int | None]:
    """ssh -G's AddKeysToAgent ("true", "ask", "3600", "confirm 300"...) as ours."""
    mode, _, lifetime = shown.partition(" ")
    if mode.isdigit():
        return "yes", int(mode)
    mode = {"true": "yes", "false": "no"}.get(mode, mode)
    return mode, int(lifetime) if lifetime else None


def ours_as_ssh(resolved: ResolvedConfig, defaults: dict[str, list[str]]) -> dict[str, object]:
    ours = {name: getattr(resolved, name) for name in expected_from_ssh(defaults)}
    # kept as -L specs; ssh -G shows them as "[bind]:port [host]:hostport"
    ours["local_forwards"] = tuple(
        parse_local_forward(spec).describe() for spec in resolved.local_forwards
    )
    ours["remote_forwards"] = tuple(
        parse_remote_forward(spec).describe() for spec in resolved.remote_forwards
    )
    return ours


ALGORITHMS = {
    "kex_algorithms": "kexalgorithms",
    "ciphers": "ciphers",
    "macs": "macs",
    "host_key_algorithms": "hostkeyalgorithms",
    "pubkey_accepted_algorithms": "pubkeyacceptedalgorithms",
}


def check_against_ssh(config: Path, host: str, *options: str) -> ResolvedConfig:
    seen = ssh_g(config, host, *options)
    resolved = sshconfig.load(host, config_file=config, overrides=options)
    assert ours_as_ssh(resolved, seen) == expected_from_ssh(seen)
    defaults = ssh_defaults()
    for field, keyword in ALGORITHMS.items():
        spec = getattr(resolved, field)
        ours = apply_algorithm_list(spec, defaults[keyword][0].split(","))
        assert ",".join(ours) == seen[keyword][0], field
    return resolved


@pytest.fixture
def main_config(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(MAIN)
    return path


@pytest.mark.parametrize("host", HOSTS)
def test_resolve_agrees_with_ssh_G(main_config: Path, host: str) -> None:
    check_against_ssh(main_config, host)


def test_the_hosts_exercise_the_blocks(main_config: Path) -> None:
    # guard against a vacuous comparison: the blocks really select different values
    ports = {int(ssh_g(main_config, host)["port"][0]) for host in HOSTS}
    assert ports == {2201, 2222, 2300}
    users = {ssh_g(main_config, host)["user"][0] for host in HOSTS}
    assert users == {"deploy", "wild", "fallback"}
    # LocalForward accumulates (a repeated one once); ClearAllForwardings drops them all
    assert len(ssh_g(main_config, "web")["localforward"]) == 3
    assert "localforward" not in ssh_g(main_config, "dbmain")
    masters = {ssh_g(main_config, host)["controlmaster"][0] for host in HOSTS}
    assert masters == {"true", "false", "ask", "auto", "autoask"}
    persists = {ssh_g(main_config, host)["controlpersist"][0] for host in HOSTS}
    assert persists == {"no", "yes", "600", "5400"}
    assert "controlpath" not in ssh_g(main_config, "qa")  # ControlPath none


@pytest.mark.parametrize(
    "options",
    [
        ("Port=1022", "User=cli", "IdentityFile=~/.ssh/cli_key"),
        ("StrictHostKeyChecking accept-new", "ConnectTimeout=3", "HostName=Other.Example"),
        ("UserKnownHostsFile=~/only_this", "IdentitiesOnly=yes", "BatchMode=yes"),
        ("Ciphers=^aes256-ctr", "MACs=hmac-sha2-256", "HostKeyAlgorithms=-ecdsa*"),
    ],
)
@pytest.mark.parametrize("host", ["web", "dbmain", "other"])
def test_command_line_options_win_as_for_ssh(
    main_config: Path, host: str, options: tuple[str, ...]
) -> None:
    check_against_ssh(main_config, host, *options)


EVERY_TOKEN = "ControlPath=%%_%C_%d_%h_%i_%L_%l_%n_%p_%r_%u_%k_${HOME}"
MASTER_WORDS = ("yes", "true", "no", "false", "ask", "auto", "autoask", "YES", "True", "No")
CM_EXAMPLE = ("ControlPath=~/.ssh/cm-%C-%r@%h:%p", "ControlMaster=autoask", "ControlPersist=10m")
PERSIST_VALUES = ("yes", "true", "no", "false", "0", "0s", "1", "10m", "1h30m", "1H30M")
CONTROL_CASES = [
    ("Example.COM", (EVERY_TOKEN, "Port=2", "User=bob")),
    ("Example.COM", (EVERY_TOKEN, "HostName=Inner.%h", "HostKeyAlias=Some-Alias")),
    ("example.com", (*CM_EXAMPLE, "Port=2222", "User=bob")),
    ("x", ("ControlPath=none",)),
    ("x", ("ControlPath=NONE", "ControlPath=/run/never")),  # the first wins
    ("x", ("ControlPath=~",)),
    ("x", ("ControlPath=~/",)),
    ("x", ("ControlPath=~//cm/%h",)),
    ("x", ("ControlPath=~root/cm-%r",)),
    ("x", ("ControlPath=${HOME}/cm/%C",)),
    ("x", ('ControlPath="/run/a b/%h"',)),
    ("x", ("ControlPath=/run/%%h-%%%h",)),
    *[("x", (f"ControlMaster={word}",)) for word in (*MASTER_WORDS, "FALSE", "AUTO", "AutoAsk")],
    *[("x", (f"ControlPersist={value}",)) for value in (*PERSIST_VALUES, "1h30", "600", "1w")],
    ("x", ("ControlPersist=2147483647",)),
    ("x", ("ControlMaster=ask", "ControlMaster=yes", "ControlPersist=no", "ControlPersist=yes")),
]


@pytest.mark.parametrize(("host", "options"), CONTROL_CASES)
def test_control_options_as_ssh_resolves_them(host: str, options: tuple[str, ...]) -> None:
    check_against_ssh(Path("none"), host, *options)


@pytest.mark.parametrize("host", ["web", "x.example", "qa", "other"])
def test_control_options_on_the_command_line_win_over_the_file(
    main_config: Path, host: str
) -> None:
    check_against_ssh(
        main_config, host, "ControlMaster=no", "ControlPath=%n-%C", "ControlPersist=1"
    )


@pytest.mark.parametrize(
    "option",
    [
        "ControlMaster=maybe",
        "ControlMaster=1",
        "ControlMaster=",
        "ControlPersist=YES",
        "ControlPersist=True",
        "ControlPersist=-1",
        "ControlPersist=10x",
        "ControlPersist=2147483648",
        "ControlPersist=",
        'ControlPath=""',
        "ControlPath=%j",  # %j is OpenSSH 9.6's (the jump host); 9.2 refuses it
        "ControlPath=%T",
        "ControlPath=/run/a%",
        "ControlPath=${KT_SURELY_UNSET}/x",
        "ControlPath=/run/${HOME",
        "ControlPath=a b",
    ],
)
def test_bad_control_values_are_refused_as_by_ssh(
    monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    monkeypatch.delenv("KT_SURELY_UNSET", raising=False)
    result = run([require("ssh"), "-G", "-F", "none", "-o", option, "x"], stdin=subprocess.DEVNULL)
    assert result.returncode == 255, result.stdout
    with pytest.raises(FormatError, match="command-line option 1"):
        sshconfig.load("x", config_file="none", overrides=[option])


class Captured(Exception):
    """Raised in place of connecting: what ``keytool exec`` would connect with."""


def exec_config(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> tuple[ResolvedConfig, object]:
    """``keytool exec ARGS``'s command line parsed, its flags made options, and the
    configuration resolved from them; and the -O command passed on."""
    from keytool.cli import exec as exec_cli
    from keytool.cli import fastparse
    from keytool.cli.app import invoke

    parsed = fastparse.parse(["exec", *args])
    assert parsed is not None, args

    def capture(*given: object, **named: object) -> int:
        raise Captured(given, named)

    monkeypatch.setattr(exec_cli, "connect_and_run", capture)
    with pytest.raises(Captured) as caught:
        invoke(*parsed)
    given, named = caught.value.args
    destination, options, config_file = given[0], given[4], given[5]
    resolved = sshconfig.load(destination, config_file=config_file, overrides=options)
    return resolved, named["control_command"]


@pytest.mark.parametrize(
    "flags",
    [
        ["-M"],
        ["-MM"],
        ["-M", "-M", "-M"],
        ["-M", "-o", "ControlMaster=no"],
        ["-o", "ControlMaster=no", "-M"],
        ["-MM", "-o", "ControlMaster=auto"],
        ["-S", "~/.ssh/cm-%C-%r@%h:%p"],
        ["-S", "none"],
        ["-S", "NONE", "-o", "ControlPath=/run/never"],
        ["-S", '/run/a b/\\x"y'],
        ["-S", "#not-a-comment"],
        ["-S", "/run/first", "-S", "/run/last"],
        ["-S", "/run/flag", "-o", "ControlPath=/run/option"],
        ["-o", "ControlPath=/run/option", "-S", "/run/flag"],
        ["-MS", "${HOME}/%n", "-o", "ControlPersist=10m"],
    ],
)
@pytest.mark.parametrize("config", ["none", "main"])
def test_flags_M_and_S_as_ssh_takes_them(
    monkeypatch: pytest.MonkeyPatch, main_config: Path, flags: list[str], config: str
) -> None:
    config_file = "none" if config == "none" else str(main_config)
    seen = ssh_g(config_file, "web", flags=flags)
    resolved, control_command = exec_config(monkeypatch, ["-F", config_file, *flags, "web"])
    assert ours_as_ssh(resolved, seen) == expected_from_ssh(seen)
    assert control_command is None


@pytest.mark.parametrize("command", ["check", "forward", "cancel", "exit", "stop", "proxy"])
def test_dash_O_commands_are_passed_on(monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    _, control_command = exec_config(monkeypatch, ["-F", "none", "-O", command, "x"])
    assert control_command == command


@pytest.mark.parametrize("command", ["bogus", "CHECK", ""])
def test_dash_O_unknown_command_in_ssh_s_words(command: str) -> None:
    from tests.cli import assert_clean_error, keytool

    theirs = run([require("ssh"), "-F", "none", "-O", command, "x"], stdin=subprocess.DEVNULL)
    ours = keytool("exec", "-F", "none", "-O", command, "x")
    assert theirs.returncode == ours.returncode == 255
    assert assert_clean_error(ours) == f"keytool: {theirs.stderr.strip()}"
    assert theirs.stderr.strip() == "Invalid multiplex command."


@pytest.mark.parametrize(
    "spec",
    [
        "8080:db:5432",
        "127.0.0.1:9000:[::1]:22",
        ":1:h:2",
        "*:1:h:2",
        "localhost:7:h:8",
        "8080:db:5432:",
        "[::1]:5:h:6",
        "a\\:b:1:c:2",
        "0:h:1",
        "1:h",
        "1:/path",
        "/run/l.sock:db:5432",
        "/run/l.sock:/run/r.sock",
        "[/run/a:b]:h:1",
        "127.0.0.1:1:/run/r.sock",
        "/a/b:1",
        "1:h:2:3:4",
        "x:h:1",
        "1:h:70000",
        "[::1:1:h:2",
    ],
)
def test_dash_L_as_ssh_reads_it(spec: str) -> None:
    check_spec("-L", spec)


@pytest.mark.parametrize(
    "spec",
    [
        "8080:localhost:80",
        "0:h:1",
        "*:9:h:2",
        "1.2.3.4:5:[::1]:6",
        "8080",
        "1:h:0",
        "127.0.0.1:8081",
        "0",
        "[::1]:8082",
        "/run/r.sock:localhost:22",
        "0:/run/l.sock",
        "/run/r.sock:/run/l.sock",
    ],
)
def test_dash_R_as_ssh_reads_it(spec: str) -> None:
    check_spec("-R", spec)


@pytest.mark.parametrize(
    "spec", ["1080", "127.0.0.1:1080", "*:1080", "[::1]:1080", "0", "x", "/run/socks.sock"]
)
def test_dash_D_as_ssh_reads_it(spec: str) -> None:
    result = run([require("ssh"), "-G", "-F", "none", "-D", spec, "x"], stdin=subprocess.DEVNULL)
    shown = [line[len("dynamicforward ") :] for line in result.stdout.splitlines()
             if line.startswith("dynamicforward ")]  # fmt: skip
    if result.returncode != 0:
        assert "Bad dynamic forwarding specification" in result.stderr
        with pytest.raises(FormatError, match="Bad dynamic forwarding specification"):
            parse_dynamic_forward(spec)
    else:
        assert shown == [parse_dynamic_forward(spec).describe()]


def check_spec(flag: str, spec: str) -> None:
    keyword = "localforward " if flag == "-L" else "remoteforward "
    parse = parse_local_forward if flag == "-L" else parse_remote_forward
    result = run([require("ssh"), "-G", "-F", "none", flag, spec, "x"], stdin=subprocess.DEVNULL)
    shown = [line[len(keyword) :] for line in result.stdout.splitlines()
             if line.startswith(keyword)]  # fmt: skip
    if result.returncode != 0:
        assert "forwarding specification" in result.stderr
        with pytest.raises(FormatError, match="forwarding specification"):
            parse(spec)
    else:
        assert shown == [parse(spec).describe()]


def test_no_config_file_is_ssh_s_defaults(tmp_path: Path) -> None:
    resolved = check_against_ssh(Path("none"), "plain.example")
    assert resolved.identity_files_given is False
    assert resolved.identity_files[0] == f"{HOME}/.ssh/id_rsa"


def test_include_inside_a_host_block(tmp_path: Path) -> None:
    included = tmp_path / "inc"
    included.mkdir()
    (included / "a.conf").write_text("User included\nHost other\n  Port 9\n")
    (included / "b.conf").write_text("IdentityFile ~/.ssh/from_b\n")
    config = tmp_path / "config"
    config.write_text(f"Host inc\n  Include {included}/*.conf\n  Port 7\nHost *\n  Port 2\n")
    first = check_against_ssh(config, "inc")
    assert (first.user, first.port) == ("included", 7)
    check_against_ssh(config, "other")


def test_tokens_expand_as_ssh_expands_them(tmp_path: Path, sshd: Sshd) -> None:
    """ssh -G prints IdentityFile unexpanded, so ask ssh -v which files it really loads."""
    config = tmp_path / "config"
    config.write_text(
        "Host tok\n"
        "  HostName 127.0.0.1\n"
        f"  Port {sshd.port}\n"
        "  User someone\n"
        "  IdentityFile ~/.ssh/tok_%h_%p_%r_%u_%n_%%_%i\n"
        "  IdentityFile %d/x_%C_%L\n"
        f"  UserKnownHostsFile {tmp_path}/kh_%h_%p_%r\n"
        "  StrictHostKeyChecking accept-new\n"
        "  BatchMode yes\n"
    )
    result = run([require("ssh"), "-v", "-F", config, "tok", "true"], stdin=subprocess.DEVNULL)
    # ssh also tries NAME-cert beside each identity; keytool does no certificates
    loaded = [
        name
        for name in re.findall(r"identity file (\S+) type", result.stderr)
        if not name.endswith("-cert")
    ]
    resolved = sshconfig.load("tok", config_file=config)
    assert list(resolved.identity_files) == loaded
    assert len(loaded) == 2 and "%" not in loaded[1]
    # the known_hosts file ssh wrote is the one we name
    assert [Path(p) for p in resolved.user_known_hosts_files] == [
        tmp_path / f"kh_127.0.0.1_{sshd.port}_someone"
    ]
    assert Path(resolved.user_known_hosts_files[0]).exists()


X11_CONFIG = """\
Host trusted
    ForwardX11Trusted yes
    ForwardX11 yes
Host untrusted
    ForwardX11Trusted no
    ForwardX11 yes
Host *
    ForwardX11Trusted no
"""


@pytest.mark.parametrize("host", ["trusted", "untrusted", "other"])
def test_forward_x11_trusted_as_ssh_G(tmp_path: Path, host: str) -> None:
    """ForwardX11Trusted as ssh resolves it, where the file sets it (its default is
    upstream's no for keytool; Debian's ssh turns it on)."""
    config = tmp_path / "config"
    config.write_text(X11_CONFIG)
    seen = ssh_g(config, host)
    resolved = check_against_ssh(config, host)
    assert resolved.forward_x11_trusted == (seen["forwardx11trusted"] == ["yes"])
    assert resolved.forward_x11 == (host != "other")
    assert not sshconfig.load(host, config_file=Path("none")).forward_x11_trusted


#: what keytool -G shows its own way: what it offers, and paths expanded
OWN_VALUES = {
    "ciphers", "macs", "kexalgorithms", "hostkeyalgorithms", "pubkeyacceptedalgorithms",
    "casignaturealgorithms", "identityfile", "certificatefile",
}  # fmt: skip


def keytool_g(config: Path, host: str, *options: str) -> list[tuple[str, str]]:
    args = [*KEYTOOL, "exec", "-G", "-F", str(config)]
    for option in options:
        args += ["-o", option]
    done = run([*args, host], stdin=subprocess.DEVNULL, env=base_env())
    assert done.returncode == 0 and not done.stderr, done.stderr
    return [(k, v) for k, _, v in (line.partition(" ") for line in done.stdout.splitlines())]


@pytest.mark.parametrize(
    ("host", "options"),
    [(host, ()) for host in HOSTS]
    + [("web", ("Port=1022", "User=cli", "ForwardX11=yes", "RequestTTY=force")),
       ("dbmain", ("ControlMaster=autoask", "EscapeChar=^A", "TCPKeepAlive=no"))],
)  # fmt: skip
def test_print_config_as_ssh_G(main_config: Path, host: str, options: tuple[str, ...]) -> None:
    """keytool exec -G: ssh -G's lines, in its order and words, for each keyword keytool
    acts on; the algorithm lists are keytool's own, and paths expanded."""
    ours = keytool_g(main_config, host, *options)
    seen = ssh_g(main_config, host, *options)
    theirs = [
        key for key, _ in (line.split(" ", 1) for line in _ssh_g_lines(main_config, host, options))
    ]
    keys = [key for key, _ in ours]
    assert set(keys) <= set(theirs), set(keys) - set(theirs)
    assert keys == [key for key in dict.fromkeys(theirs) if key in keys for _ in seen[key]]
    shown: dict[str, list[str]] = {}
    for key, value in ours:
        shown.setdefault(key, []).append(value)
    for key, values in shown.items():
        if key not in OWN_VALUES:
            assert values == seen[key], key
    assert shown["identityfile"] == [expand_home(p, HOME) for p in seen["identityfile"]]
    resolved = sshconfig.load(host, config_file=main_config, overrides=options)
    for key, field in ALGORITHMS.items():
        default = getattr(tconfig, _DEFAULTS[key])
        assert shown[field] == [",".join(apply_algorithm_list(getattr(resolved, key), default))]


_DEFAULTS = {
    "kex_algorithms": "DEFAULT_KEX",
    "ciphers": "DEFAULT_CIPHERS",
    "macs": "DEFAULT_MACS",
    "host_key_algorithms": "DEFAULT_HOST_KEY",
    "pubkey_accepted_algorithms": "DEFAULT_PUBKEY",
}


def _ssh_g_lines(config: Path, host: str, options: Sequence[str]) -> list[str]:
    args = [require("ssh"), "-G", "-F", str(config)]
    for option in options:
        args += ["-o", option]
    done = run([*args, host], stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("alias", ["Srv", None])
def test_percent_k_in_paths_as_ssh(tmp_path: Path, sshd: Sshd, alias: str | None) -> None:
    """%k (HostKeyAlias, else the host as typed) in IdentityFile and UserKnownHostsFile:
    ssh loads and writes the files keytool names, and keytool logs in with them."""
    name = alias.lower() if alias else "tokhost"
    key = keygen(tmp_path / f"id-{name}")
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    config = tmp_path / "config"
    config.write_text(
        "Host tokhost\n"
        "  HostName 127.0.0.1\n"
        f"  Port {sshd.port}\n"
        "  User root\n"
        + (f"  HostKeyAlias {alias}\n" if alias else "")
        + f"  IdentityFile {tmp_path}/id-%k\n"
        f"  UserKnownHostsFile {tmp_path}/kh-%k\n"
        "  StrictHostKeyChecking accept-new\n"
        "  IdentitiesOnly yes\n"
        "  BatchMode yes\n"
    )
    result = run([require("ssh"), "-v", "-F", config, "tokhost", "true"], stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    loaded = [
        n for n in re.findall(r"identity file (\S+) type", result.stderr) if not n.endswith("-cert")
    ]
    resolved = sshconfig.load("tokhost", config_file=config)
    assert list(resolved.identity_files) == loaded == [str(key)]
    known = tmp_path / f"kh-{name}"
    assert [Path(p) for p in resolved.user_known_hosts_files] == [known] and known.exists()
    known.unlink()
    done = run([*KEYTOOL, "exec", "-F", config, "tokhost", "echo in"], env=base_env(),
               stdin=subprocess.DEVNULL)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "in\n"), done.stderr
    assert known.exists()


@pytest.mark.parametrize(
    "flags",
    [("-n",), ("-N",), ("-W", "h:1"), ("-v",), ("-vv",), ("-vvvv",), ("-n", "-N", "-v"),
     ("-f",)],
)  # fmt: skip
def test_print_config_shows_the_flags_as_ssh_G(tmp_path: Path, flags: tuple[str, ...]) -> None:
    """-n, -N, -W, -f and -v stand for settings: -G shows them as ssh -G does."""
    keys = ("sessiontype", "stdinnull", "forkafterauthentication", "requesttty",
            "exitonforwardfailure", "loglevel")  # fmt: skip
    command = ["true"] if "-f" in flags else []
    shown = {}
    for program in ([require("ssh")], [*KEYTOOL, "exec"]):
        done = run([*program, "-G", "-F", "none", *flags, "somewhere", *command],
                   stdin=subprocess.DEVNULL, env=base_env())  # fmt: skip
        assert done.returncode == 0, done.stderr
        shown[program[0]] = [line for line in done.stdout.splitlines()
                             if line.split(" ", 1)[0] in keys]  # fmt: skip
    ours, theirs = shown[KEYTOOL[0]], shown[require("ssh")]
    assert ours == theirs and len(ours) == len(keys)


@pytest.mark.parametrize(
    "flags",
    [("-c", "foo"), ("-m", "foo"), ("-c", "aes128-ctr,nope"), ("-o", "Ciphers=foo"),
     ("-o", "Ciphers=+foo"), ("-o", "Ciphers=-foo"), ("-o", "Ciphers=aes*"),
     ("-o", "Ciphers=aes192-cbc"), ("-o", "Ciphers=aes128-ctr,,aes256-ctr"),
     ("-o", "MACs=foo"), ("-o", "MACs=hmac-sha1"), ("-o", "KexAlgorithms=foo"),
     ("-o", "KexAlgorithms=-foo*"), ("-o", "HostKeyAlgorithms=foo"),
     ("-o", "HostKeyAlgorithms=+ssh-dss"), ("-o", "PubkeyAcceptedAlgorithms=^bogus"),
     ("-o", "CASignatureAlgorithms=foo")],
)  # fmt: skip
def test_algorithm_names_checked_as_ssh_checks_them(flags: tuple[str, ...]) -> None:
    """An unknown name is refused before anything connects, in ssh's words; a name ssh
    knows that keytool does not implement is taken (and not offered)."""
    theirs = run([require("ssh"), "-G", "-F", "none", *flags, "somewhere"],
                 stdin=subprocess.DEVNULL)  # fmt: skip
    mine = run([*KEYTOOL, "exec", "-G", "-F", "none", *flags, "somewhere"],
               stdin=subprocess.DEVNULL, env=base_env())  # fmt: skip
    assert mine.returncode == theirs.returncode, (theirs.stderr, mine.stderr)
    if theirs.returncode:
        said = theirs.stderr.strip().splitlines()[-1].removeprefix("command-line line 0: ")
        assert mine.stderr.splitlines() == [
            "keytool: " + said if flags[0] != "-o" else f"keytool: command-line option 1: {said}"
        ]

"""How the configuration resolves, compared with OpenSSH 9.2's ``ssh -G``: the same
lines for the keywords concerned from ``keytool exec -G`` on the same files, or the
same refusal (exit status and first error line).

- The host name is fixed before the final pass (lower case unless an address, HostName's
  %h expanded): a HostName line read in that pass changes nothing, nor what ``Match
  host`` and ``Host`` compare in it.
- ProxyCommand, KnownHostsCommand, LocalCommand and RemoteCommand: every blank and '='
  before the value skipped; "none" (any case) unsets each.
- CanonicalizeHostname other than no asks for the final pass, so ``Match canonical``
  blocks apply (keytool does not canonicalize, but reads those blocks as ssh does).
- GlobalKnownHostsFile: neither ${NAME} nor %-tokens expanded.
- Values ssh refuses are refused: RevokedHostKeys of two files, a ProxyJump whose last
  hop is the host itself, values of keywords keytool ignores but ssh checks, and an
  ssh:// destination whose host is not a domain name (an IPv6 address).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, both_clients, server_for
from tests.interop.confighelp import run_config
from tests.peers import require


def _run(command: list[str], home: Path, keys: tuple[str, ...]) -> tuple[list[str], str, int]:
    result = run_config(command, home)
    lines = [line for line in result.stdout.splitlines() if line.split(" ")[0] in keys]
    errors = [
        line.removeprefix("keytool: ")
        for line in result.stderr.splitlines()
        if line and not line.startswith("Pseudo-terminal")
    ]
    # ssh prints its usage for a bad destination: the status is compared then
    first = errors[0] if errors and not errors[0].startswith("usage:") else ""
    if result.returncode == 0:
        first = ""
    return sorted(lines), first, result.returncode


def _both(tmp_path: Path, text: str, keys: tuple[str, ...], *args: str) -> None:
    ssh = require("ssh")
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "config"
    config.write_text(text)
    theirs = _run([ssh, "-G", "-F", str(config), *args], home, keys)
    ours = _run([*KEYTOOL, "exec", "-G", "-F", str(config), *args], home, keys)
    if theirs[1].startswith("bad destination") or ours[1].startswith("bad destination"):
        ours, theirs = ours[::2], theirs[::2]
    assert ours == theirs


HOST_KEYS = ("hostname", "port", "controlpath", "user")

FINAL_HOST = [
    ("Match final\nHostName other.example.com\nPort 2200\n", ("web1",)),
    (
        "host = web1\nHostName= 10.1.2.3\nmatch final user alice,!bob !canonical\n",
        ("-S", "/tmp/cm-%h", "Web1"),
    ),
    ("Match final\nHostName other\nMatch host other\nPort 2202\n", ("web1",)),
    ("Match final\nHostName other\nHost other\nPort 2202\n", ("web1",)),
    ("Match final\nHostName %h.x\nControlPath /tmp/c-%h\n", ("web1",)),
    (
        "Host web1\nHostName %h.EX.com\nMatch final host web1.ex.com\nPort 2201\n"
        "Match final\nHostName zzz\nMatch host zzz\nUser z\n",
        ("web1",),
    ),
    ("Match final\n", ("WEB1",)),
    ("Match final\nHostName web2\n", ("-o", "HostName=Web3", "web1")),
    ("HostName FE80::1\n", ("web1",)),
    ("HostName FE80::1\nMatch final\n", ("web1",)),
    ("CanonicalizeHostname yes\nMatch canonical\nHostName other\nPort 2203\n", ("web1",)),
]


@pytest.mark.parametrize(("text", "args"), FINAL_HOST)
def test_host_name_fixed_before_final_pass(
    tmp_path: Path, text: str, args: tuple[str, ...]
) -> None:
    _both(tmp_path, text, HOST_KEYS, *args)


COMMAND_KEYS = ("proxycommand", "knownhostscommand", "localcommand", "remotecommand")

COMMANDS = [
    "ProxyCommand = none",
    "ProxyCommand =none",
    "ProxyCommand=none",
    "ProxyCommand = NONE",
    "ProxyCommand =  = =nc %h %p",
    "ProxyCommand=  =nc %h %p",
    "ProxyCommand =\t=none",
    'ProxyCommand "none"',
    "KnownHostsCommand = none",
    "KnownHostsCommand = =/bin/true %h",
    "LocalCommand = =echo hi",
    "LocalCommand =echo hi",
    "LocalCommand None",
    "RemoteCommand none",
    "RemoteCommand NONE",
    "RemoteCommand = none",
    "RemoteCommand = = uptime",
    'RemoteCommand "none"',
    "ProxyCommand =",
]


@pytest.mark.parametrize("line", COMMANDS)
def test_command_keywords(tmp_path: Path, line: str) -> None:
    _both(tmp_path, f"PermitLocalCommand yes\n{line}\n", COMMAND_KEYS, "x")


CANONICAL_KEYS = ("stricthostkeychecking", "proxyjump", "identitiesonly", "port", "user")

CANONICAL = [
    (
        "CanonicalizeHostname yes\nMatch canonical\nStrictHostKeyChecking yes\n"
        "ProxyJump j\nIdentitiesOnly yes\n",
        (),
    ),
    ("CanonicalizeHostname always\nMatch canonical\nPort 2200\n", ()),
    ("CanonicalizeHostname true\nMatch final\nPort 2200\n", ()),
    ("CanonicalizeHostname no\nMatch canonical\nPort 2200\n", ()),
    ("Match canonical\nPort 2200\n", ("-o", "CanonicalizeHostname=yes")),
    ("Host x\nCanonicalizeHostname yes\nMatch canonical host x\nUser canon\n", ()),
    ("Match canonical\nUser canon\nHost *\nCanonicalizeHostname yes\n", ()),
    (
        "Match !canonical\nPort 2201\nMatch canonical\nPort 2202\n"
        "Host *\nCanonicalizeHostname yes\n",
        (),
    ),
]


@pytest.mark.parametrize(("text", "args"), CANONICAL)
def test_canonicalize_hostname_final_pass(tmp_path: Path, text: str, args: tuple[str, ...]) -> None:
    _both(tmp_path, text, CANONICAL_KEYS, *args, "x")


MATCH_ALL = [
    "Match canonical all",
    "Match final all",
    "Match !canonical all",
    "Match !final all",
    "Match canonical !all",
    "Match all canonical",
    "Match all final",
    "Match all !final",
]


@pytest.mark.parametrize("line", MATCH_ALL)
@pytest.mark.parametrize(
    "after",
    [
        "",
        "Match final\n",
        "Host *\nCanonicalizeHostname yes\n",
    ],
)
def test_match_all_with_canonical_final(tmp_path: Path, line: str, after: str) -> None:
    text = f"{line}\nHostName first.example\nPort 2201\nMatch !canonical\nPort 2202\n{after}"
    _both(tmp_path, text, ("hostname", "port"), "x")


def test_global_known_hosts_file_not_expanded(tmp_path: Path) -> None:
    text = "GlobalKnownHostsFile ${HOME}/g1 %h/g2 %d/g3 /etc/ssh/g4\n"
    _both(tmp_path, text, ("globalknownhostsfile",), "x")


REFUSED = [
    "RevokedHostKeys /a /b",
    "RevokedHostKeys none /b",
    'RevokedHostKeys ""',
    "RevokedHostKeys NONE",
    "ProxyJump jump:",
    "ProxyJump jump",
    "ProxyJump jump:22",
    "ProxyJump other,jump:",
    "ProxyJump ssh://jump",
    "ProxyJump u@jump:22",
    "ProxyJump jump:2222",
    "ProxyJump jump:,other",
    "ProxyJump JUMP",
    "CanonicalizeMaxDots abc",
    "CanonicalizeMaxDots -1",
    "CanonicalizeMaxDots 2 3",
    "CanonicalizeMaxDots 99999999999",
    "CanonicalizeMaxDots +2",
    "CanonicalizeHostname 1",
    "CanonicalizeHostname always x",
    "CanonicalizeFallbackLocal maybe",
    "CanonicalizePermittedCNAMEs bogus",
    "CanonicalizePermittedCNAMEs none *.a:b",
    "CanonicalizePermittedCNAMEs none",
    "CheckHostIP maybe",
    "CheckHostIP yes x",
    "PKCS11Provider /x y",
    "EnableSSHKeysign 2",
    "GSSAPIAuthentication x",
    "HostbasedAuthentication x",
    "ProxyUseFdpass x",
    "Tunnel x",
    "Tunnel Ethernet",
    "TunnelDevice x",
    "TunnelDevice 1:x",
    "TunnelDevice any:3",
    "SyslogFacility x",
    "SyslogFacility LOCAL7",
    "KbdInteractiveDevices a b",
    "SecurityKeyProvider a b",
    "GSSAPIClientIdentity a b",
    # in a block that does not apply: checked all the same
    "Host nothere\nCanonicalizeMaxDots abc",
]


@pytest.mark.parametrize("line", REFUSED)
def test_values_ssh_refuses(tmp_path: Path, line: str) -> None:
    _both(tmp_path, f"{line}\n", ("revokedhostkeys", "proxyjump"), "jump")


@pytest.mark.parametrize(
    "destination",
    [
        "ssh://bob@[::1]:2200",
        "ssh://[::1]",
        "ssh://a..b",
        "ssh://.a",
        "ssh://_a",
        "ssh://a.",
        "ssh://u%40v@h",
        "ssh://[web1]:2200",
        "ssh://bob@web1:2200/",
    ],
)
def test_ssh_uri_destination(tmp_path: Path, destination: str) -> None:
    _both(tmp_path, "", ("hostname", "port", "user"), destination)


def test_final_pass_host_name_connects_where_ssh_does(tmp_path: Path) -> None:
    """A HostName in the final pass naming a wrong address (none before it): both
    connect to the host given."""
    sshd, key, known = server_for(tmp_path)
    config = tmp_path / "config"
    config.write_text(
        f"Host 127.0.0.1\n  Port {sshd.port}\n  User root\n"
        f"  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n"
        "  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n"
        "  ConnectTimeout 10\n"
        "Match final\n  HostName 127.0.0.2\n"
    )
    with sshd:
        runs = both_clients("-F", str(config), "127.0.0.1", "echo", "reached", timeout=60)
    for tool, result in runs.items():
        assert (result.returncode, result.stdout) == (0, b"reached\n"), (tool, result.stderr)


@pytest.mark.parametrize(
    "keyword", ["CheckHostIP", "Tunnel=", "CanonicalizePermittedCNames", "User", "HostName"]
)
def test_an_option_without_a_value_is_refused_as_ssh_refuses_it(
    tmp_path: Path, keyword: str
) -> None:
    """``-o KEYWORD`` alone: ssh refuses it (status 255, no argument after keyword);
    keytool too, in one line, for the keywords it checks for ssh as for the others."""
    home = tmp_path / "home"
    home.mkdir()
    args = ["-G", "-F", "none", "-o", keyword, "web1"]
    theirs = _run([require("ssh"), *args], home, ())
    ours = subprocess.run(
        [*KEYTOOL, "exec", *args],
        capture_output=True, text=True, env=base_env(HOME=str(home)),
        stdin=subprocess.DEVNULL, timeout=60, check=False,
    )  # fmt: skip
    name = keyword.rstrip("=").lower()
    assert theirs[2] == ours.returncode == 255
    assert theirs[1].endswith(f'no argument after keyword "{name}"'), theirs
    assert ours.stderr.splitlines() == [
        f'keytool: command-line option 1: no argument after keyword "{name}"'
    ]

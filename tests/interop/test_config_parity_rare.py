"""Rare forms ssh 9.2 reads in its own way, as ``ssh -G`` and ``keytool exec -G`` show
them on the same configuration and flags: the lines of the keywords concerned, the
exit status and what is said on stderr (but the lines only ssh says whatever the
case: no terminal, a missing agent socket, its -v trace).

ForwardAgent keeps whether to forward apart from the socket it names; -q and -v, -N
and -t count in the order given; -R /path and -D port:/path are forwards; an
IdentityFile ssh cannot expand is shown as written; an algorithm list that comes to
nothing (or a + or ^ alone) is what ssh makes of it; a HostName that is a short IPv4
form (or an IPv6 one written long) is the address as ssh writes it; CanonicalDomains is
checked and shown as ssh does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL
from tests.interop.confighelp import run_config
from tests.peers import require

#: what ssh says on stderr in every case concerned here, and keytool does not
_SSH_ONLY = ("Pseudo-terminal will not be allocated", "Cannot forward agent socket path")


def _run(command: list[str], home: Path, keys: tuple[str, ...]) -> tuple[list[str], list[str], int]:
    result = run_config(command, home, KT_SOCK_VAR="/kt-no-such/agent.sock")
    lines = [line for line in result.stdout.splitlines() if line.startswith(keys)]
    said = [
        line.removeprefix("keytool: ")
        for line in result.stderr.splitlines()
        if not line.startswith(_SSH_ONLY) and not line.startswith(("debug", "OpenSSH_"))
    ]
    return lines, said, result.returncode


def _both(
    tmp_path: Path,
    text: str,
    flags: tuple[str, ...],
    keys: tuple[str, ...],
    destination: str = "x",
) -> None:
    ssh = require("ssh")
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "config"
    config.write_text(f"Host x\n{text}")
    theirs = _run([ssh, "-G", "-F", str(config), *flags, destination], home, keys)
    ours = _run([*KEYTOOL, "exec", "-G", "-F", str(config), *flags, destination], home, keys)
    assert ours == theirs


_AGENT = ("forwardagent ",)
AGENT_CASES = [
    ("", ("-o", "ForwardAgent=no", "-o", "ForwardAgent=/kt-no-such/fwd.sock")),
    ("", ("-o", "ForwardAgent=yes", "-o", "ForwardAgent=/kt-no-such/fwd.sock")),
    ("ForwardAgent no\nForwardAgent /kt-no-such/fwd.sock\n", ()),
    ("ForwardAgent /kt-no-such/fwd.sock\n", ("-o", "ForwardAgent=no")),
    ("ForwardAgent false\nForwardAgent $KT_SOCK_VAR\n", ()),
    ("ForwardAgent no\nForwardAgent /kt-no-such/fwd.sock\n", ("-A",)),
    ("ForwardAgent /kt-no-such/a.sock\nForwardAgent no\n", ()),
]


@pytest.mark.parametrize(("text", "flags"), AGENT_CASES)
def test_forward_agent_flag_and_socket(tmp_path: Path, text: str, flags: tuple[str, ...]) -> None:
    _both(tmp_path, text, flags, _AGENT)


def test_forward_agent_no_then_socket_forwards_nothing(tmp_path: Path) -> None:
    """When connecting (which no ssh -G shows): ForwardAgent no before a socket leaves
    forwarding off, as ssh's flag, while the socket is kept; -A turns it on."""
    from keytool.cli.sharing import _agent_on
    from keytool.sshconfig import load

    config = tmp_path / "config"
    config.write_text("Host x\nForwardAgent no\nForwardAgent /kt-no-such/fwd.sock\n")
    resolved = load("x", config_file=str(config), home=str(tmp_path))
    assert resolved.forward_agent == "/kt-no-such/fwd.sock"
    assert resolved.agent_forwarding is False
    assert not _agent_on(resolved)
    assert _agent_on(resolved._replace(agent_forwarding=True))


_LEVELS = ("loglevel ", "requesttty ", "sessiontype ")
FLAG_CASES = [
    ("-v", "-q"),
    ("-q", "-v"),
    ("-v", "-v", "-q"),
    ("-v", "-q", "-v"),
    ("-v", "-q", "-v", "-v"),
    ("-v", "-v", "-v", "-q", "-v"),
    ("-o", "LogLevel=ERROR", "-v"),
    ("-N", "-t"),
    ("-t", "-N"),
    ("-N", "-t", "-t"),
    ("-t", "-N", "-t"),
    ("-N", "-T", "-t"),
    ("-o", "RequestTTY=yes", "-N", "-t"),
    ("-W", "localhost:1", "-t"),
]


@pytest.mark.parametrize("flags", FLAG_CASES)
def test_quiet_verbose_and_tty_flags_in_order(tmp_path: Path, flags: tuple[str, ...]) -> None:
    _both(tmp_path, "", flags, _LEVELS)


_FORWARDS = ("localforward ", "remoteforward ", "dynamicforward ")
FORWARD_CASES = [
    ("", ("-R", "/kt-no-such/r.sock")),
    ("", ("-R", "kt-no-such/r.sock")),
    ("", ("-R", "/kt-no-such/a", "-R", "/kt-no-such/a", "-R", "/kt-no-such/a:1")),
    ("", ("-D", "1234:/kt-no-such/d.sock")),
    ("", ("-D", "/kt-no-such/l.sock:/kt-no-such/d.sock")),
    ("", ("-D", "1234:/kt-no-such/d.sock", "-L", "1234:/kt-no-such/d.sock")),
    ("", ("-L", "1234:/kt-no-such/d.sock")),
    ("", ("-D", "0:/kt-no-such/d.sock")),
    ("", ("-D", "localhost:/kt-no-such/d.sock")),
    ("", ("-D", "1234:relative")),
    ("DynamicForward 1234:/kt-no-such/d.sock\n", ()),
    ("DynamicForward 1234:/kt-no-such/d.sock\nLocalForward 1234 /kt-no-such/d.sock\n", ()),
]


@pytest.mark.parametrize(("text", "flags"), FORWARD_CASES)
def test_socket_forward_forms(tmp_path: Path, text: str, flags: tuple[str, ...]) -> None:
    _both(tmp_path, text, flags, _FORWARDS)


_KEYS = ("identityfile ", "certificatefile ")
TOKEN_CASES = [
    "IdentityFile /kt-no-such/id_%Z\n",
    "IdentityFile ~/.ssh/id_%Z\n",
    "IdentityFile /kt-no-such/id_%h_%Z_%r\n",
    "IdentityFile /kt-no-such/id_%\n",
    "IdentityFile /kt-no-such/a\nIdentityFile /kt-no-such/%Z\nIdentityFile /kt-no-such/b\n",
    "IdentityFile /kt-no-such/a\nCertificateFile /kt-no-such/c_%Z\n",
    "IdentityFile /kt-no-such/${KT_NO_SUCH_VAR}\n",
]


@pytest.mark.parametrize("text", TOKEN_CASES)
def test_identity_file_unknown_tokens(tmp_path: Path, text: str) -> None:
    _both(tmp_path, text, (), _KEYS)


# every algorithm list given whole, so that keytool's defaults (which differ) play no part
_LISTS = (
    "Ciphers aes128-ctr\nMACs hmac-sha2-256\nKexAlgorithms curve25519-sha256\n"
    "HostKeyAlgorithms ssh-ed25519\nPubkeyAcceptedAlgorithms ssh-ed25519\n"
    "CASignatureAlgorithms ssh-ed25519\n"
)
_ALGORITHMS = (
    "ciphers ",
    "macs ",
    "kexalgorithms ",
    "hostkeyalgorithms ",
    "pubkeyacceptedalgorithms ",
    "casignaturealgorithms ",
)
LIST_CASES = [
    "CASignatureAlgorithms -*\n",
    "CASignatureAlgorithms -ssh-ed25519,ecdsa*,rsa*,sk*\n",
    "CASignatureAlgorithms ^\n",
    "CASignatureAlgorithms +\n",
    "CASignatureAlgorithms ,\n",
    "CASignatureAlgorithms ssh-ed25519-cert-v01@openssh.com\n",
    "CASignatureAlgorithms rsa-sha2-512,,bogus\n",
    "Ciphers +\n",
    "MACs ^\n",
    "KexAlgorithms +\n",
    "HostKeyAlgorithms ^\n",
    "Ciphers aes128-ctr,,bogus\n",
    "Ciphers ,\n",
    "MACs ,\n",
    "PubkeyAcceptedAlgorithms ,\n",
]


@pytest.mark.parametrize("text", LIST_CASES)
def test_empty_algorithm_lists(tmp_path: Path, text: str) -> None:
    _both(tmp_path, text + _LISTS, (), _ALGORITHMS)


_HOST = ("hostname ", "user ")
HOST_CASES = [
    ("HostName 127.1\n", "x"),
    ("HostName 0x7f.1\n", "x"),
    ("HostName 2130706433\n", "x"),
    ("HostName 0177.0.0.1\n", "x"),
    ("HostName 999\n", "x"),
    ("HostName 256.1\n", "x"),
    ("HostName 127.1.\n", "x"),
    ("HostName 0:0::1\n", "x"),
    ("HostName FE80::1\n", "x"),
    ("HostName 127.1\nAddressFamily inet6\n", "x"),
    ("HostName 0:0::1\nAddressFamily inet\n", "x"),
    ("HostName 127.1\nMatch host 127.0.0.1\n  User first\n", "x"),
    ("HostName 127.1\nMatch final host 127.0.0.1\n  User final\n", "x"),
    ("", "127.1"),
    ("", "0:0::1"),
]


@pytest.mark.parametrize(("text", "destination"), HOST_CASES)
def test_short_address_forms(tmp_path: Path, text: str, destination: str) -> None:
    _both(tmp_path, text, (), _HOST, destination)


_DOMAINS = ("canonicaldomains ",)
DOMAIN_CASES = [
    "",
    "CanonicalDomains example.com\n",
    "CanonicalDomains A.Example.COM b.org.\n",
    "CanonicalDomains none\n",
    "CanonicalDomains NONE\n",
    "CanonicalDomains a_b.com a_b.com\n",
    "CanonicalDomains a.com\nCanonicalDomains b.com\n",
    "CanonicalDomains a.com,b.org\n",
    "CanonicalDomains .a.com\n",
    "CanonicalDomains -a.com\n",
    "CanonicalDomains *\n",
    "CanonicalDomains AB..CD\n",
    "CanonicalDomains AB,CD\n",
    'CanonicalDomains ""\n',
    "CanonicalDomains a.com none\n",
    "CanonicalDomains none a.com\n",
    "CanonicalDomains " + " ".join(f"d{n}.com" for n in range(33)) + "\n",
    "Host other\nCanonicalDomains bad/name\n",
]


@pytest.mark.parametrize("text", DOMAIN_CASES)
def test_canonical_domains(tmp_path: Path, text: str) -> None:
    _both(tmp_path, text, (), _DOMAINS)

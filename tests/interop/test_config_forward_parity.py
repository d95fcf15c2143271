"""LocalForward, RemoteForward and DynamicForward lines, and -L, -R and -D flags, as
OpenSSH's ``ssh -G`` reads them: the same forward lines, or the same error and exit
status, from ``keytool exec -G`` on the same configuration.

A RemoteForward of two values is joined with ':' and must be a forward: ``0.0.0.0
1080`` is a bad line, not a SOCKS proxy at the server's end (only one value, or -R,
makes one). (ssh -G also prints a "dynamicforward" line for every local forward to a
socket path, an artefact of its dump; such forms are left out here.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL
from tests.interop.confighelp import run_config
from tests.peers import require

_KINDS = ("localforward ", "remoteforward ", "dynamicforward ")


def _run(command: list[str], home: Path) -> tuple[list[str], list[str], int]:
    result = run_config(command, home, KT_FWD_TEST_PORT="8080")
    forwards = [line for line in result.stdout.splitlines() if line.startswith(_KINDS)]
    errors = [
        line.removeprefix("keytool: ")
        for line in result.stderr.splitlines()
        if "forwarding specification" in line or " line " in line
    ]
    return forwards, errors, result.returncode


def _both(tmp_path: Path, text: str, *flags: str) -> None:
    ssh = require("ssh")
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "config"
    config.write_text(f"Host x\n{text}")
    theirs = _run([ssh, "-G", "-F", str(config), *flags, "x"], home)
    ours = _run([*KEYTOOL, "exec", "-G", "-F", str(config), *flags, "x"], home)
    assert ours == theirs


CONFIG_LINES = [
    # RemoteForward of one value: a SOCKS proxy at the server's end
    "RemoteForward 1080",
    "RemoteForward localhost:1080",
    "RemoteForward [::1]:1080",
    "RemoteForward 0",
    "RemoteForward *:1080",
    "RemoteForward :1080",
    'RemoteForward 1080 ""',
    # ... unless it is a forward to a socket, or a socket alone
    "RemoteForward 1080:/tmp/fwd-s",
    "RemoteForward /tmp/fwd-s",
    "RemoteForward /tmp/fwd-s:1080",
    "RemoteForward /tmp/fwd-s:/tmp/fwd-t",
    # two values: a forward, never a SOCKS proxy
    "RemoteForward 0.0.0.0 1080",
    "RemoteForward localhost 1080",
    "RemoteForward 8080 1080",
    'RemoteForward "" 1080',
    "RemoteForward 8080 localhost:80",
    "RemoteForward localhost:8080 localhost:80",
    "RemoteForward [::1]:8080 [::1]:80",
    "RemoteForward 0 localhost:80",
    "RemoteForward 8080 localhost:0",
    "RemoteForward /tmp/fwd-s localhost:80",
    "RemoteForward /tmp/fwd-s /tmp/fwd-t",
    "RemoteForward 8080 /tmp/fwd-t",
    "RemoteForward localhost:8080 /tmp/fwd-t",
    "RemoteForward a 1080:/tmp/fwd-s",
    "RemoteForward /tmp/fwd-s 1080",
    "RemoteForward 1080 a:b:c",
    "RemoteForward 8080 ::80",
    "RemoteForward 8080:localhost:80",
    "RemoteForward a:b:c:d",
    "RemoteForward 99999",
    "RemoteForward 65535 x:65536",
    "RemoteForward http localhost:http",
    "RemoteForward 8080 localhost:80 extra",
    "RemoteForward 8080 ${KT_FWD_TEST_NOPE}:80",
    "RemoteForward ${KT_FWD_TEST_PORT} localhost:80",
    "RemoteForward ${KT_FWD_TEST_PORT}",
    "RemoteForward 8080 [localhost:80",
    "RemoteForward 8080 localhost:80\\",
    "RemoteForward 1080\nRemoteForward 1080\nRemoteForward localhost:1080",
    "RemoteForward 8080 x:80\nRemoteForward 8080 x:http",
    # LocalForward
    "LocalForward 8080 localhost:80",
    "LocalForward localhost:8080 localhost:80",
    "LocalForward 8080",
    'LocalForward 8080 ""',
    'LocalForward "" x:80',
    "LocalForward 0 x:80",
    "LocalForward 8080 1080",
    "LocalForward 0.0.0.0 1080",
    "LocalForward /tmp/fwd-s x:80",
    "LocalForward /tmp/fwd-s 1080",
    "LocalForward 8080 ::80",
    "LocalForward 1080:/tmp/fwd-s",
    # DynamicForward
    "DynamicForward 1080",
    "DynamicForward localhost:1080",
    "DynamicForward [::1]:1080",
    "DynamicForward *:1080",
    "DynamicForward /tmp/fwd-s",
    "DynamicForward /tmp/fwd-s:1080",
    "DynamicForward 0",
    'DynamicForward ""',
    "DynamicForward 1080 x",
    "DynamicForward a:1080:x:80",
]


@pytest.mark.parametrize("line", CONFIG_LINES)
def test_config_line_as_ssh_reads_it(tmp_path: Path, line: str) -> None:
    _both(tmp_path, "".join(f"    {part}\n" for part in line.split("\n")))


FLAGS = [
    "-R1080",
    "-Rlocalhost:1080",
    "-R8080:1080",
    "-R0.0.0.0:1080",
    "-R8080:localhost:80",
    "-R1080:/tmp/fwd-s",
    "-R/tmp/fwd-s:/tmp/fwd-t",
    "-R/tmp/fwd-s:x:80",
    "-R/tmp/fwd-s:1080",
    "-R0",
    "-R:1080",
    "-R8080::80",
    "-R8080:1080:x",
    "-Ra:b:c:d:e",
    "-R",
    "-L8080:x:80",
    "-L:8080:x:80",
    "-L8080::80",
    "-L8080",
    "-L8080:1080",
    "-L0:x:80",
    "-L/tmp/fwd-s:x:80",
    "-L/tmp/fwd-s",
    "-D1080",
    "-D/tmp/fwd-s",
    "-Da:1080",
    "-D/tmp/fwd-s:1080",
    "-D0",
    "-Da:b:c",
    "-D",
    # ${NAME} in a flag's spec, expanded as ssh's parse_forward expands it
    "-L${KT_FWD_TEST_PORT}:x:80",
    "-R${KT_FWD_TEST_PORT}",
    "-R/tmp/fwd-${KT_FWD_TEST_PORT}:x:80",
    "-D${KT_FWD_TEST_PORT}",
]


@pytest.mark.parametrize("flag", FLAGS)
def test_flag_as_ssh_reads_it(tmp_path: Path, flag: str) -> None:
    if flag in ("-R", "-L", "-D"):  # an empty spec
        _both(tmp_path, "", flag, "")
    else:
        _both(tmp_path, "", flag)


@pytest.mark.parametrize("flag", ["-L${KT_NO_SUCH_VAR}:x:80", "-L/tmp/${KT_NO_SUCH_VAR}:x:80"])
def test_flag_with_an_unset_variable_is_refused_as_ssh_refuses_it(
    tmp_path: Path, flag: str
) -> None:
    """ssh refuses the spec as given (status 255) after saying which variable has no
    value; keytool in one line that says both."""
    home = tmp_path / "home"
    home.mkdir()
    theirs = _run([require("ssh"), "-G", "-F", "none", flag, "x"], home)
    ours = _run([*KEYTOOL, "exec", "-G", "-F", "none", flag, "x"], home)
    assert theirs[0] == ours[0] == []
    assert theirs[2] == ours[2] == 255
    assert len(theirs[1]) == len(ours[1]) == 1
    assert ours[1][0] == f"{theirs[1][0]} (env var ${{KT_NO_SUCH_VAR}} has no value)"

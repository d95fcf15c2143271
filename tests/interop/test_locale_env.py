"""The locale environment keytool hands on, side by side with ssh: Python sets
LC_CTYPE=C.UTF-8 at start when the locale is C, POSIX or one it cannot load (PEP
538), and keytool gives the user's environment back. What an sshd with ``AcceptEnv
LANG LC_*`` saw (SendEnv), and what a ProxyCommand and a LocalCommand saw, are the
reference; keytool's own output keeps following the locale it was started in."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.clienthelp import KEYTOOL, base_env, keygen, relay_script, server_for
from tests.peers import require

SHOW = "env | grep -E '^(LANG|LC_)' | sort"


def proxy_script(folder: Path) -> Path:
    """A ProxyCommand that writes its locale variables to $1, then relays to $2:$3."""
    relay = relay_script(folder)
    script = folder / "proxy.sh"
    script.write_text(f'#!/bin/sh\n{SHOW} > "$1"\nexec {relay} "$2" "$3"\n')
    script.chmod(0o755)
    return script


def locale_env(**given: str) -> dict[str, str]:
    """The test's environment without any locale setting, plus ``given``."""
    drop = ("LANG", "LANGUAGE", "PYTHONCOERCECLOCALE", "PYTHONUTF8")
    env = {k: v for k, v in base_env().items() if k not in drop and not k.startswith("LC_")}
    env.update(given)
    return env


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """A folder, and the flags both clients share (an sshd taking LANG and LC_*)."""
    folder = tmp_path_factory.mktemp("locale")
    server, key, known = server_for(folder, {"AcceptEnv": "LANG LC_*"})
    proxy_script(folder)
    common = ["-F", "none", "-p", str(server.port), "-i", str(key),
              "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
              "-o", "SendEnv=LANG", "-o", "SendEnv=LC_*"]  # fmt: skip
    with server:
        yield folder, common


def run(tool: str, folder: Path, common: list[str], env: dict[str, str]) -> tuple[bytes, bytes]:
    """What the remote command and the LocalCommand printed, and what the ProxyCommand
    wrote, for ``tool`` (ssh or keytool) run in ``env``."""
    seen = folder / f"proxy-{tool}"
    seen.unlink(missing_ok=True)
    flags = [*common, "-o", f"ProxyCommand={folder / 'proxy.sh'} {seen} %h %p",
             "-o", "PermitLocalCommand=yes",
             "-o", f"LocalCommand={SHOW} | sed s/^/local:/"]  # fmt: skip
    program = [*KEYTOOL, "exec"] if tool == "keytool" else [require("ssh"), "-T"]
    done = subprocess.run(
        [*program, *flags, "root@127.0.0.1", SHOW],
        capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout, seen.read_bytes()


CASES = [
    ({"LANG": "C"}, ["LANG=C"]),
    # set by the user: kept, though Python sets LC_CTYPE=C.UTF-8 for it at start
    ({"LC_CTYPE": "C"}, ["LC_CTYPE=C"]),
    ({"LANG": "C", "LC_CTYPE": "C.UTF-8"}, ["LANG=C", "LC_CTYPE=C.UTF-8"]),
    ({"LANG": "en_US.UTF-8"}, ["LANG=en_US.UTF-8"]),  # no such locale here: coerced
    ({"LC_ALL": "C.UTF-8"}, ["LC_ALL=C.UTF-8"]),
    ({}, []),
]


@pytest.mark.parametrize(("given", "expected"), CASES)
def test_sent_and_handed_on_as_by_ssh(
    setup: tuple[Path, list[str]], given: dict[str, str], expected: list[str]
) -> None:
    folder, common = setup
    env = locale_env(**given)
    mine, theirs = run("keytool", folder, common, env), run("ssh", folder, common, env)
    assert mine == theirs
    remote, proxy = mine
    lines = "".join(f"{line}\n" for line in expected)
    local = "".join(f"local:{line}\n" for line in expected)
    assert remote.decode() == local + lines  # LocalCommand, then the session
    assert proxy.decode() == lines


@pytest.mark.parametrize(
    "given", [{"LANG": "C"}, {"LC_CTYPE": "C"}, {"LC_CTYPE": "C.UTF-8"}, {"LANG": "C.UTF-8"}]
)
def test_own_output_follows_the_locale_as_ssh_keygen(tmp_path: Path, given: dict[str, str]) -> None:
    """A key comment that is UTF-8 is shown as it is in a UTF-8 locale, escaped in C."""
    key = keygen(tmp_path / "id", "ed25519", "café")
    env = locale_env(**given)
    args = ["-l", "-f", f"{key}.pub"]
    theirs = subprocess.run([require("ssh-keygen"), *args], capture_output=True, env=env,
                            check=False, timeout=60)  # fmt: skip
    mine = subprocess.run([*KEYTOOL, "fingerprint", *args[1:]], capture_output=True, env=env,
                          check=False, timeout=60)  # fmt: skip
    assert theirs.returncode == mine.returncode == 0, mine.stderr
    assert mine.stdout == theirs.stdout

"""Values OpenSSH's tools refuse or handle in one line, side by side with keytool: host
names no resolver takes, a BindAddress without an address, empty or zero option
values; ``passwd`` leaves FILE.pub alone as ``ssh-keygen -p`` does; ``add -d`` takes
the .pub file as ``ssh-add -d`` does."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.interop.agenthelp import openssh_agent
from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import free_port, require


def keytool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*KEYTOOL, *args], capture_output=True, stdin=subprocess.DEVNULL,
                          env=env or base_env(), timeout=60)  # fmt: skip


def openssh(
    program: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([require(program), *args], capture_output=True,
                          stdin=subprocess.DEVNULL, env=env, timeout=60)  # fmt: skip


def one_line(done: subprocess.CompletedProcess[bytes]) -> str:
    text = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in text and text.count("\n") == 1, text
    return text.removeprefix("keytool: ").rstrip("\n")


@pytest.mark.parametrize("host", ["a..b", ".a", "x" * 64 + ".example", "ü..x"])
def test_host_names_no_resolver_takes(host: str, tmp_path: Path) -> None:
    theirs = openssh("ssh", "-F", "none", host, "true")
    assert theirs.returncode == 255
    said = theirs.stderr.decode().removeprefix("ssh: ").rstrip("\r\n")
    mine = keytool("exec", "-F", "none", host, "true")
    assert mine.returncode == 255 and one_line(mine) == said
    pub = tmp_path / "key.pub"
    made = openssh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key"))
    assert made.returncode == 0 and pub.exists()
    copied = keytool("copy-id", "-F", "none", "-i", str(pub), host)
    assert copied.returncode == 1 and one_line(copied).endswith(said)
    scanned = keytool("keyscan", host)
    assert scanned.returncode == 1 and one_line(scanned) == said


@pytest.mark.parametrize("address", ["999.1.1.1", "ü..x"])
def test_a_bind_address_without_an_address(address: str) -> None:
    port = str(free_port())
    theirs = openssh("ssh", "-F", "none", "-b", address, "-p", port, "127.0.0.1", "true")
    mine = keytool("exec", "-F", "none", "-b", address, "-p", port, "127.0.0.1", "true")
    assert mine.returncode == theirs.returncode == 255
    expected = [line.removeprefix("ssh: ") for line in theirs.stderr.decode().splitlines()]
    said = [line.removeprefix("keytool: ") for line in mine.stderr.decode().splitlines()]
    assert said == expected


def _key(folder: Path, name: str) -> Path:
    made = openssh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name,
                   "-f", str(folder / name))  # fmt: skip
    assert made.returncode == 0
    return folder / name


def _state(*paths: Path) -> dict[str, str | None]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None for p in paths
    }


@pytest.mark.parametrize("pub", ["another key", "garbage", "missing"])
def test_passwd_never_writes_the_pub_file(tmp_path: Path, pub: str) -> None:
    """ssh-keygen -p rewrites the key file alone; keytool passwd too, whatever FILE.pub
    holds, and with the same result for the key."""
    for tool in ("ssh-keygen", "keytool"):
        folder = tmp_path / tool
        folder.mkdir()
        key, other = _key(folder, "key"), _key(folder, "other")
        public = openssh("ssh-keygen", "-y", "-f", str(key)).stdout.split()[:2]
        pub_file = Path(f"{key}.pub")
        if pub == "another key":
            pub_file.write_bytes(Path(f"{other}.pub").read_bytes())
        elif pub == "garbage":
            pub_file.write_bytes(b"not a key\n")
        else:
            pub_file.unlink()
        before = _state(pub_file)
        args = ["-f", str(key), "-P", "", "-N", "a new passphrase"]
        done = openssh("ssh-keygen", "-p", *args) if tool == "ssh-keygen" else keytool(
            "passwd", *args)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert _state(pub_file) == before, tool
        # the new passphrase opens it, and it is the same key
        opened = openssh("ssh-keygen", "-y", "-P", "a new passphrase", "-f", str(key))
        assert (opened.returncode, opened.stdout.split()[:2]) == (0, public), tool


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["passwd", "-a", "0"], "-a"),
        (["passwd", "-a", "-3"], "-a"),
        (["gen", "-t", ""], "type"),
        (["fingerprint", "-E", ""], "hash"),
    ],
)
def test_empty_or_zero_values_are_refused(tmp_path: Path, args: list[str], word: str) -> None:
    key = _key(tmp_path, "key")
    before = _state(key, Path(f"{key}.pub"))
    command, *rest = args
    target = ["-f", str(key)] if command != "gen" else ["-N", "", "-f", str(tmp_path / "new")]
    if command == "passwd":
        target += ["-P", "", "-N", "a new passphrase"]
    keygen_flag = {"passwd": ["-p"], "gen": [], "fingerprint": ["-l"]}[command]
    theirs = openssh("ssh-keygen", *keygen_flag, *rest, *target)
    assert theirs.returncode == 255
    mine = keytool(command, *rest, *target)
    assert mine.returncode != 0 and word in one_line(mine).lower()
    assert mine.stdout == b""  # nothing said of the key: refused before it was read
    assert _state(key, Path(f"{key}.pub")) == before
    assert not (tmp_path / "new").exists()


def test_add_d_takes_the_pub_file(tmp_path: Path) -> None:
    key = _key(tmp_path, "key")
    removed = {}
    with openssh_agent(tmp_path / "agent") as agent:
        env = agent.env()
        for tool in ("ssh-add", "keytool"):
            assert openssh("ssh-add", "-q", str(key), env=env).returncode == 0
            done = (
                openssh("ssh-add", "-d", f"{key}.pub", env=env)
                if tool == "ssh-add"
                else keytool("add", "-d", f"{key}.pub", env={**base_env(), **env})
            )
            assert done.returncode == 0, done.stderr
            removed[tool] = done.stderr.decode().removeprefix("keytool: ")
            listed = openssh("ssh-add", "-l", env=env)
            assert listed.returncode == 1  # the agent holds nothing
    assert removed["keytool"] == removed["ssh-add"]
    assert removed["ssh-add"].startswith("Identity removed:")

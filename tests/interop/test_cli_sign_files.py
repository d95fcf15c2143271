"""How ``keytool sign`` finds its key and writes its files, and how ``keytool verify``
reads a signature file, next to ``ssh-keygen -Y sign / verify / check-novalidate /
find-principals`` on the same files: a private key the agent holds signs through the
agent, a directory is a message that cannot be read, FILE.sig is created as the umask
says, and what follows a signature's END line is not read."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.interop.agenthelp import openssh_agent
from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require, run

MESSAGE = b"a commit, or any file\n" * 20
OTHER = b"another message\n"


def both(
    args: list[str],
    stdin: bytes = MESSAGE,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    umask: int = -1,
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    """``ssh-keygen -Y ARGS`` and keytool's ``sign ARGS`` or ``verify ARGS`` (ARGS[0] is
    ssh-keygen's operation), with no terminal to ask a passphrase on."""
    operation, rest = args[0], args[1:]
    mine = {
        "sign": ["sign"],
        "verify": ["verify"],
        "check-novalidate": ["verify"],
        "find-principals": ["verify", "--find-principals"],
    }[operation]
    return tuple(  # type: ignore[return-value]
        subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            env=env or base_env(),
            cwd=cwd,
            timeout=60,
            start_new_session=True,
            umask=umask,
        )
        for argv in ([require("ssh-keygen"), "-Y", *args], [*KEYTOOL, *mine, *rest])
    )


def new_key(path: Path, kind: str = "ed25519") -> Path:
    bits = ["-b", "2048"] if kind == "rsa" else []
    run([require("ssh-keygen"), "-q", "-t", kind, *bits, "-N", "", "-C", "", "-f", path])
    return path


def test_a_private_key_the_agent_holds_signs_through_the_agent(tmp_path: Path) -> None:
    """git's user.signingkey is often the private key: ssh-keygen reads its public half
    (KEY.pub, else the key file's public part) and signs with the agent when it holds
    it, never asking for the passphrase (nor reading it from stdin, the message)."""
    key = new_key(tmp_path / "id")
    other = new_key(tmp_path / "other")
    with openssh_agent(tmp_path / "agent") as agent:
        env = base_env(SSH_AUTH_SOCK=str(agent.sock))
        added = run([require("ssh-add"), key], env=env)
        assert added.returncode == 0, added.stderr
        # the file is now encrypted: only the agent can sign without a passphrase
        run([require("ssh-keygen"), "-q", "-p", "-P", "", "-N", "secret", "-f", key])
        for flags in ([], ["-U"]):
            args = ["sign", *flags, "-f", str(key), "-n", "git"]
            theirs, mine = both(args, env=env)
            assert theirs.returncode == 0, theirs.stderr
            assert (mine.returncode, mine.stdout) == (0, theirs.stdout), mine.stderr
            assert mine.stderr == theirs.stderr == b"Signing data on standard input\n"
        # no KEY.pub: the public part of the key file itself, for both
        os.rename(f"{key}.pub", tmp_path / "id.pub.away")
        for flags in ([], ["-U"]):
            theirs, mine = both(["sign", *flags, "-f", str(key), "-n", "git"], env=env)
            assert theirs.returncode == 0, theirs.stderr
            assert (mine.returncode, mine.stdout) == (0, theirs.stdout), mine.stderr
    # a KEY.pub of another key is the key that signs: the private key is not its own
    plain = new_key(tmp_path / "plain")
    os.replace(f"{other}.pub", f"{plain}.pub")
    theirs, mine = both(["sign", "-f", str(plain), "-n", "git"])
    assert theirs.returncode != 0 and theirs.stdout == b""
    assert mine.returncode != 0 and mine.stdout == b""
    lines = mine.stderr.decode().splitlines()
    assert len([line for line in lines if line.startswith("keytool:")]) == 1, lines
    assert "Traceback" not in mine.stderr.decode()


@pytest.mark.parametrize("name", ["/", ".", "folder", "folder/"])
def test_a_directory_is_a_message_that_cannot_be_read(tmp_path: Path, name: str) -> None:
    key = new_key(tmp_path / "id")
    (tmp_path / "folder").mkdir()
    theirs, mine = both(["sign", "-f", str(key), "-n", "file", name], cwd=tmp_path)
    assert theirs.returncode == mine.returncode == 255
    assert theirs.stdout == mine.stdout == b""
    said = theirs.stderr.decode().splitlines()
    assert mine.stderr.decode().splitlines() == [said[0], f"keytool: {said[-1]}"]
    assert not (tmp_path / "folder" / ".sig").exists()


@pytest.mark.parametrize("umask", [0o077, 0o002, 0o022, 0o000])
def test_the_signature_file_is_created_as_the_umask_says(tmp_path: Path, umask: int) -> None:
    key = new_key(tmp_path / "id")
    theirs, mine = tmp_path / "theirs", tmp_path / "mine"

    def sign(*flags: str, answer: bytes = b"") -> None:
        for argv in (
            [require("ssh-keygen"), "-Y", "sign", "-f", str(key), "-n", "file", str(theirs)],
            [*KEYTOOL, "sign", *flags, "-f", str(key), "-n", "file", str(mine)],
        ):
            done = subprocess.run(argv, input=answer, capture_output=True, env=base_env(),
                                  umask=umask, timeout=60)  # fmt: skip
            assert done.returncode == 0, done.stderr

    def modes() -> tuple[int, int]:
        return tuple(os.stat(f"{path}.sig").st_mode & 0o7777 for path in (theirs, mine))  # type: ignore[return-value]

    theirs.write_bytes(MESSAGE)
    mine.write_bytes(MESSAGE)
    sign()
    assert modes()[0] == modes()[1]
    # a signature file replaced keeps its mode (ssh-keygen asks, keytool needs --force)
    for path in (theirs, mine):
        os.chmod(f"{path}.sig", 0o640)
    sign("--force", answer=b"y\n")
    assert modes() == (0o640, 0o640)
    assert Path(f"{theirs}.sig").read_bytes() == Path(f"{mine}.sig").read_bytes()


@pytest.fixture(scope="module")
def signatures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Signature files with something after the END line, and an allowed_signers file
    naming "first" for the key of the first signature and "second" for the other."""
    folder = tmp_path_factory.mktemp("trailing")
    first, second = new_key(folder / "first"), new_key(folder / "second", "rsa")
    sign = [require("ssh-keygen"), "-Y", "sign", "-n", "file", "-f"]
    made, later = (
        subprocess.run([*sign, key], input=message, capture_output=True, timeout=60).stdout
        for key, message in ((first, MESSAGE), (second, OTHER))
    )
    assert made.startswith(b"-----BEGIN") and later.startswith(b"-----BEGIN")
    end = b"-----END SSH SIGNATURE-----"
    contents = {
        "junk": made + b"junk \xff\x00 after it\n",
        "second": made + later,
        "second glued": made.rstrip(b"\n") + later,
        "end line": made.replace(end, end + b" trailing words"),
        "no newline": made.rstrip(b"\n"),
    }
    files = {}
    for name, content in contents.items():
        files[name] = folder / name.replace(" ", "-")
        files[name].write_bytes(content)
    allowed = folder / "allowed_signers"
    allowed.write_text(
        "".join(
            f"{who} {' '.join(Path(f'{key}.pub').read_text().split()[:2])}\n"
            for who, key in (("first", first), ("second", second))
        )
    )
    files["allowed"] = allowed
    return files


@pytest.mark.parametrize("kind", ["junk", "second", "second glued", "end line", "no newline"])
def test_what_follows_the_signature_is_not_read(signatures: dict[str, Path], kind: str) -> None:
    signature, allowed = str(signatures[kind]), str(signatures["allowed"])
    for message in (MESSAGE, OTHER):
        for args in (
            ["verify", "-f", allowed, "-I", "first", "-n", "file", "-s", signature],
            ["verify", "-f", allowed, "-I", "second", "-n", "file", "-s", signature],
            ["check-novalidate", "-n", "file", "-s", signature],
            ["find-principals", "-f", allowed, "-s", signature],
        ):
            theirs, mine = both(args, stdin=message)
            assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), (
                args,
                theirs.stderr,
                mine.stderr,
            )
            assert b"Traceback" not in mine.stderr
            good = args[0] == "find-principals" or (message == MESSAGE and "second" not in args)
            assert mine.returncode == (0 if good else 255), (args, mine.stderr)

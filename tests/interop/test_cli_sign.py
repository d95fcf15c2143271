"""``keytool sign`` / ``keytool verify`` against ``ssh-keygen -Y sign / verify /
check-novalidate / find-principals``, both ways, every key type, through files and an
agent; what ssh-keygen printed and its status are the reference."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.interop.agenthelp import openssh_agent
from tests.interop.clienthelp import KEYTOOL, base_env
from tests.peers import require, run

MESSAGE = b"a commit, or any file\n" * 50
KEYS = [("ed25519", "256"), ("rsa", "3072"), ("ecdsa", "256"), ("ecdsa", "384"), ("ecdsa", "521")]


def keytool(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
    return subprocess.run(
        [*KEYTOOL, *args], input=stdin, capture_output=True, env=env or base_env(),
        cwd=cwd, timeout=60,
    )  # fmt: skip


def keygen(*args: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require("ssh-keygen"), *map(str, args)], input=stdin, capture_output=True, timeout=60
    )


def make_key(folder: Path, kind: str, bits: str) -> Path:
    path = folder / f"id_{kind}_{bits}"
    run([require("ssh-keygen"), "-q", "-t", kind, "-b", bits, "-N", "", "-C", "", "-f", path])
    return path


def allowed(
    folder: Path, key: Path, principals: str = "dev@example.com", options: str = ""
) -> Path:
    pub = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    path = folder / "allowed_signers"
    path.write_text(f"{principals} {options + ' ' if options else ''}{pub}\n")
    return path


@pytest.mark.parametrize(("kind", "bits"), KEYS)
def test_ours_verified_by_ssh_keygen_and_theirs_by_us(tmp_path: Path, kind: str, bits: str) -> None:
    key = make_key(tmp_path, kind, bits)
    signers = allowed(tmp_path, key)
    message = tmp_path / "message"
    message.write_bytes(MESSAGE)
    # keytool signs the file (FILE.sig), ssh-keygen verifies it
    signed = keytool("sign", "-f", str(key), "-n", "git", str(message))
    assert signed.returncode == 0, signed.stderr
    ours = tmp_path / "message.sig"  # its mode: test_cli_sign_files.py
    check = ["-Y", "verify", "-f", signers, "-I", "dev@example.com", "-n", "git", "-s", ours]
    theirs_verdict = keygen(*check, stdin=MESSAGE)
    assert theirs_verdict.returncode == 0, theirs_verdict.stderr
    assert theirs_verdict.stdout.startswith(b'Good "git" signature for dev@example.com')
    # a changed message is refused by ssh-keygen
    assert keygen(*check, stdin=MESSAGE + b"!").returncode != 0
    # ssh-keygen signs, keytool verifies: the same words as ssh-keygen's own verify
    theirs = tmp_path / "theirs.sig"
    made = keygen("-Y", "sign", "-f", key, "-n", "git", stdin=MESSAGE)
    assert made.returncode == 0, made.stderr
    theirs.write_bytes(made.stdout)
    for signature in (theirs, ours):
        args = ["-f", str(signers), "-I", "dev@example.com", "-n", "git", "-s", str(signature)]
        mine = keytool("verify", *args, stdin=MESSAGE)
        reference = keygen("-Y", "verify", *args, stdin=MESSAGE)
        assert (mine.returncode, mine.stdout) == (reference.returncode, reference.stdout)
        assert mine.returncode == 0
        novalidate = ["-n", "git", "-s", str(signature)]
        assert (
            keytool("verify", *novalidate, stdin=MESSAGE).stdout
            == keygen("-Y", "check-novalidate", *novalidate, stdin=MESSAGE).stdout
        )
        principals = ["-f", str(signers), "-s", str(signature)]
        assert (
            keytool("verify", "--find-principals", *principals).stdout
            == keygen("-Y", "find-principals", *principals).stdout
            == b"dev@example.com\n"
        )
        refused = keytool("verify", *args, stdin=MESSAGE + b"!")
        assert refused.returncode == 255 and refused.stdout == b"Could not verify signature.\n"
        assert len(refused.stderr.splitlines()) == 1


def test_ed25519_signature_is_byte_identical_to_ssh_keygen_s(tmp_path: Path) -> None:
    # Ed25519 signatures are deterministic: the same key, namespace and message give the
    # same armored text, whoever makes it
    key = make_key(tmp_path, "ed25519", "256")
    ours = keytool("sign", "-f", str(key), "-n", "file", stdin=MESSAGE)
    theirs = keygen("-Y", "sign", "-f", key, "-n", "file", stdin=MESSAGE)
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout
    assert ours.stderr == b"Signing data on standard input\n"


@pytest.mark.parametrize(
    ("principals", "options", "identity", "namespace"),
    [
        ("dev@example.com", "", "dev@example.com", "git"),
        ("dev@example.com", "", "other@example.com", "git"),
        ("*@example.com,!bad@example.com", "", "dev@example.com", "git"),
        ("*@example.com,!bad@example.com", "", "bad@example.com", "git"),
        ("dev@example.com", 'namespaces="git,file"', "dev@example.com", "file"),
        ("dev@example.com", 'namespaces="file"', "dev@example.com", "git"),
        ("dev@example.com", 'valid-before="20200101"', "dev@example.com", "git"),
        ("dev@example.com", 'valid-after="20200101Z"', "dev@example.com", "git"),
        ("dev@example.com", 'valid-after="29991231"', "dev@example.com", "git"),
        ("dev@example.com", "cert-authority", "dev@example.com", "git"),
    ],
)
def test_allowed_signers_decide_as_ssh_keygen(
    tmp_path: Path, principals: str, options: str, identity: str, namespace: str
) -> None:
    key = make_key(tmp_path, "ed25519", "256")
    signers = allowed(tmp_path, key, principals, options)
    signature = tmp_path / "sig"
    signature.write_bytes(keygen("-Y", "sign", "-f", key, "-n", namespace, stdin=MESSAGE).stdout)
    args = ["-f", str(signers), "-I", identity, "-n", namespace, "-s", str(signature)]
    mine = keytool("verify", *args, stdin=MESSAGE)
    reference = keygen("-Y", "verify", *args, stdin=MESSAGE)
    assert (mine.returncode, mine.stdout) == (reference.returncode, reference.stdout)


def test_find_principals_prints_the_first_line_one_by_one(tmp_path: Path) -> None:
    key = make_key(tmp_path, "ed25519", "256")
    pub = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"a@x,b@x {pub}\nc@x {pub}\n")
    signature = tmp_path / "sig"
    signature.write_bytes(keygen("-Y", "sign", "-f", key, "-n", "git", stdin=MESSAGE).stdout)
    args = ["-f", str(signers), "-s", str(signature)]
    mine = keytool("verify", "--find-principals", *args)
    reference = keygen("-Y", "find-principals", *args)
    assert (mine.returncode, mine.stdout) == (reference.returncode, reference.stdout)
    assert mine.stdout == b"a@x\nb@x\n"


def test_a_public_key_without_agent_signs_with_the_private_key_beside_it(tmp_path: Path) -> None:
    # ssh-keygen -Y sign -f KEY.pub: the agent's key if it holds it, else KEY's
    key = make_key(tmp_path, "ed25519", "256")
    ours = keytool("sign", "-f", f"{key}.pub", "-n", "git", stdin=MESSAGE)
    theirs = keygen("-Y", "sign", "-f", f"{key}.pub", "-n", "git", stdin=MESSAGE)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout  # Ed25519: the same bytes
    # -U: only the agent may sign, and there is none
    agentless = keytool("sign", "-U", "-f", f"{key}.pub", "-n", "git", stdin=MESSAGE)
    assert keygen("-Y", "sign", "-U", "-f", f"{key}.pub", "-n", "git").returncode != 0
    assert agentless.returncode != 0 and len(agentless.stderr.splitlines()) == 1


def test_signing_through_the_agent_with_the_public_key(tmp_path: Path) -> None:
    key = make_key(tmp_path, "rsa", "3072")
    with openssh_agent(tmp_path / "agent") as agent:
        env = base_env(SSH_AUTH_SOCK=str(agent.sock))
        assert subprocess.run([require("ssh-add"), str(key)], env=env, capture_output=True,
                              timeout=60).returncode == 0  # fmt: skip
        os.unlink(key)  # only the agent can sign now
        signed = keytool("sign", "-f", f"{key}.pub", "-n", "git", stdin=MESSAGE, env=env)
    assert signed.returncode == 0, signed.stderr
    signature = tmp_path / "sig"
    signature.write_bytes(signed.stdout)
    signers = allowed(tmp_path, key)
    verdict = keygen("-Y", "verify", "-f", signers, "-I", "dev@example.com", "-n", "git",
                     "-s", signature, stdin=MESSAGE)  # fmt: skip
    assert verdict.returncode == 0, verdict.stderr
    # without an agent: one line, no signature
    alone = keytool("sign", "-f", f"{key}.pub", "-n", "git", stdin=MESSAGE)
    assert alone.returncode != 0 and alone.stdout == b""
    assert len(alone.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("verify", "-n", "git", "-s", "garbage.sig"),
        ("verify", "-n", "git", "-s", "missing.sig"),
        ("verify", "-s", "good.sig"),
        ("sign", "-f", "id", "message"),
        ("sign", "-n", "git", "-f", "missing", "message"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    key = make_key(tmp_path, "ed25519", "256")
    os.rename(key, tmp_path / "id")
    (tmp_path / "garbage.sig").write_text("-----BEGIN SSH SIGNATURE-----\nAAAA\n"
                                          "-----END SSH SIGNATURE-----\n")  # fmt: skip
    (tmp_path / "message").write_bytes(MESSAGE)
    (tmp_path / "message.sig").write_text("kept\n")
    (tmp_path / "good.sig").write_bytes(
        keygen("-Y", "sign", "-f", tmp_path / "id", "-n", "git", stdin=MESSAGE).stdout
    )
    done = keytool(*args, stdin=MESSAGE, cwd=tmp_path)
    assert done.returncode != 0
    lines = done.stderr.decode().splitlines()
    assert len([line for line in lines if line.startswith("keytool:")]) == 1, lines
    assert b"Traceback" not in done.stderr
    assert (tmp_path / "message.sig").read_text() == "kept\n"


def test_git_signs_and_verifies_commits_through_keytool(tmp_path: Path) -> None:
    """git's SSH signing with keytool as its gpg.ssh.program (the README's), for
    signing and for checking: git commit -S, then git verify-commit."""
    git = require("git")
    key = make_key(tmp_path, "ed25519", "256")
    signers = allowed(tmp_path, key)
    log = tmp_path / "calls"
    program = tmp_path / "gpg-ssh-program"
    k = " ".join(KEYTOOL)
    program.write_text(
        "#!/bin/sh\n"
        f'echo "$1 $2" >> {log}\n'
        'case "$1 $2" in\n'
        f'"-Y sign") shift 2; exec {k} sign "$@" ;;\n'
        f'"-Y verify"|"-Y check-novalidate") shift 2; exec {k} verify "$@" ;;\n'
        f'"-Y find-principals") shift 2; exec {k} verify --find-principals "$@" ;;\n'
        "esac\nexit 99\n"  # anything else: not keytool's, so the test sees it fail
    )
    program.chmod(0o755)
    repo = tmp_path / "repo"
    env = base_env(GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")

    def git_run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([git, "-C", str(repo), *args], capture_output=True, env=env,
                              timeout=60)  # fmt: skip

    subprocess.run([git, "init", "-q", str(repo)], check=True, env=env, timeout=60)
    for name, value in (
        ("user.email", "dev@example.com"), ("user.name", "dev"), ("gpg.format", "ssh"),
        ("user.signingkey", str(key)), ("gpg.ssh.program", str(program)),
        ("gpg.ssh.allowedSignersFile", str(signers)),
    ):  # fmt: skip
        assert git_run("config", name, value).returncode == 0
    (repo / "file").write_text("content\n")
    assert git_run("add", "file").returncode == 0
    committed = git_run("commit", "-q", "-S", "-m", "signed by keytool")
    assert committed.returncode == 0, committed.stderr
    verified = git_run("verify-commit", "HEAD")
    assert verified.returncode == 0, verified.stderr
    assert b'Good "git" signature for dev@example.com' in verified.stderr
    assert log.read_text().split("\n")[:3] == ["-Y sign", "-Y find-principals", "-Y verify"]
    # ssh-keygen agrees with what keytool said
    reference = subprocess.run(
        [git, "-C", str(repo), "-c", f"gpg.ssh.program={require('ssh-keygen')}",
         "verify-commit", "HEAD"], capture_output=True, env=env, timeout=60,
    )  # fmt: skip
    assert reference.returncode == 0, reference.stderr
    # a key the allowed_signers file does not name: git refuses the commit
    allowed(tmp_path, make_key(tmp_path, "ecdsa", "256"))
    refused = git_run("verify-commit", "HEAD")
    assert refused.returncode != 0 and b"No principal matched" in refused.stderr

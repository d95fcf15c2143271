"""known_hosts files that cannot be read, side by side with ssh against sshd: one
without read permission (for a root without DAC override, as setpriv makes it), a
path through a regular file (UpdateHostKeys), /dev/zero, a FIFO and a file too large.

As ssh: refusing an unknown host, the file that could not be read is named, and why,
before the verdict; accept-new and no go on (and fail to add to it, as ssh does); an
UpdateHostKeys whose file cannot be read says so and changes nothing. A known_hosts
that is not a regular file is not read: where ssh reads /dev/zero until its memory
runs out, and waits for a FIFO's writer for ever, keytool goes on without it."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from keytool.knownhosts import MAX_FILE_SIZE
from tests.interop.clienthelp import KEYTOOL, base_env, server_for
from tests.peers import Sshd, require

CLIENTS = ("ssh", "keytool")
FAILED = "Host key verification failed."
#: a root that file permissions bind, as any other user
_CAPS = "-dac_override,-dac_read_search,-fowner"
#: address space for the clients reading /dev/zero: ssh's line reader gives up there,
#: and keytool without its bound would run out of memory
_MEMORY = 600 * 1024 * 1024


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY, _MEMORY))


def run(
    client: str, sshd: Sshd, key: Path, *options: str, prefix: tuple[str, ...] = (),
    bounded: bool = False, timeout: float = 30,
) -> tuple[int, str, str]:  # fmt: skip
    """The client's status, stdout and stderr for ``echo hi`` at the server, with -o
    ``options`` (the known_hosts files among them; a flag as it is) after the usual ones."""
    args = ["-F", "none", "-p", str(sshd.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", *[o if o[0] == "-" else f"-o{o}" for o in options],
            "root@127.0.0.1", "echo hi"]  # fmt: skip
    program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
    done = subprocess.run(
        [*prefix, *program, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
        env=base_env(), timeout=timeout, preexec_fn=_bounded if bounded else None,
    )  # fmt: skip
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout, done.stderr


def without_dac(tmp_path: Path) -> tuple[str, ...]:
    """The setpriv prefix that takes DAC override from root; skips when it cannot
    (no setpriv, or a file without read permission can still be read)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv is not installed")
    prefix = (setpriv, f"--bounding-set={_CAPS}", f"--inh-caps={_CAPS}")
    probe = tmp_path / "probe"
    probe.write_text("x")
    probe.chmod(0)
    done = subprocess.run([*prefix, "cat", str(probe)], capture_output=True, check=False)
    if done.returncode == 0:
        pytest.skip("a file without read permission is read all the same here")
    return prefix


def test_unreadable_known_hosts_is_named_before_the_refusal(tmp_path: Path) -> None:
    sshd, key, known = server_for(tmp_path)
    prefix = without_dac(tmp_path)
    known.chmod(0)
    files = (f"UserKnownHostsFile={known}", "GlobalKnownHostsFile=/dev/null")
    with sshd:
        seen = {c: run(c, sshd, key, *files, prefix=prefix) for c in CLIENTS}
        for client in CLIENTS:
            status, out, err = seen[client]
            lines = err.splitlines()
            assert (status, out) == (255, ""), (client, err)
            assert str(known) in lines[0] and lines[0].endswith(": Permission denied"), client
            assert lines[-1] == FAILED, client
        # between them, keytool's verdict in its own words (ssh's BatchMode says none)
        assert len(seen["ssh"][2].splitlines()) == 2
        assert len(seen["keytool"][2].splitlines()) == 3
        # no hint to trust the key anew: the file not read may know another one
        assert "accept-new" not in seen["keytool"][2]
        # StrictHostKeyChecking=yes: keytool names the file as well (ssh does not)
        status, _, err = run(
            "keytool", sshd, key, *files, "StrictHostKeyChecking=yes", prefix=prefix
        )
        assert status == 255 and err.startswith(
            f"keytool: cannot read {known}: Permission denied\n"
        )
        # accept-new and no: as ssh, on with the files read; the key cannot be added
        for setting in ("accept-new", "no"):
            more = (*files, f"StrictHostKeyChecking={setting}")
            seen = {c: run(c, sshd, key, *more, prefix=prefix) for c in CLIENTS}
            said = f"Failed to add the host to the list of known hosts ({known}).\n"
            assert seen["keytool"] == seen["ssh"] == (0, "hi\n", said), setting


def test_update_host_keys_with_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    """A second UserKnownHostsFile through a regular file (ENOTDIR): named, as ssh
    names it, and known_hosts is left as it is (the server has two more keys)."""
    sshd, key, known = server_for(tmp_path)
    beside = tmp_path / "regular"
    beside.write_text("")
    other = beside / "known_hosts"
    kept = known.read_text()
    options = (f"UserKnownHostsFile={known} {other}", "GlobalKnownHostsFile=/dev/null",
               "UpdateHostKeys=yes")  # fmt: skip
    with sshd:
        seen = {c: run(c, sshd, key, *options) for c in CLIENTS}
    for client in CLIENTS:
        status, out, err = seen[client]
        assert (status, out) == (0, "hi\n"), client
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].endswith(f"{other}: Not a directory"), (client, err)
        assert known.read_text() == kept, client


@pytest.mark.parametrize("kind", ["/dev/zero", "a link to /dev/zero"])
def test_dev_zero_as_known_hosts_is_not_read(tmp_path: Path, kind: str) -> None:
    """ssh reads /dev/zero until its memory runs out, then goes on without it (here,
    with its address space bounded); keytool does not read it at all."""
    sshd, key, known = server_for(tmp_path)
    zero = Path("/dev/zero")
    if kind != "/dev/zero":
        zero = tmp_path / "zero"
        zero.symlink_to("/dev/zero")
    options = (f"UserKnownHostsFile={known}", f"GlobalKnownHostsFile={zero}")
    with sshd:
        seen = {c: run(c, sshd, key, *options, bounded=True) for c in CLIENTS}
        verbose = run("keytool", sshd, key, *options, "-v", bounded=True)
    assert seen["keytool"] == seen["ssh"] == (0, "hi\n", "")
    assert f"cannot read {zero}: not a regular file" in verbose[2]


def test_a_fifo_as_known_hosts_is_never_waited_for(tmp_path: Path) -> None:
    """ssh waits for a writer for ever; keytool goes on without the FIFO, or names it
    when it refuses an unknown host."""
    sshd, key, known = server_for(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with sshd:
        as_global = run("keytool", sshd, key, f"UserKnownHostsFile={known}",
                        f"GlobalKnownHostsFile={fifo}", timeout=20)  # fmt: skip
        as_user = run("keytool", sshd, key, f"UserKnownHostsFile={fifo}",
                      "GlobalKnownHostsFile=/dev/null", timeout=20)  # fmt: skip
    assert as_global == (0, "hi\n", "")
    status, out, err = as_user
    assert (status, out) == (255, "")
    assert err.splitlines()[0] == f"keytool: cannot read {fifo}: not a regular file"
    assert err.splitlines()[-1] == FAILED


def test_a_known_hosts_over_the_bound_is_not_used(tmp_path: Path) -> None:
    """Over 256 MiB (the bound keytool's known-hosts command reads up to as well): not
    read; refusing an unknown host, keytool says so."""
    assert MAX_FILE_SIZE == 256 * 1024 * 1024
    sshd, key, known = server_for(tmp_path)
    large = tmp_path / "large"
    with large.open("wb") as stream:  # sparse: no disk taken
        stream.write(known.read_bytes())
        stream.truncate(MAX_FILE_SIZE + 1)
    with sshd:
        status, out, err = run("keytool", sshd, key, f"UserKnownHostsFile={large}",
                               "GlobalKnownHostsFile=/dev/null", bounded=True)  # fmt: skip
    assert (status, out) == (255, "")
    assert err.splitlines()[0] == f"keytool: cannot read {large}: larger than 256 MiB, not used"

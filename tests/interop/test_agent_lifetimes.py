"""Key lifetimes counted as ssh-agent counts them: on CLOCK_BOOTTIME, which goes on while
the machine is suspended. A test cannot suspend the machine, so both agents run with a
small preloaded library that moves CLOCK_BOOTTIME (and nothing else) two hours ahead
once a marker file exists: what a night's suspend does to the two clocks. The real
ssh-agent runs from a copy of its binary (the installed one may be setgid, and the
loader ignores LD_PRELOAD for those)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.interop.agenthelp import RunningAgent, keytool_agent, openssh_agent
from tests.peers import missing, require, run

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	const char *mark;
	int r;

	if (real == NULL)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	r = real(id, ts);
	mark = getenv("KT_SUSPEND_MARK");
	if (r == 0 && id == CLOCK_BOOTTIME && mark != NULL && access(mark, F_OK) == 0)
		ts->tv_sec += 7200;
	return r;
}
"""


@pytest.fixture
def suspend(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(the preload library, the marker file that "suspends" for two hours)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        missing("no C compiler to build the clock shim")
        raise AssertionError("unreachable")
    source = tmp_path / "shim.c"
    source.write_text(SHIM)
    library = tmp_path / "shim.so"
    built = run([gcc, "-shared", "-fPIC", "-o", library, source, "-ldl"])
    assert built.returncode == 0, built.stderr
    yield library, tmp_path / "suspended"


@contextmanager
def agent_of(which: str, folder: Path, env: dict[str, str]) -> Iterator[RunningAgent]:
    """keytool's agent, or a copy of the real ssh-agent (not setgid: the preload
    applies), in the foreground with ``env``."""
    if which == "keytool":
        with keytool_agent(folder, env=env) as agent:
            yield agent
        return
    folder.mkdir(parents=True, exist_ok=True)
    binary = folder / "ssh-agent"
    shutil.copy(require("ssh-agent"), binary)
    with openssh_agent(folder, env=env, program=binary) as agent:
        yield agent


def key(folder: Path, kind: str) -> Path:
    path = folder / kind
    made = run([require("ssh-keygen"), "-q", "-t", kind, "-N", "", "-C", f"{kind}-c", "-f", path])
    made.check_returncode()
    return path


def test_a_suspend_ends_a_lifetime_as_in_ssh_agent(
    tmp_path: Path, suspend: tuple[Path, Path]
) -> None:
    """ssh-add -t 1h, then two hours of suspend: the key is neither listed nor used at
    the next request, in both agents (no timer has run: the monotonic clock stood)."""
    library, marker = suspend
    ed = key(tmp_path, "ed25519")
    seen = {}
    for which in ("ssh-agent", "keytool"):
        marker.unlink(missing_ok=True)
        env = {**os.environ, "LD_PRELOAD": str(library), "KT_SUSPEND_MARK": str(marker)}
        with agent_of(which, tmp_path / which, env) as agent:
            client = agent.env()  # ssh-add itself runs without the shim
            added = run([require("ssh-add"), "-q", "-t", "1h", ed], env=client)
            assert added.returncode == 0, (which, added.stderr)
            before = run([require("ssh-add"), "-l"], env=client)
            assert before.returncode == 0 and "ed25519-c" in before.stdout, which
            marker.touch()
            listed = run([require("ssh-add"), "-l"], env=client)
            tested = run([require("ssh-add"), "-T", f"{ed}.pub"], env=client)
            # back from the "suspend": the key stays gone
            marker.unlink()
            again = run([require("ssh-add"), "-l"], env=client)
        seen[which] = [
            (r.returncode, r.stdout, r.stderr.replace(str(ed), "KEY"))
            for r in (listed, tested, again)
        ]
    assert seen["keytool"] == seen["ssh-agent"]
    assert seen["ssh-agent"][0] == (1, "The agent has no identities.\n", "")
    assert seen["ssh-agent"][1][0] == 1


#: ssh-add -t of the short lifetime: long enough for an ssh-add -l right after the add
#: to come first on a loaded machine
LIFETIME = 3


@pytest.mark.parametrize("which", ["ssh-agent", "keytool"])
def test_a_short_lifetime_ends_in_both(tmp_path: Path, which: str) -> None:
    """The lifetime as it runs out without any suspend: ssh-add -l lists the key right
    after the add, then shows it gone, not before the lifetime is over. ssh-agent counts
    whole seconds of its clock (a key added at 10.9 s with -t 3 ends at 13 s), so its
    keys may end up to a second early; keytool's end at the lifetime."""
    ed = key(tmp_path, "ed25519")
    runner = keytool_agent if which == "keytool" else openssh_agent
    with runner(tmp_path / which) as agent:
        start = time.monotonic()  # before the add: its lifetime ends after start + LIFETIME
        added = run([require("ssh-add"), "-q", "-t", str(LIFETIME), ed], env=agent.env())
        added.check_returncode()
        first = run([require("ssh-add"), "-l"], env=agent.env())
        listed_at = time.monotonic() - start
        assert first.returncode == 0 and "ed25519-c" in first.stdout, (listed_at, first)
        deadline = start + LIFETIME + 30
        while True:
            listed = run([require("ssh-add"), "-l"], env=agent.env())
            gone_at = time.monotonic() - start
            if listed.returncode != 0 or time.monotonic() > deadline:
                break
            assert "ed25519-c" in listed.stdout, listed
            time.sleep(0.1)
    assert (listed.returncode, listed.stdout) == (1, "The agent has no identities.\n")
    # seen gone only once the lifetime was over (give or take ssh-agent's rounding)
    floor = LIFETIME - 1 if which == "ssh-agent" else LIFETIME
    assert gone_at >= floor, gone_at

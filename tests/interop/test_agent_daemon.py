"""keytool agent as a process: shell lines for sh, csh and fish (--fish), detaching, -k,
command mode, the socket's modes and cleanup, refusing to bind over a live agent."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.interop.agenthelp import (
    KEYTOOL,
    agent_env,
    keygen_fingerprints,
    keytool_agent,
    make_keys,
    wait_for_socket,
)
from tests.peers import missing, require, run

COMMAND = " ".join(KEYTOOL)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("daemonkeys"))


def gone(pid: int, limit: float = 15.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie of ours would still answer kill(0): reap it if it is our child
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    return False


def shell_env(tmp_path: Path, shell: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
    env["SHELL"] = shell
    env["TMPDIR"] = str(tmp_path)
    return env


def test_sh_eval_detaches_and_k_kills(
    tmp_path: Path, keys: dict[str, Path], started: list[int]
) -> None:
    script = (
        f'eval "$({COMMAND} agent)" >/dev/null; '
        f'ssh-add -q {keys["ed25519"]}; echo "$SSH_AUTH_SOCK $SSH_AGENT_PID"'
    )
    result = subprocess.run(
        ["/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=shell_env(tmp_path, "/bin/bash"),
    )
    assert result.returncode == 0, result.stderr
    sock, pid_text = result.stdout.split()
    pid = int(pid_text)
    started.append(pid)
    # the shell that started it is gone; the agent lives on, detached
    assert os.getsid(pid) == pid
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
    folder = Path(sock).parent
    assert folder.parent == tmp_path and folder.name.startswith("ssh-")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(sock).stat().st_mode) == 0o600
    listed = run([require("ssh-add"), "-l"], env=agent_env(sock))
    assert listed.stdout == keygen_fingerprints([keys["ed25519"]])
    killed = subprocess.run(
        [*KEYTOOL, "agent", "-k"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(shell_env(tmp_path, "/bin/sh"), SSH_AGENT_PID=str(pid)),
    )
    assert killed.returncode == 0, killed.stderr
    assert killed.stdout == (
        f"unset SSH_AUTH_SOCK;\nunset SSH_AGENT_PID;\necho Agent pid {pid} killed;\n"
    )
    assert gone(pid)
    assert not Path(sock).exists() and not folder.exists()


def test_csh_lines_work_in_tcsh(tmp_path: Path, keys: dict[str, Path], started: list[int]) -> None:
    tcsh = shutil.which("tcsh") or shutil.which("csh")
    if tcsh is None:
        missing("no csh installed")
        return
    env = shell_env(tmp_path, tcsh)
    printed = subprocess.run(
        [*KEYTOOL, "agent"], capture_output=True, text=True, timeout=60, env=env
    )
    assert printed.returncode == 0
    lines = printed.stdout.splitlines()
    assert lines[0].startswith("setenv SSH_AUTH_SOCK ") and lines[1].startswith(
        "setenv SSH_AGENT_PID"
    )
    started.append(int(lines[1].split()[2].rstrip(";")))
    script = (
        f"eval `{COMMAND} agent -c`; ssh-add -q {keys['ecdsa']}; ssh-add -l; echo $SSH_AGENT_PID"
    )
    result = subprocess.run(
        [tcsh, "-f", "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert "\n".join(out[:-1]) + "\n" == "Agent pid " + out[-1] + "\n" + keygen_fingerprints(
        [keys["ecdsa"]]
    )
    started.append(int(out[-1]))
    for pid in started:
        os.kill(pid, signal.SIGTERM)
        assert gone(pid)


def test_fish_lines_work_in_fish(tmp_path: Path, keys: dict[str, Path], started: list[int]) -> None:
    fish = shutil.which("fish")
    if fish is None:
        missing("fish is not installed")
        return
    env = shell_env(tmp_path, fish)
    script = f"{COMMAND} agent --fish | source; ssh-add -q {keys['rsa']}; ssh-add -l; "
    script += "echo $SSH_AGENT_PID"
    result = subprocess.run(
        [fish, "--no-config", "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    pid = int(out[-1])
    started.append(pid)
    assert out[0] == f"Agent pid {pid}"
    assert "\n".join(out[1:-1]) + "\n" == keygen_fingerprints([keys["rsa"]])
    killed = subprocess.run(
        [*KEYTOOL, "agent", "-k", "--fish"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(env, SSH_AGENT_PID=str(pid)),
    )
    assert killed.stdout.startswith("set -e SSH_AUTH_SOCK;")
    assert gone(pid)


def test_command_mode(tmp_path: Path, keys: dict[str, Path]) -> None:
    script = (
        f"ssh-add -q {keys['ed25519']} && ssh-add -l && "
        'echo "$SSH_AGENT_PID $SSH_AUTH_SOCK" && exit 7'
    )
    result = subprocess.run(
        [*KEYTOOL, "agent", "--", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=shell_env(tmp_path, "/bin/sh"),
    )
    assert result.returncode == 7, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] + "\n" == keygen_fingerprints([keys["ed25519"]])
    pid_text, sock = lines[1].split()
    # the agent stops with the command, and cleans up after itself
    assert gone(int(pid_text))
    assert not Path(sock).exists() and not Path(sock).parent.exists()


def test_command_mode_without_a_program(tmp_path: Path) -> None:
    result = subprocess.run(
        [*KEYTOOL, "agent", "--", "no-such-program-here"],
        capture_output=True,
        text=True,
        timeout=60,
        env=shell_env(tmp_path, "/bin/sh"),
    )
    assert result.returncode == 1
    assert "cannot run no-such-program-here" in result.stderr
    deadline = time.monotonic() + 15
    while any(tmp_path.glob("ssh-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(tmp_path.glob("ssh-*"))


def test_refuses_to_bind_over_a_live_agent(tmp_path: Path, keys: dict[str, Path]) -> None:
    with keytool_agent(tmp_path / "a") as first:
        run([require("ssh-add"), keys["ed25519"]], env=first.env()).check_returncode()
        second = subprocess.run(
            [*KEYTOOL, "agent", "-D", "-a", str(first.sock)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "already listening" in second.stderr
        listed = run([require("ssh-add"), "-l"], env=first.env())
        assert listed.stdout == keygen_fingerprints([keys["ed25519"]])


def test_replaces_a_stale_socket_and_cleans_up_on_sigint(tmp_path: Path) -> None:
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(stale))  # bound, never listening: nobody answers there
    proc = subprocess.Popen(
        [*KEYTOOL, "agent", "-D", "-a", str(stale)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_socket(stale, proc)
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        assert first == f"SSH_AUTH_SOCK={stale}; export SSH_AUTH_SOCK;\n"
        assert run([require("ssh-add"), "-l"], env=agent_env(stale)).returncode == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 2  # ssh-agent's status after a signal
        assert not stale.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_k_without_an_agent(tmp_path: Path) -> None:
    env = shell_env(tmp_path, "/bin/sh")
    result = subprocess.run(
        [*KEYTOOL, "agent", "-k"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 1
    assert result.stderr == "keytool: SSH_AGENT_PID is not set, cannot kill the agent\n"


@pytest.mark.parametrize("pid", ["99999999999999999999", "4194305", "-5", "0x10", ""])
def test_k_with_a_bad_pid_is_one_line(tmp_path: Path, pid: str) -> None:
    env = dict(shell_env(tmp_path, "/bin/sh"), SSH_AGENT_PID=pid)
    result = subprocess.run(
        [*KEYTOOL, "agent", "-k"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("keytool: SSH_AGENT_PID")
    assert result.stdout == ""  # nothing for the shell to eval


def test_agent_is_not_dumpable(tmp_path: Path) -> None:
    """PR_SET_DUMPABLE 0: the kernel then gives the process's /proc files to root, so
    other processes of the same user cannot read its memory or environment."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        missing("needs root and setpriv to run the agent as another user")
        return
    for parent in [tmp_path, *tmp_path.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o001)
    folder = tmp_path / "open"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    sock = folder / "agent.sock"
    as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    agent = subprocess.Popen(
        [*as_nobody, *KEYTOOL, "agent", "-D", "-a", str(sock)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    plain = subprocess.Popen([*as_nobody, "sleep", "30"])
    try:
        wait_for_socket(sock, agent)
        assert os.stat(f"/proc/{plain.pid}/environ").st_uid == 65534  # an ordinary process
        assert os.stat(f"/proc/{agent.pid}").st_uid == 65534  # the agent does run as nobody
        # but is not dumpable, from before it serves (its socket is there a moment
        # before: no key can be in it yet)
        deadline = time.monotonic() + 10
        while os.stat(f"/proc/{agent.pid}/environ").st_uid != 0:
            assert time.monotonic() < deadline, "the agent stayed dumpable"
            time.sleep(0.01)
    finally:
        for proc in (agent, plain):
            proc.terminate()
            proc.wait(10)


def test_empty_bind_path_is_refused() -> None:
    from tests.cli import assert_clean_error, keytool

    result = keytool("agent", "-a", "", "-s")
    assert "-a" in assert_clean_error(result)
    assert "SSH_AUTH_SOCK" not in result.stdout  # no agent was started


@pytest.mark.parametrize("tool", ["ssh-agent", "keytool"])
def test_signals_as_ssh_agent_takes_them(
    tmp_path: Path, keys: dict[str, Path], started: list[int], tool: str
) -> None:
    """Side by side with ssh-agent: ^C does not end a detached agent; SIGTERM ends one
    in the foreground with status 2, at once even while a confirmation is being
    asked (keytool's waited for the askpass program, keys held, up to its end)."""
    program = [require("ssh-agent")] if tool == "ssh-agent" else [*KEYTOOL, "agent"]
    env = shell_env(tmp_path, "/bin/sh")
    out = subprocess.run([*program, "-s"], capture_output=True, text=True, env=env,
                         timeout=60).stdout  # fmt: skip
    sock = out.split("SSH_AUTH_SOCK=")[1].split(";")[0]
    pid = int(out.split("SSH_AGENT_PID=")[1].split(";")[0])
    started.append(pid)
    # ssh-agent's parent prints the address and exits as it forks; its child sets ^C
    # aside only when it starts serving, so the ^C waits for its first answer
    deadline = time.monotonic() + 15
    while run([require("ssh-add"), "-l"], env=agent_env(sock)).returncode != 1:
        assert time.monotonic() < deadline, "the agent never answered"
        time.sleep(0.05)
    os.kill(pid, signal.SIGINT)
    time.sleep(0.5)
    assert run([require("ssh-add"), "-l"], env=agent_env(sock)).returncode == 1  # still there
    os.kill(pid, signal.SIGTERM)
    assert gone(pid)

    askpass = tmp_path / "slow-askpass"
    marker = tmp_path / "asked"
    askpass.write_text(f"#!/bin/sh\necho $$ > {marker}\nexec sleep 60\n")
    askpass.chmod(0o755)
    sock = str(tmp_path / "fg.sock")
    proc = subprocess.Popen([*program, "-D", "-a", sock], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(env, SSH_ASKPASS=str(askpass),
                            DISPLAY=":0", SSH_ASKPASS_REQUIRE="force"))  # fmt: skip
    asking = None
    try:
        wait_for_socket(Path(sock), proc)
        run([require("ssh-add"), "-q", "-c", keys["ed25519"]], env=agent_env(sock))
        asking = subprocess.Popen([require("ssh-add"), "-T", f"{keys['ed25519']}.pub"],
                                  env=agent_env(sock), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 30
        while not marker.exists() or not marker.read_text().strip():
            assert time.monotonic() < deadline, "the confirmation was never asked"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 2
        assert not Path(sock).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if marker.exists() and marker.read_text().strip():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(marker.read_text()), signal.SIGKILL)
        if asking is not None:
            asking.kill()
            asking.wait()


@pytest.mark.parametrize("flag", ["-s", "-c", "-d", "-D", "-k"])
def test_a_command_with_a_mode_flag_is_refused(tmp_path: Path, flag: str) -> None:
    """ssh-agent FLAG true is a usage error for -s, -c, -d, -D and -k (keytool ran it)."""
    env = shell_env(tmp_path, "/bin/sh")
    for program in ([require("ssh-agent")], [*KEYTOOL, "agent"]):
        done = subprocess.run([*program, flag, "touch", str(tmp_path / "ran")], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 1, (program, done.stderr)
        assert not (tmp_path / "ran").exists()

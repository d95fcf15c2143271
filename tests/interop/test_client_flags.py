"""ssh's short flags on ``keytool exec`` (-J -c -m -g -q -T -Q): the configuration they
make is the one ``ssh -G`` shows for the same flags, and each does what ssh's does
against sshd."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from keytool import sshconfig
from keytool.cli.exec_flags import flag_options
from tests.interop.clienthelp import KEYTOOL, base_env, both_clients, keepalive_timers, ssh_words
from tests.interop.test_client_jump import forwarded_to, key, servers, write_config
from tests.interop.test_sshconfig_openssh import expected_from_ssh, ours_as_ssh
from tests.peers import OPENSSH10, Sshd, free_port, require, run, wait_logged

__all__ = ["key", "servers"]  # fixtures of the ProxyJump tests, used here too

FLAGS = {
    "-J": ("ops@bastion:2222,second", "jump"),
    "-c": ("aes128-ctr,aes256-gcm@openssh.com", "cipher"),
    "-m": ("hmac-sha2-512", "mac"),
}


@pytest.mark.parametrize(
    "given",
    [("-J",), ("-c", "-m"), ("-g",), ("-q",), ("-J", "-c", "-m", "-g", "-q")],
)
def test_flags_make_the_config_ssh_G_shows(tmp_path: Path, given: tuple[str, ...]) -> None:
    args: list[str] = []
    values: dict[str, str | None] = {"jump": None, "cipher": None, "mac": None}
    for flag in given:
        if flag in FLAGS:
            value, name = FLAGS[flag]
            args += [flag, value]
            values[name] = value
        else:
            args.append(flag)
    options = flag_options(
        values["jump"],
        values["cipher"],
        values["mac"],
        gateway="-g" in given,
        quiet="-q" in given,
    )
    result = run([require("ssh"), "-G", "-F", "none", *args, "target.example"])
    assert result.returncode == 0, result.stderr
    seen: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        keyword, _, value = line.partition(" ")
        seen.setdefault(keyword, []).append(value)
    resolved = sshconfig.load("target.example", config_file=Path("none"), overrides=options)
    assert ours_as_ssh(resolved, seen) == expected_from_ssh(seen)
    for field, keyword in (("ciphers", "ciphers"), ("macs", "macs")):
        spec = getattr(resolved, field)
        shown = seen[keyword][0]
        assert spec is None or spec == shown, field


def test_query_lists_what_ssh_knows(tmp_path: Path) -> None:
    """Every name keytool lists for a query is one ssh lists for it too."""
    helped = subprocess.run([*KEYTOOL, "exec", "-Q", "help"], capture_output=True, text=True)
    queries = helped.stdout.split()
    # ssh's, but for GSSAPI key exchange (a Debian patch), which keytool has not
    assert set(queries) == set(run([require("ssh"), "-Q", "help"]).stdout.split()) - {"kex-gss"}
    # OpenSSH 10's ssh too, when unpacked (ML-KEM came with 9.9)
    newer = OPENSSH10 / "usr/bin/ssh"
    clients = [require("ssh"), *([str(newer)] if newer.exists() else [])]
    for what in [*queries, "HostKeyAlgorithms", "kexalgorithms", "Ciphers", "MACs"]:
        ours = subprocess.run([*KEYTOOL, "exec", "-Q", what], capture_output=True, text=True)
        theirs = {name for ssh in clients for name in run([ssh, "-Q", what]).stdout.split()}
        if what == "kex" and not newer.exists():
            theirs.add("mlkem768x25519-sha256")
        assert ours.returncode == 0 and ours.stdout.split(), what
        assert set(ours.stdout.split()) <= theirs, what
    bad = subprocess.run([*KEYTOOL, "exec", "-Q", "nothing"], capture_output=True, text=True)
    assert (bad.returncode, bad.stderr) == (255, 'keytool: Unsupported query "nothing"\n')


def test_cipher_mac_and_quiet_against_sshd(tmp_path: Path, key: Path, servers: list[Sshd]) -> None:
    target = servers[0]
    known = tmp_path / "known_hosts_new"
    args = [*KEYTOOL, "exec", "-F", "none", "-p", str(target.port), "-i", str(key),
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=accept-new", "-T"]  # fmt: skip
    loud = subprocess.run(
        [*args, "-c", "aes256-ctr", "-m", "hmac-sha2-512", "-v", "root@127.0.0.1", "--", "true"],
        capture_output=True, text=True, env=base_env(), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert loud.returncode == 0, loud.stderr
    assert "cipher aes256-ctr / aes256-ctr, MAC hmac-sha2-512 / hmac-sha2-512" in loud.stderr
    known.unlink()
    quiet = subprocess.run(
        [*args, "-q", "root@127.0.0.1", "--", "true"],
        capture_output=True, text=True, env=base_env(), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert (quiet.returncode, quiet.stderr) == (0, "")  # no "Permanently added" notice
    assert known.read_text().count("\n") == 1


def test_jump_flag_reaches_the_target(tmp_path: Path, key: Path, servers: list[Sshd]) -> None:
    config = write_config(tmp_path, key, servers, "none")
    done = subprocess.run(
        [*KEYTOOL, "exec", "-F", str(config), "-J", "jump1", "target", "--", "echo", "there"],
        capture_output=True, text=True, env=base_env(), stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "there\n"), done.stderr
    assert forwarded_to(servers[1]) == [servers[0].port]


def test_gateway_flag_listens_on_every_address(
    tmp_path: Path, key: Path, servers: list[Sshd]
) -> None:
    target = servers[0]
    known = tmp_path / "known"
    known.write_text(target.known_hosts_line())
    port = free_port()
    proc = subprocess.Popen(
        [*KEYTOOL, "exec", "-F", "none", "-p", str(target.port), "-i", str(key),
         "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", "BatchMode=yes", "-g", "-N", "-L", f"{port}:127.0.0.1:{target.port}",
         "-v", "root@127.0.0.1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env(),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode()
            if "port forwarding: listening on" in line:
                assert line.split("listening on ")[1].startswith(("0.0.0.0 port", ":: port"))
                break
        else:
            raise AssertionError("keytool did not listen")
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_subsystem_flag_as_ssh(tmp_path: Path, key: Path) -> None:
    sshd = Sshd(tmp_path / "sshd", {"Subsystem": "kt-echo /bin/cat"})
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = tmp_path / "known"
    known.write_text(sshd.known_hosts_line())
    flags = ["-F", "none", "-p", str(sshd.port), "-i", str(key), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null", "-s",
             "root@127.0.0.1"]  # fmt: skip
    done = {}
    with sshd:
        for client in ("ssh", "keytool"):
            for name in ("kt-echo", "no-such"):
                args = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
                result = subprocess.run(
                    [*args, *flags, name], input=b"through a subsystem\n", capture_output=True,
                    env=base_env(), timeout=60,
                )  # fmt: skip
                done[client, name] = (result.returncode, result.stdout)
                if name == "no-such":
                    assert b"subsystem request failed on channel 0" in result.stderr
    # only the subsystem runs cat: what went in came back through it
    assert done["keytool", "kt-echo"] == done["ssh", "kt-echo"] == (0, b"through a subsystem\n")
    assert done["keytool", "no-such"] == done["ssh", "no-such"] == (255, b"")


def test_address_family_and_bind_address_as_ssh(tmp_path: Path, key: Path) -> None:
    sshd = Sshd(tmp_path / "sshd", {"LogLevel": "VERBOSE"})  # listens on 127.0.0.1 only
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = tmp_path / "known"
    known.write_text(sshd.known_hosts_line().replace("[127.0.0.1]", "[localhost]"))
    flags = ["-F", "none", "-p", str(sshd.port), "-i", str(key), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={known}",
             "-o", "GlobalKnownHostsFile=/dev/null"]  # fmt: skip
    done = {}
    with sshd:
        for client in ("ssh", "keytool"):
            program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
            for extra in (["-4", "-b", "127.0.0.2"], ["-6"]):
                result = subprocess.run(
                    [*program, *flags, *extra, "root@localhost", "echo", "in"],
                    capture_output=True, text=True, stdin=subprocess.DEVNULL, env=base_env(),
                    timeout=60,
                )  # fmt: skip
                said = result.stderr.removeprefix("ssh: ").removeprefix("keytool: ")
                done[client, extra[0]] = (result.returncode, result.stdout, said)
        log = sshd.log.read_text(errors="replace")
    # -4 from 127.0.0.2: in, as sshd saw it; -6: no IPv6 listener, the same failure
    assert done["keytool", "-4"] == done["ssh", "-4"] == (0, "in\n", "")
    assert log.count("Connection from 127.0.0.2 port") == 2
    assert done["keytool", "-6"] == done["ssh", "-6"]
    assert done["ssh", "-6"][0] == 255


def test_rekey_limit_by_data_and_by_time_as_ssh(tmp_path: Path, key: Path) -> None:
    """RekeyLimit: new keys after so much data, and after so long; sshd's log counts
    the key exchanges of each connection, for ssh and keytool alike."""
    sshd = Sshd(tmp_path / "sshd")
    sshd.authorized_keys.write_text(Path(f"{key}.pub").read_text())
    known = tmp_path / "known"
    known.write_text(sshd.known_hosts_line())
    flags = ["-F", "none", "-p", str(sshd.port), "-i", str(key), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={known}",
             "-o", "GlobalKnownHostsFile=/dev/null"]  # fmt: skip
    cases = {
        "data": ("RekeyLimit=1M", "head -c 5000000 /dev/zero"),
        "time": ("RekeyLimit=default 1", "sleep 3.5; head -c 5000000 /dev/zero"),
    }
    kexes = {}
    with sshd:
        for client in ("ssh", "keytool"):
            program = [*KEYTOOL, "exec"] if client == "keytool" else [require("ssh")]
            for case, (option, command) in cases.items():
                before = sshd.log.read_text(errors="replace")
                result = subprocess.run(
                    [*program, *flags, "-o", option, "root@127.0.0.1", command],
                    capture_output=True, stdin=subprocess.DEVNULL, env=base_env(), timeout=60,
                )  # fmt: skip
                assert result.returncode == 0 and len(result.stdout) == 5000000, result.stderr
                # up to the connection's end, which sshd may log after the client is gone
                ended = "Disconnected from user "
                log = wait_logged(sshd.log, ended, before.count(ended) + 1)[len(before) :]
                kexes[client, case] = log.count("kex: algorithm:")
    # without a limit, one exchange; with these, new keys as the data or the time goes
    # by (sshd logs 3 for ssh's 5 MB, as for keytool's)
    for client in ("ssh", "keytool"):
        assert kexes[client, "data"] >= 3, kexes
        assert kexes[client, "time"] >= 3, kexes


def test_first_port_and_login_win_and_a_bad_port_as_ssh(
    tmp_path: Path, key: Path, servers: list[Sshd]
) -> None:
    target = servers[0]
    known = tmp_path / "known_first"
    known.write_text(target.known_hosts_line())
    common = ["-F", "none", "-i", str(key), "-o", f"UserKnownHostsFile={known}",
              "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]  # fmt: skip
    before = target.log.read_text().count("Accepted publickey for root")
    runs = both_clients(
        *common, "-p", str(target.port), "-p", "1", "-l", "root", "-l", "nobody",
        "127.0.0.1", "id -un",
    )  # fmt: skip
    for result in runs.values():
        assert (result.returncode, result.stdout) == (0, b"root\n"), result.stderr
    assert target.log.read_text().count("Accepted publickey for root") == before + 2
    bad = both_clients(*common, "-p", "0x16", "-p", str(target.port), "127.0.0.1", "true")
    for result in bad.values():
        assert (result.returncode, result.stdout) == (255, b"")
        assert ssh_words(result.stderr) == ["Bad port '0x16'"]


def test_log_file_takes_our_lines_not_the_command_s(
    tmp_path: Path, key: Path, servers: list[Sshd]
) -> None:
    """-E: the notices and errors of the client go to the file (made 0600), the remote
    command's stderr stays on stderr; a file that cannot be opened is ssh's line, 1."""
    target = servers[0]
    outcome = {}
    for tool in ("ssh", "keytool"):
        known = tmp_path / f"known_{tool}"
        log = tmp_path / f"log_{tool}"
        common = ["-F", "none", "-i", str(key), "-o", f"UserKnownHostsFile={known}",
                  "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=accept-new",
                  "-E", str(log), "root@127.0.0.1"]  # fmt: skip
        program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
        ran = subprocess.run(
            [*program, "-p", str(target.port), *common, "echo out; echo err >&2"],
            capture_output=True, env=base_env(), stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        refused = subprocess.run(
            [*program, "-p", "1", *common, "true"],
            capture_output=True, env=base_env(), stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        outcome[tool] = (
            (ran.returncode, ran.stdout, ran.stderr),
            (refused.returncode, refused.stdout, refused.stderr),
            stat.S_IMODE(log.stat().st_mode),
            [line.removeprefix("ssh: ") for line in ssh_words(log.read_bytes())],
        )
    assert outcome["keytool"] == outcome["ssh"]
    ran_seen, refused_seen, mode, lines = outcome["ssh"]
    assert ran_seen == (0, b"out\n", b"err\n") and refused_seen == (255, b"", b"")
    assert mode == 0o600
    assert lines[0].startswith("Warning: Permanently added")
    assert lines[-1] == "connect to host 127.0.0.1 port 1: Connection refused"
    unopenable = both_clients("-E", str(tmp_path / "no" / "log"), "-p", "1", "127.0.0.1", "true")
    for result in unopenable.values():
        assert result.returncode == 1
        assert ssh_words(result.stderr) == [
            f"Couldn't open logfile {tmp_path / 'no' / 'log'}: No such file or directory"
        ]


def _client_flags(target: Sshd, key: Path, folder: Path) -> list[str]:
    """The flags ssh and keytool share to log in to ``target`` with ``key``."""
    known = folder / "known"
    known.write_text(target.known_hosts_line())
    return ["-F", "none", "-p", str(target.port), "-i", str(key),
            "-o", f"UserKnownHostsFile={known}",
            "-o", "GlobalKnownHostsFile=/dev/null"]  # fmt: skip


def test_stdin_null_as_ssh(tmp_path: Path, key: Path, servers: list[Sshd]) -> None:
    """StdinNull yes (ssh_config's -n): the remote command reads nothing of our stdin."""
    target = servers[0]
    common = _client_flags(target, key, tmp_path)
    counted = {}
    for tool in ("ssh", "keytool"):
        program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
        for option in ("StdinNull=yes", "StdinNull=no"):
            done = subprocess.run(
                [*program, *common, "-o", option, "root@127.0.0.1", "wc -c"],
                input=b"twelve bytes", capture_output=True, env=base_env(), timeout=60,
            )  # fmt: skip
            counted[tool, option] = (done.returncode, done.stdout.strip(), done.stderr)
    assert counted["keytool", "StdinNull=yes"] == counted["ssh", "StdinNull=yes"] == (0, b"0", b"")
    assert counted["keytool", "StdinNull=no"] == counted["ssh", "StdinNull=no"] == (0, b"12", b"")


@contextmanager
def _logged_in(args: list[str]) -> Iterator[None]:
    """``args`` (ssh or keytool exec, and their flags) running a command on root@127.0.0.1
    that says "in" and waits: the body runs once it said so (logged in, the session
    set up); the client is killed after."""
    proc = subprocess.Popen(
        [*args, "root@127.0.0.1", "echo in; exec sleep 60"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=base_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"in"
        yield
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_tcp_keep_alive_as_ssh(tmp_path: Path, key: Path, servers: list[Sshd]) -> None:
    """TCPKeepAlive (yes unless said no): SO_KEEPALIVE on the client's connection, so a
    peer that vanished is noticed; the kernel's keepalive timer runs as for ssh's."""
    target = servers[0]
    common = _client_flags(target, key, tmp_path)
    seen = {}
    for tool in ("ssh", "keytool"):
        program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
        for extra in ((), ("-o", "TCPKeepAlive=no")):
            with _logged_in([*program, *common, *extra]):
                seen[tool, extra] = keepalive_timers(target.port)
    assert seen["keytool", ()] == seen["ssh", ()] == [True]
    no = ("-o", "TCPKeepAlive=no")
    assert seen["keytool", no] == seen["ssh", no] == [False]


def test_version_flag_as_ssh() -> None:
    """-V: one line on stderr (the client's version, then OpenSSL's), status 0, and
    nothing else done: not even with a destination given."""
    for args in (("-V",), ("-V", "-p", "1", "127.0.0.1", "true")):
        runs = both_clients(*args)
        for tool, result in runs.items():
            assert (result.returncode, result.stdout) == (0, b""), tool
            [line] = result.stderr.decode().splitlines()
            name, _, openssl = line.partition(", ")
            assert name.startswith("OpenSSH_" if tool == "ssh" else "keytool_")
            assert openssl.startswith("OpenSSL "), line


def test_no_host_authentication_for_localhost_as_ssh(
    tmp_path: Path, key: Path, servers: list[Sshd]
) -> None:
    """NoHostAuthenticationForLocalhost yes: a server on a loopback address logs in
    with no known_hosts line for it, even with StrictHostKeyChecking yes, and nothing
    is written; not with a HostKeyAlias, nor without the option."""
    target = servers[0]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    common = ["-F", "none", "-p", str(target.port), "-i", str(key),
              "-o", f"UserKnownHostsFile={empty}", "-o", "GlobalKnownHostsFile=/dev/null",
              "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]  # fmt: skip
    skip = ("-o", "NoHostAuthenticationForLocalhost=yes")
    for extra, status in (
        (skip, 0),
        ((), 255),
        ((*skip, "-o", "HostKeyAlias=elsewhere"), 255),
    ):
        runs = both_clients(*common, *extra, "root@127.0.0.1", "echo in")
        ours, theirs = runs["keytool"], runs["ssh"]
        assert ours.returncode == theirs.returncode == status, (extra, ours.stderr)
        assert ours.stdout == theirs.stdout == (b"in\n" if status == 0 else b"")
        assert ssh_words(ours.stderr) == ssh_words(theirs.stderr), extra
    assert empty.read_text() == ""


def test_bind_interface_as_ssh(tmp_path: Path, key: Path, servers: list[Sshd]) -> None:
    """-B / BindInterface: the connection comes from an address of that interface (lo:
    127.0.0.1, the only one it has for IPv4); BindAddress wins over it; an interface
    with no such address is ssh's two lines and 255."""
    target = servers[0]
    common = [*_client_flags(target, key, tmp_path), "-o", "BatchMode=yes"]
    for extra, source in ((("-B", "lo"), "127.0.0.1"), (("-B", "lo", "-b", "127.0.0.3"),
                                                         "127.0.0.3")):  # fmt: skip
        before = target.log.read_text()
        runs = both_clients(*common, *extra, "root@127.0.0.1", "echo in")
        log = target.log.read_text()[len(before) :]
        for tool, result in runs.items():
            assert (result.returncode, result.stdout) == (0, b"in\n"), (tool, result.stderr)
        assert log.count(f"Connection from {source} port") == 2, log
    runs = both_clients(*common, "-B", "nosuch0", "root@127.0.0.1", "true")
    ours, theirs = runs["keytool"], runs["ssh"]
    assert ours.returncode == theirs.returncode == 255
    words = {
        tool: [w.removeprefix("ssh: ") for w in ssh_words(r.stderr)] for tool, r in runs.items()
    }
    assert (
        words["keytool"]
        == words["ssh"]
        == [
            "getifaddrs: nosuch0: no suitable addresses",
            f"connect to host 127.0.0.1 port {target.port}: failure",
        ]
    )


@contextmanager
def _loopback_alias(address: str, label: str) -> Iterator[None]:
    """``address`` on lo under its own label (an interface name to getifaddrs, as for
    ``ifconfig lo:1``); skips the test where addresses cannot be added here."""
    ip = shutil.which("ip")
    if ip is None or os.geteuid() != 0:
        pytest.skip("adding an address needs root and ip")
    added = run([ip, "addr", "add", f"{address}/32", "dev", "lo", "label", label])
    if added.returncode != 0:
        pytest.skip(f"cannot add an address to lo here: {added.stderr.strip()}")
    try:
        yield
    finally:
        run([ip, "addr", "del", f"{address}/32", "dev", "lo", "label", label])


def test_bind_interface_picks_that_interfaces_address(
    tmp_path: Path, key: Path, servers: list[Sshd]
) -> None:
    """-B names an interface (here an address of lo's own label): the connection
    comes from that address, for both clients."""
    target = servers[0]
    common = [*_client_flags(target, key, tmp_path), "-o", "BatchMode=yes"]
    with _loopback_alias("127.0.0.77", "lo:kt77"):
        before = target.log.read_text()
        runs = both_clients(*common, "-B", "lo:kt77", "root@127.0.0.1", "echo in")
        log = target.log.read_text()[len(before) :]
    for tool, result in runs.items():
        assert (result.returncode, result.stdout) == (0, b"in\n"), (tool, result.stderr)
    assert log.count("Connection from 127.0.0.77 port") == 2, log


def test_required_rsa_size_as_ssh(tmp_path: Path) -> None:
    """RequiredRSASize: an RSA host key shorter ends it before anything ("Bad server
    host key: Invalid key length"); a shorter RSA identity file is said and skipped;
    at the size or above, both log in."""
    rsa_user = tmp_path / "id_rsa"
    made = run([require("ssh-keygen"), "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f",
                str(rsa_user)])  # fmt: skip
    assert made.returncode == 0, made.stderr
    rsa_host = Sshd(tmp_path / "rsa_host", {}, host_key_types=("rsa",))  # RSA 2048
    ed_host = Sshd(tmp_path / "ed_host", {}, host_key_types=("ed25519",))
    known = tmp_path / "known"
    shown: dict[tuple[str, str], tuple[int, bytes, list[str]]] = {}
    with rsa_host, ed_host:
        known.write_text(rsa_host.known_hosts_line("rsa") + ed_host.known_hosts_line())
        for server in (rsa_host, ed_host):
            server.authorized_keys.write_text(Path(f"{rsa_user}.pub").read_text())
        for name, server, size in (("host", rsa_host, "3072"), ("user", ed_host, "3072"),
                                   ("both", rsa_host, "2048")):  # fmt: skip
            runs = both_clients(
                "-F", "none", "-p", str(server.port), "-i", str(rsa_user), "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "IdentitiesOnly=yes", "-o", f"RequiredRSASize={size}",
                "root@127.0.0.1", "echo in",
            )  # fmt: skip
            for tool, result in runs.items():
                words = [w.removeprefix("ssh: ") for w in ssh_words(result.stderr)]
                shown[name, tool] = (result.returncode, result.stdout, words)
    for name in ("host", "both"):
        assert shown[name, "keytool"] == shown[name, "ssh"], name
    short = f'load pubkey "{rsa_user}": Invalid key length'
    assert shown["host", "ssh"] == (255, b"", [short, "Bad server host key: Invalid key length"])
    assert shown["both", "ssh"] == (0, b"in\n", [])
    # the short key said and not offered: no login (keytool words the refusal its way)
    for tool in ("ssh", "keytool"):
        status, out, words = shown["user", tool]
        assert (status, out) == (255, b"")
        assert words[0] == f'load pubkey "{rsa_user}": Invalid key length'
        assert "ermission denied" in words[-1] and len(words) == 2
    assert "tried: nothing we could offer" in shown["user", "keytool"][2][-1]


def test_required_rsa_size_passes_over_short_agent_keys_as_ssh(tmp_path: Path) -> None:
    """RequiredRSASize: a shorter RSA key held by the agent is not offered (no login
    with it), for ssh as for keytool; at its size, both log in through the agent."""
    from tests.interop.agenthelp import openssh_agent

    rsa_user = tmp_path / "id_rsa"
    made = run([require("ssh-keygen"), "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f",
                str(rsa_user)])  # fmt: skip
    assert made.returncode == 0, made.stderr
    server = Sshd(tmp_path / "sshd", {}, host_key_types=("ed25519",))
    server.authorized_keys.write_text(Path(f"{rsa_user}.pub").read_text())
    known = tmp_path / "known"
    home = tmp_path / "home"
    home.mkdir()
    with server, openssh_agent(tmp_path / "agent") as agent:
        known.write_text(server.known_hosts_line())
        added = run([require("ssh-add"), "-q", str(rsa_user)], env=agent.env())
        assert added.returncode == 0, added.stderr
        outcome = {}
        for size in ("3072", "2048"):
            runs = both_clients(
                "-F", "none", "-p", str(server.port), "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", f"RequiredRSASize={size}", "root@127.0.0.1", "echo in",
                env=agent.env(HOME=str(home)),
            )  # fmt: skip
            for tool, result in runs.items():
                outcome[size, tool] = (result.returncode, result.stdout)
    assert outcome["3072", "keytool"] == outcome["3072", "ssh"] == (255, b"")
    assert outcome["2048", "keytool"] == outcome["2048", "ssh"] == (0, b"in\n")


def _tos(port: int) -> list[str]:
    """The TOS of each established TCP connection to 127.0.0.1:``port``, as ss shows it."""
    shown = run([require("ss"), "-tnH", "--tos", "state", "established",
                 f"( dport = :{port} )"]).stdout  # fmt: skip
    return [field.split(":", 1)[1] for field in shown.split() if field.startswith("tos:")]


@pytest.mark.parametrize(
    ("flags", "wanted"),
    [
        (("-o", "IPQoS=ef cs3", "-T"), "0x60"),  # a command without a terminal: bulk
        (("-o", "IPQoS=ef cs3", "-tt"), "0xb8"),  # with one: interactive
        (("-o", "IPQoS=af11", "-T"), "0x28"),  # one value serves both
        (("-o", "IPQoS=none", "-T"), "0"),  # the socket's own
    ],
)
def test_ip_qos_as_ssh(
    tmp_path: Path, key: Path, servers: list[Sshd], flags: tuple[str, ...], wanted: str
) -> None:
    """IPQoS: the TOS the connection carries once the session runs, as ssh sets it."""
    target = servers[0]
    common = _client_flags(target, key, tmp_path)
    seen = {}
    for tool in ("ssh", "keytool"):
        program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
        with _logged_in([*program, *common, *flags]):
            seen[tool] = _tos(target.port)
    assert seen["keytool"] == seen["ssh"] == [wanted]


@pytest.mark.parametrize(
    "given",
    [
        "-o Port=2222 -p 22",
        "-p 22 -o Port=2222",
        "-o User=x -l y",
        "-l y -o User=x",
        "-o User=x y@target.example",
        "-o Port=2222 ssh://y@target.example:33",
        "-p 1 -p 2",
        "-l y z@target.example",
    ],
)
def test_user_and_port_as_ssh_takes_them(given: str) -> None:
    """-p/-l against -o Port=/-o User=: the first on the command line wins, and the
    destination's user and port count only when none of them set it, as ssh -G shows.
    keytool let -p, -l and the destination win whatever the order."""
    args = given.split()
    if "@" not in args[-1]:
        args.append("target.example")
    shown = {}
    for tool in ("ssh", "keytool"):
        program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
        result = run([*program, "-G", "-F", "none", *args])
        assert result.returncode == 0, result.stderr
        shown[tool] = [x for x in result.stdout.splitlines() if x.startswith(("user ", "port "))]
    assert shown["keytool"] == shown["ssh"]


@pytest.mark.parametrize(
    "given",
    [
        "-D socks",
        "-L 8080:h:http",
        "-R http",
        "-L ssh:h:80",
        "-L 8080:h:+80",
        "-p ssh",
        "-o Port=http",
        "-p +22",
        "-p 0",
        "-p nosuchservice",
        "-L 8080:h:nosuchservice",
    ],
)
def test_ports_by_service_name_as_ssh_takes_them(given: str) -> None:
    """Ports in -p, Port and forward specs as ssh's a2port reads them: a number (a
    sign allowed) or a service name from /etc/services. keytool refused names."""
    wanted = ("port ", "localforward ", "remoteforward ", "dynamicforward ")
    shown = {}
    for tool in ("ssh", "keytool"):
        program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
        result = run([*program, "-G", "-F", "none", *given.split(), "target.example"])
        lines = [x for x in result.stdout.splitlines() if x.startswith(wanted)]
        shown[tool] = (result.returncode, lines)
    assert shown["keytool"] == shown["ssh"]


def test_syslog_and_gssapi_flags_as_ssh(tmp_path: Path, key: Path, servers: list[Sshd]) -> None:
    """-y sends the client's own lines (-v's steps, errors) to syslog: none on stderr,
    where the remote command's stderr still goes; -k and -K are taken (no GSSAPI here,
    as in an ssh built without it) and the login goes on by key."""
    target = servers[0]
    common = _client_flags(target, key, tmp_path)
    seen = {}
    for tool in ("ssh", "keytool"):
        program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
        for flags in (("-y", "-v"), ("-k", "-K")):
            done = subprocess.run(
                [*program, *common, *flags, "root@127.0.0.1", "echo out; echo err >&2"],
                capture_output=True, env=base_env(), stdin=subprocess.DEVNULL, timeout=60,
            )  # fmt: skip
            seen[tool, flags] = (done.returncode, done.stdout, done.stderr)
    for flags in (("-y", "-v"), ("-k", "-K")):
        assert seen["keytool", flags] == seen["ssh", flags] == (0, b"out\n", b"err\n")
    refused = both_clients("-y", "-p", "1", "-F", "none", "127.0.0.1", "true")
    assert [(r.returncode, r.stderr) for r in refused.values()] == [(255, b"")] * 2


def test_syslog_writer_sends_each_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import syslog

    from keytool.cli import exec_log

    sent: list[tuple[int, str]] = []
    monkeypatch.setattr(syslog, "openlog", lambda *args: None)
    monkeypatch.setattr(syslog, "syslog", lambda priority, line: sent.append((priority, line)))
    writer = exec_log.SyslogWriter()
    writer.write("keytool: connecting to h\nkeytool: part")
    writer.write("ly\n\nlast")
    writer.flush()
    assert [line for _, line in sent] == ["keytool: connecting to h", "keytool: partly", "last"]
    assert {priority for priority, _ in sent} == {syslog.LOG_INFO}


def test_options_after_the_destination_as_ssh(
    tmp_path: Path, key: Path, servers: list[Sshd]
) -> None:
    """ssh reads options after the destination too, up to the first word that is none
    (the command, which keeps its own dashes) or "--"; keytool took them all as the
    command and connected to port 22."""
    target = servers[0]
    known = tmp_path / "known"
    known.write_text(target.known_hosts_line())
    where = ["-F", "none", "-o", f"UserKnownHostsFile={known}",
             "-o", "GlobalKnownHostsFile=/dev/null"]  # fmt: skip
    after = ["-p", str(target.port), "-i", str(key)]
    lines = {
        "options then the command": ["root@127.0.0.1", *after, "echo", "-p", "x"],
        "options, --, then the command": ["root@127.0.0.1", *after, "--", "echo", "-n", "y"],
    }
    for name, line in lines.items():
        seen = both_clients(*where, *line)
        outcome = {tool: (r.returncode, r.stdout, r.stderr) for tool, r in seen.items()}
        assert outcome["keytool"] == outcome["ssh"], name
        assert outcome["ssh"][0] == 0 and outcome["ssh"][1] in (b"-p x\n", b"y"), name
    shown = {}
    for tool in ("ssh", "keytool"):
        program = [require("ssh")] if tool == "ssh" else [*KEYTOOL, "exec"]
        result = run([*program, "-G", "-F", "none", "h", "-l", "bob", "-p", "2345", "ls", "-p"])
        shown[tool] = sorted(
            x for x in result.stdout.splitlines() if x.startswith(("user ", "port "))
        )
    assert shown["keytool"] == shown["ssh"] == ["port 2345", "user bob"]

"""keytool copy-id: install (or --remove) a public key in authorized_keys on one host or
many, then log in with it to prove it works (ssh-copy-id's flags where they exist)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from keytool.errors import KeytoolError

if TYPE_CHECKING:
    import _socket

    from keytool.copyid import Job, KeySource
    from keytool.copyid_host import HostResult
    from keytool.fleet import Progress, Target
    from keytool.options import ConnectOptions


def _say(line: str) -> None:
    sys.stderr.write(f"keytool: {line}\n")
    sys.stderr.flush()


def default_key() -> Path:
    """The newest ~/.ssh/id*.pub (certificates aside), as ssh-copy-id picks it when
    its agent holds no key (with keys in the agent it installs them all: keytool
    installs the agent's keys only when asked to, with -i)."""
    folder = Path.home() / ".ssh"
    found = [p for p in folder.glob("id*.pub") if p.is_file() and not p.name.endswith("-cert.pub")]
    if not found:
        raise KeytoolError(
            f"no public key found ({folder}/id*.pub): "
            "make one with 'keytool gen' or name it with -i"
        )
    return max(found, key=lambda p: p.stat().st_mtime)


def _agent_blobs() -> set[bytes]:
    from keytool.agentclient import AgentClient

    if not os.environ.get("SSH_AUTH_SOCK"):
        return set()
    try:
        with AgentClient(timeout=10) as agent:
            return {k.blob for k in agent.identities()}
    except KeytoolError:
        return set()


def _certificate_refusal(pub: Path) -> str:
    """Why a certificate is not installed, and what to name instead: sshd never takes
    a certificate line of authorized_keys for the key it certifies (that needs a
    cert-authority line for its CA)."""
    name = pub.name
    if name.endswith("-cert.pub"):
        instead = f"-i {pub.with_name(name[: -len('-cert.pub')] + '.pub')}"
    else:
        instead = "-i with the .pub file of the key it certifies"
    return (
        f"{pub} is a certificate: sshd does not take one from authorized_keys; "
        f"install the key it certifies instead ({instead})"
    )


def load_keys(paths: list[str]) -> list[KeySource]:
    """The keys named by -i (a .pub, or a private key whose .pub is used); each with the
    private key file that can log in with it, when there is a usable one."""
    from keytool import files
    from keytool.authkeys import parse_line
    from keytool.copyid import KeySource, NewKey
    from keytool.display import safe
    from keytool.keyfiles import is_private_text, public_of_file
    from keytool.keys import is_encrypted_private

    chosen = [Path(p).expanduser() for p in paths] or [default_key()]
    sources: list[KeySource] = []
    agent: set[bytes] | None = None
    for path in chosen:
        if path.name.endswith(".pub"):
            pub, private = path, path.with_name(path.name[: -len(".pub")])
        elif not path.exists() and Path(f"{path}.pub").exists():
            pub, private = Path(f"{path}.pub"), path
        else:
            pub, private = Path(f"{path}.pub"), path
        if pub.exists():
            text = files.read_file(pub, "public key file")
            # lines end at a newline, as sshd reads them; a comment that is not UTF-8
            # is kept as its bytes (surrogate escapes), and installed so
            lines = [raw.decode("utf-8", "surrogateescape") for raw in text.split(b"\n")]
            parsed = []
            for line in lines:
                try:
                    entry = parse_line(line)
                except KeytoolError as exc:
                    raise KeytoolError(safe(f"{pub}: {exc}")) from None
                if entry is None:
                    continue
                if entry.key is not entry.key.plain:
                    raise KeytoolError(safe(_certificate_refusal(pub)))
                # the line as written, but for the blanks around it and a CRLF's CR
                parsed.append(NewKey(entry.key, line.lstrip(" \t").rstrip(" \t\r")))
            if not parsed:
                raise KeytoolError(safe(f"{pub}: no public key in it"))
        elif path.exists():
            try:
                listed = public_of_file(path)
            except KeytoolError as exc:
                named = str(exc) if str(exc).startswith(f"{path}") else f"{path}: {exc}"
                raise KeytoolError(named) from None
            from keytool.keys.pubfile import format_public_line

            if listed.key is not listed.key.plain:
                raise KeytoolError(safe(_certificate_refusal(path)))
            parsed = [NewKey(listed.key, format_public_line(listed.key, listed.comment or ""))]
        else:
            raise KeytoolError(f"{path}: no such key file")
        signer: Path | None = None
        encrypted = False
        if private.is_file() and len(parsed) == 1:
            try:
                raw = files.read_file(private)
                if is_private_text(raw) and public_of_file(private).key == parsed[0].key:
                    encrypted = is_encrypted_private(raw)
                    if not encrypted:
                        signer = private
                    else:
                        agent = _agent_blobs() if agent is None else agent
                        signer = private if parsed[0].blob in agent else None
            except KeytoolError:
                signer = None
        for new in parsed:
            sources.append(KeySource(new, signer, str(pub), encrypted))
    return sources


def check_destination(text: str) -> None:
    """ssh's checks of a destination's host name and user, in its words (a control
    character in the user too, which ssh refuses and a summary row would print)."""
    from keytool.destination import check_names, parse_destination

    target = parse_destination(text)
    check_names(target.host, target.user)
    if target.user and any(ord(c) < 0x20 or ord(c) == 0x7F for c in target.user):
        raise KeytoolError("remote username contains invalid characters")


def hosts_of_file(text: str, name: str) -> list[str]:
    """A hosts file (--hosts): one destination per line; blank lines and ``#``
    comments skipped, a byte-order mark at its start too. A bad line stops the run
    before any host is connected to, naming the file and the line."""
    from keytool.display import safe

    found: list[str] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            if len(line.split()) != 1:
                raise KeytoolError(f"expected one [user@]host, got {line!r}")
            check_destination(line)
        except KeytoolError as exc:
            raise KeytoolError(safe(f"hosts file {name} line {number}: {exc}")) from None
        found.append(line)
    return found


def _destinations(destinations: list[str], hosts_file: str | None) -> list[str]:
    from keytool import files
    from keytool.cli import argv_text

    # the bytes typed, as ssh takes a destination (a user name that is not UTF-8 too)
    found = [argv_text(destination) for destination in destinations]
    for destination in found:
        check_destination(destination)
    if hosts_file:
        if hosts_file == "-":
            text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
            name = "(stdin)"
        else:
            # a pipe too (--hosts <(...), /dev/stdin), as ssh-keyscan -f takes one
            path = Path(hosts_file).expanduser()
            raw = files.read_file(path, "hosts file", pipes=True)
            text = raw.decode("utf-8", errors="replace")
            name = str(path)
        listed = hosts_of_file(text, name)
        if not listed:
            raise KeytoolError(f"no hosts in {name}")
        found += listed
    if not found:
        raise KeytoolError("usage: keytool copy-id [options] [user@]host [[user@]host ...]")
    # a destination listed twice is done once (twice at once, -f would add the key twice)
    return list(dict.fromkeys(found))


def _port(text: str | None) -> int | None:
    """-p: a number or a service name, as ssh (which ssh-copy-id hands it to) takes it."""
    from keytool.ports import a2port

    if text is None:
        return None
    port = a2port(text)
    if port is None or port == 0:
        raise KeytoolError(f"Bad port '{text}'")  # ssh's words
    return port


def _password(password_file: str | None) -> str | None:
    from keytool import files

    if password_file is None:
        return None
    if password_file == "-":
        raw = sys.stdin.buffer.readline()
    else:
        raw = files.read_file(Path(password_file).expanduser(), "password file")
    # its first line, sent as its bytes (a password need not be UTF-8, as with ssh)
    return raw.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "surrogateescape")


def _start(options: ConnectOptions) -> _socket.socket | None:
    from keytool.tcp import start_connect

    if options.proxy_command is not None:
        return None  # the proxy command connects, when its host's turn comes
    return start_connect(options.host, options.port)


#: file descriptors a host in flight may hold: its connection, the verifying one, the
#: agent's socket and a key or known_hosts file being read
FILES_PER_HOST = 4


def _jobs_that_fit(asked: int | None, hosts: int) -> int:
    """-j as far as the open-file limit allows (raised first, when it can be): said
    once when the user asked for more hosts at once than fit."""
    from keytool.copyid import DEFAULT_JOBS
    from keytool.tcp import files_at_once

    wanted = min(asked or DEFAULT_JOBS, hosts)
    fit = files_at_once(wanted, FILES_PER_HOST)
    if asked is not None and fit < wanted:
        _say(
            f"-j {asked} lowered to {fit}: the open-file limit (ulimit -n) allows no more "
            "hosts at once"
        )
    return fit


def _line(result: HostResult) -> str:
    # the reason may name the host itself (a login error does): once is enough
    from keytool.display import safe

    reason = result.detail.removeprefix(f"{result.destination}: ")
    detail = f": {reason}" if reason else ""
    return safe(f"{result.destination}: {result.status}{detail}")


def _dry_run_block(results: list[HostResult], remove: bool) -> str:
    """-n: the key lines themselves (as ssh-copy-id -n shows them), each once, indented
    under the host's row or the fleet's table; "" when no host would change."""
    from keytool.display import safe

    lines = list(dict.fromkeys(line for r in results for line in r.lines))
    if not lines:
        return ""
    if remove:
        heading = "lines with these keys would be removed"
    else:
        heading = "these lines would be added" if len(lines) > 1 else "this line would be added"
    if len(results) > 1:
        heading += f" (on the hosts that {'would remove' if remove else 'would install'})"
    heading += ":"
    return "\n".join([f"  {heading}", *(safe(f"    {line}") for line in lines)])


class _Interrupted(Exception):
    """^C or SIGTERM ended the run: the rows of the hosts done, the others marked."""

    def __init__(self, code: int, results: list[HostResult]) -> None:
        super().__init__(code)
        self.code = code
        self.results = results


def _run_interruptible(
    targets: list[Target], job: Job, jobs: int, progress: Progress
) -> list[HostResult]:
    """run_fleet; on ^C or SIGTERM the hosts at work are stopped at once and
    _Interrupted says which had finished (their rows), which had begun (interrupted:
    perhaps changed) and which not (not done)."""
    import asyncio
    import signal

    from keytool.copyid_host import HostResult
    from keytool.fleet import run_fleet

    finished: dict[str, list[HostResult]] = {}
    started: set[int] = set()
    signals: list[int] = []

    def done(result: HostResult) -> None:
        finished.setdefault(result.destination, []).append(result)
        progress.update(result)

    async def main() -> list[HostResult]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop(number: int) -> None:
            signals.append(number)
            task.cancel()

        loop.add_signal_handler(signal.SIGTERM, stop, signal.SIGTERM)
        return await run_fleet(
            targets, job, jobs, on_result=done, screen=progress.screen, started=started
        )

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        code = 128 + (signals[0] if signals else signal.SIGINT)
    rows: list[HostResult] = []
    for index, target in enumerate(targets):
        mine = finished.get(target.destination)
        if mine:
            rows.append(mine.pop(0))
        elif index in started:
            rows.append(HostResult(target.destination, "interrupted", "stopped while at work"))
        else:
            rows.append(HostResult(target.destination, "not done", ""))
    raise _Interrupted(code, rows)


def run(
    destinations: list[str],
    identity: list[str] | None = None,
    port: list[str] | None = None,
    option: list[str] | None = None,
    config_file: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    sftp: bool = False,
    target: str | None = None,
    verbose: int = 0,
    remove: bool = False,
    hosts_file: str | None = None,
    jobs: int | None = None,
    password_file: str | None = None,
    expect_hostkey: str | None = None,
    no_verify: bool = False,
    given_order: list[str] | None = None,
) -> int:
    from keytool.cli import argv_text
    from keytool.copyid import check_target
    from keytool.destination import resolve_command_line
    from keytool.errors import UsageError
    from keytool.options import options_from_config

    if jobs is not None and jobs < 1:
        raise UsageError("-j must be at least 1")  # as -j abc: a usage error
    if given_order is not None and given_order.count("hosts_file") > 1:
        # one file only: the last one given would silently be the only one read
        raise UsageError("--hosts may be given once")
    if expect_hostkey is not None and not expect_hostkey.startswith("SHA256:"):
        raise KeytoolError("--expect-hostkey takes a fingerprint such as SHA256:abc...")
    if remove and force:
        raise KeytoolError("--remove and -f do not go together")
    if hosts_file == "-" and password_file == "-":
        raise KeytoolError("--hosts - and --password-file - cannot both read stdin")
    # every -p goes to ssh from ssh-copy-id, which takes the first one: so here
    port_number = _port(port[0] if port else None)
    hosts = _destinations(destinations, hosts_file)
    keys = load_keys(identity or [])
    password = _password(password_file)
    fleet = len(hosts) > 1
    # the path as the bytes typed (sent to the server as they are)
    target_path = check_target(argv_text(target or ""))
    jobs = _jobs_that_fit(jobs, len(hosts))
    resolved_hosts: list[tuple[str, ConnectOptions]] = []
    # The first hosts' TCP connections start as each is resolved: the servers start
    # their side (sshd forks and execs a process per connection) while the other hosts
    # are resolved and the rest of keytool loads
    started: list[_socket.socket | None] = []
    typed_options = [argv_text(line) for line in option or []]  # as typed, as exec's
    for host in hosts:
        trace = None
        if verbose:
            trace = (lambda line, h=host: _say(f"[{h}] {line}")) if fleet else _say
        resolved = resolve_command_line(
            host,
            port=port_number,
            options=typed_options,
            config_file=config_file,
            warn=_say if verbose else None,
            given_order=given_order,
        )
        options = options_from_config(resolved, trace)
        options = options.replace(
            password=password if password is not None else options.password,
            expected_host_key=expect_hostkey or options.expected_host_key,
        )
        resolved_hosts.append((host, options))
        if len(started) < jobs:
            started.append(_start(options))

    import socket

    from keytool import hostcheck
    from keytool.copyid import Job

    if fleet:
        # known_hosts is read once for every host (while it stays the same), not once
        # or more a host
        hostcheck.expect_lookups(options.known_hosts_name() for _, options in resolved_hosts)
    from keytool.fleet import Progress, Target, summary

    job = Job(
        tuple(keys),
        remove=remove,
        force=force,
        dry_run=dry_run,
        sftp=sftp,
        target=target_path,
        verify=not no_verify,
    )
    socks = [socket.socket(fileno=raw.detach()) if raw is not None else None for raw in started]
    socks += [None] * (len(resolved_hosts) - len(socks))
    targets = [
        Target(host, options, sock)
        for (host, options), sock in zip(resolved_hosts, socks, strict=True)
    ]

    if verbose:
        for source in keys:
            how = f"verify with {source.private}" if source.private else "verify by key query"
            _say(f"key to {'remove' if remove else 'install'}: {source.label} ({how})")
    progress = Progress(len(targets))
    if progress.enabled and verbose:
        progress.enabled = False
    try:
        results = _run_interruptible(targets, job, jobs, progress)
    except _Interrupted as stop:
        progress.screen.clear()
        _say("interrupted")
        if fleet:
            print(summary(stop.results))
        from keytool.output import end_by

        end_by(stop.code - 128)  # as ssh-copy-id, a shell script: ended by the signal
    block = _dry_run_block(results, remove) if dry_run else ""
    if not fleet:
        result = results[0]
        if not result.ok:
            raise KeytoolError(_line(result))
        print(_line(result))
        code = 0
    else:
        print(summary(results))
        code = 0 if all(r.ok for r in results) else 1
    if block:
        print(block)
    # Done and said: leave without tearing the interpreter down (tens of milliseconds
    # that a script running copy-id host after host would pay each time), as exec does
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

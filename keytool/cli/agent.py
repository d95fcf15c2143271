"""keytool agent: an ssh-agent-compatible daemon (eval "$(keytool agent)")."""

from __future__ import annotations

import sys

from keytool.errors import KeytoolError


def run(
    bind: str | None,
    csh: bool,
    sh: bool,
    foreground: bool,
    debug: bool,
    lifetime: str | None,
    kill: bool,
    command: list[str],
    fingerprint_hash: str | None = None,
    agent_option: list[str] | None = None,
    providers: str | None = None,
    fish: bool = False,
) -> int:
    from agent import daemon
    from keytool.duration import parse_lifetime

    for option in agent_option or []:
        # ssh-agent's own options: both concern what this agent never does (load a
        # provider library, sign with a FIDO key), so they change nothing here
        if option not in ("allow-remote-pkcs11", "no-restrict-websafe"):
            raise KeytoolError("Unknown -O option")
    del providers  # ssh-agent -P: which providers may load; this agent loads none

    if csh + sh + fish > 1:
        raise KeytoolError("choose one of -c, -s and --fish")
    if bind == "":
        raise KeytoolError("-a needs a socket path")
    if command and (csh or sh or fish or foreground or debug or kill):
        # as ssh-agent's usage: a command is run by an agent of its own
        raise KeytoolError("a command cannot be given with -c, -s, --fish, -d, -D or -k")
    shell = daemon.detect_shell(csh, sh, fish=fish)
    if kill:  # as ssh-agent, which ignores -a, -t... with -k
        sys.stdout.write(daemon.kill_agent(shell))
        return 0
    from keytool.keys.fingerprint import check_hash_name

    hash_name = check_hash_name(fingerprint_hash)  # with ssh-agent's words
    seconds = parse_lifetime(lifetime) if lifetime is not None else None
    options = daemon.AgentOptions(
        bind=bind,
        foreground=foreground,
        debug=debug,
        lifetime=seconds or None,
        fingerprint_hash=hash_name,
        shell=shell,
        command=tuple(command),
    )
    return daemon.run(options)

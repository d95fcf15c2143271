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
) -> int:
    from agent import daemon
    from keytool.duration import parse_seconds

    if csh and sh:
        raise KeytoolError("-c and -s cannot be used together")
    if bind == "":
        raise KeytoolError("-a needs a socket path")
    shell = daemon.detect_shell(csh, sh)
    if kill:
        if command or bind or foreground or debug or lifetime:
            raise KeytoolError("-k takes no other flags")
        sys.stdout.write(daemon.kill_agent(shell))
        return 0
    seconds = parse_seconds(lifetime) if lifetime is not None else None
    options = daemon.AgentOptions(
        bind=bind,
        foreground=foreground,
        debug=debug,
        lifetime=seconds or None,
        shell=shell,
        command=tuple(command),
    )
    return daemon.run(options)

"""The real X11 cookie for ssh -X and -Y, from the xauth program, as ssh gets it.

Trusted forwarding (-Y, ForwardX11Trusted yes) reads the display's cookie with
``xauth list``. Untrusted forwarding (-X) has the X server make a new, untrusted
cookie (``xauth generate ... untrusted``, the SECURITY extension), in a private
temporary file, valid a minute longer than ForwardX11Timeout; X clients at the server
then get only what the X server lets untrusted clients do. Without a cookie,
untrusted forwarding is not asked for at all; trusted forwarding makes one up, as ssh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable

from keytool.x11 import (
    MIT_COOKIE,
    TIMEOUT_SLACK,
    Cookies,
    Forwarding,
    display_valid,
    parse_xauth_list,
    xauth_display,
)

Say = Callable[[str], None]

#: how long xauth may take (it talks to the X server to generate a cookie)
_XAUTH_TIMEOUT = 30.0


def forwarding(
    display: str | None,
    xauth_path: str | None,
    trusted: bool,
    timeout: int,
    say: Say,
    trace: Say,
) -> Forwarding | None:
    """X11 forwarding for ``display`` ($DISPLAY), or None (said in ssh's words when it
    is not the user's doing) when it cannot be had. ``timeout`` is ForwardX11Timeout
    in seconds (0: none)."""
    if display is None:
        trace("X11 forwarding requested but DISPLAY not set")
        return None
    if not display_valid(display):
        say(f'DISPLAY "{display}" invalid; disabling X11 forwarding')
        return None
    if xauth_path is not None and not os.path.exists(xauth_path):
        trace(f"X11 forwarding: no xauth program at {xauth_path}")
        xauth_path = None
    cookie: tuple[str, str] | None = None
    refuse_at: float | None = None
    if xauth_path is not None:
        name = xauth_display(display)
        if trusted:
            cookie = _list(xauth_path, [], name, trace)
        else:
            if timeout:
                refuse_at = time.monotonic() + 1 + timeout
            cookie = _untrusted(xauth_path, name, timeout, trace)
    if not trusted and cookie is None:
        say("Warning: untrusted X11 forwarding setup failed: xauth key data not generated")
        return None
    if cookie is None:
        say("Warning: No xauth data; using fake authentication data for X11 forwarding.")
        return Forwarding(display, Cookies.made_up(), refuse_at)
    protocol, real_hex = cookie
    return Forwarding(display, Cookies.spoofing(protocol, real_hex), refuse_at)


def _untrusted(xauth_path: str, name: str, timeout: int, trace: Say) -> tuple[str, str] | None:
    folder = tempfile.mkdtemp(prefix="keytool-xauth-")  # mode 700: the cookie is a secret
    try:
        path = os.path.join(folder, "xauthfile")
        argv = [xauth_path, "-f", path, "generate", name, MIT_COOKIE, "untrusted"]
        if timeout:
            argv += ["timeout", str(timeout + TIMEOUT_SLACK)]
        trace(f"X11 forwarding: {' '.join(argv[3:])} (xauth)")
        if _run(argv)[0] != 0:
            return None
        return _list(xauth_path, ["-f", path], name, trace)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _list(xauth_path: str, file: list[str], name: str, trace: Say) -> tuple[str, str] | None:
    # as ssh: its first line, whatever its exit status
    found = parse_xauth_list(_run([xauth_path, *file, "list", name])[1])
    if found is None:
        trace(f"X11 forwarding: xauth has no cookie for {name}")
    return found


def _run(argv: list[str]) -> tuple[int, str]:
    """xauth's exit status and output (-1 and nothing when it could not run); its
    complaints go nowhere, as ssh's."""
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=_XAUTH_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return -1, ""
    return done.returncode, done.stdout.decode("utf-8", "replace")

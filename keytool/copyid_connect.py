"""Connecting to one host for copy-id: ``open_connection`` tried again while the
server drops connections before the key exchange (sshd past MaxStartups), and an
--expect-hostkey pin naming another of the server's host keys than the one the key
exchange picked (each other key type asked for in turn)."""

from __future__ import annotations

import asyncio
import random
import socket
from typing import TYPE_CHECKING

from keytool.errors import HostKeyPinError

if TYPE_CHECKING:
    from keytool.session import Client, ConnectOptions, Prompts


#: how long a host whose server drops connections before the key exchange (sshd past
#: MaxStartups, which throttles for some seconds) is tried again before it is failed
RETRY_SECONDS = 15.0

#: the longest wait between two tries (the waits grow from 0.1 s, each jittered)
RETRY_MAX_DELAY = 2.0


async def connect_retrying(
    options: ConnectOptions,
    prompts: Prompts | None,
    attempts: int = 0,
    first_delay: float = 0.1,
    sock: socket.socket | None = None,
    budget: float = RETRY_SECONDS,
) -> Client:
    """open_connection, retried when the server drops us before sending a packet
    (closes or resets the connection having sent nothing, only "Exceeded MaxStartups"
    or only its version line: client.ConnectionDropped): sshd does so beyond MaxStartups
    (10:30:100 by default), which a fleet run easily reaches, and goes on dropping for
    seconds; that is not a reason to report the host as failed. Tried again for
    ``budget`` seconds (and at most ``attempts`` times, when not 0), the waits growing
    and jittered so the hosts' retries do not come back together. Any other failure
    (bytes that are not SSH, a close after some packets...) fails at once.
    ``sock``, a connection already started to the host, serves the first attempt."""
    from keytool.client import ConnectionDropped
    from keytool.session import open_connection

    loop = asyncio.get_running_loop()
    give_up = loop.time() + budget
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            started, sock = sock, None
            return await open_connection(options, prompts, started)
        except HostKeyPinError as exc:
            return await _pinned_key_of_another_type(options, prompts, exc)
        except ConnectionDropped as exc:
            # only this: anything else a server says or does (a goodbye with a reason,
            # bytes that are not SSH, packets and then a close) is its answer
            wait = delay * (0.5 + random.random())
            if attempt == attempts or loop.time() + wait > give_up:
                raise
            if options.trace:
                options.trace(f"connection dropped before login ({exc}); retrying")
            await asyncio.sleep(wait)
            delay = min(delay * 2, RETRY_MAX_DELAY)


async def _pinned_key_of_another_type(
    options: ConnectOptions, prompts: Prompts | None, mismatch: HostKeyPinError
) -> Client:
    """--expect-hostkey names another of the server's host keys (its RSA key, say,
    as dropbearkey -y shows it) than the one the key exchange picked: each other key
    type is asked for in turn, and the connection whose key matches the pin is used."""
    from keytool.errors import NegotiationError
    from keytool.keys.cert import is_cert_type, key_type_of_algorithm
    from keytool.session import open_connection

    tried = {mismatch.key_type}
    for algorithm in options.transport.host_key_algorithms:
        kind = key_type_of_algorithm(algorithm)
        if kind in tried or is_cert_type(algorithm):
            continue
        narrowed = options.replace(
            transport=options.transport._replace(host_key_algorithms=(algorithm,))
        )
        try:
            return await open_connection(narrowed, prompts, None)
        except HostKeyPinError:
            tried.add(kind)  # not this key either
        except NegotiationError:
            continue  # the server signs with no such algorithm (rsa-sha2-256 may follow)
    raise mismatch

"""The -L and -D forwards' listening sockets (``keytool.tunnels``): bound on TCP
addresses or socket paths here (StreamLocalBindMask, StreamLocalBindUnlink), added and
cancelled while the connection runs, each accepted connection opening a
"direct-tcpip" or "direct-streamlocal@openssh.com" channel (-D: once its SOCKS
request says where to).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time

from keytool.errors import FormatError, KeytoolError
from keytool.files import unix_listener
from keytool.forwardspec import DynamicForward, LocalForward
from keytool.socks import Handshake
from keytool.tunnels_relay import READ_SIZE, Tunnel, error_reason, send_small
from keytool.tunnels_remote import RemoteListen

_LISTEN_BACKLOG = 128
# a loopback address of a family the machine does not have is skipped, as ssh does
_NO_FAMILY = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT)
# the longest socket path (sun_path, with its NUL)
_SUN_PATH = 108


def _remove_own(path: str, made: tuple[int, int]) -> None:
    """Remove the socket file we made at ``path``, unless another one is there now."""
    with contextlib.suppress(OSError):
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) == made:
            os.unlink(path)


class LocalListen(RemoteListen):
    """Listens for each -L and -D, and opens a channel for each connection."""

    # ---- listening

    def listen(self) -> None:
        """Bind and listen for every forward, as ssh: an address that cannot be bound
        is said in ssh's words and the others go on; a forward with no address at all
        has failed. Then, with ExitOnForwardFailure, any failed forward is a
        KeytoolError (every socket opened is closed); without it, ssh's "Could not
        request local forwarding." is said when none could be set up."""
        failed = sum(not self._listen(forward) for forward in self.forwards)
        if failed and self.exit_on_failure:
            self.close()
            raise KeytoolError("Could not request local forwarding.")
        if failed and failed == len(self.forwards):
            self.say("Could not request local forwarding.")

    def _listen(self, forward: LocalForward) -> bool:
        """Listen for one -L or -D; False (said) when no address could be bound."""
        flag = "-D" if isinstance(forward, DynamicForward) else "-L"
        if forward.listen_path is not None:
            return self._listen_unix(forward, forward.listen_path)
        bound = 0
        for host in forward.bind_hosts(self.gateway_ports):
            shown = "*" if host is None else host
            try:
                infos = socket.getaddrinfo(
                    host, forward.listen_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
                )
            except (socket.gaierror, UnicodeError) as exc:
                if host != "::1":
                    self.say(f"getaddrinfo({shown}): {error_reason(exc)}")
                continue
            for family, kind, proto, _, address in infos:
                try:
                    sock = socket.socket(family, kind, proto)
                except OSError as exc:
                    if exc.errno not in _NO_FAMILY:
                        self.say(f"socket {_bracketed(address)}: {exc.strerror}")
                    continue
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if family == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    sock.bind(address)
                    sock.listen(_LISTEN_BACKLOG)
                    sock.setblocking(False)
                except OSError as exc:
                    sock.close()
                    if not (exc.errno in _NO_FAMILY and host in ("::1", None)):
                        self.say(f"bind {_bracketed(address)}: {exc.strerror}")  # ssh's
                    continue
                self._listeners[sock.fileno()] = (sock, forward)
                bound += 1
                self.trace(f"port forwarding: listening on {_where(address)}, {_to(forward)}")
        if not bound:  # ssh's words
            self.say(f"cannot listen to port: {forward.listen_port}")
            self.trace(f"port forwarding: no address for {flag} {forward.describe()}")
        return bound > 0

    def _listen_unix(self, forward: LocalForward, path: str) -> bool:
        if "\0" in path:  # no file has such a name (the system's calls refuse it)
            self.say(f"cannot bind to path {path!r}: a NUL byte in the path")
            return False
        if self.bind_unlink:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if len(os.fsencode(path)) >= _SUN_PATH:  # ssh's words
            self.say(f'path "{path}" too long for Unix domain socket')
            return False
        try:
            sock = unix_listener(path, self.bind_mask, _LISTEN_BACKLOG)
        except (OSError, ValueError) as exc:
            self.say(f"cannot bind to path {path}: {error_reason(exc)}")  # ssh's words
            return False
        sock.setblocking(False)
        try:
            made = os.lstat(path)
            self._paths[path] = (made.st_dev, made.st_ino)
        except OSError:  # gone already: nothing of ours to remove later
            pass
        self._listeners[sock.fileno()] = (sock, forward)
        self.trace(f"port forwarding: listening on {path}, {_to(forward)}")
        return True

    # ---- forwards added and taken away while the connection runs (a shared
    #      connection's clients ask for them: ssh -O forward, -O cancel)

    def add_local(self, forward: LocalForward) -> None:
        """Listen for one more -L or -D (one already there: nothing to do, as ssh's
        master); a KeytoolError when it cannot."""
        if forward in self.forwards:
            return
        if not self._listen(forward):
            raise KeytoolError(f"Port forwarding failed for {forward.describe()}")
        self.forwards = (*self.forwards, forward)

    def cancel_local(self, forward: LocalForward) -> bool:
        """Stop listening for a -L or -D (its connections go on); False if there is
        no such forward."""
        found = False
        for fd, (sock, listening) in list(self._listeners.items()):
            if listening == forward:
                sock.close()
                del self._listeners[fd]
                found = True
        if found and forward.listen_path is not None and forward.listen_path in self._paths:
            _remove_own(forward.listen_path, self._paths.pop(forward.listen_path))
        if found:
            self.forwards = tuple(f for f in self.forwards if f != forward)
        return found

    def stop_listening(self) -> None:
        for sock, _ in self._listeners.values():
            sock.close()
        self._listeners.clear()
        for path, made in self._paths.items():
            _remove_own(path, made)
        self._paths.clear()
        # opens the server still sends for -R (and -A) are refused from now on
        self.conn.accept_forwarded = False
        self.conn.accept_agent = False
        self.conn.accept_x11 = False

    def close(self) -> None:
        """Close every socket (the connection is going away)."""
        self.stop_listening()
        for tunnel in list(self._by_fd.values()):
            tunnel.sock.close()
        self._by_fd.clear()
        self._by_channel.clear()

    # ---- the sockets

    def _accept(self, listener: socket.socket, forward: LocalForward) -> None:
        while True:
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, a reset in the backlog
                now = time.monotonic()
                if now - self._accept_said >= 1:
                    self._accept_said = now
                    self.say(f"port forwarding: accept failed: {exc.strerror}")
                return
            sock.setblocking(False)
            origin = peer[0] if isinstance(peer, tuple) else "127.0.0.1"
            origin_port = peer[1] if isinstance(peer, tuple) else 0
            if isinstance(forward, DynamicForward):
                tunnel = Tunnel(sock, None, f"from {origin} port {origin_port}", Handshake())
                tunnel.peer = (origin, origin_port)
                self._by_fd[sock.fileno()] = tunnel
                continue
            source = forward.listen_path or f"{origin} port {origin_port}"
            label = f"from {source} to {forward.target}"
            try:
                if forward.target_path is not None:
                    number = self.conn.open_direct_streamlocal(forward.target_path)
                else:
                    number = self.conn.open_direct_tcpip(
                        forward.host, forward.port, origin, origin_port
                    )
            except KeytoolError:
                sock.close()
                raise
            self.trace(f"port forwarding: connection {label}: opening channel {number}")
            tunnel = Tunnel(sock, number, label)
            self._by_channel[number] = tunnel
            self._by_fd[sock.fileno()] = tunnel

    def _negotiate(self, tunnel: Tunnel) -> None:
        """-D: the SOCKS client's next bytes; once it has said where, open the channel."""
        socks = tunnel.socks
        assert socks is not None
        try:
            data = tunnel.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(tunnel)
            return
        if not data:
            self._drop(tunnel)  # gone before it asked for anything
            return
        try:
            socks.feed(data)
        except FormatError as exc:
            send_small(tunnel.sock, socks.data_to_send())
            self.say(f"port forwarding ({tunnel.label}): {exc}")
            self._drop(tunnel)
            return
        if not send_small(tunnel.sock, socks.data_to_send()):
            self._drop(tunnel)
            return
        if socks.request is None:
            return
        host, port = socks.request
        number = self.conn.open_direct_tcpip(host, port, *tunnel.peer)
        tunnel.number = number
        tunnel.label = f"{tunnel.label} to {host} port {port}"
        self._by_channel[number] = tunnel
        self.trace(f"port forwarding: connection {tunnel.label}: opening channel {number}")


def _to(forward: LocalForward) -> str:
    if isinstance(forward, DynamicForward):
        return "a SOCKS proxy (-D)"
    return f"to {forward.target} through the server"


def _bracketed(address: tuple[object, ...]) -> str:
    """An address as ssh's bind errors show it: ``[host]:port``."""
    return f"[{address[0]}]:{address[1]}"


def _where(address: tuple[object, ...]) -> str:
    return f"{address[0]} port {address[1]}"

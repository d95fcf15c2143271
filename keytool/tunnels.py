"""Port forwarding for the blocking driver.

- ``-L``: listening sockets here; each connection accepted on one becomes a
  "direct-tcpip" channel (RFC 4254 §7.2) that the server connects on to the forward's
  host and port.
- ``-D``: listening sockets too, but each connection first says, in SOCKS 4 or 5
  (keytool/socks.py), where it goes; the direct-tcpip channel goes there.
- ``-R``: "tcpip-forward" requests (§7.1) make the server listen; each connection
  there comes as a "forwarded-tcpip" channel, which is confirmed once our own
  connection to the forward's host and port is made (non-blocking), or refused.
- Unix-domain sockets (OpenSSH's PROTOCOL §2.4): a -L or -D listening on a socket
  path here (created under StreamLocalBindMask, a stale one removed first with
  StreamLocalBindUnlink, and removed when keytool stops listening); a -L whose target
  is a path on the server ("direct-streamlocal@openssh.com"); a -R listening on a
  path at the server ("streamlocal-forward@openssh.com", its connections coming as
  "forwarded-streamlocal@openssh.com" channels); a -R whose target is a path here.
- ``-A``: the server's "auth-agent@openssh.com" channels connect to our agent.
- ``-X``/``-Y``: the server's "x11" channels connect to our display; the X client's
  first packet passes through ``keytool.x11.Setup`` (fake cookie checked, the real
  one put in its place) before the X server sees a byte of it.

``Forwards`` does no waiting of its own: the driver's poll(2) loop asks it which
descriptors to watch (``watch``), hands it those that are ready (``ready``) and the
channel events of its channels (``handle``). Flow control is end to end: a local
socket is read only while its channel has window to send into, and the server's
window is given back only for bytes the local socket has taken.

The parts: ``Tunnel``, the forwards' state and the relaying of bytes in
keytool/tunnels_relay.py; the channels the server opens (-R connections, -A, -X) in
tunnels_inbound.py; the -R requests in tunnels_remote.py; the -L and -D listening
sockets in tunnels_local.py. ``Forwards`` builds on them all.
"""

from __future__ import annotations

import select

from keytool.transport import channels as ch
from keytool.tunnels_local import LocalListen
from keytool.tunnels_relay import send_small

__all__ = ["Forwards"]

_IN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


class Forwards(LocalListen):
    """The ``-L``, ``-D`` and ``-R`` forwards of one connection."""

    @property
    def active(self) -> bool:
        """A forwarded connection is still open."""
        return bool(self._by_fd)

    #: forwards alone are never done before the connection (a shared connection's
    #: master is: ``Multiplexer.done``)
    done = False

    def wake_in(self) -> float | None:
        """No timer of their own (the driver's loop asks)."""
        return None

    # ---- what the driver's loop calls

    def watch(self) -> list[tuple[int, int]]:
        """The descriptors to poll, with the events wanted."""
        wanted = [(fd, _IN) for fd in self._listeners]
        conn = self.conn
        for fd, tunnel in self._by_fd.items():
            if tunnel.connecting:
                wanted.append((fd, select.POLLOUT))
                continue
            if tunnel.socks is not None and tunnel.number is None:
                wanted.append((fd, _IN))  # the SOCKS request is still coming
                continue
            flags = 0
            number = self._live(tunnel)
            if (
                number is not None
                and tunnel.opened
                and not tunnel.local_eof
                and conn.buffered(number) <= ch.DEFAULT_WINDOW
            ):
                flags |= _IN
            if tunnel.out:
                flags |= select.POLLOUT
            if flags:
                wanted.append((fd, flags))
        return wanted

    def ready(self, fd: int, flags: int) -> None:
        listener = self._listeners.get(fd)
        if listener is not None:
            self._accept(*listener)
            return
        tunnel = self._by_fd.get(fd)
        if tunnel is None:
            return
        if tunnel.connecting:
            self._connected(tunnel)
            return
        if tunnel.socks is not None and tunnel.number is None:
            self._negotiate(tunnel)
            return
        if flags & select.POLLOUT and tunnel.out:
            self._write(tunnel)
        if tunnel.sock.fileno() >= 0 and flags & _IN:
            self._read(tunnel)

    def handle(self, event: ch.ChannelEvent) -> bool:
        """Take ``event`` if it is about one of our channels (or our global requests)."""
        if isinstance(event, ch.GlobalReply):
            if not self._unanswered:
                return False
            self._answered(event)
            return True
        if isinstance(event, ch.ChannelOpenRequest):
            self._forwarded(event)
            return True
        if event.channel in self._socks_channels:
            self._socks_event(event)
            return True
        tunnel = self._by_channel.get(event.channel)
        if tunnel is None:
            return False
        number = event.channel
        if isinstance(event, ch.ChannelData | ch.ChannelExtendedData):
            if isinstance(event, ch.ChannelData):
                data = event.data if tunnel.setup is None else self._x11_setup(tunnel, event.data)
                # written by flush, after the batch: one send for many packets
                tunnel.out += data
                self._unflushed.append(tunnel)
            else:
                self.conn.consumed(number, len(event.data))
        elif isinstance(event, ch.ChannelOpened):
            tunnel.opened = True
            self.trace(f"port forwarding: channel {number} connected ({tunnel.label})")
            if tunnel.socks is not None:
                socks, tunnel.socks = tunnel.socks, None
                if not send_small(tunnel.sock, socks.reply(True)):
                    self._abort(tunnel)
                elif socks.rest:
                    self.conn.send(number, socks.rest)
        elif isinstance(event, ch.ChannelOpenFailed):
            self.say(
                f"port forwarding ({tunnel.label}): the server did not connect: {event.explain()}"
            )
            if tunnel.socks is not None:
                send_small(tunnel.sock, tunnel.socks.reply(False))
            tunnel.number = None
            del self._by_channel[number]
            self._drop(tunnel)
        elif isinstance(event, ch.ChannelEof):
            tunnel.remote_eof = True
            self._maybe_shut(tunnel)
        elif isinstance(event, ch.WindowAdjusted):
            self._maybe_close(tunnel)  # the last of our data may have gone out now
        elif isinstance(event, ch.ChannelClosed):
            self.trace(f"port forwarding: channel {number} closed ({tunnel.label})")
            tunnel.number = None
            del self._by_channel[number]
            tunnel.remote_eof = True
            if tunnel.connecting:  # nothing to deliver to: the channel is gone
                del tunnel.out[:]
            elif tunnel.out:
                self._write(tunnel)
            if not tunnel.out:
                self._drop(tunnel)
        return True

    def flush(self) -> None:
        """Write what the events handled since the last call brought."""
        unflushed, self._unflushed = self._unflushed, []
        for tunnel in unflushed:
            if tunnel.out and tunnel.sock.fileno() >= 0:
                self._write(tunnel)

"""The -R forwards' requests (``keytool.tunnels``): "tcpip-forward" and
"streamlocal-forward@openssh.com" asked of the server, at start or later (ssh's ~C, a
shared connection's clients), cancelled, and the server's answers.
"""

from __future__ import annotations

from keytool.errors import KeytoolError
from keytool.forwardspec import RemoteForward
from keytool.transport import channels as ch
from keytool.tunnels_inbound import Inbound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keytool.tunnels_relay import Answered


class RemoteListen(Inbound):
    """Asks the server to listen for each -R, and keeps what it listens on."""

    def request_remote(self) -> None:
        """Ask the server to listen for every -R; ``waiting_remote`` until it answers."""
        for forward in self.remote:
            self._ask_remote(forward, None)

    def ask_remote(self, forward: RemoteForward) -> None:
        """Ask for one more -R as the command line's are (ssh's ~C): the server's
        answer is said, or fatal with ExitOnForwardFailure."""
        self._ask_remote(forward, None)

    @property
    def remote_listening(self) -> list[RemoteForward]:
        """The -R forwards the server listens for now."""
        return [*self._by_port.values(), *self._by_path.values()]

    def _ask_remote(self, forward: RemoteForward, answered: Answered | None) -> None:
        if forward.listen_path is not None:
            self.conn.streamlocal_forward(forward.listen_path)
        else:
            self.conn.tcpip_forward(forward.request_address(), forward.listen_port)
        self._unanswered.append((forward, answered))

    # ---- forwards added and taken away while the connection runs (a shared
    #      connection's clients ask for them: ssh -O forward, -O cancel)

    def add_remote(self, forward: RemoteForward, answered: Answered) -> None:
        """Ask the server to listen for one more -R; ``answered`` is told how it went.
        One the server listens for already is answered at once (with its port), as
        ssh's master does."""
        if forward.listen_path is not None and self._by_path.get(forward.listen_path) == forward:
            answered(True, 0)
            return
        for port, listening in self._by_port.items():
            if listening == forward:
                answered(True, port)
                return
        self._ask_remote(forward, answered)

    def cancel_remote(self, forward: RemoteForward) -> bool:
        """Ask the server to stop listening for a -R; False if there is no such one."""
        if forward.listen_path is not None:
            if self._by_path.pop(forward.listen_path, None) is None:
                return False
            self.conn.cancel_forward("", 0, forward.listen_path)
        else:
            ports = [p for p, f in self._by_port.items() if f == forward]
            if not ports:
                return False
            del self._by_port[ports[0]]
            self.conn.cancel_forward(forward.request_address(), ports[0])
        self._unanswered.append((None, None))  # its answer changes nothing
        return True

    @property
    def waiting_remote(self) -> bool:
        return bool(self._unanswered)

    def _answered(self, reply: ch.GlobalReply) -> None:
        forward, answered = self._unanswered.pop(0)
        if forward is None:
            return  # a cancel
        if answered is not None:
            if reply.ok:
                port = forward.listen_port
                if port == 0 and forward.listen_path is None:
                    port = ch.allocated_port(reply)
                if forward.listen_path is not None:
                    self._by_path[forward.listen_path] = forward
                else:
                    self._by_port[port] = forward
                self.trace(f"port forwarding: the server listens for -R {forward.describe()}")
                answered(True, port)
            else:
                answered(False, 0)
            return
        if not reply.ok:
            where = (
                f"path {forward.listen_path}"
                if forward.listen_path is not None
                else f"port {forward.listen_port}"
            )
            # ssh's words: fatal with ExitOnForwardFailure, else said and on we go
            if self.exit_on_failure:
                raise KeytoolError(f"remote port forwarding failed for listen {where}")
            self.say(f"Warning: remote port forwarding failed for listen {where}")
            return
        if forward.listen_path is not None:
            self._by_path[forward.listen_path] = forward
            self.trace(
                f"port forwarding: the server listens on {forward.listen_path}, "
                f"to {forward.target} here"
            )
            return
        port = forward.listen_port
        if port == 0:
            port = ch.allocated_port(reply)
            target = forward.target_path or f"{forward.host}:{forward.port}"
            if not self.quiet:
                self.announce(f"Allocated port {port} for remote forward to {target}")
        self._by_port[port] = forward
        self.trace(
            f"port forwarding: the server listens on {forward.request_address() or '*'} "
            f"port {port}, to {forward.target} here"
        )

"""What a client of the ControlMaster asks (``Multiplexer``'s fourth base): its
messages read with the descriptors it passes, the hello checked, each request served
(-O check, exit, stop, a session or -W once its descriptors are there) and -O forward /
-O cancel turned into the forward they name (``_forward_spec``) and added to or taken
from the connection's ``Forwards``; a malformed message drops that client alone."""

from __future__ import annotations

import os
import socket

from keytool import muxproto as mux
from keytool.errors import FormatError, KeytoolError
from keytool.forwardspec import (
    DynamicForward,
    LocalForward,
    RemoteDynamicForward,
    RemoteForward,
)
from keytool.muxmaster_clients import Control
from keytool.muxmaster_sessions import Sessions

# a client's messages and descriptors are read in pieces this large
_CONTROL_READ = 16 * 1024
# descriptors a client may have passed and not yet had taken (a session takes 3)
_MAX_PASSED = 8


class Requests(Sessions):
    """The clients' messages and requests."""

    def _read_control(self, control: Control) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(control.sock, _CONTROL_READ, 4)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(control)
            return
        control.fds.extend(fds)
        if len(control.fds) > _MAX_PASSED:  # more than any request takes: not a client
            self.say("connection sharing: a client passed too many descriptors; dropped")
            self._drop(control)
            return
        if not data:
            self._drop(control)
            return
        control.reader.feed(data)
        self._serve(control)

    def _serve(self, control: Control) -> None:
        """What the client sent and we have not yet acted on, taken now; a malformed
        message drops that client alone, with one line (as ssh's master)."""
        try:
            self._process(control)
        except FormatError as exc:
            self.say(f"connection sharing: a client sent {exc}; dropped")
            self._drop(control)

    def _process(self, control: Control) -> None:
        while control.sock.fileno() >= 0 and not control.closing:
            if control.waiting is not None:
                request = control.waiting
                count = request.descriptors
                if len(control.fds) < count:
                    return
                if not control.reader.take_markers(count):
                    return
                control.waiting = None
                fds, control.fds = control.fds[:count], control.fds[count:]
                self._start_session(control, request, fds)
                continue
            if control.paused:
                return
            body = control.reader.next()
            if body is None:
                return
            if not control.hello:
                hello = mux.parse_hello(body)
                if hello.version != mux.VERSION:
                    raise FormatError(f"mux protocol version {hello.version}, not {mux.VERSION}")
                control.hello = True
                continue
            self._request(control, mux.parse_request(body))

    def _request(self, control: Control, request: mux.Request) -> None:
        rid = request.request_id
        kind = request.kind
        if request.descriptors:
            control.waiting = request
        elif kind == mux.ALIVE_CHECK:
            self._reply(control, mux.value_reply(mux.S_ALIVE, rid, os.getpid()))
        elif kind == mux.TERMINATE:
            if self.ask is not None and not self.ask(
                f"Terminate shared connection to {self.host}? "
            ):
                self._reply(
                    control, mux.error_reply(mux.S_PERMISSION_DENIED, rid, "Permission denied")
                )
                return
            self.trace("connection sharing: a client asked the master to exit")
            self._reply(control, mux.ok_reply(rid))
            self._write_control(control)
            self.terminated = True
        elif kind == mux.STOP_LISTENING:
            self.trace("connection sharing: a client asked the master to stop listening")
            self._stop_mux_listener()
            self._reply(control, mux.ok_reply(rid))
        elif kind in (mux.OPEN_FWD, mux.CLOSE_FWD):
            assert isinstance(request.detail, mux.Forward)
            self._forward(control, rid, request.detail)
        else:
            reason = "proxy mode is not supported" if kind == mux.PROXY else "unsupported request"
            self._reply(control, mux.error_reply(mux.S_FAILURE, rid, reason))

    # ---- forwards asked for by a client (-O forward, -O cancel, and -L/-R/-D given
    #      with a session)

    def _forward(self, control: Control, rid: int, request: mux.Forward) -> None:
        try:
            forward = _forward_spec(request)
        except FormatError as exc:
            self._reply(control, mux.error_reply(mux.S_FAILURE, rid, str(exc)))
            return
        if request.close:
            if isinstance(forward, RemoteForward):
                found = self.forwards.cancel_remote(forward)
            else:
                found = self.forwards.cancel_local(forward)
            if found:
                self._reply(control, mux.ok_reply(rid))
            else:
                self._reply(control, mux.error_reply(mux.S_FAILURE, rid, "port not forwarded"))
            return
        if isinstance(forward, RemoteForward):

            def answered(ok: bool, port: int) -> None:
                if control.sock.fileno() < 0:
                    return
                if not ok:
                    where = forward.listen_path or f"port {forward.listen_port}"
                    reason = f"remote port forwarding failed for listen {where}"
                    self._reply(control, mux.error_reply(mux.S_FAILURE, rid, reason))
                elif forward.listen_port == 0 and forward.listen_path is None:
                    self._reply(control, mux.value_reply(mux.S_REMOTE_PORT, rid, port))
                else:
                    self._reply(control, mux.ok_reply(rid))

            self.forwards.add_remote(forward, answered)
            return
        try:
            self.forwards.add_local(forward)
        except KeytoolError as exc:
            self._reply(control, mux.error_reply(mux.S_FAILURE, rid, str(exc)))
            return
        self._reply(control, mux.ok_reply(rid))


def _forward_spec(request: mux.Forward) -> LocalForward:
    """The forward a client's OPEN_FWD or CLOSE_FWD names."""
    for name in (request.listen_host, request.connect_host):
        if "\0" in name:  # no host or socket path has one: the system's calls refuse it
            raise FormatError(f"a NUL byte in the forward's address {name!r}")
    listen_path = request.listen_host if request.listen_port == mux.PORT_STREAMLOCAL else None
    target_path = request.connect_host if request.connect_port == mux.PORT_STREAMLOCAL else None
    bind: str | None = None
    if listen_path is None:
        bind = request.listen_host or None
        if request.listen_port > 65535:
            raise FormatError(f"bad listen port {request.listen_port}")
    listen_port = 0 if listen_path is not None else request.listen_port
    if request.kind == mux.FWD_DYNAMIC:
        return DynamicForward(bind, listen_port, listen_path)
    if request.kind == mux.FWD_REMOTE and target_path is None and request.connect_port == 0:
        return _remote_dynamic(bind, listen_port, listen_path)
    if target_path is None and not 0 < request.connect_port < 65536:
        raise FormatError(f"bad connect port {request.connect_port}")
    host = "" if target_path is not None else request.connect_host
    port = 0 if target_path is not None else request.connect_port
    if request.kind == mux.FWD_REMOTE:
        return RemoteForward(bind, listen_port, host, port, listen_path, target_path)
    return LocalForward(bind, listen_port, host, port, listen_path, target_path)


def _remote_dynamic(bind: str | None, port: int, listen_path: str | None) -> RemoteForward:
    """A -R with no target (connect port 0; its host "socks" from ssh's client, or
    empty): a SOCKS proxy at the server's end."""
    if listen_path is not None:
        raise FormatError("a remote SOCKS forward listens on a port, not a socket path")
    return RemoteDynamicForward(bind, port)

"""The agent's request handler (pure) and the small asyncio Unix-socket server around it.

``handle_request(keyring, session, payload) -> Reply`` decides everything; the server only
frames messages, checks who connects, and applies a Reply's delay to that one connection.
Expensive or blocking work (RSA signatures, whose cost cryptography spends without the GIL;
confirmation prompts) runs in worker threads so one slow request never stalls the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import logging
import os
import socket
import struct
from dataclasses import dataclass, field

from agent.destinations import Binding, refusal, sign_refusal
from agent.keyring import Identity, Keyring
from keytool import agentproto as proto
from keytool.errors import KeytoolError
from keytool.keys.blob import public_from_wire
from keytool.keys.cert import Certificate, cert_name
from keytool.keys.fingerprint import fingerprint

log = logging.getLogger("keytool.agent")

# PROTOCOL.agent §1 leaves the number of binds open; OpenSSH keeps 16 per connection
MAX_BINDS = 16
MAX_SESSION_ID = 128  # ssh-agent's limit on a bound session identifier
EXTENSIONS = [proto.EXT_QUERY, proto.EXT_SESSION_BIND]
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True, slots=True)
class Reply:
    """What to answer, and how long to hold the answer back (after a wrong unlock);
    ``retry``: no answer yet, handle the request again after ``delay``."""

    payload: bytes
    delay: float = 0.0
    retry: bool = False


FAILURE = Reply(proto.FAILURE)
SUCCESS = Reply(proto.SUCCESS)
NO_IDENTITIES = Reply(proto.encode_identities([]))
FRAMED_FAILURE = proto.frame(proto.FAILURE)


@dataclass(slots=True, eq=False)
class Session:
    """Per-connection state: the peer and its session-bind@openssh.com bindings."""

    uid: int = -1
    pid: int = -1
    bindings: list[Binding] = field(default_factory=list)
    bind_attempted: bool = False  # a session-bind came, whether it succeeded or not

    @property
    def bind_failed(self) -> bool:
        return self.bind_attempted and not self.bindings

    def refusal(self, identity: Identity) -> str | None:
        """Why ``identity`` is hidden from this connection (its destination
        constraints), or None."""
        if not identity.destinations:
            return None
        return refusal(identity.destinations, self.bindings, self.bind_failed)


def describe(identity: Identity) -> str:
    """A key as logs and prompts show it: type, fingerprint, comment; never material.
    A certificate adds its key ID, serial and CA, as ssh-agent's debug log names them."""
    public = identity.key.public
    text = f"{public.label} {fingerprint(public)} ({identity.comment or 'no comment'})"
    if isinstance(public, Certificate):
        ca = public.ca
        text += (
            f" certificate ID {public.key_id!r} serial {public.serial}"
            f" signed by {ca.label} {fingerprint(ca)}"
        )
    return text


def handle_request(keyring: Keyring, session: Session, payload: bytes) -> Reply:
    """Answer one request payload. Never raises on malformed input: it answers FAILURE."""
    try:
        request = proto.decode_request(payload)
    except KeytoolError as exc:
        log.debug("refused a malformed request: %s", exc)
        return FAILURE
    return handle(keyring, session, request)


def handle(keyring: Keyring, session: Session, request: proto.Request) -> Reply:
    """Answer one decoded request."""
    try:
        if keyring.locked and not isinstance(request, proto.Unlock):
            # RFC 9987 §5.4: a locked agent lists nothing and refuses everything else
            if isinstance(request, proto.RequestIdentities):
                return NO_IDENTITIES
            return FAILURE
        if isinstance(request, proto.SignRequest):
            return _sign(keyring, session, request)
        if isinstance(request, proto.RequestIdentities):
            return Reply(identities_answer(keyring, session))
        if isinstance(request, proto.AddIdentity):
            return _add(keyring, session, request)
        if isinstance(request, proto.RemoveIdentity):
            return _remove(keyring, session, request.key_blob)
        if isinstance(request, proto.RemoveAllIdentities):
            log.info("removed all %d identities", keyring.remove_all())
            return SUCCESS
        if isinstance(request, proto.Lock):
            if keyring.lock(request.passphrase):
                log.info("agent locked")
                return SUCCESS
            return FAILURE
        if isinstance(request, proto.Unlock):
            result = keyring.unlock(request.passphrase)
            if result.ok:
                log.info("agent unlocked")
                return SUCCESS
            if result.deferred:
                return Reply(b"", result.delay, retry=True)
            log.info("unlock refused; client held back %.1fs", result.delay)
            return Reply(proto.FAILURE, result.delay)
        if isinstance(request, proto.Extension):
            return _extension(session, request)
        if isinstance(request, proto.SmartcardRequest):
            log.info("refused a PKCS#11 request: this agent loads no provider code")
            return FAILURE
        log.debug("unknown request type %d", request.kind)
        return FAILURE
    except KeytoolError as exc:
        log.debug("request failed: %s", exc)
        return FAILURE


def identities_answer(keyring: Keyring, session: Session) -> bytes:
    """IDENTITIES_ANSWER for this connection: every key, except on a bound connection
    (or one whose bind failed) the keys its destination constraints hide."""
    if not keyring.any_destinations or not session.bind_attempted:
        return keyring.identities_answer()
    shown = []
    for identity in keyring.identities():
        why = session.refusal(identity)
        if why is not None:
            log.info("not listing %s: %s", describe(identity), why)
            continue
        shown.append(proto.Identity(identity.blob, identity.comment))
    return proto.encode_identities(shown)


def _describe_destinations(identity: Identity) -> str:
    if not identity.destinations:
        return ""
    return " restricted to " + ", ".join(d.describe() for d in identity.destinations)


def _add(keyring: Keyring, session: Session, request: proto.AddIdentity) -> Reply:
    c = request.constraints
    old = keyring.find(request.key.public.to_wire())
    if old is not None:
        why = session.refusal(old)
        if why is not None:
            # a key this connection cannot see is not replaced through it either
            log.info("refused to replace %s: %s", describe(old), why)
            return FAILURE
    identity = keyring.add(request.key, request.comment, c.lifetime, c.confirm, c.destinations)
    log.info(
        "added %s%s%s",
        describe(identity),
        " (confirm)" if c.confirm else "",
        _describe_destinations(identity),
    )
    return SUCCESS


def _remove(keyring: Keyring, session: Session, blob: bytes) -> Reply:
    identity = keyring.find(blob)
    if identity is None:
        return FAILURE
    why = session.refusal(identity)
    if why is not None:
        log.info("refused to remove %s: %s", describe(identity), why)
        return FAILURE
    return SUCCESS if keyring.remove(blob) else FAILURE


def _sign(keyring: Keyring, session: Session, request: proto.SignRequest) -> Reply:
    identity = keyring.find(request.key_blob)
    if identity is None:
        return FAILURE
    allowed, destination = destination_check(session, identity, request)
    if not allowed:
        return FAILURE
    framed = sign_framed(keyring, identity, request, destination)
    return Reply(framed[4:])


def destination_check(
    session: Session, identity: Identity, request: proto.SignRequest
) -> tuple[bool, str | None]:
    """May ``identity`` sign this request on this connection (its destination
    constraints)? With, for a constrained key, what the signature is for."""
    if not identity.destinations:
        return True, None
    why, user = sign_refusal(
        identity.destinations,
        session.bindings,
        session.bind_failed,
        identity.key.public,
        request.data,
    )
    if why is not None:
        log.info("refused to sign with %s: %s", describe(identity), why)
        return False, None
    return True, f'public key authentication request for user "{user}" to listed host'


def sign_framed(
    keyring: Keyring,
    identity: Identity,
    request: proto.SignRequest,
    destination: str | None = None,
) -> bytes:
    """The framed answer to a sign request for ``identity``: a signature, or FAILURE when
    the user does not confirm. Safe in a worker thread: it changes nothing.
    ``destination`` describes where a destination-constrained key signs (for the prompt)."""
    if identity.confirm and not confirmed(keyring, identity, destination):
        return FRAMED_FAILURE
    return signed_framed(identity, request)


def confirmed(keyring: Keyring, identity: Identity, destination: str | None = None) -> bool:
    """Does the user allow this use of a confirm-constrained key? Waits for a human:
    meant for a worker thread, and it changes nothing."""
    fp = fingerprint(identity.key.public, keyring.fingerprint_hash)
    prompt = f"Allow use of key {identity.comment}?\nKey fingerprint {fp}."
    if destination is not None:
        prompt += f"\n{destination}"
    if keyring.confirm is None or not keyring.confirm(prompt):
        log.info("confirmation refused for %s", describe(identity))
        return False
    return True


def still_signs(keyring: Keyring, identity: Identity) -> bool:
    """After a confirmation that took a while: may ``identity`` still sign? Not once
    the agent was locked, or the key removed, expired or re-added with other
    constraints meanwhile: ssh-agent answers one request at a time, so with it a lock
    or a removal that was answered always came after the signature."""
    if keyring.locked:
        return False
    current = keyring.find(identity.blob)
    if current is None:
        return False
    return current is identity or (
        current.confirm == identity.confirm and current.destinations == identity.destinations
    )


def signed_framed(identity: Identity, request: proto.SignRequest) -> bytes:
    """The framed signature of the request's data by ``identity``, confirmed or not
    needing it. Safe in a worker thread: it changes nothing."""
    algorithm = proto.rsa_algorithm(request.flags) if identity.is_rsa else None
    signature = identity.key.sign(request.data, algorithm)
    if log.isEnabledFor(logging.DEBUG):
        name = algorithm or identity.key.public.key_type
        if isinstance(identity.key.public, Certificate):
            name = cert_name(name)
        log.debug("signed %d bytes with %s, %s", len(request.data), name, describe(identity))
    return proto.framed_sign_response(signature)


def _extension(session: Session, request: proto.Extension) -> Reply:
    if request.name == proto.EXT_QUERY:
        return Reply(proto.encode_query_response(EXTENSIONS))
    if request.name == proto.EXT_SESSION_BIND:
        return _session_bind(session, request.contents)
    # RFC 9987 §5.8: an extension the agent does not know gets a plain FAILURE
    return FAILURE


def _session_bind(session: Session, contents: bytes) -> Reply:
    """PROTOCOL.agent §1: verify the host key's signature over the session identifier
    and record the binding, as ssh-agent does (a failed attempt is remembered: a
    destination-constrained key is then unusable on this connection)."""
    session.bind_attempted = True
    bind = proto.SessionBind.from_wire(contents)
    if len(bind.session_id) > MAX_SESSION_ID:
        log.info("session-bind refused: session identifier too long")
        return FAILURE
    host_key = public_from_wire(bind.host_key)
    if not host_key.verify(bind.signature, bind.session_id):
        log.info("session-bind refused: bad host key signature")
        return FAILURE
    for old in session.bindings:
        if not old.is_forwarding:
            # a connection bound for user authentication stays bound to that session
            log.info("session-bind refused: connection already bound for authentication")
            return FAILURE
        if hmac.compare_digest(old.session_id, bind.session_id):
            if old.key == host_key:
                log.debug("session-bind: already bound to %s", fingerprint(host_key))
                return SUCCESS
            log.info("session-bind refused: session identifier bound to another host key")
            return FAILURE
    if len(session.bindings) >= MAX_BINDS:
        log.info("session-bind refused: more than %d bindings", MAX_BINDS)
        return FAILURE
    session.bindings.append(Binding(host_key, bind.session_id, bind.is_forwarding))
    log.debug("session bound to %s (forwarding: %s)", fingerprint(host_key), bind.is_forwarding)
    return SUCCESS


# ---------------------------------------------------------------------------
# The asyncio adapter
#
# Connections are plain non-blocking sockets watched with loop.add_reader/add_writer:
# asyncio's transports cost a task per accepted connection and a few layers per message,
# which is most of the work on this path once signing is cheap.

RECV_SIZE = 256 * 1024
ACCEPT_BATCH = 64  # connections accepted per wake-up, so a flood cannot starve the rest


class _Connection:
    """One client. Requests are answered in order; while one is in progress (in a worker
    thread, or held back after a wrong unlock) or its answers are not being read, reading
    from this client stops, so its buffers stay bounded."""

    __slots__ = (
        "_buffer",
        "_busy",
        "_closed",
        "_fd",
        "_loop",
        "_out",
        "_reading",
        "_server",
        "_session",
        "_sock",
    )

    def __init__(self, server: AgentServer, sock: socket.socket, session: Session) -> None:
        self._server = server
        self._loop = server.loop
        self._sock = sock
        self._fd = sock.fileno()
        self._session = session
        self._buffer = bytearray()
        self._out = bytearray()  # answer bytes the socket did not take yet
        self._busy = False
        self._closed = False
        self._reading = False
        server.connections.add(self)
        self._resume()

    def _resume(self) -> None:
        if not self._reading and not self._closed:
            self._reading = True
            self._loop.add_reader(self._fd, self._readable)

    def _pause(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def close(self) -> None:
        if self._closed:
            return
        self._pause()
        if self._out:
            self._loop.remove_writer(self._fd)
        self._closed = True
        self._sock.close()
        self._server.connections.discard(self)

    def _drop(self, why: str) -> None:
        log.info("dropped client pid %d: %s", self._session.pid, why)
        self.close()

    def _readable(self) -> None:
        try:
            data = self._sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not data:
            # EOF: a message cut short dies with its connection
            self.close()
            return
        if not self._buffer and len(data) > 4:
            # the common case: exactly one whole message, used without copying
            length = proto.LENGTH.unpack_from(data)[0]
            if len(data) == 4 + length and length <= proto.MAX_MESSAGE:
                self._dispatch(data[4:])
                return
        self._buffer += data
        self._process()

    def _process(self) -> None:
        buffer = self._buffer
        # one answer at a time: while the client has not taken the last one, the
        # requests it already sent wait unanswered (and unread ones stay in the socket)
        while not self._busy and not self._closed and not self._out and len(buffer) >= 4:
            length = proto.LENGTH.unpack_from(buffer)[0]
            # the cap is checked on the length alone, before any of the body is kept
            if length > proto.MAX_MESSAGE or length == 0:
                self._drop(f"message of {length} bytes")
                return
            if len(buffer) < 4 + length:
                return
            payload = bytes(buffer[4 : 4 + length])
            del buffer[: 4 + length]
            self._dispatch(payload)

    def _dispatch(self, payload: bytes) -> None:
        """Answer one request. Whatever goes wrong in answering costs this answer (a
        failure, as ssh-agent always answers) and one line in the log, never the
        client's connection nor the daemon."""
        try:
            self._answer(payload)
        except Exception as exc:
            # the type alone: a message could quote what the request carried
            what = "out of memory" if isinstance(exc, MemoryError) else type(exc).__name__
            log.error(
                "request type %d from client pid %d failed (internal error: %s); "
                "answered with a failure",
                payload[0],
                self._session.pid,
                what,
            )
            if self._busy:  # it waits for nothing now: nothing else would end the wait
                self._busy = False
                if not self._out:
                    self._resume()
            self._send(FRAMED_FAILURE)

    def _answer(self, payload: bytes) -> None:
        server = self._server
        keyring = server.keyring
        if payload[0] == proto.SSH_AGENTC_SIGN_REQUEST and not keyring.locked:
            # the hot path, kept free of everything the general handler does
            try:
                request = proto.decode_sign_request(payload)
            except KeytoolError:
                self._send(FRAMED_FAILURE)
                return
            identity = keyring.find(request.key_blob)
            if identity is None:
                self._send(FRAMED_FAILURE)
                return
            destination = None
            if identity.destinations:
                allowed, destination = destination_check(self._session, identity, request)
                if not allowed:
                    self._send(FRAMED_FAILURE)
                    return
            if identity.confirm:
                # a confirmation waits for a human: never on the event loop
                self._begin_wait()
                asked = server.confirm_pool.submit(confirmed, keyring, identity, destination)
                asked.add_done_callback(lambda done: self._confirm_done(done, identity, request))
                return
            self._sign(identity, request)
            return
        reply = handle_request(keyring, self._session, payload)
        if reply.retry:
            # an unlock while a wrong one's delay runs: checked once it is over
            self._begin_wait()
            self._loop.call_later(reply.delay, self._retry, payload)
            return
        if payload[0] in server.CHANGES_KEYS:
            server.arm_expiry()
        framed = proto.frame(reply.payload)
        if reply.delay > 0:
            # hold back only this client; everybody else keeps being served
            self._begin_wait()
            self._loop.call_later(reply.delay, self._answer_late, framed)
            return
        self._send(framed)

    def _begin_wait(self) -> None:
        self._busy = True
        self._pause()

    def _end_wait(self) -> None:
        self._busy = False
        if self._closed:
            return
        if not self._out:
            self._resume()
        self._process()

    def _answer_late(self, framed: bytes) -> None:
        self._send(framed)
        self._end_wait()

    def _retry(self, payload: bytes) -> None:
        self._busy = False
        if self._closed:
            return
        self._dispatch(payload)
        if not self._busy:
            self._end_wait()

    def _sign(self, identity: Identity, request: proto.SignRequest) -> None:
        """Answer with the signature, an RSA one in a worker thread (RSA signing
        releases the GIL: worker threads use every core)."""
        pool = self._server.sign_pool if identity.is_rsa else None
        if pool is None:
            self._send(signed_framed(identity, request))
            return
        self._begin_wait()
        future = pool.submit(signed_framed, identity, request)
        future.add_done_callback(self._threaded_done)

    def _confirm_done(
        self,
        future: concurrent.futures.Future[bool],
        identity: Identity,
        request: proto.SignRequest,
    ) -> None:
        # runs in the worker thread: the answer is decided on the event loop
        with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
            self._loop.call_soon_threadsafe(self._finish_confirm, future, identity, request)

    def _finish_confirm(
        self,
        future: concurrent.futures.Future[bool],
        identity: Identity,
        request: proto.SignRequest,
    ) -> None:
        try:
            allowed = future.result()
        except Exception:  # a bug in asking must cost this answer, not the daemon
            log.exception("confirmation failed")
            allowed = False
        self._busy = False
        if allowed and not still_signs(self._server.keyring, identity):
            log.info("refused to sign with %s: locked or changed meanwhile", describe(identity))
            allowed = False
        if not allowed:
            self._send(FRAMED_FAILURE)
        else:
            try:
                self._sign(identity, request)
            except Exception:
                log.exception("signing failed")
                self._send(FRAMED_FAILURE)
        if not self._busy:
            self._end_wait()

    def _threaded_done(self, future: concurrent.futures.Future[bytes]) -> None:
        # runs in the worker thread: hand the answer to the event loop
        with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
            self._loop.call_soon_threadsafe(self._finish_threaded, future)

    def _finish_threaded(self, future: concurrent.futures.Future[bytes]) -> None:
        try:
            framed = future.result()
        except Exception:  # a bug in signing must cost this answer, not the daemon
            log.exception("signing failed")
            framed = FRAMED_FAILURE
        self._send(framed)
        self._end_wait()

    def _send(self, framed: bytes) -> None:
        if self._closed:
            return
        if self._out:
            self._out += framed
            return
        try:
            sent = self._sock.send(framed)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(framed):
            # the client is not reading its answers: stop reading its requests until
            # it has taken them
            self._out += framed[sent:]
            self._pause()
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del self._out[:sent]
        if not self._out:
            self._loop.remove_writer(self._fd)
            if not self._busy:
                self._resume()
                self._process()


def _peer(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end (SO_PEERCRED); (-1, -1) if unknown."""
    try:
        pid, uid, _gid = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
    except OSError:
        return -1, -1
    return pid, uid


class AgentServer:
    """Serves ``keyring`` on a listening Unix socket."""

    CHANGES_KEYS = frozenset(
        (
            proto.SSH_AGENTC_ADD_IDENTITY,
            proto.SSH_AGENTC_ADD_ID_CONSTRAINED,
            proto.SSH_AGENTC_REMOVE_IDENTITY,
            proto.SSH_AGENTC_REMOVE_ALL_IDENTITIES,
            proto.SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES,
        )
    )

    def __init__(
        self,
        keyring: Keyring,
        sock: socket.socket,
        sign_threads: int | None = None,
    ) -> None:
        self.keyring = keyring
        self.sock = sock
        self.uid = os.geteuid()
        self.connections: set[_Connection] = set()
        cpus = os.cpu_count() or 1
        # one core: a thread hand-off only adds work
        threads = sign_threads if sign_threads is not None else (cpus if cpus > 1 else 0)
        self.sign_pool = (
            concurrent.futures.ThreadPoolExecutor(threads, "keytool-sign") if threads else None
        )
        self.confirm_pool = concurrent.futures.ThreadPoolExecutor(4, "keytool-confirm")
        self._expiry: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._accepting = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = self._loop.create_future()
        self.sock.setblocking(False)
        self.sock.listen(1024)
        self._start_accepting()
        self.arm_expiry()

    async def serve_forever(self) -> None:
        if self._loop is None:
            await self.start()
        assert self._stopped is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._stopped

    def _start_accepting(self) -> None:
        if not self._accepting and self._loop is not None and self.sock.fileno() >= 0:
            self._accepting = True
            self._loop.add_reader(self.sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # out of file descriptors: stop accepting for a moment instead of spinning
                log.warning("cannot accept a connection: %s", exc.strerror or exc)
                self.loop.remove_reader(self.sock.fileno())
                self._accepting = False
                self.loop.call_later(0.5, self._start_accepting)
                return
            pid, uid = _peer(conn)
            if uid != 0 and uid != self.uid:
                log.warning("refused a connection from uid %d (pid %d)", uid, pid)
                conn.close()
                continue
            conn.setblocking(False)
            _Connection(self, conn, Session(uid, pid))

    def arm_expiry(self) -> None:
        """Drop expired keys on time, even when nobody asks the agent anything."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        when = self.keyring.next_expiry
        if when is None or self._loop is None:
            return
        delay = max(0.0, when - self.keyring.clock())
        self._expiry = self._loop.call_later(delay, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        before = len(self.keyring)
        self.keyring.expire()
        if len(self.keyring) != before:
            log.info("%d identities expired", before - len(self.keyring))
        self.arm_expiry()

    def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self._accepting and self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            self._accepting = False
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        for connection in list(self.connections):
            connection.close()
        for pool in (self.sign_pool, self.confirm_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

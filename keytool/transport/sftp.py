"""An SFTP version 3 client subset (draft-ietf-secsh-filexfer-02), without I/O, and a
small async wrapper over any byte stream (an SSH "sftp" subsystem channel).

What copy-id needs: open/read/write/close, stat/lstat/fstat, mkdir, setstat (mode),
rename (posix-rename@openssh.com when the server offers it), remove, realpath, and
fsync@openssh.com so a file renamed into place is on disk first.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from keytool.display import logged, shown
from keytool.errors import FormatError, ProtocolError, SftpError
from keytool.wire import Reader, Writer

VERSION = 3

# §3: packet types
FXP_INIT = 1
FXP_VERSION = 2
FXP_OPEN = 3
FXP_CLOSE = 4
FXP_READ = 5
FXP_WRITE = 6
FXP_LSTAT = 7
FXP_FSTAT = 8
FXP_SETSTAT = 9
FXP_FSETSTAT = 10
FXP_REMOVE = 13
FXP_MKDIR = 14
FXP_RMDIR = 15
FXP_REALPATH = 16
FXP_STAT = 17
FXP_RENAME = 18
FXP_STATUS = 101
FXP_HANDLE = 102
FXP_DATA = 103
FXP_NAME = 104
FXP_ATTRS = 105
FXP_EXTENDED = 200
FXP_EXTENDED_REPLY = 201

# §6.3: open flags
FXF_READ = 0x01
FXF_WRITE = 0x02
FXF_APPEND = 0x04
FXF_CREAT = 0x08
FXF_TRUNC = 0x10
FXF_EXCL = 0x20

# §5: attribute flags
ATTR_SIZE = 0x01
ATTR_UIDGID = 0x02
ATTR_PERMISSIONS = 0x04
ATTR_ACMODTIME = 0x08
ATTR_EXTENDED = 0x80000000

# §7: status codes
FX_OK = 0
FX_EOF = 1
FX_NO_SUCH_FILE = 2
FX_PERMISSION_DENIED = 3
FX_FAILURE = 4
FX_BAD_MESSAGE = 5
FX_OP_UNSUPPORTED = 8

STATUS_NAMES = {
    FX_OK: "ok",
    FX_EOF: "end of file",
    FX_NO_SUCH_FILE: "no such file",
    FX_PERMISSION_DENIED: "permission denied",
    FX_FAILURE: "failure",
    FX_BAD_MESSAGE: "bad message",
    6: "no connection",
    7: "connection lost",
    FX_OP_UNSUPPORTED: "operation unsupported",
}

POSIX_RENAME = "posix-rename@openssh.com"
FSYNC = "fsync@openssh.com"

# OpenSSH's sftp-server takes messages up to 256 KiB (SFTP_MAX_MSG_LENGTH); a larger
# length field is a broken or hostile server, not a big reply
MAX_PACKET = 256 * 1024 + 1024
# the read and write size every server handles (OpenSSH's client default)
CHUNK = 32 * 1024
_U32 = struct.Struct(">I")


# ---------------------------------------------------------------- attributes


@dataclass(frozen=True, slots=True)
class Attributes:
    """File attributes (§5); None where the server did not say."""

    size: int | None = None
    uid: int | None = None
    gid: int | None = None
    permissions: int | None = None
    atime: int | None = None
    mtime: int | None = None

    def to_wire(self) -> bytes:
        flags = 0
        out = Writer()
        if self.size is not None:
            flags |= ATTR_SIZE
            out.uint64(self.size)
        if self.uid is not None and self.gid is not None:
            flags |= ATTR_UIDGID
            out.uint32(self.uid).uint32(self.gid)
        if self.permissions is not None:
            flags |= ATTR_PERMISSIONS
            out.uint32(self.permissions)
        if self.atime is not None and self.mtime is not None:
            flags |= ATTR_ACMODTIME
            out.uint32(self.atime).uint32(self.mtime)
        return _U32.pack(flags) + out.getvalue()

    @classmethod
    def from_reader(cls, r: Reader) -> Attributes:
        flags = r.uint32()
        size = r.uint64() if flags & ATTR_SIZE else None
        uid = gid = None
        if flags & ATTR_UIDGID:
            uid, gid = r.uint32(), r.uint32()
        permissions = r.uint32() if flags & ATTR_PERMISSIONS else None
        atime = mtime = None
        if flags & ATTR_ACMODTIME:
            atime, mtime = r.uint32(), r.uint32()
        if flags & ATTR_EXTENDED:
            for _ in range(r.uint32()):
                r.string()
                r.string()
        return cls(size, uid, gid, permissions, atime, mtime)

    @property
    def is_dir(self) -> bool:
        return self.permissions is not None and (self.permissions & 0o170000) == 0o040000

    @property
    def is_regular(self) -> bool:
        return self.permissions is not None and (self.permissions & 0o170000) == 0o100000


# ---------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    extensions: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class Status:
    request_id: int
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class Handle:
    request_id: int
    handle: bytes


@dataclass(frozen=True, slots=True)
class Data:
    request_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Name:
    request_id: int
    names: tuple[tuple[str, str, Attributes], ...]  # filename, longname, attributes


@dataclass(frozen=True, slots=True)
class Attrs:
    request_id: int
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class ExtendedReply:
    request_id: int
    data: bytes


Reply = Status | Handle | Data | Name | Attrs | ExtendedReply


def _path(path: str | bytes) -> bytes:
    # a name that is not UTF-8 (kept as surrogate escapes) goes as the bytes it was
    return path.encode("utf-8", "surrogateescape") if isinstance(path, str) else path


def _name(r: Reader) -> str:
    """A file name the server sent: any bytes (§7), those that are not UTF-8 kept as
    surrogate escapes, so that naming the file back sends the same bytes."""
    return r.string().decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------- the sans-IO client


class SftpClient:
    """Requests become bytes in one outbox; bytes from the server become replies.

    Each request method returns its request id; replies carry it back (§3)."""

    __slots__ = ("_buffer", "_next_id", "_outbox", "_pending", "extensions", "version")

    def __init__(self) -> None:
        self._outbox: list[bytes] = []
        self._buffer = bytearray()
        self._next_id = 1
        self._pending: dict[int, int] = {}  # request id -> packet type
        self.version: int | None = None
        self.extensions: dict[str, bytes] = {}
        # §4: uint32 version; no extensions from the client
        self._packet(FXP_INIT, _U32.pack(VERSION))

    def data_to_send(self) -> bytes:
        out = b"".join(self._outbox)
        self._outbox.clear()
        return out

    def _packet(self, kind: int, body: bytes) -> None:
        # §3: uint32 length, byte type, then the body
        self._outbox.append(_U32.pack(len(body) + 1) + bytes((kind,)) + body)

    def _request(self, kind: int, body: bytes) -> int:
        if self.version is None:
            raise ProtocolError("SFTP request before the server's version")
        request_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF or 1
        self._pending[request_id] = kind
        self._packet(kind, _U32.pack(request_id) + body)
        return request_id

    # ---- requests (§6)

    def open(self, path: str | bytes, flags: int, attributes: Attributes | None = None) -> int:
        body = (
            Writer().string(_path(path)).uint32(flags).raw((attributes or Attributes()).to_wire())
        )
        return self._request(FXP_OPEN, body.getvalue())

    def close(self, handle: bytes) -> int:
        return self._request(FXP_CLOSE, Writer().string(handle).getvalue())

    def read(self, handle: bytes, offset: int, length: int) -> int:
        return self._request(
            FXP_READ, Writer().string(handle).uint64(offset).uint32(length).getvalue()
        )

    def write(self, handle: bytes, offset: int, data: bytes) -> int:
        return self._request(
            FXP_WRITE, Writer().string(handle).uint64(offset).string(data).getvalue()
        )

    def stat(self, path: str | bytes) -> int:
        return self._request(FXP_STAT, Writer().string(_path(path)).getvalue())

    def lstat(self, path: str | bytes) -> int:
        return self._request(FXP_LSTAT, Writer().string(_path(path)).getvalue())

    def fstat(self, handle: bytes) -> int:
        return self._request(FXP_FSTAT, Writer().string(handle).getvalue())

    def setstat(self, path: str | bytes, attributes: Attributes) -> int:
        return self._request(
            FXP_SETSTAT, Writer().string(_path(path)).raw(attributes.to_wire()).getvalue()
        )

    def fsetstat(self, handle: bytes, attributes: Attributes) -> int:
        return self._request(
            FXP_FSETSTAT, Writer().string(handle).raw(attributes.to_wire()).getvalue()
        )

    def mkdir(self, path: str | bytes, attributes: Attributes | None = None) -> int:
        body = Writer().string(_path(path)).raw((attributes or Attributes()).to_wire())
        return self._request(FXP_MKDIR, body.getvalue())

    def rmdir(self, path: str | bytes) -> int:
        return self._request(FXP_RMDIR, Writer().string(_path(path)).getvalue())

    def remove(self, path: str | bytes) -> int:
        return self._request(FXP_REMOVE, Writer().string(_path(path)).getvalue())

    def realpath(self, path: str | bytes) -> int:
        return self._request(FXP_REALPATH, Writer().string(_path(path)).getvalue())

    def rename(self, old: str | bytes, new: str | bytes) -> int:
        """Rename; over an existing target only with posix-rename@openssh.com, which this
        uses when the server offered it (plain v3 RENAME refuses to replace, §6.5)."""
        if POSIX_RENAME in self.extensions:
            body = Writer().string(POSIX_RENAME).string(_path(old)).string(_path(new))
            return self._request(FXP_EXTENDED, body.getvalue())
        return self._request(FXP_RENAME, Writer().string(_path(old)).string(_path(new)).getvalue())

    def fsync(self, handle: bytes) -> int | None:
        """fsync@openssh.com (PROTOCOL.sftp); None when the server does not offer it."""
        if FSYNC not in self.extensions:
            return None
        return self._request(FXP_EXTENDED, Writer().string(FSYNC).string(handle).getvalue())

    # ---- replies (§7)

    def receive_data(self, data: bytes) -> list[Version | Reply]:
        self._buffer += data
        replies: list[Version | Reply] = []
        while len(self._buffer) >= 4:
            (length,) = _U32.unpack_from(self._buffer)
            if length < 1 or length > MAX_PACKET:
                start = bytes(self._buffer[:4])
                if all(32 <= b < 127 for b in start):
                    # text, not a length: the remote shell's start-up files printed it
                    # before the SFTP server began (as sftp explains it)
                    shown = start.decode("ascii")
                    raise ProtocolError(
                        f"SFTP: the server sent text ({shown!r}...) where a packet was due: "
                        "make the remote shell print nothing for non-interactive sessions"
                    )
                raise ProtocolError(f"SFTP packet of {length} bytes")
            if len(self._buffer) < 4 + length:
                break
            packet = bytes(self._buffer[4 : 4 + length])
            del self._buffer[: 4 + length]
            try:
                replies.append(self._parse(packet))
            except FormatError as exc:
                raise ProtocolError(f"malformed SFTP reply: {exc}") from None
        return replies

    def _parse(self, packet: bytes) -> Version | Reply:
        r = Reader(packet, "SFTP reply")
        kind = r.byte()
        if self.version is None:
            if kind != FXP_VERSION:
                raise ProtocolError(f"SFTP server sent type {kind} before its version")
            version = r.uint32()
            if version < VERSION:
                raise ProtocolError(f"SFTP server speaks version {version}, we need 3")
            extensions: dict[str, bytes] = {}
            while r.remaining:
                name = r.ascii()
                extensions[name] = r.string()
            self.version, self.extensions = VERSION, extensions
            return Version(version, extensions)
        request_id = r.uint32()
        request = self._pending.pop(request_id, None)
        if request is None:
            raise ProtocolError(f"SFTP reply to request {request_id}, which we did not send")
        reply: Reply
        if kind == FXP_STATUS:
            # §7: uint32 error code, string message, string language (often absent in v3)
            code = r.uint32()
            message = ""
            if r.remaining:
                # words for a person: any bytes, escaped as ssh logs a peer's words
                # (sftp itself shows only the code's name)
                message = r.peer_text()
                r.string()
            reply = Status(request_id, code, logged(message, 300))
        elif kind == FXP_HANDLE:
            reply = Handle(request_id, r.string())
        elif kind == FXP_DATA:
            reply = Data(request_id, r.string())
        elif kind == FXP_NAME:
            count = r.uint32()
            if count * 12 > r.remaining:
                raise ProtocolError(f"SFTP name reply claims {count} names")
            names = []
            for _ in range(count):
                names.append((_name(r), _name(r), Attributes.from_reader(r)))
            reply = Name(request_id, tuple(names))
        elif kind == FXP_ATTRS:
            reply = Attrs(request_id, Attributes.from_reader(r))
        elif kind == FXP_EXTENDED_REPLY:
            reply = ExtendedReply(request_id, r.rest())
        else:
            raise ProtocolError(f"unexpected SFTP reply type {kind}")
        r.done()
        return reply


# ---------------------------------------------------------------- async wrapper

#: ``await send(data)`` writes to the channel; ``await receive()`` returns the next bytes,
#: b"" at EOF, and raises TimedOut on its own
Send = Callable[[bytes], Awaitable[None]]
Receive = Callable[[], Awaitable[bytes]]


def status_error(status: Status, what: str) -> SftpError:
    name = STATUS_NAMES.get(status.code, f"error {status.code}")
    detail = f" ({status.message})" if status.message and status.message.lower() != name else ""
    return SftpError(f"{what}: {name}{detail}", status.code)


class Sftp:
    """Async SFTP over a byte stream; requests may run concurrently from several tasks."""

    def __init__(
        self, send: Send, receive: Receive, close: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._send = send
        self._receive = receive
        self._close = close
        self.client = SftpClient()
        self._replies: dict[int, Reply] = {}
        self._reading = asyncio.Lock()

    async def start(self) -> None:
        """Send INIT and wait for VERSION (§4)."""
        await self._send(self.client.data_to_send())
        while self.client.version is None:
            await self._read_some()

    @property
    def extensions(self) -> dict[str, bytes]:
        return self.client.extensions

    async def aclose(self) -> None:
        """End the session (closes the channel it runs on)."""
        if self._close is not None:
            await self._close()

    async def __aenter__(self) -> Sftp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _read_some(self) -> None:
        data = await self._receive()
        if not data:
            raise ProtocolError("the SFTP server closed the channel")
        for reply in self.client.receive_data(data):
            if not isinstance(reply, Version):
                self._replies[reply.request_id] = reply

    async def _call(self, request_id: int) -> Reply:
        await self._send(self.client.data_to_send())
        while request_id not in self._replies:
            async with self._reading:
                if request_id not in self._replies:
                    await self._read_some()
        return self._replies.pop(request_id)

    async def _status(self, request_id: int, what: str) -> None:
        reply = await self._call(request_id)
        if not isinstance(reply, Status):
            raise ProtocolError(f"{what}: unexpected SFTP reply {type(reply).__name__}")
        if reply.code != FX_OK:
            raise status_error(reply, what)

    async def open(self, path: str, flags: int, attributes: Attributes | None = None) -> bytes:
        reply = await self._call(self.client.open(path, flags, attributes))
        if isinstance(reply, Status):
            raise status_error(reply, f"open {shown(path)}")
        if not isinstance(reply, Handle):
            raise ProtocolError(f"open {shown(path)}: unexpected SFTP reply {type(reply).__name__}")
        return reply.handle

    async def close(self, handle: bytes) -> None:
        await self._status(self.client.close(handle), "close")

    async def read(self, handle: bytes, offset: int, length: int = CHUNK) -> bytes:
        """Up to ``length`` bytes at ``offset``; b"" at end of file."""
        reply = await self._call(self.client.read(handle, offset, length))
        if isinstance(reply, Status):
            if reply.code == FX_EOF:
                return b""
            raise status_error(reply, "read")
        if not isinstance(reply, Data):
            raise ProtocolError(f"read: unexpected SFTP reply {type(reply).__name__}")
        if len(reply.data) > length:
            raise ProtocolError("the SFTP server returned more than was asked for")
        if not reply.data and length:
            raise ProtocolError("read: empty SFTP data reply (no byte and no EOF)")
        return reply.data

    async def write(self, handle: bytes, offset: int, data: bytes) -> None:
        await self._status(self.client.write(handle, offset, data), "write")

    async def _attrs(self, request_id: int, what: str) -> Attributes:
        reply = await self._call(request_id)
        if isinstance(reply, Status):
            raise status_error(reply, what)
        if not isinstance(reply, Attrs):
            raise ProtocolError(f"{what}: unexpected SFTP reply {type(reply).__name__}")
        return reply.attributes

    async def stat(self, path: str) -> Attributes:
        return await self._attrs(self.client.stat(path), f"stat {shown(path)}")

    async def lstat(self, path: str) -> Attributes:
        return await self._attrs(self.client.lstat(path), f"lstat {shown(path)}")

    async def fstat(self, handle: bytes) -> Attributes:
        return await self._attrs(self.client.fstat(handle), "fstat")

    async def exists(self, path: str) -> Attributes | None:
        """stat, or None when there is no such file."""
        try:
            return await self.stat(path)
        except SftpError as exc:
            if exc.code == FX_NO_SUCH_FILE:
                return None
            raise

    async def setstat(self, path: str, attributes: Attributes) -> None:
        await self._status(self.client.setstat(path, attributes), f"setstat {shown(path)}")

    async def chmod(self, path: str, mode: int) -> None:
        await self.setstat(path, Attributes(permissions=mode))

    async def mkdir(self, path: str, mode: int | None = None) -> None:
        await self._status(
            self.client.mkdir(path, Attributes(permissions=mode)), f"mkdir {shown(path)}"
        )

    async def rmdir(self, path: str) -> None:
        await self._status(self.client.rmdir(path), f"rmdir {shown(path)}")

    async def remove(self, path: str) -> None:
        await self._status(self.client.remove(path), f"remove {shown(path)}")

    async def rename(self, old: str, new: str) -> None:
        await self._status(self.client.rename(old, new), f"rename {shown(old)} to {shown(new)}")

    async def fsync(self, handle: bytes) -> bool:
        """fsync@openssh.com when offered; False when the server has no such extension."""
        request_id = self.client.fsync(handle)
        if request_id is None:
            return False
        await self._status(request_id, "fsync")
        return True

    async def realpath(self, path: str) -> str:
        reply = await self._call(self.client.realpath(path))
        if isinstance(reply, Status):
            raise status_error(reply, f"realpath {shown(path)}")
        if not isinstance(reply, Name) or len(reply.names) != 1:
            raise ProtocolError(f"realpath {shown(path)}: unexpected SFTP reply")
        return reply.names[0][0]

    # ---- whole files

    async def read_file(self, path: str, limit: int = 64 * 1024 * 1024) -> bytes:
        """The whole file, with several reads in flight. A short read (allowed by §6.4
        anywhere) makes the later replies of that round useless: they are awaited,
        dropped, and reading resumes right after the short one."""
        handle = await self.open(path, FXF_READ)
        try:
            parts: list[bytes] = []
            offset = 0
            eof = False
            while not eof:
                ids = [self.client.read(handle, offset + i * CHUNK, CHUNK) for i in range(8)]
                await self._send(self.client.data_to_send())
                valid = True
                for request_id in ids:
                    reply = await self._call(request_id)
                    if not valid:
                        continue
                    if isinstance(reply, Status) and reply.code == FX_EOF:
                        eof, valid = True, False
                        continue
                    if isinstance(reply, Status):
                        raise status_error(reply, f"read {shown(path)}")
                    if not isinstance(reply, Data) or len(reply.data) > CHUNK:
                        raise ProtocolError(f"read {shown(path)}: unexpected SFTP reply")
                    if not reply.data:
                        # no byte and no EOF: asked again, it would never end
                        raise ProtocolError(f"read {shown(path)}: empty SFTP data reply")
                    parts.append(reply.data)
                    offset += len(reply.data)
                    if offset > limit:
                        raise SftpError(f"read {shown(path)}: file larger than {limit} bytes")
                    if len(reply.data) < CHUNK:
                        valid = False
            return b"".join(parts)
        finally:
            await self.close(handle)

    async def write_file(
        self,
        path: str,
        data: bytes,
        flags: int = FXF_WRITE | FXF_CREAT | FXF_TRUNC,
        mode: int | None = None,
        fsync: bool = False,
    ) -> None:
        """Write ``data`` to ``path``, requests pipelined; ``mode`` applies on creation."""
        handle = await self.open(path, flags, Attributes(permissions=mode))
        try:
            ids = [
                self.client.write(handle, offset, data[offset : offset + CHUNK])
                for offset in range(0, len(data), CHUNK)
            ]
            for request_id in ids:
                await self._status(request_id, f"write {shown(path)}")
            if fsync:
                await self.fsync(handle)
        finally:
            await self.close(handle)

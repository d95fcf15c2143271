"""SFTP v3 client encoding and decoding (draft-ietf-secsh-filexfer-02) on hand-made packets."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keytool.errors import KeytoolError, ProtocolError
from keytool.transport import sftp
from keytool.transport.sftp import (
    Attributes,
    Attrs,
    Data,
    Handle,
    Name,
    SftpClient,
    Status,
    Version,
)
from keytool.wire import Reader, Writer


def packet(kind: int, body: bytes) -> bytes:
    return (len(body) + 1).to_bytes(4, "big") + bytes([kind]) + body


def version(**extensions: bytes) -> bytes:
    w = Writer().uint32(3)
    for name, value in extensions.items():
        w.string(name.replace("_", "-") + "@openssh.com").string(value)
    return packet(2, w.getvalue())


def started(**extensions: bytes) -> SftpClient:
    client = SftpClient()
    assert client.data_to_send() == packet(1, (3).to_bytes(4, "big"))
    (reply,) = client.receive_data(version(**extensions))
    assert isinstance(reply, Version)
    return client


def sent(client: SftpClient) -> tuple[int, Reader]:
    data = client.data_to_send()
    r = Reader(data)
    length = r.uint32()
    assert length == len(data) - 4
    return r.byte(), r


def test_version_and_extensions() -> None:
    client = started(posix_rename=b"1", fsync=b"1")
    assert set(client.extensions) == {"posix-rename@openssh.com", "fsync@openssh.com"}


def test_request_before_version_refused() -> None:
    with pytest.raises(ProtocolError):
        SftpClient().stat("x")


def test_open_encodes_flags_and_mode_and_parses_handle() -> None:
    client = started()
    flags = sftp.FXF_WRITE | sftp.FXF_CREAT | sftp.FXF_EXCL
    rid = client.open(".ssh/authorized_keys", flags, Attributes(permissions=0o600))
    kind, r = sent(client)
    assert kind == sftp.FXP_OPEN
    assert r.uint32() == rid
    assert r.text() == ".ssh/authorized_keys"
    assert r.uint32() == flags
    assert r.uint32() == sftp.ATTR_PERMISSIONS
    assert r.uint32() == 0o600
    r.done()
    (reply,) = client.receive_data(packet(102, Writer().uint32(rid).string(b"h1").getvalue()))
    assert reply == Handle(rid, b"h1")


def test_replies_split_across_chunks() -> None:
    client = started()
    rid = client.read(b"h", 0, 10)
    data = packet(103, Writer().uint32(rid).string(b"0123456789").getvalue())
    assert client.receive_data(data[:3]) == []
    assert client.receive_data(data[3:9]) == []
    assert client.receive_data(data[9:]) == [Data(rid, b"0123456789")]


def test_status_without_message_and_unknown_id() -> None:
    client = started()
    rid = client.remove("gone")
    (reply,) = client.receive_data(packet(101, Writer().uint32(rid).uint32(2).getvalue()))
    assert reply == Status(rid, 2, "")
    assert "no such file" in str(sftp.status_error(reply, "remove gone"))
    with pytest.raises(ProtocolError, match="did not send"):
        client.receive_data(packet(101, Writer().uint32(rid).uint32(0).getvalue()))


def test_a_status_message_in_any_bytes_is_taken() -> None:
    """A server's status words in Latin-1 (its locale's strerror) are shown, not a
    malformed reply that ends the transfer."""
    client = started()
    rid = client.remove("x")
    body = Writer().uint32(rid).uint32(3).string(b"Permission refus\xe9e\x1b[2J").string(b"")
    (reply,) = client.receive_data(packet(101, body.getvalue()))
    # escaped as ssh logs a peer's words: each such byte in octal
    assert reply == Status(rid, 3, "Permission refus\\351e\\033[2J")


def test_attrs_all_fields_round_trip() -> None:
    attrs = Attributes(size=5, uid=1, gid=2, permissions=0o100644, atime=3, mtime=4)
    client = started()
    rid = client.lstat("f")
    (reply,) = client.receive_data(
        packet(105, Writer().uint32(rid).raw(attrs.to_wire()).getvalue())
    )
    assert reply == Attrs(rid, attrs)
    assert attrs.is_regular and not attrs.is_dir


def test_realpath_name_reply() -> None:
    client = started()
    rid = client.realpath(".")
    body = Writer().uint32(rid).uint32(1).string("/root").string("").raw(Attributes().to_wire())
    (reply,) = client.receive_data(packet(104, body.getvalue()))
    assert reply == Name(rid, (("/root", "", Attributes()),))


def test_rename_uses_posix_rename_when_offered() -> None:
    plain = started()
    plain.rename("a", "b")
    assert sent(plain)[0] == sftp.FXP_RENAME
    posix = started(posix_rename=b"1")
    posix.rename("a", "b")
    kind, r = sent(posix)
    assert kind == sftp.FXP_EXTENDED
    r.uint32()
    assert (r.text(), r.text(), r.text()) == ("posix-rename@openssh.com", "a", "b")
    assert plain.fsync(b"h") is None
    assert isinstance(started(fsync=b"1").fsync(b"h"), int)


def test_huge_length_refused() -> None:
    client = started()
    with pytest.raises(ProtocolError):
        client.receive_data(b"\xff\xff\xff\xff")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_only_keytool_errors_escape(data: bytes) -> None:
    client = started()
    for _ in range(3):
        client.stat("x")
    with contextlib.suppress(KeytoolError):
        client.receive_data(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(100, 202), st.binary(max_size=60))
def test_only_keytool_errors_escape_framed(kind: int, body: bytes) -> None:
    client = started()
    rid = client.stat("x")
    with contextlib.suppress(KeytoolError):
        client.receive_data(packet(kind, rid.to_bytes(4, "big") + body))


def test_an_empty_data_reply_to_a_read_ends_the_read() -> None:
    """DATA with no byte (and no EOF) to every READ: a server that would have the
    client ask again for ever. It is a protocol error at once (keytool looped)."""
    import asyncio

    replies: list[bytes] = []
    asked: list[int] = []

    async def send(data: bytes) -> None:
        while data:
            length = int.from_bytes(data[:4], "big")
            body, data = data[4 : 4 + length], data[4 + length :]
            kind = body[0]
            if kind == 1:  # INIT
                replies.append(packet(2, (3).to_bytes(4, "big")))
                continue
            request = body[1:5]
            asked.append(kind)
            if kind == 3:  # OPEN
                replies.append(packet(102, request + Writer().string(b"h").getvalue()))
            elif kind == 5:  # READ: nothing, and no EOF
                replies.append(packet(103, request + Writer().string(b"").getvalue()))
            else:  # CLOSE
                replies.append(packet(101, request + bytes(4) + bytes(8)))

    async def receive() -> bytes:
        assert len(asked) < 1000, "the client keeps asking"
        out = b"".join(replies)
        replies.clear()
        return out

    async def run() -> None:
        session = sftp.Sftp(send, receive)
        await session.start()
        with pytest.raises(ProtocolError, match="empty SFTP data reply"):
            await session.read_file(".ssh/authorized_keys")

    asyncio.run(run())

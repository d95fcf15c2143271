"""-L / LocalForward specifications (ssh -G's reading of the same forms is compared in
tests/interop/test_sshconfig_openssh.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keytool import sshconfig
from keytool.errors import FormatError
from keytool.forwardspec import (
    DynamicForward,
    LocalForward,
    RemoteDynamicForward,
    RemoteForward,
    parse_dynamic_forward,
    parse_local_forward,
    parse_remote_forward,
)
from keytool.sshconfig_resolved import ResolvedConfig


def test_forms() -> None:
    assert parse_local_forward("8080:db:5432") == LocalForward(None, 8080, "db", 5432)
    assert parse_local_forward(" [::1]:9:[fe80::1]:22") == LocalForward("::1", 9, "fe80::1", 22)
    assert parse_local_forward("a\\:b:1:c:2") == LocalForward("a:b", 1, "c", 2)
    assert parse_local_forward("*:1:h:2").describe() == "[*]:1 [h]:2"


@pytest.mark.parametrize(
    ("bind", "gateway", "hosts"),
    [
        (None, False, ("127.0.0.1", "::1")),
        (None, True, (None,)),
        ("", False, (None,)),
        ("*", False, (None,)),
        ("localhost", True, ("127.0.0.1", "::1")),
        ("192.0.2.1", False, ("192.0.2.1",)),
    ],
)
def test_where_it_listens(bind: str | None, gateway: bool, hosts: tuple[str | None, ...]) -> None:
    assert LocalForward(bind, 1, "h", 2).bind_hosts(gateway) == hosts


@pytest.mark.parametrize(
    "spec", ["0:h:1", "1:h:0", "1:h", "1:h:2:3:4", "x:h:1", "[::1:1:h:2", "1:h:2\\"]
)
def test_bad_specs(spec: str) -> None:
    with pytest.raises(FormatError, match=r"^Bad local forwarding specification '"):
        parse_local_forward(spec)
    # as ssh: an empty host is taken (the server says no)
    assert parse_local_forward("1::2") == LocalForward(None, 1, "", 2)


def test_unix_sockets_as_ssh_reads_them() -> None:
    forward = parse_local_forward("1:/run/db.sock")
    assert (forward.listen_port, forward.target_path, forward.host) == (1, "/run/db.sock", "")
    with pytest.raises(FormatError, match="Bad local forwarding specification"):
        parse_local_forward("/run/a\0b:h:1")
    # as ssh: a path a socket cannot have (sun_path is 108 bytes with its NUL)
    longest = "/" + "s" * 106
    assert parse_local_forward(f"{longest}:h:1").listen_path == longest
    for spec in (f"{longest}s:h:1", f"1:{longest}s", f"{longest}s:/run/x"):
        with pytest.raises(FormatError, match="Bad local forwarding specification"):
            parse_local_forward(spec)


def resolve(text: str, *overrides: str) -> ResolvedConfig:
    return sshconfig.resolve(text, "h", overrides, user="u", home="/home/u")


def test_config_lines() -> None:
    resolved = resolve(
        "LocalForward 1 a:2\nLocalForward 1 a:2\nLocalForward [::1]:3 b:4\n"
        "GatewayPorts yes\nSessionType none\nForkAfterAuthentication yes\n",
        "LocalForward=5 c:6",
    )
    assert resolved.local_forwards == ("5:c:6", "1:a:2", "[::1]:3:b:4")
    assert (resolved.gateway_ports, resolved.session_type) == (True, "none")
    assert resolved.fork_after_authentication
    assert resolve("LocalForward 1 a:2\nClearAllForwardings yes\n").local_forwards == ()
    with pytest.raises(FormatError, match="config line 1: Bad forwarding specification"):
        resolve("LocalForward 0 a:2\n")
    with pytest.raises(FormatError, match="config line 1: Missing target argument"):
        resolve("LocalForward 1:a:2\n")
    remote = resolve("RemoteForward 0 a:2\nRemoteForward *:7 b:8\n", "RemoteForward=9 c:1")
    assert remote.remote_forwards == ("9:c:1", "0:a:2", "*:7:b:8")
    assert parse_remote_forward("*:7:b:8").request_address() == ""
    assert parse_remote_forward("0:a:2") == RemoteForward(None, 0, "a", 2)
    assert parse_remote_forward("0:a:2").request_address() == "localhost"
    # -R port alone: a SOCKS proxy at the server's end
    assert parse_remote_forward("1080") == RemoteDynamicForward(None, 1080)
    assert parse_remote_forward("[::1]:0").describe() == "[::1]:0 [socks]:0"
    assert resolve("RemoteForward 127.0.0.1:7\n").remote_forwards == ("[127.0.0.1]:7",)
    dynamic = resolve("DynamicForward 1080\nDynamicForward [::1]:9\n", "DynamicForward=*:7")
    assert dynamic.dynamic_forwards == ("[*]:7", "1080", "[::1]:9")
    assert parse_dynamic_forward("[::1]:9") == DynamicForward("::1", 9)
    # as ssh: a bind address with a '/' is still one (it fails when it binds)
    assert parse_dynamic_forward("/run/socks:1") == DynamicForward("/run/socks", 1)
    for bad in ("0", "x", "a:b:c", "1:/run/socks"):
        with pytest.raises(FormatError, match="dynamic forwarding"):
            parse_dynamic_forward(bad)


@given(st.text(alphabet=st.sampled_from("0123456789:[]\\/*ab. "), max_size=30) | st.text())
def test_any_text_is_a_spec_or_a_format_error(text: str) -> None:
    try:
        forward = parse_local_forward(text)
    except FormatError:
        return
    assert forward.listen_path or 0 < forward.listen_port < 65536
    assert forward.target_path or 0 < forward.port < 65536
    # ssh -G's form reads back the same (a ']' in a field cannot be bracketed, and a
    # path is shown as it is, colons, spaces and backslashes too)
    paths = f"{forward.listen_path or ''}{forward.target_path or ''}"
    if "]" not in f"{forward.bind_address}{forward.host}" and not set(":[ \\") & set(paths):
        # describe()'s two halves joined by a colon (not every space: a host may be one)
        assert forward.describe() == f"{forward.listen_label} {forward.target_label}"
        assert parse_local_forward(f"{forward.listen_label}:{forward.target_label}") == forward

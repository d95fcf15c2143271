"""known_hosts core: parsing, matching, the decision, and the adapter's answers."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keytool import files, hostcert, hostcheck, knownhosts
from keytool.errors import HostKeyError, KeytoolError
from keytool.keys import cert, generate
from keytool.keys.base import PrivateKey, PublicKey
from keytool.keys.fingerprint import fingerprint
from keytool.keys.pubfile import format_public_line
from keytool.patterns import match_any, match_pattern
from keytool.transport.config import DEFAULT_CA_SIGNATURE_ALGORITHMS, DEFAULT_HOST_KEY

KEY_A = generate("ed25519").public
KEY_B = generate("ed25519").public
KEY_EC = generate("ecdsa").public


def line(hosts: str, key: PublicKey, marker: str = "") -> str:
    return f"{marker + ' ' if marker else ''}{hosts} {format_public_line(key)}\n"


@pytest.mark.parametrize(
    ("name", "pattern", "expected"),
    [
        ("foo.example", "*.example", True),
        ("example", "*.example", False),
        ("foo", "f?o", True),
        ("fo", "f?o", False),
        ("[h]:2222", "[h]:*", True),  # brackets are literal, not classes
        ("abc", "a*b*c", True),
        ("abcb", "a*b", True),
        ("ab", "a*b*c", False),
        ("", "*", True),
        ("a" * 50, "*a" * 40 + "b", False),
    ],
)
def test_match_pattern(name: str, pattern: str, expected: bool) -> None:
    assert match_pattern(name, pattern) is expected


def test_negation_overrides_and_negation_alone_never_matches() -> None:
    assert match_any("x.example", ["*.example", "!bad.example"])
    assert not match_any("bad.example", ["*.example", "!bad.example"])
    assert not match_any("bad.example", ["!bad.example", "*.example"])
    assert not match_any("other", ["!bad.example"])


def test_parse_keeps_line_numbers_and_warns_on_malformed_lines() -> None:
    text = (
        "# comment\n\n"
        + line("a,b", KEY_A)
        + "garbage here\n"
        + "@bogus a ssh-ed25519 AAAA\n"
        + line("|1|AAAA|BBBB", KEY_A)
        + "dsa.example ssh-dss AAAAB3NzaC1kc3MAAACBAP\n"
        + line("c", KEY_B, "@revoked")
    )
    entries, warnings = knownhosts.parse(text, "kh")
    assert [(e.line_number, e.marker, e.hosts) for e in entries] == [
        (3, "", "a,b"),
        (8, "@revoked", "c"),
    ]
    assert [w.line_number for w in warnings] == [4, 5, 6, 7]
    assert str(warnings[0]).startswith("kh:4: invalid known_hosts line")
    assert entries[1].where == "kh:8"


def test_bytes_that_are_not_utf8_are_a_warning() -> None:
    entries, warnings = knownhosts.parse(b"\xff\xfe\n" + line("a", KEY_A).encode(), "kh")
    assert [e.line_number for e in entries] == [2]
    assert [w.line_number for w in warnings] == [1]


def test_hashed_names_match_only_their_name() -> None:
    hashed = knownhosts.hash_name("[host.example]:2222")
    assert knownhosts.hosts_match(hashed, "[host.example]:2222")
    assert knownhosts.hosts_match(hashed, "[HOST.example]:2222")
    assert not knownhosts.hosts_match(hashed, "host.example")


def test_lookup_name() -> None:
    assert knownhosts.lookup_name("Host.Example", 22) == "host.example"
    assert knownhosts.lookup_name("host", 2222) == "[host]:2222"


def decide(text: str, host: str, port: int, key: PublicKey) -> knownhosts.HostKeyStatus:
    entries, _ = knownhosts.parse(text, "kh")
    return knownhosts.check(entries, host, port, key)


def test_check_known_unknown_changed_revoked() -> None:
    text = line("a", KEY_B) + line("a,b", KEY_A) + line("c", KEY_EC) + line("b", KEY_A, "@revoked")
    known = decide(text, "a", 22, KEY_A)
    assert isinstance(known, knownhosts.Known) and known.entry.line_number == 2
    assert isinstance(decide(text, "d", 22, KEY_A), knownhosts.Unknown)
    assert isinstance(decide(text, "a", 2222, KEY_A), knownhosts.Unknown)
    changed = decide(text, "c", 22, KEY_A)
    assert isinstance(changed, knownhosts.Changed)
    assert [e.line_number for e in changed.entries] == [3]
    revoked = decide(text, "b", 22, KEY_A)
    assert isinstance(revoked, knownhosts.Revoked) and revoked.entry.line_number == 4


def test_changed_lists_same_type_first() -> None:
    text = line("h", KEY_EC) + line("h", KEY_B)
    changed = decide(text, "h", 22, KEY_A)
    assert isinstance(changed, knownhosts.Changed)
    assert [e.line_number for e in changed.entries] == [2, 1]


def test_cert_authority_line_is_not_a_match_for_a_plain_key() -> None:
    text = line("*.example", KEY_A, "@cert-authority")
    assert isinstance(decide(text, "h.example", 22, KEY_A), knownhosts.Unknown)


def test_known_key_types_in_file_order() -> None:
    text = line("h", KEY_EC) + line("h", KEY_A) + line("h", KEY_B) + line("x", KEY_A)
    entries, _ = knownhosts.parse(text)
    assert knownhosts.host_key_hints(entries, "h", 22) == (
        ["ecdsa-sha2-nistp256", "ssh-ed25519"],
        False,
    )


def test_append_entry_keeps_bytes_and_adds_missing_newline() -> None:
    assert knownhosts.append_entry(b"", "x") == b"x\n"
    assert knownhosts.append_entry(b"a\r\n", "x") == b"a\r\nx\n"
    assert knownhosts.append_entry(b"a", "x") == b"a\nx\n"


@given(st.text(max_size=400))
def test_parse_never_raises_on_arbitrary_text(text: str) -> None:
    knownhosts.parse(text)
    for raw in text.splitlines():
        with contextlib.suppress(KeytoolError):
            knownhosts.parse_line(raw)


@given(st.binary(max_size=400))
def test_parse_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    knownhosts.parse(data)


@given(
    st.lists(
        st.sampled_from(["|1|", "@revoked ", "@cert-authority ", "ssh-ed25519 ", "AAAA", "*", "!"])
        | st.text(max_size=8),
        max_size=12,
    )
)
def test_parse_never_raises_on_near_miss_lines(parts: list[str]) -> None:
    knownhosts.parse("".join(parts) + "\n" + line("".join(parts), KEY_A))


# The adapter, with a scripted prompter in place of the terminal.


class Script:
    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, text: str) -> str | None:
        self.asked.append(text)
        return self.answers.pop(0)


def verify(tmp_path: Path, key: PublicKey, **kw: object) -> hostcheck.HostKeyDecision:
    options: dict[str, object] = {
        "user_files": [tmp_path / ".ssh" / "known_hosts"],
        "global_files": [tmp_path / "global"],
        **kw,
    }
    # tmp_path is the home: its .ssh is the user's own, the one folder made when missing
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("keytool.sshconfig_words.account_home", lambda: str(tmp_path))
        return hostcheck.verify_host_key("host.example", 2222, key, **options)  # type: ignore[arg-type]


def test_ask_yes_adds_entry_in_new_private_file(tmp_path: Path) -> None:
    prompt = Script("maybe", "yes")
    decision = verify(tmp_path, KEY_A, prompt=prompt)
    path = tmp_path / ".ssh" / "known_hosts"
    assert decision.added_to == path
    assert path.read_text() == f"[host.example]:2222 {format_public_line(KEY_A)}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert f"ED25519 key fingerprint is {fingerprint(KEY_A)}." in prompt.asked[0]
    assert prompt.asked[1] == "Please type 'yes', 'no' or the fingerprint: "
    assert decision.info == (
        "Warning: Permanently added '[host.example]:2222' (ED25519) to the list of known hosts.",
    )
    # the second time the key is simply known, no question
    again = verify(tmp_path, KEY_A, prompt=Script())
    assert isinstance(again.status, knownhosts.Known)


def test_ask_accepts_pasted_fingerprint_and_refuses_no_or_eof(tmp_path: Path) -> None:
    assert verify(tmp_path, KEY_A, prompt=Script(fingerprint(KEY_A))).added_to is not None
    for answer in ("no", None):
        with pytest.raises(HostKeyError, match="Host key verification failed"):
            verify(tmp_path, KEY_B, prompt=Script(answer), global_files=[], strict="ask")


def test_question_mentions_other_names_for_the_same_key(tmp_path: Path) -> None:
    (tmp_path / "global").write_text(line("other.example", KEY_A))
    prompt = Script("no")
    with pytest.raises(HostKeyError):
        verify(tmp_path, KEY_A, prompt=prompt)
    assert f"{tmp_path / 'global'}:1: other.example" in prompt.asked[0]


def test_no_terminal_refuses_unknown_host_unless_accept_new_or_no(tmp_path: Path) -> None:
    with pytest.raises(HostKeyError, match="no terminal"):
        verify(tmp_path, KEY_A)
    with pytest.raises(HostKeyError, match="requested strict checking"):
        verify(tmp_path, KEY_A, strict="yes")
    assert not (tmp_path / ".ssh").exists()
    assert verify(tmp_path, KEY_A, strict="accept-new").added_to is not None
    assert verify(tmp_path, KEY_B, strict="no", user_files=[tmp_path / "kh2"]).added_to


def test_accept_new_keeps_existing_bytes_and_mode(tmp_path: Path) -> None:
    path = tmp_path / ".ssh" / "known_hosts"
    path.parent.mkdir()
    old = b"# mine\r\n" + line("x", KEY_B).encode() + b"no-newline"
    path.write_bytes(old)
    path.chmod(0o644)
    verify(tmp_path, KEY_A, strict="accept-new", hash_known_hosts=True)
    data = path.read_bytes()
    assert data.startswith(old + b"\n|1|")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    entries, _ = knownhosts.parse(data)
    assert isinstance(knownhosts.check(entries, "host.example", 2222, KEY_A), knownhosts.Known)


def test_changed_key_refused_unless_no(tmp_path: Path) -> None:
    (tmp_path / "global").write_text("\n" + line("[host.example]:2222", KEY_B))
    for strict in ("yes", "ask", "accept-new"):
        with pytest.raises(HostKeyError) as caught:
            verify(tmp_path, KEY_A, strict=strict, prompt=Script())
        text = str(caught.value)
        assert "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!" in text
        assert f"Offending ED25519 key in {tmp_path / 'global'}:2" in text
    decision = verify(tmp_path, KEY_A, strict="no")
    assert not decision.allow_password_auth
    assert "Password authentication is disabled" in decision.messages[0]
    assert decision.added_to is None


def test_revoked_refused_even_with_no(tmp_path: Path) -> None:
    (tmp_path / "global").write_text(line("*", KEY_A, "@revoked"))
    with pytest.raises(HostKeyError, match="REVOKED HOST KEY"):
        verify(tmp_path, KEY_A, strict="no")


def test_symlinked_known_hosts_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real_kh"
    real.write_text(line("x", KEY_B))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "known_hosts").symlink_to(real)
    verify(tmp_path, KEY_A, strict="accept-new")
    assert (tmp_path / ".ssh" / "known_hosts").is_symlink()
    assert real.read_text().count("\n") == 2


def test_known_hosts_reread_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "kh"
    path.write_text(line("[host.example]:2222", KEY_B))
    files = {"user_files": [path], "global_files": []}
    with pytest.raises(HostKeyError):
        hostcheck.verify_host_key("host.example", 2222, KEY_A, strict="yes", **files)  # type: ignore[arg-type]
    with path.open("a") as stream:  # the same inode, a new size
        stream.write(line("[host.example]:2222", KEY_A))
    decision = hostcheck.verify_host_key("host.example", 2222, KEY_A, strict="yes", **files)  # type: ignore[arg-type]
    assert isinstance(decision.status, knownhosts.Known)
    assert hostcheck.host_key_hints_for("host.example", 2222, [str(path)], [])[0] == ["ssh-ed25519"]
    path.unlink()
    assert hostcheck.host_key_hints_for("host.example", 2222, [str(path)], [])[0] == []


# ---------------------------------------------------------------- host certificates

HOST_CA = generate("ed25519")
OTHER_CA = generate("ed25519")
RSA_CA = generate("rsa", 2048)


def host_cert(**changes: object) -> cert.Certificate:
    fields: dict[str, object] = {
        "cert_type": cert.HOST,
        "key_id": "web",
        "principals": ["*.example"],
        "valid_after": 100,
        "valid_before": 200,
    }
    fields.update(changes)
    ca = fields.pop("ca", HOST_CA)
    assert isinstance(ca, PrivateKey)
    return cert.sign(KEY_A, ca, **fields)  # type: ignore[arg-type]


def decide_cert(text: str, certificate: cert.Certificate, principal: str = "h.example") -> object:
    entries, _ = knownhosts.parse(text, "kh")
    return knownhosts.check_certificate(
        entries,
        principal,
        22,
        certificate,
        principal=principal,
        now=150,
        ca_algorithms=DEFAULT_CA_SIGNATURE_ALGORITHMS,
    )


def test_certificate_by_a_ca_named_for_the_host_is_certified() -> None:
    text = line("other", OTHER_CA.public, "@cert-authority") + line(
        "*.example", HOST_CA.public, "@cert-authority"
    )
    status = decide_cert(text, host_cert())
    assert isinstance(status, knownhosts.Certified)
    assert status.entry.line_number == 2
    # the same CA line does not make the certified key known as a plain key
    assert isinstance(decide(text, "h.example", 22, KEY_A), knownhosts.Unknown)


@pytest.mark.parametrize(
    ("changes", "principal", "reason"),
    [
        ({}, "h.else", "no @cert-authority line for h.else names it"),
        ({"ca": OTHER_CA}, "h.example", "no @cert-authority line"),
        ({"valid_before": 150}, "h.example", "expired"),
        ({"valid_after": 151}, "h.example", "not yet valid"),
        ({"cert_type": cert.USER}, "h.example", "not a host certificate"),
        ({"principals": ["web.example"]}, "h.example", "h.example is not among its principals"),
        ({"critical": [cert.Option("force-command")]}, "h.example", "critical options"),
        ({"algorithm": "ssh-rsa"}, "h.example", "CASignatureAlgorithms refuses"),
    ],
)
def test_certificate_refusals_say_why(
    changes: dict[str, object], principal: str, reason: str
) -> None:
    if changes.get("algorithm") == "ssh-rsa":
        changes = {**changes, "ca": RSA_CA}
    text = line("*.example,h.other", HOST_CA.public, "@cert-authority") + line(
        "*.example", RSA_CA.public, "@cert-authority"
    )
    status = decide_cert(text, host_cert(**changes), principal)
    assert isinstance(status, knownhosts.CertificateRefused)
    assert reason in status.reason
    # an unknown CA has no line; a known one names it
    assert (status.entry is None) == reason.startswith("no @cert-authority")


def test_revoked_ca_or_key_refuses_the_certificate() -> None:
    trusted = line("*.example", HOST_CA.public, "@cert-authority")
    for revoked in (HOST_CA.public, KEY_A):
        status = decide_cert(trusted + line("h.example", revoked, "@revoked"), host_cert())
        assert isinstance(status, knownhosts.Revoked)
        assert status.entry.line_number == 2
    # a @revoked line for another host does not touch this one
    status = decide_cert(trusted + line("x.example", HOST_CA.public, "@revoked"), host_cert())
    assert isinstance(status, knownhosts.Certified)


def test_host_key_algorithm_order_follows_ssh() -> None:
    algorithms = DEFAULT_HOST_KEY
    order = hostcheck.order_host_key_algorithms
    # nothing known: the list as it is (certificates first)
    assert order(algorithms, [], False) == algorithms
    # the first algorithm's key type is known: as it is
    assert order(algorithms, ["ssh-ed25519"], False) == algorithms
    # a known RSA key: its certificate and plain algorithms first, in list order
    assert order(algorithms, ["ssh-rsa"], False)[:4] == (
        "rsa-sha2-512-cert-v01@openssh.com",
        "rsa-sha2-256-cert-v01@openssh.com",
        "rsa-sha2-512",
        "rsa-sha2-256",
    )
    # ECDSA by curve
    assert order(algorithms, ["ecdsa-sha2-nistp384"], False)[:2] == (
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        "ecdsa-sha2-nistp384",
    )
    # a CA line: every certificate algorithm first, then known plain ones
    ordered = order(("ssh-ed25519", "rsa-sha2-512", "ssh-ed25519-cert-v01@openssh.com"), [], True)
    assert ordered == ("ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519", "rsa-sha2-512")


def test_cert_authority_lines_are_seen_for_the_host(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(line("[h.example]:2222", HOST_CA.public, "@cert-authority"))
    assert hostcheck.host_key_hints_for("h.example", 2222, [str(path)], [])[1]
    assert not hostcheck.host_key_hints_for("h.example", 22, [str(path)], [])[1]
    assert hostcheck.host_key_hints_for("h.example", 2222, [str(path)], [])[0] == []


def test_refused_certificate_with_unknown_key_is_one_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(line("h.example", HOST_CA.public, "@cert-authority"))
    before = path.read_bytes()
    expired = host_cert(principals=["h.example"], valid_after=0, valid_before=1)
    for mode in ("yes", "accept-new", "no"):
        with pytest.raises(HostKeyError) as caught:
            hostcert.verify_host_certificate(
                "h.example",
                22,
                expired,
                principal="h.example",
                ca_algorithms=DEFAULT_CA_SIGNATURE_ALGORITHMS,
                user_files=[str(path)],
                global_files=[],
                strict=mode,
            )
        assert "\n" not in str(caught.value)
        assert "expired" in str(caught.value)
    assert path.read_bytes() == before


def test_just_return_at_the_question_is_no(tmp_path: Path) -> None:
    """As ssh's confirm(): an empty answer refuses at once (it is not asked again)."""
    prompt = Script("")
    with pytest.raises(HostKeyError):
        verify(tmp_path, KEY_A, prompt=prompt)
    assert len(prompt.asked) == 1
    assert not (tmp_path / ".ssh" / "known_hosts").exists()


@pytest.mark.parametrize("name", ["x*", "a?b", "h#1", "p|q", "[x]", "u@h", "q'x", 'q"x', "b\\s"])
def test_a_name_that_would_be_a_pattern_is_never_recorded(tmp_path: Path, name: str) -> None:
    with pytest.raises(HostKeyError, match="never added"):
        hostcheck.verify_host_key(
            "alias.example", 22, KEY_A, user_files=[tmp_path / "kh"], global_files=[],
            strict="accept-new", recordable=hostcheck.recordable_name(name),
        )  # fmt: skip
    assert not (tmp_path / "kh").exists()


def test_the_null_device_takes_the_line_and_stays_a_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UserKnownHostsFile=/dev/null (here a null device of the test's own, standing in
    for it): written to, never renamed over; any other device is refused."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    null = tmp_path / "null"
    other = tmp_path / "other"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(other, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    monkeypatch.setattr(os, "devnull", str(null))
    assert hostcheck.add_known_host(null, "h", 22, KEY_A, False) == null
    assert stat.S_ISCHR(null.stat().st_mode)
    with pytest.raises(HostKeyError, match="not a regular file"):
        hostcheck.add_known_host(other, "h", 22, KEY_A, False)
    assert stat.S_ISCHR(other.stat().st_mode)
    with pytest.raises(KeytoolError, match="not a regular file"):
        files.write_atomic(other, b"x\n", 0o600)
    assert stat.S_ISCHR(other.stat().st_mode)


def test_a_line_without_the_port_serves_any_port(tmp_path: Path) -> None:
    """As ssh's "checking without port identifier": known for the bare name, known on
    any port, nothing added; a HostKeyAlias (port 22 here) is not retried."""
    known = tmp_path / "kh"
    known.write_text(line("host.example", KEY_A))
    decision = hostcheck.verify_host_key(
        "host.example", 2222, KEY_A, user_files=[known], global_files=[], strict="yes"
    )
    assert isinstance(decision.status, knownhosts.Known)
    assert known.read_text() == line("host.example", KEY_A)
    with pytest.raises(HostKeyError):  # another key for the bare name is no help
        hostcheck.verify_host_key(
            "host.example", 2222, KEY_B, user_files=[known], global_files=[], strict="yes"
        )

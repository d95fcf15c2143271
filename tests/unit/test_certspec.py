"""keytool.certspec: ssh-keygen's -V, -z, -n and -O for certificates, read the way
ssh-keygen reads them (its interop twin, tests/interop/test_cli_cert.py, compares the
windows both tools compute for the same -V)."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator

import pytest

from keytool import certspec
from keytool.errors import KeytoolError, UsageError
from keytool.keys.cert import FOREVER, Option
from keytool.wire import Writer

NOW = 1_750_000_000  # 2025-06-15T15:06:40Z
WEEK = 7 * 86400


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def utc_time(*fields: int) -> int:
    return calendar.timegm((*fields, *([0] * (6 - len(fields))), 0, 0, 0))


# ---- -V


def test_plus_span_starts_a_minute_back_rounded_down() -> None:
    after, before = certspec.parse_validity("+52w", NOW)
    assert before == NOW + 52 * WEEK
    assert after == (NOW - 59) // 60 * 60
    assert after % 60 == 0 and NOW - 120 < after <= NOW - 59
    # on a whole minute the start is the minute before
    assert certspec.parse_validity("+1h", 1_749_999_960)[0] == 1_749_999_960 - 60


@pytest.mark.parametrize(
    ("spec", "span"),
    [("+90", 90), ("+30m", 1800), ("+1h30m", 5400), ("+1H30M", 5400), ("+2d", 172800)],
)
def test_plus_spans_in_sshd_time_format(spec: str, span: int) -> None:
    assert certspec.parse_validity(spec, NOW)[1] == NOW + span


def test_relative_both_sides() -> None:
    assert certspec.parse_validity("-1d:+4w", NOW) == (NOW - 86400, NOW + 4 * WEEK)
    assert certspec.parse_validity("+1h:+2h", NOW) == (NOW + 3600, NOW + 7200)


def test_open_ends_and_hex() -> None:
    assert certspec.parse_validity("always:forever", NOW) == (0, FOREVER)
    assert certspec.parse_validity("0x10:0xFFFFFFFFFFFFFFFF", NOW) == (16, FOREVER)
    assert certspec.parse_validity("always:+1d", NOW) == (0, NOW + 86400)
    assert certspec.parse_validity("-1d:forever", NOW) == (NOW - 86400, FOREVER)


@pytest.mark.usefixtures("utc")
def test_dates_in_local_time() -> None:
    assert certspec.parse_validity("20250101:20260101", NOW) == (
        utc_time(2025, 1, 1),
        utc_time(2026, 1, 1),
    )
    assert certspec.parse_validity("202501011230:20250101123005", NOW) == (
        utc_time(2025, 1, 1, 12, 30),
        utc_time(2025, 1, 1, 12, 30, 5),
    )


def test_z_and_utc_mean_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "EST5")
    time.tzset()
    try:
        assert certspec.parse_absolute_time("20250101Z") == utc_time(2025, 1, 1)
        assert certspec.parse_absolute_time("20250101120000utc") == utc_time(2025, 1, 1, 12)
        # without a suffix: local time, five hours behind UTC here
        assert certspec.parse_absolute_time("20250101") == utc_time(2025, 1, 1, 5)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_day_past_the_month_end_rolls_over_as_mktime_does() -> None:
    assert certspec.parse_absolute_time("20250230Z") == utc_time(2025, 3, 2)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("+", "invalid time span"),
        ("+x", "invalid time span"),
        ("+1 h", "invalid time span"),
        ("+3551w", "too long"),
        ("1d", "use +SPAN or FROM:TO"),
        ("-1d", "use +SPAN or FROM:TO"),
        (":+1d", "use +SPAN or FROM:TO"),
        ("+1d:", "use +SPAN or FROM:TO"),
        ("forever:always", "invalid -V start 'forever'"),
        ("always:always", "invalid -V end 'always'"),
        ("20250101:20240101", "the validity interval is empty"),
        ("+1h:+1h", "the validity interval is empty"),
        ("0xzz:forever", "not a hexadecimal number"),
        ("0x:forever", "not a hexadecimal number"),
        ("always:0x10000000000000000", "more than 64 bits"),
        ("2025010:forever", "use YYYYMMDD"),
        ("2025-1-1:forever", "use YYYYMMDD"),
        ("20251301:forever", "out of range"),
        ("202501012460:forever", "out of range"),
        ("19600101Z:forever", "before 1970"),
        ("-100y:+1d", "invalid time span"),
        ("-60w:+1d", "before 1970"),
    ],
)
def test_bad_validity_is_one_usage_error(spec: str, words: str) -> None:
    now = 1000 if spec == "-60w:+1d" else NOW
    with pytest.raises(UsageError) as caught:
        certspec.parse_validity(spec, now)
    message = str(caught.value)
    assert words in message
    assert "\n" not in message


# ---- -z and -n


def test_serial() -> None:
    assert certspec.parse_serial("42") == (42, False)
    assert certspec.parse_serial("+7") == (7, True)
    assert certspec.parse_serial(str(2**64 - 1)) == (2**64 - 1, False)


@pytest.mark.parametrize("bad", ["", "+", "x", "-1", "1.5", " 1", str(2**64), "++1"])
def test_bad_serial(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid serial number"):
        certspec.parse_serial(bad)


def test_principals() -> None:
    assert certspec.parse_principals("alice,bob") == ("alice", "bob")
    assert certspec.parse_principals("host.example.com") == ("host.example.com",)
    for bad in ("", "a,,b", "a,"):
        with pytest.raises(UsageError, match="empty principal name"):
            certspec.parse_principals(bad)
    with pytest.raises(UsageError, match="too many principals"):
        certspec.parse_principals(",".join(f"u{i}" for i in range(257)))


# ---- -O


def names(options: list[Option]) -> list[str]:
    return [o.name for o in options]


DEFAULTS = [
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
]


def test_user_defaults_and_host_has_none() -> None:
    assert certspec.cert_options([], host=False) == ([], [Option(n) for n in DEFAULTS])
    assert certspec.cert_options([], host=True) == ([], [])
    assert certspec.cert_options(["permit-pty"], host=True) == ([], [Option("permit-pty")])


def test_flags_on_and_off_case_insensitive() -> None:
    critical, extensions = certspec.cert_options(
        ["NO-PTY", "no-x11-forwarding", "No-Touch-Required", "verify-required"], host=False
    )
    assert names(critical) == ["verify-required"]
    assert names(extensions) == [
        "no-touch-required",
        "permit-agent-forwarding",
        "permit-port-forwarding",
        "permit-user-rc",
    ]
    critical, extensions = certspec.cert_options(
        ["clear", "permit-pty", "no-touch-required", "touch-required"], host=False
    )
    assert (critical, names(extensions)) == ([], ["permit-pty"])
    assert certspec.cert_options(["verify-required", "no-verify-required"], False)[0] == []


def test_force_command_and_source_address_hold_a_string() -> None:
    critical, _ = certspec.cert_options(
        ["source-address=10.0.0.0/8,127.0.0.1", "Force-Command=ls -l /"], host=False
    )
    assert critical == [
        Option("force-command", Writer().string("ls -l /").getvalue()),
        Option("source-address", Writer().string("10.0.0.0/8,127.0.0.1").getvalue()),
    ]


def test_custom_extensions_and_critical_options() -> None:
    critical, extensions = certspec.cert_options(
        ["clear", "extension:login@example.com=alice", "Critical:flag@example.com", "extension:x"],
        host=False,
    )
    assert critical == [Option("flag@example.com")]
    assert extensions == [Option.text("login@example.com", "alice"), Option("x")]
    # a value may be empty, and keeps its (empty) string
    _, extensions = certspec.cert_options(["clear", "extension:e="], host=True)
    assert extensions == [Option.text("e", "")]
    # the same option twice is one option
    _, extensions = certspec.cert_options(["extension:permit-pty"], host=False)
    assert names(extensions) == DEFAULTS


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["no-such-thing"], "unknown certificate option -O 'no-such-thing'"),
        (["force-command="], "empty -O force-command"),
        (["force-command=a", "force-command=b"], "-O force-command is given twice"),
        (["source-address="], "empty -O source-address"),
        (["source-address=1.2.3.4", "source-address=1.2.3.4"], "given twice"),
        (["extension:"], "names no option"),
        (["critical:=x"], "names no option"),
        (["extension:a=1", "extension:a=2"], "extension 'a' is given twice"),
        (["permit-pty=yes"], "unknown certificate option"),
    ],
)
def test_bad_options(words: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        certspec.cert_options(words, host=False)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "good",
    [
        "127.0.0.1",
        "10.0.0.0/8",
        "0.0.0.0/0",
        "127.1",  # inet_aton's short forms, as getaddrinfo (and so sshd) reads them
        "1.2.3",
        "::1",
        "2001:db8::/32",
        "::/0",
        "192.168.1.0/24,10.1.2.3/32,::1/128",
    ],
)
def test_source_address_lists_sshd_takes(good: str) -> None:
    certspec.check_cidr_list(good)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "an empty entry"),
        ("10.0.0.1,", "an empty entry"),
        ("example.com", "not an address"),
        ("10.0.0.0 /8", "not an address"),
        ("1.2.3.4/", "bad mask length"),
        ("1.2.3.4/x", "not an address"),
        ("1.2.3.4/129", "bad mask length"),
        ("1.2.3.4/33", "does not fit"),
        ("10.0.0.1/8", "does not fit"),
        ("2001:db8::1/32", "does not fit"),
        ("1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16:17:18:19:20:21", "too long"),
        ("/24", "not an address"),
    ],
)
def test_source_address_lists_refused(bad: str, why: str) -> None:
    with pytest.raises(UsageError) as caught:
        certspec.check_cidr_list(bad)
    assert why in str(caught.value)
    with pytest.raises(KeytoolError):
        certspec.cert_options([f"source-address={bad}"], host=False)

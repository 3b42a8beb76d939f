"""Every log format on real-looking lines, including the awkward ones."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devicegate.audit.events import Event, LineError
from devicegate.audit.formats import FORMATS, detect
from devicegate.audit.formats.base import ParseContext
from devicegate.audit.formats.nginx import unescape
from devicegate.audit.sources import detect_format
from tests.audit.logs import W3C_FIELDS, w3c_header

MSK = ZoneInfo("Europe/Moscow")


def ctx(resource: str | None = None) -> ParseContext:
    return ParseContext("test.log", resource, MSK, 2023)


def parse(
    fmt: str, lines: list[str], resource: str | None = None
) -> tuple[list[Event], list[int], int]:
    """(events, numbers of bad lines, skipped) of `lines` through the format's parser."""
    parser = FORMATS[fmt].parser(ctx(resource))
    events: list[Event] = []
    bad: list[int] = []
    for number, line in enumerate(lines, start=1):
        try:
            events.extend(parser.feed(line + "\n", number))
        except LineError:
            bad.append(number)
    events.extend(parser.finish())
    return events, bad, parser.skipped


# nginx / Apache combined


def test_nginx_plain_line() -> None:
    line = (
        "198.51.100.7 - ivanov@minpromtorg.example [17/Jul/2023:09:15:02 +0300] "
        '"GET /portal/news HTTP/1.1" 200 5120 "https://intra.example/" '
        '"Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X)"'
    )
    (event,), bad, _ = parse("nginx", [line])
    assert bad == []
    assert event.user == "ivanov@minpromtorg.example"
    assert event.ts == datetime(2023, 7, 17, 6, 15, 2, tzinfo=UTC)
    assert event.resource == "web"
    assert event.user_agent == "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X)"
    assert event.client_ip == "198.51.100.7"


def test_nginx_escaped_agents_ipv6_and_dash_user() -> None:
    lines = [
        # nginx escapes a quote as \x22
        '2001:db8::1 - bob [17/Jul/2023:09:00:00 +0300] "GET / HTTP/1.1" 200 1 "-" "A \\x22B\\x22"',
        # Apache escapes it as \" and a backslash as \\
        '2001:db8::2 - bob [17/Jul/2023:09:00:00 +0300] "GET / HTTP/1.1" 200 1 "-" '
        '"A \\"B\\" C\\\\"',
        # nobody authenticated: skipped, not bad
        '198.51.100.1 - - [17/Jul/2023:09:00:00 +0300] "GET /health HTTP/1.1" 200 2 "-" "curl/8"',
        # extra fields after the agent ($http_x_forwarded_for)
        '198.51.100.1 - bob [17/Jul/2023:09:00:00 +0300] "GET / HTTP/1.1" 200 1 "-" "UA" '
        '"203.0.113.9"',
        # TLS garbage on a plain port
        '198.51.100.1 - - [17/Jul/2023:09:00:00 +0300] "\\x16\\x03\\x01" 400 150 "-" "-"',
        "complete garbage",
        '198.51.100.1 - bob [17/Jul/2023:25:61:00 +0300] "GET / HTTP/1.1" 200 1 "-" "UA"',
    ]
    events, bad, skipped = parse("nginx", lines)
    assert [e.user_agent for e in events] == ['A "B"', 'A "B" C\\', "UA"]
    assert events[0].client_ip == "2001:db8::1"
    assert bad == [6, 7]
    assert skipped == 2


def test_nginx_activesync_path_is_email_with_its_query() -> None:
    line = (
        "198.51.100.7 - ivanov [17/Jul/2023:09:15:02 +0300] "
        '"POST /Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=AB12&DeviceType=iPhone HTTP/1.1" '
        '200 12 "-" "Apple-iPhone14C5/2006.2"'
    )
    (event,), _, _ = parse("nginx", [line], resource="web")
    assert event.resource == "email"
    assert event.activesync_query == "Cmd=Sync&DeviceId=AB12&DeviceType=iPhone"


def test_unescape_keeps_utf8_and_unknown_escapes() -> None:
    assert unescape("\\xD0\\x9F") == "П"
    assert unescape("plain") == "plain"
    assert unescape("a\\qb") == "a\\qb"


# IIS W3C (Exchange)


def test_w3c_fields_change_mid_file_and_plus_spaces() -> None:
    lines = [
        *w3c_header(W3C_FIELDS),
        "2023-07-17 06:00:01 192.0.2.10 POST /Microsoft-Server-ActiveSync/default.eas "
        "Cmd=Sync&User=ivanov&DeviceId=ABC&DeviceType=iPhone 443 GOV\\ivanov 198.51.100.9 "
        "Apple-iPhone14C5/2006.2 200 0 0 31",
        "#Fields: date time cs-username cs-uri-stem cs-uri-query cs(User-Agent)",
        "2023-07-17 06:00:02 petrov@minfin.example /owa/ - Mozilla/5.0+(Windows+NT+10.0)",
        "2023-07-17 06:00:03 - /owa/ - Mozilla/5.0",
        "2023-07-17 06:00:04 too few",
        "2023-07-17 06:00:05 petrov /portal/ - Mozilla/5.0",
    ]
    events, bad, skipped = parse("w3c", lines)
    # the name as presented: `DOMAIN\\login` is resolved later, never stripped (test_users)
    assert [e.user for e in events] == ["GOV\\ivanov", "petrov@minfin.example", "petrov"]
    assert events[0].resource == "email"
    assert events[0].activesync_query == "Cmd=Sync&User=ivanov&DeviceId=ABC&DeviceType=iPhone"
    assert events[0].ts == datetime(2023, 7, 17, 6, 0, 1, tzinfo=UTC)
    assert events[1].user_agent == "Mozilla/5.0 (Windows NT 10.0)"
    assert events[1].resource == "email"
    assert events[2].resource == "web"
    assert bad == [8]
    assert skipped == 5  # three header lines, the second #Fields, the `-` user


def test_w3c_data_before_fields_is_bad() -> None:
    _, bad, _ = parse("w3c", ["2023-07-17 06:00:01 x y"])
    assert bad == [1]


# Dovecot


def test_dovecot_id_before_login_joins_by_session() -> None:
    lines = [
        "2023-07-17T09:00:00+03:00 mail dovecot: imap-login: ID sent: name=iPhone Mail, "
        "os=iOS, os-version=16.5 (20F66): user=<>, rip=198.51.100.3, session=<AbC>",
        "2023-07-17T09:00:01+03:00 mail dovecot: imap-login: Login: user=<ivanov>, "
        "method=PLAIN, rip=198.51.100.3, lip=192.0.2.25, mpid=42, TLS, session=<AbC>",
        "2023-07-17T09:00:02+03:00 mail dovecot: imap(ivanov)<42><AbC>: Logged out in=1 out=2",
    ]
    (event,), bad, skipped = parse("dovecot", lines)
    assert bad == []
    assert event.user == "ivanov"
    assert event.imap_id == '("name" "iPhone Mail" "os" "iOS" "os-version" "16.5 (20F66)")'
    assert event.resource == "email"
    assert skipped == 2


def test_dovecot_id_after_login_and_bsd_syslog() -> None:
    lines = [
        "Jul 17 09:00:01 mail dovecot[812]: imap-login: Login: user=<petrov@minfin.example>, "
        "method=PLAIN, rip=2001:db8::5, lip=192.0.2.25, mpid=43, TLS, session=<Q1>",
        "Jul 17 09:00:02 mail dovecot[812]: imap(petrov@minfin.example)<43><Q1>: ID sent: "
        'name=K-9 Mail, version=6.6, os=Android, note=say "hi"',
        "Jul 17 09:00:03 mail dovecot[812]: imap-login: Login: user=<sidorova>, method=PLAIN, "
        "rip=198.51.100.4, session=<Q2>",
        "not syslog at all",
    ]
    events, bad, _ = parse("dovecot", lines)
    assert bad == [4]
    by_user = {e.user: e for e in events}
    assert by_user["petrov@minfin.example"].imap_id == (
        '("name" "K-9 Mail" "version" "6.6" "os" "Android" "note" "say \\"hi\\"")'
    )
    assert by_user["petrov@minfin.example"].ts == datetime(2023, 7, 17, 6, 0, 1, tzinfo=UTC)
    assert by_user["petrov@minfin.example"].client_ip == "2001:db8::5"
    assert by_user["sidorova"].imap_id is None  # a login whose client sent no ID


# Postfix


def test_postfix_sasl_lines_only() -> None:
    lines = [
        "2023-07-17T09:00:00.123456+03:00 mail postfix/submission/smtpd[1201]: 4F3A1: "
        "client=unknown[198.51.100.7], sasl_method=PLAIN, sasl_username=ivanov@minpromtorg.example",
        "2023-07-17T09:00:00+03:00 mail postfix/qmgr[812]: 4F3A1: from=<ivanov@x>, size=1, nrcpt=1",
        "Jul 17 09:00:05 mail postfix/smtpd[1202]: connect from unknown[2001:db8::9]",
        "2023-07-17T09:00:00+03:00mail postfix broken",
    ]
    events, bad, skipped = parse("postfix", lines)
    assert [e.user for e in events] == ["ivanov@minpromtorg.example"]
    assert events[0].client_ip == "198.51.100.7"
    assert (bad, skipped) == ([4], 2)


# FreeRADIUS detail


def test_radius_records_starts_only() -> None:
    lines = [
        "Mon Jul 17 09:00:01 2023",
        "\tPacket-Type = Access-Request",
        '\tUser-Name = "ivanov@minpromtorg.example"',
        '\tCalling-Station-Id = "3C-22-FB-01-02-03"',
        "\tTimestamp = 1689573601",
        "",
        "Mon Jul 17 09:05:01 2023",
        "\tAcct-Status-Type = Interim-Update",
        '\tUser-Name = "ivanov@minpromtorg.example"',
        "",
        "Mon Jul 17 09:10:01 2023",
        "\tAcct-Status-Type = Start",
        '\tUser-Name = "petrov"',
        '\tCalling-Station-Id = "aa:bb:cc:dd:ee:ff"',
        "",
        "\tOrphan-Attribute = 1",
    ]
    events, bad, skipped = parse("radius", lines)
    assert [(e.user, e.mac, e.line) for e in events] == [
        ("ivanov@minpromtorg.example", "3C-22-FB-01-02-03", 1),
        ("petrov", "aa:bb:cc:dd:ee:ff", 11),
    ]
    assert events[0].ts == datetime.fromtimestamp(1689573601, UTC)
    assert events[1].ts == datetime(2023, 7, 17, 6, 10, 1, tzinfo=UTC)  # header read in MSK
    assert events[0].resource == "wifi"
    assert (bad, skipped) == ([16], 1)


# devicegate's decision log


def test_decision_log_lines() -> None:
    lines = [
        '{"at": "2023-07-17T09:00:00+03:00", "user": "ivanov", "resource": "email", '
        '"signals": {"imap_id": "(\\"name\\" \\"iPhone Mail\\")"}, "action": "block"}',
        '{"at": "2023-07-17T09:00:00Z", "user": "petrov", "resource": "web", "user_agent": "UA"}',
        '{"at": "2023-07-17", "user": "x", "resource": "web", "signals": {"bogus": "1"}}',
        "{not json",
        "[1, 2]",
    ]
    events, bad, _ = parse("decisions", lines)
    assert [(e.user, e.resource) for e in events] == [("ivanov", "email"), ("petrov", "web")]
    assert events[0].imap_id == '("name" "iPhone Mail")'
    assert events[1].user_agent == "UA"
    assert bad == [3, 4, 5]


# detection and gzip


@pytest.mark.parametrize(
    ("fmt", "first"),
    [
        (
            "nginx",
            '198.51.100.7 - bob [17/Jul/2023:09:15:02 +0300] "GET / HTTP/1.1" 200 1 "-" "UA"',
        ),
        ("w3c", "#Software: Microsoft Internet Information Services 10.0"),
        ("dovecot", "Jul 17 09:00:01 mail dovecot: imap-login: Login: user=<a>, session=<b>"),
        ("postfix", "Jul 17 09:00:01 mail postfix/smtpd[1]: connect from x[1.2.3.4]"),
        ("radius", 'Mon Jul 17 09:00:01 2023\n\tUser-Name = "a"'),
        ("decisions", '{"at": "2023-07-17T09:00:00Z", "user": "a", "resource": "web"}'),
    ],
)
def test_detection(tmp_path: Path, fmt: str, first: str) -> None:
    assert detect(first.splitlines(keepends=True)) == fmt
    path = tmp_path / "log.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(first + "\n")
    assert detect_format(path) == fmt

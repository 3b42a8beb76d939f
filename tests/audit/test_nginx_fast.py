"""The nginx DuckDB fast path reads exactly what the reference parser reads.

Each log here is ingested twice, through `ingest_nginx_fast` and through the reference parser
(`ingest_python`), and the events are compared after the escaping `judge` undoes. A log of
awkward but well-formed lines must *stay* on the fast path (else the comparison proves
nothing); a line the fast path cannot vouch for must send its file to the reference parser.
"""

from __future__ import annotations

import gzip
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devicegate.audit import ingest
from devicegate.audit.events import SIGNAL_COLUMNS
from devicegate.audit.formats import nginx_fast
from devicegate.audit.formats.base import ParseContext, resource_for_path, user_or_none
from devicegate.audit.formats.nginx import TIME_FORMAT, unescape

MSK = timezone(timedelta(hours=3))
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15"
STAMP = "17/Jul/2023:09:00:00 +0300"


def line(
    user: str = "ivanov",
    target: str = "/portal/news",
    agent: str = UA,
    *,
    ip: str = "198.51.100.7",
    ident: str = "-",
    stamp: str = STAMP,
    request: str | None = None,
    tail: str = "",
    status: str = "200 512",
) -> str:
    request = f"GET {target} HTTP/1.1" if request is None else request
    return f'{ip} {ident} {user} [{stamp}] "{request}" {status} "-" "{agent}"{tail}'


def plain(count: int) -> list[str]:
    """Well-formed lines over a few users, agents and targets (one zone)."""
    start = datetime(2023, 7, 1, tzinfo=MSK)
    users = ["ivanov", "petrov@minfin.example", "-", "sidorova"]
    targets = ["/portal/news", "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=A1", "/owa/"]
    return [
        line(
            users[i % 4],
            targets[i % 3],
            f"{UA} build/{i % 5}",
            stamp=f"{start + timedelta(minutes=7 * i):%d/%b/%Y:%H:%M:%S %z}",
        )
        for i in range(count)
    ]


AWKWARD = [
    line("-"),  # nobody: skipped
    line("GOV\\x5Cpetrov"),  # DOMAIN\login: kept as presented (resolved when judged)
    line("\\x2D"),  # reads as `-`: skipped
    line("GOV\\x5C"),  # a name that names nobody: an unknown user
    line(agent="-"),
    line(agent=""),
    line(agent="\\x2D"),  # reads as `-`: no agent
    line(agent="Mozilla/5.0 \\x22quoted\\x22 \\x5C"),
    line(ip="2001:db8::1"),
    line(ip="gateway.example"),
    line(ip="шлюз"),  # non-ASCII but no space: a token
    line(ident="ident1"),  # the same user under another ident: one group
    line("iva[nov]"),
    line("иванов"),
    line(stamp="17/Jul/2023:09:00:00 -0500"),  # another zone: the same group
    line(stamp=" 3/Jul/2023:09:00:00 +0300"),  # a space-padded day
    line(stamp="03/jul/2023:09:00:00 +0300"),  # any case of month
    line(stamp="29/Feb/2024:23:59:59 +0000"),
    line(status="- -"),
    line(status="499 0"),
    line(request=""),
    line(request="-"),
    line(request="GET"),
    line(tail=" 0.123 upstream"),  # unquoted extra fields
    line(tail=" "),
    # mail endpoints in any case, and look-alikes
    line(target="/OWA/auth.owa"),
    line(target="/Ews/Exchange.asmx"),
    line(target="/mapi/nspi/"),
    line(target="/RPC/rpcproxy.dll"),
    line(target="/autodiscover/autodiscover.xml"),
    line(target="/oab/x"),
    line(target="/owax"),
    line(target="/ma"),
    line(target="/api/owa"),
    line(target="/mapİ/x"),  # Python lowers İ to i + a combining dot: still /mapi
    line(target="/oabK"),
    line(target="/ſ/owa"),
    line(target="/microſoft-server-activeſync?Cmd=Sync"),  # ſ is not s for Python
    # ActiveSync query forms
    line(target="/Microsoft-Server-ActiveSync"),
    line(target="/Microsoft-Server-ActiveSync?"),
    line(target="/Microsoft-Server-ActiveSync??x"),
    line(target="/microsoft-server-activesync?Cmd=Ping&DeviceId=B2&DeviceType=iPad"),
    line(target="/MICROSOFT-SERVER-ACTIVESYNC/default.eas?User=x&DeviceId=C3"),
    line(target="/Microsoft-Server-ActiveSyncX?Cmd=Sync"),
    line(target="/Microsoft-Server-ActiveSync?Cmd=Sync&Id=%D0%B8"),
    line(target="/Microsoft-Server-ActiveSync?Cmd=Sync&Dev=ü"),
    # escapes in the request: the reference unescapes before it splits
    line(target="\\x2Fowa/"),
    line(request="GET\\x20/owa/ HTTP/1.1"),
    line(target="/Microsoft-Server-ActiveSync?Cmd=Sync\\x20tail"),
    line(target="/Microsoft-Server-ActiveSync?Cmd=Sync&Dev=\\x5C\\x5C"),
    line(target="/Microsoft-Server-ActiveSync\\x3FCmd=Sync"),
    line(target="/a\\\\b"),
    # not for the fast path: rejected by DuckDB's reader, read by the reference per line
    line(agent='Apache \\"quoted\\" too'),
    line(tail=' "xff" "more"'),
    "garbage line",
    "",
    "   ",
]


def _ctx(path: Path, resource: str | None = None) -> ParseContext:
    return ParseContext(str(path), resource, ZoneInfo("Europe/Moscow"), 2023)


def _events(parquet: list[str]) -> Counter[tuple[object, ...]]:
    """(user, resource, signals…, time) per event, escaping undone as `judge` undoes it."""
    out: Counter[tuple[object, ...]] = Counter()
    for path in parquet:
        for row in pq.read_table(path).to_pylist():
            escaped = row["escaped"]
            user = user_or_none(unescape(row["user"])) if escaped else row["user"]
            signals = tuple(
                unescape(row[c]) if escaped and row[c] is not None else row[c]
                for c in SIGNAL_COLUMNS
            )
            assert row["n"] == len(row["ts"])
            for ts in row["ts"]:
                out[(user, row["resource"], *signals, ts)] += 1
    return out


def _write(tmp_path: Path, lines: list[str], name: str = "access.log") -> Path:
    log = tmp_path / name
    text = "\n".join(lines) + "\n"
    if name.endswith(".gz"):
        with gzip.open(log, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        log.write_text(text, encoding="utf-8")
    return log


def _both(log: Path, resource: str | None = None) -> tuple[ingest.Ingested | None, ingest.Ingested]:
    ctx = _ctx(log, resource)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        fast = ingest.ingest_nginx_fast(con, log, ctx, log.with_name("fast.parquet"))
        slow = ingest.ingest_python(con, log, "nginx", ctx, log.with_name("slow.parquet"))
    finally:
        con.close()
    return fast, slow


def _assert_same(fast: ingest.Ingested | None, slow: ingest.Ingested) -> None:
    assert fast is not None, "the fast path fell back"
    assert _events(fast.parquet) == _events(slow.parquet)
    assert (fast.events, fast.skipped, fast.bad) == (slow.events, slow.skipped, slow.bad)
    assert [(b.line, b.reason) for b in fast.bad_sample] == [
        (b.line, b.reason) for b in slow.bad_sample
    ]


@pytest.mark.parametrize("name", ["access.log", "access.log.gz"])
@pytest.mark.parametrize("resource", [None, "email", "vpn"])
def test_awkward_lines_stay_fast_and_read_the_same(
    tmp_path: Path, name: str, resource: str | None
) -> None:
    lines = plain(300)
    lines[150:150] = AWKWARD
    fast, slow = _both(_write(tmp_path, lines, name), resource)
    _assert_same(fast, slow)
    assert fast is not None and fast.skipped > 0 and fast.bad > 0


FALLBACK = {
    "tab in the address": line(ip="198.51.100.7\t"),
    "no address": " " + line()[len("198.51.100.7") :],
    "no-break space in the address": line(ip="198.51.100.7\xa0x"),
    "two spaces": line().replace(" - ", "  - ", 1),
    "tab in the user": line("iva\tnov"),
    "tab before the day": line(stamp="\t3/Jul/2023:09:00:00 +0300"),
    "hour 24": line(stamp="17/Jul/2023:24:00:00 +0300"),
    "30 February": line(stamp="30/Feb/2023:09:00:00 +0300"),
    "year 0": line(stamp="17/Jul/0000:09:00:00 +0300"),
    "two-digit year": line(stamp="17/Jul/23:09:00:00   +0300"),
    "minute 60 in the zone": line(stamp="17/Jul/2023:09:00:00 +0360"),
    "zone of a day": line(stamp="17/Jul/2023:09:00:00 +2400"),
    "colon in the zone": line(stamp="17/Jul/2023:09:00:00 +03:00"),
    "four-digit status": line(status="2000 1"),
    "status with a sign": line(status="+20 1"),
    "something between the quotes": line().replace('"-" "', '"-"x"', 1),
    "something after the agent": line(tail="x"),
    "referer ending in a backslash": line().replace('"-"', '"-\\"', 1),
    "request ending in a backslash": line(request="GET /a\\"),
    "agent ending in a backslash": line(agent="UA\\"),
    "bare CR inside a line": line(target="/a\rb"),
    "Apache escape closing the agent": line(agent='Apache \\"quoted\\"'),
}


@pytest.mark.parametrize("case", sorted(FALLBACK))
def test_lines_it_cannot_vouch_for_send_the_file_to_the_parser(tmp_path: Path, case: str) -> None:
    lines = plain(40)
    lines[20:20] = [FALLBACK[case]]
    log = _write(tmp_path, lines)
    fast, slow = _both(log)
    assert fast is None
    done = ingest.ingest_file(log, "nginx", _ctx(log), tmp_path / "auto")
    assert _events(done.parquet) == _events(slow.parquet)
    assert (done.events, done.skipped, done.bad) == (slow.events, slow.skipped, slow.bad)


TARGET_CHARS = st.sampled_from(
    [*"/?&=.-_%\\ aAsSkKoOwWmMeEiIcCrRpPtTvVyYnNbBdDuU0x5C2F3F", "İ", "ſ", "K", "ü", "\\x"]
)
PIECES = st.sampled_from(
    [
        "/Microsoft-Server-ActiveSync",
        "/microsoft-server-activesync",
        "/owa",
        "/EWS",
        "/mapi",
        "/rpc",
        "/autodiscover",
        "/oab",
        "/portal",
        "?Cmd=Sync",
        "?",
        "\\x3F",
        "\\x20",
        "\\x2F",
        " ",
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    targets=st.lists(
        st.lists(st.one_of(PIECES, TARGET_CHARS), max_size=6).map("".join),
        min_size=1,
        max_size=12,
    ),
    methods=st.sampled_from(["GET", "POST", "", "OPTIONS"]),
)
def test_requests_read_as_the_reference_reads_them(
    tmp_path: Path, targets: list[str], methods: str
) -> None:
    lines = [
        line(request=f"{methods} {target} HTTP/1.1" if methods else target, user=f"u{i % 3}")
        for i, target in enumerate(targets)
    ]
    log = _write(tmp_path, lines, f"req-{abs(hash(tuple(targets)))}.log")
    fast, slow = _both(log)
    if fast is None:  # only a request ending in an odd run of backslashes may fall back
        assert any(r.rstrip("\\") != r for r in targets)
        return
    _assert_same(fast, slow)


LOCAL_CHARS = st.sampled_from([*"0123456789 /:+-\t\x0b\x0cJjUuLlFfEeBbOo", "٣", "\xa0", "]"])


def _mutated(base: str, edits: list[tuple[int, str]]) -> str:
    chars = list(base)
    for where, char in edits:
        chars[where % len(chars)] = char
    return "".join(chars)


@settings(max_examples=400, deadline=None)
@given(
    at=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    edits=st.lists(st.tuples(st.integers(0, 19), LOCAL_CHARS), max_size=3),
)
@example(at=datetime(2023, 7, 3), edits=[(0, "\t")])
@example(at=datetime(2023, 7, 3), edits=[(7, "0"), (8, "0"), (9, "0"), (10, "0")])
@example(at=datetime(2023, 7, 3), edits=[(12, "2"), (13, "4")])
@example(at=datetime(2023, 7, 3), edits=[(7, " "), (8, "0")])
def test_local_times_sql_accepts_read_the_same_in_python(
    at: datetime, edits: list[tuple[int, str]]
) -> None:
    """What the per-line SQL accepts as a local time, `datetime.strptime` reads the same."""
    local = _mutated(at.strftime(nginx_fast.LOCAL_FORMAT).rjust(20, "0"), edits)
    parsed = duckdb.execute(
        "SELECT CASE WHEN $1 LIKE $2 AND ascii($1) >= 32 AND try_strptime($1, $3) "
        "BETWEEN TIMESTAMP '0001-01-02' AND TIMESTAMP '9999-12-30' THEN try_strptime($1, $3) END",
        [local, nginx_fast.LOCAL_LIKE, nginx_fast.LOCAL_FORMAT],
    ).fetchone()
    assert parsed is not None
    if parsed[0] is None:
        return
    python = datetime.strptime(f"{local} +0300", TIME_FORMAT)
    assert python.replace(tzinfo=None) == parsed[0]


def test_spaces_are_every_character_python_calls_a_space() -> None:
    assert list(nginx_fast.SPACES) == [
        c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()
    ]


def test_mail_paths_are_the_ones_the_formats_call_email() -> None:
    for path in nginx_fast.MAIL_PATHS:
        assert resource_for_path(path.upper() + "/x", None, "web") == "email"
    assert resource_for_path("/portal", None, "web") == "web"


def test_zone_keys_read_as_time_format_reads_them() -> None:
    for zone in ("+0300", "-0500", "+0000", "-0000", "+2359", "+0360", "+2400", "+03:0", "Z0000"):
        try:
            offset = datetime.strptime(f"17/Jul/2023:09:00:00 {zone}", TIME_FORMAT).utcoffset()
        except ValueError:
            offset = None
        got = nginx_fast.zone_offset_us(f" {zone}] ")
        assert got == (None if offset is None else offset // timedelta(microseconds=1)), zone


@pytest.mark.xfail(strict=True, reason="DuckDB's reader drops a trailing delimiter: see below")
def test_a_quote_after_the_agent_is_not_read_as_an_event(tmp_path: Path) -> None:
    """`…"agent""`: the reference rejects the line (a quote, not a space, after the agent),
    but DuckDB's reader takes the line-final `"` for a trailing delimiter and returns the
    same seven fields as for `…"agent"`. Nothing in the fields tells them apart; closing
    this gap needs the reader to keep that empty eighth field (or a byte count per line)."""
    lines = plain(40)
    lines[20:20] = [line() + '"']
    fast, slow = _both(_write(tmp_path, lines))
    assert fast is None or _events(fast.parquet) == _events(slow.parquet)


def _parts(log: Path, lines_per_part: int) -> tuple[ingest.Ingested, int]:
    target = log.with_name("parts.parquet")
    return ingest.ingest_nginx_parts(log, _ctx(log), target, lines_per_part=lines_per_part)


def _assert_same_as_reference(done: ingest.Ingested, log: Path) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        slow = ingest.ingest_python(con, log, "nginx", _ctx(log), log.with_name("slow.parquet"))
    finally:
        con.close()
    assert _events(done.parquet) == _events(slow.parquet)
    assert (done.events, done.skipped, done.bad) == (slow.events, slow.skipped, slow.bad)
    assert [(b.line, b.reason, b.text) for b in done.bad_sample] == [
        (b.line, b.reason, b.text) for b in slow.bad_sample
    ]


@pytest.mark.parametrize("case", sorted(FALLBACK))
def test_a_line_it_cannot_vouch_for_sends_only_its_part_to_the_parser(
    tmp_path: Path, case: str
) -> None:
    """A big file with one odd line: the file is read in parts, the part holding the line
    by the reference parser, the others on the fast path; together exactly the reference's
    events, counts, and bad lines with their numbers in the whole file."""
    lines = plain(500)
    lines[230:230] = [FALLBACK[case]]
    lines[60:60] = AWKWARD  # and rejected lines, whose numbers must be the file's
    log = _write(tmp_path, lines, "access.log.gz" if case.startswith("t") else "access.log")
    done, slow = _parts(log, 100)
    # the bare CR is a line end to the reference: one part more, still only one slow
    assert slow == 1
    _assert_same_as_reference(done, log)


def test_parts_keep_the_files_line_numbers_with_crs_and_undecodable_bytes(
    tmp_path: Path,
) -> None:
    """Parts are cut as the reference reads lines (`\\r\\n` ends one; undecodable bytes
    are replaced): every part stays fast, and the bad lines keep their numbers in the whole
    file. (A part that mixes line endings may fall back: DuckDB's reader takes one.)"""
    lines = plain(400)
    lines[120:120] = ["garbage \udcff line"]  # written below as an invalid UTF-8 byte
    lines[250:250] = ["more garbage"]
    text = "\r\n".join(lines) + "\r\n"
    log = tmp_path / "access.log"
    log.write_bytes(text.encode("utf-8", "surrogateescape"))
    done, slow = _parts(log, 64)
    assert slow == 0 and done.bad == 2
    _assert_same_as_reference(done, log)


def test_a_big_file_falls_back_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ingest_file` on a file the fast path cannot vouch for as a whole reads it in parts."""
    lines = plain(300)
    lines[150:150] = [FALLBACK["30 February"]]
    log = _write(tmp_path, lines)
    monkeypatch.setattr(ingest, "FAST_MIN_BYTES", 0)
    monkeypatch.setattr(ingest, "PART_LINES", 100)
    seen: list[int] = []
    parts = ingest.ingest_nginx_parts

    def spy(*args: object, **kwargs: object) -> tuple[ingest.Ingested, int]:
        result = parts(*args, **kwargs)  # type: ignore[arg-type]
        seen.append(result[1])
        return result

    monkeypatch.setattr(ingest, "ingest_nginx_parts", spy)
    done = ingest.ingest_file(log, "nginx", _ctx(log), tmp_path / "auto")
    assert seen == [1]
    assert len(done.parquet) == 4  # 301 lines in parts of 100: three fast, one parsed
    _assert_same_as_reference(done, log)

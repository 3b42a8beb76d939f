"""The DuckDB fast path for big combined logs: DuckDB's CSV reader splits the lines.

A combined line is three double-quoted fields among space-separated ones. Read with `"` as
the *delimiter* and no quoting, a well-formed line has exactly seven fields —

    f0 `ip ident user [time] `   f1 request   f2 ` status bytes `   f3 referer
    f4 ` `                       f5 agent     f6 '' (or ` more fields…`)

— which DuckDB's parallel CSV reader splits at close to memory speed (a field holds no
`"`: nginx logs it as `\\x22`). What it cannot split into seven — Apache's `\\"` escapes,
quoted extra fields, garbage — it *rejects* with the line number and text, and those lines
go through the reference parser in `nginx.py` (they become events or counted bad lines).
Accepted rows carry no line number, so a row the fast path cannot vouch for (`shaped` is
false, or `finish` returns None) makes the caller read the file again in parts and send
only the parts that still cannot be vouched for to the reference parser
(`ingest.ingest_nginx_parts`).

The query groups as it reads: one row per distinct raw key — `k0` (`ident user [`), the
agent, and `tail` (the zone ` +0300] `, plus what the request says when it is not plain,
see `parse_query`) — with the count and the list of local event times. Per line it does
only cheap string work; what needs the reference's own code is checked once per distinct
value, in `finish`. What is validated where:

* per line, in SQL: the client address is a `\\S+` token (a class of every character
  Python's `\\s` matches), the 20 characters of the local time have the layout
  `DD/Mon/YYYY:HH:MM:SS`, start with no control character and parse with DuckDB's
  `strptime` (which raises, and the caller falls back, on a time that does not), the year
  is 1…9999, status and bytes match the reference's pattern, the fields between and after
  the quotes are `' '` and nothing or ` …`, and the referer does not end in a backslash
  (the reference would read `\\"` as an escaped quote);
* per distinct value, in `finish`: `k0` against `\\S+ (\\S+) \\[` (the user), the zone
  against `TIME_FORMAT` (its offset is applied per group), escaped users and agents
  (unescaped as the reference does, to tell a user or agent that reads as `-`), and every
  request the SQL does not read exactly — one holding a backslash (the reference unescapes
  before splitting) or with a non-ASCII start — with `nginx.request_target` and
  `resource_for_path`; a request or agent ending in an odd run of backslashes falls back.

For an ASCII target the SQL mail test is exact: Python's `lower()` maps no non-ASCII
character but `İ` and `K` (Kelvin) to ASCII, and a target whose first 28 characters are not
ASCII goes to `finish`. DuckDB's `strptime` on the checked layout accepts only what
`datetime.strptime` reads the same way (`tests/audit/test_nginx_fast.py` checks it with
Hypothesis). Values are kept as logged; `escaped` marks groups whose user or signals contain
a backslash, and `judge` undoes the escaping on those distinct values with the same
`nginx.unescape` the reference parser uses. `tests/audit/test_nginx_fast.py` pins that both
paths give the same events, and that the lines the fast path cannot vouch for send their
file (or, read in parts, their part) to the reference parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from devicegate.audit.events import SIGNAL_COLUMNS
from devicegate.audit.formats.base import ACTIVESYNC_PATH, resource_for_path, user_or_none
from devicegate.audit.formats.nginx import TIME_FORMAT, request_target, unescape

#: The Exchange mail endpoints `resource_for_path` calls `email` (pinned by a test).
MAIL_PATHS = (ACTIVESYNC_PATH, "/owa", "/ews", "/mapi", "/rpc", "/autodiscover", "/oab")
FIELDS = 7
LOCAL_FORMAT = TIME_FORMAT.split(" ")[0]
#: The layout of `DD/Mon/YYYY:HH:MM:SS`; DuckDB's `strptime` checks the rest.
LOCAL_LIKE = "__/___/____:__:__:__"
#: Every character Python's `\\s` (and `str.isspace`) matches: pinned by a test.
SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(
    map(chr, [*range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000])
)
PY_SPACE = "".join(f"\\x{{{ord(c):x}}}" for c in SPACES)
_K0 = re.compile(r"\S+ (\S+) \[")
T = TypeVar("T")


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def reader(source: str, compression: str) -> str:
    columns = ", ".join(f"'f{i}': 'VARCHAR'" for i in range(FIELDS))
    return (
        f"read_csv({sql_literal(source)}, delim = '\"', quote = '', escape = '', "
        f"header = false, auto_detect = false, columns = {{{columns}}}, "
        f"compression = {sql_literal(compression)}, strict_mode = true, "
        "store_rejects = true, rejects_table = 'nginx_rejects', rejects_scan = 'nginx_scan')"
    )


def parse_query(source: str, compression: str) -> str:
    """A SELECT over the file yielding one row per distinct raw key (see the module doc):
    `k0`, `ua`, `tail`, `n`, `shaped`, `ts` (local times). `tail` is the zone key
    (` +0300] `, 8 characters), then `m` (a mail endpoint), `q` + the ActiveSync query, or
    `r` + the raw request for `finish` to read; nothing more for the common case."""
    target = "split_part(request, ' ', 2)"
    head = f"lower(substr({target}, 1, {len(ACTIVESYNC_PATH)}))"
    start = f"substr({target}, 1, {len(ACTIVESYNC_PATH)})"
    ascii_head = f"strlen({start}) = length({start})"
    prefixes = ", ".join(sql_literal(p[:3]) for p in MAIL_PATHS)
    mail = " OR ".join(f"starts_with({head}, {sql_literal(p)})" for p in MAIL_PATHS)
    spaces = " OR ".join(f"contains(f0, chr({ord(c)}))" for c in SPACES if c < "\x80" and c != " ")
    nonspace = sql_literal(f"[^{PY_SPACE}]+")
    # per line only cheap work; the rare requests (kind 1: maybe a mail endpoint, 2: holds
    # a backslash) pay for their `tail` in the CASE, which DuckDB runs on those rows alone
    return f"""
    WITH fields AS (
        SELECT f0, f2, f3, f4, f6, strpos(f0, ' ') AS p0, f1 AS request, f5 AS ua
        FROM {reader(source, compression)}
    ), cut AS (
        SELECT substr(f0, p0 + 1, length(f0) - 28 - p0) AS k0, substr(f0, -8) AS tz,
            substr(f0, -28, 20) AS local, request, ua,
            CASE WHEN contains(request, '\\') THEN 2
                 WHEN lower(substr(request, strpos(request, ' ') + 1, 3)) IN ({prefixes})
                 THEN 1 ELSE 0 END AS kind,
            p0 > 1 AND NOT ({spaces})
                AND CASE WHEN strlen(f0) = length(f0) THEN true
                         ELSE regexp_full_match(substr(f0, 1, p0 - 1), {nonspace}) END
                AND regexp_full_match(f2, ' (\\d{{3}}|-) (\\d+|-) ')
                AND f4 = ' ' AND (f6 IS NULL OR starts_with(f6, ' '))
                AND NOT coalesce(ends_with(f3, '\\'), false) AS fields_ok
        FROM fields
    ), lines AS (
        SELECT k0, ua, strptime(local, {sql_literal(LOCAL_FORMAT)}) AS ts,
            CASE WHEN kind = 0 THEN tz
                 WHEN kind = 2 OR NOT ({ascii_head}) THEN tz || 'r' || request
                 WHEN starts_with({head}, {sql_literal(ACTIVESYNC_PATH)})
                      AND strpos({target}, '?') BETWEEN 1 AND length({target}) - 1
                 THEN tz || 'q' || substr({target}, strpos({target}, '?') + 1)
                 WHEN {mail} THEN tz || 'm'
                 ELSE tz END AS tail,
            fields_ok AND local LIKE {sql_literal(LOCAL_LIKE)} AND ascii(local) >= 32 AS fields_ok
        FROM cut
    )
    SELECT k0, ua, tail, count(*) AS n,
        bool_and(coalesce(
            fields_ok AND ts BETWEEN TIMESTAMP '0001-01-02' AND TIMESTAMP '9999-12-30', false
        )) AS shaped,
        list(ts) AS ts
    FROM lines GROUP BY k0, ua, tail
    """


@cache
def zone_offset_us(tz: str) -> int | None:
    """The UTC offset (µs) of a ` +0300] ` zone key as `TIME_FORMAT` reads it; None: not."""
    if len(tz) != 8 or tz[0] != " " or tz[6:] != "] ":
        return None
    try:
        offset = datetime.strptime("01/Jan/2000:00:00:00 " + tz[1:6], TIME_FORMAT).utcoffset()
    except ValueError:
        return None
    return None if offset is None else offset // timedelta(microseconds=1)


def _tail(tail: str, resource: str) -> tuple[int, str, str | None] | None:
    """(UTC offset µs, resource, ActiveSync query as logged) of a `tail`; None: bad zone."""
    offset = zone_offset_us(tail[:8])
    if offset is None:
        return None
    kind, rest = tail[8:9], tail[9:]
    if kind == "q":
        return offset, "email", rest
    if kind == "m":
        return offset, "email", None
    if kind != "r":
        return offset, resource, None
    if _odd_backslashes(rest):
        return None  # the reference reads its closing quote as escaped
    # a request the SQL does not read exactly: the reference's own steps
    target = request_target(unescape(rest))
    path, _, query = target.partition("?")
    activesync = query if path.lower().startswith(ACTIVESYNC_PATH) and query else None
    # kept in the logged (escaped) form: `judge` unescapes the values of escaped groups
    logged = activesync.replace("\\", "\\x5C") if activesync is not None else None
    return offset, resource_for_path(path, resource, resource), logged


def _by_distinct(
    column: pa.ChunkedArray, fn: Callable[[str], T | None]
) -> tuple[list[T], pa.Array] | None:
    """`fn` over the distinct values of a string column: (results, each row's index into
    them); None if any value gives None."""
    encoded = column.combine_chunks().dictionary_encode()
    done = [fn(value) for value in encoded.dictionary.to_pylist()]
    if any(value is None for value in done):
        return None
    return [value for value in done if value is not None], encoded.indices


def finish(groups: pa.Table, resource: str) -> tuple[pa.Table, int, bool] | None:
    """Raw groups of `parse_query` → (events in the grouped shape, without `g`, `sig` and
    `line`; skipped lines; whether two rows may share a key — different idents, zones, raw
    requests or agents that read the same — and must be merged), or None when some row or
    distinct value does not check out."""
    if groups.num_rows and not pc.all(groups.column("shaped")).as_py():
        return None
    by_user = _by_distinct(groups.column("k0"), _user_token)
    by_tail = _by_distinct(groups.column("tail"), lambda tail: _tail(tail, resource))
    if by_user is None or by_tail is None:
        return None
    (names, user_at), (tails, tail_at) = by_user, by_tail
    user = pa.array(names, pa.string()).take(user_at)
    where = pa.array([t[1] for t in tails], pa.string()).take(tail_at)
    query = pa.array([t[2] for t in tails], pa.string()).take(tail_at)
    offset = pa.array([t[0] for t in tails], pa.int64()).take(tail_at)
    ua = pc.fill_null(groups.column("ua").combine_chunks(), "")
    none = pc.is_in(ua, pa.array(["", "-"]))
    agent = pc.if_else(none, pa.scalar(None, pa.string()), ua)
    escaped = pc.fill_null(
        pc.or_kleene(
            pc.or_(pc.match_substring(user, "\\"), pc.match_substring(ua, "\\")),
            pc.match_substring(query, "\\"),
        ),
        False,
    )
    keep = pc.not_equal(user, "-")
    shared = len(set(names)) < len(names) or len({t[1:] for t in tails}) < len(tails)
    if pc.any(escaped).as_py():  # the reference's own steps on those few rows
        keep_list, agent_list = keep.to_pylist(), agent.to_pylist()
        users, agents = user.to_pylist(), ua.to_pylist()
        for i in pc.indices_nonzero(escaped).to_pylist():
            if _odd_backslashes(agents[i]):
                return None
            keep_list[i] = user_or_none(unescape(users[i])) is not None
            agent_list[i] = None if unescape(agents[i]) in ("", "-") else agents[i]
        keep, agent = pa.array(keep_list, pa.bool_()), pa.array(agent_list, pa.string())
        shared = True  # unescaped agents may read as none
    if pc.count_distinct(pc.filter(ua, none)).as_py() > 1:
        shared = True  # `""` and `"-"`: both no agent
    n = groups.column("n").combine_chunks()
    skipped = int(pc.sum(pc.filter(n, pc.invert(keep))).as_py() or 0)
    if not pc.all(keep).as_py():
        rows = pc.indices_nonzero(keep)
        user, escaped, where, agent, query, offset, n = (
            a.take(rows) for a in (user, escaped, where, agent, query, offset, n)
        )
        times = groups.column("ts").combine_chunks().take(rows)
    else:
        times = groups.column("ts").combine_chunks()
    local = pc.list_flatten(times).cast(pa.int64())
    shift = offset.take(pc.list_parent_indices(times))
    utc = pc.subtract(local, shift).cast(pa.timestamp("us", "UTC"))
    starts = pc.subtract(times.offsets, times.offsets[0])
    signals = {"user_agent": agent, "activesync_query": query}
    table = pa.table(
        {
            "user": user,
            "escaped": escaped,
            "resource": where,
            **{name: signals.get(name, pa.nulls(len(n), pa.string())) for name in SIGNAL_COLUMNS},
            "n": n,
            "ts": pa.ListArray.from_arrays(starts, utc),
        }
    )
    return table, skipped, shared


def _odd_backslashes(text: str) -> bool:
    """Whether a quoted field ends in an odd run of backslashes (`\\"` would not close it)."""
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


def _user_token(k0: str) -> str | None:
    """The user of a `k0` (`ident user [`) as the reference's line pattern splits it."""
    match = _K0.fullmatch(k0)
    return None if match is None else match[1]

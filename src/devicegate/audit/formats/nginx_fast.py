"""The DuckDB fast path for big combined logs: DuckDB's CSV reader splits the lines.

A combined line is three double-quoted fields among space-separated ones. Read with `"` as
the *delimiter* and no quoting, a well-formed line has exactly seven fields —

    f0 `ip ident user [time] `   f1 request   f2 ` status bytes `   f3 referer
    f4 ` `                       f5 agent     f6 '' (or ` more fields…`)

— which DuckDB's parallel CSV reader splits at close to memory speed (a field holds no
`"`: nginx logs it as `\\x22`). What it cannot split into seven — Apache's `\\"` escapes,
quoted extra fields, garbage — it *rejects* with the line number and text, and those lines
go through the reference parser in `nginx.py` (they become events or counted bad lines).
Rows it splits are checked in SQL against the reference line pattern (time in brackets,
numeric status); if any row fails, the caller re-reads the whole file with the reference
parser, because accepted rows carry no line number to report.

The query groups events as it reads them: one row per distinct (user, agent, mail
endpoint, ActiveSync query) with the count and the list of event times, so the wide
strings are kept once per group, not once per line (the grouped shape of `ingest`).
Values are kept as logged; `escaped` marks groups whose user or signals contain a
backslash, and `judge` undoes the escaping on those distinct values with the same
`nginx.unescape` the reference parser uses. `tests/audit/test_audit.py` pins that both
paths give the same judged events.
"""

from __future__ import annotations

from devicegate.audit.formats.base import ACTIVESYNC_PATH
from devicegate.audit.formats.nginx import TIME_FORMAT

MAIL_PATTERN = "(?i:/microsoft-server-activesync|/owa|/ews|/mapi|/rpc|/autodiscover|/oab)"
FIELDS = 7


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


def parse_query(source: str, compression: str, resource: str) -> str:
    """A SELECT over the file yielding one row per distinct (user, signals, resource):
    `user` (NULL: nobody authenticated), `escaped`, `resource`, the signal columns, `n`,
    `ts` (the list of event times), `shaped` (every row of the group checks out)."""
    target = "split_part(req, ' ', 2)"
    return f"""
    WITH lines AS (
        SELECT regexp_extract(f0, '^\\S+ \\S+ (\\S+) \\[[^\\]]{{26}}\\] $', 1) AS u, f5 AS ua,
            try_strptime(substr(f0, -28, 26), {sql_literal(TIME_FORMAT)}) AS ts,
            lower(regexp_extract(f1, '^[^ ]* ({MAIL_PATTERN})', 1)) AS mail_path,
            CASE WHEN mail_path = {sql_literal(ACTIVESYNC_PATH)} THEN f1 END AS req,
            (u <> '' AND regexp_full_match(f2, ' (\\d{{3}}|-) (\\d+|-) ')
             AND f4 = ' ' AND (f6 IS NULL OR starts_with(f6, ' '))) AS shaped
        FROM {reader(source, compression)}
    ), activesync AS (
        SELECT u, ua, ts, mail_path <> '' AS mail, shaped,
            nullif(CASE WHEN strpos({target}, '?') > 0
                        THEN substr({target}, strpos({target}, '?') + 1) END, '') AS query
        FROM lines
    ), groups AS (
        SELECT u, ua, mail, query, count(*) AS n,
            bool_and(coalesce(shaped AND ts IS NOT NULL, false)) AS shaped,
            list(ts) AS ts
        FROM activesync GROUP BY ALL
    )
    SELECT CASE WHEN u NOT IN ('', '-') THEN u END AS "user",
        (contains(u, '\\') OR contains(ua, '\\') OR contains(coalesce(query, ''), '\\'))
            AS escaped,
        CASE WHEN mail THEN 'email' ELSE {sql_literal(resource)} END AS resource,
        CASE WHEN ua NOT IN ('', '-') THEN ua END AS user_agent,
        query AS activesync_query,
        NULL::VARCHAR AS activesync_device_id,
        NULL::VARCHAR AS activesync_device_type,
        NULL::VARCHAR AS imap_id,
        NULL::VARCHAR AS mac,
        n, shaped, ts
    FROM groups
    """

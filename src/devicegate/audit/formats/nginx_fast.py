"""The DuckDB fast path for big combined logs: DuckDB's CSV reader splits the lines.

A combined line is ten space-separated fields, three of them double-quoted, so DuckDB's
parallel CSV reader (delimiter space, quote `"`) types them far faster than a Python loop.
What it cannot split — Apache's `\\"` escapes, extra fields, garbage — it *rejects* with
the line number and text, and those lines go through the reference parser in `nginx.py`
(they become events or counted bad lines). Rows it splits are then checked in SQL (time in
brackets, numeric status); if any row fails that check, the caller re-reads the whole file
with the reference parser, because accepted rows carry no line number to report.

Values are stored as logged: rows whose user, request or agent contain a backslash are
flagged `escaped`, and `judge` undoes the escaping on the distinct values (cheap) with the
same `nginx.unescape` the reference parser uses. `tests/audit/test_nginx.py` pins that
both paths give the same judged events.
"""

from __future__ import annotations

from devicegate.audit.formats.base import ACTIVESYNC_PATH
from devicegate.audit.formats.nginx import TIME_FORMAT

MAIL_PREFIXES = (
    "/microsoft-server-activesync",
    "/owa",
    "/ews",
    "/mapi",
    "/rpc",
    "/autodiscover",
    "/oab",
)
COLUMNS = ("ip", "ident", "u", "t", "tz", "req", "status", "bytes", "ref", "ua")


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def reader(source: str, compression: str) -> str:
    columns = ", ".join(f"'{name}': 'VARCHAR'" for name in COLUMNS)
    return (
        f"read_csv({sql_literal(source)}, delim = ' ', quote = '\"', escape = '\"', "
        f"header = false, auto_detect = false, columns = {{{columns}}}, "
        f"compression = {sql_literal(compression)}, strict_mode = true, "
        "store_rejects = true, rejects_table = 'nginx_rejects', rejects_scan = 'nginx_scan')"
    )


def parse_query(source: str, compression: str, resource: str) -> str:
    """A SELECT over the file yielding the parsed columns and `ok` (the row checks out)."""
    mail = " OR ".join(f"starts_with(lower(path), {sql_literal(p)})" for p in MAIL_PREFIXES)
    return f"""
    WITH fields AS (
        SELECT ip, u, ua,
            try_strptime(t || ' ' || tz, '[{TIME_FORMAT}]') AS ts,
            split_part(req, ' ', 2) AS target,
            (t LIKE '[%' AND tz LIKE '%]' AND regexp_full_match(status, '\\d{{3}}|-')
             AND regexp_full_match(bytes, '\\d+|-')) AS shaped,
            (contains(u, '\\') OR contains(req, '\\') OR contains(ua, '\\')) AS escaped
        FROM {reader(source, compression)}
    ), parsed AS (
        SELECT *,
            split_part(target, '?', 1) AS path,
            CASE WHEN strpos(target, '?') > 0 THEN substr(target, strpos(target, '?') + 1) END
                AS query
        FROM fields
    )
    SELECT NULL::BIGINT AS line, ts,
        CASE WHEN u NOT IN ('', '-') THEN u END AS "user",
        CASE WHEN {mail} THEN 'email' ELSE {sql_literal(resource)} END AS resource,
        ip AS client_ip,
        CASE WHEN ua NOT IN ('', '-') THEN ua END AS user_agent,
        CASE WHEN starts_with(lower(path), {sql_literal(ACTIVESYNC_PATH)}) AND query <> ''
             THEN query END AS activesync_query,
        NULL::VARCHAR AS activesync_device_id,
        NULL::VARCHAR AS activesync_device_type,
        NULL::VARCHAR AS imap_id,
        NULL::VARCHAR AS mac,
        escaped,
        coalesce(shaped AND ts IS NOT NULL, false) AS ok
    FROM parsed
    """

"""Safari History.db: visited hosts against domain indicators.

`history_items(id, url)` joined with `history_visits(history_item, visit_time)` (Cocoa
time). A visit to an indicator domain (or a subdomain of one) is `suspicious`: a link was
opened, which is how many one-click infections start, but a visit alone proves no
infection. Apple puts web history only in encrypted backups, so an unencrypted backup
leaves this artefact missing and the verdict at best `inconclusive`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from devicegate.triage.artefacts.base import Artefact, Context, Findings, locate, open_sqlite
from devicegate.triage.dbfile import query
from devicegate.triage.result import Detection, TimelineEvent, Verdict
from devicegate.triage.timeconv import from_cocoa

NAME = "safari_history"
LOCATIONS = (
    ("HomeDomain", "Library/Safari/History.db"),
    ("AppDomain-com.apple.mobilesafari", "Library/Safari/History.db"),
)


def host_of(url: str) -> str | None:
    try:
        return urlsplit(url.strip()).hostname
    except ValueError:
        return None


def run(ctx: Context) -> Findings:
    entry = locate(ctx.backup, LOCATIONS)
    found = Findings()
    with open_sqlite(ctx.backup, entry, "History.db", found) as db:
        rows = query(
            db,
            "SELECT history_items.url, history_visits.visit_time FROM history_visits "
            "JOIN history_items ON history_items.id = history_visits.history_item",
            "History.db",
        )
    found.note = f"{len(rows)} visits"
    reported: set[str] = set()
    for url, visit_time in rows:
        if not isinstance(url, str):
            continue
        host = host_of(url)
        when = from_cocoa(visit_time)
        if when is not None and host:
            found.timeline.append(TimelineEvent(when, NAME, "visit", host))
        hit = ctx.indicators.domain(host)
        if hit is not None and url not in reported:
            reported.add(url)
            found.detections.append(
                Detection(
                    "domain-indicator",
                    NAME,
                    url[:500],
                    Verdict.SUSPICIOUS,
                    time=when,
                    indicator_set=hit.set_name,
                    detail=f"visited host matches `{hit.value}`",
                )
            )
    return found


ARTEFACT = Artefact(NAME, "Safari browsing history", run, needs_encryption=True)

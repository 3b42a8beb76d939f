"""DataUsage.sqlite: which processes used the network, and when.

Tables (Core Data): `ZPROCESS(Z_PK, ZPROCNAME, ZBUNDLENAME, ZFIRSTTIMESTAMP, ZTIMESTAMP)`
and `ZLIVEUSAGE(ZHASPROCESS → ZPROCESS.Z_PK, ZTIMESTAMP, ZWIFIIN, ZWIFIOUT, ZWWANIN,
ZWWANOUT)`, Cocoa timestamps. `ZPROCNAME` is `name` or `name/bundle-id`.

* `BackupAgent` here is Triangulation's exact detection: the real BackupAgent binary is
  long deprecated (BackupAgent2 replaced it), so any network use by that name is the
  implant. Reported once per process with its traffic, not once per timestamp.
* Any other process-name indicator (Pegasus' `bh`, `roleaccountd`, …) is `compromised`.
* Traffic of the processes Kaspersky names as implicit (nehelper, WebContent, the
  datausage diagnostics) feeds the heuristic as "net" events.
"""

from __future__ import annotations

from collections import defaultdict

from devicegate.triage.artefacts.base import Artefact, Context, Findings, locate, open_sqlite
from devicegate.triage.dbfile import columns, query
from devicegate.triage.result import Detection, Heuristic, TimelineEvent, Verdict
from devicegate.triage.timeconv import from_cocoa, iso

NAME = "datausage"
LOCATIONS = (("WirelessDomain", "Library/Databases/DataUsage.sqlite"),)

TRIANGULATION_EXACT = frozenset({"BackupAgent"})
TRIANGULATION_IMPLICIT = frozenset(
    {
        "nehelper",
        "com.apple.WebKit.WebContent",
        "powerd/com.apple.datausage.diagnostics",
        "lockdownd/com.apple.datausage.security",
    }
)
_TRAFFIC = ("zwifiin", "zwifiout", "zwwanin", "zwwanout")


def run(ctx: Context) -> Findings:
    entry = locate(ctx.backup, LOCATIONS)
    found = Findings()
    with open_sqlite(ctx.backup, entry, "DataUsage.sqlite", found) as db:
        processes = query(
            db,
            "SELECT Z_PK, ZPROCNAME, ZBUNDLENAME, ZFIRSTTIMESTAMP, ZTIMESTAMP FROM ZPROCESS",
            "DataUsage.sqlite",
        )
        present = columns(db, "ZLIVEUSAGE")
        traffic_cols = [name for name in _TRAFFIC if name in present]
        live: dict[object, list[tuple[object, ...]]] = defaultdict(list)
        if present:
            select = ", ".join(["ZHASPROCESS", "ZTIMESTAMP", *traffic_cols])
            for row in query(db, f"SELECT {select} FROM ZLIVEUSAGE", "DataUsage.sqlite"):
                live[row[0]].append(row[1:])
    found.note = f"{len(processes)} processes"
    for pk, procname, bundle, first, last in processes:
        name = procname if isinstance(procname, str) else ""
        bundle_name = bundle if isinstance(bundle, str) else ""
        short = name.split("/", 1)[0]
        usage = live.get(pk, [])
        times = [from_cocoa(first), from_cocoa(last)] + [from_cocoa(row[0]) for row in usage]
        total = sum(v for row in usage for v in row[1:] if isinstance(v, int | float))
        heuristic = Heuristic.NET if name in TRIANGULATION_IMPLICIT else None
        subject = name or bundle_name or f"process #{pk}"
        for event, when in zip(("net-first", "net-last"), times[:2], strict=True):
            if when is not None:
                found.timeline.append(TimelineEvent(when, NAME, event, subject, heuristic))
        for row in usage:
            when = from_cocoa(row[0])
            if when is not None:
                found.timeline.append(TimelineEvent(when, NAME, "net-live", subject, heuristic))
        seen = [t for t in times if t is not None]
        detail = (
            f"first {iso(min(seen)) if seen else '?'}, last {iso(max(seen)) if seen else '?'}"
            + (f", {int(total)} bytes" if traffic_cols and usage else "")
        )
        if short in TRIANGULATION_EXACT or name in TRIANGULATION_EXACT:
            hit = ctx.indicators.exact("process", short)
            found.detections.append(
                Detection(
                    "triangulation-exact",
                    NAME,
                    name,
                    Verdict.COMPROMISED,
                    time=min(seen) if seen else None,
                    indicator_set=hit.set_name if hit else None,
                    detail="network use by the deprecated BackupAgent: " + detail,
                )
            )
            continue
        hit = (
            ctx.indicators.exact("process", short)
            or ctx.indicators.exact("process", name)
            or ctx.indicators.exact("process", bundle_name)
        )
        if hit is not None:
            found.detections.append(
                Detection(
                    "process-indicator",
                    NAME,
                    subject,
                    Verdict.COMPROMISED,
                    time=min(seen) if seen else None,
                    indicator_set=hit.set_name,
                    detail=detail,
                )
            )
    return found


ARTEFACT = Artefact(NAME, "network use per process (DataUsage.sqlite)", run)

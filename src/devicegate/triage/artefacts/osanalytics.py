"""com.apple.osanalytics.addaily.plist: daily network-use baseline per process.

`netUsageBaseline` maps a process name to `[date, wifi-in, wifi-out, wwan-in, wwan-out]`.
`BackupAgent` there is Triangulation's second exact detection; any other process-name
indicator is `compromised`; the implicit processes feed the heuristic as "net" events.
"""

from __future__ import annotations

from devicegate.triage.artefacts.base import Artefact, Context, Findings, locate
from devicegate.triage.artefacts.datausage import TRIANGULATION_EXACT, TRIANGULATION_IMPLICIT
from devicegate.triage.errors import ArtefactError
from devicegate.triage.plists import as_utc, load_plist_dict
from devicegate.triage.result import Detection, Heuristic, TimelineEvent, Verdict

NAME = "osanalytics_addaily"
LOCATIONS = (("HomeDomain", "Library/Preferences/com.apple.osanalytics.addaily.plist"),)


def run(ctx: Context) -> Findings:
    entry = locate(ctx.backup, LOCATIONS)
    plist = load_plist_dict(ctx.backup.read(entry), "com.apple.osanalytics.addaily.plist")
    baseline = plist.get("netUsageBaseline", {})
    if not isinstance(baseline, dict):
        raise ArtefactError("`netUsageBaseline` in addaily plist is not a dictionary")
    found = Findings(note=f"{len(baseline)} processes")
    for process, values in baseline.items():
        if not isinstance(process, str):
            continue
        when = as_utc(values[0]) if isinstance(values, list) and values else None
        heuristic = Heuristic.NET if process in TRIANGULATION_IMPLICIT else None
        if when is not None:
            found.timeline.append(TimelineEvent(when, NAME, "net-usage", process, heuristic))
        short = process.split("/", 1)[0]
        hit = ctx.indicators.exact("process", short) or ctx.indicators.exact("process", process)
        if short in TRIANGULATION_EXACT:
            found.detections.append(
                Detection(
                    "triangulation-exact",
                    NAME,
                    process,
                    Verdict.COMPROMISED,
                    time=when,
                    indicator_set=hit.set_name if hit else None,
                    detail="network-use baseline of the deprecated BackupAgent",
                )
            )
        elif hit is not None:
            found.detections.append(
                Detection(
                    "process-indicator",
                    NAME,
                    process,
                    Verdict.COMPROMISED,
                    time=when,
                    indicator_set=hit.set_name,
                )
            )
    return found


ARTEFACT = Artefact(NAME, "daily network-use baseline (OS analytics)", run)

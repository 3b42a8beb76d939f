"""locationd/clients.plist: when two location bundles stopped (a heuristic input).

Kaspersky's heuristic counts `LocationTimeStopped` of the IonosphereHarvest and
WRMLinkSelection bundles as "location" events. Not required for a clean verdict: it only
strengthens the heuristic, and its absence is reported in `coverage`.
"""

from __future__ import annotations

from devicegate.triage.artefacts.base import Artefact, Context, Findings, locate
from devicegate.triage.plists import load_plist_dict
from devicegate.triage.result import Heuristic, TimelineEvent
from devicegate.triage.timeconv import from_cocoa

NAME = "locationd_clients"
LOCATIONS = (("RootDomain", "Library/Caches/locationd/clients.plist"),)
WATCHED = frozenset(
    {
        "com.apple.locationd.bundle-/System/Library/LocationBundles/IonosphereHarvest.bundle",
        "com.apple.locationd.bundle-/System/Library/LocationBundles/WRMLinkSelection.bundle",
    }
)


def run(ctx: Context) -> Findings:
    entry = locate(ctx.backup, LOCATIONS)
    clients = load_plist_dict(ctx.backup.read(entry), "locationd/clients.plist")
    found = Findings(note=f"{len(clients)} clients")
    for client, item in clients.items():
        if client not in WATCHED or not isinstance(item, dict):
            continue
        when = from_cocoa(item.get("LocationTimeStopped"))
        if when is not None:
            found.timeline.append(
                TimelineEvent(when, NAME, "location-stopped", client, Heuristic.LOCATION)
            )
    return found


ARTEFACT = Artefact(NAME, "location clients (heuristic input)", run, required=False)

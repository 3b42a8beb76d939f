"""Manifest.db as an artefact: integrity anomalies, file indicators, heuristic file events.

* Rows that fail the reader's integrity checks (path traversal, a fileID that is not
  SHA1(domain-relativePath)) are findings of level `inconclusive` (added by `scan` once
  every artefact ran, because rows are verified when used): a tampered manifest means
  the backup cannot vouch for anything it does not show.
* `file:path` indicators are matched against the absolute device path of each row, for the
  domains whose device location is documented; `file:name` against every row's basename.
* The Triangulation heuristic's file events come from MBFile times (M = LastModified,
  C = LastStatusChange, B = Birth) of SMS attachment folders and three preference files.
"""

from __future__ import annotations

from devicegate.triage.artefacts.base import Artefact, Context, Findings
from devicegate.triage.backup import Entry
from devicegate.triage.errors import ArtefactError
from devicegate.triage.mbfile import decode_mbfile, fast_times
from devicegate.triage.result import Detection, Heuristic, TimelineEvent, Verdict

#: Where a backup domain lives on the device (domains of app containers have no fixed path).
DOMAIN_ROOTS = {
    "HomeDomain": "/private/var/mobile/",
    "MediaDomain": "/private/var/mobile/",
    "CameraRollDomain": "/private/var/mobile/",
    "TonesDomain": "/private/var/mobile/",
    "RootDomain": "/private/var/root/",
    "WirelessDomain": "/private/var/wireless/",
    "SystemPreferencesDomain": "/private/var/preferences/",
    "KeychainDomain": "/private/var/Keychains/",
    "ManagedPreferencesDomain": "/private/var/Managed Preferences/",
    "DatabaseDomain": "/private/var/db/",
    "MobileDeviceDomain": "/private/var/MobileDevice/",
    "InstallDomain": "/private/var/installd/",
}

SMS_ATTACHMENTS = ("MediaDomain", "Library/SMS/Attachments/")

#: Preference files whose changes the Triangulation heuristic counts as "file" events.
HEURISTIC_FILES = {
    ("RootDomain", "Library/Preferences/com.apple.ImageIO.plist"),
    ("HomeDomain", "Library/Preferences/com.apple.locationd.StatusBarIconManager.plist"),
    ("HomeDomain", "Library/Preferences/com.apple.imservice.ids.FaceTime.plist"),
}

NAME = "manifest"


def run(ctx: Context) -> Findings:
    backup = ctx.backup
    found = Findings(note=f"{backup.row_count} rows")
    _match_indicators(ctx, found)
    heuristic_entries = list(backup.entries_with_metadata(*SMS_ATTACHMENTS))
    for domain, relative_path in sorted(HEURISTIC_FILES):
        entry = backup.find(domain, relative_path)
        if entry is not None:
            heuristic_entries.append((entry, backup.metadata_blob(entry)))
    unreadable = 0
    for entry, blob in heuristic_entries:
        heuristic = _heuristic_class(entry.domain, entry.relative_path)
        if heuristic is None:
            continue
        times = fast_times(blob) if blob is not None else None
        if times is None:
            try:
                meta = decode_mbfile(blob, entry.relative_path)
            except ArtefactError:
                unreadable += 1
                continue
            times = (meta.last_modified, meta.last_status_change, meta.birth)
        for event, when in zip(("modified", "changed", "born"), times, strict=True):
            if when is not None:
                found.timeline.append(
                    TimelineEvent(when, NAME, event, entry.relative_path, heuristic)
                )
    if unreadable:
        found.detections.append(
            Detection(
                "backup-anomaly",
                NAME,
                f"{unreadable} heuristic entries",
                Verdict.INCONCLUSIVE,
                detail="MBFile metadata unreadable; the Triangulation heuristic lacks them",
            )
        )
    return found


#: Up to this many file-name indicators are matched by SQLite, one pass each (C speed);
#: beyond it one Python pass over every row is cheaper.
MAX_SQL_NAMES = 64


def _match_indicators(ctx: Context, found: Findings) -> None:
    """`file:name` and `file:path` indicators against the manifest; every hit verified."""
    backup = ctx.backup
    names = ctx.indicators.by_kind.get("file-name", {})
    hits: list[tuple[Entry, str, str, str]] = []
    if len(names) > MAX_SQL_NAMES:
        for domain, relative_path in backup.paths():
            hit = names.get(relative_path.rpartition("/")[2])
            entry = backup.find(domain, relative_path) if hit is not None else None
            if hit is not None and entry is not None:
                hits.append((entry, f"{domain}/{relative_path}", hit.set_name, hit.value))
    else:
        for name, hit in names.items():
            for entry in backup.named(name):
                where = f"{entry.domain}/{entry.relative_path}"
                hits.append((entry, where, hit.set_name, f"file name `{hit.value}`"))
    table, _ = ctx.indicators.path_table()
    for key, hit in table.items():
        for domain, root in DOMAIN_ROOTS.items():
            if not key.startswith(root) or key == root:
                continue
            relative = key[len(root) :]
            if key.endswith("/"):
                entries = list(backup.entries(domain, relative))
            else:
                single = backup.find(domain, relative)
                entries = [single] if single is not None else []
            for entry in entries:
                absolute = root + entry.relative_path
                hits.append((entry, absolute, hit.set_name, f"file path `{hit.value}`"))
    for _entry, value, set_name, detail in hits:
        found.detections.append(
            Detection(
                "file-indicator",
                NAME,
                value,
                Verdict.COMPROMISED,
                indicator_set=set_name,
                detail=detail,
            )
        )


def _heuristic_class(domain: str, relative_path: str) -> Heuristic | None:
    if (domain, relative_path) in HEURISTIC_FILES:
        return Heuristic.FILE
    if domain == SMS_ATTACHMENTS[0] and relative_path.startswith(SMS_ATTACHMENTS[1]):
        # Library/SMS/Attachments/xx and …/xx/yy are the folders the exploit's message
        # leaves behind; anything deeper is a real attachment.
        depth = relative_path.rstrip("/").count("/")
        return Heuristic.SMS_DIR if depth in (3, 4) else Heuristic.SMS_ATTACHMENT
    return None


ARTEFACT = Artefact(NAME, "Manifest.db: integrity, file indicators, file events", run)

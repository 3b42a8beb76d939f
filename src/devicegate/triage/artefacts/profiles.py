"""Installed configuration profiles: payload UUIDs against profile indicators.

Profiles live in the shared system container
`SysSharedContainerDomain-systemgroup.com.apple.configurationprofiles` as
`Library/ConfigurationProfiles/profile-<hash>.stub` plists carrying `PayloadUUID`,
`PayloadIdentifier`, `PayloadDisplayName`, `InstallDate` and nested `PayloadContent`.
A matching id is `compromised` (Predator installs one). The container existing with no
stub means no profile is installed (parsed); the container absent means not checked.
"""

from __future__ import annotations

from typing import Any

from devicegate.triage.artefacts.base import Artefact, Context, Findings, Missing
from devicegate.triage.errors import ArtefactError
from devicegate.triage.plists import as_str, as_utc, load_plist_dict
from devicegate.triage.result import Detection, TimelineEvent, Verdict

NAME = "configuration_profiles"
DOMAIN = "SysSharedContainerDomain-systemgroup.com.apple.configurationprofiles"
FOLDER = "Library/ConfigurationProfiles/"


def _uuids(payload: dict[str, Any], depth: int = 0) -> list[str]:
    found = [u for u in (as_str(payload.get("PayloadUUID")),) if u]
    content = payload.get("PayloadContent")
    if depth < 8 and isinstance(content, list):
        for item in content:
            if isinstance(item, dict):
                found.extend(_uuids(item, depth + 1))
    return found


def run(ctx: Context) -> Findings:
    backup = ctx.backup
    entries = list(backup.entries(DOMAIN))
    if not entries:
        raise Missing(f"{DOMAIN} is not in the backup")
    stubs = [
        e
        for e in entries
        if e.relative_path.startswith(FOLDER + "profile-") and e.relative_path.endswith(".stub")
    ]
    found = Findings(note=f"{len(stubs)} profiles")
    broken: list[str] = []
    for entry in stubs:
        try:
            profile = load_plist_dict(backup.read(entry), entry.relative_path)
        except ArtefactError as exc:
            broken.append(exc.message)
            continue
        name = as_str(profile.get("PayloadDisplayName")) or as_str(profile.get("PayloadIdentifier"))
        label = name or entry.relative_path
        installed = as_utc(profile.get("InstallDate"))
        if installed is not None:
            found.timeline.append(TimelineEvent(installed, NAME, "profile-installed", label))
        for uuid in _uuids(profile):
            hit = ctx.indicators.exact("profile", uuid)
            if hit is not None:
                found.detections.append(
                    Detection(
                        "profile-indicator",
                        NAME,
                        uuid,
                        Verdict.COMPROMISED,
                        time=installed,
                        indicator_set=hit.set_name,
                        detail=f"profile `{label[:200]}`",
                    )
                )
    if broken:
        found.error = f"{len(broken)} profile(s) unreadable: {broken[0]}"
    return found


ARTEFACT = Artefact(NAME, "installed configuration profiles", run)

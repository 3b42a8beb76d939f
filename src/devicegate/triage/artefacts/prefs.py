"""Global preferences: whether Lockdown Mode is on (a risk attribute, never a finding).

iOS records Lockdown Mode as the boolean `LDMGlobalEnabled` in `.GlobalPreferences.plist`;
the key is absent until the mode was first switched on, so absence reads `disabled`,
and a missing file `unknown`.
"""

from __future__ import annotations

from devicegate.triage.artefacts.base import Artefact, Context, Findings, locate
from devicegate.triage.plists import load_plist_dict

NAME = "global_preferences"
LOCATIONS = (("HomeDomain", "Library/Preferences/.GlobalPreferences.plist"),)


def run(ctx: Context) -> Findings:
    entry = locate(ctx.backup, LOCATIONS)
    prefs = load_plist_dict(ctx.backup.read(entry), ".GlobalPreferences.plist")
    enabled = prefs.get("LDMGlobalEnabled")
    state = "enabled" if enabled is True or enabled == 1 else "disabled"
    return Findings(facts={"lockdown_mode": state}, note=f"Lockdown Mode {state}")


ARTEFACT = Artefact(NAME, "Lockdown Mode state", run, required=False)

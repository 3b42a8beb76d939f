"""The artefact modules, in the order a scan runs them (see `base` for their shape)."""

from __future__ import annotations

from devicegate.triage.artefacts import (
    datausage,
    locationd,
    manifest,
    manifest_plist,
    osanalytics,
    prefs,
    profiles,
    safari,
    shutdownlog,
    sms,
)
from devicegate.triage.artefacts.base import Artefact, Context, Findings, Missing, Options

ARTEFACTS: tuple[Artefact, ...] = (
    manifest.ARTEFACT,
    manifest_plist.ARTEFACT,
    datausage.ARTEFACT,
    osanalytics.ARTEFACT,
    locationd.ARTEFACT,
    safari.ARTEFACT,
    profiles.ARTEFACT,
    sms.ARTEFACT,
    prefs.ARTEFACT,
    shutdownlog.ARTEFACT,
)

__all__ = ["ARTEFACTS", "Artefact", "Context", "Findings", "Missing", "Options"]

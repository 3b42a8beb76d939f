"""The combining rule, written once as a table (one test per row in tests/triage).

| # | condition (first that holds wins)                                   | verdict      |
|---|---------------------------------------------------------------------|--------------|
| 1 | a finding of level `compromised` (exact Triangulation hit; process, | compromised  |
|   | profile or file indicator in system data)                           |              |
| 2 | a finding of level `suspicious` (heuristic; indicator domain in     | suspicious   |
|   | browsing history or a message; indicator sender; Apple threat       |              |
|   | notification; shutdown.log anomaly)                                 |              |
| 3 | a required artefact `missing` or `error`, or a finding of level     | inconclusive |
|   | `inconclusive` (tampered manifest rows, unreadable metadata)        |              |
| 4 | otherwise: every required artefact parsed, nothing found            | clean        |

Findings outrank gaps: a phone with a BackupAgent hit is compromised even if its Safari
history is missing. Gaps outrank silence: nothing found in half a backup is never clean.
"""

from __future__ import annotations

from collections.abc import Sequence

from devicegate.triage.result import (
    VERDICT_RANK,
    ArtefactResult,
    Coverage,
    Detection,
    Verdict,
)

#: Artefacts Apple writes only into encrypted backups.
ENCRYPTED_ONLY = frozenset({"safari_history"})


def decide(
    detections: Sequence[Detection], artefacts: Sequence[ArtefactResult], *, encrypted: bool
) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict and the reasons for it, most important first; what was not checked last."""
    reasons: list[str] = []
    worst = max((d.level for d in detections), key=VERDICT_RANK.__getitem__, default=None)
    for level in (Verdict.COMPROMISED, Verdict.SUSPICIOUS):
        hits = [d for d in detections if d.level is level]
        if hits:
            kinds = sorted({d.kind for d in hits})
            reasons.append(f"{len(hits)} {level.value} finding(s): {', '.join(kinds)}")
    gaps = [a for a in artefacts if a.required and a.coverage is not Coverage.PARSED]
    for artefact in gaps:
        why = f"required artefact `{artefact.name}` {artefact.coverage.value}"
        if artefact.note:
            why += f": {artefact.note}"
        if not encrypted and artefact.name in ENCRYPTED_ONLY:
            why += " (only encrypted backups carry it: enable backup encryption and re-run)"
        reasons.append(why)
    doubtful = [d for d in detections if d.level is Verdict.INCONCLUSIVE]
    if doubtful:
        reasons.append(f"{len(doubtful)} integrity problem(s) in the backup")
    unchecked = [f"not checked: {item}" for a in artefacts for item in a.not_checked]
    if worst in (Verdict.COMPROMISED, Verdict.SUSPICIOUS):
        return worst, (*reasons, *unchecked)
    if gaps or doubtful:
        return Verdict.INCONCLUSIVE, (*reasons, *unchecked)
    parsed = sum(1 for a in artefacts if a.coverage is Coverage.PARSED)
    return Verdict.CLEAN, (f"{parsed} artefacts parsed, nothing found", *unchecked)


def _version(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    parts: list[int] = []
    for piece in text.strip().split(".")[:3]:
        if not (piece.isascii() and piece.isdigit()):  # `isdigit` admits "²"; int() not
            return None
        parts.append(int(piece))
    return tuple(parts) + (0,) * (3 - len(parts))


def triangulation_patched(ios_version: str | None) -> bool | None:
    """Whether iOS has every fix for the Triangulation chain (CVE-2023-41990, -32434,
    -32435, -38606): iOS 16.6, or 15.7.8 on the 15 branch. None when unknown."""
    version = _version(ios_version)
    if version is None:
        return None
    if version >= (16, 6, 0):
        return True
    return (15, 7, 8) <= version < (16, 0, 0)

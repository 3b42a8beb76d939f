"""One test per row of the combining table in `verdict`."""

from __future__ import annotations

from devicegate.triage.result import ArtefactResult, Coverage, Detection, Verdict
from devicegate.triage.verdict import decide, triangulation_patched

PARSED = ArtefactResult("datausage", Coverage.PARSED, True)
MISSING = ArtefactResult("safari_history", Coverage.MISSING, True, note="absent")
OPTIONAL_MISSING = ArtefactResult("locationd_clients", Coverage.MISSING, False)


def det(level: Verdict, kind: str = "k") -> Detection:
    return Detection(kind, "s", "v", level)


def test_row1_compromised_wins_even_with_gaps() -> None:
    verdict, reasons = decide(
        [det(Verdict.SUSPICIOUS), det(Verdict.COMPROMISED, "triangulation-exact")],
        [PARSED, MISSING],
        encrypted=False,
    )
    assert verdict is Verdict.COMPROMISED
    assert "triangulation-exact" in reasons[0]


def test_row2_suspicious_wins_over_gaps() -> None:
    verdict, _ = decide([det(Verdict.SUSPICIOUS)], [MISSING], encrypted=True)
    assert verdict is Verdict.SUSPICIOUS


def test_row3_required_gap_is_inconclusive() -> None:
    verdict, reasons = decide([], [PARSED, MISSING], encrypted=False)
    assert verdict is Verdict.INCONCLUSIVE
    assert any("enable backup encryption" in r for r in reasons)


def test_row3_error_is_inconclusive() -> None:
    broken = ArtefactResult("sms", Coverage.ERROR, True, note="corrupt")
    assert decide([], [PARSED, broken], encrypted=True)[0] is Verdict.INCONCLUSIVE


def test_row3_integrity_finding_is_inconclusive() -> None:
    assert decide([det(Verdict.INCONCLUSIVE)], [PARSED], encrypted=True)[0] is Verdict.INCONCLUSIVE


def test_row4_clean_needs_only_required_artefacts() -> None:
    verdict, reasons = decide([], [PARSED, OPTIONAL_MISSING], encrypted=True)
    assert verdict is Verdict.CLEAN
    assert "nothing found" in reasons[0]


def test_triangulation_patch_levels() -> None:
    assert triangulation_patched("16.6") is True
    assert triangulation_patched("17.1.2") is True
    assert triangulation_patched("16.5.1") is False
    assert triangulation_patched("15.7.8") is True
    assert triangulation_patched("15.7.7") is False
    assert triangulation_patched("garbage") is None
    assert triangulation_patched("16.²") is None  # a digit to `str.isdigit`, not to int()
    assert triangulation_patched(None) is None

"""Labelled signals from the real protocols, one table per signal kind (cases/*.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devicegate.identify import identify
from devicegate.identify.names import APPLE_PLATFORMS
from devicegate.model import DeviceProfile, Signals

CASES = Path(__file__).parent / "cases"
_FIELDS = ("vendor", "platform", "model", "os_version", "device_id")


def _load() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            params.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return params


def check(profile: DeviceProfile, expect: dict[str, Any]) -> None:
    for key, wanted in expect.items():
        if key in _FIELDS:
            assert getattr(profile, key) == wanted, key
        elif key == "kind":
            assert profile.kind.value == wanted
        elif key == "trust":
            assert profile.trust is not None and profile.trust.value == wanted
        elif key.startswith("claims_"):
            assert list(profile.claimed(key.removeprefix("claims_"))) == wanted, key
        elif key == "ambiguous":
            assert list(profile.ambiguous) == wanted
        elif key == "conflicts":
            assert [c.attribute for c in profile.conflicts] == wanted
        elif key == "keys":
            assert [list(k) for k in profile.keys] == wanted
        elif key == "note_contains":
            notes = " | ".join(e.note for e in profile.evidence)
            assert wanted in notes, notes
        elif key == "distribution":
            named = [v for e in profile.evidence for k, v in e.says if k == "distribution"]
            assert named == ([wanted] if wanted else []), named
        else:  # pragma: no cover - a typo in a case file
            raise AssertionError(f"unknown expectation `{key}`")


@pytest.mark.parametrize("case", _load())
def test_labelled_signals(case: dict[str, Any]) -> None:
    profile = identify(Signals(**case["signals"]))
    check(profile, case["expect"])


def test_every_case_file_is_used() -> None:
    names = {p.stem for p in CASES.glob("*.yaml")}
    assert {
        "useragent",
        "activesync",
        "imap_id",
        "mac",
        "apple_apps",
        "apple_hardware",
        "apple_media",
        "domestic",
    } <= names


def _labelled_apple(expect: dict[str, Any]) -> bool | None:
    """The case's label: Apple or not, from its expected vendor (else platform); None when
    the case says neither."""
    if "vendor" in expect:
        return bool(expect["vendor"] == "Apple")
    if "platform" in expect:
        return expect["platform"] in APPLE_PLATFORMS
    return None


def test_apple_precision_on_the_corpus_is_one() -> None:
    """No case labelled not-Apple has any signal claiming Apple (precision 1.0), over every
    case file; recall is what the per-case expectations check."""
    negatives = false_apple = 0
    wrong = []
    for path in sorted(CASES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            label = _labelled_apple(case["expect"])
            if label is None or label:
                continue
            negatives += 1
            profile = identify(Signals(**case["signals"]))
            if "Apple" in profile.claimed("vendor"):
                false_apple += 1
                wrong.append(f"{path.stem}: {case['name']}")
    assert negatives >= 60
    assert false_apple == 0, wrong

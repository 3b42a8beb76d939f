"""The vendors and platforms `validate` accepts are exactly what identification can name.

`identify.names.PLATFORMS` and `identify.names.VENDORS` are the one list; these tests fail
when an extractor or an alias table names something the list lacks, so the lint cannot
drift from identification.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from devicegate.identify import identify, names
from devicegate.model import Signals

CASES = Path(__file__).resolve().parents[1] / "identify" / "cases"


def test_every_canonical_name_is_in_the_vocabulary() -> None:
    platforms = set(names.PLATFORM_NAMES)
    assert set(names._PLATFORM_EXACT.values()) <= platforms
    for text in ("Windows NT", "Windows Phone 8", "Windows CE", "SymbianOS", "BlackBerry 10"):
        assert names.canonical_platform(text) in platforms, text
    vendors = set(names.VENDORS)
    assert set(names._VENDOR_ALIASES.values()) <= vendors
    assert {vendor for _, vendor in names._ORGANISATIONS} <= vendors
    assert {p.vendor for p in names.PLATFORMS if p.vendor} <= vendors


def test_the_hardware_facts_come_from_the_one_table() -> None:
    """What combine and the extractors relied on before the table existed stays true."""
    assert (
        frozenset({"iOS", "iPadOS", "macOS", "watchOS", "tvOS", "visionOS"})
        == names.APPLE_PLATFORMS
    )
    assert {"Android", "Aurora", "Sailfish", "Windows Phone", "KaiOS"} <= names.NON_APPLE_PLATFORMS
    assert not {"Windows", "Linux", "ChromeOS", "HarmonyOS"} & names.NON_APPLE_PLATFORMS
    assert names.implied_vendor("iPadOS") == "Apple"
    assert names.implied_vendor("HarmonyOS") == "Huawei"
    assert names.implied_vendor("Android") is None and names.implied_vendor(None) is None
    assert not names.runs_on("Android", "Apple") and names.runs_on("Windows", "Apple")
    assert not names.runs_on("iOS", "Samsung") and names.runs_on("Aurora", "OMP")
    assert names.runs_on("SomethingNew", "Apple")  # no knowledge: never a contradiction


def test_everything_the_identify_cases_claim_is_in_the_vocabulary() -> None:
    """Every vendor and platform any labelled case of tests/identify/cases makes identify
    claim (not just the expected best value)."""
    seen: dict[str, set[str]] = {"vendor": set(), "platform": set()}
    count = 0
    for path in sorted(CASES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            profile = identify(Signals(**case["signals"]))
            count += 1
            for attribute, values in seen.items():
                values.update(profile.claimed(attribute))
    assert count > 50
    assert seen["platform"] and seen["platform"] <= set(names.PLATFORM_NAMES)
    assert seen["vendor"] and seen["vendor"] <= set(names.VENDORS)


def test_docs_list_every_name_validate_accepts() -> None:
    """docs/policy.md lists the vocabulary for operators; a name added to the table must be
    added there too (the list is what a policy author checks a spelling against)."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "policy.md").read_text("utf-8")
    section = " ".join(docs[docs.index("### Vendors and platforms") :].split())
    platforms = section[section.index("Platforms identification reports:") :].split(".")[0]
    vendors = section[section.index("Vendors identification reports:") :].split(".")[0]
    assert {n.strip() for n in platforms.split(":")[1].split(",")} == set(names.PLATFORM_NAMES)
    assert {n.strip() for n in vendors.split(":")[1].split(",")} == set(names.VENDORS)

"""How often `identify` agrees with uap-core's own test suites (a regression measure).

uap-core (Debian package `uap-core`, /usr/share/uap-core/tests) ships labelled
User-Agents: `test_os.yaml` gives each string's OS family, `test_device.yaml` its device
brand. We run every string through `identify` and count agreement on what the labels
imply for us: the *platform* (test_os) and the *vendor* (test_device). Both sides go
through the same name normalisation (names.py), so what is measured is whether we reach
the same device, not whether we spell it the same; iOS and iPadOS count as one (uap-core
does not tell them apart). Agreement includes "both unknown".

Apple precision and recall are reported separately: for a product that bans a vendor,
calling a Samsung "Apple" and missing an iPhone are the two errors that matter.

The suites are old (Debian 12 ships uap-core 0.16, 2022) and our rules deliberately
disagree with some of them (a Mac's `CFNetwork … Darwin (x86_64)` is macOS, not iOS), so
the figure is a floor to guard against regressions, not a score to tune to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from devicegate.identify import Identifier
from devicegate.identify.names import canonical_platform, canonical_vendor
from devicegate.model import Signals

UAP_TESTS = Path("/usr/share/uap-core/tests")


@dataclass(frozen=True, slots=True)
class Accuracy:
    os_cases: int
    platform_agreement: float
    device_cases: int
    vendor_agreement: float
    apple_precision: float
    apple_recall: float
    apple_cases: int


def load_cases(path: Path) -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=loader)
    cases = data.get("test_cases", []) if isinstance(data, dict) else []
    return [case for case in cases if isinstance(case, dict) and case.get("user_agent_string")]


def _same_platform(ours: str | None, expected: str | None) -> bool:
    merge = {"iPadOS": "iOS"}
    return merge.get(ours or "", ours) == merge.get(expected or "", expected)


def _same_vendor(ours: str | None, expected: str | None) -> bool:
    return (ours or "").casefold() == (expected or "").casefold()


def measure(tests_dir: Path = UAP_TESTS) -> Accuracy:
    """Run identify on every test_os / test_device case under `tests_dir`."""
    identifier = Identifier(cache_size=0)
    os_cases = load_cases(tests_dir / "test_os.yaml")
    platform_ok = 0
    for case in os_cases:
        profile = identifier.identify(Signals(user_agent=str(case["user_agent_string"])))
        expected = canonical_platform(case.get("family"))
        platform_ok += _same_platform(profile.platform, expected)

    device_cases = load_cases(tests_dir / "test_device.yaml")
    vendor_ok = true_apple = false_apple = missed_apple = 0
    for case in device_cases:
        profile = identifier.identify(Signals(user_agent=str(case["user_agent_string"])))
        expected = canonical_vendor(case.get("brand"))
        vendor_ok += _same_vendor(profile.vendor, expected)
        says_apple, is_apple = profile.vendor == "Apple", expected == "Apple"
        true_apple += says_apple and is_apple
        false_apple += says_apple and not is_apple
        missed_apple += is_apple and not says_apple

    def ratio(part: int, whole: int) -> float:
        return round(part / whole, 4) if whole else 0.0

    return Accuracy(
        os_cases=len(os_cases),
        platform_agreement=ratio(platform_ok, len(os_cases)),
        device_cases=len(device_cases),
        vendor_agreement=ratio(vendor_ok, len(device_cases)),
        apple_precision=ratio(true_apple, true_apple + false_apple),
        apple_recall=ratio(true_apple, true_apple + missed_apple),
        apple_cases=true_apple + missed_apple,
    )


def as_dict(result: Accuracy) -> dict[str, Any]:
    return asdict(result)

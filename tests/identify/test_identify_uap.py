"""Accuracy against uap-core's own labelled suites: a regression floor, not a tuned score.

Measured on Debian 12's uap-core 0.16 with ua-parser 1.0 / regexes 202610 (see
benchmarks/uap_accuracy.py for the figures): platform agreement 0.993 on 456 OS cases,
vendor agreement 0.9999 on 16,111 device cases, Apple precision 0.97 / recall 1.0.
The floors sit a little below, so a regression fails and new data does not.
"""

from __future__ import annotations

from devicegate.identify.accuracy import UAP_TESTS, measure
from tests.conftest import require


def test_agreement_with_uap_core_suites() -> None:
    require(
        (UAP_TESTS / "test_os.yaml").exists() and (UAP_TESTS / "test_device.yaml").exists(),
        f"uap-core test suites missing under {UAP_TESTS} (apt-get install uap-core)",
    )
    result = measure(UAP_TESTS)
    print(f"\nuap-core accuracy: {result}")
    assert result.os_cases > 400 and result.device_cases > 15_000
    assert result.platform_agreement >= 0.98
    assert result.vendor_agreement >= 0.995
    assert result.apple_precision >= 0.95
    assert result.apple_recall >= 0.98

"""Accuracy of `identify` against uap-core's labelled suites (see identify/accuracy.py).

Prints the figures; the last line is one JSON object. Needs the Debian package uap-core
(/usr/share/uap-core/tests); exits 2 with a JSON error when it is missing.

    .venv/bin/python benchmarks/uap_accuracy.py [TESTS_DIR]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from devicegate.identify.accuracy import UAP_TESTS, as_dict, measure


def main(argv: list[str]) -> int:
    tests_dir = Path(argv[0]) if argv else UAP_TESTS
    if not (tests_dir / "test_os.yaml").exists():
        print(f"uap-core test suites not found in {tests_dir} (apt-get install uap-core)")
        print(json.dumps({"name": "uap_accuracy", "error": "uap-core missing"}))
        return 2
    start = time.perf_counter()
    result = measure(tests_dir)
    took = time.perf_counter() - start
    print(f"uap-core suites in {tests_dir} ({took:.1f} s)")
    print(f"  platform agreement  {result.platform_agreement:.4f} on {result.os_cases} OS cases")
    print(
        f"  vendor agreement    {result.vendor_agreement:.4f} on {result.device_cases} device cases"
    )
    print(
        f"  Apple precision     {result.apple_precision:.4f}   recall {result.apple_recall:.4f}"
        f"   ({result.apple_cases} Apple-branded cases)"
    )
    print(json.dumps({"name": "uap_accuracy", **as_dict(result)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

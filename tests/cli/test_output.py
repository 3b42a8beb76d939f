"""Written to a pipe or a file, the CLI's summaries and tables keep each record on one line.

Rich lays text out at 80 columns when stdout is not a terminal, which cut `impact`'s summary
in the middle of a phrase ("971 block, 2" / "excepted") and would cut a table row in two: a
script or `grep` reading the output then gets half a record per line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

from tests.cli.test_cli import DIRECTORY, EXAMPLE, POLICY

LIMIT = 50


def _impact(*more: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    argv = ["impact", "-p", POLICY, "-d", DIRECTORY, "--devices", str(EXAMPLE / "devices.csv")]
    done = subprocess.run(
        [sys.executable, "-m", "devicegate.cli", *argv, "--at", "2023-07-03", "-q", *more],
        capture_output=True,  # stdout is a pipe, not a terminal
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_impact_through_a_pipe_keeps_every_summary_and_row_on_one_line() -> None:
    report = json.loads(_impact("--json"))
    lines = _impact("--limit", str(LIMIT)).splitlines()
    longest = 0
    for rule in report["rules"]:
        rows = rule["rows"]
        if not rows:
            continue
        statuses = Counter(r["status"] for r in rows)
        summary = f"{rule['users']} users, {rule['devices']} devices — " + ", ".join(
            f"{n} {s}" for s, n in sorted(statuses.items())
        )
        head = [line for line in lines if line.startswith(f"{rule['rule']} from ")]
        assert len(head) == 1 and head[0].endswith(summary), (head, summary)
        units = Counter(r["unit"] for r in rows)
        by_unit = "  by unit: " + ", ".join(f"{u} {n}" for u, n in sorted(units.items()))
        assert by_unit in lines
        longest = max(longest, len(head[0]), len(by_unit))
        for row in rows[:LIMIT]:
            cells = [row["unit"], row["user"], *row["device"].split(), row["status"]]
            assert any(line.split() == cells for line in lines), cells
    assert longest > 80  # the output has lines a terminal-less Rich would have wrapped

"""`devicegate impact`."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from devicegate.cli.common import (
    AtOpt,
    DirectoryOpt,
    JsonOpt,
    PolicyOpt,
    QuietOpt,
    load_snapshot,
    parse_at,
    write_json,
)
from devicegate.errors import UsageError
from devicegate.impact import impact


def impact_cmd(
    policy: PolicyOpt,
    devices: Annotated[str, typer.Option("--devices", help="Device inventory CSV (MDM export).")],
    directory: DirectoryOpt = None,
    at: AtOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Users listed per rule (table).")] = 20,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """For each rule: who is affected, with which device, and from when."""
    from pathlib import Path

    if directory is None:
        raise UsageError("impact needs --directory to know who is in which unit")
    snapshot = load_snapshot(policy, directory, Path(devices), quiet=quiet or as_json)
    moment = parse_at(at, snapshot.timezone)
    rows = impact(snapshot, moment)
    if as_json:
        write_json(
            [
                {
                    "rule": r.rule,
                    "unit": r.unit,
                    "user": r.user,
                    "device_id": r.device_id,
                    "device": r.device,
                    "effective": r.effective.isoformat(),
                    "status": r.status,
                    "detail": r.detail,
                }
                for r in rows
            ]
        )
        return
    console = Console()
    for rule in snapshot.rules:
        mine = [r for r in rows if r.rule == rule.id]
        if not mine:
            continue
        statuses = Counter(r.status for r in mine)
        users = len({r.user for r in mine})
        console.print(
            f"[bold]{rule.id}[/bold] from {rule.start_at.date()} ({rule.effect.value}"
            f"{', report-only' if rule.report_only else ''}): {users} users, {len(mine)} devices — "
            + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        )
        by_unit = Counter(r.unit for r in mine)
        console.print("  by unit: " + ", ".join(f"{u} {n}" for u, n in sorted(by_unit.items())))
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for column in ("unit", "user", "device", "status"):
            table.add_column(column)
        for r in mine[:limit]:
            table.add_row(r.unit, r.user, r.device, r.status)
        console.print(table)
        if len(mine) > limit:
            console.print(f"  … and {len(mine) - limit} more (use --json for all)")

"""`devicegate impact`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from devicegate.cli.common import (
    AtOpt,
    JsonOpt,
    PolicyOpt,
    QuietOpt,
    console,
    load_snapshot,
    parse_at,
    write_json,
)
from devicegate.impact import RuleImpact, impact


def impact_cmd(
    policy: PolicyOpt,
    directory: Annotated[
        Path, typer.Option("--directory", "-d", help="Users directory (CSV or LDIF).")
    ],
    devices: Annotated[Path, typer.Option("--devices", help="Device inventory CSV (MDM export).")],
    at: AtOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Users listed per rule (table).")] = 20,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """For each rule: who is affected, with which device, and from when.

    Every rule is listed; one that reaches no inventory device says "matches nobody".
    """
    snapshot = load_snapshot(policy, directory, devices, quiet=quiet or as_json)
    moment = parse_at(at, snapshot.timezone)
    reach = impact(snapshot, moment)
    if as_json:
        write_json({"at": moment.isoformat(), "rules": [_as_json(r) for r in reach]})
        return
    out = console()
    for entry in reach:
        rule = entry.rule
        head = (
            f"[bold]{rule.id}[/bold] from {rule.start_at.date()} ({rule.effect.value}"
            f"{', report-only' if rule.report_only else ''}): "
        )
        if entry.note is not None:
            out.print(head + entry.note)
            continue
        mine = entry.rows
        statuses = Counter(r.status for r in mine)
        users = len({r.user for r in mine})
        out.print(
            head
            + f"{users} users, {len(mine)} devices — "
            + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        )
        by_unit = Counter(r.unit for r in mine)
        out.print("  by unit: " + ", ".join(f"{u} {n}" for u, n in sorted(by_unit.items())))
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for column in ("unit", "user", "device", "status"):
            table.add_column(column)
        for r in mine[:limit]:
            table.add_row(r.unit, r.user, r.device, r.status)
        out.print(table)
        if len(mine) > limit:
            out.print(f"  … and {len(mine) - limit} more (use --json for all)")


def _as_json(entry: RuleImpact) -> dict[str, object]:
    rule = entry.rule
    return {
        "rule": rule.id,
        "effect": rule.effect.value,
        "report_only": rule.report_only,
        "from": rule.start_at.isoformat(),
        "until": rule.until_at.isoformat() if rule.until_at else None,
        "users_in_scope": entry.users_in_scope,
        "users": len({r.user for r in entry.rows}),
        "devices": len(entry.rows),
        "note": entry.note,
        "rows": [
            {
                "unit": r.unit,
                "user": r.user,
                "device_id": r.device_id,
                "device": r.device,
                "effective": r.effective.isoformat(),
                "status": r.status,
                "detail": r.detail,
            }
            for r in entry.rows
        ],
    }


def register(app: typer.Typer) -> None:
    app.command("impact")(impact_cmd)

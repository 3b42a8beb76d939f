"""`devicegate decisions export`: the store's decision log as JSON lines.

The lines are the `decisions` format `devicegate audit` reads (`at`, `user`, `resource`,
`adapter`, `signals`, the logged `action`/`rule`/`policy_version`, and `basis` where the
signals were inferred — a Postfix decision names the sighting it used). So the audit can
re-judge what the servers decided under another policy ("what if"), or under the same one
to check them, with no SQL in between.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from devicegate.cli.common import STORE_DEFAULT, StoreOpt, err

decisions_app = typer.Typer(help="The decision log in the store.", no_args_is_help=True)


def export_line(row: dict[str, Any]) -> str:
    """One decision row as the audit's `decisions` line."""
    detail = row.get("detail") or {}
    if isinstance(detail, str):
        detail = json.loads(detail)
    line: dict[str, Any] = {
        "at": row["at"].isoformat(),
        "user": row["user"],
        "resource": row["resource"],
        "adapter": row["adapter"],
        "signals": detail.get("signals", {}),
        "action": row["action"],
        "rule": row["rule"],
        "policy_version": row["policy_version"],
        "request_id": row["request_id"],
    }
    if detail.get("basis"):
        line["basis"] = detail["basis"]
    return json.dumps(line, ensure_ascii=False)


@decisions_app.command("export")
def export(
    store: StoreOpt = STORE_DEFAULT,
    since: Annotated[
        str | None, typer.Option("--since", help="From this time (ISO 8601; UTC if naive).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before this time (ISO 8601; UTC if naive).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Write the decision log as JSON lines (`devicegate audit --format decisions` input)."""
    from devicegate.cli.common import parse_at
    from devicegate.store import open_store

    start = parse_at(since) if since else None
    end = parse_at(until) if until else None
    rows = open_store(store, create=False).iter_decisions(since=start, until=end)
    count = 0
    with out.open("w", encoding="utf-8") if out else _stdout() as sink:
        for row in rows:
            sink.write(export_line(row) + "\n")
            count += 1
    err(f"exported {count} decision{'s' * (count != 1)}")


class _stdout:
    """Standard output as a context manager that is not closed afterwards."""

    def __enter__(self) -> Any:
        return sys.stdout

    def __exit__(self, *_: object) -> None:
        sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.add_typer(decisions_app, name="decisions")

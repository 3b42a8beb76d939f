"""`devicegate sources check|sync|status`: test a directory or inventory source, sync it into
the store under the guard, and see which version every server on the store serves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from devicegate.cli.common import STORE_DEFAULT, JsonOpt, StoreOpt, err, write_json

if TYPE_CHECKING:
    from devicegate.directory import Directory
    from devicegate.inventory import Inventory
    from devicegate.sources import Diff, SyncResult

sources_app = typer.Typer(
    help="Directory (LDAP / AD) and inventory (Intune, Fleet, Jamf) sources: check, sync, status.",
    no_args_is_help=True,
)

SourceArg = Annotated[Path, typer.Argument(help="Source YAML (kind: ldap, intune, fleet, jamf).")]
SampleOpt = Annotated[int, typer.Option("--sample", min=0, help="Mapped entries to show.")]


def _echo(line: str) -> None:
    """One line; characters that are not printable (from the server's data) shown as `?`."""
    if not line.isprintable():
        line = "".join(ch if ch.isprintable() else "?" for ch in line)
    typer.echo(line)


def _sample(served: Directory | Inventory, count: int) -> list[dict[str, object]]:
    from devicegate.directory import Directory
    from devicegate.sources.state import device_row

    rows: list[dict[str, object]] = []
    if isinstance(served, Directory):
        for user in served.users[:count]:
            rows.append(
                {
                    "user": user.id,
                    "unit": user.unit,
                    "groups": sorted(user.groups),
                    "email": user.email,
                    "disabled": user.disabled,
                }
            )
        return rows
    from dataclasses import fields

    from devicegate.inventory import InventoryDevice

    names = [f.name for f in fields(InventoryDevice)]
    for device in list(served)[:count]:
        values = dict(zip(names, device_row(device), strict=True))
        rows.append({k: v for k, v in values.items() if v is not None})
    return rows


def check(source: SourceArg, sample: SampleOpt = 5, as_json: JsonOpt = False) -> None:
    """Connect, read the source once (a full pass, nothing stored) and show a mapped sample."""
    from devicegate.directory import Directory
    from devicegate.sources import Source

    opened = Source.open(source)
    state, _ = opened.read_full()
    served = opened.serve(state)
    problems = served.problems if isinstance(served, Directory) else ()
    noun = "users" if isinstance(served, Directory) else "devices"
    summary: dict[str, object] = {
        "source": opened.name,
        "kind": opened.config.kind,
        noun: len(served),
        "sample": _sample(served, sample),
        "problems": [p.format() for p in problems],
    }
    if isinstance(served, Directory):
        summary["server"] = getattr(state, "server", None)
        summary["groups"] = len(getattr(state, "groups", {}))
        summary["disabled"] = sum(1 for u in served.users if u.disabled)
    if as_json:
        write_json(summary)
        return
    head = f"{opened.label}: {len(served)} {noun}"
    if isinstance(served, Directory):
        head += (
            f", {summary['groups']} groups, {summary['disabled']} disabled "
            f"(server: {summary['server']})"
        )
    _echo(head)
    for row in summary["sample"]:  # type: ignore[attr-defined]
        _echo("  " + ", ".join(f"{k}={v}" for k, v in row.items()))
    for problem in problems[:20]:
        _echo(f"warning: {problem.format()}")
    if len(problems) > 20:
        _echo(f"warning: {len(problems) - 20} more problems")


def _print_diff(change: Diff, limit: int) -> None:
    counts = change.counts()
    _echo(
        f"  {counts['before']} -> {counts['after']}: +{counts['added']} added, "
        f"-{counts['removed']} removed, {counts['moved']} moved, "
        f"{counts['group_changes']} group changes, {counts['changed']} changed"
    )

    def some(label: str, items: list[str]) -> None:
        for item in items[:limit]:
            _echo(f"  {label} {item}")
        if len(items) > limit:
            _echo(f"  {label} … {len(items) - limit} more")

    some("+", list(change.added))
    some("-", list(change.removed))
    some("moved", [f"{user}: {old} -> {new}" for user, old, new in change.moved])
    some(
        "groups",
        [
            f"{user}: " + " ".join([*(f"+{g}" for g in joined), *(f"-{g}" for g in left)])
            for user, joined, left in change.groups
        ],
    )
    some("changed", list(change.changed))


def _result_json(result: SyncResult) -> dict[str, object]:
    change = result.diff
    data: dict[str, object] = {
        "source": result.source,
        "outcome": result.outcome,
        "dry_run": result.dry_run,
        "full": result.full,
        "reason": result.reason,
        "version": result.loaded.version.as_json() if result.loaded else None,
    }
    if change is not None:
        data["diff"] = change.counts() | {
            "added_ids": list(change.added),
            "removed_ids": list(change.removed),
            "moved_ids": [list(m) for m in change.moved],
            "group_changes_ids": [[u, list(j), list(v)] for u, j, v in change.groups],
        }
    return data


def sync(
    source: SourceArg,
    store: StoreOpt = STORE_DEFAULT,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the difference; write nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Accept what the guard refuses (empty or shrunken)."),
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="A full pass even when a delta is possible.")
    ] = False,
    max_removal: Annotated[
        float | None,
        typer.Option(
            "--max-removal",
            min=0.0,
            max=1.0,
            help="Share of users or devices a sync may remove (default: the source's, 0.10).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Ids listed per change.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Read the source, compare with the store's current version, and keep the answer as the
    new version when the guard allows it (or with --force). Exit 1 when refused."""
    from devicegate.sources import Source, load_source_config
    from devicegate.store import open_store

    if dry_run and force:
        from devicegate.errors import UsageError

        raise UsageError("--dry-run and --force exclude each other")
    config, name = load_source_config(source)  # a bad file is said before a store is made
    opened = Source(config, name, path=source, store=open_store(store), max_removal=max_removal)
    by = "operator (--force)" if force else "sources sync"
    result = opened.sync(
        full=True if (full or force) else None, force=force, dry_run=dry_run, by=by
    )
    if as_json:
        write_json(_result_json(result))
    else:
        what = "dry run: " if dry_run else ""
        if result.outcome == "refused":
            _echo(f"{what}{opened.label}: the guard refuses this sync: {result.reason}")
        elif result.outcome == "unchanged":
            version = result.loaded.version.version if result.loaded else "?"
            _echo(f"{what}{opened.label}: unchanged, version {version} stays current")
        elif dry_run:
            _echo(f"{what}{opened.label}: the guard would accept this sync")
        else:
            assert result.loaded is not None
            forced = f" (forced over: {result.reason})" if result.reason else ""
            _echo(f"{opened.label}: accepted version {result.loaded.version.version}{forced}")
        if result.diff is not None:
            _print_diff(result.diff, limit)
    if result.outcome == "refused" and not dry_run:
        err(
            "error: sync refused; the last good version keeps serving "
            "(hint: review with --dry-run, apply with --force)"
        )
        raise typer.Exit(1)


def status(
    source: SourceArg,
    store: StoreOpt = STORE_DEFAULT,
    as_json: JsonOpt = False,
) -> None:
    """The versions the store keeps for a source and its last attempt."""
    from devicegate.sources import Source
    from devicegate.store import open_store

    opened = Source.open(source, open_store(store, create=False))
    assert opened.versions is not None
    history = opened.versions.history(opened.name)
    state = opened.versions.status(opened.name)
    data: dict[str, object] = {
        "source": opened.name,
        "versions": [v.as_json() for v in history],
        "last_attempt": None
        if state is None
        else {
            "at": state.last_attempt_at.isoformat() if state.last_attempt_at else None,
            "outcome": state.last_outcome,
            "reason": state.last_reason,
            "last_success": state.last_success_at.isoformat() if state.last_success_at else None,
            "refusals": state.refusals,
        },
    }
    if as_json:
        write_json(data)
        return
    if not history:
        _echo(f"{opened.label}: no accepted version yet")
    for version in history:
        _echo(
            f"{version.version}  {version.accepted_at:%Y-%m-%d %H:%M:%S}Z  {version.size:>7} "
            f"+{version.added} -{version.removed} ~{version.changed}"
            + ("  forced" if version.forced else "")
            + f"  by {version.accepted_by}"
        )
    if state is not None:
        _echo(
            f"last attempt: {state.last_outcome} at {state.last_attempt_at}"
            + (f": {state.last_reason}" if state.last_reason else "")
            + f"; refusals so far: {state.refusals}"
        )


def register(app: typer.Typer) -> None:
    sources_app.command("check")(check)
    sources_app.command("sync")(sync)
    sources_app.command("status")(status)
    app.add_typer(sources_app, name="sources")

"""`devicegate devices list|show|release`: the operator's and the help desk's view of
quarantine (Exchange ABQ style): what is held, since when, by which rule, from what was seen,
and every identifier a device is known by."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from devicegate.cli.common import STORE_DEFAULT, JsonOpt, StoreOpt, write_json
from devicegate.errors import InputError
from devicegate.timeutil import when

if TYPE_CHECKING:
    from collections.abc import Mapping

    from devicegate.store import DeviceRecord, Store
    from devicegate.store.sighted import SightedDevice

devices_app = typer.Typer(
    help="List, show and release quarantined or compromised devices.", no_args_is_help=True
)

RefArg = Annotated[
    str,
    typer.Argument(
        help="Device reference (d-…) or any identifier: ActiveSync DeviceId, MAC, serial, "
        "UDID, MDM id, inventory device id; `kind=value` to say which."
    ),
]


def _open(url: str) -> Store:
    from devicegate.store import open_store

    return open_store(url, create=False)


def _echo(line: str) -> None:
    """Print one line. Much of it is client-chosen (User-Agents, IMAP IDs, backup paths):
    a character that is not printable is shown as `?`, so nothing steers the terminal."""
    if not line.isprintable():
        line = "".join(ch if ch.isprintable() else "?" for ch in line)
    typer.echo(line)


def _keys(keys: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{k}={v}" for k, v in keys)


def _sighted(store: Store, *, users: list[str] | None = None) -> list[SightedDevice]:
    """Devices the sightings show (identified again, as the servers did)."""
    from devicegate.identify import Identifier
    from devicegate.inventory import EMPTY_INVENTORY
    from devicegate.store.sighted import sighted_devices

    return sighted_devices(store.engine, Identifier(EMPTY_INVENTORY).profile, users=users)


def _unlinked(store: Store, sighted: list[SightedDevice]) -> list[SightedDevice]:
    """The sighted devices that are not a device of the store already (no shared key)."""
    known = {key for record in store.list_devices() for key in record.keys}
    return [d for d in sighted if not known.intersection(d.keys)]


def _record_lines(record: DeviceRecord) -> list[str]:
    """A device of the store: one summary line, then one line per standing hold or verdict."""
    from devicegate.store import describe_hold, describe_verdict

    device = " ".join(x for x in (record.vendor, record.platform, record.model) if x)
    state = ", ".join(
        [f"held: {'/'.join(record.held)}"] * bool(record.held)
        + [f"verdict: {record.verdict}"] * bool(record.verdict)
    )
    if not state:
        last = record.holds[0] if record.holds else None
        state = (
            f"released {when(last.released_at)} by {last.released_by or '-'}"
            if last is not None and last.released_at is not None
            else "ok"
        )
    lines = [
        f"{record.device_ref}  {record.user or '-'}  {device or 'unidentified'}  {state}  "
        f"[{_keys(record.keys)}]"
    ]
    lines += [f"    {describe_hold(h, user=record.user)}" for h in record.active_holds]
    lines += [f"    {describe_verdict(v)}" for v in record.active_verdicts]
    return lines


def _sighted_line(device: SightedDevice) -> str:
    keys = _keys(device.keys) or "no stable identifier"
    return (
        f"(seen only)  {device.user}  {device.label}  not held  [{keys}]  "
        f"via {', '.join(device.adapters)}, last {when(device.last_seen)}"
    )


def _sighted_json(device: SightedDevice) -> dict[str, object]:
    from devicegate.serialize import signals_json

    return {
        "device_ref": None,
        "seen_only": True,
        "user": device.user,
        "vendor": device.vendor,
        "platform": device.platform,
        "model": device.model,
        "keys": [{"kind": k, "value": v} for k, v in device.keys],
        "adapters": list(device.adapters),
        "first_seen": device.first_seen.isoformat(),
        "last_seen": device.last_seen.isoformat(),
        "sightings": device.sightings,
        "signals": signals_json(device.signals),
    }


@devices_app.command("list")
def list_cmd(
    store: StoreOpt = STORE_DEFAULT,
    all_devices: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every device the store knows: released ones and those only seen, too.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Devices held or compromised now, each with rule, since when and what was seen;
    --all for every device the store knows."""
    from devicegate.store import device_record_json

    opened = _open(store)
    records = opened.list_devices(only_restricted=not all_devices)
    sighted = _unlinked(opened, _sighted(opened)) if all_devices else []
    if as_json:
        write_json(
            {
                "devices": [device_record_json(r) for r in records]
                + [_sighted_json(d) for d in sighted]
            }
        )
        return
    if not records and not sighted:
        _echo("no devices" if all_devices else "no device is held or compromised")
        return
    for record in records:
        for line in _record_lines(record):
            _echo(line)
    for device in sighted:
        _echo(_sighted_line(device))


@devices_app.command("show")
def show_cmd(ref: RefArg, store: StoreOpt = STORE_DEFAULT, as_json: JsonOpt = False) -> None:
    """Everything the store knows of one device: identifiers, every hold and verdict (rule,
    reason, since, by whom, what was seen) and where it was seen."""
    from devicegate.store import device_record_json

    opened = _open(store)
    records = [r for r in (opened.device(x) for x in _resolve(opened, ref)) if r is not None]
    if records:
        (record,) = records
        users = sorted({u for u in [record.user, *(h.user for h in record.holds)] if u})
        sighted = [d for d in _sighted(opened, users=users) if set(d.keys) & set(record.keys)]
        if as_json:
            write_json(device_record_json(record) | {"seen": [_sighted_json(d) for d in sighted]})
            return
        _show_record(record, sighted)
        return
    sighted = [d for d in _unlinked(opened, _sighted(opened)) if _names(d, ref)]
    if not sighted:
        raise InputError(
            f"no device known by `{ref}`",
            hint="`devicegate devices list --all` lists every device the store knows",
        )
    if as_json:
        write_json({"device_ref": None, "seen": [_sighted_json(d) for d in sighted]})
        return
    _echo(f"`{ref}`: no hold and no verdict; seen by the servers as:")
    for device in sighted:
        _echo(f"  {_sighted_line(device)}")
        _echo(f"    signals: {_signals_text(device)}")


def _show_record(record: DeviceRecord, sighted: list[SightedDevice]) -> None:
    from devicegate.store import describe_seen

    device = " ".join(x for x in (record.vendor, record.platform, record.model) if x)
    _echo(f"device {record.device_ref}: {device or 'unidentified'}")
    _echo(f"  identifiers: {_keys(record.keys) or '-'}")
    _echo(f"  user: {record.user or '-'}")
    _echo(f"  known since {when(record.first_seen)}, last seen {when(record.last_seen)}")
    if not record.holds and not record.verdicts:
        _echo("  no hold and no verdict")
    for hold in record.holds:
        status = (
            "HELD"
            if hold.active
            else f"released {when(hold.released_at)} by {hold.released_by or '-'}"
        )
        _echo(f"  hold on {hold.resource}: {status}")
        _echo(f"    rule: {hold.rule or '-'}")
        _echo(f"    reason: {hold.reason}")
        _echo(f"    since: {when(hold.created_at)}, set by {hold.created_by or '-'}")
        _echo(f"    request of: {hold.user or '-'}")
        _echo(f"    seen: {describe_seen(hold.seen)}")
    for verdict in record.verdicts:
        status = (
            "STANDING"
            if verdict.active
            else f"cleared {when(verdict.cleared_at)} by {verdict.cleared_by or '-'}"
        )
        _echo(f"  verdict {verdict.verdict}: {status}")
        _echo(f"    since: {when(verdict.created_at)}, scan {verdict.scan_id}")
        _echo(f"    source: {verdict.source}")
        for item in verdict.evidence[:5]:
            _echo(f"    evidence: {_evidence(item)}")
        if len(verdict.evidence) > 5:
            _echo(f"    … {len(verdict.evidence) - 5} more (--json for all)")
    for seen in sighted:
        _echo(
            f"  seen via {', '.join(seen.adapters)} as {seen.label} ({seen.user}): "
            f"{seen.sightings} sighting(s), {when(seen.first_seen)} – {when(seen.last_seen)}"
        )
        _echo(f"    latest signals: {_signals_text(seen)}")


def _evidence(item: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in item.items() if v not in (None, "", [], {}))


def _signals_text(device: SightedDevice) -> str:
    from devicegate.serialize import signals_json

    return ", ".join(f"{k}={v}" for k, v in signals_json(device.signals).items()) or "-"


def _names(device: SightedDevice, identifier: str) -> bool:
    """Whether `identifier` (as `Store.find` reads it) is one of the sighted device's keys."""
    from devicegate.store import identifier_pairs

    return bool(identifier_pairs(identifier) & set(device.keys))


def _resolve(store: Store, ref: str) -> list[str]:
    """The one device `ref` names in the store ([] when none); several is an error."""
    refs = store.find(ref)
    if len(refs) > 1:
        raise InputError(
            f"`{ref}` names {len(refs)} devices: {', '.join(refs)}",
            hint="pass the device reference, or kind=value (e.g. serial=…)",
        )
    return refs


@devices_app.command("release")
def release_cmd(
    ref: RefArg,
    store: StoreOpt = STORE_DEFAULT,
    by: Annotated[str, typer.Option("--by", help="Operator name for the record.")] = "operator",
) -> None:
    """Release every hold and clear every verdict on a device, named by any of its
    identifiers (servers see it within their state-refresh interval)."""
    opened = _open(store)
    refs = _resolve(opened, ref)
    if not refs:
        raise InputError(
            f"no held or judged device is known by `{ref}`",
            hint=f"`devicegate devices show {ref}` also looks through what the servers saw",
        )
    (device_ref,) = refs
    changed = opened.release(device_ref, by=by)
    named = "" if device_ref == ref.strip() else f" (`{ref}`)"
    if not changed:
        raise InputError(f"device {device_ref}{named} has no hold or verdict to release")
    _echo(f"released {device_ref}{named} ({changed} record{'s' * (changed != 1)})")


def register(app: typer.Typer) -> None:
    app.add_typer(devices_app, name="devices")

"""`devicegate devices list|release`: the operator's view of quarantine (Exchange ABQ style)."""

from __future__ import annotations

from typing import Annotated

import typer

from devicegate.cli.common import JsonOpt, write_json
from devicegate.defaults import DEFAULT_STORE_URL as DEFAULT_URL

devices_app = typer.Typer(help="List devices and release quarantined ones.", no_args_is_help=True)

StoreOpt = Annotated[
    str, typer.Option("--store", help="SQLAlchemy URL: sqlite:///FILE or postgresql://…")
]


@devices_app.command("list")
def list_cmd(
    store: StoreOpt = DEFAULT_URL,
    all_devices: Annotated[
        bool, typer.Option("--all", help="Every known device, not only held/compromised.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Devices in quarantine (held) or marked compromised; --all for every device."""
    from devicegate.server.admin import device_json
    from devicegate.store import open_store

    records = open_store(store).list_devices(only_restricted=not all_devices)
    if as_json:
        write_json({"devices": [device_json(r) for r in records]})
        return
    if not records:
        typer.echo("no devices" if all_devices else "no device is held or compromised")
        return
    for r in records:
        what = ", ".join(
            [f"held: {'/'.join(r.held)}"] * bool(r.held)
            + [f"verdict: {r.verdict}"] * bool(r.verdict)
        )
        device = " ".join(x for x in (r.vendor, r.platform, r.model) if x) or "unidentified"
        keys = " ".join(f"{k}={v}" for k, v in r.keys)
        typer.echo(f"{r.device_ref}  {r.user or '-'}  {device}  {what or 'ok'}  [{keys}]")


@devices_app.command("release")
def release_cmd(
    device_ref: Annotated[str, typer.Argument(help="Device reference from `devices list`.")],
    store: StoreOpt = DEFAULT_URL,
    by: Annotated[str, typer.Option("--by", help="Operator name for the record.")] = "operator",
) -> None:
    """Release every hold and clear every verdict on a device (servers see it within their
    state-refresh interval)."""
    from devicegate.errors import InputError
    from devicegate.store import open_store

    changed = open_store(store).release(device_ref, by=by)
    if not changed:
        raise InputError(f"device `{device_ref}` has no hold or verdict to release")
    typer.echo(f"released {device_ref} ({changed} record{'s' * (changed != 1)})")


def register(app: typer.Typer) -> None:
    app.add_typer(devices_app, name="devices")

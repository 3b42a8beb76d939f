"""`devicegate identify`, `check` and `explain`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from devicegate.boundedcache import BoundedCache
from devicegate.cli.common import (
    ActiveSyncIdOpt,
    ActiveSyncQueryOpt,
    ActiveSyncTypeOpt,
    AtOpt,
    DevicesOpt,
    DirectoryOpt,
    ImapIdOpt,
    JsonOpt,
    MacOpt,
    MdmIdOpt,
    OptionalStoreOpt,
    PolicyOpt,
    QuietOpt,
    TlsOpt,
    UserAgentOpt,
    err,
    load_snapshot,
    make_signals,
    parse_at,
    write_json,
)
from devicegate.errors import SignalError, UsageError
from devicegate.identify import Identifier
from devicegate.inventory import EMPTY_INVENTORY, load_inventory
from devicegate.model import NO_STATE, DeviceState, Request
from devicegate.policy import Snapshot, decide, explain
from devicegate.serialize import decision_json, profile_json, signals_from_json

if TYPE_CHECKING:
    from devicegate.model import Signals
    from devicegate.store import DeviceRecord

JSONL_KEYS = {
    "user_agent",
    "activesync_query",
    "activesync_device_type",
    "activesync_device_id",
    "activesync_device_model",
    "activesync_device_os",
    "imap_id",
    "mac",
    "mdm_id",
    "tls_fingerprint",
    "client_ip",
}


def identify(
    user_agent: UserAgentOpt = None,
    activesync_query: ActiveSyncQueryOpt = None,
    activesync_device_type: ActiveSyncTypeOpt = None,
    activesync_device_id: ActiveSyncIdOpt = None,
    imap_id: ImapIdOpt = None,
    mac: MacOpt = None,
    mdm_id: MdmIdOpt = None,
    tls_fingerprint: TlsOpt = None,
    devices: DevicesOpt = None,
    as_json: JsonOpt = False,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="Read JSON lines of signals on stdin, one profile each.")
    ] = False,
) -> None:
    """Identify a device from the signals a service saw, with evidence and conflicts."""
    inventory = load_inventory(devices) if devices else EMPTY_INVENTORY
    identifier = Identifier(inventory)
    if jsonl:
        raise typer.Exit(_identify_stream(identifier))
    signals = make_signals(
        user_agent,
        activesync_query,
        activesync_device_type,
        activesync_device_id,
        imap_id,
        mac,
        mdm_id,
        tls_fingerprint,
    )
    if signals.is_empty():
        raise UsageError("no signal given", hint="pass --user-agent, --imap-id, --mac, …")
    profile = identifier.profile(signals)
    if as_json:
        write_json(profile_json(profile))
        return
    data = profile_json(profile)
    for key in ("vendor", "platform", "model", "os_version", "kind", "trust", "confidence"):
        value = data[key]
        if key in data["ambiguous"]:
            # The JSON's `ambiguous` and `claims`: one signal names several values (iPadOS in
            # desktop mode looks exactly like macOS), so no single value is printed as fact.
            value = " or ".join(data["claims"].get(key, [])) + " (ambiguous)"
        typer.echo(f"{key:>11}: {value}")
    for ev in profile.evidence:
        says = ", ".join(f"{k}={v}" for k, v in ev.says) or "nothing"
        typer.echo(
            f"   evidence: [{ev.trust.value}] {ev.signal} ({ev.source}): {says}"
            + (f" — {ev.note}" if ev.note else "")
        )
    for conflict in data["conflicts"]:
        claims = ", ".join(f"{c['signal']}={c['value']}" for c in conflict["claims"])
        typer.echo(f"   CONFLICT: {conflict['attribute']}: {claims} (spoofing suspected)")


def _identify_stream(identifier: Identifier) -> int:
    """JSON lines in, one profile per line out, in order. A bad line yields an error object
    on its own line (order and count are kept) and makes the exit status 1."""
    out = sys.stdout
    rendered: BoundedCache[Signals, str] = BoundedCache(500_000)  # one JSON per distinct input
    failures = 0
    for number, line in enumerate(sys.stdin, start=1):
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise SignalError("each line must be a JSON object")
            signals = signals_from_json({k: v for k, v in data.items() if k in JSONL_KEYS})
        except (ValueError, SignalError) as exc:
            failures += 1
            reason = exc.message if isinstance(exc, SignalError) else f"invalid JSON: {exc}"
            out.write(json.dumps({"error": reason, "line": number}) + "\n")
            continue
        text = rendered.get(signals)
        if text is None:
            text = rendered.put(
                signals, json.dumps(profile_json(identifier.profile(signals)), ensure_ascii=False)
            )
        out.write(text + "\n")
    return 1 if failures else 0


def _load_request(
    policy: list[Path],
    directory: Path | None,
    devices: Path | None,
    user: str,
    resource: str,
    at: str | None,
    signals_args: tuple[str | None, ...],
    store: str | None,
    *,
    quiet: bool,
) -> tuple[Snapshot, Request, DeviceState, DeviceRecord | None]:
    """What `check` and `explain` do before deciding: load the policy (saying what was loaded
    unless `quiet`), refuse an unknown resource, build the request, `--at` read in the
    policy's time zone, and with a store read the device's holds and verdicts from it — what
    `serve` would apply (`builtin:quarantine-hold`, `builtin:compromised`)."""
    snapshot = load_snapshot(policy, directory, devices, quiet=quiet)
    _check_resource(snapshot.resources, resource)
    signals = make_signals(*signals_args)
    request = Request(
        user=user,
        resource=resource,
        at=parse_at(at, snapshot.timezone),
        signals=signals,
    )
    if store is None:
        return snapshot, request, NO_STATE, None
    from devicegate.store import open_store, shown_url

    opened = open_store(store, create=False)
    keys = snapshot.identifier.profile(signals).keys
    state = opened.device_state(keys) if keys else NO_STATE
    record = opened.device(state.device_ref) if state.device_ref else None
    if not quiet:
        err(
            f"device state from {shown_url(store)}: "
            + (f"device {state.device_ref}" if state.device_ref else "device not in the store")
        )
    return snapshot, request, state, record


UserOpt = Annotated[str, typer.Option("--user", "-u", help="User as the service authenticated it.")]
ResourceOpt = Annotated[
    str, typer.Option("--resource", "-r", help="Work resource (email, web, …).")
]


def check(
    policy: PolicyOpt,
    user: UserOpt,
    resource: ResourceOpt,
    directory: DirectoryOpt = None,
    devices: DevicesOpt = None,
    at: AtOpt = None,
    user_agent: UserAgentOpt = None,
    activesync_query: ActiveSyncQueryOpt = None,
    activesync_device_type: ActiveSyncTypeOpt = None,
    activesync_device_id: ActiveSyncIdOpt = None,
    imap_id: ImapIdOpt = None,
    mac: MacOpt = None,
    mdm_id: MdmIdOpt = None,
    tls_fingerprint: TlsOpt = None,
    store: OptionalStoreOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Decide one access: action, deciding rule, message, report-only hits, device; with
    --store, the device's holds and verdicts count as they do in `serve`."""
    snapshot, request, state, record = _load_request(
        policy,
        directory,
        devices,
        user,
        resource,
        at,
        (
            user_agent,
            activesync_query,
            activesync_device_type,
            activesync_device_id,
            imap_id,
            mac,
            mdm_id,
            tls_fingerprint,
        ),
        store,
        quiet=quiet or as_json,
    )
    decision = decide(snapshot, request, state)
    if as_json:
        write_json(decision_json(decision))
        return
    typer.echo(
        f"{decision.action.value.upper()}"
        + (f" by rule {decision.rule}" if decision.rule else " (default)")
    )
    if decision.message:
        typer.echo(f"message: {decision.message}")
    for rule_id in decision.excepted:
        typer.echo(f"excepted: rule {rule_id} lifted by an active exception")
    for hit in decision.report_only:
        typer.echo(f"report-only: {hit.rule} would {hit.action.value}")
    if decision.spoofing_suspected:
        typer.echo("warning: signals conflict: spoofing suspected")
    if record is not None:
        for line in _store_lines(record):
            typer.echo(line)


def _store_lines(record: DeviceRecord) -> list[str]:
    """What the store holds against the device, for the help desk: each standing hold and
    verdict with rule, since and by whom, and where to read more."""
    from devicegate.store import describe_hold, describe_verdict

    ref = record.device_ref
    lines = [
        f"store: {ref} held on {describe_hold(h, user=record.user)}" for h in record.active_holds
    ]
    lines += [f"store: {ref} has {describe_verdict(v)}" for v in record.active_verdicts]
    if lines:
        lines.append(f"store: `devicegate devices show {ref}` for the details")
    return lines


def _check_resource(known: frozenset[str], resource: str) -> None:
    if resource not in known:
        from devicegate.policy.diagnostics import did_you_mean

        raise UsageError(
            f"unknown resource `{resource}`",
            hint=did_you_mean(resource, known) or "known: " + ", ".join(sorted(known)),
        )


def explain_cmd(
    policy: PolicyOpt,
    user: UserOpt,
    resource: ResourceOpt,
    directory: DirectoryOpt = None,
    devices: DevicesOpt = None,
    at: AtOpt = None,
    user_agent: UserAgentOpt = None,
    activesync_query: ActiveSyncQueryOpt = None,
    activesync_device_type: ActiveSyncTypeOpt = None,
    activesync_device_id: ActiveSyncIdOpt = None,
    imap_id: ImapIdOpt = None,
    mac: MacOpt = None,
    mdm_id: MdmIdOpt = None,
    tls_fingerprint: TlsOpt = None,
    store: OptionalStoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Print the reasoning behind a decision: the device evidence, every rule considered;
    with --store, the device's holds and verdicts too."""
    snapshot, request, state, _ = _load_request(
        policy,
        directory,
        devices,
        user,
        resource,
        at,
        (
            user_agent,
            activesync_query,
            activesync_device_type,
            activesync_device_id,
            imap_id,
            mac,
            mdm_id,
            tls_fingerprint,
        ),
        store,
        quiet=quiet,
    )
    for line in explain(snapshot, request, state):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("identify")(identify)
    app.command("check")(check)
    app.command("explain")(explain_cmd)

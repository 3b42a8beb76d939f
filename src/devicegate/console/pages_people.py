"""The user and device pages: the profile with its evidence and conflicts, recent decisions
each with its `explain`, sightings, holds, verdicts and exceptions.

A logged decision carries the signals it was made from; its `explain` is the engine's
reason chain for those signals at that moment under the policy in force now (the page says
so when the decision was made under another version). The device state is the store's now.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from devicegate.console import raw
from devicegate.console.web import NotFound, render, runtime, who
from devicegate.directory.names import normalise_name
from devicegate.errors import SignalError
from devicegate.impact import inventory_signals
from devicegate.model import NO_STATE, DeviceState
from devicegate.model import Request as DecisionRequest
from devicegate.policy import Snapshot, explain
from devicegate.serialize import signals_from_json
from devicegate.store import describe_seen

HISTORY = timedelta(days=30)


def _explained(
    snapshot: Snapshot, decisions: list[raw.LoggedDecision], state: DeviceState
) -> list[tuple[raw.LoggedDecision, list[str]]]:
    out: list[tuple[raw.LoggedDecision, list[str]]] = []
    for d in decisions:
        try:
            signals = signals_from_json(dict(d.signals))
        except (SignalError, ValueError, TypeError):
            out.append((d, []))
            continue
        request = DecisionRequest(d.user, d.resource, d.at, signals)
        out.append((d, explain(snapshot, request, state)))
    return out


def user(request: Request) -> Response:
    me = who(request)
    rt = runtime(request)
    snapshot, store = rt.snapshot, rt.store
    name = request.path_params["user"]
    found = snapshot.resolve_user(name)
    canonical = found.id if found is not None else normalise_name(name)
    now = rt.now()
    recent = raw.decisions_of_user(store, canonical, since=now - HISTORY)
    if found is None and not recent.decisions and recent.unseen is None:
        raise NotFound("no user `%(name)s`", name=name)
    inventory = []
    listed: set[str] = set()
    for key in (found.email, found.id) if found else ():
        for item in snapshot.inventory.for_user(key or ""):
            if item.device_id not in listed:
                listed.add(item.device_id)
                inventory.append((item, snapshot.identifier.profile(inventory_signals(item))))
    names = {normalise_name(a) for a in found.aliases()} if found else {canonical}
    exceptions = [e for e in snapshot.exceptions if e.user in names]
    context: dict[str, Any] = {
        "user": found,
        "name": canonical,
        "inventory": inventory,
        "decisions": _explained(snapshot, recent.decisions, NO_STATE),
        "unseen": recent.unseen,
        "sightings": store.recent_sightings(canonical, since=HISTORY, now=now, limit=50),
        "devices": store.devices_of_user(canonical),
        "exceptions": exceptions,
        "describe_seen": describe_seen,
    }
    return render(request, "user.html", context, me=me)


def device(request: Request) -> Response:
    me = who(request)
    rt = runtime(request)
    snapshot, store = rt.snapshot, rt.store
    ref = request.path_params["ref"]
    record = store.device(ref)
    if record is None:
        found = store.find(ref)
        if len(found) == 1:
            return RedirectResponse(f"/devices/{found[0]}", status_code=303)
        raise NotFound("no device `%(name)s`", name=ref)
    now = rt.now()
    state = store.device_state(record.keys)
    recent = raw.decisions_of_device(store, record.device_ref, since=now - HISTORY)
    context: dict[str, Any] = {
        "device": record,
        "decisions": _explained(snapshot, recent.decisions, state),
        "unseen": recent.unseen,
        "sightings": raw.sightings_of_device(store, record.device_ref, since=HISTORY, now=now),
        "describe_seen": describe_seen,
    }
    return render(request, "device.html", context, me=me)


__all__ = ["device", "user"]

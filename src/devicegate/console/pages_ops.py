"""Quarantine (held and compromised devices, release with a reason), exceptions, activity.

A release is the console's one change to the store. It needs the operator role, the
session's CSRF token and a reason; each device is released through `Store.release` with the
action recorded (who, when, what, why) in the same transaction. `serve` instances on the
same store see the release within their `--state-refresh`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from devicegate.console.auth import CSRF_FIELD, Forbidden, csrf_ok
from devicegate.console.web import int_param, render, runtime, who
from devicegate.policy.compile import CompiledException
from devicegate.store import describe_seen
from devicegate.store.activity import actions, record_action

REASON_MAX = 2_000  # as the message says (translated: messages.py)
RELEASE_MAX = 500
SOON = timedelta(days=7)


def quarantine(request: Request) -> Response:
    me = who(request)
    rt = runtime(request)
    devices = rt.store.list_devices(only_restricted=True)
    context: dict[str, Any] = {
        "devices": devices,
        "describe_seen": describe_seen,
        "released": request.query_params.get("released", ""),
        "error": None,
    }
    return render(request, "quarantine.html", context, me=me)


async def release(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=RELEASE_MAX + 10)
    if not csrf_ok(request, form.get(CSRF_FIELD) or request.headers.get("x-csrf-token")):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page")
    me = who(request, operator=True)
    rt = runtime(request)
    refs = [r for r in form.getlist("device") if isinstance(r, str)][:RELEASE_MAX]
    reason = form.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not refs or not reason or len(reason) > REASON_MAX:
        devices = await run_in_threadpool(rt.store.list_devices, only_restricted=True)
        problem = (
            "choose at least one device"
            if not refs
            else "a release needs a reason (at most 2000 characters)"
        )
        context = {
            "devices": devices,
            "describe_seen": describe_seen,
            "released": "",
            "error": problem,
        }
        return render(request, "quarantine.html", context, status=422, me=me)

    def release_all() -> int:
        done = 0
        for ref in dict.fromkeys(refs):
            record = rt.store.device(ref)
            if record is None or not record.restricted:
                continue

            def note(conn: Any, changed: int, record: Any = record) -> None:
                record_action(
                    conn,
                    actor=me.user,
                    role=me.role,
                    action="release",
                    target=record.device_ref,
                    reason=reason,
                    detail={
                        "changed": changed,
                        "held": list(record.held),
                        "verdict": record.verdict,
                        "user": record.user,
                    },
                )

            if rt.store.release(record.device_ref, by=f"console {me.user}", record=note):
                done += 1
        return done

    done = await run_in_threadpool(release_all)
    return RedirectResponse(f"/quarantine?released={done}", status_code=303)


def exceptions(request: Request) -> Response:
    me = who(request)
    rt = runtime(request)
    now = rt.now().timestamp()
    days = int_param(request, "days", 1, 365)
    soon = SOON if days is None else timedelta(days=days)
    active: list[CompiledException] = []
    ending: list[CompiledException] = []
    ended: list[CompiledException] = []
    for exc in rt.snapshot.exceptions:
        if exc.end <= now:
            ended.append(exc)
        elif exc.start <= now:
            (ending if exc.end - now <= soon.total_seconds() else active).append(exc)
    by_approver: dict[str, list[Any]] = defaultdict(list)
    for exc in rt.snapshot.exceptions:
        by_approver[exc.approver or ""].append(exc)
    context = {
        "active": active,
        "ending": ending,
        "ended": ended,
        "soon_days": soon.days,
        "by_approver": sorted(by_approver.items()),
    }
    return render(request, "exceptions.html", context, me=me)


def activity(request: Request) -> Response:
    me = who(request)
    before = int_param(request, "before", 1, 10**18)
    rows = actions(runtime(request).store, limit=100, before_id=before)
    return render(request, "activity.html", {"actions": rows}, me=me)


__all__ = ["activity", "exceptions", "quarantine", "release"]

"""`devicegate decisions export` writes the decision log in the audit's `decisions` format,
and re-judging each exported line under the same policy gives the action that was logged —
including SMTP decisions, whose signals are those of the sighting they were decided from."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from devicegate.adapters.postfix import PolicyRequest, PostfixPolicyServer
from devicegate.audit.formats import decisions as fmt
from devicegate.audit.formats.base import ParseContext
from devicegate.model import Request
from devicegate.policy import decide
from devicegate.serialize import signals_from_json
from devicegate.server import DevicegateApp
from tests.server.conftest import TestClient
from tests.server.scenario import ANDROID_CHROME, IPHONE_SAFARI, LAB, OPS, WINDOWS_EDGE
from tests.server.test_cli import run


def test_export_round_trips_through_the_audit_parser(
    client: TestClient, app: DevicegateApp, tmp_path: Path
) -> None:
    for user, ua in ((OPS, IPHONE_SAFARI), (OPS, WINDOWS_EDGE), (LAB, ANDROID_CHROME)):
        client.get("/v1/forward-auth/web", headers={"X-Devicegate-User": user, "User-Agent": ua})
    server = PostfixPolicyServer(app.service, "127.0.0.1", 0, window=timedelta(days=1))

    async def submit() -> None:
        server.answer(PolicyRequest("smtpd_access_policy", OPS, "198.51.100.7", "RCPT"))
        await app.service.durable()

    client._run(submit())
    out = tmp_path / "decisions.jsonl"
    store = str(app.service.store.engine.url)
    assert run(["decisions", "export", "--store", store, "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["adapter"] for line in lines] == ["forward-auth"] * 3 + ["postfix"]
    assert "sighting" in lines[-1]["basis"] and lines[-1]["signals"]["user_agent"]
    snapshot = app.service.snapshot
    parser = fmt.parser(ParseContext(str(out), None, snapshot.timezone, 2026))
    for number, (text, line) in enumerate(
        zip(out.read_text(encoding="utf-8").splitlines(), lines, strict=True), 1
    ):
        (event,) = parser.feed(text, number)
        assert (event.user, event.resource) == (line["user"], line["resource"])
        signals = signals_from_json(line["signals"])
        again = decide(snapshot, Request(event.user, event.resource, event.ts, signals))
        assert again.action.value == line["action"] and again.rule == line["rule"]


def test_export_time_window(client: TestClient, app: DevicegateApp, tmp_path: Path) -> None:
    client.get("/v1/forward-auth/web", headers={"X-Devicegate-User": OPS, "User-Agent": "x"})
    store = str(app.service.store.engine.url)
    out = tmp_path / "none.jsonl"
    assert (
        run(["decisions", "export", "--store", store, "--until", "2020-01-01", "--out", str(out)])
        == 0
    )
    assert out.read_text(encoding="utf-8") == ""
    assert run(["decisions", "export", "--store", store, "--since", "yesterday"]) == 2

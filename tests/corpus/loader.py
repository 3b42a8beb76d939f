"""The decision corpus, loaded once for every front end that must agree on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from devicegate.directory import load_directory
from devicegate.inventory import load_inventory
from devicegate.model import Request, Signals
from devicegate.policy import Snapshot, compile_policy, load_policy

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
POLICY = ROOT / "examples" / "apple-ban" / "policy.yaml"
DIRECTORY = HERE / "directory.csv"
DEVICES = HERE / "devices.csv"
ZONE = ZoneInfo("Europe/Moscow")


@dataclass(frozen=True)
class Case:
    name: str
    user: str
    resource: str
    at: datetime
    signals: dict[str, str]
    expect: dict[str, Any]

    def request(self) -> Request:
        return Request(self.user, self.resource, self.at, Signals(**self.signals))


def cases() -> list[Case]:
    data = yaml.safe_load((HERE / "cases.yaml").read_text(encoding="utf-8"))
    out = []
    for item in data:
        at = datetime.fromisoformat(item["at"])
        out.append(
            Case(
                item["name"],
                item["user"],
                item["resource"],
                at if at.tzinfo else at.replace(tzinfo=ZONE),
                item.get("signals") or {},
                item["expect"],
            )
        )
    return out


def corpus_snapshot() -> Snapshot:
    return compile_policy(load_policy([POLICY]), load_directory(DIRECTORY), load_inventory(DEVICES))


def check_expectation(case: Case, decision: dict[str, Any]) -> None:
    """Compare a Decision in its JSON shape with the case's expectation."""
    expect = case.expect
    assert decision["action"] == expect["action"], (case.name, decision)
    assert decision["rule"] == expect["rule"], (case.name, decision)
    if "excepted" in expect:
        assert decision["excepted"] == expect["excepted"], (case.name, decision)
    if "report_only" in expect:
        assert [h["rule"] for h in decision["report_only"]] == expect["report_only"], case.name
    if "spoofing_suspected" in expect:
        assert decision["spoofing_suspected"] == expect["spoofing_suspected"], case.name
    if "effective_from" in expect:
        assert decision["effective_from"] == expect["effective_from"], (case.name, decision)

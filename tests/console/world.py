"""The console tests' world: a policy dated around today, a directory of a few dozen people in
five units, the traffic they send through a real `devicegate serve`, and what the test
expects the overview to show — computed here from the raw decision log, not from rollups."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from tests.server.scenario import ANDROID_CHROME as ANDROID
from tests.server.scenario import IPHONE_SAFARI as IPHONE

from devicegate.store import Store

#: a User-Agent carrying markup: every page must show it as text
HOSTILE_UA = IPHONE + ' <script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
SPOOF_ID = "SPOOF0000DEVICE00000000000000001"
SPOOFER = "d01"

UNITS = {"gov/a": 12, "gov/a/lab": 3, "gov/b": 8, "gov/c": 5, "gov/d": 4}


def users() -> list[tuple[str, str]]:
    """(user id, unit) of everyone in the directory."""
    return [
        (f"{unit.split('/')[-1]}{n:02d}", unit)
        for unit, count in UNITS.items()
        for n in range(1, count + 1)
    ]


def email(user: str) -> str:
    return f"{user}@gov.example"


def policy_text() -> str:
    today = datetime.now(UTC).date()
    return f"""version: 1
name: console-test
timezone: UTC
units: [{", ".join(UNITS)}]
resources:
  web: {{description: intranet}}
  email: {{description: ActiveSync}}
rules:
  - id: wave-1
    description: Apple leaves work in gov/a
    scope: {{units: [gov/a]}}
    when: {{vendor: [Apple]}}
    resources: [web, email]
    from: {today - timedelta(days=10)}
    notice: 7d
    effect: block
    message: Apple devices may no longer be used for work in gov/a.
  - id: lab
    scope: {{units: [gov/a/lab]}}
    when: {{vendor: [Apple]}}
    resources: [web, email]
    from: {today - timedelta(days=10)}
    effect: allow
  - id: wave-2
    description: gov/b follows
    scope: {{units: [gov/b]}}
    when: {{vendor: [Apple]}}
    resources: [web, email]
    from: {today + timedelta(days=5)}
    notice: 14d
    effect: block
    message: From next week Apple devices leave work in gov/b.
  - id: spoof-hold
    scope: {{units: [gov/d]}}
    when: {{spoofing_suspected: true}}
    resources: [email]
    from: {today - timedelta(days=10)}
    effect: quarantine
    message: Conflicting device signals; the device is held for review.
  - id: preview
    scope: {{units: [gov/c]}}
    when: {{vendor: [Apple]}}
    resources: [all]
    from: {today - timedelta(days=10)}
    effect: block
    mode: report-only
exceptions:
  - user: {email("a02")}
    rules: [wave-1]
    until: {today + timedelta(days=3)}
    reason: replacement phone on order <b>not bold</b>
    approver: ciso@gov.example
"""


@dataclass(frozen=True)
class World:
    root: Path
    policy: Path
    directory: Path
    store_url: str
    candidates: Path


def write_world(root: Path) -> World:
    root.mkdir(parents=True, exist_ok=True)
    policy = root / "policy.yaml"
    policy.write_text(policy_text(), encoding="utf-8")
    directory = root / "directory.csv"
    directory.write_text(
        "user,unit,groups,email,name\n"
        + "".join(f"{u},{unit},,{email(u)},{u.title()}\n" for u, unit in users()),
        encoding="utf-8",
    )
    candidates = root / "candidates"
    candidates.mkdir()
    (candidates / "gov-c-enforced.yaml").write_text(
        policy_text().replace("    mode: report-only\n", ""), encoding="utf-8"
    )
    return World(root, policy, directory, f"sqlite:///{root}/store.db", candidates)


def console_app(world: World, store: Store, **settings: object) -> Any:
    """The console's ASGI app in process on `world` and `store`, answering the Host
    `testserver`, its rollups brought up to date with what the store holds now: what the
    in-process tests and the fuzz campaign drive."""
    from devicegate.cli.common import load_snapshot
    from devicegate.console import ConsoleConfig, create_app
    from devicegate.console.runtime import Runtime

    config = ConsoleConfig(
        policy=(world.policy,),
        directory=world.directory,
        devices=None,
        store_url=world.store_url,
        candidates=world.candidates,
        allowed_hosts=("testserver",),
        **settings,  # type: ignore[arg-type]
    )
    snapshot = load_snapshot([world.policy], world.directory, None, quiet=True)
    runtime = Runtime(config, snapshot, store)
    runtime.roll_up()
    return create_app(config, runtime)


def ask(client: httpx.Client, user: str, resource: str, agent: str, **headers: str) -> int:
    """One forward-auth request as nginx would send it; the answer's status."""
    response = client.get(
        f"/v1/forward-auth/{resource}",
        headers={"X-Devicegate-User": email(user), "User-Agent": agent, **headers},
    )
    return response.status_code


def activesync(device_id: str, device_type: str) -> dict[str, str]:
    return {
        "X-Original-URI": f"/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId={device_id}"
        f"&DeviceType={device_type}"
    }


def send_traffic(client: httpx.Client) -> None:
    """Everyone's morning: Apple users in gov/a are blocked (a02 is excepted, the lab
    allowed), gov/b is warned, gov/c shows report-only hits; d01's mail client lies (held);
    a09 sends markup in its User-Agent."""
    for user, _unit in users():
        apple = int(user[-2:]) % 2 == 1 or user == "a02"
        agent = IPHONE if apple else ANDROID
        for resource in ("web", "email"):
            ask(client, user, resource, agent)
    ask(client, SPOOFER, "email", ANDROID, **activesync(SPOOF_ID, "iPhone"))
    ask(client, "a09", "web", HOSTILE_UA)


def expected_overview(store: Store, today: datetime) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(rule, unit) → (users in scope, seen on a matching device, of them excepted), from the
    raw decision log and the directory: a user is *seen* for rule R on a decision R decided,
    or that R matched while the access was not allowed, or on which an exception lifted R;
    *excepted* when every such decision an exception lifted."""
    scope = {"wave-1": ("gov/a",), "wave-2": ("gov/b",), "spoof-hold": ("gov/d",)}
    unit_of = {u: unit for u, unit in users()}
    out: dict[tuple[str, str], list[int]] = {}
    for rule, scopes in scope.items():
        for _user, unit in users():
            if any(unit == s or unit.startswith(s + "/") for s in scopes):
                out.setdefault((rule, unit), [0, 0, 0])[0] += 1
    lifted: dict[tuple[str, str], list[bool]] = defaultdict(list)
    start = today.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
    for row in store.iter_decisions(since=start):
        detail = row["detail"]
        rules = set(detail["excepted"])
        if row["rule"] and not row["rule"].startswith("builtin:"):
            rules.add(row["rule"])
        if row["action"] != "allow":
            rules |= set(detail["matched"])
        for rule in rules & set(scope):
            lifted[(rule, row["user"])].append(rule in detail["excepted"])
    for (rule, user), flags in lifted.items():
        row = out.setdefault((rule, unit_of[user]), [0, 0, 0])
        row[1] += 1
        row[2] += all(flags)
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}

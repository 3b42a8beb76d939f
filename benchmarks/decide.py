"""Decision throughput: devicegate vs Cedar (cedarpy) vs a plain dict-lookup floor.

    .venv/bin/python benchmarks/decide.py [--requests 1000000] [--cedar-sample 50000]

Setup: 1,000 leaf units (10 ministries x 10 departments x 10 sections), 100k users, 200
rules (wave bans at ministry and department level with dates and notice, deeper allow rules
for labs, warn and report-only rules), 1M requests drawn with realistic repetition (a skewed
pool of a few thousand distinct User-Agents, ActiveSync and IMAP signals; popular users
and resources more frequent).

Measured in one run, single thread:
* devicegate `decide(snapshot, Request(user, resource, at, signals))` — identification of
  the signals (with its cache) included;
* cedarpy `is_authorized` with pre-parsed PolicySet and Entities, on a sample; the same
  policy written in Cedar (deeper allow/warn rules become `unless` clauses, dates compare an
  epoch in the context). Cedar cannot parse a User-Agent, so it is handed the vendors
  devicegate identified — which flatters Cedar;
* the floor: one dict lookup of a precomputed answer per (user, resource, user-agent).

The three must agree (allow/warn → allow, block/quarantine → deny) on a sample; the script
exits 1 otherwise. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from devicegate.directory import Directory, User
from devicegate.model import Action, Request, Signals
from devicegate.policy import compile_policy, decide, load_policy

SEED = 7
RESOURCES = ["email", "web", "vpn", "wifi", "messaging", "files"]
VENDORS = ["Apple", "Samsung", "Xiaomi", "Huawei", "Google"]
START = datetime(2023, 7, 1, tzinfo=UTC)


def units() -> list[str]:
    return [f"gov/m{m}/d{d}/s{s}" for m in range(10) for d in range(10) for s in range(10)]


def build_rules(rng: random.Random) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for i in range(200):
        kind = rng.random()
        m, d, s = rng.randrange(10), rng.randrange(10), rng.randrange(10)
        day = START + timedelta(days=rng.randrange(0, 60))
        rule: dict[str, Any] = {
            "id": f"r{i:03d}",
            "when": {"vendor": rng.sample(VENDORS[:3], k=rng.choice([1, 1, 2]))},
            "resources": rng.sample(RESOURCES, k=rng.randrange(1, 4)),
            "from": day.date().isoformat(),
        }
        if kind < 0.45:
            rule.update(scope={"units": [f"gov/m{m}"]}, effect="block", notice="14d")
        elif kind < 0.75:
            rule.update(scope={"units": [f"gov/m{m}/d{d}"]}, effect="block")
        elif kind < 0.85:
            rule.update(scope={"units": [f"gov/m{m}/d{d}/s{s}"]}, effect="allow")
        elif kind < 0.93:
            rule.update(scope={"units": [f"gov/m{m}/d{d}"]}, effect="warn")
        else:
            rule.update(scope={"units": [f"gov/m{m}"]}, effect="block", mode="report-only")
        rules.append(rule)
    return rules


UA_TEMPLATES = [
    (
        "Apple",
        "Mozilla/5.0 (iPhone; CPU iPhone OS {a}_{b} like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/{a}.{b} Mobile/15E148 Safari/604.1",
    ),
    ("Apple", "Apple-iPhone{a}C{b}/20{a}{b}.{c}.1"),
    ("Apple", "MobileMail/1.0 CFNetwork/14{a}{b}.0.{c} Darwin/22.{b}.0"),
    (
        "Samsung",
        "Mozilla/5.0 (Linux; Android {a}; SM-S91{b}B) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/1{a}{b}.0.{c}.144 Mobile Safari/537.36",
    ),
    (
        "Xiaomi",
        "Mozilla/5.0 (Linux; Android {a}; 2201117T{b}) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/1{a}{b}.0.{c}.90 Mobile Safari/537.36",
    ),
    (
        "Other",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/1{a}{b}.0.{c}.0 Safari/537.36",
    ),
]


def signal_pool(rng: random.Random, size: int) -> list[Signals]:
    pool = []
    for i in range(size):
        _, template = UA_TEMPLATES[i % len(UA_TEMPLATES)]
        ua = template.format(a=rng.randrange(12, 18), b=rng.randrange(1, 8), c=rng.randrange(1, 99))
        if rng.random() < 0.1:
            pool.append(
                Signals(
                    user_agent=ua, activesync_device_type="iPhone" if "iPhone" in ua else "Android"
                )
            )
        else:
            pool.append(Signals(user_agent=ua))
    return pool


def cedar_policy(rules: list[dict[str, Any]]) -> str:
    """The same rules in Cedar. Deeper `allow` rules become `unless` clauses of the broader
    forbids they override; `warn` rules permit (they let the access through)."""
    # Deeper allow *and* warn rules override a broader block (both let the access through).
    allows = [
        r for r in rules if r.get("effect") in ("allow", "warn") and r.get("mode") != "report-only"
    ]
    out = ["permit(principal, action, resource);"]
    for rule in rules:
        if rule.get("effect") not in ("block",) or rule.get("mode") == "report-only":
            continue
        unit = rule["scope"]["units"][0]
        start = int(datetime.fromisoformat(rule["from"]).replace(tzinfo=UTC).timestamp())
        vendors = "[" + ", ".join(f'"{v}"' for v in rule["when"]["vendor"]) + "]"
        res = "[" + ", ".join(f'"{r}"' for r in rule["resources"]) + "]"
        unless = []
        depth = unit.count("/")
        for allow in allows:
            inner = allow["scope"]["units"][0]
            if inner.startswith(unit + "/") and inner.count("/") > depth:
                a_start = int(datetime.fromisoformat(allow["from"]).replace(tzinfo=UTC).timestamp())
                a_vendors = "[" + ", ".join(f'"{v}"' for v in allow["when"]["vendor"]) + "]"
                a_res = "[" + ", ".join(f'"{r}"' for r in allow["resources"]) + "]"
                unless.append(
                    f'(principal in Unit::"{inner}" && context.now >= {a_start} && '
                    f"{a_vendors}.containsAny(context.vendors) && {a_res}.contains(resource.name))"
                )
        clause = f" unless {{ {' || '.join(unless)} }}" if unless else ""
        out.append(
            f'forbid(principal in Unit::"{unit}", action, resource) when {{ context.now >= {start}'
            f" && {vendors}.containsAny(context.vendors)"
            f" && {res}.contains(resource.name) }}{clause};"
        )
    return "\n".join(out)


def cedar_entities(all_units: list[str], users: list[User]) -> list[dict[str, Any]]:
    def uid(kind: str, ident: str) -> dict[str, Any]:
        return {"__entity": {"type": kind, "id": ident}}

    nodes: set[str] = set()
    for unit in all_units:
        parts = unit.split("/")
        nodes.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    entities = []
    for node in sorted(nodes):
        parent = node.rsplit("/", 1)[0] if "/" in node else None
        entities.append(
            {
                "uid": uid("Unit", node),
                "attrs": {},
                "parents": [uid("Unit", parent)] if parent else [],
            }
        )
    for user in users:
        entities.append(
            {"uid": uid("User", user.id), "attrs": {}, "parents": [uid("Unit", user.unit)]}
        )
    for name in RESOURCES:
        entities.append({"uid": uid("Resource", name), "attrs": {"name": name}, "parents": []})
    return entities


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--cedar-sample", type=int, default=50_000)
    args = parser.parse_args()
    rng = random.Random(SEED)
    all_units = units()
    rules = build_rules(rng)
    users = [User(f"u{i:06d}@example.org", rng.choice(all_units)) for i in range(args.users)]

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump({"timezone": "UTC", "units": all_units, "rules": rules}))
        t0 = time.perf_counter()
        snapshot = compile_policy(load_policy([path]), Directory(users))
        compile_s = time.perf_counter() - t0
    print(
        f"compiled {len(rules)} rules for {len(users)} users in {len(all_units)} units "
        f"({len(snapshot.classes) - 1} scope classes) in {compile_s:.2f} s"
    )

    pool = signal_pool(rng, 4000)
    weights = [1 / (i + 1) ** 1.1 for i in range(len(pool))]
    user_weights = [1 / (i + 1) ** 0.6 for i in range(len(users))]
    chosen_signals = rng.choices(range(len(pool)), weights=weights, k=args.requests)
    chosen_users = rng.choices(range(len(users)), weights=user_weights, k=args.requests)
    requests = []
    for i in range(args.requests):
        sig = pool[chosen_signals[i]]
        # a fresh, equal Signals object per request, as a server parsing headers would make
        requests.append(
            Request(
                users[chosen_users[i]].id,
                rng.choice(RESOURCES),
                START + timedelta(seconds=rng.randrange(0, 90 * 86400)),
                Signals(
                    user_agent=sig.user_agent, activesync_device_type=sig.activesync_device_type
                ),
            )
        )
    print(
        f"{args.requests} requests, {len(set(chosen_signals))} distinct signal sets, "
        f"{len(set(chosen_users))} distinct users"
    )

    # -- devicegate, first pass: cold caches (identification and evaluation included)
    t0 = time.perf_counter()
    for request in requests:
        decide(snapshot, request)
    cold_s = time.perf_counter() - t0
    cold_per_s = len(requests) / cold_s
    # -- second pass over the same requests: the steady state of a long-running server
    t0 = time.perf_counter()
    for request in requests:
        decide(snapshot, request)
    dg_s = time.perf_counter() - t0
    dg_per_s = len(requests) / dg_s
    lat = []
    clock = time.perf_counter_ns
    for request in requests[:200_000]:
        t = clock()
        decide(snapshot, request)
        lat.append((clock() - t) / 1000)
    median_us, p99_us = statistics.median(lat), percentile(lat, 0.99)
    print(
        f"devicegate: cold {cold_per_s:,.0f} decisions/s (first pass, caches empty); "
        f"steady {dg_per_s:,.0f} decisions/s; median {median_us:.2f} µs, p99 {p99_us:.2f} µs"
    )

    # -- floor: one dict lookup of a precomputed answer
    table = {}
    for request in requests:
        table[(request.user, request.resource, request.signals.user_agent)] = True
    t0 = time.perf_counter()
    get = table.get
    for request in requests:
        get((request.user, request.resource, request.signals.user_agent))
    floor_s = time.perf_counter() - t0
    floor_per_s = len(requests) / floor_s
    print(f"floor (dict lookup): {floor_per_s:,.0f} lookups/s")

    # -- cedarpy on a sample
    import cedarpy

    policy_set = cedarpy.PolicySet.from_str(cedar_policy(rules))
    entities = cedarpy.Entities.from_json_str(json.dumps(cedar_entities(all_units, users)))
    sample = requests[: args.cedar_sample]
    cedar_reqs = []
    for request in sample:
        vendors = list(snapshot.identifier.profile(request.signals).claimed("vendor"))
        cedar_reqs.append(
            {
                "principal": f'User::"{request.user}"',
                "action": 'Action::"access"',
                "resource": f'Resource::"{request.resource}"',
                "context": {"vendors": vendors, "now": int(request.at.timestamp())},
            }
        )
    t0 = time.perf_counter()
    cedar_results = [cedarpy.is_authorized(r, policy_set, entities) for r in cedar_reqs]
    cedar_s = time.perf_counter() - t0
    cedar_per_s = len(cedar_reqs) / cedar_s
    print(f"cedarpy: {cedar_per_s:,.0f} decisions/s on a {len(cedar_reqs)}-request sample")

    # -- agreement
    disagreements = 0
    for request, result in zip(sample, cedar_results, strict=True):
        ours = decide(snapshot, request).action in (Action.ALLOW, Action.WARN)
        floor = table[(request.user, request.resource, request.signals.user_agent)]
        del floor  # the floor answers a lookup, not the policy: only its speed is compared
        if ours != result.allowed:
            disagreements += 1
    print(
        f"agreement with Cedar on {len(sample)} requests: {len(sample) - disagreements} "
        f"agree, {disagreements} disagree"
    )

    ratio_cedar = dg_per_s / cedar_per_s
    print(f"cold pass vs cedarpy: {cold_per_s / cedar_per_s:.1f}x")
    ratio_floor = dg_per_s / floor_per_s
    print(
        f"devicegate / cedarpy = {ratio_cedar:.1f}x (target >= 20x); "
        f"devicegate / floor = {ratio_floor:.2f} (target >= 0.2, i.e. within 5x)"
    )
    print(
        json.dumps(
            {
                "name": "decide",
                "per_s": round(dg_per_s),
                "cold_per_s": round(cold_per_s),
                "median_us": round(median_us, 3),
                "p99_us": round(p99_us, 3),
                "cedarpy_per_s": round(cedar_per_s),
                "floor_per_s": round(floor_per_s),
                "ratio_vs_cedarpy": round(ratio_cedar, 2),
                "ratio_vs_floor": round(ratio_floor, 3),
                "requests": len(requests),
                "disagreements": disagreements,
            }
        )
    )
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())

"""The console on a big store: pages from rollups against the naive SQL over the raw log, and
what a console streaming the live page costs `serve`.

    .venv/bin/python benchmarks/console.py [--users 100000] [--decisions 10000000]
        [--sightings 1000000] [--days 30] [--requests 40] [--seconds 5] [--rounds 3]

1. Bulk-loads a SQLite store (the schema the migrations build): `--users` users in 20 units of
   equal size (one unit of 5,000 users at the defaults), `--decisions` decisions over `--days`
   days as `serve`'s writer stores them (narrow rows over shared details; blocks, warnings,
   exceptions, report-only hits, allowed devices, people switching phones as their wave
   comes), and `--sightings` sightings. Then the rollup updater (`store.rollups`, what the
   console runs) rolls the whole log up; its rate is printed.
2. Starts `devicegate console` on it and times, over HTTP, `--requests` loads of the
   overview, of the 5,000-user unit page, and of the pages of one user with an Apple phone
   and of that phone (p95; each shows the newest 50 of its decisions), and once more the
   naive SQL that computes the overview's numbers from the raw log (distinct users per unit
   and rule in the window, of them excepted, the 14-day trend, today's decisions by
   action) — the baseline the rollups must beat by ≥ 20×.
3. `devicegate serve` under wrk (forward-auth, `-t2 -c32`) on a store of its own, alone and with
   a console process on that store streaming the live page to a client (and rolling up what
   serve writes), rounds interleaved, best round each.

Targets: overview p95 ≤ 300 ms, unit page p95 ≤ 500 ms, naive / overview ≥ 20, serve with a
console streaming ≥ 0.9× of serve alone. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from forward_auth import free_port, start, stop, wait_port, wrk  # noqa: E402

DEVICEGATE = str(Path(sys.executable).with_name("devicegate"))
UNITS = 20
IPHONE = "Apple-iPhone14C2/2003.1.1"
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36"
)


def unit_of(n: int, users: int) -> str:
    return f"gov/u{n * UNITS // users:02d}"


def policy(start: datetime, days: int) -> str:
    first = (start + timedelta(days=days // 2)).date()
    later = (start + timedelta(days=days + 10)).date()
    wave1 = ", ".join(f"gov/u{i:02d}" for i in range(10))
    wave2 = ", ".join(f"gov/u{i:02d}" for i in range(10, 15))
    preview = ", ".join(f"gov/u{i:02d}" for i in range(15, 20))
    return f"""version: 1
name: console-bench
timezone: UTC
units: [{", ".join(f"gov/u{i:02d}" for i in range(UNITS))}]
resources: {{web: {{description: intranet}}, email: {{description: mail}}}}
rules:
  - id: wave-1
    scope: {{units: [{wave1}]}}
    when: {{vendor: [Apple]}}
    resources: [web, email]
    from: {first}
    notice: 14d
    effect: block
    message: Apple devices may no longer be used for work.
  - id: wave-2
    scope: {{units: [{wave2}]}}
    when: {{vendor: [Apple]}}
    resources: [web, email]
    from: {later}
    notice: 21d
    effect: block
    message: Apple devices leave work use soon.
  - id: preview
    scope: {{units: [{preview}]}}
    when: {{vendor: [Apple]}}
    resources: [web, email]
    from: {start.date()}
    effect: block
    mode: report-only
exceptions:
  - user: user000001@gov.example
    rules: [wave-1]
    until: {later}
    reason: replacement on order
"""


def phone(n: int) -> str:
    """The device ref of user n's Apple phone."""
    return f"d-{n:06d}"


def detail(
    user: str, resource: str, action: str, rule: str | None, apple: bool, **lists: list[str]
) -> tuple[object, ...]:
    body = {"message": "", "matched": [], "report_only": [], "excepted": [], **lists}
    body["signals"] = {"user_agent": IPHONE if apple else ANDROID}
    return (
        user,
        resource,
        "forward-auth",
        action,
        rule,
        "bench",
        phone(int(user[4:])) if apple else None,
        "Apple" if apple else "Samsung",
        "iOS" if apple else "Android",
        json.dumps(body),
    )


def load(db: Path, users: int, decisions: int, sightings: int, days: int, start: datetime) -> None:
    """Bulk-load the log as serve's writer stores it (details once, narrow decision rows)."""
    from devicegate.store import open_store
    from devicegate.store.tables import detail_digest

    open_store(f"sqlite:///{db}").engine.dispose()  # the schema, by the migrations
    rng = random.Random(7)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    # the indexes the migrations built on the two big tables: dropped for the load, built again
    rebuilt = [
        (name, sql)
        for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('decisions', 'sightings')"
        )
    ]
    for name, _sql in rebuilt:
        conn.execute(f"DROP INDEX {name}")
    wave1_from = days // 2
    details: list[tuple[object, ...]] = []
    ids: dict[tuple[int, str, str], int] = {}

    def add(n: int, resource: str, kind: str, row: tuple[object, ...]) -> None:
        ids[(n, resource, kind)] = len(details) + 1
        details.append((len(details) + 1, detail_digest(row), *row))

    apple_users = set()
    for n in range(users):
        name = f"user{n:06d}"
        unit = int(unit_of(n, users)[-2:])
        apple = rng.random() < 0.35
        if apple:
            apple_users.add(n)
        for resource in ("web", "email"):
            add(n, resource, "other", detail(name, resource, "allow", None, False))
            if not apple:
                continue
            if unit < 10:
                add(
                    n,
                    resource,
                    "notice",
                    detail(name, resource, "warn", "wave-1", True, matched=["wave-1"]),
                )
                add(
                    n,
                    resource,
                    "active",
                    detail(name, resource, "block", "wave-1", True, matched=["wave-1"]),
                )
                add(
                    n,
                    resource,
                    "excepted",
                    detail(name, resource, "allow", None, True, excepted=["wave-1"]),
                )
                add(n, resource, "before", detail(name, resource, "allow", None, True))
            elif unit < 15:
                add(
                    n,
                    resource,
                    "notice",
                    detail(name, resource, "warn", "wave-2", True, matched=["wave-2"]),
                )
                add(n, resource, "before", detail(name, resource, "allow", None, True))
            else:
                add(
                    n,
                    resource,
                    "before",
                    detail(name, resource, "allow", None, True, report_only=["preview"]),
                )
    conn.executemany(
        "INSERT INTO decision_details (id, digest, user, resource, adapter, action, rule, "
        "policy_version, device_ref, vendor, platform, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        details,
    )
    switch = {n: rng.randint(wave1_from - 10, days + 20) for n in apple_users}
    per_day = decisions // days
    made = 0
    for day in range(days):
        rows = []
        base = start + timedelta(days=day)
        for _ in range(per_day):
            n = rng.randrange(users)
            resource = "email" if rng.random() < 0.6 else "web"
            kind = "other"
            if n in apple_users and day < switch[n]:
                unit = int(unit_of(n, users)[-2:])
                if unit < 10:
                    if n == 1:
                        kind = "excepted"
                    elif day >= wave1_from:
                        kind = "active"
                    elif day >= wave1_from - 14:
                        kind = "notice"
                    else:
                        kind = "before"
                elif unit < 15:
                    kind = "notice" if day >= days - 11 else "before"
                else:
                    kind = "before"
            at = base + timedelta(seconds=rng.randrange(86400))
            made += 1
            rows.append(
                (
                    made,
                    f"bench-{made:012x}",
                    at.strftime("%Y-%m-%d %H:%M:%S.000000"),
                    ids[(n, resource, kind)],
                )
            )
        rows.sort(key=lambda r: r[2])
        rows = [(i + made - len(rows) + 1, r[1], r[2], r[3]) for i, r in enumerate(rows)]
        conn.executemany(
            "INSERT INTO decisions (id, request_id, at, detail_id) VALUES (?,?,?,?)", rows
        )
        conn.commit()
    sight = []
    for i in range(sightings):
        n = rng.randrange(users)
        at = start + timedelta(seconds=rng.randrange(days * 86400))
        apple = n in apple_users
        sight.append(
            (
                at.strftime("%Y-%m-%d %H:%M:%S.000000"),
                f"user{n:06d}",
                "web",
                "forward-auth",
                None,
                "Apple" if apple else "Samsung",
                "iOS" if apple else "Android",
                json.dumps({"user_agent": IPHONE if apple else ANDROID}),
            )
        )
        if len(sight) == 100_000 or i == sightings - 1:
            conn.executemany(
                "INSERT INTO sightings (at, user, resource, adapter, device_ref, vendor, "
                "platform, signals) VALUES (?,?,?,?,?,?,?,?)",
                sight,
            )
            sight = []
    conn.commit()
    for _name, sql in rebuilt:
        conn.execute(sql)
    first = start.strftime("%Y-%m-%d %H:%M:%S.000000")
    conn.execute(  # the phone whose device page is timed, and its user's page
        "INSERT INTO devices (device_ref, user, vendor, platform, model, first_seen, last_seen) "
        "VALUES (?, ?, 'Apple', 'iOS', 'iPhone', ?, ?)",
        (phone(min(apple_users)), f"user{min(apple_users):06d}", first, first),
    )
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


JOINED = (
    "FROM decisions d JOIN decision_details x ON x.id = d.detail_id "
    "JOIN people p ON p.user = x.user"
)


def naive_overview(db: Path, users: int, today: datetime, days: int = 7) -> float:
    """The overview's numbers straight from the raw log; seconds taken."""
    conn = sqlite3.connect(db)
    conn.execute("CREATE TEMP TABLE people (user TEXT PRIMARY KEY, unit TEXT)")
    conn.executemany(
        "INSERT INTO people VALUES (?, ?)",
        ((f"user{n:06d}", unit_of(n, users)) for n in range(users)),
    )
    first = (today - timedelta(days=days - 1)).strftime("%Y-%m-%d")
    trend_first = (today - timedelta(days=13)).strftime("%Y-%m-%d")
    end = (today + timedelta(days=1)).strftime("%Y-%m-%d")
    began = time.perf_counter()
    seen = conn.execute(
        "SELECT p.unit, x.rule, count(DISTINCT x.user), "
        'count(DISTINCT CASE WHEN x.detail LIKE \'%"excepted": ["%\' THEN x.user END) '
        f"{JOINED} WHERE d.at >= ? AND d.at < ? "
        'AND (x.rule IS NOT NULL OR x.detail LIKE \'%"excepted": ["%\') '
        "GROUP BY p.unit, x.rule",
        (first, end),
    ).fetchall()
    trend = conn.execute(
        "SELECT p.unit, x.rule, substr(d.at, 1, 10), count(DISTINCT x.user) "
        f"{JOINED} WHERE d.at >= ? AND d.at < ? AND x.rule IS NOT NULL GROUP BY 1, 2, 3",
        (trend_first, end),
    ).fetchall()
    today_counts = conn.execute(
        "SELECT x.action, count(*) FROM decisions d JOIN decision_details x ON x.id = d.detail_id "
        "WHERE d.at >= ? AND d.at < ? GROUP BY x.action",
        (today.strftime("%Y-%m-%d"), end),
    ).fetchall()
    took = time.perf_counter() - began
    conn.close()
    assert seen and trend and today_counts
    return took


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def timed_gets(url: str, count: int) -> list[float]:
    out = []
    with httpx.Client(timeout=120) as client:
        assert client.get(url).status_code == 200  # warm: the unit index of 100k users
        for _ in range(count):
            began = time.perf_counter()
            answer = client.get(url)
            out.append(time.perf_counter() - began)
            assert answer.status_code == 200, answer.text[:300]
    return out


def wrk_script(tmp: Path, users: int) -> Path:
    lines = ["local reqs = {}", "init = function(args)"]
    for i in range(64):
        user = f"user{(i * 997) % users:06d}@gov.example"
        agent = IPHONE if i % 3 == 0 else ANDROID
        hdrs = f'["X-Devicegate-User"] = "{user}", ["User-Agent"] = "{agent}"'
        lines.append(f'  reqs[#reqs + 1] = wrk.format("GET", "/v1/forward-auth/web", {{{hdrs}}})')
    lines += [
        "end",
        "local i = 0",
        "request = function()",
        "  i = i + 1",
        "  return reqs[(i % #reqs) + 1]",
        "end",
    ]
    path = tmp / "mix.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=10_000_000)
    parser.add_argument("--sightings", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="Folder to build the store in and keep.")
    args = parser.parse_args()

    from devicegate.store import open_store
    from devicegate.store.rollups import RollupUpdater

    first_day = datetime(2026, 1, 5, tzinfo=UTC)
    today = first_day + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory(prefix="console-bench-") as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        db = tmp / "bench.db"
        (tmp / "policy.yaml").write_text(policy(first_day, args.days))
        (tmp / "directory.csv").write_text(
            "user,unit,groups,email,name\n"
            + "".join(
                f"user{n:06d},{unit_of(n, args.users)},,user{n:06d}@gov.example,User {n}\n"
                for n in range(args.users)
            )
        )
        began = time.perf_counter()
        if not db.exists():
            load(db, args.users, args.decisions, args.sightings, args.days, first_day)
        loaded = time.perf_counter() - began
        size = db.stat().st_size
        print(
            f"store: {args.users:,} users, {args.decisions:,} decisions over {args.days} days, "
            f"{args.sightings:,} sightings; {size / 2**20:,.0f} MiB, loaded in {loaded:.0f} s"
        )
        store = open_store(f"sqlite:///{db}")
        with store.engine.connect() as conn:
            paged_ref, paged_user = conn.exec_driver_sql(
                "SELECT device_ref, user FROM devices"
            ).one()
        units = {f"user{n:06d}": unit_of(n, args.users) for n in range(args.users)}
        began = time.perf_counter()
        rolled = RollupUpdater(store, units.get, "UTC", batch=20_000).catch_up()
        took = time.perf_counter() - began
        rate = rolled / took if rolled else 0.0
        print(f"rollups: {rolled:,} decisions rolled up in {took:.0f} s ({rate:,.0f} a second)")
        store.engine.dispose()

        port = free_port()
        console_cmd = [
            DEVICEGATE,
            "console",
            "-p",
            str(tmp / "policy.yaml"),
            "-d",
            str(tmp / "directory.csv"),
            "--store",
            f"sqlite:///{db}",
            "--dev-login",
            "viewer",
            "--port",
            str(port),
            "--at",
            today.replace(hour=18).isoformat(),
        ]
        console = start(console_cmd)
        try:
            wait_port(port, 120)
            overview = timed_gets(f"http://127.0.0.1:{port}/", args.requests)
            unit = timed_gets(f"http://127.0.0.1:{port}/units/gov/u00", args.requests)
            user = timed_gets(f"http://127.0.0.1:{port}/users/{paged_user}", args.requests)
            device = timed_gets(f"http://127.0.0.1:{port}/devices/{paged_ref}", args.requests)
        finally:
            stop(console)
        naive = naive_overview(db, args.users, today)
        overview_ms, unit_ms, naive_ms = p95(overview) * 1000, p95(unit) * 1000, naive * 1000
        print(
            f"overview p95 {overview_ms:.0f} ms (target <= 300), unit page of "
            f"{args.users // UNITS:,} users p95 {unit_ms:.0f} ms (target <= 500)"
        )
        user_ms, device_ms = p95(user) * 1000, p95(device) * 1000
        print(f"user page p95 {user_ms:.0f} ms, device page p95 {device_ms:.0f} ms")
        print(
            f"naive SQL over the raw log for the overview's numbers: {naive_ms:,.0f} ms; "
            f"ratio {naive_ms / overview_ms:.1f}x (target >= 20)"
        )

        # serve and the streaming console share a store of their own: the big one stays as
        # loaded (its rollups end on the benchmark's last day) for the next run with --keep
        live_db = Path(scratch) / "live.db"
        console_cmd[console_cmd.index(f"sqlite:///{db}")] = f"sqlite:///{live_db}"
        serve_port = free_port()
        serve = start(
            [
                DEVICEGATE,
                "serve",
                "-p",
                str(tmp / "policy.yaml"),
                "-d",
                str(tmp / "directory.csv"),
                "--store",
                f"sqlite:///{live_db}",
                "--port",
                str(serve_port),
            ]
        )
        script = wrk_script(tmp, args.users)
        alone: list[float] = []
        streamed: list[float] = []
        try:
            wait_port(serve_port, 120)
            url = f"http://127.0.0.1:{serve_port}/"
            wrk(url, script, 1, 32)  # warm
            for _ in range(args.rounds):
                alone.append(wrk(url, script, args.seconds, 32)[0])
                console = start([*console_cmd[:-2]])  # the clock's now: it streams what comes
                try:
                    wait_port(port, 120)
                    with streaming(f"http://127.0.0.1:{port}/live/stream") as events:
                        streamed.append(wrk(url, script, args.seconds, 32)[0])
                    print(f"  the live stream carried {events[0]} events")
                finally:
                    stop(console)
        finally:
            stop(serve)
        ratio = max(streamed) / max(alone)
        print(
            f"serve forward-auth: alone {max(alone):,.0f} req/s, with a console streaming the "
            f"live page {max(streamed):,.0f} req/s: {ratio:.2f}x (target >= 0.9)"
        )
    print(
        json.dumps(
            {
                "name": "console",
                "overview_p95_ms": round(overview_ms, 1),
                "unit_p95_ms": round(unit_ms, 1),
                "user_p95_ms": round(user_ms, 1),
                "device_p95_ms": round(device_ms, 1),
                "naive_overview_ms": round(naive_ms, 1),
                "ratio_vs_naive": round(naive_ms / overview_ms, 1),
                "serve_ratio_with_console": round(ratio, 2),
                "decisions": args.decisions,
                "rollup_rate_per_s": round(rate),
            }
        )
    )
    return 0


class streaming:
    """Reads a server-sent-event stream in a thread while the block runs; counts events."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.count = [0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=None) as client, client.stream("GET", self.url) as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    self.count[0] += 1
                if self._stop.is_set():
                    return

    def __enter__(self) -> list[int]:
        self._thread.start()
        time.sleep(1.0)
        return self.count

    def __exit__(self, *_: object) -> None:
        self._stop.set()


if __name__ == "__main__":
    sys.exit(main())

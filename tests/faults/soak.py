"""The soak: mixed load through one `devicegate serve`, a policy reload every `reload_every`
seconds and a quarantine hold and release every second, then the books are balanced.

Used by `tests/faults/test_soak.py` (a short run in `make test`) and `benchmarks/soak.py`
(`make soak`: a million requests). What it checks, and returns as figures:

* every answer is the one the policy gives its request (`load.classify`), none fails closed;
* the server's resident memory after warm-up grows by at most `rss_growth` — warm-up being
  the first `warmup` seconds of the load, while its bounded memos fill (replay answers,
  details, sightings, identification: minutes under the soak's mix);
* acknowledged decisions (answers that carried one) equal the rows in the decision log;
* every logged decision names a policy version in force when it was made: version v's
  decisions lie between the start of the reload that brought v and the end of the reload
  that replaced it (both on the wall clock the server stamps decisions with).
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

from devicegate.store import open_store
from devicegate.store import tables as t
from tests.faults import load
from tests.faults.population import (
    ANDROID_EAS,
    SPOOF_USER,
    base64_eas,
    policy_text,
    templates,
    write_world,
)
from tests.server import procs


def rss(pid: int, *, with_children: bool = True) -> int:
    """Resident memory of a process and its children (the decision-log writer), bytes."""
    total = 0
    for one in (pid, *(children(pid) if with_children else ())):
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


@dataclass
class Reloads:
    """(version, wall time the reload began, wall time it answered) of every reload."""

    windows: list[tuple[str, float, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass
class Probes:
    """The hold-and-release probe: requests it sent, and what went wrong."""

    acknowledged: int = 0
    cycles: int = 0
    failures: list[str] = field(default_factory=list)


def _probe(client: httpx.Client, server: procs.Devicegate, probes: Probes) -> None:
    """Hold a new device (a spoofed ActiveSync request is quarantined), check it is held,
    release it, check it is not."""
    device = f"PROBE{probes.cycles}"
    spoof = {
        "X-Devicegate-User": SPOOF_USER,
        "User-Agent": ANDROID_EAS,
        "X-Original-URI": base64_eas(device, "iPhone"),
    }
    clean = {**spoof, "X-Original-URI": base64_eas(device, "Android")}
    try:
        first = client.get("/v1/forward-auth/email", headers=spoof)
        held = client.get("/v1/forward-auth/email", headers=clean)
        listed = client.get("/v1/admin/devices?restricted=1", headers=server.admin())
        refs = [d["device_ref"] for d in listed.json()["devices"]]
        for ref in refs:
            client.post(f"/v1/admin/devices/{ref}/release", headers=server.admin())
        after = client.get("/v1/forward-auth/email", headers=clean)
    except httpx.HTTPError as exc:
        probes.failures.append(f"probe {device}: {exc!r}")
        return
    probes.acknowledged += 3
    probes.cycles += 1
    got = (first.status_code, held.status_code, len(refs), after.status_code)
    if got != (403, 403, 1, 200) or first.json().get("action") != "quarantine":
        probes.failures.append(f"probe {device}: {got} {first.text[:200]}")


def _reload(client: httpx.Client, server: procs.Devicegate, policy: Path, reloads: Reloads) -> None:
    """Write the policy with the next marker rule and reload it; record when."""
    marker = len(reloads.windows) + len(reloads.failures) + 1
    policy.write_text(policy_text(marker), encoding="utf-8")
    began = time.time()
    answer = client.post("/v1/admin/reload", headers=server.admin(), timeout=30)
    ended = time.time()
    if answer.status_code != 200:
        reloads.failures.append(f"reload {marker}: {answer.status_code} {answer.text}")
    else:
        reloads.windows.append((answer.json()["policy_version"], began, ended))


def _controller(
    server: procs.Devicegate,
    policy: Path,
    stop: threading.Event,
    reload_every: float,
    reloads: Reloads,
    probes: Probes | None,
) -> None:
    """Every second a hold-and-release probe (unless `probes` is None); every
    `reload_every` seconds a reload."""
    next_reload = time.monotonic() + reload_every
    with server.client() as client:
        while not stop.wait(1.0):
            if probes is not None:
                _probe(client, server, probes)
            if time.monotonic() >= next_reload:
                next_reload += reload_every
                _reload(client, server, policy, reloads)


def version_violations(store_url: str, started: float, reloads: Reloads) -> list[str]:
    """Versions whose decisions lie outside the time that version was in force."""
    store = open_store(store_url)
    log = t.decision_log
    with store.engine.connect() as conn:
        spans = {
            version: (first.timestamp(), last.timestamp(), count)
            for version, first, last, count in conn.execute(
                sa.select(
                    log.c.policy_version,
                    sa.func.min(log.c.at),
                    sa.func.max(log.c.at),
                    sa.func.count(),
                ).group_by(log.c.policy_version)
            )
        }
    store.engine.dispose()
    # version i is in force from the start of the reload that brought it (the server's start
    # for the first) to the end of the reload that replaced it
    windows: dict[str, tuple[float, float]] = {}
    chain = reloads.windows
    for i, (version, began, _) in enumerate(chain):
        until = chain[i + 1][2] if i + 1 < len(chain) else float("inf")
        low, high = windows.get(version, (began, until))
        windows[version] = (min(low, began), max(high, until))
    problems = []
    for version, (first, last, count) in spans.items():
        if version not in windows:
            # the policy the server started with: in force until the first reload ended
            until = chain[0][2] if chain else float("inf")
            if first < started or last > until:
                problems.append(f"{version}: {count} decisions {first}..{last}, before {until}")
            continue
        low, high = windows[version]
        if first < low or last > high:
            problems.append(f"{version}: {count} decisions {first}..{last}, in force {low}..{high}")
    return problems


def logged_decisions(store_url: str) -> int:
    store = open_store(store_url)
    with store.engine.connect() as conn:
        count = int(conn.execute(sa.select(sa.func.count()).select_from(t.decisions)).scalar_one())
    store.engine.dispose()
    return count


def soak(
    tmp: Path,
    store_url: str,
    *,
    requests: int,
    seconds: float,
    users: int = 500,
    reload_every: float = 10.0,
    holds: bool = True,
    progress: bool = False,
    warmup: float = 300.0,
    min_cycles: int = 0,
    min_reloads: int = 0,
) -> dict[str, object]:
    """Run the soak against a fresh `serve` on `store_url`; return its figures. With
    `min_cycles` or `min_reloads` the load goes on past `requests` until that many hold
    cycles and reloads happened under it (a fast machine finishes the budget sooner), within
    `seconds`."""
    policy, directory = write_world(tmp / "world", users)
    population = templates(users)
    postfix_port = procs.free_port()
    started = time.time()
    server = procs.start_devicegate(
        tmp, policy, directory, store_url, extra=("--postfix-port", str(postfix_port))
    )
    reloads, probes = Reloads(), Probes()
    stop = threading.Event()
    try:
        warm = load.warm(server.port, postfix_port, population)
        if progress:
            print(f"  soak: warm-up {warm.requests} requests in {time.time() - started:.1f} s")
        controller = threading.Thread(
            target=_controller,
            args=(server, policy, stop, reload_every, reloads, probes if holds else None),
        )
        controller.start()
        until_enough = min_cycles > 0 or min_reloads > 0
        plan = load.Plan(budget=None if until_enough else requests, seconds=seconds)
        samples: list[tuple[float, int]] = []  # (seconds into the load, rss)
        began = time.monotonic()
        with load.Background(server.port, postfix_port, population, plan) as running:
            while running._thread.is_alive():
                running._thread.join(2.0)
                done = running.live.requests
                if (
                    until_enough
                    and done >= requests
                    and probes.cycles >= min_cycles
                    and len(reloads.windows) >= min_reloads
                ):
                    plan.stop.set()
                samples.append((time.monotonic() - began, rss(server.proc.pid)))
                if progress and len(samples) % 15 == 0:
                    own = rss(server.proc.pid, with_children=False)
                    print(
                        f"  soak: {len(samples) * 2} s, {done} requests, rss "
                        f"{samples[-1][1] >> 20} MiB (serve {own >> 20} MiB, writer "
                        f"{(samples[-1][1] - own) >> 20} MiB)"
                    )
        stats = running.finish()
        stop.set()
        controller.join(60)
        final_rss = rss(server.proc.pid)
    finally:
        stop.set()
        procs.stop(server.proc, timeout=60)
    if server.proc.returncode not in (0, -signal.SIGTERM):  # uvicorn re-raises the signal
        raise RuntimeError(f"serve exited with {server.proc.returncode}:\n{server.output()}")
    # memory after warm-up: the highest sample of the first fifth after it (the memos full, a
    # few reloads done) against the highest of the last fifth; a run no longer than its
    # warm-up compares its whole first and last fifths
    steady = [r for at, r in samples if at >= warmup] or [r for _, r in samples]
    fifth = max(1, len(steady) // 5)
    baseline = max(steady[:fifth], default=final_rss)
    end = max(steady[-fifth:], default=final_rss)
    growth = end / baseline - 1
    acknowledged = warm.acknowledged + stats.acknowledged + probes.acknowledged
    logged = logged_decisions(store_url)
    violations = version_violations(store_url, started, reloads)
    unexpected = warm.unexpected + stats.unexpected + len(probes.failures) + stats.errors
    return {
        "requests": warm.requests + stats.requests + probes.acknowledged,
        "load_requests": stats.requests,
        "unexpected": unexpected,
        "examples": warm.examples + stats.examples + probes.failures[:10] + reloads.failures,
        "warmup_s": warmup,
        "rss_baseline": baseline,
        "rss_final": end,
        "rss_growth": round(growth, 4),
        "acknowledged": acknowledged,
        "logged": logged,
        "reloads": len(reloads.windows),
        "reload_failures": len(reloads.failures),
        "hold_cycles": probes.cycles,
        "version_violations": violations,
        "errors": stats.errors,
        "outcomes": {f"{k}:{o}": n for (k, o), n in sorted(stats.outcomes.items())},
    }

"""Scale: one and two `devicegate serve` on one PostgreSQL under a realistic population,
against a bare ASGI app on the same server software, in one run.

    .venv/bin/python benchmarks/scale.py [--users 100000] [--requests 600000]
        [--connections 64] [--caches 100000] [--large-cache N] [--skip-two]
        [--startup-users 1000000]

The population (seeded: every run sends the same requests):

* `--users` officials in the units of the bundled apple-ban policy (examples/apple-ban),
  each with one to three devices whose User-Agents are drawn with a Zipf-like popularity
  (s = 1.1) from every distinct agent of the identification corpora — tests/identify/cases
  and uap-core's test suites (/usr/share/uap-core, Debian's `uap-core`); every agent is
  somebody's device. Each official reads mail over ActiveSync (60 %: a mail client of the
  corpora with its DeviceType and a DeviceId of its own) or IMAP (an IMAP ID of the corpora,
  through Dovecot) and has a Wi-Fi MAC (a randomised private address, what phones send by
  default); each device has one address for the day (the `X-Forwarded-For` nginx sets).
* About `--requests` requests over a simulated working day, 07:00 to 19:00, in time order.
  90 % of the officials arrive between 07:00 and 10:00 (a Wi-Fi association, a mail session);
  the other sessions are spread over the hours by each hour's share of the day (`DAY`:
  morning peak, lunch dip) with that hour's mix of resources (mail in the morning, web and
  file shares in the core hours, VPN in the evening), their official drawn with a Zipf-like
  activity (s = 0.8, over a shuffled ranking). A session is one official, device and
  resource: a first request, then the rest of it within a minute (`BURST`: nginx asks for
  every request of a protected location, assets included; a mail client opens several IMAP
  connections). Web, file shares, messaging, VPN and ActiveSync go through
  `/v1/forward-auth/{resource}`, IMAP logins through `/v1/dovecot/auth-policy`, Wi-Fi through
  `/v1/radius/authorize`. Not Postfix: wrk speaks HTTP only.

The load: wrk with a Lua script that sends the day, each of its two threads an interleaved
share (both advance through the day together) until the day is over; with two `serve`
processes a thread each (ports split between them), the day split either request by request
(a round-robin balancer) or official by official (a balancer hashing the user). Every
configuration starts fresh — a new database, new processes, empty caches — and is sent the
whole day once:

* the bare ASGI app of benchmarks/forward_auth.py (uvicorn, httptools, uvloop) answering 200,
  one process and two: the baseline;
* one `serve` with `--replay-cache` 100,000 (the default; `--caches` adds sizes) and with a
  cache twice the day's distinct requests: what a cache too small for the working set costs;
* two `serve` processes on the same PostgreSQL with the large cache, round robin and by user.

Reported per configuration: decisions/s and wrk's p99, the ratio to the bare app, the replay
hit rate (devicegate_replayed_decisions_total over devicegate_decisions_total, forward-auth
and Dovecot) over the day and over its last quarter, the cache clears, PostgreSQL commits/s
(pg_stat_database.xact_commit) and the log's batches, each process's CPU from /proc (wrk,
each serve, each log writer, PostgreSQL with its backends, and the rest of the machine, with
the busiest other processes by name), RSS; and, from the first `serve` run, the decision
log's bytes on disk per decision (table and indexes, details, sightings) and its WAL bytes.
Also: how long one `serve` takes to listen with the population's directory and with a
`--startup-users` one (1,000,000 officials), and its RSS then. The last line is one JSON
object. Takes about 17 minutes on 2 cores; at a low priority it measures its neighbours.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the PostgreSQL cluster and the request helpers of the tests
sys.path.insert(1, str(ROOT / "benchmarks"))

from forward_auth import HELLO  # noqa: E402  (the bare app of the forward-auth benchmark)
from tests.server import procs  # noqa: E402
from tests.server.scenario import base64_eas, plain_eas  # noqa: E402

from devicegate.defaults import REPLAY_CACHE  # noqa: E402

POLICY = ROOT / "examples" / "apple-ban" / "policy.yaml"
CASES = ROOT / "tests" / "identify" / "cases"
UAP_TESTS = Path("/usr/share/uap-core/tests")
SEED = 20230717

#: the bundled policy's units and their share of the officials (ministries are not equal)
UNITS = {
    "gov/minpromtorg/industry": 12,
    "gov/minpromtorg/trade": 8,
    "gov/mintsifry/platforms": 10,
    "gov/mintsifry/ios-lab": 1,
    "gov/minfin/budget": 14,
    "gov/minfin/treasury": 10,
    "gov/minenergo/grid": 12,
    "gov/minzdrav": 9,
    "gov/mincult": 6,
    "rostec/holding": 14,
    "rostec/cii": 4,
}
#: hour of the simulated day → (share of the day's requests, resource mix). "email" is
#: ActiveSync or IMAP, whichever the official uses; "wifi" is RADIUS.
MORNING = {"email": 35, "web": 40, "messaging": 15, "wifi": 5, "vpn": 5}
CORE = {"web": 45, "email": 25, "files": 15, "messaging": 12, "wifi": 3}
EVENING = {"email": 35, "web": 30, "vpn": 20, "messaging": 15}
DAY = {
    7: (3, MORNING),
    8: (10, MORNING),
    9: (12, MORNING),
    10: (11, CORE),
    11: (10, CORE),
    12: (7, CORE),
    13: (8, CORE),
    14: (10, CORE),
    15: (10, CORE),
    16: (9, CORE),
    17: (6, EVENING),
    18: (4, EVENING),
}
PAGES = ["/portal/", "/portal/news", "/docs/list?page=2", "/api/tasks", "/hr/leave", "/search?q=x"]
#: mean requests of one session (the same user, device and resource within a minute): nginx's
#: auth_request asks for every request of a protected location, a page's assets included;
#: a mail client opens several IMAP connections (a login each); ActiveSync alternates Ping
#: and Sync; a VPN or Wi-Fi association authenticates once
BURST = {"web": 6.0, "files": 3.0, "messaging": 4.0, "email-eas": 2.0, "email-imap": 3.0}
EAS_COMMANDS = [("Ping", 70), ("Sync", 25), ("FolderSync", 5)]
USER_ZIPF = 0.8
EAS_SHARE = 0.6  # officials reading mail over ActiveSync; the others over IMAP
PRESENT = 0.9  # officials at work on the day
AGENT_ZIPF = 1.1


# ---- the population ---------------------------------------------------------------------


def _printable(text: object) -> bool:
    return (
        isinstance(text, str) and 8 <= len(text) <= 1024 and text.isascii() and text.isprintable()
    )


def _cases(path: Path) -> list[dict[str, object]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    if isinstance(data, dict):
        data = data.get("test_cases", [])
    return [case for case in data or [] if isinstance(case, dict)]


def _clean(case: dict[str, object]) -> bool:
    """A corpus case whose signals agree with each other (no conflict, nothing malformed):
    conflicting signals are what a spoofing rule quarantines, not an official's device."""
    expect = case.get("expect") or {}
    assert isinstance(expect, dict)
    return not expect.get("conflicts") and "malformed" not in str(expect.get("note_contains", ""))


def corpus_agents() -> list[str]:
    """Every distinct printable User-Agent of the identification corpora, in a fixed order."""
    found: dict[str, None] = {}
    for path in sorted(CASES.glob("*.yaml")):
        for case in _cases(path):
            signals = case.get("signals") or {}
            agent = signals.get("user_agent") if isinstance(signals, dict) else None
            if _printable(agent) and _clean(case):
                found[str(agent)] = None
    for name in ("test_ua.yaml", "test_os.yaml", "test_device.yaml"):
        if (UAP_TESTS / name).exists():
            for case in _cases(UAP_TESTS / name):
                agent = case.get("user_agent_string")
                if _printable(agent):
                    found[str(agent)] = None
    return list(found)


def corpus_imap_ids() -> list[str]:
    ids = []
    for case in _cases(CASES / "imap_id.yaml"):
        signals = case.get("signals") or {}
        imap_id = signals.get("imap_id") if isinstance(signals, dict) else None
        if _printable(imap_id) and _clean(case):
            ids.append(str(imap_id))
    return ids


#: ActiveSync clients of the corpora (tests/identify/cases: User-Agent and DeviceType agree)
EAS_CLIENTS = [
    ("Apple-iPhone14C2/2003.1.1", "iPhone", 10),
    ("Apple-iPhone14C2/2006.66", "iPhone", 10),
    ("Apple-iPhone15C3/2106.83", "iPhone", 8),
    ("Apple-iPhone8C4/1504.100", "iPhone", 2),
    ("Apple-iPad13C4/2006.66", "iPad", 5),
    ("Android-Mail/2023.10.29.584035470.Release", "Android", 35),
    ("Android-Mail/2023.10.29.584035470.Release", "SAMSUNGSMG991B", 30),
]


@dataclass(slots=True)
class Official:
    name: str
    unit: str
    agents: list[int]  # indices into the agent list: the official's devices
    addresses: list[str]  # one per device
    mac: str
    eas: tuple[int, str, str, bool] | None  # (agent index, DeviceId, DeviceType, base64)
    imap_id: str | None


@dataclass(slots=True)
class Population:
    agents: list[str]
    officials: list[Official]
    directory: str
    #: the day's requests in time order: (official, line); a line is kind TAB fields
    sequence: list[tuple[int, str]]
    requests: int
    hours: dict[int, int]  # requests per hour of the simulated day
    sessions: int
    distinct_users: int
    distinct_agents: int
    distinct_keys: int
    #: requests to the endpoints that replay (forward-auth, Dovecot) and their distinct keys
    replaying_requests: int
    replaying_keys: int
    kinds: dict[str, int] = field(default_factory=dict)


def _zipf_cumulative(n: int, s: float) -> list[float]:
    total = 0.0
    out = []
    for rank in range(n):
        total += 1.0 / (rank + 1) ** s
        out.append(total)
    return out


def build(users: int, requests: int, threads: int) -> Population:
    rnd = random.Random(SEED)
    corpus = corpus_agents()
    if len(corpus) < 2000:
        raise SystemExit(
            f"only {len(corpus)} distinct User-Agents in the corpora: install uap-core "
            "(bash scripts/system-deps.sh)"
        )
    rnd.shuffle(corpus)
    agents = list(corpus)
    eas_index = {}
    for agent, _, _ in EAS_CLIENTS:
        if agent not in eas_index:
            eas_index[agent] = len(agents)
            agents.append(agent)
    imap_ids = corpus_imap_ids()
    agent_cum = _zipf_cumulative(len(corpus), AGENT_ZIPF)
    unit_names, unit_weights = list(UNITS), list(UNITS.values())
    officials: list[Official] = []
    rows = ["user,unit,groups,email,name"]
    for i in range(users):
        unit = rnd.choices(unit_names, unit_weights)[0]
        domain = unit.split("/")[1] if unit.startswith("gov/") else "rostec"
        name = f"u{i:06d}@{domain}.example"
        rows.append(f"u{i:06d},{unit},,{name},Official {i}")
        owned = rnd.choices(
            range(len(corpus)), cum_weights=agent_cum, k=rnd.choice((1, 1, 2, 2, 3))
        )
        addresses = [_address(rnd) for _ in owned]
        # a randomised private address: locally administered, unicast
        mac = ":".join(f"{b:02x}" for b in [0x02 | rnd.randrange(64) << 2, *rnd.randbytes(5)])
        eas = imap = None
        if rnd.random() < EAS_SHARE:
            agent, device_type, _ = rnd.choices(EAS_CLIENTS, [c[2] for c in EAS_CLIENTS])[0]
            eas = (
                eas_index[agent],
                rnd.randbytes(8).hex().upper(),
                device_type,
                rnd.random() < 0.3,
            )
        else:
            imap = rnd.choice(imap_ids)
        officials.append(Official(name, unit, owned, addresses, mac, eas, imap))
    missing = set(range(len(corpus))) - {a for o in officials for a in o.agents}
    for n, index in enumerate(sorted(missing)):  # every agent is some official's device
        official = officials[(n * 7919) % users]
        official.agents.append(index)
        official.addresses.append(_address(rnd))
    ranking = list(range(users))
    rnd.shuffle(ranking)  # the most active officials are anywhere in the directory
    user_cum = _zipf_cumulative(users, USER_ZIPF)
    total_share = sum(share for share, _ in DAY.values())
    mean_burst = sum(
        share / total_share * sum(w * _mean_burst(r) for r, w in mix.items()) / sum(mix.values())
        for share, mix in DAY.values()
    )
    events: list[tuple[float, int, str]] = []  # (simulated hour, official, line)
    kinds: dict[str, int] = {}
    keys: set[tuple[object, ...]] = set()
    seen_agents: set[int] = set()
    seen_users: set[int] = set()

    def session(at: float, who: int, res: str) -> None:
        official = officials[who]
        seen_users.add(who)
        device = rnd.randrange(len(official.agents))
        for n in range(_burst(rnd, res, official)):
            line, key, agent = _request(rnd, official, res, device)
            if agent is not None:
                seen_agents.add(agent)
            keys.add(key)
            kinds[line[0]] = kinds.get(line[0], 0) + 1
            # the rest of a session follows its first answer within a minute
            events.append((at + (rnd.uniform(2, 60) / 3600 if n else 0.0), who, line))

    # arrivals: every official present that day joins the Wi-Fi and reads mail, 07:00-10:00
    for who in range(users):
        if rnd.random() < PRESENT:
            at = 7 + 3 * rnd.random()
            session(at, who, "wifi")
            session(at + rnd.uniform(30, 600) / 3600, who, "email")
    # the rest of the day: sessions of officials drawn by activity, each hour its mix
    sessions = max(0, round((requests - len(events)) / mean_burst))
    for hour, (share, mix) in DAY.items():
        count = sessions * share // total_share
        picks = rnd.choices(ranking, cum_weights=user_cum, k=count)
        wanted = rnd.choices(list(mix), list(mix.values()), k=count)
        for who, res in zip(picks, wanted, strict=True):
            session(hour + rnd.random(), who, res)
    events.sort(key=lambda event: event[0])
    hours: dict[int, int] = {}
    for at, _, _ in events:
        hours[int(at)] = hours.get(int(at), 0) + 1
    return Population(
        hours=dict(sorted(hours.items())),
        agents=agents,
        officials=officials,
        directory="\n".join(rows) + "\n",
        sequence=[(who, line) for _, who, line in events],
        requests=len(events),
        sessions=sessions,
        distinct_users=len(seen_users),
        distinct_agents=len(seen_agents),
        distinct_keys=len(keys),
        replaying_requests=kinds.get("F", 0) + kinds.get("D", 0),
        replaying_keys=sum(1 for key in keys if key[0] != "radius"),
        kinds=kinds,
    )


def _mean_burst(resource: str) -> float:
    if resource == "email":
        return EAS_SHARE * BURST["email-eas"] + (1 - EAS_SHARE) * BURST["email-imap"]
    return BURST.get(resource, 1.0)


def _burst(rnd: random.Random, resource: str, official: Official) -> int:
    """Requests in one session: 1 + an exponential draw around the mean, at most 40."""
    if resource == "email":
        resource = "email-eas" if official.eas is not None else "email-imap"
    mean = BURST.get(resource, 1.0)
    return 1 if mean <= 1 else min(40, 1 + round(rnd.expovariate(1.0 / (mean - 1))))


def _address(rnd: random.Random) -> str:
    return f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"


def _request(
    rnd: random.Random, official: Official, res: str, device: int
) -> tuple[str, tuple[object, ...], int | None]:
    """One request line for the Lua script, its replay key, and the agent it sends.

    Lines: `F res user agent address uri` (forward-auth), `D body` (Dovecot), `R body`
    (RADIUS), tab-separated."""
    user = official.name
    if res == "wifi":
        body = json.dumps(
            {
                "User-Name": {"type": "string", "value": [user]},
                "Calling-Station-Id": {"type": "string", "value": [official.mac]},
                "NAS-Port-Type": {"type": "integer", "value": ["Wireless-802.11"]},
            }
        )
        return f"R\t{body}", ("radius", user, official.mac), None
    if res == "email" and official.imap_id is not None:
        address = official.addresses[0]
        body = json.dumps({"login": user, "remote": address, "device_id": official.imap_id})
        return f"D\t{body}", ("dovecot", user, official.imap_id, address), None
    if res == "email" and official.eas is not None:
        agent, device_id, device_type, encoded = official.eas
        if encoded:
            uri = base64_eas(device_id, device_type)
        else:
            command = rnd.choices([c for c, _ in EAS_COMMANDS], [w for _, w in EAS_COMMANDS])[0]
            uri = plain_eas(device_id, device_type).replace("Cmd=Sync", f"Cmd={command}")
        address = official.addresses[0]
        line = f"F\temail\t{user}\t{agent}\t{address}\t{uri}"
        return line, ("email", user, agent, address, uri), agent
    agent, address = official.agents[device], official.addresses[device]
    page = rnd.choice(PAGES)
    line = f"F\t{res}\t{user}\t{agent}\t{address}\t{page}"
    return line, (res, user, agent, address), agent


# ---- the load generator -----------------------------------------------------------------

LUA = r"""
-- the day's requests, each thread its own interleaved share, stopped at the end of the day
local ports = {@PORTS@}
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("tid", counter)
  thread.addr = wrk.lookup("127.0.0.1", tostring(ports[(counter - 1) % #ports + 1]))[1]
end

local agents, kinds, a, b, c, d, e = {}, {}, {}, {}, {}, {}, {}
local n, i, last = 0, 0, nil
init = function(args)
  for line in io.lines("@DIR@/agents.txt") do agents[#agents + 1] = line end
  for line in io.lines("@DIR@/seq-@SPLIT@-" .. tid .. ".txt") do
    n = n + 1
    local kind, rest = line:sub(1, 1), line:sub(3)
    kinds[n] = kind
    if kind == "F" then
      local f1, f2, f3, f4, f5 = rest:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      a[n], b[n], c[n], d[n], e[n] = f1, f2, tonumber(f3), f4, f5
    else
      a[n] = rest
    end
  end
end

local HOST = "Host: 127.0.0.1\r\n"
local function post(path, body)
  return "POST " .. path .. " HTTP/1.1\r\n" .. HOST ..
    "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

request = function()
  i = i + 1
  if i > n then
    if i == n + 1 then  -- the end of this thread's day: tell the benchmark, stop this thread
      local mark = io.open("@DONE@-" .. tid, "w")
      mark:close()
    end
    wrk.thread:stop()
    return last
  end
  local kind = kinds[i]
  if kind == "F" then
    last = "GET /v1/forward-auth/" .. a[i] .. " HTTP/1.1\r\n" .. HOST ..
      "X-Devicegate-User: " .. b[i] .. "\r\nUser-Agent: " .. agents[c[i] + 1] ..
      "\r\nX-Forwarded-For: " .. d[i] .. "\r\nX-Original-URI: " .. e[i] .. "\r\n\r\n"
  elseif kind == "D" then
    last = post("/v1/dovecot/auth-policy?command=allow", a[i])
  else
    last = post("/v1/radius/authorize", a[i])
  end
  return last
end
"""


def write_load(tmp: Path, population: Population, threads: int) -> None:
    """The agents, and each wrk thread's share of the day two ways: `rr`, every request to
    the next thread in turn (a round-robin balancer), and `user`, every request of an official
    to the same thread (a balancer hashing the user name; the officials are in random order)."""
    (tmp / "agents.txt").write_text("\n".join(population.agents) + "\n", encoding="ascii")
    for t in range(threads):
        shares = {
            "rr": [line for _, line in population.sequence[t::threads]],
            "user": [line for who, line in population.sequence if who % threads == t],
        }
        for split, lines in shares.items():
            text = "\n".join(lines) + "\n"
            (tmp / f"seq-{split}-{t + 1}.txt").write_text(text, encoding="utf-8")


@dataclass(slots=True)
class WrkResult:
    requests: int
    per_s: float
    p99_ms: float
    p50_ms: float
    p90_ms: float
    non_2xx: int
    socket_errors: int
    cpu_s: float  # wrk's own user + system CPU


def run_wrk(
    tmp: Path, ports: list[int], threads: int, connections: int, split: str = "rr"
) -> WrkResult:
    tag = "-".join(map(str, ports))
    script, done = tmp / f"day-{tag}.lua", tmp / f"done-{tag}"
    lua = LUA.replace("@PORTS@", ", ".join(map(str, ports))).replace("@DIR@", str(tmp))
    lua = lua.replace("@SPLIT@", split)
    script.write_text(lua.replace("@DONE@", str(done)), encoding="utf-8")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", "-d3600s", "--latency", "--timeout", "10s"]
    wrk = subprocess.Popen(
        [*cmd, "-s", str(script), f"http://127.0.0.1:{ports[0]}/"],
        stdout=subprocess.PIPE,
        text=True,
    )
    # wrk runs for its -d unless interrupted: SIGINT once every thread has sent its day
    # (its statistics then end there; polled every 20 ms)
    while len(list(tmp.glob(f"{done.name}-*"))) < threads and wrk.poll() is None:
        time.sleep(0.02)
    if wrk.poll() is None:
        wrk.send_signal(signal.SIGINT)
    out, _ = wrk.communicate(timeout=120)
    if wrk.returncode != 0:
        raise SystemExit(f"wrk failed ({wrk.returncode}):\n{out}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    per_s = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    quantiles = {}
    for q in (50, 90, 99):
        found = re.search(rf"\b{q}%\s+([\d.]+)(us|ms|s)\b", out)
        if found is not None:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
            quantiles[q] = float(found.group(1)) * scale
    if per_s is None or total is None or len(quantiles) < 3:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        requests=int(total.group(1)),
        per_s=float(per_s.group(1)),
        p99_ms=quantiles[99],
        p50_ms=quantiles[50],
        p90_ms=quantiles[90],
        non_2xx=int(bad.group(1)) if bad else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        cpu_s=cpu,
    )


# ---- processes, CPU and the machine -----------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from `state` on


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """utime + stime of a process (and, with `reaped`, of its children it has waited for)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def rss_bytes(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[21]) * os.sysconf("SC_PAGE_SIZE") if fields else 0


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def machine_busy() -> float:
    """Seconds of CPU the whole machine has spent busy (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICK


def all_processes() -> dict[int, tuple[str, float]]:
    """Every process's command name and CPU seconds so far."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            comm = text[text.index("(") + 1 : text.rindex(")")]
            out[int(entry.name)] = (comm, (int(fields[11]) + int(fields[12])) / TICK)
    return out


def others(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], ours: set[int]
) -> dict[str, float]:
    """CPU seconds of the processes that are not this benchmark's, by command name, largest
    first: the other work on the machine (processes that ran only within the window are
    missed here, not in the machine's total)."""
    by_name: dict[str, float] = {}
    for pid, (comm, cpu) in after.items():
        if pid not in ours:
            spent = cpu - before.get(pid, (comm, 0.0))[1]
            if spent > 0:
                by_name[comm] = by_name.get(comm, 0.0) + spent
    return dict(sorted(by_name.items(), key=lambda kv: -kv[1])[:5])


@dataclass(slots=True)
class Group:
    """Processes whose CPU is counted together: a process alone (`self`), its descendants
    as they are at each reading (`children`: a serve's log writer), or both with what the
    root reaped (`tree`: PostgreSQL, whose backends come and go)."""

    name: str
    root: int
    kind: str = "self"

    def snapshot(self) -> dict[int, float]:
        pids = [] if self.kind == "children" else [self.root]
        if self.kind != "self":
            pids += children(self.root)
        tree = self.kind == "tree"
        return {pid: cpu_seconds(pid, reaped=tree and pid == self.root) for pid in pids}

    def spent(self, before: dict[int, float], after: dict[int, float]) -> float:
        """CPU seconds between two snapshots. In a tree, a process that exited in between
        moved its whole CPU into the root's reaped time: its earlier share comes off."""
        total = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
        if self.kind == "tree":
            total -= sum(cpu for pid, cpu in before.items() if pid not in after)
        return total


def start(
    cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)


@contextmanager
def running(procs_: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in reversed(procs_):
            procs.stop(proc, signal.SIGTERM, timeout=60)


# ---- PostgreSQL ---------------------------------------------------------------------------


class Postgres:
    """The benchmark's connection to the cluster: databases, statistics, sizes."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)
        backend = self.conn.execute("select pg_backend_pid()").fetchone()
        assert backend is not None
        fields = _stat(int(backend[0]))
        assert fields is not None
        self.postmaster = int(fields[1])
        self.databases: list[str] = []

    def create(self, name: str) -> str:
        self.conn.execute(f'create database "{name}"')
        self.databases.append(name)
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def commits(self, name: str) -> int:
        row = self.conn.execute(
            "select xact_commit from pg_stat_database where datname = %s", (name,)
        ).fetchone()
        return int(row[0]) if row else 0

    def wal(self) -> int:
        row = self.conn.execute("select pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
        assert row is not None
        return int(row[0])

    def sizes(self, url: str) -> dict[str, int]:
        """Bytes on disk of the decision log's tables (with their indexes and TOAST) and their
        rows."""
        import psycopg

        out: dict[str, int] = {}
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ("decisions", "decision_details", "sightings"):
                row = conn.execute(
                    f"select pg_total_relation_size('{table}'), pg_indexes_size('{table}'), "
                    f"count(*) from {table}"
                ).fetchone()
                assert row is not None
                out[f"{table}_bytes"] = int(row[0])
                out[f"{table}_index_bytes"] = int(row[1])
                out[f"{table}_rows"] = int(row[2])
        return out

    def group(self) -> Group:
        return Group("postgres", self.postmaster, "tree")


# ---- metrics ------------------------------------------------------------------------------

REPLAYING = ("forward-auth", "dovecot")


def scrape(port: int) -> dict[str, float]:
    """The counters this benchmark reads from one serve's /metrics."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            adapter = sample.labels.get("adapter", "")
            if sample.name == "devicegate_decisions_total":
                key = "decisions_replaying" if adapter in REPLAYING else "decisions_other"
                out[key] = out.get(key, 0.0) + sample.value
            elif sample.name == "devicegate_replayed_decisions_total":
                out["replayed"] = out.get("replayed", 0.0) + sample.value
            elif sample.name == "devicegate_replay_cache_clears_total":
                out["clears"] = out.get("clears", 0.0) + sample.value
            elif sample.name == "devicegate_bad_requests_total":
                out["bad"] = out.get("bad", 0.0) + sample.value
            elif sample.name in (
                "devicegate_log_batch_size_count",
                "devicegate_log_batch_size_sum",
                "devicegate_log_commit_seconds_sum",
            ):
                out[sample.name] = out.get(sample.name, 0.0) + sample.value
            elif sample.name == "devicegate_quarantine_holds_total":
                out["holds"] = out.get("holds", 0.0) + sample.value
    return out


class Scraper:
    """/metrics of every serve every `every` seconds during a run: the hit rate over the day."""

    def __init__(self, ports: list[int], every: float = 2.0) -> None:
        self.ports = ports
        self.every = every
        self.series: list[tuple[float, float, float]] = []  # (time, replaying decisions, replayed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                got = [scrape(port) for port in self.ports]
            except Exception:  # a scrape that fails under load is skipped, not fatal
                continue
            decisions = sum(g.get("decisions_replaying", 0.0) for g in got)
            replayed = sum(g.get("replayed", 0.0) for g in got)
            self.series.append((time.monotonic(), decisions, replayed))

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def late_hit_rate(self) -> float | None:
        """The hit rate over the last quarter of the day's decisions (the cache long warm)."""
        if len(self.series) < 4:
            return None
        total = self.series[-1][1]
        start = next(s for s in self.series if s[1] >= 0.75 * total)
        decided = self.series[-1][1] - start[1]
        return (self.series[-1][2] - start[2]) / decided if decided else None


# ---- one configuration --------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    name: str
    processes: int
    wrk: WrkResult
    seconds: float
    cpu: dict[str, float]  # CPU seconds per group during the run
    machine_busy_s: float
    load: tuple[float, float]  # load average (1 min) before and after
    elsewhere: dict[str, float]  # CPU seconds of other processes on the machine, by name
    metrics: dict[str, float] = field(default_factory=dict)
    late_hit_rate: float | None = None
    commits: int = 0
    sizes: dict[str, int] = field(default_factory=dict)
    wal_bytes: int = 0
    rss: list[int] = field(default_factory=list)
    decisions_logged: int = 0

    @property
    def hit_rate(self) -> float | None:
        decided = self.metrics.get("decisions_replaying", 0.0)
        return self.metrics.get("replayed", 0.0) / decided if decided else None


def measure(
    name: str,
    tmp: Path,
    ports: list[int],
    groups: list[Group],
    args: argparse.Namespace,
    *,
    scraper: Scraper | None = None,
    split: str = "rr",
) -> Outcome:
    groups = [*groups, Group("bench", os.getpid())]  # this driver: polling, scraping
    load_before = os.getloadavg()[0]
    cpu_before = {g.name: g.snapshot() for g in groups}
    everyone = all_processes()
    busy_before = machine_busy()
    started = time.monotonic()
    result = run_wrk(tmp, ports, 2, args.connections, split)
    seconds = time.monotonic() - started
    busy = machine_busy() - busy_before
    cpu_after = {g.name: g.snapshot() for g in groups}
    ours = {pid for snap in (*cpu_before.values(), *cpu_after.values()) for pid in snap}
    cpu = {g.name: g.spent(cpu_before[g.name], cpu_after[g.name]) for g in groups}
    elsewhere = others(everyone, all_processes(), ours)
    cpu["wrk"] = result.cpu_s
    cpu["other"] = max(0.0, busy - sum(cpu.values()))
    outcome = Outcome(
        name=name,
        processes=len(ports),
        wrk=result,
        seconds=seconds,
        cpu=cpu,
        machine_busy_s=busy,
        load=(load_before, os.getloadavg()[0]),
        elsewhere=elsewhere,
    )
    if scraper is not None:
        outcome.late_hit_rate = scraper.late_hit_rate()
    print(
        f"  {name}: {result.requests:,} requests in {seconds:.1f} s, {result.per_s:,.0f}/s, "
        f"p99 {result.p99_ms:.1f} ms, non-2xx {result.non_2xx:,}, socket errors "
        f"{result.socket_errors}, load {outcome.load[0]:.1f} -> {outcome.load[1]:.1f}; "
        "elsewhere on the machine (cores): "
        + ", ".join(f"{k} {v / seconds:.2f}" for k, v in elsewhere.items()),
        flush=True,
    )
    return outcome


def run_bare(tmp: Path, count: int, args: argparse.Namespace) -> Outcome:
    (tmp / "hello_app.py").write_text(HELLO, encoding="utf-8")
    ports = [procs.free_port() for _ in range(count)]
    servers = [
        start(
            [sys.executable, "-m", "uvicorn", "hello_app:app", "--port", str(port), "--loop",
             "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
            tmp,
            tmp / f"bare-{port}.log",
        )
        for port in ports
    ]  # fmt: skip
    with running(servers):
        for port, proc in zip(ports, servers, strict=True):
            procs.wait_port(port, proc, timeout=60)
        groups = [Group(f"server{n + 1}", p.pid) for n, p in enumerate(servers)]
        outcome = measure(f"bare ASGI app x{count}", tmp, ports, groups, args)
        outcome.rss = [rss_bytes(p.pid) for p in servers]
    return outcome


def run_serve(
    tmp: Path,
    pg: Postgres,
    count: int,
    cache: int,
    directory: Path,
    args: argparse.Namespace,
    split: str = "rr",
) -> Outcome:
    db = f"scale_{len(pg.databases)}_{count}_{cache}_{split}"
    url = pg.create(db)
    ports = [procs.free_port() for _ in range(count)]
    env = dict(os.environ, DEVICEGATE_ADMIN_TOKEN=procs.TOKEN)
    servers = []
    for port in ports:
        argv = [procs.DEVICEGATE, "serve", "--policy", str(POLICY), "--directory", str(directory)]
        argv += ["--store", url, "--port", str(port), "--replay-cache", str(cache)]
        servers.append(start(argv, tmp, tmp / f"serve-{port}.log", env))
        if len(servers) == 1:  # the first one creates the schema
            procs.wait_port(port, servers[0], timeout=300)
    with running(servers):
        for port, proc in zip(ports, servers, strict=True):
            procs.wait_port(port, proc, timeout=300)
        time.sleep(12)  # PostgreSQL flushes a backend's statistics within 10 s of idling
        groups = []
        for n, proc in enumerate(servers):
            groups.append(Group(f"serve{n + 1}", proc.pid))
            groups.append(Group(f"writer{n + 1}", proc.pid, "children"))
        groups.append(pg.group())
        commits_before, wal_before = pg.commits(db), pg.wal()
        sizes_before = pg.sizes(url)
        with Scraper(ports) as scraper:
            by = ", by user" if split == "user" else ""
            outcome = measure(
                f"serve x{count}{by}, --replay-cache {cache:,}", tmp, ports, groups, args,
                scraper=scraper, split=split,
            )  # fmt: skip
        outcome.rss = [rss_bytes(p.pid) for p in servers]
        for port in ports:
            for key, value in scrape(port).items():
                outcome.metrics[key] = outcome.metrics.get(key, 0.0) + value
        outcome.wal_bytes = pg.wal() - wal_before
        time.sleep(12)
        outcome.commits = pg.commits(db) - commits_before
        after = pg.sizes(url)
        outcome.sizes = {k: after[k] - sizes_before[k] for k in after}
        outcome.decisions_logged = outcome.sizes["decisions_rows"]
    return outcome


def startup(tmp: Path, users: int) -> dict[str, float]:
    """Seconds until one `serve` with a `users`-official directory listens, and its RSS (and
    its writer's) a few seconds later: every serve holds the whole directory compiled."""
    rnd = random.Random(SEED)
    rows = ["user,unit,groups,email,name"]
    for i in range(users):
        unit = rnd.choices(list(UNITS), list(UNITS.values()))[0]
        domain = unit.split("/")[1] if unit.startswith("gov/") else "rostec"
        rows.append(f"s{i:07d},{unit},,s{i:07d}@{domain}.example,Official {i}")
    directory = tmp / f"directory-{users}.csv"
    directory.write_text("\n".join(rows) + "\n", encoding="utf-8")
    port = procs.free_port()
    argv = [procs.DEVICEGATE, "serve", "--policy", str(POLICY), "--directory", str(directory)]
    argv += ["--store", f"sqlite:///{tmp}/startup-{users}.db", "--port", str(port)]
    started = time.monotonic()
    server = start(argv, tmp, tmp / f"startup-{users}.log")
    with running([server]):
        procs.wait_port(port, server, timeout=900)
        seconds = time.monotonic() - started
        time.sleep(3)
        rss = rss_bytes(server.pid)
        writer = sum(rss_bytes(pid) for pid in children(server.pid))
    print(
        f"  serve with {users:,} officials: listening after {seconds:.1f} s, RSS "
        f"{rss >> 20} MiB (its writer {writer >> 20} MiB)",
        flush=True,
    )
    return {"users": users, "seconds": round(seconds, 1), "rss_mib": rss >> 20,
            "writer_rss_mib": writer >> 20}  # fmt: skip


# ---- the report ---------------------------------------------------------------------------


def cores(outcome: Outcome, *names: str) -> float:
    """Cores used on average during the run by the named groups (prefixes)."""
    used = sum(v for k, v in outcome.cpu.items() if k.startswith(names))
    return used / outcome.seconds


def report(
    population: Population, outcomes: dict[str, Outcome], args: argparse.Namespace
) -> dict[str, object]:
    print()
    print(
        f"population: {args.users:,} officials in the directory ({population.distinct_users:,} "
        f"in the requests), {len(population.agents):,} User-Agents ("
        f"{population.distinct_agents:,} in the requests), {population.requests:,} requests "
        f"over a simulated day (forward-auth {population.kinds.get('F', 0):,}, Dovecot "
        f"{population.kinds.get('D', 0):,}, RADIUS {population.kinds.get('R', 0):,}), "
        f"{population.distinct_keys:,} distinct requests"
    )
    bound = 1 - population.replaying_keys / population.replaying_requests
    print(
        f"forward-auth and Dovecot: {population.replaying_requests:,} requests, "
        f"{population.replaying_keys:,} distinct: a replay cache that never forgot would "
        f"answer {bound:.1%} of them (the rest are first requests)"
    )
    print(f"wrk -t2 -c{args.connections}, loopback, one pass over the day each, 2 cores")
    header = (
        f"{'configuration':38} {'decisions/s':>11} {'p99 ms':>7} {'vs bare':>7} {'hit':>6} "
        f"{'late':>6} {'clears':>6} {'commits/s':>9}  cores: wrk serve writer pg other"
    )
    print(header)
    bare = {1: outcomes.get("bare1"), 2: outcomes.get("bare2")}
    rows: dict[str, object] = {}
    for key, o in outcomes.items():
        base = bare.get(o.processes)
        ratio = o.wrk.per_s / base.wrk.per_s if base is not None else None
        hit = o.hit_rate
        commits = o.commits / o.seconds if o.commits else None
        shown = (
            "" if ratio is None or key.startswith("bare") else f"{ratio:.2f}",
            "" if hit is None else f"{hit:.1%}",
            "" if o.late_hit_rate is None else f"{o.late_hit_rate:.1%}",
            "" if not o.metrics else f"{o.metrics.get('clears', 0):.0f}",
            "" if commits is None else f"{commits:,.0f}",
        )
        print(
            f"{o.name:38} {o.wrk.per_s:11,.0f} {o.wrk.p99_ms:7.1f} {shown[0]:>7} "
            f"{shown[1]:>6} {shown[2]:>6} {shown[3]:>6} {shown[4]:>9}  "
            f"{cores(o, 'wrk'):.2f} {cores(o, 'serve', 'server'):.2f} "
            f"{cores(o, 'writer'):.2f} {cores(o, 'postgres'):.2f} {cores(o, 'other'):.2f}"
        )
        batches = o.metrics.get("devicegate_log_batch_size_count", 0.0)
        rows[key] = {
            "per_s": round(o.wrk.per_s, 1),
            "p99_ms": round(o.wrk.p99_ms, 2),
            "p50_ms": round(o.wrk.p50_ms, 2),
            "p90_ms": round(o.wrk.p90_ms, 2),
            "ratio_vs_bare": None if ratio is None else round(ratio, 3),
            "requests": o.wrk.requests,
            "seconds": round(o.seconds, 1),
            "non_2xx": o.wrk.non_2xx,
            "socket_errors": o.wrk.socket_errors,
            "hit_rate": None if hit is None else round(hit, 4),
            "late_hit_rate": None if o.late_hit_rate is None else round(o.late_hit_rate, 4),
            "cache_clears": o.metrics.get("clears"),
            "bad_requests": o.metrics.get("bad"),
            "holds": o.metrics.get("holds"),
            "commits_per_s": None if commits is None else round(commits, 1),
            "log_batches_per_s": round(batches / o.seconds, 1) if batches else None,
            "mean_batch": round(o.metrics["devicegate_log_batch_size_sum"] / batches, 1)
            if batches
            else None,
            "mean_commit_ms": round(
                o.metrics["devicegate_log_commit_seconds_sum"] / batches * 1000, 2
            )
            if batches
            else None,
            "decisions_logged": o.decisions_logged,
            "cores": {k: round(v / o.seconds, 3) for k, v in o.cpu.items()},
            "cpu_us_per_request": {
                k: round(v / o.wrk.requests * 1e6, 1) for k, v in o.cpu.items() if k != "other"
            },
            "load": [round(x, 2) for x in o.load],
            "elsewhere_cores": {k: round(v / o.seconds, 3) for k, v in o.elsewhere.items()},
            "rss_mib": [r >> 20 for r in o.rss],
        }
    result: dict[str, object] = {
        "name": "scale",
        "users": args.users,
        "users_in_requests": population.distinct_users,
        "agents": len(population.agents),
        "agents_in_requests": population.distinct_agents,
        "requests": population.requests,
        "distinct_requests": population.distinct_keys,
        "replaying_requests": population.replaying_requests,
        "replaying_distinct": population.replaying_keys,
        "hit_rate_bound": round(bound, 4),
        "requests_per_hour": population.hours,
        "peak_hour_share": round(max(population.hours.values()) / population.requests, 4),
        "connections": args.connections,
        "configurations": rows,
    }
    first = next((o for k, o in outcomes.items() if k.startswith("serve1")), None)
    if first is not None and first.decisions_logged:
        s, n = first.sizes, first.decisions_logged
        log = {
            "decisions_bytes_per_decision": round(s["decisions_bytes"] / n, 1),
            "decisions_index_bytes_per_decision": round(s["decisions_index_bytes"] / n, 1),
            "details_per_decision": round(s["decision_details_rows"] / n, 4),
            "details_bytes_per_detail": round(
                s["decision_details_bytes"] / max(1, s["decision_details_rows"]), 1
            ),
            "sightings_per_decision": round(s["sightings_rows"] / n, 4),
            "sightings_bytes_per_sighting": round(
                s["sightings_bytes"] / max(1, s["sightings_rows"]), 1
            ),
            "log_bytes_per_decision": round(
                (s["decisions_bytes"] + s["decision_details_bytes"] + s["sightings_bytes"]) / n, 1
            ),
            "wal_bytes_per_decision": round(first.wal_bytes / n, 1),
        }
        result["decision_log"] = log
        print(
            f"decision log ({first.name}, {n:,} decisions): "
            f"{log['decisions_bytes_per_decision']:.0f} B a decision in `decisions` (of it "
            f"{log['decisions_index_bytes_per_decision']:.0f} B indexes), "
            f"{log['details_per_decision']:.3f} new details a decision at "
            f"{log['details_bytes_per_detail']:.0f} B, {log['sightings_per_decision']:.3f} "
            f"sightings a decision at {log['sightings_bytes_per_sighting']:.0f} B: "
            f"{log['log_bytes_per_decision']:.0f} B a decision in all; WAL "
            f"{log['wal_bytes_per_decision']:.0f} B a decision"
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=600_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--large-cache",
        type=int,
        default=0,
        help="the large --replay-cache (default: twice the day's distinct requests)",
    )
    parser.add_argument(
        "--caches",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[REPLAY_CACHE],
        help="the --replay-cache sizes one serve is measured with besides the large one "
        "(default: the default)",
    )
    parser.add_argument("--skip-two", action="store_true", help="measure one serve only")
    parser.add_argument(
        "--startup-users",
        type=int,
        default=1_000_000,
        help="also time one serve's start-up with a directory this large (0: skip)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("`wrk` is not installed: bash scripts/system-deps.sh")
    started = time.monotonic()
    population = build(args.users, args.requests, 2)
    large = args.large_cache or -(-2 * population.distinct_keys // 100_000) * 100_000
    print(
        f"population built in {time.monotonic() - started:.1f} s: {population.requests:,} "
        f"requests, {population.distinct_keys:,} distinct; large cache {large:,}",
        flush=True,
    )
    outcomes: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="devicegate-scale-") as name:
        tmp = Path(name)
        os.chmod(tmp, 0o755)
        directory = tmp / "directory.csv"
        directory.write_text(population.directory, encoding="utf-8")
        write_load(tmp, population, 2)
        starts = [startup(tmp, n) for n in dict.fromkeys((args.users, args.startup_users)) if n]
        with procs.postgres(tmp / "pg") as url:
            pg = Postgres(url)
            outcomes["bare1"] = run_bare(tmp, 1, args)
            for cache in dict.fromkeys((*args.caches, large)):  # each size once
                outcomes[f"serve1_{cache}"] = run_serve(tmp, pg, 1, cache, directory, args)
            if not args.skip_two:
                outcomes["bare2"] = run_bare(tmp, 2, args)
                outcomes["serve2_large"] = run_serve(tmp, pg, 2, large, directory, args)
                outcomes["serve2_user"] = run_serve(tmp, pg, 2, large, directory, args, "user")
            pg.conn.close()
    result = report(population, outcomes, args)
    result["large_cache"] = large
    result["startup"] = starts
    result["wall_seconds"] = round(time.monotonic() - started)
    print(f"whole run: {result['wall_seconds']:,} s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A directory of 100,000 users from a real OpenLDAP slapd: devicegate's full sync against
OpenLDAP's own `ldapsearch` paging the same entries and attributes, in the same run.

    .venv/bin/python benchmarks/sources.py [--users 100000] [--rounds 3] [--page-size 1000]

The tree (tests/sources/ldapserver.py: the scenario's units, nested groups, a size limit of
20 entries below the number of users, so every pass must page) is loaded offline with
`slapadd`, every entry stamped with an old modifyTimestamp. slapd runs unprivileged on
127.0.0.1. Each round measures, in this order:

* ldapsearch: `ldapsearch -E pr=PAGE/noprompt` over the users and then the groups, with the
  attributes the source asks for, LDIF written to /dev/null (the baseline: reading, no work);
* full: `Source.sync(full=True)` in a child process — read, map, resolve nested groups, build
  the Directory, diff, guard, compress and write the version to a fresh SQLite store;
* delta: `Source.sync()` in the same child right after — a modifyTimestamp delta that finds
  no change.

The best round of each counts. The child reports its own peak RSS (`ru_maxrss`), the whole
process: interpreter, python-ldap, the state and the Directory. Targets: full ≤ 1.5× ldapsearch,
delta ≤ 0.1× full, peak RSS ≤ 400 MB. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.sources.ldapserver import (  # noqa: E402
    BASE,
    SERVICE_DN,
    SERVICE_PW,
    scenario_tree,
    slapd,
)

CHILD = """
import json, os, resource, sys, time
import ldap
from ldap.controls import SimplePagedResultsControl
from devicegate.sources import Source
from devicegate.store import open_store

def raw_read(url, searches, page):
    # python-ldap alone: the same paged searches, entries parsed into Python and dropped
    conn = ldap.initialize(url)
    conn.simple_bind_s(os.environ["DG_BENCH_DN"], os.environ["DG_TEST_LDAP_PW"])
    for base, filterstr, attributes in searches:
        control = SimplePagedResultsControl(True, size=page, cookie=b"")
        while True:
            msgid = conn.search_ext(base, ldap.SCOPE_SUBTREE, filterstr, attributes,
                                    serverctrls=[control])
            _, entries, _, controls = conn.result3(msgid)
            cookie = next(c.cookie for c in controls
                          if c.controlType == SimplePagedResultsControl.controlType)
            if not cookie:
                break
            control.cookie = cookie
    conn.unbind_s()

t = time.perf_counter()
raw_read(sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5]))
raw_s = time.perf_counter() - t
source = Source.open(sys.argv[1], open_store(sys.argv[2]))
t0 = time.perf_counter()
full = source.sync(full=True)
t1 = time.perf_counter()
delta = source.sync()
t2 = time.perf_counter()
assert full.accepted, full.reason
assert delta.outcome == "unchanged" and not delta.full, (delta.outcome, delta.full)
print(json.dumps({
    "full_s": t1 - t0, "delta_s": t2 - t1, "users": len(full.loaded.served), "raw_s": raw_s,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

USER_ATTRIBUTES = ["uid", "mail", "cn", "entryUUID", "modifyTimestamp", "devicegateUnit",
                   "employeeType"]  # fmt: skip
GROUP_ATTRIBUTES = ["cn", "modifyTimestamp", "memberOf", "member", "uniqueMember"]


SEARCHES = [
    (BASE, "(objectClass=inetOrgPerson)", USER_ATTRIBUTES),
    (f"ou=groups,{BASE}", "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
     GROUP_ATTRIBUTES),
]  # fmt: skip


def ldapsearch(url: str, page: int) -> float:
    """Both searches the source makes, paged, output discarded; seconds."""
    started = time.perf_counter()
    for base, filterstr, attributes in SEARCHES:
        subprocess.run(
            ["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", url, "-D", SERVICE_DN,
             "-w", SERVICE_PW, "-b", base, "-E", f"pr={page}/noprompt", filterstr, *attributes],
            check=True, stdout=subprocess.DEVNULL, timeout=600,
        )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    env = dict(
        os.environ, DG_TEST_LDAP_PW=SERVICE_PW, DG_BENCH_DN=SERVICE_DN, PYTHONPATH=f"{ROOT / 'src'}"
    )
    with tempfile.TemporaryDirectory(prefix="dg-bench-sources-") as tmp:
        home = Path(tmp)
        started = time.perf_counter()
        tree = scenario_tree(args.users, stamp="20230101000000Z")
        with slapd(home / "slapd", tree) as server:
            del tree
            print(f"slapd with {args.users} users loaded in {time.perf_counter() - started:.1f} s")
            path = server.source_yaml(home / "ldap.yaml", page_size=args.page_size)
            rows = []
            for round_ in range(args.rounds):
                base = ldapsearch(server.url, args.page_size)
                store = f"sqlite:///{home}/store-{round_}.db"
                child = subprocess.run(
                    [sys.executable, "-c", CHILD, str(path), store, server.url,
                     json.dumps(SEARCHES), str(args.page_size)],
                    check=True, capture_output=True, text=True, env=env, timeout=1200,
                )  # fmt: skip
                row = json.loads(child.stdout.strip().splitlines()[-1]) | {"ldapsearch_s": base}
                rows.append(row)
                print(
                    f"round {round_ + 1}: ldapsearch {base:.2f} s, python-ldap alone "
                    f"{row['raw_s']:.2f} s ({row['raw_s'] / base:.2f}x), full sync "
                    f"{row['full_s']:.2f} s ({row['full_s'] / base:.2f}x), delta "
                    f"{row['delta_s']:.3f} s, peak RSS {row['peak_rss_mb']:.0f} MB, "
                    f"{row['users']} users"
                )
    full = min(r["full_s"] for r in rows)
    base = min(r["ldapsearch_s"] for r in rows)
    delta = min(r["delta_s"] for r in rows)
    rss = max(r["peak_rss_mb"] for r in rows)
    raw = min(r["raw_s"] for r in rows)
    users = rows[0]["users"]
    print(
        f"best: full {full:.2f} s vs ldapsearch {base:.2f} s = {full / base:.2f}x (target <= 1.5); "
        f"python-ldap reading the same pages {raw:.2f} s = {raw / base:.2f}x ldapsearch (the floor "
        f"of any python-ldap sync), full = {full / raw:.2f}x that floor; "
        f"delta {delta:.3f} s = {delta / full:.3f}x full (target <= 0.1); "
        f"peak RSS {rss:.0f} MB (target <= 400)"
    )
    print(
        json.dumps(
            {
                "name": "sources",
                "users": users,
                "full_s": round(full, 3),
                "ldapsearch_s": round(base, 3),
                "ratio_vs_ldapsearch": round(full / base, 3),
                "python_ldap_s": round(raw, 3),
                "python_ldap_vs_ldapsearch": round(raw / base, 3),
                "delta_s": round(delta, 4),
                "delta_ratio": round(delta / full, 4),
                "peak_rss_mb": round(rss, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

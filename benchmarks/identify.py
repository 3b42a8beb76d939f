"""Benchmark: identify new User-Agents against plain ua-parser, and repeated ones via the cache.

Prints the baseline beside each result (docs/performance.md): numbers are only meaningful
as ratios measured in the same run on the same machine. The agents are
generated from realistic templates (browsers, Apple mail/calendar daemons, ActiveSync,
CFNetwork apps, Office, Outlook), each made unique by its version numbers, so neither
parser benefits from a cache. The target (≥ 0.8× ua-parser) is judged on that mix.

A second, smaller mix — the agents that are neither browsers nor Apple's own clients
(in-app and third-party apps naming Apple's OS or hardware, media frameworks, compact
agents, developer tools, the domestic platforms' browsers and mail clients) — is reported on
its own line, against ua-parser on the same agents. Last line: one JSON object.

    .venv/bin/python benchmarks/identify.py [--n 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Sequence

from ua_parser import Domain, load_lazy_builtins
from ua_parser.regex import Resolver

from devicegate.identify import Identifier, identify
from devicegate.model import Signals

ANDROID_MODELS = [
    "SM-G991B",
    "SM-A536B",
    "SM-S918B",
    "Pixel 8",
    "Pixel 7a",
    "2201117TG",
    "M2101K6G",
    "CPH2451",
    "V2202",
    "RMX3630",
    "NOH-AN00",
    "moto g(60)",
]


def make_agents(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)

    def v(a: int, b: int) -> int:
        return rng.randint(a, b)

    templates: list[Callable[[], str]] = [
        lambda: (
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {v(14, 18)}_{v(0, 7)} like Mac OS X) "
            f"AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v(14, 18)}.{v(0, 7)} "
            f"Mobile/15E{v(100, 999)} Safari/604.1"
        ),
        lambda: (
            f"Mozilla/5.0 (iPad; CPU OS {v(14, 18)}_{v(0, 7)} like Mac OS X) "
            f"AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v(14, 18)}.{v(0, 7)} "
            f"Mobile/15E{v(100, 999)} Safari/604.1"
        ),
        lambda: (
            f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/{v(15, 18)}.{v(0, 6)}.{v(0, 99)} Safari/605.1.15"
        ),
        lambda: (
            f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            f"(KHTML, like Gecko) Chrome/{v(100, 130)}.0.{v(1000, 6999)}.{v(0, 200)} "
            "Safari/537.36"
        ),
        lambda: (
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
            f"Gecko) Chrome/{v(100, 130)}.0.{v(1000, 6999)}.{v(0, 200)} Safari/537.36"
        ),
        lambda: (
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
            f"Gecko) Chrome/{v(100, 130)}.0.{v(1000, 6999)}.{v(0, 200)} Safari/537.36 "
            f"Edg/{v(100, 130)}.0.{v(1000, 2999)}.{v(0, 99)}"
        ),
        lambda: (
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v(100, 130)}.0) "
            f"Gecko/20100101 Firefox/{v(100, 130)}.{v(0, 9)}"
        ),
        lambda: (
            f"Mozilla/5.0 (Linux; Android {v(10, 14)}; {rng.choice(ANDROID_MODELS)}) "
            f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v(100, 130)}.0."
            f"{v(1000, 6999)}.{v(0, 200)} Mobile Safari/537.36"
        ),
        lambda: (
            f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{v(100, 130)}.0.{v(1000, 6999)}.{v(0, 200)} Safari/537.36"
        ),
        lambda: f"Apple-iPhone{v(10, 16)}C{v(1, 8)}/{v(19, 22)}0{v(1, 8)}.{v(10, 400)}",
        lambda: f"Apple-iPad{v(7, 14)}C{v(1, 12)}/{v(19, 22)}0{v(1, 8)}.{v(10, 400)}",
        lambda: (
            f"iOS/{v(15, 18)}.{v(0, 7)} ({v(19, 22)}{rng.choice('ABCDEFG')}{v(10, 400)}) "
            "dataaccessd/1.0"
        ),
        lambda: (
            f"macOS/{v(12, 15)}.{v(0, 6)} ({v(21, 24)}{rng.choice('ABCDEF')}{v(10, 400)}) "
            f"CalendarAgent/{v(900, 1200)}"
        ),
        lambda: (
            f"MobileMail/1.0 CFNetwork/{v(1300, 1500)}.0.{v(1, 9)} Darwin/{v(20, 24)}.{v(0, 6)}.0"
        ),
        lambda: (
            f"Mail/{v(3600, 3800)}.{v(100, 700)}.{v(1, 9)} CFNetwork/{v(1300, 1500)} "
            f"Darwin/{v(20, 24)}.{v(0, 6)}.0 (x86_64)"
        ),
        lambda: (
            f"Microsoft Office/16.0 (Macintosh; Mac OS X {v(12, 15)}.{v(0, 6)}; "
            f"Microsoft Outlook 16.{v(60, 90)}.{v(1, 9)}; Pro)"
        ),
        lambda: (
            f"Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook "
            f"16.0.{v(10000, 18000)}; Pro)"
        ),
        lambda: (
            f"Dalvik/2.1.0 (Linux; U; Android {v(10, 14)}; {rng.choice(ANDROID_MODELS)} "
            f"Build/TP1A.{v(220000, 240000)}.0{v(10, 99)})"
        ),
    ]
    return _unique(rng, templates, n)


def make_other_agents(n: int, seed: int = 11) -> list[str]:
    """Agents that are neither browsers nor Apple's own clients (the rules of
    identify/apple_agents.py and identify/domestic.py), written for this benchmark."""
    rng = random.Random(seed)

    def v(a: int, b: int) -> int:
        return rng.randint(a, b)

    templates: list[Callable[[], str]] = [
        lambda: (
            f"ExampleNews/{v(1, 9)}.{v(0, 9)}.{v(0, 99)} (org.example.news; build:{v(1, 999)}; "
            f"iOS {v(15, 18)}.{v(0, 7)}.{v(0, 3)}) Alamofire/5.{v(0, 9)}.{v(0, 9)}"
        ),
        lambda: f"ExampleMeet.iOS/{v(5, 6)}.{v(0, 20)}.{v(0, 99)}",
        lambda: f"ExampleSync/{v(1, 9)}.{v(0, 9)} macOS/{v(12, 15)}.{v(0, 6)}",
        lambda: (
            f"ExampleChat/{v(8, 11)}.{v(0, 9)}.{v(0, 9)} (iOS {v(15, 18)}.{v(0, 7)}; "
            f"iPhone{v(10, 16)},{v(1, 8)})"
        ),
        lambda: (
            f"AppleCoreMedia/1.0.0.{v(20, 22)}{rng.choice('ABCDEF')}{v(10, 400)} (iPhone; U; "
            f"CPU OS {v(15, 18)}_{v(0, 7)} like Mac OS X; ru_ru)"
        ),
        lambda: f"AirPlay/{v(600, 800)}.{v(1, 99)}.{v(1, 9)}",
        lambda: f"exampletool/{v(0, 9)}.{v(0, 99)} Darwin {v(20, 24)}.{v(0, 6)}.0 arm64",
        lambda: f"exampleup/1.{v(20, 30)}.{v(0, 9)} (aarch64-apple-darwin)",
        lambda: (
            f"pf(44);la(ru-RU);dv(iPh{v(7, 14)},{v(1, 8)});pr(UCBrowser);"
            f"ov({v(12, 16)}_{v(0, 7)});nt(1);"
        ),
        lambda: f"Mozilla/5.0 (Mobile; rv:{v(78, 115)}.0) Gecko/{{}}.0 Firefox/{{}}.0",
        lambda: f"Evolution/3.{v(40, 52)}.{v(0, 9)}",
        lambda: (
            f"Mozilla/5.0 (X11; {rng.choice(['Astra Linux', 'ALT Linux', 'RED OS'])}; "
            f"Linux x86_64; rv:{v(100, 128)}.0) Gecko/20100101 Firefox/{v(100, 128)}.0"
        ),
        lambda: f"ExampleFTP/{v(1, 5)}.{v(0, 9)} (cisco-IOS; build {v(1, 999)})",
        lambda: (
            f"Mozilla/5.0 (Linux; Android {v(10, 14)}; SOYES XS{v(10, 14)} iPhone) "
            f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v(100, 130)}.0.0.0 "
            "Mobile Safari/537.36"
        ),
    ]
    return [_gecko(ua) for ua in _unique(rng, templates, n)]


def _gecko(ua: str) -> str:
    """The Sailfish engine repeats its Gecko version: fill the template's placeholders."""
    if "{}" not in ua:
        return ua
    version = ua.split("rv:", 1)[1].split(".", 1)[0]
    return ua.replace("{}", version)


def _unique(rng: random.Random, templates: Sequence[Callable[[], str]], n: int) -> list[str]:
    agents: set[str] = set()
    while len(agents) < n:
        agents.add(rng.choice(templates)())
    out = sorted(agents)
    rng.shuffle(out)
    return out


def compare(
    resolver: Resolver, agents: list[str], rounds: int, chunk: int = 250
) -> tuple[float, float]:
    """(ua-parser's, identify's) throughput on new agents.

    The two sides alternate on chunks of `chunk` agents, every round on agents neither has
    seen (a suffix per round), and each chunk keeps its fastest round on each side: on a
    shared machine a burst of other work then costs a chunk's round, not a side's result."""
    plain = [float("inf")] * ((len(agents) + chunk - 1) // chunk)
    ours = list(plain)
    for r in range(rounds):
        for index, start in enumerate(range(0, len(agents), chunk)):
            fresh = [f"{ua} r{r}" for ua in agents[start : start + chunk]]
            signals = [Signals(user_agent=ua) for ua in fresh]
            began = time.perf_counter()
            for ua in fresh:
                resolver(ua, Domain.ALL)
            plain[index] = min(plain[index], time.perf_counter() - began)
            began = time.perf_counter()
            for s in signals:
                identify(s)
            ours[index] = min(ours[index], time.perf_counter() - began)
    return len(agents) / sum(plain), len(agents) / sum(ours)


def rate(fn: Callable[[], None], count: int, rounds: int) -> float:
    """Best-of-`rounds` throughput (items per second)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return count / best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="distinct User-Agents")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=200_000, help="cached look-ups")
    args = parser.parse_args(argv)

    agents = make_agents(args.n)
    resolver = Resolver(load_lazy_builtins())
    identify(Signals(user_agent="warm-up"))  # builds ua-parser's matchers for identify too
    print(
        f"{len(agents)} distinct User-Agents from 18 templates; each chunk of 250 the best of "
        f"{args.rounds} rounds"
    )

    rounds = args.rounds
    plain_best, ours_best = compare(resolver, agents, rounds)
    others = make_other_agents(max(1000, args.n // 5))
    plain_others, ours_others = compare(resolver, others, rounds)

    # Repeated agents through the cache, and a bare dict look-up as its baseline.
    identifier = Identifier()
    hot = [Signals(user_agent=ua) for ua in agents[:1000]]
    for s in hot:
        identifier.profile(s)
    stream = [hot[i % len(hot)] for i in range(args.repeat)]
    table = {s: s for s in hot}

    def cached() -> None:
        profile = identifier.profile
        for s in stream:
            profile(s)

    def bare() -> None:
        get = table.get
        for s in stream:
            get(s)

    cached_rate = rate(cached, len(stream), rounds)
    dict_rate = rate(bare, len(stream), rounds)

    ratio = ours_best / plain_best
    print(
        f"new agents   ua-parser (Rust, all domains) {plain_best:>10,.0f}/s "
        f"({1e6 / plain_best:5.1f} µs)   identify {ours_best:>10,.0f}/s "
        f"({1e6 / ours_best:5.1f} µs)   ratio {ratio:.2f}"
    )
    print(
        f"other agents ua-parser (Rust, all domains) {plain_others:>10,.0f}/s "
        f"({1e6 / plain_others:5.1f} µs)   identify {ours_others:>10,.0f}/s "
        f"({1e6 / ours_others:5.1f} µs)   ratio {ours_others / plain_others:.2f}   "
        f"({len(others)} agents, not part of the target)"
    )
    print(
        f"repeated     dict.get baseline {dict_rate:>14,.0f}/s   Identifier.profile "
        f"{cached_rate:>12,.0f}/s   ratio {cached_rate / dict_rate:.2f}"
    )
    print(
        json.dumps(
            {
                "name": "identify",
                "n": len(agents),
                "new_per_s": round(ours_best),
                "uaparser_per_s": round(plain_best),
                "ratio_new_vs_uaparser": round(ratio, 3),
                "other_per_s": round(ours_others),
                "uaparser_other_per_s": round(plain_others),
                "ratio_other_vs_uaparser": round(ours_others / plain_others, 3),
                "cached_per_s": round(cached_rate),
                "dict_get_per_s": round(dict_rate),
                "ratio_cached_vs_dict": round(cached_rate / dict_rate, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

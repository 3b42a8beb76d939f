"""The triage verdict and the indicator sets: every outcome — verdict and reasons, parsed
bundles, matches, loaded-set records, or the exact error and hint — for inputs at each row of
the combining table and each branch of loading and matching, against `golden/triage.json`
(written by `python -m tests.golden`)."""

from __future__ import annotations

import json
import os
from itertools import product
from pathlib import Path
from typing import Any

from devicegate.triage import indicators, verdict
from devicegate.triage.result import ArtefactResult, Coverage, Detection, Verdict
from tests.golden import Case, assert_family, assert_same_cases, params

GOLDEN = Path(__file__).with_name("golden") / "triage.json"
BUNDLES = Path(__file__).with_name("golden") / "bundles"


def detection(level: Verdict, kind: str) -> Detection:
    return Detection(kind=kind, source="artefact", value="v", level=level)


FINDINGS = {
    "none": (),
    "compromised": (detection(Verdict.COMPROMISED, "triangulation-exact"),),
    "suspicious two kinds": (
        detection(Verdict.SUSPICIOUS, "domain-indicator"),
        detection(Verdict.SUSPICIOUS, "heuristic"),
        detection(Verdict.SUSPICIOUS, "domain-indicator"),
    ),
    "inconclusive": (detection(Verdict.INCONCLUSIVE, "manifest-tampered"),),
    "clean level": (detection(Verdict.CLEAN, "note"),),
    "all levels": (
        detection(Verdict.INCONCLUSIVE, "manifest-tampered"),
        detection(Verdict.SUSPICIOUS, "sender-indicator"),
        detection(Verdict.COMPROMISED, "process-indicator"),
        detection(Verdict.INCONCLUSIVE, "metadata"),
    ),
}

ARTEFACTS = {
    "all parsed": (
        ArtefactResult("sms", Coverage.PARSED, True),
        ArtefactResult("safari_history", Coverage.PARSED, True),
        ArtefactResult("extra", Coverage.MISSING, False),
    ),
    "safari missing": (
        ArtefactResult("sms", Coverage.PARSED, True),
        ArtefactResult("safari_history", Coverage.MISSING, True),
    ),
    "error with note": (
        ArtefactResult("sms", Coverage.ERROR, True, note="database disk image is malformed"),
        ArtefactResult("datausage", Coverage.PARSED, True),
    ),
    "nothing": (),
}


def decide(findings: str, artefacts: str, encrypted: bool) -> Any:
    return verdict.decide(FINDINGS[findings], ARTEFACTS[artefacts], encrypted=encrypted)


def bundle(*objects: object, kind: str = "bundle") -> bytes:
    return json.dumps({"type": kind, "id": "bundle--1", "objects": list(objects)}).encode()


def indicator(pattern: object, **extra: object) -> dict[str, object]:
    return {"type": "indicator", "pattern": pattern, **extra}


BUNDLE_DATA = {
    "every kind": bundle(
        indicator("[domain-name:value='Example.ORG.']"),
        indicator("[url:value='https://example.org/x']"),
        indicator("[process:name='BackupAgent']"),
        indicator("[email-addr:value='Bad@Example.org']"),
        indicator("[file:name='evil.db']"),
        indicator("[file:path='/private/var/evil/']"),
        indicator("[configuration-profile:id='ABC-123']"),
        indicator(" [ domain-name:value = 'spaced.example' ] "),
        indicator("[domain-name:value='quo\\'ted.example']", pattern_type="stix"),
        {"type": "malware", "name": "Pegasus"},
        {"type": "malware", "name": "Pegasus"},
        {"type": "malware", "name": 5},
        {"type": "relationship"},
    ),
    "skipped": bundle(
        indicator("[domain-name:value='ok.example']"),
        indicator("[ipv4-addr:value='198.51.100.1']"),
        indicator("[domain-name:value='a.example'] OR [domain-name:value='b.example']"),
        indicator("[domain-name:value='sigma.example']", pattern_type="sigma"),
        indicator(42),
        "not an object",
        indicator("[domain-name:value = unquoted]"),
    ),
    "no usable indicator": bundle(indicator("[ipv4-addr:value='198.51.100.1']")),
    "empty objects": bundle(),
    "not a bundle": bundle(kind="report"),
    "objects not a list": json.dumps({"type": "bundle", "objects": {}}).encode(),
    "a list": b"[]",
    "not json": b"{nope",
    "deep": b"[" * 100_000,
}


def parse(name: str) -> Any:
    return indicators.parse_bundle(BUNDLE_DATA[name], name)


def load_bytes(name: str) -> Any:
    index = indicators.IndicatorIndex()
    info = indicators._load_bytes(BUNDLE_DATA[name], name, f"here/{name}", index)
    return {"info": info, "count": index.count(), "by_kind": index.by_kind}


def load_file(name: str) -> Any:
    """`load_set` on a file beside this test, named relative to its folder (so that error
    messages read the same wherever the tests run)."""
    index = indicators.IndicatorIndex()
    here = Path.cwd()
    os.chdir(BUNDLES)
    try:
        info = indicators.load_set(Path(name), index)
    finally:
        os.chdir(here)
    return {
        "name": info.name,
        "path": info.path,
        "sha256": info.sha256,
        "count": info.count,
        "sets": len(index.sets),
    }


def load_with_limit(limit: int) -> Any:
    """`load_set` of small.stix2 with the size limit `limit` bytes over or under its size."""
    saved = indicators.MAX_INDICATOR_FILE_BYTES
    indicators.MAX_INDICATOR_FILE_BYTES = (BUNDLES / "small.stix2").stat().st_size + limit
    try:
        return load_file("small.stix2")
    finally:
        indicators.MAX_INDICATOR_FILE_BYTES = saved


def defaults() -> Any:
    index = indicators.load_indicators()
    return {
        "files": indicators.default_files(),
        "sets": [(s.name, s.path, s.count, s.skipped, s.malware) for s in index.sets],
        "count": index.count(),
        "kinds": sorted((kind, len(values)) for kind, values in index.by_kind.items()),
    }


def no_sets() -> Any:
    return indicators.load_indicators(defaults=False)


def matching() -> Any:
    index = indicators.IndicatorIndex()
    for kind, value in indicators.parse_bundle(BUNDLE_DATA["every kind"], "set")[0]:
        index.add(kind, value, "set")
    index.add("domain", "  ", "blank")
    index.add("file-path", "/private/var/mobile/Library/x.db", "second")
    index.add("file-path", "/private/var/mobile/Library/x.db", "third")  # first one kept
    hosts = ("example.org", "a.b.Example.org.", "org", "example", "", None, "xexample.org")
    paths = (
        "/private/var/evil/",
        "/private/var/evil/deeper/file",
        "/private/var/evilness",
        "/private/var/mobile/Library/x.db",
        "/private",
        "/",
    )
    exact = (
        ("process", "BackupAgent"),
        ("process", "backupagent"),
        ("email", " BAD@example.org "),
        ("profile", "abc-123"),
        ("file-name", "evil.db"),
        ("url", "https://example.org/x"),
        ("nokind", "x"),
        ("process", ""),
        ("process", None),
    )
    odd = indicators.IndicatorIndex()
    for folder in ("/", "//", "/a//"):
        odd.add("file-path", folder, "odd")
    odd_paths = ("/x/y", "//x", "/a//b", "/a/b")
    top = indicators.IndicatorIndex()
    top.add("domain", "org", "top")  # a TLD is never matched as a parent domain
    return {
        "no path indicators": indicators.IndicatorIndex().path("/private/x"),
        "no path table": indicators.IndicatorIndex().path_table(),
        "no domain indicators": indicators.IndicatorIndex().domain("a.example.org"),
        "a top-level indicator": [(h, top.domain(h)) for h in ("a.org", "org", "a.org.")],
        "odd folders": [(p, odd.path(p)) for p in odd_paths],
        "count": index.count(),
        "domains": [(h, index.domain(h)) for h in hosts],
        "paths": [(p, index.path(p)) for p in paths],
        "path_table": index.path_table(),
        "exact": [(k, v, index.exact(k, v)) for k, v in exact],
        "merged": indicators.merge_names(
            [indicators.Hit(v, s) for v, s in (("a", "z-set"), ("b", "a-set"), ("c", "z-set"))]
        ),
        "normalised": [
            indicators.normalise(k, " V.Example. ") for k in ("domain", "email", "profile", "url")
        ],
    }


def cases() -> list[Case]:
    out: list[Case] = []
    for findings, artefacts, encrypted in product(FINDINGS, ARTEFACTS, (True, False)):
        name = f"decide {findings} / {artefacts} / {'encrypted' if encrypted else 'plain'}"
        out.append((name, decide, (findings, artefacts, encrypted)))
    versions = ("16.6", "16.6.1", "16.5.1", "17", "15.7.8", "15.7.7", "15.8", "16.0", "15",
                "14.8.1", "16.5.9", "", None, "16.x", " 16.6 ", "16.6.0.1", "1a",
                "16.6.0.x")  # fmt: skip
    for version in versions:
        out.append((f"patched {version!r}", verdict.triangulation_patched, (version,)))
    for name in BUNDLE_DATA:
        out.append((f"parse {name}", parse, (name,)))
        out.append((f"load {name}", load_bytes, (name,)))
    for name in ("small.stix2", "missing.stix2"):
        out.append((f"load file {name}", load_file, (name,)))
    for over in (-1, 0):
        out.append((f"load file limit {over}", load_with_limit, (over,)))
    out.append(("bundled sets", defaults, ()))
    out.append(("no set at all", no_sets, ()))
    out.append(("matching", matching, ()))
    return out


def test_the_file_holds_every_case() -> None:
    assert_same_cases(GOLDEN, cases())


@params(cases())
def test_outcomes_are_the_kept_ones(cases: list[Case]) -> None:
    assert_family(GOLDEN, cases)

"""STIX 2.1 indicator sets: load, count, hash, and match.

Published iOS spyware sets (MVT's and Amnesty's) are bundles of single-comparison
patterns, `[domain-name:value='example.org']`. We accept exactly that shape for the kinds
the checks use and count everything else as *skipped*, which the report shows: a set that
yields no usable indicator, or a file that is not a STIX bundle, is an `IndicatorError` —
a scan must never look clean because its indicators silently failed to load.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from devicegate.triage.errors import IndicatorError
from devicegate.triage.result import IndicatorSetInfo

MAX_INDICATOR_FILE_BYTES = 64 << 20

#: STIX object paths we match, and the short name each is filed under.
KINDS = {
    "domain-name:value": "domain",
    "url:value": "url",
    "process:name": "process",
    "email-addr:value": "email",
    "file:name": "file-name",
    "file:path": "file-path",
    "configuration-profile:id": "profile",
}

_PATTERN = re.compile(r"\[\s*([a-z0-9-]+:[a-z_.]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*\]")


@dataclass(frozen=True, slots=True)
class Hit:
    """An indicator that matched: its value and the set it came from."""

    value: str
    set_name: str


@dataclass(slots=True)
class IndicatorIndex:
    """All loaded sets merged, keyed by kind and normalised value for O(1) matching."""

    sets: list[IndicatorSetInfo] = field(default_factory=list)
    by_kind: dict[str, dict[str, Hit]] = field(default_factory=dict)

    def add(self, kind: str, value: str, set_name: str) -> None:
        key = normalise(kind, value)
        if key:
            self.by_kind.setdefault(kind, {}).setdefault(key, Hit(value, set_name))

    def count(self) -> int:
        return sum(len(values) for values in self.by_kind.values())

    def exact(self, kind: str, value: str | None) -> Hit | None:
        if not value:
            return None
        return self.by_kind.get(kind, {}).get(normalise(kind, value))

    def domain(self, host: str | None) -> Hit | None:
        """Match a host name or any parent domain (`a.b.example.org` hits `example.org`)."""
        if not host:
            return None
        table = self.by_kind.get("domain", {})
        labels = host.lower().rstrip(".").split(".")
        for start in range(len(labels) - 1):
            hit = table.get(".".join(labels[start:]))
            if hit is not None:
                return hit
        return None

    def path_table(self) -> tuple[dict[str, Hit], tuple[str, ...]]:
        """File-path indicators as (exact paths, folder prefixes) for bulk prefiltering."""
        table = self.by_kind.get("file-path", {})
        return table, tuple(key for key in table if key.endswith("/"))

    def path(self, absolute: str) -> Hit | None:
        """A file-path indicator equal to `absolute`, or a folder indicator containing it."""
        table = self.by_kind.get("file-path", {})
        hit = table.get(absolute)
        if hit is not None:
            return hit
        position = absolute.find("/", 1)
        while position != -1:
            hit = table.get(absolute[: position + 1])
            if hit is not None:
                return hit
            position = absolute.find("/", position + 1)
        return None


def normalise(kind: str, value: str) -> str:
    value = value.strip()
    if kind in ("domain", "email", "profile"):
        return value.lower().rstrip(".")
    return value


def parse_bundle(data: bytes, name: str) -> tuple[list[tuple[str, str]], int, list[str]]:
    """(kind, value) pairs, the number of skipped patterns, and the malware names."""
    try:
        bundle = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise IndicatorError(f"indicator file `{name}` is not valid JSON ({exc})") from None
    if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
        raise IndicatorError(f"indicator file `{name}` is not a STIX 2.1 bundle")
    objects = bundle.get("objects")
    if not isinstance(objects, list):
        raise IndicatorError(f"indicator file `{name}` has no `objects` list")
    found: list[tuple[str, str]] = []
    skipped = 0
    malware: list[str] = []
    for item in objects:
        if not isinstance(item, dict):
            skipped += 1
            continue
        if item.get("type") == "malware" and isinstance(item.get("name"), str):
            malware.append(item["name"])
        if item.get("type") != "indicator":
            continue
        pattern = item.get("pattern")
        match = _PATTERN.fullmatch(pattern.strip()) if isinstance(pattern, str) else None
        kind = KINDS.get(match.group(1)) if match else None
        if match is None or kind is None or item.get("pattern_type", "stix") != "stix":
            skipped += 1
            continue
        value = re.sub(r"\\(.)", r"\1", match.group(2))
        found.append((kind, value))
    return found, skipped, malware


def load_set(path: Path, index: IndicatorIndex) -> IndicatorSetInfo:
    """Add one file to `index`; zero usable indicators is an error."""
    try:
        size = path.stat().st_size
        if size > MAX_INDICATOR_FILE_BYTES:
            raise IndicatorError(f"indicator file `{path}` is {size} bytes, too large")
        data = path.read_bytes()
    except OSError as exc:
        raise IndicatorError(f"cannot read indicator file `{path}`: {exc.strerror}") from None
    return _load_bytes(data, path.name, str(path), index)


def _load_bytes(data: bytes, name: str, where: str, index: IndicatorIndex) -> IndicatorSetInfo:
    pairs, skipped, malware = parse_bundle(data, name)
    if not pairs:
        raise IndicatorError(
            f"indicator file `{name}` yields no usable indicator",
            hint="expected STIX patterns like [domain-name:value='example.org']",
        )
    for kind, value in pairs:
        index.add(kind, value, name)
    info = IndicatorSetInfo(
        name=name,
        path=where,
        sha256=hashlib.sha256(data).hexdigest(),
        count=len(pairs),
        skipped=skipped,
        malware=tuple(dict.fromkeys(malware)),
    )
    index.sets.append(info)
    return info


def default_files() -> list[str]:
    """Names of the bundled sets (see data/ATTRIBUTION.txt)."""
    folder = resources.files("devicegate.triage") / "data"
    return sorted(item.name for item in folder.iterdir() if item.name.endswith(".stix2"))


def load_indicators(paths: Sequence[Path] = (), *, defaults: bool = True) -> IndicatorIndex:
    """Load the bundled sets (unless `defaults` is False) and every file in `paths`."""
    index = IndicatorIndex()
    if defaults:
        folder = resources.files("devicegate.triage") / "data"
        for name in default_files():
            data = (folder / name).read_bytes()
            _load_bytes(data, name, f"devicegate:triage/data/{name}", index)
    for path in paths:
        load_set(Path(path), index)
    if index.count() == 0:
        raise IndicatorError("no indicator set was loaded", hint="give --iocs FILE")
    return index


def merge_names(hits: Iterable[Hit]) -> str:
    return ", ".join(sorted({hit.set_name for hit in hits}))

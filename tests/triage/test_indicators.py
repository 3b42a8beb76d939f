"""Indicator loading: the bundled sets, newer files, and the errors that keep scans honest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devicegate.triage import IndicatorError, load_indicators
from devicegate.triage.indicators import IndicatorIndex, default_files, parse_bundle

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "iocs"


def _bundle(*patterns: str) -> dict[str, object]:
    objects: list[dict[str, object]] = [
        {"type": "malware", "id": "malware--1", "name": "Example"},
    ]
    for n, pattern in enumerate(patterns):
        objects.append(
            {
                "type": "indicator",
                "id": f"indicator--{n}",
                "pattern": pattern,
                "pattern_type": "stix",
            }
        )
    return {"type": "bundle", "id": "bundle--1", "objects": objects}


def test_bundled_sets_load_with_their_published_counts() -> None:
    index = load_indicators()
    counts = {s.name: s.count for s in index.sets}
    assert counts == {
        "operation_triangulation.stix2": 112,
        "pegasus.stix2": 1549,
        "predator.stix2": 585,
    }
    assert default_files() == sorted(counts)
    assert index.exact("process", "BackupAgent") is not None
    assert index.exact("profile", "76dab334-7e17-475d-a5d6-0794eb5818a5") is not None


def test_bundled_copies_are_unchanged_from_the_published_files() -> None:
    """The digests the attribution records for the published files are the bundled files'
    (and, where the published folder is at hand, those files' too)."""
    import hashlib
    import re
    from importlib import resources

    folder = resources.files("devicegate.triage") / "data"
    recorded = dict(
        (name, digest)
        for digest, name in re.findall(
            r"^\s+([0-9a-f]{64})\s+(\S+\.stix2)$", (folder / "ATTRIBUTION.txt").read_text(), re.M
        )
    )
    index = load_indicators()
    assert sorted(recorded) == sorted(info.name for info in index.sets)
    for info in index.sets:
        assert info.sha256 == recorded[info.name], info.name
        if SHARED.is_dir():
            published = hashlib.sha256((SHARED / info.name).read_bytes()).hexdigest()
            assert published == recorded[info.name], info.name


def test_attribution_ships_with_the_data() -> None:
    from importlib import resources

    folder = resources.files("devicegate.triage") / "data"
    text = (folder / "ATTRIBUTION.txt").read_text()
    assert "Amnesty International" in text and "CC BY 2.0" in text
    assert "MIT License" in (folder / "LICENSE.mvt-indicators").read_text()


def test_extra_file_is_added(tmp_path: Path) -> None:
    extra = tmp_path / "new.stix2"
    extra.write_text(json.dumps(_bundle("[domain-name:value='evil.example.org']")))
    index = load_indicators([extra])
    assert index.domain("cdn.evil.example.org") is not None
    assert index.domain("example.org") is None
    assert {s.name for s in index.sets} >= {"new.stix2", "pegasus.stix2"}


def test_only_extra_files_without_defaults(tmp_path: Path) -> None:
    extra = tmp_path / "only.stix2"
    extra.write_text(json.dumps(_bundle("[process:name='implantd']", "[x:y='unsupported']")))
    index = load_indicators([extra], defaults=False)
    assert [s.name for s in index.sets] == ["only.stix2"]
    assert index.sets[0].count == 1 and index.sets[0].skipped == 1


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"type": "bundle"}),
        json.dumps(_bundle()),
        json.dumps(_bundle("[ipv4-addr:value='198.51.100.7']")),
        "",
    ],
)
def test_corrupt_or_empty_files_are_errors(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.stix2"
    path.write_text(content)
    with pytest.raises(IndicatorError):
        load_indicators([path])


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(IndicatorError, match="cannot read"):
        load_indicators([tmp_path / "absent.stix2"])


def test_no_sets_at_all_is_an_error() -> None:
    with pytest.raises(IndicatorError, match="no indicator"):
        load_indicators([], defaults=False)


def test_pattern_escapes_and_kinds() -> None:
    pairs, skipped, malware = parse_bundle(
        json.dumps(
            _bundle(
                r"[file:path='/private/var/tmp/it\'s']",
                "[email-addr:value='Attacker@Example.org']",
                "[configuration-profile:id='76DAB334-7E17-475D-A5D6-0794EB5818A5']",
            )
        ).encode(),
        "t",
    )
    assert ("file-path", "/private/var/tmp/it's") in pairs
    assert skipped == 0 and malware == ["Example"]
    index = IndicatorIndex()
    for kind, value in pairs:
        index.add(kind, value, "t")
    assert index.exact("email", "attacker@example.org") is not None


def test_path_matching_folders_and_files() -> None:
    index = IndicatorIndex()
    index.add("file-path", "/private/var/tmp/l/", "t")
    index.add("file-path", "/private/var/tmp/hooker", "t")
    assert index.path("/private/var/tmp/l/payload") is not None
    assert index.path("/private/var/tmp/hooker") is not None
    assert index.path("/private/var/tmp/hookerx") is None
    assert index.path("/private/var/tmp/other") is None

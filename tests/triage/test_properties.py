"""Property tests where the invariants are: parsers of hostile input raise only our errors."""

from __future__ import annotations

import contextlib
import hashlib
import plistlib
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devicegate.triage import TriageError, open_backup
from devicegate.triage.crypto import parse_keybag
from devicegate.triage.errors import ArtefactError, BackupCorruptError
from devicegate.triage.heuristics import evaluate
from devicegate.triage.indicators import IndicatorIndex
from devicegate.triage.manifestdb import problem as _problem
from devicegate.triage.mbfile import MBFile, decode_mbfile, fast_times
from devicegate.triage.plists import load_plist_dict
from devicegate.triage.result import Heuristic, TimelineEvent

from .builder import BASE, mbfile
from .scenarios import base_builder

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

plist_values = st.recursive(
    st.none().map(lambda _: "")
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.integers(min_value=0, max_value=40).map(plistlib.UID),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_escape_as_other_errors(data: bytes) -> None:
    with contextlib.suppress(ArtefactError):
        load_plist_dict(data, "x")


@FAST
@given(st.binary(min_size=1, max_size=30), st.integers(min_value=0, max_value=10_000))
def test_mutated_mbfile_blobs_decode_or_fail_cleanly(patch: bytes, where: int) -> None:
    blob = bytearray(
        mbfile("Library/x", size=3, mode=0o100644, times=(1, 2, 3), encryption_key=b"k" * 44)
    )
    where %= len(blob)
    blob[where : where + len(patch)] = patch
    with contextlib.suppress(ArtefactError):
        assert isinstance(decode_mbfile(bytes(blob), "x"), MBFile)


def _agree(blob: bytes) -> None:
    """The fast MBFile time reader never disagrees with the full plistlib decode."""
    fast = fast_times(blob)
    if fast is None:
        return
    meta = decode_mbfile(blob, "x")
    assert fast == (meta.last_modified, meta.last_status_change, meta.birth)


@FAST
@given(st.binary(min_size=1, max_size=30), st.integers(min_value=0, max_value=10_000))
def test_fast_time_reader_agrees_on_mutated_blobs(patch: bytes, where: int) -> None:
    blob = bytearray(mbfile("Library/x", size=3, mode=0o100644, times=(1, 2**31, 3)))
    where %= len(blob)
    blob[where : where + len(patch)] = patch
    with contextlib.suppress(ArtefactError):
        _agree(bytes(blob))


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["LastModified", "LastStatusChange", "Birth", "Size", "X"]),
        plist_values,
        max_size=5,
    )
)
@example({"LastModified": 5.0, "Birth": True, "LastStatusChange": 2**40})
def test_fast_time_reader_agrees_on_any_root(root: dict[str, object]) -> None:
    archive = {"$top": {"root": plistlib.UID(1)}, "$objects": ["$null", root]}
    try:
        blob = plistlib.dumps(archive, fmt=plistlib.FMT_BINARY)
    except (TypeError, OverflowError, ValueError):
        return
    with contextlib.suppress(ArtefactError):
        _agree(blob)


@FAST
@given(plist_values)
def test_any_archive_shape_decodes_or_fails_cleanly(root: object) -> None:
    archive = {"$top": {"root": plistlib.UID(1)}, "$objects": ["$null", root]}
    try:
        blob = plistlib.dumps(archive, fmt=plistlib.FMT_BINARY)
    except (TypeError, OverflowError, ValueError):
        return  # not encodable: nothing to test
    with contextlib.suppress(ArtefactError):
        decode_mbfile(blob, "x")


@FAST
@given(st.text(max_size=30), st.text(max_size=60))
def test_accepted_rows_never_traverse(domain: str, relative_path: str) -> None:
    file_id = hashlib.sha1(f"{domain}-{relative_path}".encode("utf-8", "surrogatepass")).hexdigest()
    try:
        problem = _problem(file_id, domain, relative_path)
    except UnicodeEncodeError:
        return
    if problem is None:
        parts = relative_path.replace("\\", "/").split("/")
        assert ".." not in parts and not relative_path.startswith(("/", "\\"))
        assert "/" not in domain and ".." not in domain


@FAST
@given(st.binary(max_size=300))
def test_keybag_parser_raises_only_corruption(blob: bytes) -> None:
    with contextlib.suppress(BackupCorruptError):
        parse_keybag(blob)


@pytest.fixture(scope="module")
def prebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return base_builder(tmp_path_factory.mktemp("prop") / "b").write()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=plist_values | st.binary(max_size=200))
def test_hostile_manifest_plist_is_only_ever_a_triage_error(
    prebuilt: Path, content: object
) -> None:
    if isinstance(content, bytes):
        data = content
    else:
        try:
            data = plistlib.dumps({"IsEncrypted": True, "Lockdown": content, "x": content})
        except (TypeError, OverflowError, ValueError):
            return
    (prebuilt / "Manifest.plist").write_bytes(data)
    with contextlib.suppress(TriageError):
        open_backup(prebuilt, password=lambda: "pw").close()


events = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3600),
        st.sampled_from([Heuristic.FILE, Heuristic.NET, Heuristic.LOCATION]),
    ),
    max_size=25,
)


@FAST
@given(events, events)
def test_more_traces_never_hide_a_detection(
    first: list[tuple[int, Heuristic]], more: list[tuple[int, Heuristic]]
) -> None:
    def timeline(items: list[tuple[int, Heuristic]]) -> list[TimelineEvent]:
        return [TimelineEvent(BASE + timedelta(seconds=s), "t", "e", "x", h) for s, h in items]

    if evaluate(timeline(first)):
        assert evaluate(timeline(first + more))


labels = st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True)


@FAST
@given(st.lists(labels, min_size=2, max_size=4), st.lists(labels, max_size=3))
def test_subdomains_of_an_indicator_match(domain: list[str], prefix: list[str]) -> None:
    index = IndicatorIndex()
    index.add("domain", ".".join(domain), "t")
    assert index.domain(".".join([*prefix, *domain]).upper()) is not None
    assert index.domain(".".join(domain[1:])) is None or len(domain) < 2

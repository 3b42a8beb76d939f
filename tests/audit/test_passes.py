"""The DuckDB pass over events: counting per day first, then placing days in segments, gives
what placing every event in its segment gives — whenever `break_days` allows it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devicegate.audit import duckdb_engine, pipeline

MSK = ZoneInfo("Europe/Moscow")
START = datetime(2023, 7, 1, tzinfo=MSK)


def _us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def test_break_days_only_for_local_midnights_under_a_constant_offset() -> None:
    span = (START.astimezone(UTC), (START + timedelta(days=30)).astimezone(UTC))
    midnights = [_us(START + timedelta(days=d)) for d in (3, 17)]
    assert pipeline.break_days(midnights, "Europe/Moscow", span) == [
        date(2023, 7, 4),
        date(2023, 7, 18),
    ]
    afternoon = _us(START + timedelta(days=5, hours=14))
    assert pipeline.break_days([*midnights, afternoon], "Europe/Moscow", span) is None
    # a midnight in Moscow is not one in Berlin, and Berlin's offset changes in October
    assert pipeline.break_days(midnights, "Europe/Berlin", span) is None
    october = (datetime(2023, 10, 20, tzinfo=UTC), datetime(2023, 11, 5, tzinfo=UTC))
    berlin = [_us(datetime(2023, 10, 25, tzinfo=ZoneInfo("Europe/Berlin")))]
    assert pipeline.break_days(berlin, "Europe/Berlin", october) is None
    assert pipeline.break_days([], "Europe/Moscow", span) == []
    assert pipeline.break_days(midnights, "Europe/Moscow", None) is None


def _segment_days(
    parts: pipeline.Parts, breaks: list[int], per_event: bool
) -> list[dict[str, object]]:
    con = duckdb_engine.connect(threads=2)
    try:
        con.register(
            "parts_t",
            pa.table(
                {"filename": parts.paths, "part": pa.array(range(len(parts.paths)), pa.int32())}
            ),
        )
        passes = duckdb_engine.DuckDBPasses(con)
        if per_event:
            original = pipeline.break_days
            pipeline.break_days = lambda *_: None  # type: ignore[assignment]
            try:
                table = passes.segment_days(parts, breaks, "Europe/Moscow")
            finally:
                pipeline.break_days = original
        else:
            table = passes.segment_days(parts, breaks, "Europe/Moscow")
        return sorted(table.to_pylist(), key=lambda r: (r["part"], r["g"], r["seg"], r["day"]))
    finally:
        con.close()


@settings(max_examples=25, deadline=None)
@given(
    offsets=st.lists(
        st.lists(st.integers(0, 20 * 86_400 - 1), min_size=1, max_size=40), min_size=1, max_size=6
    ),
    break_days=st.lists(st.integers(0, 21), max_size=5, unique=True),
)
def test_counting_per_day_equals_placing_each_event(
    tmp_path_factory: pytest.TempPathFactory, offsets: list[list[int]], break_days: list[int]
) -> None:
    folder: Path = tmp_path_factory.mktemp("part")
    ts = [[START.astimezone(UTC) + timedelta(seconds=s) for s in group] for group in offsets]
    path = folder / "part.parquet"
    pq.write_table(
        pa.table(
            {
                "g": pa.array(range(len(ts)), pa.int32()),
                "ts": pa.array(ts, pa.list_(pa.timestamp("us", tz="UTC"))),
            }
        ),
        path,
    )
    parts = pipeline.Parts([str(path)], [0], ["log"])
    breaks = sorted(_us(START + timedelta(days=d)) for d in break_days)
    assert pipeline.break_days(breaks, "Europe/Moscow", pipeline.time_range(parts)) is not None
    assert _segment_days(parts, breaks, per_event=False) == _segment_days(
        parts, breaks, per_event=True
    )

"""Golden outcomes: every field a parser or extractor returns — or the exact error message and
hint it refuses an input with — for a list of inputs chosen at each branch and limit, kept in
a JSON file beside the test and compared whole.

The other tests check the fields a rule reads; these pin the rest a user or an operator
sees (evidence notes, confidences, error messages and hints), so that no change to them goes
unnoticed. Each file is written by `python -m tests.golden` and reviewed in its diff like
code: a changed line is a changed answer. `make mutate` (docs/testing.md) is what showed
which outcomes no test read.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from devicegate.errors import DevicegateError

Case = tuple[str, Callable[..., Any], tuple[Any, ...]]


def plain(value: Any) -> Any:
    """`value` as JSON: dataclasses as objects, enums by value, tuples and sets as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [f.name for f in dataclasses.fields(value) if not f.name.startswith("_")]
        return {name: plain(getattr(value, name)) for name in fields}  # `_hash`: per process
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, float):
        return round(value, 6)
    return value


#: times in log lines (a sighting's, made relative to now) read as `<time>`
TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?")


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        self.lines.append(TIME.sub("<time>", text))


def outcome(function: Callable[..., Any], args: tuple[Any, ...]) -> dict[str, Any]:
    """The value or the error, and what devicegate logged meanwhile (its loggers at DEBUG:
    what an operator reads is part of the outcome)."""
    logger = logging.getLogger("devicegate")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        result: dict[str, Any] = {"value": plain(function(*args))}
    except DevicegateError as exc:
        result = {"error": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    if handler.lines:
        result["log"] = handler.lines
    return result


def compute(cases: Iterable[Case]) -> list[dict[str, Any]]:
    return [{"case": name, **outcome(function, args)} for name, function, args in cases]


def load(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8")))


def write(path: Path, cases: Iterable[Case]) -> None:
    text = json.dumps(compute(cases), indent=1, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


@functools.cache
def kept(path: Path) -> dict[str, dict[str, Any]]:
    return {entry["case"]: entry for entry in load(path)}


def assert_same_cases(path: Path, cases: list[Case]) -> None:
    """The file holds exactly the cases the list has (each name once)."""
    names = [name for name, _, _ in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    assert sorted(kept(path)) == sorted(names), "python -m tests.golden writes the file anew"


def family(name: str) -> str:
    """The family a case belongs to: its name up to ` / `, else its first word."""
    return name.split(" / ")[0] if " / " in name else name.split(" ")[0]


def families(cases: list[Case]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    for case in cases:
        out.setdefault(family(case[0]), []).append(case)
    return out


def assert_family(path: Path, cases: list[Case]) -> None:
    """Each case's outcome is the kept one. One test per family of cases: mutation testing
    runs only the families that reach the mutated function, and collecting a few dozen
    tests costs little where thousands would cost more than running them."""
    for entry in compute(cases):
        assert entry == kept(path)[entry["case"]], entry["case"]


def params(cases: list[Case]) -> Any:
    """`pytest.mark.parametrize("cases", …)` over the families of `cases`."""
    import pytest

    grouped = families(cases)
    ids = [re.sub(r"[^A-Za-z0-9_.-]+", "-", name) for name in grouped]
    return pytest.mark.parametrize("cases", list(grouped.values()), ids=ids)


#: the test modules that keep golden files: each has `GOLDEN` (path) and `cases()`
MODULES = (
    "tests.identify.test_identify_golden",
    "tests.policy.test_engine_golden",
    "tests.mail.test_adapters_golden",
    "tests.triage.test_triage_golden",
)


def main(argv: list[str]) -> int:
    """`python -m tests.golden [MODULE…]`: write the golden files anew."""
    for name in argv or MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            print(f"skipped {name}: no such module")
            continue
        write(module.GOLDEN, module.cases())
        print(f"wrote {module.GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Every input that once made a parser fail, run again (tests/fuzz/corpus/<parser>/)."""

from __future__ import annotations

from tests.fuzz import targets
from tests.fuzz.conftest import CORPUS


def test_inputs_that_once_failed() -> None:
    failed = []
    for path in sorted(p for p in CORPUS.glob("*/*") if p.is_file()):
        assert path.parent.name in targets.CHECKS, f"{path}: no parser of that name"
        try:
            targets.CHECKS[path.parent.name](path.read_bytes())
        except Exception as exc:
            failed.append(f"{path.parent.name}/{path.name}: {type(exc).__name__}: {exc}")
    assert not failed, "\n".join(failed)


def test_every_parser_has_seeds() -> None:
    assert set(targets.seeds()) == set(targets.CHECKS)

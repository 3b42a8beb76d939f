"""Lazy package attributes: the CLI and the writer process start without the heavy stacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

import devicegate.audit
import devicegate.server


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def test_cli_and_packages_do_not_import_duckdb_arrow_or_sqlalchemy_at_start() -> None:
    loaded = _loaded_after("import devicegate.cli, devicegate.audit, devicegate.server")
    assert not {"duckdb", "pyarrow", "sqlalchemy", "starlette", "uvicorn"} & loaded


def test_names_resolve_on_first_use() -> None:
    assert devicegate.audit.run_audit.__module__ == "devicegate.audit.run"
    assert devicegate.audit.Reporter.__module__ == "devicegate.audit.progress"
    assert devicegate.server.ServerConfig.__module__ == "devicegate.server.config"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = devicegate.audit.nope  # type: ignore[attr-defined]


def test_an_audit_loads_neither_the_mail_servers_nor_the_source_models() -> None:
    # a re-audit that reuses the last results takes ~0.5 s, most of it start-up: the Postfix
    # server (asyncio) and the source YAML's pydantic models are not part of it
    loaded = _loaded_after(
        "import devicegate.cli, devicegate.audit.run, devicegate.sources; "
        "devicegate.sources.is_source_file('directory.csv')"
    )
    assert not {"asyncio", "devicegate.adapters.postfix", "devicegate.sources.config"} & loaded

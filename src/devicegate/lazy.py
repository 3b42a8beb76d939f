"""Package attributes that load their module on first use (PEP 562).

`devicegate.audit` and `devicegate.server` re-export names whose modules import DuckDB,
Arrow or the web stack; a process that needs none of them (the CLI's other commands, the
decision-log writer) should not pay for them at import."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package`: `modules` maps each name to the module
    that defines it."""

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__


__all__ = ["lazy_attributes"]

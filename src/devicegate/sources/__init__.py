"""Directory and inventory *sources*: users from LDAP / Active Directory, devices from an MDM
(Microsoft Intune, Fleet, Jamf Pro), read where they live and kept in sync.

The public surface (what `serve`, `console` and the CLI call):

- `Source.open(path, store)` — a source YAML bound to a store;
  `.load_last_good()` the version to start from (`NoGoodVersion` when there is none),
  `.sync(full=, force=, dry_run=)` one guarded pass, `.read_full()` a live unguarded pass.
- `Refresher(source, on_version, current=loaded)` — the thread that keeps it current and calls
  `on_version(directory_or_inventory, version)` on every change; `.metrics()` for `/metrics`.
- `load_live_directory(path)` / `load_live_inventory(path)` — what one-shot commands
  (`check`, `explain`, `validate`, `impact`, `identify`) do with `--directory x.yaml` /
  `--devices x.yaml`: one live full pass, nothing written anywhere.

Modules: `config` (the YAML), `ldapconn`/`ldapmap`/`ldapread` (LDAP), `mdmhttp`/`mdm` (the MDM
APIs), `state` (what a pass yields, its stored form), `guard` (diff and refusal), `versions`
(the store tables), `sync` (one pass, guarded), `refresh` (the thread).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from devicegate.directory import Directory
from devicegate.errors import SourceConfigError
from devicegate.inventory import Inventory

if TYPE_CHECKING:
    from devicegate.sources.config import load_source_config
    from devicegate.sources.guard import Diff
    from devicegate.sources.refresh import Refresher, SourceMetrics
    from devicegate.sources.sync import Loaded, NoGoodVersion, Source, SyncResult
    from devicegate.sources.versions import SourceVersion

#: imported on first use: they bring the source YAML's pydantic models, the store
#: (SQLAlchemy) and the LDAP and HTTP clients, which a command that only asks
#: `is_source_file` (every `--directory` of the audit) must not pay for at start-up
_LAZY = {
    "load_source_config": "config",
    "Diff": "guard",
    "Refresher": "refresh",
    "SourceMetrics": "refresh",
    "Loaded": "sync",
    "NoGoodVersion": "sync",
    "Source": "sync",
    "SyncResult": "sync",
    "SourceVersion": "versions",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def is_source_file(path: str | Path) -> bool:
    """Whether `--directory` / `--devices` names a source YAML rather than a CSV or LDIF."""
    return Path(path).suffix.lower() in (".yaml", ".yml")


def _live(path: str | Path, kinds: tuple[str, ...], flag: str) -> Directory | Inventory:
    from devicegate.sources.config import load_source_config

    config, _ = load_source_config(path)
    if config.kind not in kinds:
        raise SourceConfigError(
            f"`{path}` is a {config.kind} source, which `{flag}` cannot read",
            hint=f"{flag} takes a source of kind {' or '.join(kinds)}",
        )
    from devicegate.sources.sync import Source

    source = Source.open(path)
    state, _ = source.read_full()
    return source.serve(state)


def load_live_directory(path: str | Path) -> Directory:
    """`--directory x.yaml` of a one-shot command: one full LDAP pass, read live."""
    from devicegate.sources.config import DIRECTORY_KINDS

    served = _live(path, DIRECTORY_KINDS, "--directory")
    assert isinstance(served, Directory)
    return served


def load_live_inventory(path: str | Path) -> Inventory:
    """`--devices x.yaml` of a one-shot command: one full pass over the MDM, read live."""
    from devicegate.sources.config import INVENTORY_KINDS

    served = _live(path, INVENTORY_KINDS, "--devices")
    assert isinstance(served, Inventory)
    return served


__all__ = [
    "Diff",
    "Loaded",
    "NoGoodVersion",
    "Refresher",
    "Source",
    "SourceMetrics",
    "SourceVersion",
    "SyncResult",
    "is_source_file",
    "load_live_directory",
    "load_live_inventory",
    "load_source_config",
]

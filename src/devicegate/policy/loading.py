"""From files to a compiled `Snapshot`: the one way every front end loads a policy.

`devicegate serve`, the console, the CLI commands and the benchmarks all call
`load_snapshot`; the CLI adds only the summary it prints (`cli.common.load_snapshot`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from devicegate.directory import EMPTY_DIRECTORY, Directory, load_directory
from devicegate.errors import UsageError
from devicegate.inventory import EMPTY_INVENTORY, Inventory, load_inventory
from devicegate.policy.compile import Snapshot, compile_policy
from devicegate.policy.load import load_policy


def load_snapshot(
    policy: Sequence[str | Path], directory: str | Path | None, devices: str | Path | None
) -> Snapshot:
    """Read the policy files, the directory and the inventory, check them, compile.

    Raises `PolicyError` (every finding with file and line), `DirectoryError` or
    `InventoryError`; an invalid policy never yields a snapshot."""
    if not policy:
        raise UsageError("no policy given", hint="pass --policy FILE")
    users: Directory = load_directory(directory) if directory else EMPTY_DIRECTORY
    inventory: Inventory = load_inventory(devices) if devices else EMPTY_INVENTORY
    loaded = load_policy(list(policy), directory=users if directory else None)
    return compile_policy(loaded, users, inventory)

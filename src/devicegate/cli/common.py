"""Options and loaders every command shares, so each flag means the same everywhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from devicegate.defaults import DEFAULT_STORE_URL, STORE_ENV
from devicegate.directory import EMPTY_DIRECTORY, Directory, load_directory
from devicegate.errors import UsageError
from devicegate.inventory import EMPTY_INVENTORY, Inventory, load_inventory
from devicegate.model import Signals
from devicegate.policy import Snapshot, compile_policy, load_policy
from devicegate.timeutil import parse_at as parse_at  # `--at`, shared with the HTTP API

PolicyOpt = Annotated[
    list[Path], typer.Option("--policy", "-p", help="Policy YAML file (repeat for several).")
]
DirectoryOpt = Annotated[
    Path | None, typer.Option("--directory", "-d", help="Users directory (CSV or LDIF).")
]
DevicesOpt = Annotated[
    Path | None, typer.Option("--devices", help="Device inventory CSV (MDM export).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

#: `--store` of every command that uses a store: the same flag, the same environment
#: variable, the same default. Commands that only read refuse a store that is not there
#: (`open_store(create=False)`); `serve` and `triage --quarantine` create it.
StoreOpt = Annotated[
    str,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help=f"Store: sqlite:///FILE or postgresql://… (else ${STORE_ENV}).",
    ),
]
STORE_DEFAULT = DEFAULT_STORE_URL
#: `--store` of commands that work without a store and use one when told (`check`,
#: `explain`): no default file, but the same flag and environment variable.
OptionalStoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help=f"Store whose holds and verdicts apply (else ${STORE_ENV}; default: none).",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Do not print what was loaded.")]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="ISO-8601 date or time (default: now); naive means policy tz."),
]

UserAgentOpt = Annotated[str | None, typer.Option("--user-agent", help="HTTP User-Agent.")]
ActiveSyncQueryOpt = Annotated[
    str | None, typer.Option("--activesync-query", help="ActiveSync query (plain or base64).")
]
ActiveSyncTypeOpt = Annotated[
    str | None, typer.Option("--activesync-device-type", help="ActiveSync DeviceType.")
]
ActiveSyncIdOpt = Annotated[
    str | None, typer.Option("--activesync-device-id", help="ActiveSync DeviceId.")
]
ImapIdOpt = Annotated[str | None, typer.Option("--imap-id", help="RFC 2971 IMAP ID list.")]
MacOpt = Annotated[str | None, typer.Option("--mac", help="MAC address.")]
MdmIdOpt = Annotated[str | None, typer.Option("--mdm-id", help="MDM device id.")]
TlsOpt = Annotated[
    str | None, typer.Option("--tls-fingerprint", help="Client certificate fingerprint.")
]


def err(text: str) -> None:
    typer.echo(text, err=True)


def make_signals(
    user_agent: str | None = None,
    activesync_query: str | None = None,
    activesync_device_type: str | None = None,
    activesync_device_id: str | None = None,
    imap_id: str | None = None,
    mac: str | None = None,
    mdm_id: str | None = None,
    tls_fingerprint: str | None = None,
) -> Signals:
    return Signals(
        user_agent=user_agent,
        activesync_query=activesync_query,
        activesync_device_type=activesync_device_type,
        activesync_device_id=activesync_device_id,
        imap_id=imap_id,
        mac=mac,
        mdm_id=mdm_id,
        tls_fingerprint=tls_fingerprint,
    )


def load_snapshot(
    policy: list[Path],
    directory: Path | None,
    devices: Path | None,
    *,
    quiet: bool = False,
) -> Snapshot:
    """Load and compile, then say what was loaded (on stderr, so JSON stdout stays clean)."""
    if not policy:
        raise UsageError("no policy given", hint="pass --policy FILE")
    users: Directory = load_directory(directory) if directory else EMPTY_DIRECTORY
    inventory: Inventory = load_inventory(devices) if devices else EMPTY_INVENTORY
    loaded = load_policy(policy, directory=users if directory else None)
    snapshot = compile_policy(loaded, users, inventory)
    if not quiet:
        s = snapshot.summary()
        err(
            f"policy {s['policy_version']}: {s['rules']} rules, {s['exceptions']} exceptions "
            f"from {', '.join(str(p) for p in policy)}; {s['users']} users"
            + (f" from {directory}" if directory else "")
            + (f"; {s['inventory_devices']} devices from {devices}" if devices else "")
        )
        for problem in snapshot.directory.problems[:20]:
            err(f"warning: directory: {problem.format()}")
        if len(snapshot.directory.problems) > 20:
            err(f"warning: directory: {len(snapshot.directory.problems) - 20} more problems")
    return snapshot


def write_json(data: object) -> None:
    import json

    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def read_secret(path: Path, flag: str) -> bytes:
    """A secret from a file (never from the command line, where `ps` shows it)."""
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read `{path}`: {exc.strerror}") from None
    if len(secret) < 16:
        raise UsageError(f"{flag}: the secret in `{path}` must be at least 16 characters")
    return secret

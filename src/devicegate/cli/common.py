"""Options and loaders every command shares, so each flag means the same everywhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from devicegate.defaults import DEFAULT_STORE_URL, STORE_ENV
from devicegate.errors import UsageError
from devicegate.model import Signals
from devicegate.policy import Snapshot, loading
from devicegate.timeutil import parse_at as parse_at  # `--at`, shared with the HTTP API

if TYPE_CHECKING:
    from rich.console import Console

PolicyOpt = Annotated[
    list[Path], typer.Option("--policy", "-p", help="Policy YAML file (repeat for several).")
]
DirectoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--directory", "-d", help="Users directory: CSV, LDIF, or an LDAP source YAML (read live)."
    ),
]
DevicesOpt = Annotated[
    Path | None,
    typer.Option(
        "--devices", help="Device inventory: CSV (MDM export) or an MDM source YAML (read live)."
    ),
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


#: The width a console writing to a pipe or a file lays lines out in: wider than any line a
#: command prints, so nothing wraps; a table still takes only the width its cells need.
UNWRAPPED = 100_000


def console(kind: type[Console] | None = None) -> Console:
    """The console a command prints its tables and summaries to (stdout); `kind` is a Rich
    `Console` subclass for a command that changes how it behaves otherwise.

    On a terminal, lines wrap at the terminal's width. Written to a pipe or a file, Rich
    would wrap at 80 columns, in the middle of a phrase ("971 block, 2" / "excepted") and of
    a table row, so that `grep`, a script or a log reader gets half a record per line: there
    nothing wraps. Colour and markup follow Rich's own rules for the stream."""
    from rich.console import Console

    cls = kind or Console
    out = cls()
    if out.is_terminal:
        return out
    return cls(width=UNWRAPPED, soft_wrap=True)


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
    """`policy.loading.load_snapshot`, then say what was loaded (on stderr, so JSON stdout
    stays clean)."""
    snapshot = loading.load_snapshot(policy, directory, devices)
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

"""`devicegate serve`: the decision service for proxies and mail servers (docs/serve.md)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from devicegate.cli.common import DevicesOpt, DirectoryOpt, PolicyOpt, err
from devicegate.defaults import DEFAULT_STORE_URL as DEFAULT_URL

StoreOpt = Annotated[
    str, typer.Option("--store", help="SQLAlchemy URL: sqlite:///FILE or postgresql://…")
]


def serve(
    policy: PolicyOpt,
    directory: DirectoryOpt = None,
    devices: DevicesOpt = None,
    store: StoreOpt = DEFAULT_URL,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="HTTP port.")] = 8181,
    user_header: Annotated[
        str, typer.Option("--user-header", help="Header naming the authenticated user.")
    ] = "X-Devicegate-User",
    fingerprint_header: Annotated[
        str,
        typer.Option("--fingerprint-header", help="Header with the client-certificate hash."),
    ] = "X-Client-Cert-Fingerprint",
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-token-file",
            help="File holding the admin bearer token (else env DEVICEGATE_ADMIN_TOKEN).",
        ),
    ] = None,
    state_refresh: Annotated[
        float,
        typer.Option("--state-refresh", help="Seconds between device-state reloads (bound)."),
    ] = 1.0,
    postfix_port: Annotated[
        int | None, typer.Option("--postfix-port", help="Also serve Postfix policy delegation.")
    ] = None,
    postfix_window: Annotated[
        str,
        typer.Option(
            "--postfix-window",
            help="How old a device sighting SMTP may be decided from (e.g. 7d, 36h).",
        ),
    ] = "7d",
    log_ack: Annotated[
        str,
        typer.Option(
            "--log-ack",
            help="durable: answer after the decision is committed (default); buffered: "
            "answer at once, commit within milliseconds (a crash may lose those).",
        ),
    ] = "durable",
) -> None:
    """Serve forward-auth, /v1/check, admin and mail-adapter endpoints on one port."""
    from devicegate.adapters.forward_auth import HeaderNames
    from devicegate.errors import UsageError
    from devicegate.policy.schema import parse_duration
    from devicegate.server import ServerConfig, create_app
    from devicegate.server.runner import run

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("devicegate").setLevel(logging.INFO)
    token = os.environ.get("DEVICEGATE_ADMIN_TOKEN")
    if admin_token_file is not None:
        token = admin_token_file.read_text(encoding="utf-8").strip()
    if token is not None and len(token) < 16:
        raise UsageError("the admin token must be at least 16 characters")
    if state_refresh <= 0:
        raise UsageError("--state-refresh must be positive")
    if log_ack not in ("durable", "buffered"):
        raise UsageError(f"unknown --log-ack `{log_ack}`", hint="use durable or buffered")
    try:
        window = parse_duration(postfix_window)
    except ValueError as exc:
        raise UsageError(f"--postfix-window: {exc}") from None
    config = ServerConfig(
        policy=tuple(policy),
        directory=directory,
        devices=devices,
        store_url=store,
        host=host,
        port=port,
        admin_token=token,
        headers=HeaderNames(user_header.lower(), fingerprint_header.lower()),
        state_refresh=state_refresh,
        postfix_port=postfix_port,
        postfix_window=window.total_seconds(),
        log_ack=log_ack,
    )
    app = create_app(config)
    snapshot = app.service.snapshot
    err(
        f"devicegate serve: policy {snapshot.version} ({len(snapshot.rules)} rules), "
        f"http://{host}:{port}, admin endpoints {'on' if token else 'off (no token)'}, "
        f"decision log acknowledged {log_ack}"
    )
    run(app, config)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)

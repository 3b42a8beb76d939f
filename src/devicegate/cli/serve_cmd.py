"""`devicegate serve`: the decision service for proxies and mail servers (docs/serve.md)."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from devicegate.cli.common import (
    STORE_DEFAULT,
    DevicesOpt,
    DirectoryOpt,
    PolicyOpt,
    StoreOpt,
    err,
    read_secret,
)
from devicegate.defaults import POSTFIX_MATCH, POSTFIX_MATCHES, POSTFIX_WINDOW, REPLAY_CACHE


def serve(
    policy: PolicyOpt,
    directory: DirectoryOpt = None,
    devices: DevicesOpt = None,
    store: StoreOpt = STORE_DEFAULT,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="HTTP port.")] = 8181,
    user_header: Annotated[
        str,
        typer.Option(
            "--user-header",
            help="The one header naming the user, set by the proxy after it authenticated "
            "the user (and cleared from what the client sent).",
        ),
    ] = "X-Devicegate-User",
    basic_user: Annotated[
        list[str] | None,
        typer.Option(
            "--basic-user-for",
            help="A resource whose backend itself verifies the client's Basic credentials "
            "(ActiveSync to Exchange: email): there the Basic name stands in when the proxy "
            "set no user; such decisions record no sighting and no hold. Repeat for several.",
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="Address or CIDR block of a proxy or mail server that may ask (repeat; "
            "default: 127.0.0.0/8 and ::1). Everyone else gets 403 on every endpoint that "
            "trusts a header or records evidence.",
        ),
    ] = None,
    proxy_secret_file: Annotated[
        Path | None,
        typer.Option(
            "--proxy-secret-file",
            help="File holding a secret trusted proxies must also send in "
            "X-Devicegate-Proxy-Secret (for proxies on other hosts).",
        ),
    ] = None,
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
            help="How old a device sighting SMTP may be decided from (e.g. 24h, 7d).",
        ),
    ] = POSTFIX_WINDOW,
    postfix_match: Annotated[
        str,
        typer.Option(
            "--postfix-match",
            help="any: refuse SMTP while any identified device the user was seen on within "
            "the window is refused (default); newest: decide from the newest sighting only.",
        ),
    ] = POSTFIX_MATCH,
    max_removal: Annotated[
        float | None,
        typer.Option(
            "--max-removal",
            help="For a --directory/--devices source (YAML): the share of users or devices a "
            "sync may remove before it is refused and the last good version kept (default "
            "0.1, or the source's own setting).",
        ),
    ] = None,
    log_retention: Annotated[
        int | None,
        typer.Option(
            "--log-retention",
            metavar="DAYS",
            min=1,
            help="Delete decisions older than DAYS from the decision log, hourly and in small "
            "batches, once the console's rollups hold them (default: keep them all).",
        ),
    ] = None,
    replay_cache: Annotated[
        int,
        typer.Option(
            "--replay-cache",
            metavar="ENTRIES",
            min=1,
            help="Answers each endpoint (forward-auth, Dovecot, Postfix) keeps for replay; a "
            "full cache is emptied whole. Size it to the distinct requests of a working day "
            "(docs/scale.md).",
        ),
    ] = REPLAY_CACHE,
    radius_vlan: Annotated[
        str,
        typer.Option("--radius-quarantine-vlan", help="VLAN a quarantined RADIUS client gets."),
    ] = "999",
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
    from devicegate.server.trust import LOOPBACK, parse_networks

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("devicegate").setLevel(logging.INFO)
    token = os.environ.get("DEVICEGATE_ADMIN_TOKEN")
    if admin_token_file is not None:
        token = read_secret(admin_token_file, "--admin-token-file").decode()
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
    if postfix_match not in POSTFIX_MATCHES:
        raise UsageError(
            f"unknown --postfix-match `{postfix_match}`", hint="use " + " or ".join(POSTFIX_MATCHES)
        )
    try:
        trusted = parse_networks(trusted_proxy or LOOPBACK)
    except ValueError as exc:
        raise UsageError(f"--trusted-proxy: {exc}") from None
    secret = None
    if proxy_secret_file is not None:
        secret = read_secret(proxy_secret_file, "--proxy-secret-file")
    if max_removal is not None and not 0 <= max_removal <= 1:
        raise UsageError(f"--max-removal `{max_removal}` is not a share between 0 and 1")
    if not (radius_vlan.isascii() and radius_vlan.isdigit()) or not 1 <= int(radius_vlan) <= 4094:
        raise UsageError(f"--radius-quarantine-vlan `{radius_vlan}` is not a VLAN id (1-4094)")
    config = ServerConfig(
        policy=tuple(policy),
        directory=directory,
        devices=devices,
        store_url=store,
        host=host,
        port=port,
        admin_token=token,
        headers=HeaderNames(
            user_header.lower(),
            fingerprint_header.lower(),
            basic_resources=frozenset(r.lower() for r in basic_user or ()),
        ),
        trusted_proxies=trusted,
        proxy_secret=secret,
        state_refresh=state_refresh,
        postfix_port=postfix_port,
        postfix_window=window.total_seconds(),
        postfix_match=postfix_match,
        radius_quarantine_vlan=radius_vlan,
        max_removal=max_removal,
        log_retention=timedelta(days=log_retention) if log_retention else None,
        log_ack=log_ack,
        replay_cache=replay_cache,
    )
    app = create_app(config)
    snapshot = app.service.snapshot
    proxies = ", ".join(str(n) for n in trusted)
    err(
        f"devicegate serve: policy {snapshot.version} ({len(snapshot.rules)} rules), "
        f"http://{host}:{port}, trusted proxies {proxies}"
        f"{' with a shared secret' if secret else ''}, "
        f"admin endpoints {'on' if token else 'off (no token)'}, "
        f"decision log acknowledged {log_ack}"
    )
    run(app, config)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)

"""`devicegate console`: the web console for the rollout (docs/console.md)."""

from __future__ import annotations

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

ROLE_HELP = "viewer or operator"
#: seconds a stop waits for open answers (a live stream, a page being rendered) to end
STOP_GRACE = 3


def console(
    policy: PolicyOpt,
    directory: DirectoryOpt = None,
    devices: DevicesOpt = None,
    store: StoreOpt = STORE_DEFAULT,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="HTTP port.")] = 8282,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A Host name the console answers to (repeat; default: the listening "
            "address and localhost). Stops DNS rebinding.",
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The URL people open (https://… makes the session cookie Secure; OIDC "
            "redirects to PUBLIC_URL/auth/callback).",
        ),
    ] = None,
    session_secret_file: Annotated[
        Path | None,
        typer.Option(
            "--session-secret-file",
            help="File with the key that signs session cookies (else a new one each start).",
        ),
    ] = None,
    session_hours: Annotated[
        float, typer.Option("--session-hours", help="How long a sign-in lasts.")
    ] = 8.0,
    dev_login: Annotated[
        str | None,
        typer.Option(
            "--dev-login",
            help="Sign every visitor in as `local-dev` with this role (viewer or operator), "
            "without a password: demos and trials only; loopback addresses only.",
        ),
    ] = None,
    oidc_issuer: Annotated[
        str | None, typer.Option("--oidc-issuer", help="OIDC provider's issuer URL.")
    ] = None,
    oidc_client_id: Annotated[
        str | None, typer.Option("--oidc-client-id", help="OIDC client id.")
    ] = None,
    oidc_client_secret_file: Annotated[
        Path | None,
        typer.Option("--oidc-client-secret-file", help="File with the OIDC client secret."),
    ] = None,
    oidc_groups_claim: Annotated[
        str, typer.Option("--oidc-groups-claim", help="The claim listing the user's groups.")
    ] = "groups",
    proxy_auth: Annotated[
        list[str] | None,
        typer.Option(
            "--proxy-auth-from",
            help="Address or CIDR of a reverse proxy that signs people in and names them "
            "in headers (oauth2-proxy style); repeat. Headers from anyone else are refused.",
        ),
    ] = None,
    proxy_user_header: Annotated[
        str, typer.Option("--proxy-user-header", help="The proxy's header naming the user.")
    ] = "X-Auth-Request-User",
    proxy_groups_header: Annotated[
        str,
        typer.Option("--proxy-groups-header", help="The proxy's header listing groups (comma)."),
    ] = "X-Auth-Request-Groups",
    viewer_group: Annotated[
        list[str] | None, typer.Option("--viewer-group", help="A group whose members view.")
    ] = None,
    operator_group: Annotated[
        list[str] | None,
        typer.Option("--operator-group", help="A group whose members may also release."),
    ] = None,
    candidates: Annotated[
        Path | None,
        typer.Option("--candidates", help="Folder of candidate policies for the what-if page."),
    ] = None,
    locale: Annotated[
        str | None,
        typer.Option(
            "--locale", help="Show every page in this language (en, ru); default: the browser's."
        ),
    ] = None,
    window_days: Annotated[
        int, typer.Option("--window-days", help="Days the overview counts users seen in.")
    ] = 7,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="The moment the console treats as now (ISO date or time; looking back, "
            "demos). Default: the clock.",
        ),
    ] = None,
) -> None:
    """Serve the web console: the rollout per unit, quarantine, exceptions, live decisions."""
    import importlib.util
    import logging

    from devicegate.errors import ExtraMissing

    for module in ("itsdangerous", "multipart", "authlib"):
        if importlib.util.find_spec(module) is None:
            raise ExtraMissing("console", module)

    from devicegate.console.config import (
        ROLES,
        ConsoleConfig,
        OidcSettings,
        ProxySettings,
        is_loopback,
    )
    from devicegate.errors import UsageError
    from devicegate.timeutil import parse_at

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("devicegate").setLevel(logging.INFO)
    if dev_login is not None:
        if dev_login not in ROLES:
            raise UsageError(f"--dev-login `{dev_login}` is not a role", hint=ROLE_HELP)
        if not is_loopback(host):
            raise UsageError(
                f"--dev-login signs everyone in: refusing to listen on `{host}`",
                hint="use --host 127.0.0.1, or sign in through OIDC or a proxy",
            )
    oidc = None
    if oidc_issuer or oidc_client_id:
        if not (oidc_issuer and oidc_client_id):
            raise UsageError("OIDC needs both --oidc-issuer and --oidc-client-id")
        secret = None
        if oidc_client_secret_file is not None:
            secret = read_secret(oidc_client_secret_file, "--oidc-client-secret-file").decode()
        oidc = OidcSettings(oidc_issuer, oidc_client_id, secret, oidc_groups_claim)
    proxy = None
    if proxy_auth:
        import ipaddress

        try:
            trusted = tuple(ipaddress.ip_network(p, strict=False) for p in proxy_auth)
        except ValueError as exc:
            raise UsageError(f"--proxy-auth-from: {exc}") from None
        proxy = ProxySettings(trusted, proxy_user_header.lower(), proxy_groups_header.lower())
    if dev_login is None and oidc is None and proxy is None:
        raise UsageError(
            "no way to sign in",
            hint="pass --oidc-issuer/--oidc-client-id, --proxy-auth-from, or --dev-login ROLE",
        )
    groups = {g: "viewer" for g in viewer_group or ()} | {
        g: "operator" for g in operator_group or ()
    }
    if (oidc or proxy) and not groups:
        raise UsageError("no group maps to a role", hint="pass --viewer-group/--operator-group")
    if locale is not None and locale not in ("en", "ru"):
        raise UsageError(f"--locale `{locale}` is not shipped", hint="en or ru")
    if not 1 <= window_days <= 90:
        raise UsageError("--window-days must be between 1 and 90")
    secret_key = (
        read_secret(session_secret_file, "--session-secret-file") if session_secret_file else None
    )
    if candidates is not None and not candidates.is_dir():
        raise UsageError(f"--candidates: `{candidates}` is not a folder")
    config = ConsoleConfig(
        policy=tuple(policy),
        directory=directory,
        devices=devices,
        store_url=store,
        host=host,
        port=port,
        allowed_hosts=tuple(allowed_host or ()),
        public_url=public_url,
        session_secret=secret_key,
        session_hours=session_hours,
        dev_login=dev_login,
        oidc=oidc,
        proxy=proxy,
        groups=groups,
        candidates=candidates,
        locale=locale,
        window_days=window_days,
        at=parse_at(at) if at else None,
    )
    run(config)


def run(config: object) -> None:
    """Load, open the store (read-only use: it must exist), start the background work, serve."""
    import uvicorn

    from devicegate.console import create_app
    from devicegate.console.config import ConsoleConfig
    from devicegate.console.runtime import Runtime, open_inputs
    from devicegate.store import open_store, shown_url

    assert isinstance(config, ConsoleConfig)
    store = open_store(config.store_url, create=False)
    inputs = open_inputs(config, store)
    snapshot = inputs.compile()
    runtime = Runtime(config, snapshot, store, inputs)
    app = create_app(config, runtime)
    runtime.start()
    signin = (
        f"dev login as {config.dev_login}"
        if config.dev_login
        else ", ".join(
            x for x in ("OIDC" if config.oidc else "", "proxy headers" if config.proxy else "") if x
        )
    )
    err(
        f"devicegate console: policy {snapshot.version}, store {shown_url(config.store_url)}, "
        f"http://{config.host}:{config.port}, sign-in: {signin}"
    )
    try:
        uvicorn.run(
            app,
            host=config.host,
            port=config.port,
            log_level="warning",
            proxy_headers=False,
            # a live page's event stream lasts up to ten minutes: a stop (SIGTERM, systemctl
            # stop) ends the streams after this long instead of waiting for them
            timeout_graceful_shutdown=STOP_GRACE,
        )
    finally:
        runtime.stop()


def register(app: typer.Typer) -> None:
    app.command("console")(console)

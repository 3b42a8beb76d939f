"""Run the app under uvicorn (httptools + uvloop), with SIGHUP reload and the Postfix server;
tell systemd when it is ready (`sdnotify`).

uvicorn was chosen by measurement (benchmarks/forward_auth.py measures the bare app on the
same server): one worker process, one event loop; the writer and state threads beside it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import uvicorn

from devicegate.server.admin import reload_policy
from devicegate.server.app import DevicegateApp
from devicegate.server.config import ServerConfig
from devicegate.server.housekeeping import Housekeeping
from devicegate.server.protocol import DevicegateHttpProtocol
from devicegate.server.sdnotify import notify

if TYPE_CHECKING:
    from devicegate.adapters.postfix import PostfixPolicyServer

log = logging.getLogger("devicegate.server")


def _uvicorn_config(app: DevicegateApp, config: ServerConfig) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        loop="uvloop",
        http=DevicegateHttpProtocol,  # httptools; replayed forward-auth and Dovecot answers
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,  # devicegate reads X-Forwarded-For itself (forward_auth.py)
        date_header=False,
        backlog=2048,
        timeout_keep_alive=int(config.limits.keep_alive),
    )


def postfix_server(app: DevicegateApp, config: ServerConfig) -> PostfixPolicyServer | None:
    """The Postfix policy service `serve` runs beside uvicorn on `--postfix-port` (None
    without one): trusted proxies only, each answer written once the decision log holds
    everything decided so far, a deferral when it cannot."""
    if config.postfix_port is None:
        return None
    module = importlib.import_module("devicegate.adapters.postfix")
    decision_log = app.service.log

    def durable(done: Callable[[bool], None]) -> bool:
        """Whether everything decided so far may be answered now (`postfix.Durable`)."""
        return decision_log.answer_now(decision_log.latest, done)

    limits = config.limits
    server: PostfixPolicyServer = module.PostfixPolicyServer(
        app.service,
        config.host,
        config.postfix_port,
        window=timedelta(seconds=config.postfix_window),
        match=config.postfix_match,
        durable=durable,
        trusted=app.service.trust.address_trusted,
        idle_timeout=limits.postfix_idle,
        request_timeout=limits.postfix_request_timeout,
        max_connections=limits.postfix_max_connections,
        replay_cache=config.replay_cache,
    )
    app.service.metrics.requests.watch_cache(module.ADAPTER.name, server.answers)
    return server


async def serve(app: DevicegateApp, config: ServerConfig) -> None:
    """Serve until SIGINT/SIGTERM; SIGHUP reloads the policy (an invalid one is refused)."""
    server = uvicorn.Server(_uvicorn_config(app, config))
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[object]] = set()

    def on_hup() -> None:
        log.info("SIGHUP: reloading policy")
        task: asyncio.Task[object] = asyncio.ensure_future(reload_policy(app.service))
        pending.add(task)
        task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    ready = asyncio.ensure_future(_notify_ready(server, app))

    async def stopping() -> None:
        notify("STOPPING=1")

    app.on_shutdown.insert(0, stopping)  # first thing on shutdown: systemd sees it at once
    postfix = postfix_server(app, config)
    if postfix is not None:
        await postfix.start()
        app.on_shutdown.append(postfix.close)
    housekeeping = Housekeeping(
        app.service,
        instance=Housekeeping.instance_of(config.host, config.port),
        retention=config.log_retention,
    )
    housekeeping.start()
    try:
        await server.serve()
    finally:
        ready.cancel()
        await housekeeping.stop()
        if postfix is not None:
            await postfix.close()
        loop.remove_signal_handler(signal.SIGHUP)


async def _notify_ready(server: uvicorn.Server, app: DevicegateApp) -> None:
    """READY=1 to systemd (`Type=notify`) once the HTTP port listens: the lifespan (log
    writer, state cache) has started and the Postfix port, opened before, is listening too."""
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.01)
    version = app.service.snapshot.version
    notify(f"READY=1\nSTATUS=serving policy {version}\nMAINPID={os.getpid()}")


def run(app: DevicegateApp, config: ServerConfig) -> None:
    import uvloop

    uvloop.run(serve(app, config))

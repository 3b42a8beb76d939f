"""The ASGI application: the bare forward-auth and Dovecot paths in front of a Starlette app.

`create_app(config)` loads the policy and opens the store (so a bad policy or store fails
before the port opens); the lifespan starts the state-cache refresher and the log writer,
and on shutdown drains the log so everything answered is written.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devicegate.errors import DevicegateError, error_json
from devicegate.server.admin import admin_routes
from devicegate.server.api import basic_routes, mail_routes
from devicegate.server.config import ServerConfig
from devicegate.server.dovecot_endpoint import PATH as DOVECOT_PATH
from devicegate.server.dovecot_endpoint import DovecotPolicy
from devicegate.server.forward_auth_endpoint import BLOCK_PAGE, PREFIX, ForwardAuth, block_page
from devicegate.server.metrics import Metrics
from devicegate.server.service import ServerService
from devicegate.sources.inputs import Inputs
from devicegate.store import open_store

log = logging.getLogger("devicegate.server")


class DevicegateApp:
    """ASGI callable: forward-auth requests bypass the framework; the rest go to Starlette."""

    def __init__(self, service: ServerService) -> None:
        self.service = service
        self.forward_auth = ForwardAuth(service)
        self.dovecot = DovecotPolicy(service)
        #: read by `protocol.DevicegateHttpProtocol`
        self.limits = service.config.limits
        #: awaited first on shutdown (the runner adds the Postfix server's `close`)
        self.on_shutdown: list[Callable[[], Awaitable[None]]] = []

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            await self.startup()
            try:
                yield
            finally:
                await self.shutdown()

        async def http_error(_: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            return JSONResponse(
                error_json(str(exc.detail).lower()),
                status_code=exc.status_code,
                headers=exc.headers,
            )

        async def input_error(_: Request, exc: Exception) -> Response:
            assert isinstance(exc, DevicegateError)
            return JSONResponse(error_json(exc.message, exc.hint), status_code=400)

        self.web = Starlette(
            routes=[*basic_routes(service), *admin_routes(service), *mail_routes(service)],
            exception_handlers={HTTPException: http_error, DevicegateError: input_error},
            lifespan=lifespan,
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith(PREFIX):
                await self.forward_auth(scope, receive, send)
                return
            if path == DOVECOT_PATH:
                await self.dovecot(scope, receive, send)
                return
            if path == BLOCK_PAGE and scope["method"] in ("GET", "HEAD"):
                await block_page(self.service, scope, send)
                return
        await self.web(scope, receive, send)

    async def startup(self) -> None:
        await asyncio.to_thread(self.service.state.start)
        self.service.inputs.start()
        self.service.log.start(asyncio.get_running_loop())
        # The policy, directory and identification caches are long-lived: keep them out of
        # the cyclic GC's full collections, which otherwise add pauses to p99 latency.
        gc.collect()
        gc.freeze()
        snapshot = self.service.snapshot
        log.info(
            "devicegate serving policy %s (%d rules) with store %s",
            snapshot.version,
            len(snapshot.rules),
            self.service.store.engine.url.render_as_string(hide_password=True),
        )

    async def shutdown(self) -> None:
        """Stop what still decides (the Postfix server), then drain the log, then the rest:
        a decision made after the log closed would start a new writer."""
        for stop in self.on_shutdown:
            await stop()
        self.on_shutdown.clear()
        await self.service.log.close()
        await asyncio.to_thread(self.service.inputs.stop)
        await asyncio.to_thread(self.service.state.stop)


def create_app(config: ServerConfig) -> DevicegateApp:
    """Load policy, directory and inventory, open (and migrate) the store, build the app."""
    store = open_store(config.store_url)
    inputs = Inputs(
        config.policy,
        config.directory,
        config.devices,
        store=store,
        max_removal=config.max_removal,
        settle=config.reload_settle,
    )
    service = ServerService(config, inputs, store, Metrics())
    return DevicegateApp(service)

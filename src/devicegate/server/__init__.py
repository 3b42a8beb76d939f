"""`devicegate serve`: forward-auth and the JSON API over one ASGI app (see docs/serve.md).

app.py      composition: the bare ASGI hot path in front of Starlette, lifespan
hotpath.py  /v1/forward-auth/{resource}
api.py      /v1/check, /healthz, /metrics, /openapi.json, mail adapter routes
admin.py    bearer-token admin endpoints; reload (also on SIGHUP)
service.py  ServerService, the DecisionService implementation
state.py    device-state cache (holds, verdicts) refreshed from the store
declog.py   decision log: group commit, acknowledges after durable commit
logproc.py  the decision-log writer process (python -m devicegate.server.logproc)
metrics.py  Prometheus metrics (devicegate_*)
runner.py   uvicorn + uvloop + httptools, SIGHUP, the Postfix policy server

The names below load on first use (PEP 562), so that the writer process, which imports
`devicegate.server.logproc`, does not pay for the web stack it never runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devicegate.lazy import lazy_attributes

if TYPE_CHECKING:
    from devicegate.server.app import DevicegateApp, create_app
    from devicegate.server.config import ServerConfig
    from devicegate.server.service import ServerService

_LAZY = {
    "DevicegateApp": "devicegate.server.app",
    "create_app": "devicegate.server.app",
    "ServerConfig": "devicegate.server.config",
    "ServerService": "devicegate.server.service",
}


__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = ["DevicegateApp", "ServerConfig", "ServerService", "create_app"]

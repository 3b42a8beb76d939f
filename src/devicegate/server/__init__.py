"""`devicegate serve`: forward-auth and the JSON API over one ASGI app (see docs/serve.md).

app.py      composition: the bare ASGI hot path in front of Starlette, lifespan
hotpath.py  /v1/forward-auth/{resource}
api.py      /v1/check, /healthz, /metrics, /openapi.json, mail adapter routes
admin.py    bearer-token admin endpoints; reload (also on SIGHUP)
service.py  ServerService, the DecisionService implementation
state.py    device-state cache (holds, verdicts) refreshed from the store
declog.py   batching decision-log writer that acknowledges after durable commit
metrics.py  Prometheus metrics (devicegate_*)
runner.py   uvicorn + uvloop + httptools, SIGHUP, the Postfix policy server
"""

from devicegate.server.app import DevicegateApp, create_app
from devicegate.server.config import ServerConfig
from devicegate.server.service import ServerService

__all__ = ["DevicegateApp", "ServerConfig", "ServerService", "create_app"]

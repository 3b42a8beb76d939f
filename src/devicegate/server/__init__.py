"""`devicegate serve`: forward-auth and the JSON API over one ASGI app (see docs/serve.md).

app.py                    composition: the bare ASGI endpoints in front of Starlette, lifespan
forward_auth_endpoint.py  /v1/forward-auth/{resource}: trust, answer cache, replay
dovecot_endpoint.py       /v1/dovecot/auth-policy: trust, answer cache, replay
protocol.py               uvicorn's httptools protocol + replayed answers and request limits
api.py                    /v1/check, /v1/decide, /healthz, /metrics, /openapi.json, RADIUS
admin.py                  bearer-token admin endpoints; reload (also on SIGHUP)
service.py                ServerService, the DecisionService implementation
trust.py                  which peers may ask (trusted proxies, the proxy secret)
binding.py                what a request may claim about whose device it is
device_state.py           device-state cache (holds, verdicts) refreshed from the store
decision_log.py           decision log: group commit, acknowledges after durable commit
log_writer.py             the decision-log writer process (python -m …server.log_writer)
log_rows.py               how the writer process inserts decisions and sightings
metrics.py                Prometheus metrics (devicegate_*)
runner.py                 uvicorn + uvloop + httptools, SIGHUP, the Postfix policy server

The names below load on first use (PEP 562), so that the writer process, which imports
`devicegate.server.log_writer`, does not pay for the web stack it never runs.
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

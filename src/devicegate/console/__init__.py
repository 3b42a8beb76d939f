"""`devicegate console`: the web console for the people who carry the rollout out.

Its own process and port, reading the store `serve` writes (docs/console.md). Pages are
rendered on the server (`pages_*`), numbers come from rollups (`rolled`, filled by
`devicegate.store.rollups`), raw rows through indexes (`raw`), charts from
`devicegate.charts`; who may do what is in `auth` and `oidc`.
"""

from __future__ import annotations

from devicegate.console.app import create_app
from devicegate.console.config import ConsoleConfig, OidcSettings, ProxySettings

__all__ = ["ConsoleConfig", "OidcSettings", "ProxySettings", "create_app"]

"""The OpenAPI description served at `/openapi.json` (written by hand: the API is small)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_BLOCK = {"$ref": "#/components/schemas/Block"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ADMIN: dict[str, Any] = {"security": [{"bearer": []}]}
_UNAUTH = {"401": _json(_ERROR, "missing or wrong bearer token")}
_UNTRUSTED = _json(_ERROR, "the peer is not a trusted proxy (or lacks the proxy secret)")
_DECISION_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["user", "resource"],
                "properties": {
                    "user": {"type": "string"},
                    "resource": {"type": "string"},
                    "signals": {"type": "object"},
                },
            }
        }
    }
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "devicegate", "version": "1"},
    "paths": {
        "/v1/forward-auth/{resource}": {
            "get": {
                "summary": "Forward-auth for nginx auth_request, HAProxy, Traefik, Envoy",
                "description": (
                    "Trusted proxies only. The user comes only from X-Devicegate-User (or "
                    "--user-header), set by the proxy after authenticating; for resources "
                    "named by --basic-user-for, the Basic-auth name when the proxy set none. "
                    "Signals from User-Agent, X-Original-URI / X-Forwarded-Uri or the path "
                    "after the resource (Envoy), X-Forwarded-For, X-Client-Cert-Fingerprint. "
                    "Any method is accepted (Envoy forwards the original one)."
                ),
                "parameters": [
                    {
                        "name": "resource",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {"description": "allowed; X-Devicegate-Warning on warn"},
                    "400": _json(_ERROR, "unreadable header or query"),
                    "401": _json(_ERROR, "no user in the request"),
                    "403": _json(_BLOCK, "blocked or quarantined (or an untrusted peer)"),
                    "404": _json(_ERROR, "unknown resource"),
                    "503": _json(_ERROR, "decision log unavailable: failing closed"),
                },
            }
        },
        "/v1/check": {
            "post": {
                "summary": "What-if: decide one access and record nothing (a dry run); the "
                "same JSON as `devicegate check --json`",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["user", "resource"],
                                "properties": {
                                    "user": {"type": "string"},
                                    "resource": {"type": "string"},
                                    "at": {"type": "string", "format": "date-time"},
                                    "signals": {"type": "object"},
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "200": {"description": "the decision (any action)"},
                    "400": _json(_ERROR, "invalid request"),
                    "503": _json(_ERROR, "decision log unavailable"),
                },
            }
        },
        "/v1/decide": {
            "post": {
                "summary": "Decide and log one access for an application that enforces "
                "through this API (trusted proxies only; the time is now)",
                "requestBody": _DECISION_BODY,
                "responses": {
                    "200": {"description": "the decision (any action)"},
                    "400": _json(_ERROR, "invalid request"),
                    "403": _UNTRUSTED,
                    "503": _json(_ERROR, "decision log unavailable: failing closed"),
                },
            }
        },
        "/v1/block-page": {
            "get": {
                "summary": "The 403 page for a rule: the policy's own message for ?rule=ID "
                "(or the X-Devicegate-Rule header); never text from the request",
                "parameters": [
                    {"name": "rule", "in": "query", "required": False, "schema": {"type": "string"}}
                ],
                "responses": {"403": {"description": "the block page (text/html)"}},
            }
        },
        "/healthz": {"get": {"summary": "Liveness and the policy in force"}},
        "/metrics": {"get": {"summary": "Prometheus metrics (devicegate_*)"}},
        "/v1/admin/reload": {
            "post": {
                "summary": "Reload the policy atomically (422: refused)",
                **_ADMIN,
                "responses": _UNAUTH,
            }
        },
        "/v1/admin/devices": {
            "get": {
                "summary": "List devices (?restricted=1: held or compromised)",
                **_ADMIN,
                "responses": _UNAUTH,
            }
        },
        "/v1/admin/devices/{ref}/release": {
            "post": {"summary": "Release a quarantined device", **_ADMIN, "responses": _UNAUTH}
        },
        "/v1/dovecot/auth-policy": {
            "post": {
                "summary": "Dovecot auth policy (trusted proxies only)",
                "responses": {"403": _UNTRUSTED},
            }
        },
        "/v1/radius/authorize": {
            "post": {
                "summary": "FreeRADIUS rlm_rest (trusted proxies only)",
                "responses": {"403": _UNTRUSTED},
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}, "hint": {"type": "string"}},
            },
            "Block": {
                "type": "object",
                "properties": {
                    "action": {"enum": ["block", "quarantine"]},
                    "rule": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

"""The OpenAPI description served at `/openapi.json` (written by hand: the API is small)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_BLOCK = {"$ref": "#/components/schemas/Block"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ADMIN: dict[str, Any] = {"security": [{"bearer": []}]}
_UNAUTH = {"401": _json(_ERROR, "missing or wrong bearer token")}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "devicegate", "version": "1"},
    "paths": {
        "/v1/forward-auth/{resource}": {
            "get": {
                "summary": "Forward-auth for nginx auth_request, HAProxy, Traefik, Envoy",
                "description": (
                    "User from X-Devicegate-User (configurable), Remote-User or Basic auth; "
                    "signals from User-Agent, X-Original-URI / X-Forwarded-Uri or the path "
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
                    "403": _json(_BLOCK, "blocked or quarantined"),
                    "404": _json(_ERROR, "unknown resource"),
                    "503": _json(_ERROR, "decision log unavailable: failing closed"),
                },
            }
        },
        "/v1/check": {
            "post": {
                "summary": "Decide one access; the same JSON as `devicegate check --json`",
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
        "/v1/dovecot/auth-policy": {"post": {"summary": "Dovecot auth policy (mail adapter)"}},
        "/v1/radius/authorize": {"post": {"summary": "FreeRADIUS rlm_rest (mail adapter)"}},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "hint": {"type": ["string", "null"]}},
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

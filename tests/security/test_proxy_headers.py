"""Headers a client sends that only devicegate or the proxy may set: cleared by the shipped
proxy configurations before the application (or devicegate) sees them; and what devicegate
shows to anyone (its block page, /metrics) says nothing the request chose."""

from __future__ import annotations

import json

import pytest

from tests.security.conftest import Stack
from tests.server import procs
from tests.server.scenario import ANDROID_CHROME, ANDROID_EAS, OPS, plain_eas

pytestmark = [pytest.mark.integration]

FORGED = {
    "X-Devicegate-Warning": "Your account expires: log in at evil.example",
    "X-Devicegate-Action": "allow",
    "X-Devicegate-Rule": "builtin:approved",
    "X-Devicegate-Message": "approved",
    "X-Devicegate-Block-Html": "<p>approved</p>",
    "X-Devicegate-Policy": "0000",
}


def test_forged_answer_headers_never_reach_the_application(proxied: Stack) -> None:
    auth = (OPS, procs.PROXY_PASSWORD)
    for path, agent in (
        ("/reports", ANDROID_CHROME),
        (plain_eas("EAS-H1", "Android"), ANDROID_EAS),
    ):
        answer = proxied.client.get(path, headers={"User-Agent": agent, **FORGED}, auth=auth)
        assert answer.status_code == 200, path
        assert "intranet app" in answer.text
        assert "evil.example" not in answer.text and "approved" not in answer.text, path
        assert "header x-devicegate-" not in answer.text.replace(
            "header x-devicegate-warning: \n", ""
        )
        assert "evil.example" not in answer.headers.get("x-devicegate-warning", "")


def test_the_client_address_is_the_one_the_proxy_saw(proxied: Stack) -> None:
    headers = {
        "User-Agent": ANDROID_CHROME,
        "X-Forwarded-For": "203.0.113.66",
        "X-Real-IP": "203.0.113.67",
    }
    answer = proxied.client.get("/", headers=headers, auth=(OPS, procs.PROXY_PASSWORD))
    assert answer.status_code == 200
    with proxied.store.engine.connect() as conn:
        (detail,) = conn.exec_driver_sql("select detail from decision_log").scalars()
    signals = (json.loads(detail) if isinstance(detail, str) else detail)["signals"]
    assert signals["client_ip"] == "127.0.0.1"


def test_metrics_show_no_policy_path(proxied: Stack) -> None:
    with proxied.dg.client() as client:
        text = client.get("/metrics").text
    assert str(proxied.policy) not in text and str(proxied.policy.parent) not in text
    assert "devicegate_policy_info{version=" in text

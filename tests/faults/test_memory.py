"""What the soak's memory figure found.

Every hold or release anywhere ends every replay (the device-state generation changes), and
each decision made again used to become a new template — a copy of its decision and sighting
rows kept by the server's id set and by the writer process until 200,000 had piled up. A
decision made again with the same content now reuses its template.

Every answer kept for replay names the snapshot it was decided under, and a reload ends every
replay; the kept answers used to stay until their cache filled (100,000 answers: minutes
under the soak's load, for ever on a quiet server), and each held its snapshot — the compiled
policy, the directory, the identification memo — alive: with a reload every second the soak's
`serve` grew by half its size in ten minutes. A reload now empties the answer caches."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

from devicegate.model import DeviceState
from tests.faults.population import (
    ANDROID_CHROME,
    IOS_MAIL,
    IPHONE_SAFARI,
    ops,
    policy_text,
    write_world,
)
from tests.server.conftest import TestClient, make_app


def test_decisions_made_again_reuse_their_templates(tmp_path: Path) -> None:
    policy, directory = write_world(tmp_path / "world", users=10)
    app = make_app(tmp_path, policy, directory)
    service = app.service
    with TestClient(app) as client:
        for round_no in range(50):
            for i in range(10):
                headers = {"X-Devicegate-User": ops(i), "User-Agent": ANDROID_CHROME.format(i)}
                assert client.get("/v1/forward-auth/web", headers=headers).status_code == 200
            # a hold on some other device: the generation changes, nothing is replayed
            service.state.put([("eas_device_id", f"ELSEWHERE{round_no}")], DeviceState())
    # 10 distinct decisions (and their sightings) → 10 templates, not 500
    assert len(service.log._sent) <= 10


def test_a_reload_lets_the_replaced_snapshot_go(tmp_path: Path) -> None:
    policy, directory = write_world(tmp_path / "world", users=10)
    app = make_app(tmp_path, policy, directory)
    service = app.service
    with TestClient(app) as client:
        # the snapshot `serve` starts with is frozen with the rest of startup (`gc.freeze`):
        # it stays, by design; the ones reloads replace must go
        policy.write_text(policy_text(marker=1), encoding="utf-8")
        service.reload()
        for marker in range(2, 5):
            replaced = weakref.ref(service.snapshot)
            for i in range(10):
                web = {"X-Devicegate-User": ops(i), "User-Agent": IPHONE_SAFARI.format(5, 5)}
                for _ in range(2):  # decided, then replayed: its answer is kept
                    assert client.get("/v1/forward-auth/web", headers=web).status_code == 403
                body = json.dumps({"login": ops(i), "remote": "192.0.2.7", "device_id": IOS_MAIL})
                answer = client.post("/v1/dovecot/auth-policy?command=allow", content=body)
                assert answer.status_code == 200, answer.text
            policy.write_text(policy_text(marker=marker), encoding="utf-8")
            service.reload()
            gc.collect()
            assert replaced() is None, f"the snapshot replaced by reload {marker} lives on"


def test_a_reload_empties_the_postfix_answers(tmp_path: Path) -> None:
    from devicegate.adapters.postfix import PostfixPolicyServer

    policy, directory = write_world(tmp_path / "world", users=10)
    app = make_app(tmp_path, policy, directory)
    server = PostfixPolicyServer(app.service, "127.0.0.1", 0)
    server.answers.put("someone", (0.0, 0.0, object(), "DUNNO"))  # type: ignore[arg-type]
    policy.write_text(policy_text(marker=1), encoding="utf-8")
    app.service.reload()
    assert server.answers.get("someone") is None

"""The decision corpus through `decide` and through the CLI, with identical results."""

from __future__ import annotations

import json

import pytest

from devicegate.cli import main
from devicegate.policy import decide
from devicegate.serialize import decision_json

from .loader import DEVICES, DIRECTORY, POLICY, Case, cases, check_expectation, corpus_snapshot

CASES = cases()
SNAPSHOT = corpus_snapshot()
FLAG = {
    "user_agent": "--user-agent",
    "activesync_query": "--activesync-query",
    "activesync_device_type": "--activesync-device-type",
    "activesync_device_id": "--activesync-device-id",
    "imap_id": "--imap-id",
    "mac": "--mac",
    "mdm_id": "--mdm-id",
    "tls_fingerprint": "--tls-fingerprint",
}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide(case: Case) -> None:
    check_expectation(case, decision_json(decide(SNAPSHOT, case.request())))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_matches_decide(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "check",
        "--policy",
        str(POLICY),
        "--directory",
        str(DIRECTORY),
        "--devices",
        str(DEVICES),
        "--user",
        case.user,
        "--resource",
        case.resource,
        "--at",
        case.at.isoformat(),
        "--json",
    ]
    for key, value in case.signals.items():
        argv += [FLAG[key], value]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    from_cli = json.loads(capsys.readouterr().out)
    check_expectation(case, from_cli)
    assert from_cli == decision_json(decide(SNAPSHOT, case.request()))

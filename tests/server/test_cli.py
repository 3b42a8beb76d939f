"""`devicegate devices list|release` against a store with a quarantine hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devicegate.cli import main
from devicegate.store import open_store


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code or 0)


def test_list_and_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    store = open_store(url)
    ref = store.hold([("activesync_id", "abc123")], resource="email", rule="spoof-hold", reason="r")
    assert run(["devices", "list", "--store", url]) == 0
    out = capsys.readouterr().out
    assert ref in out and "held: email" in out and "activesync_id=ABC123" in out
    assert run(["devices", "list", "--store", url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["devices"]
    assert [d["device_ref"] for d in listed] == [ref]
    assert run(["devices", "release", ref, "--store", url, "--by", "ops"]) == 0
    assert "released" in capsys.readouterr().out
    assert store.device_state([("activesync_id", "ABC123")]).held == frozenset()
    assert run(["devices", "release", ref, "--store", url]) == 1
    assert "no hold or verdict" in capsys.readouterr().err


def test_serve_refuses_a_bad_policy_before_listening(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nrules: [{id: x, effect: explode}]\n")
    code = run(["serve", "--policy", str(policy), "--store", f"sqlite:///{tmp_path}/s.db"])
    assert code != 0 and "error:" in capsys.readouterr().err


def test_serve_refuses_a_short_admin_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEVICEGATE_ADMIN_TOKEN", "short")
    code = run(["serve", "--policy", str(tmp_path / "missing.yaml")])
    assert code == 2 and "at least 16" in capsys.readouterr().err


DOC = Path(__file__).resolve().parents[2] / "docs" / "serve.md"


def test_every_serve_flag_and_metric_is_documented() -> None:
    import typer

    from devicegate.cli import app
    from devicegate.server.metrics import Metrics

    text = DOC.read_text(encoding="utf-8")
    command = typer.main.get_command(app)
    serve = command.commands["serve"]  # type: ignore[attr-defined]
    flags = [opt for param in serve.params for opt in param.opts if opt.startswith("--")]
    assert flags and not [f for f in flags if f not in text]
    names = {metric.name for metric in Metrics().registry.collect()}
    assert names and not [n for n in names if n not in text]


def test_serve_refuses_an_empty_replay_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    code = run(["serve", "--policy", str(policy), "--replay-cache", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "--replay-cache" in err and "Traceback" not in err

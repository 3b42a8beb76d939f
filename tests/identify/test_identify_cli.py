"""`devicegate identify`'s human output says what its JSON says (issue: iPad desktop mode
printed as `platform: macOS` while the JSON said the platform is ambiguous)."""

from __future__ import annotations

import json

import pytest

from devicegate.cli import main

IPAD_DESKTOP = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15"
)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code in (0, None)
    return capsys.readouterr().out


def _field(out: str, name: str) -> str:
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    raise AssertionError(f"no `{name}` line in:\n{out}")


def test_ambiguous_platform_is_printed_as_ambiguous(capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(_run(["identify", "--user-agent", IPAD_DESKTOP, "--json"], capsys))
    assert data["ambiguous"] == ["platform"]
    human = _run(["identify", "--user-agent", IPAD_DESKTOP], capsys)
    platform = _field(human, "platform")
    assert platform == "macOS or iPadOS (ambiguous)"
    assert platform.split(" (")[0].split(" or ") == data["claims"]["platform"]
    assert _field(human, "vendor") == data["vendor"] == "Apple"  # the vendor is certain
    # Every value the evidence claims is shown, not only the last one per attribute.
    assert "platform=macOS, platform=iPadOS" in human


def test_unambiguous_fields_print_their_value(capsys: pytest.CaptureFixture[str]) -> None:
    human = _run(["identify", "--user-agent", "Apple-iPhone14C2/2006.66"], capsys)
    assert _field(human, "platform") == "iOS"
    assert _field(human, "model") == "iPhone14,2"
    assert "ambiguous" not in human

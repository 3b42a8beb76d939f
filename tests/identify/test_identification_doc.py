"""docs/identification.md documents every User-Agent rule by the name its evidence carries."""

from __future__ import annotations

from pathlib import Path

from devicegate.identify import apple_agents, useragent

DOC = Path(__file__).resolve().parents[2] / "docs" / "identification.md"


def test_every_user_agent_rule_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = [name for name, _ in useragent.RULES] + [name for name, _ in apple_agents.RULES]
    names += ["ua-parser", "sailfish-family", "linux-mail", "linux-distribution"]
    missing = [n for n in names if f"`{n}`" not in text and f"`{n}-" not in text]
    assert not missing, f"rules missing from {DOC.name}: {missing}"

"""Findings about a policy: errors that stop it loading, and lint warnings that do not.

Every finding names the file, line and field it is about, says what was expected, and
offers a hint where one exists, in the format `file:line: field: message (hint: …)`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Issue:
    severity: Severity
    file: str
    line: int
    field: str
    message: str
    hint: str | None = None
    code: str = ""

    def format(self) -> str:
        text = f"{self.file}:{self.line}: {self.field}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def as_json(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "hint": self.hint,
            "code": self.code,
        }


def did_you_mean(value: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean …" hint for a misspelt name, or None. Case is ignored in the
    comparison (`andriod` is close to `Android`); the hint keeps the candidate's spelling."""
    spelling: dict[str, str] = {}
    for candidate in candidates:
        spelling.setdefault(candidate.casefold(), candidate)
    matches = difflib.get_close_matches(value.casefold(), list(spelling), n=1, cutoff=0.6)
    return f"did you mean `{spelling[matches[0]]}`?" if matches else None


def sort_issues(issues: Iterable[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda i: (i.severity.rank, i.file, i.line, i.field))

"""Policy as code: load (with file:line errors), validate and lint, compile, decide, explain."""

from devicegate.policy.compile import Snapshot, compile_policy
from devicegate.policy.diagnostics import Issue, Severity
from devicegate.policy.engine import decide, explain
from devicegate.policy.load import LoadedPolicy, check_policy, load_policy
from devicegate.policy.schema import json_schema

__all__ = [
    "Issue",
    "LoadedPolicy",
    "Severity",
    "Snapshot",
    "check_policy",
    "compile_policy",
    "decide",
    "explain",
    "json_schema",
    "load_policy",
]

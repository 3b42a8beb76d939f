"""YAML reading that remembers where every value came from.

PyYAML's composed node tree carries line marks; we build plain Python values from it while
recording the line of each path (`("rules", 0, "scope", "units", 1) -> 12`), so that schema
errors found later can still point at the line the user must fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from devicegate.policy.diagnostics import Issue, Severity

Path = tuple[str | int, ...]
MAX_POLICY_BYTES = 16 * 1024 * 1024


@dataclass
class SourceMap:
    """Lines of every key/item path in one YAML document."""

    file: str
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """The line of `path`, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            line = self.lines.get(probe)
            if line is not None:
                return line
            probe = probe[:-1]
        return self.lines.get((), 1)


class YamlProblem(Exception):
    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.format())
        self.issue = issue


def _build(
    node: yaml.Node, path: Path, source: SourceMap, loader: yaml.SafeLoader, depth: int
) -> object:
    if depth > 64:
        raise _problem(source, node, path, "the document nests deeper than 64 levels")
    source.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool) or isinstance(key, bool):
                raise _problem(source, key_node, path, "mapping keys must be plain names")
            key = str(key)
            if key in result:
                raise _problem(source, key_node, (*path, key), f"duplicate key `{key}`")
            child = (*path, key)
            source.lines[child] = key_node.start_mark.line + 1
            result[key] = _build(value_node, child, source, loader, depth + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, index), source, loader, depth + 1)
            for index, item in enumerate(node.value)
        ]
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:
        # PyYAML's constructors raise these for e.g. a date such as 2023-02-30.
        raise _problem(source, node, path, f"invalid value `{node.value}`: {exc}") from None


def _problem(source: SourceMap, node: yaml.Node, path: Path, message: str) -> YamlProblem:
    field_name = format_path(path) or "(document)"
    return YamlProblem(
        Issue(Severity.ERROR, source.file, node.start_mark.line + 1, field_name, message)
    )


def format_path(path: Path) -> str:
    """`("rules", 0, "scope")` → `rules[0].scope`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def read_yaml(text: str, file: str) -> tuple[object, SourceMap]:
    """Parse one YAML document with line tracking. Raises YamlProblem with file:line."""
    source = SourceMap(file)
    if len(text) > MAX_POLICY_BYTES:
        raise YamlProblem(
            Issue(Severity.ERROR, file, 1, "(document)", "the file is larger than 16 MiB")
        )
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:  # the reader rejects control characters up front
        raise YamlProblem(
            Issue(Severity.ERROR, file, 1, "(document)", f"invalid YAML: {exc}".replace("\n", " "))
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, source
        return _build(node, (), source, loader, 0), source
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        reason = exc.problem or exc.context or "invalid YAML"
        raise YamlProblem(
            Issue(Severity.ERROR, file, line, "(document)", f"invalid YAML: {reason}")
        ) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(
            Issue(Severity.ERROR, file, 1, "(document)", f"invalid YAML: {exc}")
        ) from None
    except (ValueError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise these for e.g. a date like 2023-02-30.
        raise YamlProblem(
            Issue(Severity.ERROR, file, 1, "(document)", f"invalid value: {exc}")
        ) from None
    finally:
        loader.dispose()

"""Load policy files: parse with line numbers, check the schema, merge, check cross-references.

`load_policy` is the API mode: it raises `PolicyError` carrying every error found (the first
in its message). `check_policy` is the lint mode behind `devicegate validate`: it returns all
findings, errors and warnings, ranked by severity. A policy with any error is never returned
for use, so an invalid policy can never replace a valid one.
"""

from __future__ import annotations

import hashlib
import json
import re
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path as FsPath

from pydantic import BaseModel, ValidationError

from devicegate.directory import Directory
from devicegate.errors import PolicyError
from devicegate.inventory import Inventory
from devicegate.policy.diagnostics import Issue, Severity, did_you_mean, sort_issues
from devicegate.policy.schema import Policy, ResourceSpec
from devicegate.policy.yamlsource import Path, SourceMap, YamlProblem, format_path, read_yaml


@dataclass(frozen=True, slots=True)
class Located:
    """Where an item of the merged policy came from."""

    file: str
    source: SourceMap
    path: Path

    def line(self, *sub: str | int) -> int:
        return self.source.line_of((*self.path, *sub))


@dataclass(frozen=True)
class LoadedPolicy:
    """A merged, schema-valid policy with the origin of each rule and exception."""

    policy: Policy
    files: tuple[str, ...]
    version: str
    rule_origins: tuple[Located, ...]
    exception_origins: tuple[Located, ...]
    top: Located
    #: (`vendors` or `platforms`, the name, where it was declared), for every declaration.
    declared: tuple[tuple[str, str, Located], ...] = ()
    #: where a file sets `unknown_user` (None: every file left it at its default)
    unknown_user_set: Located | None = None

    def where_rule(self, index: int, *sub: str | int) -> tuple[str, int]:
        origin = self.rule_origins[index]
        return origin.file, origin.line(*sub)


def _pydantic_issues(exc: ValidationError, source: SourceMap, base: Path) -> list[Issue]:
    issues = []
    seen: set[Path] = set()
    for error in exc.errors():
        # Drop pydantic's union-member tags (`date`, `datetime`, `list[str]`) from the path.
        loc: Path = tuple(
            part
            for part in error["loc"]
            if isinstance(part, int) or (isinstance(part, str) and part not in _TYPE_TAGS)
        )
        if loc in seen:
            continue
        seen.add(loc)
        # pydantic reports aliases' python names; show what the user typed.
        loc = tuple("from" if part == "from_" else part for part in loc)
        path = (*base, *loc)
        hint = None
        message = error["msg"]
        if error["type"] == "extra_forbidden" and loc:
            unknown = str(loc[-1])
            message = f"unknown field `{unknown}`"
            hint = did_you_mean(unknown, _fields_at(loc[:-1]))
        elif error["type"] == "missing":
            message = "this field is required"
        elif error["type"].startswith(("date", "datetime")):
            message = f"expected a date (YYYY-MM-DD) or an ISO date-time, got `{error['input']}`"
        elif error["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        elif error["type"] in ("enum", "literal_error"):
            allowed = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
            message = f"`{error['input']}` is not one of {', '.join(allowed)}"
            hint = did_you_mean(str(error["input"]), allowed)
        elif "input" in error and not isinstance(error["input"], dict | list):
            message = f"{message}, got `{error['input']}`"
        issues.append(
            Issue(
                Severity.ERROR,
                source.file,
                source.line_of(path),
                format_path(path) or "(document)",
                message,
                hint,
                "schema",
            )
        )
    return issues


_TYPE_TAGS = {"date", "datetime", "str", "int", "bool", "float", "list[str]", "none"}


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `list[Rule]` or `Scope | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _fields_at(loc: Path) -> list[str]:
    """Field names valid at `loc` (for "did you mean"), walking the schema models."""
    model: type[BaseModel] = Policy
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get("from_" if part == "from" else part)
        found = _model_in(field.annotation) if field is not None else None
        if found is None:
            return []
        model = found
    return [f.alias or name for name, f in model.model_fields.items()]


def _parse_file(path: str) -> tuple[Policy | None, SourceMap | None, list[Issue]]:
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None, [Issue(Severity.ERROR, path, 0, "(file)", "no such file")]
    except IsADirectoryError:
        return None, None, [Issue(Severity.ERROR, path, 0, "(file)", "is a directory")]
    except UnicodeDecodeError:
        return None, None, [Issue(Severity.ERROR, path, 1, "(file)", "not UTF-8 text")]
    except OSError as exc:
        return None, None, [Issue(Severity.ERROR, path, 0, "(file)", exc.strerror or str(exc))]
    try:
        data, source = read_yaml(text, path)
    except YamlProblem as problem:
        return None, None, [problem.issue]
    if not isinstance(data, dict):
        return (
            None,
            source,
            [
                Issue(
                    Severity.ERROR,
                    path,
                    1,
                    "(document)",
                    "a policy file is a mapping",
                    "start with `timezone:` and `rules:`",
                )
            ],
        )
    try:
        return Policy.model_validate(data), source, []
    except ValidationError as exc:
        return None, source, _pydantic_issues(exc, source, ())


def _merge(parsed: Sequence[tuple[str, Policy, SourceMap]]) -> tuple[LoadedPolicy, list[Issue]]:
    issues: list[Issue] = []
    first_file, first, first_source = parsed[0]
    timezone = first.timezone
    units: list[str] = []
    resources: dict[str, ResourceSpec] = {}
    rules = []
    exceptions = []
    rule_origins: list[Located] = []
    exception_origins: list[Located] = []
    unknown_user = first.unknown_user
    login_domains: dict[str, str] = {}
    names = []
    vocabulary: dict[str, list[str]] = {"vendors": [], "platforms": []}
    declared: list[tuple[str, str, Located]] = []
    for file, policy, source in parsed:
        if policy.timezone != timezone and "timezone" in policy.model_fields_set:
            issues.append(
                Issue(
                    Severity.ERROR,
                    file,
                    source.line_of(("timezone",)),
                    "timezone",
                    f"`{policy.timezone}` differs from `{timezone}` in {first_file}",
                    "give one timezone, or set `timezone` on individual rules",
                    "merge",
                )
            )
        units.extend(u for u in policy.units if u not in units)
        for name, spec in policy.resources.items():
            if name in resources and resources[name] != spec:
                issues.append(
                    Issue(
                        Severity.ERROR,
                        file,
                        source.line_of(("resources", name)),
                        f"resources.{name}",
                        "declared differently in two files",
                        None,
                        "merge",
                    )
                )
            resources[name] = spec
        for index, rule in enumerate(policy.rules):
            rules.append(rule)
            rule_origins.append(Located(file, source, ("rules", index)))
        for index, exc in enumerate(policy.exceptions):
            exceptions.append(exc)
            exception_origins.append(Located(file, source, ("exceptions", index)))
        for domain, template in policy.login_domains.items():
            if login_domains.get(domain.casefold(), template) != template:
                issues.append(
                    Issue(
                        Severity.ERROR,
                        file,
                        source.line_of(("login_domains", domain)),
                        f"login_domains.{domain}",
                        "mapped differently in two files",
                        None,
                        "merge",
                    )
                )
            login_domains[domain.casefold()] = template
        for attribute, merged_names in vocabulary.items():
            for index, name in enumerate(getattr(policy, attribute)):
                declared.append((attribute, name, Located(file, source, (attribute, index))))
                if name not in merged_names:
                    merged_names.append(name)
        if policy.name:
            names.append(policy.name)
        if policy.unknown_user != "allow":
            unknown_user = policy.unknown_user
    merged = Policy.model_validate(
        {
            "version": 1,
            "name": " + ".join(names),
            "timezone": timezone,
            "units": units,
            "resources": {k: v.model_dump() for k, v in resources.items()},
            **vocabulary,
            "unknown_user": unknown_user,
            "login_domains": login_domains,
            "compromised_message": first.compromised_message,
            "rules": [r.model_dump(by_alias=True, exclude_unset=True) for r in rules],
            "exceptions": [e.model_dump(by_alias=True, exclude_unset=True) for e in exceptions],
        }
    )
    dumped = merged.model_dump(mode="json", by_alias=True)
    for attribute, merged_names in vocabulary.items():
        if not merged_names:  # absent and empty hash alike: adding the field changed no version
            del dumped[attribute]
    _drop_unset_later_fields(dumped)
    canonical = json.dumps(dumped, sort_keys=True)
    version = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    loaded = LoadedPolicy(
        policy=merged,
        files=tuple(f for f, _, _ in parsed),
        version=version,
        rule_origins=tuple(rule_origins),
        exception_origins=tuple(exception_origins),
        top=Located(first_file, first_source, ()),
        declared=tuple(declared),
        unknown_user_set=next(
            (
                Located(file, source, ())
                for file, policy, source in parsed
                if "unknown_user" in policy.model_fields_set
            ),
            None,
        ),
    )
    return loaded, issues


def check_policy(
    paths: Iterable[str | FsPath],
    *,
    directory: Directory | None = None,
    inventory: Inventory | None = None,
    now: datetime | None = None,
    lint: bool = True,
) -> tuple[LoadedPolicy | None, list[Issue]]:
    """Every finding about the given policy files, errors first. The policy is returned only
    when it has no error.

    This is the one path from files to a policy: `load_policy` (and through it `check`,
    `serve`, a reload, `impact`, `audit`, `notify`) calls it with `lint=False`, so whatever
    `validate` calls an error stops every command alike, with the same `file:line`.

    Units: those the policy declares under `units:` (with their ancestors) are the known
    ones; a policy that declares none takes the directory's. With `lint`, groups, users and
    devices the policy names are checked against `directory` and `inventory` when given."""
    from devicegate.policy.validate import cross_check, lint_policy

    files = [str(p) for p in paths]
    if not files:
        raise PolicyError("no policy file given", hint="pass one or more YAML files")
    issues: list[Issue] = []
    parsed: list[tuple[str, Policy, SourceMap]] = []
    for file in files:
        policy, source, found = _parse_file(file)
        issues.extend(found)
        if policy is not None and source is not None:
            parsed.append((file, policy, source))
    if issues or not parsed:
        return None, sort_issues(issues)
    loaded, merge_issues = _merge(parsed)
    issues.extend(merge_issues)
    directory_units = directory.units() if directory is not None else None
    issues.extend(cross_check(loaded, None if loaded.policy.units else directory_units))
    if lint:
        issues.extend(lint_policy(loaded, now=now, directory=directory, inventory=inventory))
    if any(i.severity is Severity.ERROR for i in issues):
        return None, sort_issues(issues)
    return loaded, sort_issues(issues)


def load_policy(
    paths: Iterable[str | FsPath], *, directory: Directory | None = None
) -> LoadedPolicy:
    """Load for use: raise `PolicyError` with every error if the policy is invalid."""
    loaded, issues = check_policy(paths, directory=directory, lint=False)
    errors = [i for i in issues if i.severity is Severity.ERROR]
    if loaded is None or errors:
        first = errors[0]
        more = (
            f" (and {len(errors) - 1} more error(s); run `devicegate validate`)"
            if len(errors) > 1
            else ""
        )
        raise PolicyError(first.format() + more, issues=tuple(errors), hint=None)
    return loaded


#: fields added to the schema after 0.1.0, hashed only when a policy sets them: a policy file
#: that does not use them keeps the version it had, so an upgrade alone starts no new version
#: in the decision log, the reports or the audit caches
LATER_FIELDS = {"exceptions": ("notice",), "conditions": ("mdm_threat",)}


def _drop_unset_later_fields(dumped: dict[str, typing.Any]) -> None:
    for exception in dumped.get("exceptions", ()):
        for name in LATER_FIELDS["exceptions"]:
            if exception.get(name) is None:
                exception.pop(name, None)

    def conditions(value: object) -> None:
        if isinstance(value, dict):
            if "spoofing_suspected" in value:  # a Conditions object
                for name in LATER_FIELDS["conditions"]:
                    if value.get(name) is None:
                        value.pop(name, None)
            for item in value.values():
                conditions(item)
        elif isinstance(value, list):
            for item in value:
                conditions(item)

    conditions(dumped.get("rules", ()))

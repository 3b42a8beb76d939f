"""The policy file's schema, as pydantic models (exported as JSON Schema by `devicegate schema`).

These models check *shape*: types, required fields, allowed values, unknown keys. Facts that
need the whole policy (does this unit exist, is this rule id unique) are checked afterwards by
`policy.validate`, so every error can still name its file and line.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from devicegate.model import DeviceKind, Ownership

BUILTIN_RESOURCES = ("email", "web", "vpn", "wifi", "messaging", "files")
ALL_RESOURCES = "all"
RULE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
UNIT_PATH = r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$"

_DURATION = re.compile(r"^\s*(\d+)\s*(w|d|h|m)\s*$")
_DURATION_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """`14d`, `2w`, `36h`, `90m` → timedelta. Kept tiny and strict on purpose."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"`{text}` is not a duration; write e.g. 14d, 2w or 36h")
    try:
        return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:  # more days than `timedelta` holds (999,999,999)
        raise ValueError(f"`{text.strip()}` is too long a duration") from None


#: A vendor or platform name a policy declares (`vendors:`, `platforms:`).
DeclaredName = Annotated[str, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ScopeExclude(_Strict):
    units: list[Annotated[str, Field(pattern=UNIT_PATH)]] = []
    groups: list[str] = []
    users: list[str] = []


class Scope(_Strict):
    """Who a rule covers: the union of units (with their subtrees), groups and users, minus
    `exclude`. An empty scope covers everyone in the directory."""

    units: list[Annotated[str, Field(pattern=UNIT_PATH)]] = []
    groups: list[str] = []
    users: list[str] = []
    exclude: ScopeExclude = ScopeExclude()


class DeviceCondition(_Strict):
    """Conditions on the device profile; all given fields must hold (AND); lists are OR.

    Strings compare case-insensitively; `model` entries are globs (`iPhone*`); `os_version`
    is a version range such as `>=16, <17.2`.
    """

    vendor: list[str] | None = None
    platform: list[str] | None = None
    model: list[str] | None = None
    os_version: str | None = None
    kind: list[DeviceKind] | None = None
    ownership: list[Ownership] | None = None
    managed: bool | None = None
    attested: bool | None = None
    compromised: bool | None = None
    spoofing_suspected: bool | None = None
    #: the MDM reports a jailbreak or threat for the device (attested inventory data; a
    #: device the inventory does not know, or whose MDM says nothing, is unknown here)
    mdm_threat: bool | None = None

    @field_validator("os_version")
    @classmethod
    def _range(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                SpecifierSet(value)
            except InvalidSpecifier:
                raise ValueError(
                    f"`{value}` is not a version range; write e.g. `>=16, <17`"
                ) from None
        return value

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)


_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


def _date_text(value: object) -> object:
    """Keep a date written as text a date: `"2023-07-31"` (quoted, or from JSON) means the
    same as the bare YAML date, not an instant at midnight — a date-only `until` includes
    that whole day, so the difference matters."""
    if isinstance(value, str) and _DATE_ONLY.match(value):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"`{value.strip()}` is not a date") from None
    return value


DateOrTime = Annotated[datetime | date, BeforeValidator(_date_text)]


def _duration_text(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, AfterValidator(_duration_text)]


class Rule(_Strict):
    id: Annotated[str, Field(pattern=RULE_ID)]
    description: str = ""
    scope: Scope = Scope()
    when: DeviceCondition | None = Field(
        default=None, description="deny-list: the rule applies to devices that match"
    )
    only: DeviceCondition | None = Field(
        default=None,
        description="allow-list: the rule applies to every device that does NOT match",
    )
    resources: list[str] = Field(min_length=1)
    from_: DateOrTime = Field(alias="from")
    until: DateOrTime | None = None
    timezone: str | None = None
    notice: Duration | None = None
    effect: Literal["block", "quarantine", "warn", "allow"] = "block"
    mode: Literal["enforce", "report-only"] = "enforce"
    on_unidentified: Literal["allow", "warn", "block"] | None = None
    message: str = ""

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return _check_timezone(value) if value is not None else None

    @model_validator(mode="after")
    def _device_condition(self) -> Rule:
        if self.when is None and self.only is None:
            raise ValueError("a rule needs `when` (deny-list) or `only` (allow-list)")
        return self


class PolicyException(_Strict):
    """Lifts the named rules for one user or one device until a mandatory date."""

    user: str | None = None
    device: str | None = None
    rules: list[Annotated[str, Field(pattern=RULE_ID)]] = Field(min_length=1)
    from_: DateOrTime | None = Field(default=None, alias="from")
    until: DateOrTime
    notice: Duration | None = Field(
        default=None,
        description="warn during this period before `until` (default: each lifted rule's notice)",
    )
    reason: str = Field(min_length=1)
    approver: str | None = None

    @model_validator(mode="after")
    def _subject(self) -> PolicyException:
        if not self.user and not self.device:
            raise ValueError("an exception names a `user` or a `device`")
        return self


class ResourceSpec(_Strict):
    description: str = ""
    default: Literal["allow", "warn", "block"] = "allow"


class Policy(_Strict):
    """One policy file. Several files merge (units, resources, rules, exceptions add up)."""

    version: Literal[1] = 1
    name: str = ""
    timezone: str = "UTC"
    units: list[Annotated[str, Field(pattern=UNIT_PATH)]] = []
    resources: dict[str, ResourceSpec] = {}
    vendors: list[DeclaredName] = Field(
        default=[],
        description="device makers identification does not know yet, accepted in `vendor:`",
    )
    platforms: list[DeclaredName] = Field(
        default=[],
        description="platforms identification does not know yet, accepted in `platform:`",
    )
    unknown_user: Literal["allow", "block"] = Field(
        default="allow", description="what to do for a user the directory does not know"
    )
    login_domains: dict[str, str] = Field(
        default={},
        description="DOMAIN\\login and login@DOMAIN forms: each domain (NetBIOS name or UPN "
        "suffix) mapped to the directory alias it stands for, e.g. `{login}@minfin.example`",
    )
    compromised_message: str = (
        "This device is quarantined after a security check. Contact the IT security team."
    )
    rules: list[Rule] = []
    exceptions: list[PolicyException] = []

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("login_domains")
    @classmethod
    def _domains(cls, value: dict[str, str]) -> dict[str, str]:
        for domain, template in value.items():
            if not domain.strip() or any(ch in domain for ch in "\\@ \t"):
                raise ValueError(f"`{domain}` is not a domain name (no `\\`, `@` or spaces)")
            if template.count("{login}") != 1:
                raise ValueError(
                    f"the alias for `{domain}` must contain `{{login}}` exactly once, "
                    "as in `{login}@minfin.example`"
                )
        return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"`{value}` is not an IANA time zone such as Europe/Moscow") from None
    return value


def json_schema() -> dict[str, object]:
    """The JSON Schema editors use for completion (by alias: `from`, not `from_`)."""
    schema = Policy.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "devicegate policy"
    return schema

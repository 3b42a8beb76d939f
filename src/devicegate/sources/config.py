"""The source YAML: where a directory or an inventory lives and how its entries map.

One small file per source (`sources/ldap.yaml`, `sources/intune.yaml`), validated before use:
an unknown key, a wrong type or a missing field is an error naming the file, the line and the
field. Secrets (a bind password, a client secret, an API token) are never written in the file
and never taken from the command line: the file names an environment variable (`{env: NAME}`)
or a file (`{file: /run/secrets/x}`) and the value is read when the source connects, held as a
`SecretStr` (which prints as `**********`) and never logged.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from devicegate.errors import SourceConfigError
from devicegate.policy.schema import parse_duration
from devicegate.policy.yamlsource import YamlProblem, format_path, read_yaml

#: The `kind:` values: one directory source, three inventory sources.
DIRECTORY_KINDS = ("ldap",)
INVENTORY_KINDS = ("intune", "fleet", "jamf")
#: A secret file larger than this is not a secret but a mistake (a certificate bundle, say).
MAX_SECRET_BYTES = 64 * 1024
#: Removal share the guard allows unless the source or `--max-removal` says otherwise.
DEFAULT_MAX_REMOVAL = 0.10


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret(_Strict):
    """Where a secret is read from: exactly one of an environment variable or a file."""

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of `env: VARIABLE` or `file: PATH`")
        return self

    def where(self) -> str:
        return f"environment variable `{self.env}`" if self.env else f"file `{self.file}`"

    def read(self) -> SecretStr:
        """The secret's value; an error names where it was looked for, never the value."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise SourceConfigError(
                    f"the secret's environment variable `{self.env}` is not set or empty",
                    hint=f"export {self.env}=… in the service's environment",
                )
            return SecretStr(value)
        assert self.file is not None
        try:
            with self.file.open("rb") as handle:
                data = handle.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise SourceConfigError(
                f"cannot read the secret file `{self.file}`: {exc.strerror}"
            ) from None
        if len(data) > MAX_SECRET_BYTES:
            raise SourceConfigError(f"the secret file `{self.file}` is larger than 64 KiB")
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise SourceConfigError(f"the secret file `{self.file}` is not UTF-8 text") from None
        if not text:
            raise SourceConfigError(f"the secret file `{self.file}` is empty")
        return SecretStr(text)


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip()
        seconds = text[:-1].strip()
        if text.endswith("s") and seconds.isascii() and seconds.isdigit() and int(seconds) > 0:
            if len(seconds) > 12:  # past 31,000 years: more than `timedelta` holds
                raise ValueError(f"`{value}` is too long a duration")
            return timedelta(seconds=int(seconds))
        duration = parse_duration(text)
        if duration.total_seconds() > 0:
            return duration
    raise ValueError(f"`{value}` is not a duration; write e.g. 90s, 5m, 1h or 1d")


Duration = Annotated[timedelta, Field(description="90s, 5m, 1h, 1d, or seconds")]


class Refresh(_Strict):
    """How often `serve` and `console` re-read the source. `delta` applies to LDAP only."""

    delta: Duration | None = None
    full: Duration | None = None

    @field_validator("delta", "full", mode="before")
    @classmethod
    def _parse(cls, value: object) -> timedelta | None:
        return None if value is None else _duration(value)


class FullRefresh(Refresh):
    """An MDM's intervals: full passes only (no delta API common to the three MDMs)."""

    @model_validator(mode="after")
    def _no_delta(self) -> FullRefresh:
        if self.delta is not None:
            raise ValueError("an MDM source is read whole: give `full`, not `delta`")
        return self


class Guard(_Strict):
    """The share of users or devices one sync may remove before it is refused."""

    max_removal: float = Field(default=DEFAULT_MAX_REMOVAL, ge=0.0, le=1.0)


class _Source(_Strict):
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    timeout: float = Field(default=30.0, gt=0, le=600)
    guard: Guard = Guard()


# ---- LDAP -----------------------------------------------------------------------------------


class LdapUsers(_Strict):
    base: str = Field(min_length=1)
    filter: str | None = None
    scope: Literal["sub", "one"] = "sub"
    login: str | None = None
    email: str | None = None
    name: str | None = None


class LdapUnit(_Strict):
    """The unit of a user: `attribute` when the entry has it, else the entry's `ou=` path
    below `ou_base` (root first), rewritten by the longest matching prefix in `map`."""

    attribute: str | None = None
    ou_base: str | None = None
    map: dict[str, str] = {}

    @model_validator(mode="after")
    def _some(self) -> LdapUnit:
        if self.attribute is None and self.ou_base is None:
            raise ValueError("give `attribute`, `ou_base`, or both")
        return self


class LdapGroups(_Strict):
    base: str | None = None
    filter: str | None = None
    name: str = "cn"
    member: str | None = None
    #: auto: AD's LDAP_MATCHING_RULE_IN_CHAIN on Active Directory, else a client-side walk
    nested: Literal["auto", "in_chain", "walk", "none"] = "auto"


class LdapDisabled(_Strict):
    """A disabled account: on AD `userAccountControl` bit 0x0002; elsewhere `attribute`
    present (with any value, or with one of `values`, compared case-insensitively)."""

    attribute: str | None = None
    values: list[str] | None = None


class LdapSource(_Source):
    kind: Literal["ldap"]
    url: str = Field(pattern=r"^(ldap|ldaps)://[^\s]+$")
    start_tls: bool = False
    ca_file: Path | None = None
    bind_dn: str | None = None
    password: Secret | None = None
    server: Literal["auto", "ad", "openldap"] = "auto"
    page_size: int = Field(default=500, ge=1, le=100_000)
    users: LdapUsers
    unit: LdapUnit
    groups: LdapGroups = LdapGroups()
    disabled: LdapDisabled = LdapDisabled()
    refresh: Refresh = Refresh()
    #: how far back a modifyTimestamp delta re-reads, for clock skew and changes made while
    #: the previous pass ran (uSNChanged needs none)
    delta_overlap: Duration = timedelta(minutes=2)

    @field_validator("delta_overlap", mode="before")
    @classmethod
    def _overlap(cls, value: object) -> timedelta:
        return _duration(value)

    @model_validator(mode="after")
    def _checks(self) -> LdapSource:
        if self.start_tls and self.url.startswith("ldaps://"):
            raise ValueError("`start_tls` is for ldap:// URLs; ldaps:// is TLS already")
        if (self.bind_dn is None) != (self.password is None):
            raise ValueError("give `bind_dn` and `password` together (or neither: anonymous)")
        return self


# ---- MDM ------------------------------------------------------------------------------------


class IntuneSource(_Source):
    kind: Literal["intune"]
    tenant: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.-]+$")
    client_id: str = Field(min_length=1)
    client_secret: Secret
    graph_url: str = Field(default="https://graph.microsoft.com/v1.0", pattern=r"^https?://")
    token_url: str = Field(
        default="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        pattern=r"^https?://",
    )
    ca_file: Path | None = None
    page_size: int = Field(default=999, ge=1, le=999)
    refresh: FullRefresh = FullRefresh()


class FleetSource(_Source):
    kind: Literal["fleet"]
    url: str = Field(pattern=r"^https?://")
    token: Secret
    ca_file: Path | None = None
    page_size: int = Field(default=500, ge=1, le=10_000)
    refresh: FullRefresh = FullRefresh()


class JamfSource(_Source):
    kind: Literal["jamf"]
    url: str = Field(pattern=r"^https?://")
    client_id: str = Field(min_length=1)
    client_secret: Secret
    ca_file: Path | None = None
    page_size: int = Field(default=200, ge=1, le=2000)
    refresh: FullRefresh = FullRefresh()


SourceConfig = LdapSource | IntuneSource | FleetSource | JamfSource
MdmConfig = IntuneSource | FleetSource | JamfSource

_MODELS: dict[str, type[LdapSource] | type[MdmConfig]] = {
    "ldap": LdapSource,
    "intune": IntuneSource,
    "fleet": FleetSource,
    "jamf": JamfSource,
}

#: Refresh intervals when the file gives none: LDAP deltas every 5 minutes and a full pass
#: hourly; an MDM (no delta API common to all three) a full pass every 15 minutes.
DEFAULT_REFRESH = {
    "ldap": Refresh(delta=timedelta(minutes=5), full=timedelta(hours=1)),
    "mdm": Refresh(full=timedelta(minutes=15)),
}


def refresh_of(config: SourceConfig) -> Refresh:
    """The effective intervals: the file's, else the defaults above."""
    default = DEFAULT_REFRESH["ldap" if isinstance(config, LdapSource) else "mdm"]
    return Refresh(
        delta=(config.refresh.delta or default.delta) if isinstance(config, LdapSource) else None,
        full=config.refresh.full or default.full,
    )


def source_name(config: SourceConfig, path: Path) -> str:
    """The name the store keeps the source's versions under: `name:`, else the file stem."""
    return config.name or path.stem


def load_source_config(path: str | Path) -> tuple[SourceConfig, str]:
    """Read and validate a source file; returns the config and the source's name."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceConfigError(f"no such source file `{path}`") from None
    except OSError as exc:
        raise SourceConfigError(f"cannot read source file `{path}`: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SourceConfigError(f"source file `{path}` is not UTF-8 text") from None
    try:
        data, lines = read_yaml(text, str(path))
    except YamlProblem as exc:
        raise SourceConfigError(exc.issue.format()) from None
    if not isinstance(data, dict):
        raise SourceConfigError(f"{path}:1: a source file is a mapping with `kind:` and its keys")
    kind = data.get("kind")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise SourceConfigError(
            f"{path}:{lines.line_of(('kind',))}: kind: unknown source kind `{kind}`",
            hint="kind: ldap, intune, fleet or jamf",
        )
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = tuple(first["loc"])
        field = format_path(tuple(p for p in where if isinstance(p, str | int))) or "(document)"
        line = lines.line_of(tuple(p for p in where if isinstance(p, str | int)))
        message = first["msg"].removeprefix("Value error, ")
        raise SourceConfigError(f"{path}:{line}: {field}: {message}") from None
    return config, source_name(config, path)


__all__ = [
    "DEFAULT_MAX_REMOVAL",
    "DIRECTORY_KINDS",
    "INVENTORY_KINDS",
    "FleetSource",
    "IntuneSource",
    "JamfSource",
    "LdapSource",
    "MdmConfig",
    "Refresh",
    "Secret",
    "SourceConfig",
    "load_source_config",
    "refresh_of",
    "source_name",
]

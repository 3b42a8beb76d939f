"""The parts of a source that need no server: the YAML, secrets, the stored form, the group
walk, the unit mapping, the guard, Retry-After."""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicegate.directory import User
from devicegate.errors import SourceConfigError, SourceError
from devicegate.inventory import InventoryDevice
from devicegate.model import Ownership
from devicegate.sources.config import Secret, load_source_config
from devicegate.sources.guard import diff, refusal
from devicegate.sources.ldapmap import UnitMapper, normalise_dn
from devicegate.sources.mdmhttp import retry_after
from devicegate.sources.state import (
    DirectoryState,
    GroupEntry,
    InventoryState,
    Rows,
    UserEntry,
    build_directory,
    decode,
    encode,
    group_cycles,
)

LDAP = """\
kind: ldap
url: ldaps://dc1.gov.example
bind_dn: cn=devicegate,dc=gov,dc=example
password: {env: DG_PW}
users: {base: "dc=gov,dc=example"}
unit: {ou_base: "dc=gov,dc=example"}
"""


def write(tmp_path: Path, text: str, name: str = "src.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_valid_file_and_its_defaults(tmp_path: Path) -> None:
    config, name = load_source_config(write(tmp_path, LDAP, "corp.yaml"))
    assert name == "corp" and config.kind == "ldap"
    assert config.guard.max_removal == 0.10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LDAP + "colour: blue\n", "src.yaml:7: colour: Extra inputs are not permitted"),
        (LDAP.replace("ldaps://", "http://"), "src.yaml:2: url: String should match pattern"),
        (LDAP + "start_tls: true\n", "`start_tls` is for ldap:// URLs"),
        (LDAP.replace("{env: DG_PW}", "{env: DG_PW, file: /x}"), "exactly one of"),
        (LDAP.replace("password: {env: DG_PW}\n", ""), "give `bind_dn` and `password` together"),
        ("kind: okta\n", "src.yaml:1: kind: unknown source kind `okta`"),
        ("- a\n- b\n", "a source file is a mapping"),
        (LDAP + "refresh: {delta: soon}\n", "is not a duration"),
        (LDAP + "refresh: {full: 99999999999999999999999s}\n", "is too long a duration"),
        (LDAP + "refresh: {full: 99999999999999999999999d}\n", "is too long a duration"),
        (LDAP + "refresh: {full: ²s}\n", "is not a duration"),
        (
            "kind: fleet\nurl: https://f.example\ntoken: {env: T}\nrefresh: {delta: 5m}\n",
            "src.yaml:4: refresh: an MDM source is read whole",
        ),
    ],
)
def test_invalid_files_name_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SourceConfigError) as caught:
        load_source_config(write(tmp_path, text))
    assert message in caught.value.one_line()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_hostile_source_files_give_config_errors_only(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(data)
    with contextlib.suppress(SourceConfigError):
        load_source_config(path)


def test_secrets_from_env_or_file_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DG_PW", "s3cret-value")
    value = Secret(env="DG_PW").read()
    assert value.get_secret_value() == "s3cret-value" and "s3cret" not in repr(value)
    (tmp_path / "pw").write_text("from-a-file\n")
    assert Secret(file=tmp_path / "pw").read().get_secret_value() == "from-a-file"
    monkeypatch.delenv("DG_PW")
    with pytest.raises(SourceConfigError, match="`DG_PW` is not set"):
        Secret(env="DG_PW").read()
    with pytest.raises(SourceConfigError, match="cannot read the secret file"):
        Secret(file=tmp_path / "missing").read()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SourceConfigError, match="is empty"):
        Secret(file=tmp_path / "empty").read()


def _state() -> DirectoryState:
    state = DirectoryState()
    for n, unit in enumerate(["gov/minfin", "gov/minfin", "rostec/cii"]):
        dn = f"uid=u{n},ou=x,dc=gov,dc=example"
        state.users[f"k{n}"] = UserEntry(f"k{n}", dn, f"u{n}", unit, f"u{n}@x.example")
    state.groups["g"] = GroupEntry(
        "g", "cn=g,dc=gov,dc=example", "g", (normalise_dn("uid=u0,ou=x,dc=gov,dc=example"),)
    )
    return state


def test_the_stored_form_round_trips_and_names_the_same_version() -> None:
    state = _state()
    again = decode(encode(state)[0])
    assert isinstance(again, DirectoryState) and again.users == state.users
    first, second = build_directory(state, "s"), build_directory(again, "s")
    assert encode(state)[1] == encode(again)[1]
    assert first.users == second.users
    assert first.get("u0") is not None and first.get("u0").groups == {"g"}  # type: ignore[union-attr]
    devices = InventoryState(
        [InventoryDevice("d1", ownership=Ownership.CORPORATE, mdm_threat="none", compliant=True)]
    )
    back = decode(encode(devices)[0])
    assert isinstance(back, InventoryState) and back.devices == devices.devices


@pytest.mark.parametrize(
    "blob", [b"", b"not zlib", zlib.compress(b"[1, 2]"), zlib.compress(b'{"format": 99}')]
)
def test_a_damaged_stored_version_is_an_error_not_an_empty_directory(blob: bytes) -> None:
    with pytest.raises(SourceError, match="cannot be read"):
        decode(blob)


def test_a_deep_nesting_and_a_cycle_end() -> None:
    state = DirectoryState()
    state.users["u"] = UserEntry("u", "uid=u,dc=x", "u", "gov")
    depth = 5000
    for n in range(depth):
        member = normalise_dn("uid=u,dc=x") if n == 0 else f"cn=g{n - 1},dc=x"
        state.groups[f"cn=g{n},dc=x"] = GroupEntry(
            f"cn=g{n},dc=x", f"cn=g{n},dc=x", f"g{n}", (member,)
        )
    # close the chain into a cycle
    state.groups["cn=g0,dc=x"] = GroupEntry(
        "cn=g0,dc=x", "cn=g0,dc=x", "g0", ("uid=u,dc=x", f"cn=g{depth - 1},dc=x")
    )
    directory = build_directory(state, "s")
    user = directory.get("u")
    assert user is not None and len(user.groups) == depth
    assert len(group_cycles(state.groups)) == 1


def test_ou_paths_map_by_the_longest_prefix() -> None:
    mapper = UnitMapper(
        "dc=gov,dc=example", {"Gov/Ministry of Finance": "gov/minfin", "Gov": "gov"}
    )
    assert mapper.unit("cn=a,ou=Budget Office,ou=Ministry of Finance,ou=Gov,dc=gov,dc=example") == (
        "gov/minfin/budget-office"
    )
    assert mapper.unit("cn=a,ou=Energy,ou=Gov,dc=gov,dc=example") == "gov/energy"
    assert mapper.unit("cn=a,ou=Sales\\, East,dc=gov,dc=example") is None  # `,` is no unit
    assert mapper.unit("cn=a,dc=other,dc=example") is None  # not below the base
    assert mapper.unit("not a dn") is None


def _dir(count: int) -> Rows:
    return Rows("directory", "s", users=tuple(User(f"u{n}", "gov") for n in range(count)))


def test_the_guard() -> None:
    assert refusal(diff(None, _dir(3)), 0.1) is None  # the first version
    assert refusal(diff(_dir(10), _dir(0)), 0.1) == "empty answer: the source returned no users"
    assert refusal(diff(_dir(10), _dir(9)), 0.1) is None  # exactly 10 %
    reason = refusal(diff(_dir(10), _dir(8)), 0.1)
    assert reason == "would remove 2 of 10 users (20.0% > the 10% allowed)"
    assert refusal(diff(_dir(10), _dir(8)), 0.25) is None
    devices = Rows("inventory", "s", devices=tuple(InventoryDevice(f"d{n}") for n in range(4)))
    assert refusal(diff(devices, Rows("inventory", "s")), 0.5) is not None


def test_a_move_and_a_group_change_are_named() -> None:
    old = Rows("directory", "s", users=(User("a", "gov/minfin", frozenset({"x"})),))
    new = Rows("directory", "s", users=(User("a", "gov/minpromtorg", frozenset({"y"})),))
    change = diff(old, new)
    assert change.moved == (("a", "gov/minfin", "gov/minpromtorg"),)
    assert change.groups == (("a", ("y",), ("x",)),)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after("7") == 7.0
    assert retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after("soon") is None and retry_after(None) is None
    assert retry_after("²") is None  # a digit to `str.isdigit`, not to float(): no crash


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    ["id", "uuid", "mobileDeviceId", "easDeviceId", "jailBroken", "managementAgent",
     "complianceState", "platform", "os_version", "mdm", "issues", "device_mapping",
     "general", "hardware", "security", "userAndLocation", "network", "wiFiMacAddress"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS | st.text(max_size=8), JSON, max_size=10))
def test_any_mdm_record_maps_or_is_skipped_never_raises(record: dict[str, object]) -> None:
    from devicegate.sources.mdm import fleet_device, intune_device, jamf_device

    for mapper in (intune_device, fleet_device, jamf_device):
        device = mapper(record)
        assert device is None or (device.device_id and len(device.device_id) <= 128)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=80),
    st.dictionaries(
        st.sampled_from(
            [
                "uid",
                "UID",
                "mail",
                "cn",
                "entryUUID",
                "devicegateUnit",
                "employeeType",
                "userAccountControl",
                "objectGUID",
            ]
        ),
        st.lists(st.binary(max_size=40), max_size=3),
        max_size=8,
    ),
)
def test_any_ldap_entry_maps_never_raises(dn: str, entry: dict[str, list[bytes]]) -> None:
    from devicegate.sources.config import LdapSource
    from devicegate.sources.ldapmap import flavour, fold, map_user

    config = LdapSource.model_validate(
        {
            "kind": "ldap",
            "url": "ldap://127.0.0.1",
            "users": {"base": "dc=gov,dc=example"},
            "unit": {"attribute": "devicegateUnit", "ou_base": "dc=gov,dc=example"},
            "disabled": {"attribute": "employeeType"},
        }
    )
    for server in ("openldap", "ad"):
        user = map_user(dn, fold(entry), config, flavour(config, server), UnitMapper(
            "dc=gov,dc=example", {"gov": "gov"}))  # fmt: skip
        assert user.unit is None or user.unit == user.unit.strip("/")


def test_membership_survives_another_spelling_of_the_dn() -> None:
    """A group lists its member in another, equivalent spelling (hex escape, case, spaces)."""
    state = DirectoryState()
    state.users["k"] = UserEntry("k", "CN=Smith\\2C John,OU=Budget,DC=gov,DC=example", "j", "gov")
    state.users["p"] = UserEntry("p", "uid=Plain , ou=Budget,dc=gov,dc=example", "p", "gov")
    member = normalise_dn("cn=smith\\, john,ou=budget,dc=gov,dc=example")
    plain = normalise_dn("UID=plain,OU=Budget,DC=gov,DC=example")
    state.groups["g"] = GroupEntry("g", "cn=g,dc=gov,dc=example", "g", (member, plain))
    directory = build_directory(state, "s")
    assert [directory.get(n).groups for n in ("j", "p")] == [{"g"}, {"g"}]  # type: ignore[union-attr]

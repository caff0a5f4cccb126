"""The consortium definition parser: the demo file, and one test per kind of mistake."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ledger.consortium.definition import (
    ROLES,
    ConsortiumDefinition,
    Organisation,
    load_definition,
    parse_definition,
)
from ledger.errors import ConfigError

DEMO = Path(__file__).resolve().parents[1] / "node_config" / "demo.toml"
SOURCE = "consortium.toml"


def org(org_id: str, role: str = "school", validator: bool = True, **extra: str) -> str:
    lines = [
        "[[organisations]]",
        f'id = "{org_id}"',
        f'name = "{org_id} 名称"',
        f'role = "{role}"',
        f"runs_validator = {'true' if validator else 'false'}",
    ]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def definition_text(
    *orgs: str, governors: str = '["bureau", "school-a"]', threshold: str = "1"
) -> str:
    if not orgs:
        orgs = (org("bureau", "bureau"), org("school-a"))
    header = f"governors = {governors}\nthreshold = {threshold}\n\n"
    return header + "\n".join(orgs)


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_definition(text, source=SOURCE)
    message = info.value.message
    assert message.startswith(f"{SOURCE}: ")
    assert "\n" not in message
    return message


# --- the demo consortium ------------------------------------------------------------------


def test_demo_definition() -> None:
    definition = load_definition(DEMO)
    assert isinstance(definition, ConsortiumDefinition)
    assert definition.ids == ("bureau", "school-a", "school-b", "partner", "auditor")
    assert [o.role for o in definition.organisations] == [
        "bureau", "school", "school", "partner", "auditor"
    ]
    assert definition.governors == ("bureau", "school-a", "school-b")
    assert definition.threshold == 2
    assert [o.id for o in definition.validators] == ["bureau", "school-a", "school-b", "partner"]
    assert len(definition.validators) >= 4  # QBFT tolerates one faulty validator from four
    bureau = definition.organisation("bureau")
    assert bureau.name.startswith("示范区教育局")
    assert bureau.rpc_port == 8545 and bureau.p2p_port == 30303
    assert bureau.host == "127.0.0.1"
    assert definition.organisation("auditor").runs_validator is False
    assert definition.source == str(DEMO)


def test_definition_is_frozen() -> None:
    definition = load_definition(DEMO)
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.threshold = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.organisations[0].role = "school"  # type: ignore[misc]


def test_minimal_definition_defaults() -> None:
    definition = parse_definition(definition_text(), source=SOURCE)
    assert definition.organisations == (
        Organisation("bureau", "bureau 名称", "bureau", True),
        Organisation("school-a", "school-a 名称", "school", True),
    )
    assert definition.name == ""
    assert definition.source == SOURCE
    with pytest.raises(KeyError):
        definition.organisation("nobody")


def test_every_role_is_accepted() -> None:
    orgs = [org("bureau", "bureau")] + [org(f"org-{role}", role) for role in ROLES]
    definition = parse_definition(definition_text(*orgs, governors='["bureau"]'), SOURCE)
    assert {o.role for o in definition.organisations} == set(ROLES)


def test_several_bureaus_are_allowed() -> None:
    text = definition_text(org("bureau", "bureau"), org("city-bureau", "bureau"),
                           governors='["bureau", "city-bureau"]', threshold="2")
    assert len(parse_definition(text, SOURCE).organisations) == 2


# --- mistakes -----------------------------------------------------------------------------


def test_unknown_role() -> None:
    text = definition_text(org("bureau", "bureau"), org("school-a", "teacher"))
    assert config_error(text) == (
        "consortium.toml: organisation 'school-a' has unknown role 'teacher' "
        "(expected one of bureau, school, partner, auditor)"
    )


def test_duplicate_id() -> None:
    text = definition_text(org("bureau", "bureau"), org("school-a"), org("school-a"))
    assert config_error(text) == (
        "consortium.toml: organisation id 'school-a' is used more than once"
    )


@pytest.mark.parametrize("bad_id", ["School-A", "a", "-school", "school_a", "x" * 41, "学校"])
def test_invalid_id(bad_id: str) -> None:
    text = definition_text(org("bureau", "bureau"), org(bad_id))
    message = config_error(text)
    assert f"organisation #2 has invalid id {bad_id!r}" in message


def test_id_of_40_characters_is_accepted() -> None:
    long_id = "s" + "-" * 38 + "9"
    text = definition_text(org("bureau", "bureau"), org(long_id), governors='["bureau"]')
    definition = parse_definition(text, SOURCE)
    assert definition.ids[1] == long_id


def test_missing_id() -> None:
    text = definition_text(org("bureau", "bureau"), '[[organisations]]\nname = "x"\n')
    assert config_error(text) == "consortium.toml: organisation #2 has no 'id'"


def test_no_bureau() -> None:
    text = definition_text(org("school-a"), org("school-b"), governors='["school-a"]')
    assert config_error(text) == (
        "consortium.toml: no organisation has role 'bureau' (at least one is required)"
    )


def test_unknown_governor() -> None:
    text = definition_text(governors='["bureau", "school-z"]')
    assert config_error(text) == (
        "consortium.toml: governor 'school-z' is not one of the organisations"
    )


def test_duplicate_governor() -> None:
    text = definition_text(governors='["bureau", "bureau"]')
    assert config_error(text) == "consortium.toml: governor 'bureau' is listed more than once"


def test_empty_governors() -> None:
    assert "'governors' is empty" in config_error(definition_text(governors="[]"))


def test_missing_governors() -> None:
    text = "threshold = 1\n" + org("bureau", "bureau")
    assert config_error(text).startswith("consortium.toml: missing 'governors'")


def test_governors_of_wrong_type() -> None:
    assert "'governors' must be an array of organisation ids" in config_error(
        definition_text(governors='"bureau"')
    )


@pytest.mark.parametrize("threshold", ["0", "3", "-1"])
def test_threshold_out_of_range(threshold: str) -> None:
    assert config_error(definition_text(threshold=threshold)) == (
        f"consortium.toml: threshold {threshold} is out of range "
        "(expected 1 to 2, the number of governors)"
    )


@pytest.mark.parametrize(("threshold", "kind"), [('"2"', "a string"), ("true", "a boolean"),
                                                 ("1.5", "a number")])
def test_threshold_of_wrong_type(threshold: str, kind: str) -> None:
    assert config_error(definition_text(threshold=threshold)) == (
        f"consortium.toml: 'threshold' must be an integer, not {kind}"
    )


def test_missing_threshold() -> None:
    text = 'governors = ["bureau"]\n' + org("bureau", "bureau")
    assert config_error(text).startswith("consortium.toml: missing 'threshold'")


def test_runs_validator_of_wrong_type() -> None:
    school = org("school-a").replace("runs_validator = true", 'runs_validator = "yes"')
    text = definition_text(org("bureau", "bureau"), school)
    assert config_error(text) == (
        "consortium.toml: organisation 'school-a' field 'runs_validator' must be a boolean, "
        "not a string"
    )


def test_missing_runs_validator() -> None:
    text = definition_text(org("bureau", "bureau"),
                           org("school-a").replace("runs_validator = true\n", ""))
    assert config_error(text) == "consortium.toml: organisation 'school-a' has no 'runs_validator'"


def test_missing_and_empty_name() -> None:
    no_name = org("school-a").replace('name = "school-a 名称"\n', "")
    assert config_error(definition_text(org("bureau", "bureau"), no_name)) == (
        "consortium.toml: organisation 'school-a' has no 'name'"
    )
    empty = org("school-a").replace('name = "school-a 名称"', 'name = "  "')
    assert config_error(definition_text(org("bureau", "bureau"), empty)) == (
        "consortium.toml: organisation 'school-a' has an empty 'name'"
    )


def test_name_of_wrong_type() -> None:
    bad = org("school-a").replace('name = "school-a 名称"', "name = 7")
    assert config_error(definition_text(org("bureau", "bureau"), bad)) == (
        "consortium.toml: organisation 'school-a' field 'name' must be a string, not an integer"
    )


def test_unknown_organisation_key() -> None:
    text = definition_text(org("bureau", "bureau"), org("school-a", runs_validators="true"))
    assert config_error(text).startswith(
        "consortium.toml: unknown key 'runs_validators' in organisation 'school-a'"
    )


def test_unknown_top_level_key() -> None:
    text = "quorum = 2\n" + definition_text()
    assert config_error(text).startswith("consortium.toml: unknown key 'quorum' in the top level")


@pytest.mark.parametrize("port", ["0", "65536", '"8545"'])
def test_bad_port(port: str) -> None:
    text = definition_text(org("bureau", "bureau", rpc_port=port), org("school-a"))
    message = config_error(text)
    assert "organisation 'bureau'" in message and "rpc_port" in message


def test_ports_clash_on_one_host() -> None:
    text = definition_text(org("bureau", "bureau", p2p_port="30303"),
                           org("school-a", rpc_port="30303"))
    assert config_error(text) == (
        "consortium.toml: organisations 'bureau' and 'school-a' both use port 30303 on 127.0.0.1"
    )


def test_same_port_on_different_hosts_is_fine() -> None:
    text = definition_text(org("bureau", "bureau", p2p_port="30303", host='"10.0.0.1"'),
                           org("school-a", p2p_port="30303", host='"10.0.0.2"'))
    definition = parse_definition(text, SOURCE)
    assert [o.host for o in definition.organisations] == ["10.0.0.1", "10.0.0.2"]


def test_host_must_be_an_ip_address() -> None:
    text = definition_text(org("bureau", "bureau", host='"node.example"'), org("school-a"))
    assert config_error(text) == (
        "consortium.toml: organisation 'bureau' has host 'node.example', which is not an IP address"
    )


def test_no_organisations() -> None:
    assert config_error('governors = []\nthreshold = 1\n').startswith(
        "consortium.toml: no organisations"
    )


def test_organisations_of_wrong_type() -> None:
    text = 'governors = ["bureau"]\nthreshold = 1\norganisations = ["bureau"]\n'
    assert "'organisations' must be an array of tables" in config_error(text)


def test_malformed_toml() -> None:
    message = config_error('governors = ["bureau"\nthreshold = 1\n')
    assert message.startswith("consortium.toml: not valid TOML: ")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "consortium.toml"
    with pytest.raises(ConfigError) as info:
        load_definition(path)
    assert info.value.message == f"{path}: consortium definition file not found"


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "consortium.toml"
    path.write_bytes(definition_text().encode("gbk"))
    with pytest.raises(ConfigError) as info:
        load_definition(path)
    assert info.value.message == f"{path}: not UTF-8 text"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_definition(tmp_path)
    assert info.value.message.startswith(f"{tmp_path}: cannot read the file")


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "my-consortium.toml"
    path.write_text(definition_text(org("bureau", "teacher")), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_definition(path)
    assert info.value.message.startswith(f"{path}: organisation 'bureau' has unknown role")
    assert info.value.code == "config_error"


# --- names: one line of visible text (issue 18 item 11) -----------------------------------


def toml_escape(text: str) -> str:
    """`text` for the inside of a TOML basic string, invisible characters as \\uXXXX."""
    return "".join(f"\\u{ord(ch):04X}" if not ch.isprintable() else
                   "\\" + ch if ch in '"\\' else ch for ch in text)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("x\nrpc-ws-enabled = true", "a line break (U+000A)"),
        ("x\r", "a carriage return (U+000D)"),
        ("x\ty", "a tab (U+0009)"),
        ("x\u2028y", "a line separator (U+2028)"),
        ("x\u2029y", "a paragraph separator (U+2029)"),
        ("x\u202ey", "an invisible format character (U+202E)"),  # right-to-left override
        ("x\x00y", "a control character (U+0000)"),
        ("x\x85y", "a control character (U+0085)"),  # NEL, a line break to some readers
    ],
)
def test_name_with_a_line_break_or_control_character_is_refused(name: str, shown: str) -> None:
    # TOML basic strings carry them as escapes, which is how an operator would write one.
    escaped = toml_escape(name)
    bad = org("school-a").replace('name = "school-a 名称"', f'name = "{escaped}"')
    assert config_error(definition_text(org("bureau", "bureau"), bad)) == (
        f"consortium.toml: organisation 'school-a' has a 'name' holding {shown}; a name is one "
        "line of visible text"
    )
    top = f'name = "{escaped}"\n' + definition_text()
    assert config_error(top) == (
        f"consortium.toml: the consortium 'name' holds {shown}; a name is one line of visible text"
    )


@pytest.mark.parametrize("name", ['引号 "quoted" 名称', "back\\slash", "# not a comment",
                                  "[section]", "示范区\u3000第一中学", "𠀀 (CJK Ext. B)",
                                  "\ue000 (private use, as GB 18030 maps some rare characters)"])
def test_names_with_punctuation_and_rare_characters_are_fine(name: str) -> None:
    good = org("school-a").replace('name = "school-a 名称"', f'name = "{toml_escape(name)}"')
    definition = parse_definition(definition_text(org("bureau", "bureau"), good), SOURCE)
    assert definition.organisation("school-a").name == name


# --- hosts: IPv4 and IPv6 (issue 18 item 12) ----------------------------------------------


def test_ipv6_host_is_accepted_and_written_canonically() -> None:
    text = definition_text(org("bureau", "bureau", host='"FD00:0:0::1"'),
                           org("school-a", host='"2001:db8::10"'))
    definition = parse_definition(text, SOURCE)
    assert [o.host for o in definition.organisations] == ["fd00::1", "2001:db8::10"]


def test_two_spellings_of_one_ipv6_address_clash_on_a_port() -> None:
    text = definition_text(org("bureau", "bureau", p2p_port="30303", host='"fd00::1"'),
                           org("school-a", p2p_port="30303", host='"fd00:0::1"'))
    assert config_error(text) == (
        "consortium.toml: organisations 'bureau' and 'school-a' both use port 30303 on fd00::1"
    )


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("fe80::1%eth0", "an IPv6 address with a zone (%...), which only means something on its "
                         "own machine; give an address the other nodes can reach"),
        ("::ffff:10.0.0.1", "an IPv4-mapped IPv6 address; write the IPv4 address 10.0.0.1 instead"),
        ("[fd00::1]", "which is not an IP address"),  # brackets belong in URLs, not here
        ("127.0.0.1\nrpc-ws-enabled = true", "which is not an IP address"),
    ],
)
def test_unusable_hosts_are_refused(host: str, reason: str) -> None:
    text = definition_text(org("bureau", "bureau", host=f'"{toml_escape(host)}"'), org("school-a"))
    assert config_error(text) == f"consortium.toml: organisation 'bureau' has host {host!r}, {reason}"


def test_ipv4_hosts_are_kept_as_written() -> None:
    text = definition_text(org("bureau", "bureau", host='"10.1.2.3"'), org("school-a"))
    assert [o.host for o in parse_definition(text, SOURCE).organisations] == ["10.1.2.3", "127.0.0.1"]

"""De-identification profiles: shipped files load from the installed package; broken ones fail closed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DATA

from privguard.errors import PolicyError
from privguard.header.profile import Option, available_profiles, load_profile, parse_option


def test_shipped_profiles_load_from_the_installed_package() -> None:
    from importlib.resources import files

    names = available_profiles()
    assert {"basic", "research"} <= set(names)
    for name in names:
        profile = load_profile(name)
        assert profile.name == name
        assert (files("privguard") / "_policies" / "deid" / f"{name}.yaml").is_file()
    assert load_profile("basic").options == frozenset()
    assert load_profile("research").options == {
        Option.RETAIN_PATIENT_CHARACTERISTICS,
        Option.RETAIN_DEVICE_IDENTITY,
        Option.RETAIN_LONGITUDINAL_MODIFIED_DATES,
        Option.CLEAN_DESCRIPTORS,
        Option.RETAIN_SAFE_PRIVATE,
    }


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("unknown_option.yaml", "options"),
        ("both_date_options.yaml", "exclude each other"),
        ("unknown_attribute.yaml", "overrides.0.keep.attribute"),
        ("overridden_twice.yaml", "overridden twice"),
        ("replace_without_value.yaml", "overrides.0.replace.value"),
        ("unknown_action.yaml", "overrides.0"),
        ("missing_schema_version.yaml", "schema_version"),
        ("extra_field.yaml", "retain_all"),
        ("not_yaml.yaml", "not valid YAML at line"),
        ("shift_out_of_range.yaml", "pseudonyms.date_shift_days"),
    ],
)
def test_broken_profiles_name_the_field(name: str, message: str) -> None:
    path = DATA / "profiles" / name
    with pytest.raises(PolicyError) as err:
        load_profile(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_names_list_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="available: basic"):
        load_profile("reserch")
    with pytest.raises(PolicyError, match="not found"):
        load_profile(tmp_path / "none.yaml")


@pytest.mark.parametrize("text", ["retain-uids", "retain_uids", "Retain UIDs", "RETAIN-UIDS"])
def test_options_by_name(text: str) -> None:
    assert parse_option(text) is Option.RETAIN_UIDS


def test_method_codes_follow_options() -> None:
    p = load_profile("basic").with_options({Option.CLEAN_DESCRIPTORS, Option.RETAIN_UIDS})
    assert [c for c, _ in p.method_codes] == ["113100", "113105", "113110"]


def test_yaml_words_stay_strings_and_repeated_keys_are_refused(tmp_path: Path) -> None:
    # YAML 1.1 would read `off` as False; privguard's loader keeps only true/false as booleans.
    path = tmp_path / "site.yaml"
    path.write_text("schema_version: 1\nname: site\npixels:\n  ocr: off\n")
    assert load_profile(path).pixels.ocr == "off"
    path.write_text("schema_version: 1\nname: site\nname: other\n")
    with pytest.raises(PolicyError, match="repeated"):
        load_profile(path)

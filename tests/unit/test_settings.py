"""Settings come from NEXYSYNC_* variables, typed, with clear errors for bad values."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from nexysync_server.settings import Settings


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings.from_env({})

    assert settings == Settings()
    assert settings.mongodb_uri.startswith("mongodb://")
    assert settings.default_message_ttl_hours == 168
    assert settings.jwt_secret == ""


def test_variables_are_parsed_to_each_field_type() -> None:
    settings = Settings.from_env(
        {
            "NEXYSYNC_MONGODB_URI": "mongodb://db.example:27017/?replicaSet=rs0",
            "NEXYSYNC_JWT_SECRET": "s3cret-" * 5,
            "NEXYSYNC_ACCESS_TOKEN_TTL_S": "60",
            "NEXYSYNC_HEARTBEAT_S": "2.5",
            "NEXYSYNC_QUOTA_AGENTS": "3",
        }
    )

    assert settings.mongodb_uri == "mongodb://db.example:27017/?replicaSet=rs0"
    assert settings.jwt_secret == "s3cret-" * 5
    assert settings.access_token_ttl_s == 60
    assert settings.heartbeat_s == 2.5
    assert settings.quota_agents == 3


def test_unrelated_and_unprefixed_variables_are_ignored() -> None:
    settings = Settings.from_env({"MONGODB_URI": "mongodb://elsewhere", "NEXYSYNC_UNKNOWN": "x", "PATH": "/bin"})

    assert settings == Settings()


def test_overrides_win_over_the_environment() -> None:
    settings = Settings.from_env({"NEXYSYNC_DB_NAME": "from-env"}, db_name="override")

    assert settings.db_name == "override"


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXYSYNC_QUOTA_MESSAGES_PER_DAY", "42")

    assert Settings.from_env().quota_messages_per_day == 42


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NEXYSYNC_ACCESS_TOKEN_TTL_S", "fifteen"),
        ("NEXYSYNC_HEARTBEAT_S", "soon"),
        ("NEXYSYNC_MAX_BODY_BYTES", "1.5"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=rf"{name}={value!r}"):
        Settings.from_env({name: value})


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(NEXYSYNC_[A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))

    missing = {f"NEXYSYNC_{field.name.upper()}" for field in fields(Settings)} - documented

    assert not missing, f"README.md's configuration table lacks {sorted(missing)}"


@pytest.mark.parametrize("name", ["NEXYSYNC_JWT_SECRET", "NEXYSYNC_CDN_SECRET"])
def test_a_secret_shorter_than_32_bytes_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Settings.from_env({name: "s" * 31})
    assert Settings.from_env({name: "s" * 32})


@dataclass(frozen=True, slots=True)
class _WithSwitch(Settings):
    switch: bool = True


@pytest.mark.parametrize(
    ("raw", "expected"), [("false", False), ("0", False), ("No", False), ("off", False), ("TRUE", True), ("1", True)]
)
def test_a_boolean_setting_is_read_by_word_so_false_is_false(raw: str, expected: bool) -> None:
    assert _WithSwitch.from_env({"NEXYSYNC_SWITCH": raw}).switch is expected


def test_a_boolean_setting_that_is_no_word_is_refused() -> None:
    with pytest.raises(ValueError, match="NEXYSYNC_SWITCH='maybe' is not a valid bool"):
        _WithSwitch.from_env({"NEXYSYNC_SWITCH": "maybe"})

"""lambdas/_env.py: the handlers' settings are required and typed, and a bad one is named."""

from __future__ import annotations

import pytest

from lambdas._env import SettingError, require


def test_a_set_value_is_parsed():
    env = {"SEED": " 42 ", "RATE": "2.5", "NAME": "acme-data-producer"}
    assert require("SEED", int, env=env) == 42
    assert require("RATE", float, env=env) == 2.5
    assert require("NAME", env=env) == "acme-data-producer"


@pytest.mark.parametrize("env", [{}, {"SEED": ""}, {"SEED": "   "}])
def test_unset_or_blank_is_an_error_naming_the_variable(env):
    with pytest.raises(SettingError, match="^environment variable SEED is not set;"):
        require("SEED", int, env=env)


def test_a_value_of_the_wrong_type_is_an_error_naming_variable_and_value():
    with pytest.raises(SettingError, match=r"^environment variable SEED='4x2' is not a valid int$"):
        require("SEED", int, env={"SEED": "4x2"})


def test_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("ACME_TEST_SETTING", "7")
    assert require("ACME_TEST_SETTING", int) == 7
    monkeypatch.delenv("ACME_TEST_SETTING")
    with pytest.raises(SettingError):
        require("ACME_TEST_SETTING")

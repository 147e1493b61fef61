"""Settings: one table read by the environment and the command line alike."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from autoconf.cli import main
from autoconf.settings import OPTIONS, Settings, SettingsError, unknown_variables
from tests.conftest import EXAMPLES


def test_every_setting_has_one_variable_and_the_defaults_are_the_dataclass_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    variables = [option.variable for option in OPTIONS]
    assert len(set(variables)) == len(variables) == len(Settings.__dataclass_fields__)


def test_values_are_read_and_bounded() -> None:
    settings = Settings.from_env(
        {
            "AUTOCONF_DOMAINS": "/srv/domains",
            "AUTOCONF_PROXY_HOPS": "2",
            "AUTOCONF_MAX_DROP": "0.25",
            "AUTOCONF_ALLOWED_FOLDERS": "/a:/b:",
            "STATE_DIRECTORY": "/var/lib/x",
        }
    )
    assert settings.domains == Path("/srv/domains") and settings.proxy_hops == 2
    assert settings.max_drop == 0.25 and settings.allowed_folders == (Path("/a"), Path("/b"))
    assert settings.state == Path("/var/lib/x")  # systemd's, when AUTOCONF_STATE is unset
    both = {"AUTOCONF_STATE": "/own", "STATE_DIRECTORY": "/var/lib/x"}
    assert Settings.from_env(both).state == Path("/own")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AUTOCONF_PROXY_HOPS", "11", "a whole number from 0 to 10"),  # as on the command line
        ("AUTOCONF_PROXY_HOPS", "-1", "a whole number from 0 to 10"),
        ("AUTOCONF_PROXY_HOPS", "two", "a whole number from 0 to 10"),
        ("AUTOCONF_RELOAD_SECONDS", "nan", "seconds from 0 (off) to 86400"),
        ("AUTOCONF_LOG_ADDRESSES", "none", "one of redact, hash, full"),
        ("AUTOCONF_MAX_FILE_BYTES", "1.5", "a number of bytes"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_must_be(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert str(caught.value) == f"{variable} must be {message}, not {value!r}"


def test_the_command_line_reads_a_value_as_the_environment_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["serve", "--domains", str(EXAMPLES), "--proxy-hops", "11"])
    assert code == 2
    assert "--proxy-hops must be a whole number from 0 to 10, not '11'" in capsys.readouterr().err


def test_an_unknown_variable_is_warned_about_with_the_closest_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"AUTOCONF_DOMAIN": "/srv/domains", "AUTOCONF_PUBLIC_HOST": "a.example"}
    assert unknown_variables(env) == [
        "AUTOCONF_DOMAIN is not a setting of mail-autoconf; did you mean AUTOCONF_DOMAINS?"
    ]
    with caplog.at_level(logging.WARNING, logger="autoconf"):
        settings = Settings.from_env(env)
    assert settings.domains == Path("domains")  # not taken for AUTOCONF_DOMAINS
    assert "did you mean AUTOCONF_DOMAINS?" in caplog.text
    assert unknown_variables({"AUTOCONF_ZZZZZZZZZZZ": "1"}) == [
        "AUTOCONF_ZZZZZZZZZZZ is not a setting of mail-autoconf"
    ]

import pytest

from shared import config


def test_placeholders_take_environment_then_default():
    text = "AMQP_URI: ${AMQP_URI:amqp://guest:guest@localhost}\nPORT: ${PORT:8001}\n"
    assert config.loads(text, {}) == {"AMQP_URI": "amqp://guest:guest@localhost", "PORT": 8001}
    assert config.loads(text, {"PORT": "9000"})["PORT"] == 9000


def test_county_codes_stay_strings():
    text = 'COUNTY_CODE: ${COUNTY:130921}\nOTHER: 130922\nQUOTED: "${PORT:8001}"\nZ: 010101\n'
    loaded = config.loads(text, {})
    assert loaded["COUNTY_CODE"] == "130921"
    assert loaded["QUOTED"] == "8001"
    assert loaded["Z"] == "010101"  # not octal 4161
    assert config.loads(text, {"COUNTY": "130922"})["COUNTY_CODE"] == "130922"


def test_leading_zero_placeholder_stays_string_and_booleans_are_typed():
    loaded = config.loads("A: ${A:010101}\nB: ${B:true}\nC: ${C:1.5}\n", {})
    assert loaded == {"A": "010101", "B": True, "C": 1.5}


def test_placeholder_inside_a_longer_value():
    loaded = config.loads("URL: amqp://${USER:guest}@${HOST:localhost}:5672/\n", {"HOST": "mq"})
    assert loaded["URL"] == "amqp://guest@mq:5672/"


def test_missing_required_variable_is_an_error():
    with pytest.raises(config.ConfigError, match="SECRET"):
        config.loads("AUTH_SECRET: ${SECRET}\n", {})


def test_nested_mappings_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("DB:\n  COUNTY: 130921\nX: 1\n", encoding="utf-8")
    loaded = config.load(path, {}, overrides={"X": 2})
    assert loaded == {"DB": {"COUNTY": "130921"}, "X": 2}


def test_top_level_must_be_a_mapping():
    with pytest.raises(config.ConfigError):
        config.loads("- a\n- b\n", {})

"""docker-compose.yml is valid against the Compose specification and complete."""
import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_matches_the_compose_spec():
    schema = json.loads((ROOT / "tests/data/compose-spec.json").read_text(encoding="utf-8"))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    jsonschema.validate(compose, schema)


def test_compose_runs_every_service_on_its_own_port_and_schema():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"rabbitmq", "postgres", "registry", "talent", "notify"} <= set(services)
    apps = {name: s for name, s in services.items() if "command" in s}
    assert any(name.startswith("filing_") for name in apps)
    ports = [s["environment"]["WEB_SERVER_ADDRESS"].rsplit(":", 1)[1] for s in apps.values()]
    schemas = [s["environment"]["DATABASE_SCHEMA"] for s in apps.values()]
    assert len(set(ports)) == len(ports)
    assert len(set(schemas)) == len(schemas)
    for name, service in apps.items():
        if name.startswith("filing_"):
            assert service["command"] == ["filing", "--county", name.split("_", 1)[1]]

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


def test_compose_runs_from_files_it_declares():
    """Every secret a service mounts is declared (as a file cqo keys init writes), every
    service restarts by itself and has a health check, data lives in named volumes, and
    the broker's node name does not depend on a generated hostname."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    declared = compose["secrets"]
    for name, service in compose["services"].items():
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"][0] == "CMD", name
        for secret in service.get("secrets", []):
            assert (secret["source"] if isinstance(secret, dict) else secret) in declared, name
        for volume in service.get("volumes", []):
            assert volume.split(":", 1)[0] in compose["volumes"], name
        if "command" in service:
            assert service["image"] == "localhost/cqo-app:latest"
            assert service["environment"]["DEV_KEYS_DIR"] == ""  # production: no generated keys
    broker = compose["services"]["rabbitmq"]
    assert broker["environment"]["RABBITMQ_NODENAME"] == f"rabbit@{broker['hostname']}"
    for path in ("containers/app/Containerfile", "containers/rabbitmq/Containerfile",
                 "containers/postgres/Containerfile"):
        assert (ROOT / path).read_text(encoding="utf-8").count("FROM debian:bookworm-slim") >= 1

"""`cqo dead list|replay` against a registry that dead-lettered a malformed message."""
import time

import pytest
import yaml
from typer.testing import CliRunner

from cqo.cli import app
from shared.messaging.dead import list_dead_letters

pytestmark = pytest.mark.integration


def test_list_export_and_replay(registry, db_config, amqp_uri, tmp_path):
    county, _, db = registry
    county.publish({"county": "130921", "kind": "establishment"}, message_id="broken-1")
    deadline = time.monotonic() + 15
    while not list_dead_letters(db) and time.monotonic() < deadline:
        time.sleep(0.1)
    config = tmp_path / "registry.yaml"
    config.write_text(yaml.safe_dump({"AMQP_URI": amqp_uri, **db_config}), encoding="utf-8")
    runner = CliRunner(env={"COLUMNS": "200"})

    listed = runner.invoke(app, ["dead", "list", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "registry.intake" in listed.output and "MALFORMED_MESSAGE" in listed.output

    out = tmp_path / "dead.csv"
    exported = runner.invoke(app, ["dead", "list", "--config", str(config), "--out", str(out)])
    assert exported.exit_code == 0 and "broken-1" in out.read_text(encoding="utf-8-sig")

    (row,) = list_dead_letters(db)
    replayed = runner.invoke(app, ["dead", "replay", str(row["id"]), "--config", str(config)])
    assert replayed.exit_code == 0, replayed.output
    again = runner.invoke(app, ["dead", "replay", str(row["id"]), "--config", str(config)])
    assert again.exit_code == 1 and "已于" in again.output
    # the replayed message fails again and is recorded again: nothing is lost
    deadline = time.monotonic() + 15
    while len(list_dead_letters(db, include_replayed=True)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(list_dead_letters(db, include_replayed=True)) == 2

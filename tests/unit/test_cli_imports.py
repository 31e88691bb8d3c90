"""`cqo token` and `cqo check` need no service: they must not import the service stack
(nameko, eventlet, SQLAlchemy, kombu, services.*) nor the other commands' modules, which
is what made `cqo token` slow (defect 12). Checked in a fresh interpreter's sys.modules,
not by timing."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("nameko", "eventlet", "sqlalchemy", "kombu", "alembic", "services", "openpyxl",
         "werkzeug", "rich", "shared.db", "shared.messaging", "cqo.stack", "cqo.demo",
         "cqo.cli_serve", "cqo.cli_stack", "cqo.cli_dead", "cqo.cli_roster", "cqo.cli_training",
         "cqo.cli_report", "cqo.cli_demo", "cqo.cli_draw", "cqo.cli_notify")

PROBE = """
import json, sys
sys.argv = ["cqo", *json.loads(sys.argv[1])]
from cqo.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded_by(args: list[str], tmp_path) -> tuple[int, set[str]]:
    env = {**os.environ, "CQO_AUTH_SECRET": "x" * 40, "DEV_KEYS_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], env=env,
                            capture_output=True, text=True, timeout=60)
    report = json.loads(result.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


@pytest.mark.parametrize("args", [
    ["token", "--role", "county_officer", "--county", "130921"],
    ["check", "uscc", "91350100M000100Y43"],
    ["check", "id", "11010519491231002X"],
    ["check", "county", "130921"],
])
def test_light_commands_import_no_service_code(args, tmp_path):
    code, modules = loaded_by(args, tmp_path)
    assert code in (0, None)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY)
    assert heavy == [], f"`cqo {' '.join(args)}` imported {heavy}"


def test_a_service_command_still_loads_what_it_needs(tmp_path):
    code, modules = loaded_by(["dead", "--help"], tmp_path)
    assert code == 0 and "cqo.cli_dead" in modules

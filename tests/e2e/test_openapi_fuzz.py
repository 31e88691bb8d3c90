"""Schemathesis against every service's OpenAPI document, on a running stack (real
processes, broker and database), with a token of each role, on SQLite and PostgreSQL:
no response may be a 5xx, have an undocumented status or content type, or break the
documented schema.

Schemathesis runs as its own process (`python -m schemathesis.cli run`): it must not be
imported into this eventlet-patched process. Bounded per run by CQO_FUZZ_EXAMPLES
(examples per operation and phase) and CQO_FUZZ_RUN_S (the longest one run may take);
CQO_FUZZ_SEED picks another seed (the default one keeps `make test` reproducible).
Later endpoints join the run by being in their service's document.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests

from services.filing.domain import FORWARDED
from shared.clock import today
from tests.e2e.support import (HTTP_TIMEOUT, auth, city, filing_form, submit_forms, wait_for)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

COUNTY = "130921"
CITY_SERVICES = ("registry", "talent", "notify")
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance")
MAX_EXAMPLES = int(os.environ.get("CQO_FUZZ_EXAMPLES", "15"))
RUN_TIMEOUT_S = float(os.environ.get("CQO_FUZZ_RUN_S", "240"))
SEED = os.environ.get("CQO_FUZZ_SEED", "20260801")


@dataclass
class Run:
    service: str
    role: str
    returncode: int
    operations: int
    examples: int
    seconds: float
    output: str

    @property
    def summary(self) -> str:
        return (f"{self.service:<16} {self.role:<15} operations={self.operations:<3} "
                f"examples={self.examples:<5} {self.seconds:5.1f}s "
                f"{'ok' if self.returncode == 0 else f'FAILED (exit {self.returncode})'}")


def _documented_uscc(base_url: str) -> str:
    """The example of /enterprises/{uscc}: the enterprise seeded for the fuzzer to find."""
    document = requests.get(base_url + "/api/v1/openapi.json", timeout=HTTP_TIMEOUT).json()
    (param,) = [p for p in document["paths"]["/api/v1/enterprises/{uscc}"]["get"]["parameters"]
                if p["name"] == "uscc"]
    return param["schema"]["example"]


def _seed(deployment, uscc: str) -> None:
    """Data for the documents to describe: an enterprise with an accepted filing (the
    lookup's `filings`, `history`, `current_cqo`), a roster, a recommendation, a campaign."""
    form = filing_form(COUNTY, 1)
    form["enterprise"]["uscc"] = uscc
    submit_forms(deployment, COUNTY, [form], status=FORWARDED)
    wait_for(lambda: deployment.ledger_total(uscc=uscc) == 1, 60, "filing accepted by the city")
    year = today().year
    roster = ("统一社会信用代码,企业名称,县级区划代码,企业类别,年度,联系人,联系电话,电子邮箱\n"
              f"{uscc},{form['enterprise']['name']},{COUNTY},industrial_above_scale,{year},"
              "张联络,13800138000,contact@example.cn\n")
    resp = requests.post(deployment.registry_url + "/roster", data=roster.encode("utf-8"),
                         headers={**city(), "Content-Type": "text/csv"}, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200 and resp.json()["accepted"] == 1, resp.text
    resp = requests.post(deployment.registry_url + "/recommendations", headers=city(), json={
        "uscc": uscc, "incident": "产品抽检不合格", "reason": "未履行质量把关职责",
        "incident_on": (today() - timedelta(days=3)).isoformat()}, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 201, resp.text
    deployment.open_campaign(year)


def _schemathesis(service: str, base_url: str, role: str, token: str, workdir) -> Run:
    command = [sys.executable, "-m", "schemathesis.cli", "run", base_url + "/api/v1/openapi.json",
               "--checks", ",".join(CHECKS), "--mode", "all",
               "--phases", "examples,coverage,fuzzing", "--max-examples", str(MAX_EXAMPLES),
               "--seed", SEED, "--workers", "1", "--request-timeout", "30",
               "--generation-database", "none", "--no-color", "--max-failures", "50",
               # generation speed depends on the machine's load, not on the API
               "--suppress-health-check", "too_slow",
               "--header", f"Authorization: Bearer {token}"]
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                              cwd=workdir, env={**os.environ, "NO_COLOR": "1"})
        returncode, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        returncode = -1
        output = f"schemathesis did not finish within {RUN_TIMEOUT_S:.0f}s\n{exc.stdout or ''}"
    tested = re.search(r"Tested:\s*(\d+)", output)
    generated = re.search(r"(\d+) generated", output)
    return Run(service, role, returncode, int(tested.group(1)) if tested else 0,
               int(generated.group(1)) if generated else 0, time.monotonic() - started, output)


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_every_service_answers_as_its_openapi_document_says(deploy, database, tmp_path):
    deployment = deploy(services=CITY_SERVICES, counties=(COUNTY,), database=database,
                        tag="fuzz")
    uscc = _documented_uscc(deployment.stack.spec("registry").base_url)
    _seed(deployment, uscc)
    tokens = {"enterprise": auth("enterprise", uscc=uscc),
              "county_officer": auth("county_officer", county=COUNTY),
              "city_officer": auth("city_officer"), "admin": auth("admin")}
    # an expert reads only notify's inbox: fuzzed there alone (elsewhere every answer is a 403)
    expert = auth("expert", expert_id="0b7f2c1e-4d3a-4f6b-9c8d-1a2b3c4d5e6f")
    runs = []
    for spec in deployment.stack.specs:
        for role, header in [*tokens.items(), *([("expert", expert)] if spec.name == "notify" else [])]:
            token = header["Authorization"].removeprefix("Bearer ")
            runs.append(_schemathesis(spec.name, spec.base_url, role, token, tmp_path))
    table = "\n".join(run.summary for run in runs)
    print(f"\nschemathesis on {database}:\n{table}\n"
          f"total: {sum(r.examples for r in runs)} examples, {sum(r.seconds for r in runs):.0f}s")
    failed = [run for run in runs if run.returncode != 0]
    assert not failed, table + "\n\n" + "\n\n".join(
        f"===== {run.service} as {run.role} =====\n{run.output[-6000:]}" for run in failed)
    # every service was reached and its document had operations to test
    assert all(run.operations > 0 and run.examples > 0 for run in runs), table

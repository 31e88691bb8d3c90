"""Structured logs across services (docs/architecture.md, "Logs"): the registry and a
county run as `cqo serve` processes with their shipped LOGGING (JSON, DEBUG); two
filings go the whole round. Every line the services write is one JSON object naming
its service and site, and one filing's lines in both logs share its filing id, while
the message id says which message each hop handled."""
from __future__ import annotations

import json
from datetime import datetime

import pytest

from services.filing.domain import filing_message_id
from tests.e2e.support import filing_form, submit_forms, wait_for

pytestmark = pytest.mark.e2e

COUNTY = "130921"


def _lines(path) -> list[dict]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{path.name}:{number} is not a JSON line: {line[:200]}")
    return out


def test_one_filing_is_followed_across_services_by_its_ids(deploy):
    d = deploy(counties=(COUNTY,), env={"LOG_LEVEL": "DEBUG"})
    # proactive filings: forwarded to the city as soon as they are approved
    filing_ids = submit_forms(d, COUNTY, (filing_form(COUNTY, n) for n in (1, 2)), status="forwarded")
    wait_for(lambda: d.county_total(COUNTY, status="accepted") == 2, 90,
             lambda: f"accepted at the county: {d.county_filings(COUNTY)}")
    # the county logs "decision ... applied" after its commit: give the line a moment
    county_log = d.workdir / f"filing_{COUNTY}.log"
    wait_for(lambda: all(f"decision on filing {f}" in county_log.read_text(encoding="utf-8")
                         for f in filing_ids), 30, "decision lines in the county's log")

    registry = _lines(d.workdir / "registry.log")
    county = _lines(county_log)
    assert {(r["service"], r["site"]) for r in registry} == {("registry", "city")}
    assert {(r["service"], r["site"]) for r in county} == {("filing", COUNTY)}
    for record in registry + county:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        datetime.fromisoformat(record["time"])

    for fid in filing_ids:
        forwarded = filing_message_id(fid, 1)
        at_county = [r for r in county if r.get("filing_id") == fid]
        at_city = [r for r in registry if r.get("filing_id") == fid]
        said = [r["message"] for r in at_county]
        assert any("submitted" in m for m in said), said
        assert any("reviewed" in m for m in said), said
        # the county's relay published the filing under the message id the city handles
        assert any(r.get("message_id") == forwarded and r["message"].startswith("published")
                   for r in county), f"no publish line for {forwarded}"
        decided = [r for r in at_city if "decided" in r["message"]]
        assert len(decided) == 1 and decided[0]["message_id"] == forwarded, at_city
        applied = [r for r in at_county if r["message"].startswith("decision on filing")]
        assert len(applied) == 1, said
        assert applied[0]["message_id"] == f"decisions:{forwarded}:{COUNTY}", applied
        # the hops in the order they happened
        submitted = next(r for r in at_county if "submitted" in r["message"])
        times = [datetime.fromisoformat(r["time"]) for r in (submitted, decided[0], applied[0])]
        assert times == sorted(times), times


"""No ID number in clear in a log, an HTTP answer or a message (docs/architecture.md,
"Identity protection"; issue 8
defect 6: a rejected passport number was seen whole in a county's log file).

The registry and a county filing service run as `cqo serve` processes (DEBUG logging, so
every line a service can write is written) on a vhost of the test's own. The audit of
tests.support.pii taps every exchange of the vhost, then:
- the county's public HTTP API gets invalid numbers of every ID type (and valid ones),
  filed and sent as corrections; the valid filings travel to the city and back;
- the city gets, straight on `cqo.filings`, filings whose sealed number is invalid (a
  county running an older validator): the registry's own check refuses them and its
  decision goes back to the county;
then every log file, every HTTP response and every tapped message is searched for
every number.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.filing.domain import FINAL_STATUSES
from shared.clock import today
from shared.messaging import topology
from shared.personal_data import id_hmac, seal
from tests.support.factories import filing_message, uscc_for
from tests.e2e.support import (HTTP_TIMEOUT, Deployment, city, enterprise, filing_form, officer,
                               wait_for)
from tests.support.pii import PiiAudit, id_cases, submit_id_numbers

pytestmark = pytest.mark.e2e

COUNTY = "130921"
SETTLE_S = 90
FORGED_FIRST = 9000  # enterprises of the forged filings (those of the HTTP part start at 1)


@pytest.fixture
def deployment(broker, postgres_url, tmp_path):
    # not tests/e2e/conftest's `deploy`: on failure it prints the logs unmasked
    d = Deployment(broker, postgres_url, tmp_path / "stack", counties=(COUNTY,), tag="pii",
                   env={"LOG_LEVEL": "DEBUG"})
    try:
        d.start()
        yield d
    finally:
        d.close()


def forge_at_city(d: Deployment, cases) -> list[str]:
    """A filing message per case, its number sealed for the city as a county seals it."""
    settings = d.county_app(COUNTY).settings
    day = today() - timedelta(days=10)
    ids = []
    for n, case in enumerate(cases, start=FORGED_FIRST):
        message = filing_message(
            county=COUNTY, uscc=uscc_for(COUNTY, n), person=n, hmac_key=settings.hmac_key,
            city_public_key=settings.city_public_key, appointed_on=day, submitted=day,
            cqo_overrides={"id_type": case.id_type,
                           "id_hmac": id_hmac(settings.hmac_key, case.id_type, case.number),
                           "id_sealed": seal(settings.city_public_key, case.number),
                           "id_masked": case.masked})
        d.publish(f"filing.{COUNTY}.establishment", message, exchange=topology.FILINGS.name)
        ids.append(message["filing_id"])
    return ids


def test_no_id_number_in_clear_in_logs_answers_or_messages(deployment, broker):
    d = deployment
    cases = id_cases(COUNTY)
    audit = PiiAudit(broker, d.vhost, log_files=lambda: d.workdir.glob("*.log"), cases=cases)
    with audit:
        try:
            assert {"cqo.filings", "cqo.decisions", "cqo.notices", "cqo.dead"} <= set(audit.tap.bound)
            county_url = d.county_url(COUNTY)
            filings = submit_id_numbers(audit, county_url, cases=cases,
                                        form=lambda n: filing_form(COUNTY, n),
                                        enterprise=enterprise, officer=officer(COUNTY))
            forged = forge_at_city(d, [c for c in cases if not c.valid])

            def status(filing_id):
                resp = audit.request("GET", f"{county_url}/filings/{filing_id}",
                                     headers=officer(COUNTY), timeout=HTTP_TIMEOUT)
                assert resp.status_code == 200, audit.redact(resp.text)
                return resp.json()["status"]

            wait_for(lambda: all(status(f) in FINAL_STATUSES for f in filings), SETTLE_S,
                     lambda: f"the city's decisions on {len(filings)} filings at the county")
            wait_for(lambda: _rejected(d, forged), SETTLE_S,
                     "the city's refusal of the forged filings")
            # what officers read: the county's decisions, the city's ledger with its reasons
            for filing_id in filings:
                status(filing_id)
            resp = audit.request("GET", d.registry_url + "/filings", headers=city(),
                                 params={"county": COUNTY, "page_size": 100})
            assert resp.status_code == 200, audit.redact(resp.text)
            wait_for(lambda: d.queue_depth(topology.decisions_queue(COUNTY).name) == 0, SETTLE_S,
                     "the county to take every decision")
        except BaseException:
            print(f"\n===== service logs (ID numbers masked) =====\n{audit.redact(d.log_tails())}")
            raise
        audit.assert_clean()
        # the audit saw the traffic it vouches for
        routes = {m.exchange for m in audit.tap.captured}
        assert {"cqo.filings", "cqo.decisions"} <= routes, audit.summary()
        assert sum(r.status == 422 for r in audit.received) == 2 * sum(not c.valid for c in cases)


def _rejected(d: Deployment, filing_ids: list[str]) -> bool:
    rows = Deployment.rows(d.registry_db(), "SELECT filing_id, outcome FROM filing_ledger")
    outcomes = {str(f): o for f, o in rows}
    return all(outcomes.get(f) == "rejected" for f in filing_ids)

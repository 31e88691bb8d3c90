"""The PII audit of tests.support.pii finds what it is meant to find (a check that cannot
fail vouches for nothing): a number published on every kind of exchange, on the default
exchange, on an exchange declared after the tap, in a header, in a log file or in an
HTTP answer, written exactly, in lower case, with separators or full-width."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from kombu import Connection, Exchange, Producer, Queue

from tests.support.pii import IdCase, Matcher, PiiAudit, id_cases, longest_fragment

pytestmark = pytest.mark.integration

PASSPORT = IdCase("passport", "E7315-0482", "hyphen inside")
PERMIT = IdCase("hmt_permit", "h60418273", "lower case")
RESIDENT = IdCase("resident_id", "１３０９２１１９８２０５１７３３４X", "full-width")


@pytest.fixture
def vhost(broker, run_id):
    name = f"cqo_test_{run_id}_pii_audit"
    broker.create_vhost(name)
    yield name
    broker.delete_vhost(name)


def test_matcher_forms():
    m = Matcher([PASSPORT, PERMIT, RESIDENT])
    assert [(c, how) for c, how in m.find("passport E7315-0482 refused")] == [(PASSPORT, "exact")]
    assert m.find("id=e7315-0482") == [(PASSPORT, "case-insensitive")]
    assert m.find("normalised E73150482") == [(PASSPORT, "with separators removed")]
    assert m.find("E 7315 0482") == [(PASSPORT, "with separators removed")]
    assert m.find("H60418273") == [(PERMIT, "case-insensitive")]
    assert m.find("13092119820517334x") == [(RESIDENT, "case-insensitive")]
    assert m.find(json.dumps({"n": RESIDENT.number})) == [(RESIDENT, "case-insensitive")]
    assert m.find("E7315****82, H6*****73, 130921********334X: masked forms") == []
    assert m.redact("a E7315-0482 b") == f"a {PASSPORT.masked} b"
    assert "withheld" in m.context("E 7315 0482")
    assert longest_fragment("130921198205173334X", "第7至14位的出生日期19820517") == 8
    assert longest_fragment("810000198205173334", "应为810000（香港）", ["810000"]) == 0
    with pytest.raises(ValueError):
        Matcher([IdCase("passport", "E1234", "too short to look for")])


def test_audit_finds_a_number_wherever_it_went(broker, vhost, tmp_path):
    uri = broker.vhost_uri(vhost)
    kinds = {"topic": "a.b", "fanout": "", "direct": "k", "headers": ""}
    with Connection(uri) as conn:
        channel = conn.channel()
        for kind, key in kinds.items():  # exchanges with a consumer queue bound, as in a stack
            exchange = Exchange(f"t.{kind}", type=kind)
            Queue(f"q.{kind}", exchange, routing_key=key)(channel).declare()
        Queue("q.default")(channel).declare()
    log = tmp_path / "svc.log"
    log.write_text("started\n", encoding="utf-8")
    server = HTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cases = id_cases("130921", 3)
    audit = PiiAudit(broker, vhost, log_files=lambda: [log], cases=[PASSPORT, PERMIT, *cases])
    try:
        with audit:
            assert {f"t.{k}" for k in kinds} <= set(audit.tap.bound)
            assert audit.leaks(quiet=0.3) == []
            with Connection(uri) as conn:
                producer = Producer(conn.channel())
                for kind, key in kinds.items():
                    producer.publish({"kind": kind, "id": cases[1].number},
                                     exchange=f"t.{kind}", routing_key=key)
                producer.publish({"id": "clean"}, exchange="", routing_key="q.default",
                                 headers={"x-error-reason": f"bad {PERMIT.number.upper()}"})
                late = Exchange("t.late", type="topic")
                late(conn.channel()).declare()  # after the tap: only the firehose sees it
                producer.publish("passport E 7315 0482", exchange=late, routing_key="x.y")
            with log.open("a", encoding="utf-8") as handle:
                handle.write(f"WARNING refused {cases[2].number.lower()}\n")
            audit.request("GET", f"http://127.0.0.1:{server.server_port}/?n={cases[4].number}")
            leaks = audit.leaks(quiet=1.0)
    finally:
        server.shutdown()
    where = {(leak.case, leak.where.split(" (")[0].split(" line")[0]) for leak in leaks}
    for kind in kinds:
        assert any(l.case == cases[1] and f"'t.{kind}'" in l.where for l in leaks), kind
    # published on the default exchange: only the firehose copy (original headers nested)
    assert any(l.case == PERMIT and "x-error-reason" in l.where for l in leaks), \
        [l.where for l in leaks if l.case == PERMIT]
    assert any(l.case == PASSPORT and "t.late" in l.where
               and l.how == "with separators removed" for l in leaks)
    assert (cases[2], "log svc.log") in where
    assert any(l.case == cases[4] and "HTTP response" in l.where for l in leaks)
    # the report masks every number
    report = "\n".join(str(l) for l in leaks)
    assert Matcher(audit.cases).find(report) == []
    with pytest.raises(pytest.fail.Exception) as failed:
        audit.assert_clean(quiet=0.3)
    assert Matcher(audit.cases).find(str(failed.value)) == []


class _Echo(BaseHTTPRequestHandler):
    """Answers with the request line, as a careless error page would."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        body = json.dumps({"detail": f"bad request {self.path}"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/problem+json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

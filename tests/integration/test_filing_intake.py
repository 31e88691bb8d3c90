"""County filing service over HTTP: intake, consistency, pre-review, reading.

One service per database backend for the whole module (distinct enterprises keep the
tests apart), on the real broker in a vhost of its own.
"""
import json

import eventlet
import pytest
from sqlalchemy import text

from shared.contracts import FilingMessageSchema
from shared.keys import Keys
from tests.integration import filing_support as fs
from tests.integration.filing_support import (COUNTY, assert_problem, enterprise, filing_payload,
                                              new_uscc, officer)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, broker, run_id, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"filing_intake_{request.param}")
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with fs.vhost(broker, f"cqo_test_{run_id}_filing_intake_{request.param}") as uri, \
            fs.database_config(request.param, tmp, pg, f"intake_{run_id}") as db_config, \
            fs.FilingStack(uri, db_config, tmp / "keys") as stack:
        sink = fs.Probe(uri, "cqo.filings", "filing.#")  # forwarded filings land somewhere
        stack.amqp_uri = uri
        yield stack
        sink.close()


def test_bad_input_is_a_problem_and_writes_nothing(stack):
    uscc = new_uscc()
    before = stack.counts()
    token = enterprise(uscc)
    body = filing_payload(uscc, cqo__years_quality_work="eight", cqo__id_number="130921198013011234")
    del body["appointment"]["letter_number"]
    problem = assert_problem(stack.post("/filings", body, token), 422, "VALIDATION_FAILED")
    assert set(problem["errors"]) == {"cqo.years_quality_work", "cqo.id_number",
                                      "appointment.letter_number"}
    assert problem["errors"]["appointment.letter_number"] == ["必填字段缺失"]
    assert "出生日期" in problem["errors"]["cqo.id_number"][0]

    for override in ({"enterprise__uscc": "91130921MA0XXXXX0X"}, {"enterprise__county": "999999"},
                     {"kind": "transfer"}, {"cqo__attests_law_knowledge": "true"},
                     {"cqo__name": "张\x00三"}, {"cqo__position": "\ud800"}):  # not a 500
        assert_problem(stack.post("/filings", filing_payload(uscc, **override), token), 422)

    headers = {**token, "Content-Type": "application/json"}
    assert_problem(fs.requests.post(stack.url + "/filings", data=b"{not json", headers=headers,
                                    timeout=10), 400, "BAD_JSON")
    assert_problem(fs.requests.post(stack.url + "/filings", data=b"", headers=headers,
                                    timeout=10), 400, "BAD_JSON")
    assert_problem(fs.requests.post(stack.url + "/filings", data={"kind": "establishment"},
                                    headers=token, timeout=10), 415)
    huge = filing_payload(uscc, end_reason="很" * 40_000)
    assert_problem(stack.post("/filings", huge, token), 413, "PAYLOAD_TOO_LARGE")
    assert_problem(stack.post("/filings", [filing_payload(uscc)], token), 422)
    assert stack.counts() == before


def test_wrong_scope_is_refused_and_writes_nothing(stack):
    uscc, other = new_uscc(), new_uscc()
    body = filing_payload(uscc)
    before = stack.counts()
    assert_problem(stack.post("/filings", body), 401, "AUTH_MISSING")
    assert_problem(stack.post("/filings", body, {"Authorization": "Bearer x.y.z"}), 401)
    assert_problem(stack.post("/filings", body, officer()), 403, "AUTH_FORBIDDEN")
    assert_problem(stack.post("/filings", body, fs.bearer("city_officer")), 403)
    # an enterprise files for itself only, and at its own county
    assert_problem(stack.post("/filings", body, enterprise(other)), 403, "AUTH_FORBIDDEN")
    assert_problem(stack.post("/filings", body, enterprise(uscc, county="130922")), 403)
    wrong_county = filing_payload(uscc, enterprise__county="130922")
    problem = assert_problem(stack.post("/filings", wrong_county, enterprise(uscc)), 422,
                             "FILING_WRONG_COUNTY")
    assert "青县" in problem["detail"] and "enterprise.county" in problem["errors"]
    assert stack.counts() == before


def test_blocking_qualification_stops_the_filing(stack):
    uscc = new_uscc()
    before = stack.counts()
    body = filing_payload(uscc, cqo__years_quality_work=1.5, cqo__title_level="junior",
                          cqo__education_level="secondary")
    problem = assert_problem(stack.post("/filings", body, enterprise(uscc)), 422,
                             "QUALIFICATION_NOT_MET")
    codes = {f["code"]: f["severity"] for f in problem["details"]["findings"]}
    assert codes == {"QUAL_YEARS": "blocking", "QUAL_TITLE_OR_EDUCATION": "blocking"}
    assert set(problem["errors"]) == {"cqo.years_quality_work", "cqo.title_level"}
    assert "1.5年" in problem["detail"]
    assert stack.counts() == before


def test_warnings_travel_with_the_filing(stack):
    uscc = new_uscc()
    filing = stack.file(uscc, cqo__training_certificate=None, cqo__education_level="junior_college",
                        cqo__title_level="none", appointment__appointed_by_top_manager=False)
    codes = sorted(f["code"] for f in filing["findings"])
    assert codes == ["APPT_NOT_TOP_MANAGER", "QUAL_EDUCATION_CONFIRM", "QUAL_TRAINING"]
    assert all(f["severity"] == "warning" and f["article"] for f in filing["findings"])
    assert filing["status"] == "submitted" and filing["status_name"] == "待预审"
    assert filing["channel"] == "proactive" and filing["version"] == 1
    stack.review(filing["id"])
    with stack.db.unit_of_work() as uow:
        payload = uow.session.execute(text(
            "SELECT payload FROM outbox_messages WHERE message_id = :m"),
            {"m": f"filing:{filing['id']}:v1"}).scalar_one()
    message = FilingMessageSchema().load(json.loads(payload))
    assert sorted(f["code"] for f in message["findings"]) == codes


def test_one_open_filing_per_enterprise(stack):
    uscc = new_uscc()
    first = stack.file(uscc)
    before = stack.counts()
    problem = assert_problem(stack.post("/filings", filing_payload(uscc, kind="update"),
                                        enterprise(uscc)), 409, "FILING_OPEN_EXISTS")
    assert problem["details"] == {"filing_id": first["id"], "status": "submitted"}
    assert "未办结" in problem["detail"]
    assert stack.counts() == before
    # once withdrawn, the enterprise may file again
    resp = stack.post(f"/filings/{first['id']}/withdraw", None, enterprise(uscc))
    assert resp.status_code == 200 and resp.json()["status"] == "withdrawn"
    assert stack.file(uscc)["status"] == "submitted"


def test_concurrent_submissions_let_exactly_one_through(stack):
    uscc = new_uscc()
    pool = eventlet.GreenPool()
    statuses = list(pool.imap(lambda _: stack.post("/filings", filing_payload(uscc),
                                                  enterprise(uscc)).status_code, range(6)))
    assert sorted(statuses) == [201] + [409] * 5
    assert stack.count("filings", "uscc = :u", u=uscc) == 1


def test_establishment_refused_when_a_cqo_is_filed(stack):
    uscc = new_uscc()
    filing = stack.file(uscc)
    stack.review(filing["id"])
    fs.publish(stack.amqp_uri, "cqo.decisions", f"decision.{COUNTY}",
               {"county": COUNTY, "decisions": [fs.decision(filing, "accepted")]})
    fs.wait_for(lambda: stack.get(f"/filings/{filing['id']}", enterprise(uscc))
                .json()["status"] == "accepted", message="decision applied")
    before = stack.counts()
    problem = assert_problem(stack.post("/filings", filing_payload(uscc), enterprise(uscc)), 409,
                             "FILING_ALREADY_ESTABLISHED")
    assert "变更" in problem["detail"] and problem["details"]["suggested_kind"] == "change"
    assert stack.counts() == before
    change = stack.file(uscc, kind="change")
    assert change["kind_name"] == "变更" and change["findings"] == []  # a prior filing is known


def test_change_without_prior_filing_is_flagged_for_the_county(stack):
    change = stack.file(kind="change")
    assert [f["code"] for f in change["findings"]] == ["FILING_NO_PRIOR"]


def test_returned_filing_is_corrected_as_a_new_version(stack):
    uscc = new_uscc()
    first = stack.file(uscc, cqo__phone="13900000000")
    returned = stack.review(first["id"], "return", "任命书文号与附件不一致，请核对")
    assert returned["status"] == "returned" and returned["status_name"] == "退回"
    assert returned["reviews"][0]["comment"] == "任命书文号与附件不一致，请核对"

    path = f"/filings/{first['id']}"
    assert_problem(stack.put(path, filing_payload(uscc, kind="update"), enterprise(uscc)), 422,
                   "FILING_KIND_FIXED")
    assert_problem(stack.put(path, filing_payload(uscc), enterprise(new_uscc())), 403)
    blocked = filing_payload(uscc, cqo__years_quality_work=0)
    assert_problem(stack.put(path, blocked, enterprise(uscc)), 422, "QUALIFICATION_NOT_MET")
    assert stack.count("filing_versions", "filing_id = :f", f=first["id"]) == 1

    corrected = filing_payload(uscc, appointment__letter_number="沧示质〔2026〕2号")
    resp = stack.put(path, corrected, enterprise(uscc))
    assert resp.status_code == 200, resp.text
    second = resp.json()
    assert second["version"] == 2 and second["status"] == "submitted"
    assert second["submitted_to_county_on"] == first["submitted_to_county_on"]  # art. 14
    assert [v["version"] for v in second["versions"]] == [1, 2]
    assert second["versions"][0]["appointment"]["letter_number"] == "沧示质〔2026〕1号"
    assert second["current"]["appointment"]["letter_number"] == "沧示质〔2026〕2号"
    assert_problem(stack.put(path, corrected, enterprise(uscc)), 409, "FILING_INVALID_STATE")

    approved = stack.review(first["id"])
    assert approved["status"] == "forwarded" and approved["approved_on"]
    assert [(r["version"], r["decision"]) for r in approved["reviews"]] == [(1, "return"),
                                                                            (2, "approve")]
    assert stack.count("outbox_messages", "message_id = :m", m=f"filing:{first['id']}:v2") == 1


def test_review_rules(stack):
    uscc = new_uscc()
    filing = stack.file(uscc)
    path = f"/filings/{filing['id']}/review"
    before = stack.counts()
    assert_problem(stack.post(path, {"decision": "approve"}, enterprise(uscc)), 403)
    assert_problem(stack.post(path, {"decision": "approve"}, officer("130922")), 403)
    assert_problem(stack.post(path, {"decision": "return"}, officer()), 422)
    assert_problem(stack.post(path, {"decision": "ok"}, officer()), 422)
    assert_problem(stack.post("/filings/00000000-0000-4000-8000-000000000000/review",
                              {"decision": "approve"}, officer()), 404, "FILING_NOT_FOUND")
    assert_problem(stack.post("/filings/not-a-uuid/review", {"decision": "approve"}, officer()), 404)
    assert stack.counts() == before
    stack.review(filing["id"])
    assert_problem(stack.post(path, {"decision": "approve"}, officer()), 409, "FILING_INVALID_STATE")
    assert_problem(stack.post(f"/filings/{filing['id']}/withdraw", None, enterprise(uscc)), 409)


def test_listing_filters_and_scopes(stack):
    a, b = new_uscc(), new_uscc()
    fa = stack.file(a, enterprise__category="service_above_scale")
    fb = stack.file(b)
    stack.review(fb["id"], "return", "请补充任命书")

    mine = stack.get("/filings", enterprise(a)).json()
    assert [f["id"] for f in mine["items"]] == [fa["id"]] and mine["total"] == 1
    assert_problem(stack.get("/filings", enterprise(a), params={"uscc": b}), 403)

    def ids(**params):
        resp = stack.get("/filings", officer(), params=params)
        assert resp.status_code == 200, resp.text
        return {f["id"] for f in resp.json()["items"]}

    assert ids(uscc=a) == {fa["id"]}
    assert ids(uscc=b, status="returned") == {fb["id"]}
    assert ids(uscc=b, status="submitted,approved") == set()
    assert fa["id"] in ids(category="service_above_scale", kind="establishment", page_size=200)
    assert fa["id"] not in ids(category="industrial_above_scale", page_size=200)
    day = fa["submitted_to_county_on"]
    assert fa["id"] in ids(submitted_from=day, submitted_to=day, page_size=200)
    assert ids(submitted_to="2000-01-01") == set()
    page = stack.get("/filings", officer(), params={"page_size": 1, "page": 2}).json()
    assert len(page["items"]) == 1 and page["total"] >= 2 and page["page"] == 2
    assert stack.get("/filings", fs.bearer("city_officer"), params={"uscc": a}).json()["total"] == 1
    assert_problem(stack.get("/filings", officer("130922")), 403)
    problem = assert_problem(stack.get("/filings", officer(), params={"status": "lost"}), 422)
    assert "待预审" in problem["errors"]["status"][0]
    assert_problem(stack.get("/filings", officer(), params={"colour": "red"}), 422)


def test_the_county_pages_as_before(stack):
    # the registry took the county's names (page, page_size); the county's paging is unchanged:
    # 50 a page, at most 200, and no per_page (the registry's old name) in or out
    for _ in range(2):
        stack.file()
    for path in ("/filings", "/notices"):
        body = stack.get(path, officer()).json()
        assert set(body) == {"items", "total", "page", "page_size"}
        assert (body["page"], body["page_size"]) == (1, 50)
    page = stack.get("/filings", officer(), params={"page_size": 1, "page": 2}).json()
    assert (len(page["items"]), page["page"], page["page_size"]) == (1, 2, 1)
    assert stack.get("/filings", officer(), params={"page_size": 200}).status_code == 200
    problem = assert_problem(stack.get("/filings", officer(), params={"page_size": 201}), 422)
    assert problem["errors"] == {"page_size": ["应在 1 到 200 之间"]}
    for path in ("/filings", "/notices"):
        problem = assert_problem(stack.get(path, officer(), params={"per_page": 1}), 422)
        assert problem["errors"] == {"per_page": ["未知的查询参数"]}


def test_detail_scope_and_the_id_number_never_leaves_in_clear(stack, tmp_path_factory):
    uscc = new_uscc()
    body = filing_payload(uscc)
    number = body["cqo"]["id_number"]
    resp = stack.post("/filings", body, enterprise(uscc))
    assert resp.status_code == 201
    filing = resp.json()
    assert resp.headers["Location"] == f"/api/v1/filings/{filing['id']}"
    assert number not in resp.text
    assert filing["cqo_id_masked"] == number[:6] + "********" + number[-4:]
    assert filing["current"]["cqo"]["id_masked"] == filing["cqo_id_masked"]
    assert "id_number" not in filing["current"]["cqo"]
    assert_problem(stack.get(f"/filings/{filing['id']}", enterprise(new_uscc())), 403)
    assert stack.get(f"/filings/{filing['id']}", officer()).status_code == 200
    stack.review(filing["id"])
    with stack.db.unit_of_work() as uow:
        row = uow.session.execute(text(
            "SELECT v.id_encrypted, o.payload FROM filing_versions v JOIN outbox_messages o "
            "ON o.message_id = :m WHERE v.filing_id = :f"),
            {"m": f"filing:{filing['id']}:v1", "f": filing["id"]}).one()
        stored = uow.session.execute(text("SELECT data FROM filing_versions WHERE filing_id = :f"),
                                     {"f": filing["id"]}).scalar_one()
    assert number not in row.payload and number not in row.id_encrypted and number not in str(stored)
    assert Keys(stack.config).id_cipher().decrypt(row.id_encrypted) == number


def test_campaign_endpoint_without_campaign(stack):
    assert_problem(stack.get("/campaign", officer()), 404, "CAMPAIGN_NOT_OPEN")
    assert_problem(stack.get("/campaign"), 401)


def test_openapi_health_and_routing_problems(stack):
    spec = stack.get("/openapi.json").json()
    expected = {("/api/v1/filings", "post"), ("/api/v1/filings", "get"),
                ("/api/v1/filings/{filing_id}", "get"), ("/api/v1/filings/{filing_id}", "put"),
                ("/api/v1/filings/{filing_id}/review", "post"),
                ("/api/v1/filings/{filing_id}/withdraw", "post"), ("/api/v1/batches", "post"),
                ("/api/v1/batches/{batch_id}", "get"), ("/api/v1/campaign", "get")}
    operations = {(p, m): op for p, ops in spec["paths"].items() for m, op in ops.items()}
    assert expected <= set(operations)
    for key in expected:
        op = operations[key]
        assert op["summary"] and op["security"] == [{"bearerAuth": []}], key
        assert "403" in op["responses"] and "401" in op["responses"]
    assert "FilingIn" in json.dumps(spec["paths"]["/api/v1/filings"]["post"])
    health = stack.get("/health").json()
    assert health["status"] == "ok" and health["county"] == COUNTY and "outbox_backlog" in health
    assert_problem(stack.get("/nowhere"), 404)
    assert_problem(fs.requests.delete(stack.url + "/filings", timeout=10), 405)


def test_migration_matches_the_models(stack):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from services.filing.models import FilingBase

    with stack.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), FilingBase.metadata)

    def table_of(entry):
        op = entry[0] if isinstance(entry, list) else entry  # column changes come as lists
        if op[0] in ("add_table", "remove_table"):
            return op[1].name
        if op[0] in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
            return op[1].table.name
        return op[2]  # (op, schema, table, ...)

    shared = {"outbox_messages", "inbox_messages", "dead_letters"}  # the shared branch's
    assert [d for d in diff if table_of(d) not in shared] == []

"""Typical experiences and benchmark CQOs (art. 17) over HTTP, on both databases: the
county submits with attachments (SHA-256 kept and checked on the way out), the city
reviews and publishes only with the enterprise's consent, the public reads what is
published without a token; benchmarks are designated and withdrawn by the city only."""
import hashlib
from datetime import date

import pytest
import requests
from sqlalchemy import text

from shared.clock import today
from shared.validators.uscc import make_uscc
from tests.integration.registry_support import token

pytestmark = pytest.mark.integration

COUNTY, OTHER = "130921", "130922"
USCC = make_uscc(division=COUNTY, org_body="MA0EXP01")
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
MiB = 1024 * 1024


def _headers(role, **kw):
    return {"Authorization": token(role, **kw)}


COUNTY_OFFICER = _headers("county_officer", county=COUNTY)
OTHER_OFFICER = _headers("county_officer", county=OTHER)
CITY = _headers("city_officer")
ENTERPRISE = _headers("enterprise", uscc=USCC)


def _submit(base, *, consent=None, headers=COUNTY_OFFICER, **fields):
    body = {"title": "质量追溯体系建设经验", "text": "建立全流程质量追溯……\n第二段。", "uscc": USCC,
            "enterprise_name": "沧州示范机械有限公司", **fields}
    if consent is not None:
        body["consent"] = consent
    return requests.post(base + "/api/v1/experiences", json=body, headers=headers, timeout=10)


def _upload(base, experience_id, name, content, content_type="application/octet-stream",
            headers=COUNTY_OFFICER):
    return requests.post(f"{base}/api/v1/experiences/{experience_id}/attachments",
                         files={"file": (name, content, content_type)}, headers=headers, timeout=30)


def _review(base, experience_id, action, comment=None, headers=CITY):
    return requests.post(f"{base}/api/v1/experiences/{experience_id}/review",
                         json={"action": action, "comment": comment}, headers=headers, timeout=10)


def _consent(base, experience_id, consented=True, headers=COUNTY_OFFICER, **kw):
    body = {"consented": consented, **kw}
    if consented and not kw:
        body["document_ref"] = "沧质经验同意〔2026〕3号"
    return requests.put(f"{base}/api/v1/experiences/{experience_id}/consent", json=body,
                        headers=headers, timeout=10)


def _public(base, path=""):
    return requests.get(f"{base}/api/v1/public/experiences{path}", timeout=10)


def test_attachment_keeps_its_sha256_and_is_checked_on_download(talent):
    base, db, _ = talent
    resp = _submit(base)
    assert resp.status_code == 201, resp.text
    experience = resp.json()
    assert experience["status"] == "submitted" and experience["county"] == COUNTY
    assert experience["consent"]["consented"] is False

    resp = _upload(base, experience["id"], "追溯流程.pdf", PDF, "application/pdf")
    assert resp.status_code == 201, resp.text
    attachment = resp.json()
    assert attachment["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert attachment["size"] == len(PDF) and attachment["content_type"] == "application/pdf"

    resp = requests.get(base + attachment["download"], headers=COUNTY_OFFICER, timeout=10)
    assert resp.status_code == 200 and resp.content == PDF
    assert resp.headers["Content-Type"] == "application/pdf"
    assert "filename*=UTF-8''%E8%BF%BD%E6%BA%AF%E6%B5%81%E7%A8%8B.pdf" in resp.headers["Content-Disposition"]
    assert resp.headers["Content-Disposition"].startswith("attachment;")

    # the stored bytes changed behind the service's back: refused with its own code, no 500
    with db.unit_of_work() as uow:
        uow.session.execute(text("UPDATE experience_attachments SET content = :c WHERE id = :i"),
                            {"c": PDF.replace(b"1.4", b"1.7"), "i": attachment["id"]})
        uow.commit()
    resp = requests.get(base + attachment["download"], headers=CITY, timeout=10)
    assert resp.status_code == 409, resp.text
    assert resp.json()["code"] == "ATTACHMENT_INTEGRITY_FAILED"


def test_too_large_wrong_type_and_too_many_attachments_are_refused_with_their_codes(talent):
    base, _, _ = talent
    experience_id = _submit(base).json()["id"]
    just_over = b"%PDF-" + b"0" * (5 * MiB - 4)  # 5 MiB + 1 byte: counted after reading
    for content in (just_over, b"%PDF-" + b"0" * (6 * MiB)):  # refused from Content-Length
        resp = _upload(base, experience_id, "大文件.pdf", content)
        assert resp.status_code == 413, resp.text
        assert resp.json()["code"] == "ATTACHMENT_TOO_LARGE" and "5 MiB" in resp.json()["detail"]

    for name, content, code in (("说明.txt", b"plain text", "ATTACHMENT_TYPE_NOT_ALLOWED"),
                                ("程序.exe", b"MZ\x90\x00", "ATTACHMENT_TYPE_NOT_ALLOWED"),
                                ("伪装.pdf", b"<html></html>", "ATTACHMENT_CONTENT_MISMATCH")):
        resp = _upload(base, experience_id, name, content)
        assert resp.status_code == 415 and resp.json()["code"] == code, resp.text
        assert resp.json()["detail"]  # a Chinese message

    resp = _upload(base, experience_id, "空.pdf", b"")
    assert resp.status_code == 422 and resp.json()["code"] == "ATTACHMENT_EMPTY"
    resp = requests.post(f"{base}/api/v1/experiences/{experience_id}/attachments", data=PDF,
                         headers={**COUNTY_OFFICER, "Content-Type": "application/pdf"}, timeout=10)
    assert resp.status_code == 415

    for n in range(10):
        assert _upload(base, experience_id, f"图{n}.png", PNG).status_code == 201
    resp = _upload(base, experience_id, "图10.png", PNG)
    assert resp.status_code == 409 and resp.json()["code"] == "ATTACHMENT_COUNT_EXCEEDED"
    detail = requests.get(f"{base}/api/v1/experiences/{experience_id}", headers=COUNTY_OFFICER, timeout=10).json()
    assert len(detail["attachments"]) == 10
    assert all(a["content_type"] == "image/png" for a in detail["attachments"])

    first = detail["attachments"][0]
    resp = requests.delete(base + first["download"], headers=COUNTY_OFFICER, timeout=10)
    assert resp.status_code == 204
    assert _upload(base, experience_id, "图10.png", PNG).status_code == 201


def test_another_countys_officer_is_refused(talent):
    base, _, _ = talent
    assert _submit(base, county=OTHER).status_code == 403  # submitting for another county
    experience_id = _submit(base).json()["id"]
    attachment = _upload(base, experience_id, "a.pdf", PDF).json()
    for resp in (requests.get(f"{base}/api/v1/experiences/{experience_id}", headers=OTHER_OFFICER, timeout=10),
                 requests.patch(f"{base}/api/v1/experiences/{experience_id}", json={"title": "改"},
                                headers=OTHER_OFFICER, timeout=10),
                 _upload(base, experience_id, "b.pdf", PDF, headers=OTHER_OFFICER),
                 _consent(base, experience_id, headers=OTHER_OFFICER),
                 requests.get(base + attachment["download"], headers=OTHER_OFFICER, timeout=10)):
        assert resp.status_code == 403, resp.text
        assert resp.json()["code"] == "AUTH_FORBIDDEN"
    listing = requests.get(base + "/api/v1/experiences", headers=OTHER_OFFICER, timeout=10).json()
    assert listing["total"] == 0
    # the county cannot review its own experience; enterprises read no unpublished one
    assert _review(base, experience_id, "approve", headers=COUNTY_OFFICER).status_code == 403
    assert requests.get(f"{base}/api/v1/experiences/{experience_id}", headers=ENTERPRISE,
                        timeout=10).status_code == 403


def test_publishing_needs_consent_and_then_the_public_reads_it_without_a_token(talent):
    base, _, _ = talent
    experience_id = _submit(base).json()["id"]
    attachment = _upload(base, experience_id, "现场照片.png", PNG, "image/png").json()
    unpublished_id = _submit(base, title="尚未发布的经验").json()["id"]

    resp = _review(base, experience_id, "return")
    assert resp.status_code == 422 and resp.json()["code"] == "REVIEW_COMMENT_REQUIRED"
    resp = _review(base, experience_id, "return", "请补充数据")
    assert resp.json()["status"] == "returned" and resp.json()["review_comment"] == "请补充数据"
    resp = requests.patch(f"{base}/api/v1/experiences/{experience_id}",
                          json={"text": "补充了数据的正文"}, headers=COUNTY_OFFICER, timeout=10)
    assert resp.status_code == 200 and resp.json()["status"] == "submitted", resp.text

    assert _review(base, experience_id, "publish").json()["code"] == "EXPERIENCE_STATE_CONFLICT"
    assert _review(base, experience_id, "approve").json()["status"] == "approved"
    resp = _review(base, experience_id, "publish")
    assert resp.status_code == 409 and resp.json()["code"] == "EXPERIENCE_CONSENT_MISSING", resp.text
    assert _public(base).json()["total"] == 0

    resp = _consent(base, experience_id, document_ref=None)  # consent without evidence
    assert resp.status_code == 422 and resp.json()["code"] == "CONSENT_EVIDENCE_MISSING"
    resp = _consent(base, experience_id, consented_on=date(2026, 1, 5).isoformat())
    assert resp.status_code == 200 and resp.json()["consent"]["recorded_by"], resp.text
    resp = _review(base, experience_id, "publish")
    assert resp.status_code == 200 and resp.json()["status"] == "published", resp.text
    assert resp.json()["published_on"] == today().isoformat()
    actions = [h["action"] for h in resp.json()["history"]]
    assert actions == ["submitted", "attachment_added", "return", "resubmitted", "approve", "consent",
                       "publish"]

    listing = _public(base).json()
    assert listing["total"] == 1 and listing["page"] == 1
    (item,) = listing["items"]
    assert item["id"] == experience_id and item["text"] == "补充了数据的正文"
    assert item["county"] == COUNTY and item["county_name"] and item["enterprise_name"]
    assert "uscc" not in item and "consent" not in item and "history" not in item
    (public_attachment,) = item["attachments"]
    assert public_attachment["sha256"] == attachment["sha256"] and public_attachment["size"] == len(PNG)
    assert _public(base, f"?year={today().year}").json()["total"] == 1
    assert _public(base, f"?year={today().year - 1}").json()["total"] == 0
    assert _public(base, f"/{experience_id}").json()["title"] == item["title"]
    resp = requests.get(base + public_attachment["download"], timeout=10)
    assert resp.status_code == 200 and resp.content == PNG and resp.headers["Content-Type"] == "image/png"

    # unpublished: not for the public, whatever the path
    assert _public(base, f"/{unpublished_id}").status_code == 404
    draft_attachment = _upload(base, unpublished_id, "草稿.pdf", PDF).json()
    assert requests.get(f"{base}/api/v1/public/experiences/{unpublished_id}/attachments/"
                        f"{draft_attachment['id']}", timeout=10).status_code == 404
    # a published experience is no longer changed by the county
    resp = requests.patch(f"{base}/api/v1/experiences/{experience_id}", json={"title": "改"},
                          headers=COUNTY_OFFICER, timeout=10)
    assert resp.status_code == 409 and resp.json()["code"] == "EXPERIENCE_STATE_CONFLICT"

    # the enterprise withdraws its consent: the experience leaves the public list at once
    resp = _consent(base, experience_id, consented=False)
    assert resp.json()["status"] == "approved" and resp.json()["published_on"] is None
    assert _public(base).json()["total"] == 0
    assert _public(base, f"/{experience_id}").status_code == 404


def test_benchmarks_are_designated_and_withdrawn_by_the_city_only(talent):
    base, _, _ = talent
    year = today().year
    body = {"year": year, "name": "王质量", "uscc": USCC, "enterprise_name": "沧州示范机械有限公司",
            "county": COUNTY, "citation": "建立质量追溯体系，产品抽检合格率连续三年100%。"}
    for headers in (COUNTY_OFFICER, ENTERPRISE):
        resp = requests.post(base + "/api/v1/benchmarks", json=body, headers=headers, timeout=10)
        assert resp.status_code == 403 and resp.json()["code"] == "AUTH_FORBIDDEN"
    resp = requests.post(base + "/api/v1/benchmarks", json=body, headers=CITY, timeout=10)
    assert resp.status_code == 201, resp.text
    first = resp.json()
    assert first["withdrawn"] is False and first["designated_by"]
    resp = requests.post(base + "/api/v1/benchmarks", json=body, headers=CITY, timeout=10)
    assert resp.status_code == 409 and resp.json()["code"] == "BENCHMARK_DUPLICATE"
    second = requests.post(base + "/api/v1/benchmarks", json={**body, "name": "李标杆"}, headers=CITY,
                           timeout=10).json()
    bad = requests.post(base + "/api/v1/benchmarks", json={**body, "uscc": USCC[:-1] + "0", "county": "999999"},
                        headers=CITY, timeout=10)
    assert bad.status_code == 422 and {"uscc", "county"} <= set(bad.json()["errors"]), bad.text

    public = requests.get(f"{base}/api/v1/public/benchmarks?year={year}", timeout=10).json()
    assert [b["name"] for b in public["items"]] == ["王质量", "李标杆"]
    assert "uscc" not in public["items"][0] and "designated_by" not in public["items"][0]

    withdraw = f"{base}/api/v1/benchmarks/{first['id']}/withdrawal"
    assert requests.post(withdraw, json={"reason": "企业发生质量事故"}, headers=COUNTY_OFFICER,
                         timeout=10).status_code == 403
    resp = requests.post(withdraw, json={"reason": "企业发生质量事故"}, headers=CITY, timeout=10)
    assert resp.status_code == 200 and resp.json()["withdrawn"] is True, resp.text
    resp = requests.post(withdraw, json={"reason": "再次撤销"}, headers=CITY, timeout=10)
    assert resp.status_code == 409 and resp.json()["code"] == "BENCHMARK_ALREADY_WITHDRAWN"

    public = requests.get(f"{base}/api/v1/public/benchmarks?year={year}", timeout=10).json()
    assert public["total"] == 1 and public["items"][0]["id"] == second["id"]
    assert requests.get(f"{base}/api/v1/public/benchmarks?year={year - 1}", timeout=10).json()["total"] == 0
    # officers still see the withdrawn one, marked, when they ask for it
    kept = requests.get(f"{base}/api/v1/benchmarks?year={year}&include_withdrawn=true",
                        headers=COUNTY_OFFICER, timeout=10).json()
    assert kept["total"] == 2
    assert {b["id"]: b["withdrawn"] for b in kept["items"]} == {first["id"]: True, second["id"]: False}
    assert [b["withdrawal_reason"] for b in kept["items"] if b["withdrawn"]] == ["企业发生质量事故"]

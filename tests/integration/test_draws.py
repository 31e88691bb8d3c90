"""Panel draws (issue 10) on both databases: exclusions, declines and supplementary
draws, who sees a panel before and after it is published, verification and each kind of
tampering it must find, bad input, and a chain that concurrent draws cannot fork."""
from __future__ import annotations

import json

import eventlet
import pytest
import requests
from sqlalchemy import text

from services.talent.domain import audit_chain
from services.talent.draws import chain
from tests.integration.registry_support import token
from tests.support.factories import uscc_for
from tests.support.talent_pool import EMAIL_MASKED, PHONE_MASKED, add_expert, add_experts

pytestmark = pytest.mark.integration

INVOLVED = uscc_for("130921", 1)
OTHER = uscc_for("130922", 2)


def post(base, path, body=None, role="city_officer", **claims):
    return requests.post(base + path, json=body if body is not None else {},
                         headers={"Authorization": token(role, **claims)}, timeout=30)


def get(base, path, role="city_officer", **claims):
    headers = {"Authorization": token(role, **claims)} if role else {}
    return requests.get(base + path, headers=headers, timeout=30)


def draw(base, **body):
    body = {"purpose": "质量诊断专家组", "size": 3, "alternates": 1, **body}
    resp = post(base, "/api/v1/draws", body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def verify(base, draw_id):
    resp = get(base, f"/api/v1/draws/{draw_id}/verification")
    assert resp.status_code == 200, resp.text
    return resp.json()


def outbox(db, routing_key):
    with db.unit_of_work() as uow:
        return [json.loads(p) for (p,) in uow.session.execute(text(
            "SELECT payload FROM outbox_messages WHERE routing_key = :k ORDER BY seq"),
            {"k": routing_key})]


def test_a_draw_excludes_employed_conflicted_suspended_and_unqualified_experts(talent):
    base, db, _ = talent
    with db.unit_of_work() as uow:
        s = uow.session
        good = [add_expert(s, n, expertise=("13",) if n % 2 else ("C", "26")).id for n in range(6)]
        bad = [add_expert(s, 10, employer=INVOLVED).id,
               add_expert(s, 11, conflicts=(INVOLVED,)).id,
               add_expert(s, 12, status="suspended").id,
               add_expert(s, 13, county="130922").id,      # an involved county, excluded
               add_expert(s, 14, expertise=("M",)).id,      # another field
               add_expert(s, 15, conflicts=(OTHER,)).id]    # a conflict with someone else: fine
        uow.commit()
    good.append(bad.pop())
    result = draw(base, size=4, alternates=2, expertise=["C"], enterprises=[INVOLVED],
                  counties=["130922"], exclude_involved_counties=True)
    (run,) = result["draws"]
    assert run["eligible_count"] == len(good) == 7
    chosen = [m["expert_id"] for m in result["members"]]
    assert len(chosen) == 6 and set(chosen) <= set(good) and not set(chosen) & set(bad)
    assert [m["role"] for m in result["members"]] == ["member"] * 4 + ["alternate"] * 2
    assert [m["state"] for m in result["members"]] == ["invited"] * 4 + ["standby"] * 2
    assert len(result["panel"]) == 4
    assert result["parameters"]["expertise"] == ["C"] and "13" in result["parameters"]["expertise_matched"]
    invited = outbox(db, "talent.draw.invited")
    assert sorted(e["data"]["expert_id"] for e in invited) == sorted(chosen[:4])
    assert all(e["data"]["role"] == "member" and e["subject"]["id"] == result["id"] for e in invited)
    report = verify(base, result["id"])
    assert report["ok"], report
    assert [c["name"] for c in report["checks"]] == ["snapshot", "snapshot_hash", "order",
                                                      "result", "chain"]


def test_a_decline_is_replaced_by_the_alternate_then_by_a_supplementary_draw(talent):
    base, db, _ = talent
    add_experts(db, 6)
    first = draw(base, size=2, alternates=1)
    panel = [m["expert_id"] for m in first["panel"]]
    (alternate,) = [m["expert_id"] for m in first["members"] if m["role"] == "alternate"]

    resp = post(base, f"/api/v1/draws/{first['id']}/declines", {"expert_id": panel[0]})
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert [m["expert_id"] for m in after["panel"]] == [panel[1], alternate]
    states = {m["expert_id"]: (m["state"], m["replaced_by"]) for m in after["members"]}
    assert states[panel[0]] == ("declined", alternate) and states[alternate] == ("invited", None)
    stepped_in = [e for e in outbox(db, "talent.draw.invited") if e["data"]["role"] == "alternate"]
    assert [e["data"]["expert_id"] for e in stepped_in] == [alternate]

    # the alternates have run out: a supplementary draw, linked, with its own seed
    resp = post(base, f"/api/v1/draws/{first['id']}/declines", {"expert_id": panel[1]})
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert len(after["draws"]) == 2
    supplementary = after["draws"][1]
    assert supplementary["parent_draw_id"] == first["id"]
    assert supplementary["seed"] != after["draws"][0]["seed"]
    assert supplementary["eligible_count"] == 3  # 6 less the 3 already drawn
    assert supplementary["size"] == 1 and supplementary["alternates"] == 1
    newcomer = after["panel"][-1]["expert_id"]
    assert newcomer not in panel + [alternate] and len(after["panel"]) == 2
    assert verify(base, supplementary["id"])["ok"]
    assert verify(base, first["id"])["ok"]

    again = post(base, f"/api/v1/draws/{first['id']}/declines", {"expert_id": panel[1]})
    assert again.status_code == 409 and again.json()["code"] == "DRAW_ALREADY_DECLINED"
    stranger = post(base, f"/api/v1/draws/{first['id']}/declines", {"expert_id": "nobody"})
    assert stranger.status_code == 422 and stranger.json()["code"] == "DRAW_NOT_A_MEMBER"
    # a decline on the supplementary seat, addressed to the first draw, uses its alternate
    resp = post(base, f"/api/v1/draws/{first['id']}/declines", {"expert_id": newcomer})
    assert resp.status_code == 200, resp.text
    with db.unit_of_work() as uow:
        entries = list(chain.entries(uow.session))
    assert audit_chain.first_break(entries) is None
    assert [e.record["kind"] for e in entries] == ["draw", "decline", "draw", "decline", "decline"]


def test_an_unpublished_panel_is_for_city_officers_only_and_public_once_published(talent):
    base, db, _ = talent
    add_experts(db, 5)
    result = draw(base)
    path = f"/api/v1/draws/{result['id']}"
    public_path = f"/api/v1/public/draws/{result['id']}"
    assert get(base, path, "enterprise", uscc=INVOLVED).status_code == 403
    assert get(base, path, "county_officer", county="130921").status_code == 403
    assert get(base, public_path, role=None).status_code == 404
    assert get(base, path + "/verification", "county_officer", county="130921").status_code == 403
    assert post(base, path + "/publish", role="enterprise", uscc=INVOLVED).status_code == 403
    assert post(base, "/api/v1/draws", {"purpose": "x", "size": 1},
                role="county_officer", county="130921").status_code == 403
    assert get(base, "/api/v1/public/draws/not-a-draw", role=None).status_code == 404

    resp = post(base, path + "/publish")
    assert resp.status_code == 200 and resp.json()["status"] == "published"
    public = get(base, public_path, role=None)
    assert public.status_code == 200, public.text
    body = public.json()
    assert [m["name"] for m in body["panel"]] == [m["name"] for m in result["panel"]]
    assert body["panel"][0]["expertise"] == [{"code": "13", "name": "农副食品加工业"}]
    for text_ in (public.text, get(base, path, "enterprise", uscc=INVOLVED).text):
        assert PHONE_MASKED not in text_ and EMAIL_MASKED not in text_
        assert "130921********" not in text_ and "phone" not in text_ and "email" not in text_
    assert get(base, path, "enterprise", uscc=INVOLVED).json()["panel"] == body["panel"]
    (published,) = outbox(db, "talent.draw.published")
    assert published["data"]["draw_id"] == result["id"]
    assert [m["name"] for m in published["data"]["members"]] == [m["name"] for m in body["panel"]]
    assert post(base, path + "/publish").status_code == 200  # again: nothing changes
    assert len(outbox(db, "talent.draw.published")) == 1


TAMPERING = {
    # what is edited -> the checks that must fail
    "result": ("UPDATE draws SET panel = :panel WHERE id = :id", {"result", "chain"}),
    "seed": ("UPDATE draws SET seed = :seed WHERE id = :id", {"order", "result", "chain"}),
    "snapshot": ("UPDATE draws SET snapshot = :snapshot WHERE id = :id",
                 {"snapshot", "snapshot_hash"}),
    "snapshot_and_hash": ("UPDATE draws SET snapshot = :snapshot, snapshot_hash = :hash "
                          "WHERE id = :id", {"snapshot", "chain"}),
    "chain": ("UPDATE draw_chain SET record = :record WHERE seq = :seq", {"chain"}),
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_verification_finds_each_tampering(talent, tampering):
    base, db, _ = talent
    ids = add_experts(db, 8)
    result = draw(base)
    draw(base)  # a later entry, so that an edited entry is not the head
    assert verify(base, result["id"])["ok"]
    chosen = {m["expert_id"] for m in result["members"]}
    outsider = next(i for i in ids if i not in chosen)
    with db.unit_of_work() as uow:
        row = uow.session.execute(text(
            "SELECT snapshot, panel, chain_seq FROM draws WHERE id = :id"),
            {"id": result["id"]}).one()
        snapshot = json.loads(row.snapshot)[:-1]
        record = json.loads(uow.session.execute(text(
            "SELECT record FROM draw_chain WHERE seq = :seq"), {"seq": row.chain_seq}).scalar())
        record["panel"] = [outsider] + record["panel"][1:]
        panel = json.loads(row.panel)
        sql, expected = TAMPERING[tampering]
        uow.session.execute(text(sql), {
            "id": result["id"], "panel": json.dumps([outsider] + panel[1:]), "seed": "ab" * 32,
            "snapshot": json.dumps(snapshot), "hash": audit_chain_hash(snapshot),
            "record": audit_chain.canonical(record), "seq": row.chain_seq})
        uow.commit()
    report = verify(base, result["id"])
    failed = {c["name"] for c in report["checks"] if not c["ok"]}
    assert not report["ok"] and failed == expected, report
    if tampering.startswith("snapshot"):  # the expert left out of the snapshot is named
        (check,) = [c for c in report["checks"] if c["name"] == "snapshot"]
        assert check["differences"] == {"missing": [json.loads(row.snapshot)[-1]], "extra": []}


def audit_chain_hash(snapshot):
    from services.talent.domain.draw import snapshot_hash
    return snapshot_hash(snapshot)


@pytest.mark.parametrize("body, code", [
    ({"size": 0}, "DRAW_SIZE_INVALID"),
    ({"size": 101}, "DRAW_SIZE_INVALID"),
    ({"alternates": -1}, "DRAW_ALTERNATES_INVALID"),
    ({"alternates": 101}, "DRAW_ALTERNATES_INVALID"),
    ({"expertise": ["C", "Z9"]}, "DRAW_EXPERTISE_UNKNOWN"),
    ({"size": 4, "alternates": 2}, "DRAW_NOT_ENOUGH_ELIGIBLE"),
])
def test_bad_draw_input_has_its_own_code(talent, body, code):
    base, db, _ = talent
    add_experts(db, 5)
    resp = post(base, "/api/v1/draws", {"purpose": "评审", "size": 3, **body})
    assert resp.status_code == 422, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.json()["code"] == code
    with db.unit_of_work() as uow:  # never a short panel, nothing stored
        assert uow.session.execute(text("SELECT count(*) FROM draws")).scalar() == 0


def test_concurrent_draws_do_not_fork_the_chain(talent):
    base, db, _ = talent
    add_experts(db, 20)
    pool = eventlet.GreenPool(8)
    results = list(pool.imap(lambda n: post(base, "/api/v1/draws", {
        "purpose": f"并发抽取{n}", "size": 2, "alternates": 1}), range(8)))
    assert [r.status_code for r in results] == [201] * 8, [r.text for r in results]
    with db.unit_of_work() as uow:
        entries = list(chain.entries(uow.session))
    assert [e.seq for e in entries] == list(range(1, 9))
    assert audit_chain.first_break(entries) is None
    assert {e.record["draw_id"] for e in entries} == {r.json()["id"] for r in results}
    assert all(verify(base, r.json()["id"])["ok"] for r in results)


def test_cqo_draw_run_and_verify(talent, talent_db_config, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from cqo.cli import app

    base, db, _ = talent
    add_experts(db, 6)
    add_experts(db, 1, start=30, consent=False)
    config = tmp_path / "talent.yaml"
    config.write_text(yaml.safe_dump(talent_db_config), encoding="utf-8")
    runner = CliRunner(env={"COLUMNS": "200"})

    ran = runner.invoke(app, ["draw", "run", "--purpose", "命令行抽取", "--size", "2",
                              "--alternates", "1", "--expertise", "C", "--config", str(config)])
    assert ran.exit_code == 0, ran.output
    assert "抽取结果" in ran.output and "专家00" in ran.output
    assert "未列入候选名单：未同意联系 1 名" in ran.output
    with db.unit_of_work() as uow:
        draw_id = uow.session.execute(text("SELECT id FROM draws")).scalar()
    assert draw_id in ran.output

    checked = runner.invoke(app, ["draw", "verify", draw_id, "--config", str(config)])
    assert checked.exit_code == 0, checked.output
    assert "核验通过" in checked.output
    assert "未同意联系 1 名" in checked.output

    with db.unit_of_work() as uow:
        uow.session.execute(text("UPDATE draws SET seed = :s WHERE id = :id"),
                            {"s": "cd" * 32, "id": draw_id})
        uow.commit()
    checked = runner.invoke(app, ["draw", "verify", draw_id, "--config", str(config)])
    assert checked.exit_code == 1, checked.output
    assert "核验未通过" in checked.output and "排序" in checked.output

    missing = runner.invoke(app, ["draw", "verify", "no-such-draw", "--config", str(config)])
    assert missing.exit_code == 2 and "未找到" in missing.output
    refused = runner.invoke(app, ["draw", "run", "--purpose", "x", "--size", "0",
                                  "--config", str(config)])
    assert refused.exit_code == 2 and "DRAW_SIZE_INVALID" in refused.output


def test_the_draws_pool_is_the_historys_pool(talent):
    """draws.pool_snapshot (cached parsed states, memo of the last pool) answers as
    history.pool_as_of at every instant, also after the history grows."""
    from datetime import timedelta

    from shared import clock
    from services.talent.draws import pool_snapshot
    from services.talent.pool import history
    from services.talent.pool.models import Expert

    _, db, _ = talent
    start = clock.now_utc() - timedelta(hours=3)

    def both(at):
        with db.unit_of_work() as uow:
            fast = sorted(pool_snapshot.pool_as_of(uow.session, at), key=lambda e: e.expert_id)
            return fast, history.pool_as_of(uow.session, at)

    with db.unit_of_work() as uow:
        for n in range(5):
            add_expert(uow.session, n, at=start)
        uow.commit()
    now = clock.now_utc()
    fast, reference = both(now)
    assert fast == reference and len(fast) == 5
    assert both(now)[0] == reference  # from the memo
    with db.unit_of_work() as uow:  # later states: one suspended, one newly in conflict
        expert = uow.session.get(Expert, fast[0].expert_id)
        expert.status = "suspended"
        history.record(uow.session, expert, start + timedelta(hours=1))
        add_expert(uow.session, 9, at=start + timedelta(hours=2), conflicts=(INVOLVED,))
        uow.commit()
    for at in (start, start + timedelta(minutes=90), clock.now_utc()):
        fast, reference = both(at)
        assert fast == reference, at
    assert both(clock.now_utc())[0][0].suspended
    # a state dated after the instant asked for is not part of the pool at that instant
    with db.unit_of_work() as uow:
        expert = uow.session.get(Expert, fast[1].expert_id)
        expert.status = "suspended"
        history.record(uow.session, expert, clock.now_utc() + timedelta(hours=1))
        uow.commit()
    now = clock.now_utc()
    fast, reference = both(now)
    assert fast == reference and not fast[1].suspended


# -- term and consent (issue 10: only experts in term who consented to be contacted) -----

def test_out_of_term_and_non_consenting_experts_are_excluded_and_verification_holds(talent):
    from datetime import timedelta

    from shared import clock

    base, db, _ = talent
    today = clock.today()
    with db.unit_of_work() as uow:
        s = uow.session
        good = [add_expert(s, n).id for n in range(5)]
        good.append(add_expert(s, 5, term=(today, today)).id)  # a term of one day: today
        ended = add_expert(s, 10, term=(today - timedelta(days=400), today - timedelta(days=1))).id
        future = add_expert(s, 11, term=(today + timedelta(days=1), today + timedelta(days=400))).id
        refused = add_expert(s, 12, consent=False).id
        uow.commit()
    result = draw(base, size=4, alternates=2)
    (run,) = result["draws"]
    assert run["eligible_count"] == 6
    assert {e["code"]: e["count"] for e in run["exclusions"]} == {"out_of_term": 2, "no_consent": 1}
    assert {e["name"] for e in run["exclusions"]} == {"不在聘期内", "未同意联系"}
    assert sorted(m["expert_id"] for m in result["members"]) == sorted(good)
    assert result["parameters"]["term_and_consent"] is True
    report = verify(base, result["id"])
    assert report["ok"], report
    assert report["exclusions"] == run["exclusions"]

    # later changes (consent given, a term extended) do not change the past draw
    resp = post(base, f"/api/v1/experts/{refused}/consent", {"consent_to_contact": True})
    assert resp.status_code == 200, resp.text
    with db.unit_of_work() as uow:
        uow.session.execute(text("UPDATE experts SET term_end = :d WHERE id = :id"),
                            {"d": today + timedelta(days=30), "id": ended})
        uow.commit()
    report = verify(base, result["id"])
    assert report["ok"], report
    # a draw made now sees the recorded consent (the term edited behind the history's
    # back is not part of it: the expert stays out of term)
    later = draw(base, size=7, alternates=0)
    assert refused in {m["expert_id"] for m in later["members"]}
    assert {ended, future}.isdisjoint(m["expert_id"] for m in later["members"])
    assert verify(base, later["id"])["ok"]


@pytest.mark.parametrize("tampering", ["snapshot_and_hash", "parameters"])
def test_tampering_to_let_an_excluded_expert_in_is_found(talent, tampering):
    base, db, _ = talent
    add_experts(db, 6)
    refused = add_experts(db, 1, start=20, consent=False)[0]
    result = draw(base)
    draw(base)
    with db.unit_of_work() as uow:
        row = uow.session.execute(text("SELECT snapshot, parameters FROM draws WHERE id = :id"),
                                  {"id": result["id"]}).one()
        if tampering == "snapshot_and_hash":  # the non-consenting expert slipped in
            snapshot = sorted(json.loads(row.snapshot) + [refused])
            uow.session.execute(text("UPDATE draws SET snapshot = :s, snapshot_hash = :h "
                                     "WHERE id = :id"),
                                {"s": json.dumps(snapshot), "h": audit_chain_hash(snapshot),
                                 "id": result["id"]})
            expected = {"snapshot", "chain"}
        else:  # the rule switched off for this draw
            stored = dict(json.loads(row.parameters), term_and_consent=False)
            uow.session.execute(text("UPDATE draws SET parameters = :p WHERE id = :id"),
                                {"p": json.dumps(stored), "id": result["id"]})
            # the rebuilt list now has the expert, and so the re-run order differs
            expected = {"snapshot", "order", "chain"}
        uow.commit()
    report = verify(base, result["id"])
    failed = {c["name"] for c in report["checks"] if not c["ok"]}
    assert not report["ok"] and expected <= failed <= expected | {"result"}, report


def test_draws_use_the_configured_list_of_expertise(amqp_uri, talent_db_config, tmp_path,
                                                     free_port):
    """EXPERTISE_CSV names the pool's list: a draw checks its codes against that list,
    not the default GB/T 4754 file."""
    from nameko.containers import ServiceContainer

    from services.talent.service import TalentService
    from tests.integration.conftest import purge_queues
    from tests.integration.registry_support import registry_config
    from shared.messaging import topology

    listing = tmp_path / "expertise.csv"
    listing.write_text("code,name,level,section\nQ,质量管理,section,\nQ1,质量诊断,division,Q\n",
                       encoding="utf-8")
    purge_queues(amqp_uri, [q.name for q in topology.event_queues()])
    port = free_port()
    config = {**registry_config(amqp_uri, talent_db_config, tmp_path / "keys", port),
              "EXPERTISE_CSV": str(listing)}
    container = ServiceContainer(TalentService, config)
    container.start()
    try:
        base = f"http://127.0.0.1:{port}"
        (db_provider,) = [d for d in container.dependencies if d.attr_name == "db"]
        add_experts(db_provider.database, 3, expertise=("Q1",))
        resp = post(base, "/api/v1/draws", {"purpose": "评审", "size": 2, "expertise": ["C"]})
        assert resp.status_code == 422 and resp.json()["code"] == "DRAW_EXPERTISE_UNKNOWN", resp.text
        resp = post(base, "/api/v1/draws", {"purpose": "评审", "size": 2, "expertise": ["Q"]})
        assert resp.status_code == 201, resp.text
        assert resp.json()["panel"][0]["expertise"] == [{"code": "Q1", "name": "质量诊断"}]
    finally:
        container.stop()


def test_the_migration_records_term_and_consent_in_existing_states(talent_db_config):
    """t0003: states written before it get the expert's term and the consent standing at
    each state's time (from the designation and the recorded answers)."""
    from datetime import date, datetime, timezone

    from alembic import command
    from sqlalchemy import insert

    from shared.db import database_from_config
    from shared.migrate import alembic_config
    from services.talent.pool.models import Expert, ExpertAction, ExpertState
    from services.talent.service import MIGRATIONS

    db = database_from_config(talent_db_config, default_sqlite="unused.db")
    try:
        cfg = alembic_config(MIGRATIONS)
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "t0002_draws")
        t = [datetime(2026, 3, d, tzinfo=timezone.utc) for d in (1, 2, 3)]
        old = {"county": "130921", "employer_uscc": uscc_for("130921", 1), "expertise": ["13"],
               "suspended": False, "conflicts": []}
        with db.engine.begin() as conn:
            conn.execute(insert(Expert.__table__).values(
                id="e1", member_id=None, id_hmac="0" * 64, id_masked="x", name="专家",
                county="130921", employer_uscc=old["employer_uscc"], expertise='["13"]',
                term_start=date(2026, 1, 1), term_end=date(2027, 12, 31),
                consent_to_contact=False, status="active", suspensions="[]",
                designated_at=t[0], designated_by="test", updated_at=t[2]))
            conn.execute(insert(ExpertAction.__table__), [
                {"expert_id": "e1", "at": t[0], "action": "designated", "note": "同意联系",
                 "actor": "test"},
                {"expert_id": "e1", "at": t[2], "action": "consent", "note": "不同意联系",
                 "actor": "test"}])
            conn.execute(insert(ExpertState.__table__), [
                {"expert_id": "e1", "at": at, "state": json.dumps(old, sort_keys=True)} for at in t])
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
        with db.engine.begin() as conn:
            states = [json.loads(s) for (s,) in conn.execute(
                text("SELECT state FROM expert_states ORDER BY seq"))]
        assert [s["consent"] for s in states] == [True, True, False]
        assert {(s["term_start"], s["term_end"]) for s in states} == {("2026-01-01", "2027-12-31")}
        assert all(s["expertise"] == ["13"] and s["county"] == "130921" for s in states)
    finally:
        db.dispose()

"""Notices in Chinese: the facts of one event for one audience, rendered once into an
e-mail subject, an HTML body (autoescaped: enterprise names and reasons come from
outside), a plain-text body (the e-mail's text part and the inbox text) and the
parameters of the registered SMS template.

Templates are `templates/<name>.html.j2` and `<name>.txt.j2`; the subject and the
"what to do next" line are written here, beside the facts they depend on. No template
is given an ID number: the events carry none (the contract refuses them), and the
rendered texts are checked again before they are stored.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from shared import clock
from shared.contracts import FILING_KINDS, OUTCOMES, county_name
from shared.contracts.events import EventRefused, holds_id_number
from services.notify.domain.recipients import CITY, COUNTY, ENTERPRISE, EXPERT, TEMPLATES

_DIR = Path(__file__).parent / "templates"
_HTML = Environment(loader=FileSystemLoader(_DIR), autoescape=True, undefined=StrictUndefined,
                    keep_trailing_newline=True)
_TEXT = Environment(loader=FileSystemLoader(_DIR), autoescape=False, undefined=StrictUndefined,
                    trim_blocks=True, lstrip_blocks=True,
                    keep_trailing_newline=True)

# the article each decision reason rests on, where its message does not cite one
ARTICLES = {"LATE_CHANGE": "第十四条", "QUALIFICATION_NOT_MET": "第六条",
            "COUNTY_MISMATCH": "第三条、第十二条", "EFFECTIVE_BEFORE_APPOINTMENT": "第十四条",
            "APPOINTMENT_BEFORE_CURRENT": "第十四条"}
STATUS_LABELS = {"withdrawn": "已由提出单位撤回", "closed": "已由提出单位结案",
                 "replaced": "已因企业办理首席质量官变更备案而办结"}
ROLE_LABELS = {"member": "正式成员", "alternate": "候补成员"}
SMS_PARAM_MAX = 20  # gateways cap each template parameter; longer values are cut


@dataclass(frozen=True)
class Rendered:
    template: str
    subject: str
    text: str
    html: str
    sms_params: dict

    @property
    def sms_params_json(self) -> str:
        return json.dumps(self.sms_params, ensure_ascii=False, sort_keys=True)


def _day(value) -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = clock.aware(value).astimezone(clock.TZ).date()
    return f"{value.year}年{value.month}月{value.day}日" if value else ""


def _county(code: str | None) -> str:
    if not code:
        return ""
    try:
        return county_name(code)
    except Exception:  # a code outside the deployment's list still makes a notice
        return code


def _reasons(items) -> list[dict]:
    out = []
    for item in items or ():
        message = str(item.get("message") or "")
        article = None if "第" in message and "条" in message else ARTICLES.get(item.get("code"))
        out.append({"message": message, "article": article})
    return out


def _greeting(audience: str, recipient_name: str, facts: dict) -> str:
    if audience == ENTERPRISE:
        return facts.get("enterprise_name") or recipient_name
    if audience == EXPERT:
        return "尊敬的专家"
    return recipient_name or ("市市场监督管理局" if audience == CITY else "县级市场监管部门")


def _issuer(data: dict) -> str:
    return "市市场监督管理局" if data["issuer_role"] != "county_officer" else \
        (_county(data.get("issuer_county")) + "市场监管部门")


# One function per event type: (facts to complete, envelope, data, audience, office) →
# (subject, what to do next, SMS parameters). `office`: a county or the city office.

def _filing_decided(f, envelope, data, audience, office):
    f.update(kind_label=FILING_KINDS.get(data["kind"], data["kind"]),
             outcome_label=OUTCOMES.get(data["outcome"], data["outcome"]),
             filing_no=f"{data['filing_id']}（第{data['version']}版）",
             decided_on=_day(envelope["occurred_at"]), reasons=_reasons(data.get("reasons")))
    subject = f"首席质量官{f['kind_label']}备案{f['outcome_label']}：{f['enterprise_name']}"
    if data["outcome"] == "accepted":
        step = ("已登记，企业无需其他操作。首席质量官变更的，请自变更生效之日起一个月内向县级市场监管部门报告（第十四条）。"
                if not office else "供知悉" + ("；逾期情况已记录，计入年度考核。" if data.get("late") else "。"))
    elif data["outcome"] == "rejected":
        step = ("请按上述原因补正后，通过县级市场监管部门重新报送。" if not office
                else "请告知并指导企业补正后重新报送。")
    else:
        step = "该备案已撤回；如仍需备案，请重新提交。" if not office else "供知悉。"
    return subject, step, {"name": f["enterprise_name"], "kind": f["kind_label"], "result": f["outcome_label"]}


def _recommendation_unanswered(f, envelope, data, audience, office):
    f.update(issuer_label=_issuer(data), issued_on=_day(data["issued_on"]), respond_by=_day(data["respond_by"]))
    step = ("请尽快答复并说明情况，或办理首席质量官变更备案。" if not office
            else "请跟进企业的答复；是否撤回或结案，由提出单位决定。")
    return (f"撤换首席质量官建议逾期未答复：{f['enterprise_name']}", step,
            {"name": f["enterprise_name"], "date": f["respond_by"]})


def _recommendation_issued(f, envelope, data, audience, office):
    f.update(issuer_label=_issuer(data), issued_on=_day(data["issued_on"]), respond_by=_day(data["respond_by"]))
    step = (f"请于{f['respond_by']}前答复，或办理首席质量官变更备案。" if not office
            else "请跟进企业的答复或变更备案。")
    return (f"撤换首席质量官建议：{f['enterprise_name']}", step,
            {"name": f["enterprise_name"], "date": f["respond_by"]})


def _recommendation_closed(f, envelope, data, audience, office):
    f.update(status_label=STATUS_LABELS.get(data["status"], data["status"]))
    return (f"撤换首席质量官建议已办结：{f['enterprise_name']}", "无需其他操作。",
            {"name": f["enterprise_name"], "result": f["status_label"]})


def _appointment_lapsed(f, envelope, data, audience, office):
    f.update(term_end=_day(data["term_end"]), lapsed_on=_day(data["lapsed_on"]))
    step = ("请尽快办理续任或变更备案（第十四条）。" if not office
            else "请督促企业办理续任或变更备案。")
    return (f"首席质量官任期已届满：{f['enterprise_name']}", step,
            {"name": f["enterprise_name"], "date": f["term_end"]})


def _appointment_expiring(f, envelope, data, audience, office):
    f.update(term_end=_day(data["term_end"]), appointed_on=_day(data["appointed_on"]))
    step = (f"请在{f['term_end']}前办理续任备案，或任命新的首席质量官并办理变更备案（第十四条）。" if not office
            else "请提醒企业在任期届满前办理续任或变更备案。")
    return (f"首席质量官任期将于{data['days_left']}天后届满：{f['enterprise_name']}", step,
            {"name": f["enterprise_name"], "date": f["term_end"]})


def _draw_invited(f, envelope, data, audience, office):
    f.update(role_label=ROLE_LABELS.get(data["role"], data["role"]))
    return (f"专家抽取邀请：{data['purpose']}", "请登录系统确认是否参加。",
            {"purpose": data["purpose"], "role": f["role_label"]})


def _draw_published(f, envelope, data, audience, office):
    names = [str(m.get("name")) for m in data.get("members") or () if m.get("name")]
    f.update(member_names="、".join(names) or "（无）")
    return f"专家组已公布：{data['purpose']}", "供知悉。", {"purpose": data["purpose"]}


def _campaign(f, envelope, data, audience, office):
    closing = envelope["type"].endswith(".closing") or data.get("stage") == "closing"
    f.update(opens_on=_day(data["opens_on"]), closes_on=_day(data["closes_on"]), closing=closing,
             days_left=data.get("days_left"), enterprises=data.get("enterprises"))
    left = f"（还有{data['days_left']}天）" if data.get("days_left") is not None else ""
    if audience == ENTERPRISE:
        subject = (f"{data['year']}年度首席质量官集中备案即将截止：{f['enterprise_name']}" if closing
                   else f"{data['year']}年度首席质量官集中备案已开始：{f['enterprise_name']}")
        step = (f"请在{f['closes_on']}{left}前任命首席质量官，并通过所在县（市、区）市场监管部门办理"
                "岗位设立备案；已任命的，请尽快报送。")
    else:
        subject = (f"{data['year']}年度首席质量官集中备案即将截止" if closing
                   else f"{data['year']}年度首席质量官集中备案已开始")
        step = (f"请督促本辖区尚未备案的企业在{f['closes_on']}{left}前报送，并在截止前完成预审和集中报送。"
                if closing else "请组织本辖区企业按时备案，及时预审并集中报送。")
    return subject, step, {"name": f["enterprise_name"] if audience == ENTERPRISE else str(data["year"]),
                           "date": f["closes_on"]}


def _filing_late(f, envelope, data, audience, office):
    f.update(kind_label=FILING_KINDS.get(data["kind"], data["kind"]),
             filing_no=f"{data['filing_id']}（第{data['version']}版）",
             deadline=_day(data["deadline"]), submitted_on=_day(data["submitted_on"]))
    step = ("今后首席质量官发生变更的，请自变更之日起一个月内向县级市场监管部门报告。" if not office
            else "逾期情况已记录，计入年度考核；请提醒企业今后按期报告。")
    return (f"首席质量官{f['kind_label']}逾期报告已记录：{f['enterprise_name']}", step,
            {"name": f["enterprise_name"], "days": str(data["days_late"])})


def _filing_returned(f, envelope, data, audience, office):
    f.update(kind_label=FILING_KINDS.get(data.get("kind"), ""),
             filing_no=f"{data['filing_id']}（第{data['version']}版）",
             returned_on=_day(data.get("returned_on") or envelope["occurred_at"]),
             comment=data.get("comment") or "（未填写）")
    return (f"首席质量官备案被退回补正：{f['enterprise_name']}",
            "请按退回意见修改后，在系统中对该备案提交更正（作为新版本重新报送县级市场监管部门预审）。",
            {"name": f["enterprise_name"], "date": f["returned_on"]})


FACTS = {
    "register.filing.decided": _filing_decided,
    "register.filing.late": _filing_late,
    "register.recommendation.issued": _recommendation_issued,
    "register.recommendation.unanswered": _recommendation_unanswered,
    "register.recommendation.closed": _recommendation_closed,
    "register.appointment.lapsed": _appointment_lapsed,
    "register.appointment.expiring": _appointment_expiring,
    "register.campaign.opened": _campaign,
    "register.campaign.closing": _campaign,
    "register.campaign.due": _campaign,
    "talent.draw.invited": _draw_invited,
    "talent.draw.published": _draw_published,
    "filing.returned": _filing_returned,
}


def facts_of(event_type: str, envelope: dict, data: dict, audience: str) -> tuple[str, dict, str, dict]:
    """(subject, template facts, what to do next, SMS parameters) of one event for one audience."""
    f = dict(data)
    f["county_name"] = _county(data.get("county"))
    f["enterprise_name"] = data.get("enterprise_name") or data.get("uscc") or ""
    subject, step, sms = FACTS[event_type](f, {**envelope, "type": event_type}, data, audience,
                                           audience in (COUNTY, CITY))
    return subject, f, step, {k: str(v)[:SMS_PARAM_MAX] for k, v in sms.items()}


def render(event_type: str, envelope: dict, data: dict, audience: str, recipient_name: str) -> Rendered:
    template = TEMPLATES[event_type]
    subject, facts, step, sms = facts_of(event_type, envelope, data, audience)
    context = {**facts, "subject": subject, "next_step": step,
               "greeting": _greeting(audience, recipient_name, facts), "audience": audience}
    text = _TEXT.get_template(f"{template}.txt.j2").render(context)
    html = _HTML.get_template(f"{template}.html.j2").render(context)
    for value in (subject, text, html, json.dumps(sms, ensure_ascii=False)):
        if holds_id_number(value):  # the events carry none; a notice must not either
            raise EventRefused("通知中不得出现证件号码", code="NOTICE_CARRIES_ID_NUMBER")
    return Rendered(template, subject, text, html, sms)

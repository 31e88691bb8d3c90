"""Events added at their sources for the notify service (issue 11), through the real
services and broker: each source writes its event through its outbox with the change,
and notify makes the expected notices of it. Both database backends."""
from __future__ import annotations

import pytest

from tests.integration import filing_support as fs
from tests.integration.conftest import _own_database
from tests.integration.test_notify_service import call, notify  # noqa: F401 - the fixture
from tests.support.polling import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def filing_db_config(db_config):
    yield from _own_database(db_config, "filing")


def test_a_filing_returned_by_the_county_reaches_its_enterprise(notify, amqp_uri, filing_db_config, tmp_path):  # noqa: F811
    base, sink = notify
    uscc = fs.new_uscc()
    with fs.FilingStack(amqp_uri, filing_db_config, tmp_path / "filing-keys") as county:
        filing = county.file(uscc, enterprise__name="沧州<渤海>钢管有限公司")
        county.review(filing["id"], "return", "任命书文号与附件不一致，请核对")
        (mail,) = wait_for(lambda: sink.messages() or None, 30, "the enterprise's e-mail")
    assert mail["To"] == "cqo@example.cn"
    assert mail["Subject"] == "首席质量官备案被退回补正：沧州<渤海>钢管有限公司"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert f"备案编号 {filing['id']}（第1版）" in text and "退回意见：任命书文号与附件不一致，请核对" in text
    assert "第十二条" in text and "下一步：请按退回意见修改后" in text
    assert "沧州&lt;渤海&gt;钢管有限公司" in html
    inbox = call("GET", base + "/inbox", role="enterprise", uscc=uscc).json()
    assert [i["subject"] for i in inbox["items"]] == [mail["Subject"]]
    log = wait_for(lambda: (b := call("GET", base + "/deliveries?county=130921").json())["total"] == 3 and b,
                   10, "the delivery log")
    assert {(i["channel"], i["status"]) for i in log["items"]} == {
        ("inbox", "sent"), ("email", "sent"), ("sms", "skipped")}  # no SMS gateway in this test

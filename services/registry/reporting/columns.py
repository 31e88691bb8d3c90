"""What the annual assessment report (art. 16) shows: its title, columns, county indicators and notes, in Chinese."""
from __future__ import annotations


TITLE = "{year}年度企业首席质量官制度推进情况考核表"
TRAINING_NOTE = ("培训（第十五条 教育培训）：当年开班的培训班次、参训人次与合格人次，来自人才服务；"
                 "市级举办的培训计入全市合计。人才服务未应答时，培训各列显示为“—”，不显示为0。")
TRAINING_UNAVAILABLE = "人才服务暂无应答，培训数据暂缺"
TRAINING_INCLUDED = "已纳入"
NOTES = (
    "覆盖率＝名录内有在任已备案首席质量官的企业数÷当年度规上企业名录数（第四条）。",
    "集中备案完成率＝集中备案截止时（尚未截止的，为统计日）名录内有在任已备案首席质量官的企业数÷当年度规上企业名录数"
    "（第十三条），分列本次集中备案的和此前已备案、无需变更的；名录外企业的集中备案另列，不计入完成率；"
    "名录为空的，完成率显示为“—”。",
    "县局待办、退回为各县（市、区）备案服务报送的进度快照，截至时间见“县局进度数据截至”。",
    "逾期变更备案：变更或撤销于生效之日起一个月后才首次向县局报告、经市局予以备案的（第十四条），按首次报告日期计入年度。",
    "撤换建议为建议而非命令（第十条）：未办结为尚未关闭或撤回的，未响应为超过答复期限仍无答复或变更备案的。",
    TRAINING_NOTE,
)

# (key, Chinese header, kind) of the summary sheet and of the JSON columns
COLUMNS = (
    ("county", "县级区划代码", "text"),
    ("county_name", "县（市、区）", "text"),
    ("roster_size", "规上企业名录数", "int"),
    ("covered", "已设立首席质量官企业数", "int"),
    ("coverage_rate", "覆盖率", "rate"),
    ("filed", "集中备案已备案企业数", "int"),
    ("completed", "名录内已完成企业数", "int"),
    ("completed_in_campaign", "其中：本次集中备案", "int"),
    ("completed_already", "其中：此前已备案无需变更", "int"),
    ("completion_rate", "集中备案完成率", "rate"),
    ("filed_off_roster", "名录外企业集中备案数", "int"),
    ("pending", "县局待办（待预审＋待报送）", "int"),
    ("returned", "退回", "int"),
    ("rejected", "市局不予备案", "int"),
    ("late_changes", "逾期变更备案", "int"),
    ("recommendations_open", "撤换建议未办结", "int"),
    ("recommendations_unanswered", "撤换建议未响应", "int"),
    ("lapsed_terms", "任期届满未续任", "int"),
    ("training_courses", "培训班次", "int"),
    ("training_attendees", "参训人次", "int"),
    ("training_passed", "培训合格人次", "int"),
)


COUNTY_INDICATORS = (
    ("roster_size", "规上企业名录数", "int"),
    ("covered", "名录内已设立首席质量官企业数", "int"),
    ("coverage_rate", "覆盖率", "rate"),
    ("active_cqo", "有在任首席质量官的企业数（含名录外）", "int"),
    ("filed", "本年度集中备案已备案企业数", "int"),
    ("completed", "名录内已完成企业数（集中备案截止时有在任首席质量官）", "int"),
    ("completed_in_campaign", "其中：本次集中备案的", "int"),
    ("completed_already", "其中：此前已备案、无需变更的", "int"),
    ("completion_rate", "集中备案完成率", "rate"),
    ("filed_off_roster", "名录外企业集中备案数（不计入完成率）", "int"),
    ("submitted", "县局待预审", "int"),
    ("approved", "预审通过待报送", "int"),
    ("returned", "退回", "int"),
    ("forwarded", "已报送市局待决定", "int"),
    ("waiting", "市局等待前序备案", "int"),
    ("rejected", "市局不予备案", "int"),
    ("late_changes", "逾期变更备案", "int"),
    ("recommendations_open", "撤换建议未办结", "int"),
    ("recommendations_unanswered", "撤换建议未响应", "int"),
    ("lapsed_terms", "任期届满未续任", "int"),
    ("training_courses", "培训班次（县级举办）", "int"),
    ("training_attendees", "参训人次", "int"),
    ("training_passed", "培训合格人次", "int"),
    ("training", "培训数据", "text"),
)

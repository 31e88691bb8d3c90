from shared.http import attachment


def test_attachment_names_the_file_in_ascii_and_in_utf8():
    assert attachment("2025年度首席质量官考核表.xlsx") == (
        "attachment; filename=\"2025.xlsx\"; "
        "filename*=UTF-8''2025%E5%B9%B4%E5%BA%A6%E9%A6%96%E5%B8%AD%E8%B4%A8%E9%87%8F%E5%AE%98%E8%80%83%E6%A0%B8%E8%A1%A8.xlsx")


def test_attachment_without_ascii_falls_back_to_a_plain_name():
    assert attachment("追溯流程").startswith("attachment; filename=\"attachment\"; ")

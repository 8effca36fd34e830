"""The office's words for mailproc's codes: one table per kind of code, used by every command,
page, workbook and template that shows one to a person (the codes stay in the ledger and in
--json output, where programs read them)."""

import re

# A unit's standing at one deadline (status matrix, receipts, assessment)
STATE_WORDS = {
    "on_time": "按时",
    "late": "逾期",
    "missing": "未报",
    "not_due": "未到期",
    "excused": "免报",
}
# What a submission lacks, as the office names it, in words that fit any campaign (templates name
# the rules' table instead, 缺少附件1统计表, and word the 缺项通知's subject as a request:
# templates/_labels.j2)
PROBLEM_LABELS = {
    "cloud_link": "用网盘链接代替附件",
    "no_attachment": "缺少电子文档",
    "no_stats": "缺少统计表",
    "unreadable_file": "文件无法打开",
    "bad_cells": "统计表有无法识别的数字",
}
REPLY_WORDS = {
    "ack": "回执",
    "missing": "缺项通知",
    "unrecognized": "无法识别通知",
    "none": "不回复",
}
DISPOSITION_WORDS = {
    "submission": "报送",
    "unrecognized": "无法识别",
    "unrelated": "与本次活动无关",
    "answer_to_us": "对本系统邮件的回复",
    "auto_reply": "自动回复",
    "bounce": "退信",
    "bulk": "群发邮件",
    "own": "本系统或办公室发出的邮件",
    "duplicate": "重复的邮件编号",
    "quarantined": "无法处理",
}
# What mailproc sends: replies, notices and the office's reports (the outbox's kinds)
KIND_WORDS = {
    "ack": "回执",
    "missing": "缺项通知",
    "unrecognized": "无法识别通知",
    "reminder": "催报提醒",
    "overdue": "逾期通知",
    "alert": "逾期通报",
    "digest": "周汇总",
    "assessment": "考核结果",
}
JOB_OUTCOME_WORDS = {
    "sent": "已发出",
    "sent late": "已发出（因停机延迟）",
    "dropped": "未发出",
    "nothing to report": "无须通报",
    "no supervisors configured": "未配置督查人员，未发出",
}
# Why the gate lets no reply go to a mail (classify/gate.py)
GATE_WORDS = {
    "own": "本办发出的邮件",
    "bounce": "退信",
    "auto_reply": "自动回复",
    "bulk": "群发邮件",
    "spoofed": "发件地址验证未通过",
}
DECISION_WORDS = {
    "assign": "登记",
    "confirm": "确认",
    "excuse": "免报",
    "extend": "延期",
    "paper": "纸质文件",
    "register": "登记地址",
    "resend": "重新发送",
    "remind": "催报",
}
OUTBOX_WORDS = {"queued": "待发送", "sending": "发送中", "sent": "已发送", "failed": "发送失败"}


def problem_words(problems: list[str]) -> str:
    """A submission's problems as one line: 缺少统计表、文件无法打开."""
    return "、".join(PROBLEM_LABELS.get(p, p) for p in problems)


_ASCII_WORD = re.compile(r"[A-Za-z]{3,}")


def in_chinese(text: str, fallback: str) -> str:
    """`text` when a person can read it: a library's own words (an exception's English, which
    belongs in the log) are replaced by `fallback`."""
    return fallback if _ASCII_WORD.search(text) else text

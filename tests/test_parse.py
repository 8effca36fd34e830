"""mailproc.read.mail: every encoding Chinese mail clients produce, read without a lost letter."""

import base64
import dataclasses
import hashlib
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from mails import zip_with

from mailproc.read import mail as parse
from mailproc.read.budget import Budget, Limits
from mailproc.read.mail import ParseError, parse_message, sniff_kind

CORPUS = Path(__file__).resolve().parent / "corpus"
PEER_MAILS = Path(__file__).resolve().parents[2] / "shared" / "peer-mails"
CST = timezone(timedelta(hours=8))

HEAD = (
    b"Received: from mx8.163.com by mx-dw.163.com; Thu, 13 Jun 2019 11:00:01 +0800\r\n"
    b"From: unit@163.com\r\n"
    b"To: dwajj6780436@163.com\r\n"
    b"Date: Thu, 13 Jun 2019 10:00:00 +0800\r\n"
    b"Message-ID: <t1@163.com>\r\n"
    b"MIME-Version: 1.0\r\n"
)


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def word(label: str, data: bytes) -> bytes:
    """An RFC 2047 B-encoded word holding exactly `data`."""
    return b"=?" + label.encode() + b"?B?" + base64.b64encode(data) + b"?="


def mail_with_parts(*parts: bytes, subject: bytes = b"test") -> bytes:
    """A multipart/mixed mail holding the given raw parts (headers + blank line + body)."""
    out = (
        HEAD + b"Subject: " + subject + b'\r\nContent-Type: multipart/mixed; boundary="BB"\r\n\r\n'
    )
    for part in parts:
        out += b"--BB\r\n" + part + b"\r\n"
    return out + b"--BB--\r\n"


def file_part(disposition_params: bytes, data: bytes, ctype: bytes = b"application/octet-stream"):
    return (
        b"Content-Type: " + ctype + b"\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; " + disposition_params + b"\r\n\r\n" + b64(data)
    )


def text_part(text: bytes, charset: bytes = b"utf-8", cte: bytes = b"8bit") -> bytes:
    return (
        b"Content-Type: text/plain; charset=" + charset + b"\r\n"
        b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + text
    )


def xlsx_bytes() -> bytes:
    """A minimal xlsx container with an incompressible sheet, so cuts land inside real data."""
    noise = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(64))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", noise)
    return buf.getvalue()


def corpus_attachment(name: str, index: int = 0) -> bytes:
    return parse_message((CORPUS / name).read_bytes()).attachments[index].data


# --- header encodings ------------------------------------------------------------------------


def test_gb2312_label_holding_gbk_only_characters_decodes_as_gb18030():
    gb = word("GB2312", "堃鎔报表".encode("gbk"))
    raw = mail_with_parts(
        text_part(b"hi"), file_part(b'filename="' + gb + b'.xlsx"', b"x"), subject=gb
    )
    mail = parse_message(raw)
    assert mail.subject == "堃鎔报表"
    assert mail.attachments[0].filename == "堃鎔报表.xlsx"
    assert mail.attachments[0].raw_filename is None
    assert mail.problems == []


def test_encoded_words_split_inside_a_character_are_joined_as_bytes():
    utf8 = "关于报送统计表".encode()
    gbk = "堃鎔".encode("gbk")
    subject = b" ".join(
        [
            word("UTF-8", utf8[:4]) + b"\r\n",
            word("UTF-8", utf8[4:]),
            # the same codec under two labels (GB2312, then GBK), split after a lead byte
            word("GB2312", gbk[:1]),
            word("GBK", gbk[1:]),
        ]
    )
    mail = parse_message(mail_with_parts(text_part(b"hi"), subject=subject))
    assert mail.subject == "关于报送统计表堃鎔"
    assert mail.problems == []


def test_rfc2231_gbk_filename_with_continuations():
    name = "附件1：堃鎔统计表.xlsx".encode("gbk")
    pieces = [quote(chunk, safe="").encode() for chunk in (name[:8], name[8:14], name[14:])]
    params = (
        b"\r\n filename*0*=gbk''" + pieces[0] + b";\r\n filename*1*=" + pieces[1]
        + b";\r\n filename*2*=" + pieces[2]
    )  # fmt: skip
    mail = parse_message(mail_with_parts(file_part(params, xlsx_bytes())))
    (att,) = mail.attachments
    assert att.filename == "附件1：堃鎔统计表.xlsx"
    assert att.kind == "xlsx"


def test_raw_8bit_gbk_subject_sender_and_filename():
    raw = mail_with_parts(
        text_part("请查收".encode("gbk"), b"gbk"),
        file_part(b'filename="' + "王家街道统计表.xlsx".encode("gbk") + b'"', xlsx_bytes()),
        subject="王家街道第三周周报".encode("gbk"),
    ).replace(b"From: unit@163.com", b"From: " + "王家街道".encode("gbk") + b" <Unit@163.com>")
    mail = parse_message(raw)
    assert mail.subject == "王家街道第三周周报"
    assert mail.from_name == "王家街道"
    assert mail.from_address == "unit@163.com"
    assert mail.body_text == "请查收"
    assert mail.attachments[0].filename == "王家街道统计表.xlsx"
    assert mail.headers["subject"] == ["王家街道第三周周报"]


def test_raw_8bit_utf8_subject_and_quoted_encoded_display_name():
    raw = mail_with_parts(text_part(b"hi"), subject="東風鎮安全生產月周報".encode()).replace(
        b"From: unit@163.com", b'From: "=?utf-8?Q?=E4=BA=8E=E6=A5=BC?=" <Unit@163.com>'
    )
    mail = parse_message(raw)
    assert mail.subject == "東風鎮安全生產月周報"
    assert mail.from_name == "于楼"


def test_undecodable_filename_is_kept_with_raw_bytes_and_a_problem():
    name = b"\x81\x20\xff\xfe.xls"  # neither UTF-8 nor gb18030
    mail = parse_message(mail_with_parts(file_part(b'filename="' + name + b'"', b"data")))
    (att,) = mail.attachments
    assert att.filename == "\ufffd \ufffd\ufffd.xls"
    assert att.raw_filename == name
    assert "undecodable file name" in att.problems
    assert mail.problems == ["undecodable file name '\ufffd \ufffd\ufffd.xls'"]


def test_addresses_ids_and_decoded_headers():
    raw = (
        HEAD.replace(b"To: dwajj6780436@163.com", b"To: A <DWAJJ6780436@163.com>, b@Qq.com")
        + b"Cc: "
        + word("GBK", "区应急局".encode("gbk"))
        + b" <Boss@163.com>\r\n"
        b"Reply-To: Other@126.com\r\n"
        b"In-Reply-To: <ack-1@mailproc>\r\n"
        b"References: <a@x>\r\n <ack-1@mailproc>\r\n"
        b"Subject: Re: =?UTF-8?B?44CQ5Zue5omn44CR?=\r\n"
        b"Auto-Submitted: auto-replied\r\n\r\nbody\r\n"
    )
    mail = parse_message(raw)
    assert mail.to == ["dwajj6780436@163.com", "b@qq.com"]
    assert mail.cc == ["boss@163.com"]
    assert mail.reply_to == "other@126.com"
    assert mail.message_id == "<t1@163.com>"
    assert mail.in_reply_to == "<ack-1@mailproc>"
    assert mail.references == ["<a@x>", "<ack-1@mailproc>"]
    assert mail.subject == "Re: 【回执】"
    assert mail.headers["auto-submitted"] == ["auto-replied"]
    assert mail.headers["cc"] == ["区应急局 <Boss@163.com>"]
    assert mail.content_type == "text/plain"
    assert mail.body_text == "body"


def test_topmost_received_date_differs_from_date_header():
    raw = (
        b"Received: from mx9.163.com by mx-dw.163.com (Coremail);\r\n"
        b"\tFri, 14 Jun 2019 09:38:00 +0800\r\n"
        b"Received: from PC-1 by smtp.163.com; Thu, 13 Jun 2019 10:52:05 +0800\r\n"
        b"Date: Thu, 13 Jun 2019 10:52:00 +0800\r\n"
        b"From: a@163.com\r\nSubject: x\r\n\r\nbody\r\n"
    )
    mail = parse_message(raw)
    assert mail.received_at == datetime(2019, 6, 14, 9, 38, tzinfo=CST)
    assert mail.date == datetime(2019, 6, 13, 10, 52, tzinfo=CST)


def test_missing_or_broken_received_gives_none():
    assert parse_message(b"From: a@b.c\r\nSubject: x\r\n\r\nhi").received_at is None
    broken = b"Received: from x by y; not a date\r\nFrom: a@b.c\r\n\r\nhi"
    assert parse_message(broken).received_at is None
    assert parse_message(broken).date is None


# --- bodies ----------------------------------------------------------------------------------


def test_html_only_body_becomes_readable_text_with_links():
    html = (
        "<html><head><style>p{color:red}</style></head><body><p>王老师：</p>"
        "<p>&nbsp;&nbsp;附件是我单位活动总结，请查收。</p><div>榆树街道<br>陈静</div>"
        "<table><tr><td>场次</td><td>3</td></tr><tr><td>人次</td><td>500</td></tr></table>"
        '<p><a href="http://fs.mail.163.com/fs/display/?p=X-NETEASE-HUGE-ATTACHMENT.a5c1">'
        "总结.docx</a></p></body></html>"
    )
    raw = HEAD + (
        b"Subject: x\r\nContent-Type: text/html; charset=gbk\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + html.encode("gbk")
    )
    mail = parse_message(raw)
    assert mail.body_html == html
    assert mail.body_text == (
        "王老师：\n\n附件是我单位活动总结，请查收。\n\n榆树街道\n陈静\n\n"
        "场次\t3\n\n人次\t500\n\n"
        "总结.docx (http://fs.mail.163.com/fs/display/?p=X-NETEASE-HUGE-ATTACHMENT.a5c1)"
    )


def test_plain_part_is_preferred_over_html():
    raw = HEAD + (
        b'Subject: x\r\nContent-Type: multipart/alternative; boundary="A"\r\n\r\n'
        b"--A\r\n" + text_part(b"plain text") + b"\r\n--A\r\n"
        b"Content-Type: text/html\r\n\r\n<p>html text</p>\r\n--A--\r\n"
    )
    mail = parse_message(raw)
    assert mail.body_text == "plain text"
    assert mail.body_html == "<p>html text</p>"
    assert mail.attachments == []


def alternative(plain: str, html: str) -> bytes:
    """A multipart/alternative mail with these plain and HTML parts, both UTF-8."""
    return HEAD + (
        b'Subject: x\r\nContent-Type: multipart/alternative; boundary="A"\r\n\r\n'
        b"--A\r\n" + text_part(plain.encode()) + b"\r\n--A\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html.encode() + b"\r\n--A--\r\n"
    )


@pytest.mark.parametrize(
    "plain",
    [
        "此邮件为HTML格式，请使用支持HTML的邮件客户端查看。",
        "",
        " \u3000\r\n ",
        "见附件",  # a shortened copy: says less than the HTML part
    ],
)
def test_html_part_counts_when_the_plain_part_says_less(plain):
    mail = parse_message(alternative(plain, "<p>东风镇第1周周报</p><p>附件1见附件，请查收。</p>"))
    assert mail.body_text == "东风镇第1周周报\n\n附件1见附件，请查收。"


def test_a_plain_part_saying_as_much_stays_though_the_html_has_links():
    html = '<p>东风镇周报见附件</p><a href="https://pan.baidu.com/s/1abcdefghijk">东风镇周报</a>'
    mail = parse_message(alternative("东风镇周报见附件\n东风镇周报", html))
    assert mail.body_text == "东风镇周报见附件\n东风镇周报"


def test_a_short_html_part_still_beats_a_placeholder():
    mail = parse_message(alternative("This is an HTML message.", "<div>第1周</div>"))
    assert mail.body_text == "第1周"


@pytest.mark.parametrize(
    ("charset", "cte", "encode"),
    [
        (b"gb2312", b"base64", b64),
        (b"gbk", b"quoted-printable", lambda b: b"".join(b"=%02X" % c for c in b)),
        (b"gbk", b"8bit", lambda b: b),
    ],
)
def test_gbk_bodies_in_every_transfer_encoding(charset, cte, encode):
    text = "堃鎔：附件是第三周统计表。"
    raw = HEAD + b"Subject: x\r\n" + text_part(encode(text.encode("gbk")), charset, cte)
    mail = parse_message(raw)
    assert mail.body_text == text
    assert mail.problems == []


# --- attachments -----------------------------------------------------------------------------


def test_kind_is_sniffed_from_content_not_name():
    pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n%%EOF\n"
    mail = parse_message(
        mail_with_parts(
            file_part(b'filename="report.doc"', xlsx_bytes(), b"application/msword"),
            file_part(b'filename="scan"', pdf),
            file_part(b'filename="stats.xls"', corpus_attachment("0043.eml")),
        )
    )
    assert [(a.filename, a.content_type, a.kind) for a in mail.attachments] == [
        ("report.doc", "application/msword", "xlsx"),
        ("scan", "application/octet-stream", "pdf"),
        ("stats.xls", "application/octet-stream", "xls"),
    ]
    assert mail.attachments[1].data == pdf
    assert mail.attachments[1].sha256 == hashlib.sha256(pdf).hexdigest()


def test_sniff_kind_ole_and_wps_and_fallbacks():
    xls = corpus_attachment("0043.eml")  # a real OLE2 workbook ("Workbook" stream)
    assert sniff_kind(xls, "named.doc") == "xls"
    assert sniff_kind(xls, "表.et") == "et"
    assert sniff_kind(xlsx_bytes(), "表.et") == "et"
    assert sniff_kind(b"a,b\n1,2\n", "附件1.csv") == "csv"
    assert sniff_kind("说明".encode("gbk"), "说明.txt") == "text"
    assert sniff_kind(b"\xff\xd8\xff\xe0\x00\x10JFIF", "x") == "image"
    assert sniff_kind(b"Rar!\x1a\x07\x00", "x.zip") == "rar"
    assert sniff_kind(b"\x00\x01\x02garbage", "统计表.xlsx") == "xlsx"
    assert sniff_kind(b"\x00\x01\x02garbage", "blob") == "other"


def test_truncated_office_files_get_name_based_kind_and_a_problem():
    cut_xls = corpus_attachment("0061.eml")  # the corpus' cut-off .xls
    mail = parse_message(
        mail_with_parts(
            file_part(b'filename="a.xls"', cut_xls),
            file_part(b'filename="b.xlsx"', xlsx_bytes()[:60]),
        )
    )
    assert [(a.kind, a.problems) for a in mail.attachments] == [
        ("xls", ["truncated or corrupt OLE2 file"]),
        ("xlsx", ["truncated or corrupt zip container"]),
    ]


def test_zip_members_with_gbk_and_utf8_names_become_attachments():
    inner = zip_with([("里层.docx", b"plain words", False)])
    archive = zip_with(
        [
            ("第三周/附件1：堃鎔统计表.xlsx", xlsx_bytes(), False),
            ("活动信息.txt", "说明".encode(), True),
            ("嵌套.zip", inner, False),
        ]
    )
    name = word("GBK", "材料.zip".encode("gbk"))
    mail = parse_message(mail_with_parts(file_part(b'filename="' + name + b'"', archive)))
    assert [(a.filename, a.kind, a.from_archive) for a in mail.attachments] == [
        ("第三周/附件1：堃鎔统计表.xlsx", "xlsx", "材料.zip"),
        ("活动信息.txt", "text", "材料.zip"),
        ("里层.docx", "text", "材料.zip/嵌套.zip"),
    ]


def test_corrupt_zip_stays_one_attachment_with_a_problem():
    archive = zip_with([("a.xlsx", xlsx_bytes(), False)])
    mail = parse_message(mail_with_parts(file_part(b'filename="a.zip"', archive[:-30])))
    (att,) = mail.attachments
    assert (att.filename, att.kind, att.problems) == (
        "a.zip",
        "zip",
        ["truncated or corrupt zip container"],
    )


def small_budget(unpacked: int) -> Budget:
    return Budget.of(dataclasses.replace(Limits(), unpacked_bytes=unpacked))


def test_zip_bomb_is_not_unpacked():
    archive = zip_with([("big.txt", b"0" * 5000, False)])
    raw = mail_with_parts(file_part(b'filename="big.zip"', archive))
    (att,) = parse_message(raw, small_budget(1000)).attachments
    assert (att.filename, att.problems) == (
        "big.zip",
        ["zip not opened: unpacked size over the limit"],
    )


def test_the_budget_is_one_for_the_whole_mail():
    """Two zips that each fit the limit, but not together: the second stays packed."""
    archive = zip_with([("a.txt", b"0" * 600, False)])
    raw = mail_with_parts(
        file_part(b'filename="one.zip"', archive), file_part(b'filename="two.zip"', archive)
    )
    mail = parse_message(raw, small_budget(1000))
    assert [(a.filename, a.problems) for a in mail.attachments] == [
        ("a.txt", []),
        ("two.zip", ["zip not opened: unpacked size over the limit"]),
    ]


def test_a_zip_that_understates_its_sizes_is_counted_as_it_inflates():
    """The central directory says 10 bytes; the member inflates to 5000: never believed."""
    archive = bytearray(zip_with([("big.txt", b"0" * 5000, False)]))
    for header, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = archive.index(header) + offset
        archive[at : at + 4] = (10).to_bytes(4, "little")
    raw = mail_with_parts(file_part(b'filename="lies.zip"', bytes(archive)))
    (att,) = parse_message(raw, small_budget(1000)).attachments
    assert att.filename == "big.txt" and att.problems[0].startswith("unreadable zip member")


def test_inline_image_without_name_is_an_image_attachment():
    part = (
        b"Content-Type: image/png\r\nContent-ID: <img1>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(b"\x89PNG\r\n\x1a\n\x00\x00")
    )
    mail = parse_message(mail_with_parts(text_part(b"see photo"), part))
    assert [(a.filename, a.kind) for a in mail.attachments] == [("attachment-1.png", "image")]
    assert mail.body_text == "see photo"


# --- forwarded, truncated, not a mail --------------------------------------------------------


def test_forwarded_rfc822_part_is_parsed_and_its_files_listed():
    inner = b"\r\n".join(
        [
            b"From: " + word("GB2312", "平安镇".encode("gbk")) + b" <pingan_aj@163.com>",
            b"Subject: " + word("GBK", "平安镇第二周周报".encode("gbk")),
            b"Date: Wed, 12 Jun 2019 09:00:00 +0800",
            b'Content-Type: multipart/mixed; boundary="IN"',
            b"",
            b"--IN",
            text_part("附件请查收".encode()),
            b"--IN",
            file_part(b'filename="tj.xlsx"', xlsx_bytes()),
            b"--IN--",
            b"",
        ]
    )
    raw = mail_with_parts(
        text_part("转发平安镇的周报".encode()),
        b"Content-Type: message/rfc822\r\n\r\n" + inner,
        subject=b"Fwd: forwarded",
    )
    mail = parse_message(raw)
    assert mail.forwarded is not None
    assert mail.forwarded.subject == "平安镇第二周周报"
    assert (mail.forwarded.from_name, mail.forwarded.from_address) == (
        "平安镇",
        "pingan_aj@163.com",
    )
    assert mail.forwarded.body_text == "附件请查收"
    assert [a.filename for a in mail.forwarded.attachments] == ["tj.xlsx"]
    assert [(a.filename, a.kind) for a in mail.attachments] == [("tj.xlsx", "xlsx")]
    assert mail.body_text == "转发平安镇的周报"


def test_truncated_mail_keeps_what_is_there():
    full = mail_with_parts(
        text_part("周报正文".encode()),
        file_part(b'filename="tj.xlsx"', xlsx_bytes()),
    )
    cut = full[: full.index(b"--BB--") - 301]  # mid-base64, no closing boundary
    mail = parse_message(cut)
    assert mail.body_text == "周报正文"
    (att,) = mail.attachments
    assert att.filename == "tj.xlsx"
    assert "truncated: multipart ends without its closing boundary" in mail.problems
    assert "truncated: the mail ends inside this file" in att.problems
    assert "truncated or corrupt zip container" in att.problems


def test_mail_cut_before_a_nested_boundary_survives_mail_parser_crash():
    # mail-parser 4.8 raises AttributeError on this shape; the stdlib tree is used instead
    raw = HEAD + (
        b'Subject: x\r\nContent-Type: multipart/mixed; boundary="BB"\r\n\r\n'
        b'--BB\r\nContent-Type: multipart/alternative; boundary="IN"\r\n\r\n' + "周报正文".encode()
    )
    mail = parse_message(raw)
    assert mail.body_text == "周报正文"
    assert mail.problems == [
        "truncated: multipart ends without its closing boundary",
        "multipart without its boundary; parts not separated",
    ]


def test_absurdly_nested_mail_keeps_its_headers():
    nested = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(5000)
    )
    raw = b"From: a@b.cn\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    mail = parse_message(raw + nested)
    assert (mail.subject, mail.from_address, mail.body_text) == ("deep", "a@b.cn", "")
    assert mail.problems == ["MIME structure nested too deep to parse; body and files not read"]


def test_forwards_nested_beyond_three_levels_stop():
    raw = b"From: a@b.cn\r\nContent-Type: message/rfc822\r\n\r\n" * 6 + b"Subject: x\r\n\r\nhi"
    mail = parse_message(raw)
    third = mail.forwarded.forwarded.forwarded
    assert third.forwarded is None
    assert third.problems == ["forwarded messages nested too deep; innermost not parsed"]
    assert mail.problems == [
        "forwarded message: forwarded message: forwarded message: "
        "forwarded messages nested too deep; innermost not parsed"
    ]


NO_HEADER = "no header lines at the start, not a mail"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty file"),
        (b" \r\n\r\n", "empty file"),
        (
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
            "binary data (NUL bytes in the header area), not a mail",
        ),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", NO_HEADER),
        (b"just some words\nand more\n", NO_HEADER),
    ],
)
def test_not_a_mail_raises_parse_error(raw, reason):
    with pytest.raises(ParseError) as err:
        parse_message(raw)
    assert str(err.value) == reason


# --- real mails ------------------------------------------------------------------------------


def test_every_corpus_mail_parses_with_server_receipt_time():
    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    assert len(expected) == 272
    for entry in expected:
        mail = parse_message((CORPUS / entry["file"]).read_bytes())
        assert mail.message_id == entry["message_id"], entry["file"]
        assert mail.received_at == datetime.fromisoformat(entry["received_at"]), entry["file"]
        text = mail.subject + mail.from_name + mail.body_text
        assert "\ufffd" not in text + "".join(a.filename for a in mail.attachments), entry["file"]


@pytest.mark.parametrize(
    ("name", "subject", "from_name", "files"),
    [
        # UTF-8 Q subject, quoted encoded display name, RFC 2231 UTF-8 name split inside a char
        ("0004.eml", "关于报送于楼街道安全生产月活动方案的函", "于楼街道安监站",
         ["于楼街道安全生产月活动方案.docx"]),
        # GB2312 label holding GBK-only characters (東, 鎮, 產)
        ("0035.eml", "東風鎮安全生產月和安全生產大窪行活動方案", "李娜",
         ["東風鎮安全生产月活动方案.docx"]),
        # raw 8-bit GBK file names
        ("0129.eml", "王家街道办事处安全生产月周报", "赵圈河镇",
         ["附件1：王家街道办事处活动情况统计表.docx", "王家街道办事处第三周活动信息.docx"]),
        # RFC 2231 gbk'' file name
        ("0044.eml", "于楼街道办事处安全生产月周报", "于楼街道",
         ["于楼街道办事处第一周统计表.docx", "于楼街道办事处第一周活动信息.docx"]),
    ],
)  # fmt: skip
def test_corpus_subjects_senders_and_file_names(name, subject, from_name, files):
    mail = parse_message((CORPUS / name).read_bytes())
    assert mail.subject == subject
    assert mail.from_name == from_name
    assert [a.filename for a in mail.attachments] == files


def test_corpus_cut_off_attachments_are_flagged():
    flagged = {
        name: [(a.filename, a.kind, a.problems) for a in mail.attachments if a.problems]
        for name in ("0061.eml", "0084.eml", "0153.eml", "0043.eml")
        for mail in [parse_message((CORPUS / name).read_bytes())]
    }
    assert flagged == {
        "0061.eml": [
            ("附件1：西安镇活动情况统计表.xls", "xls", ["truncated or corrupt OLE2 file"])
        ],
        "0084.eml": [
            ("新建 Microsoft Excel 工作表.xlsx", "xlsx", ["truncated or corrupt zip container"])
        ],
        "0153.eml": [
            ("统计表（区交通运输局）.xlsx", "xlsx", ["truncated or corrupt zip container"])
        ],
        "0043.eml": [],
    }


def test_corpus_cloud_link_is_in_body_text():
    mail = parse_message((CORPUS / "0243.eml").read_bytes())
    assert (
        "http://fs.mail.163.com/fs/display/?p=X-NETEASE-HUGE-ATTACHMENT.a5c1318303fad33a"
        in mail.body_text
    )
    assert mail.attachments == []


@pytest.mark.skipif(not PEER_MAILS.is_dir(), reason="shared/peer-mails not present")
def test_peer_mails_raise_nothing_but_parse_error():
    files = sorted((PEER_MAILS / "flanker").glob("*.eml"))
    assert files
    parsed = 0
    for path in files:
        try:
            mail = parse_message(path.read_bytes())
        except ParseError:
            continue
        parsed += 1
        assert isinstance(mail.subject, str), path.name
    assert parsed == len(files)  # every fixture is a mail, however broken


# --- large bodies, read from the raw bytes ------------------------------------------------------


def big(size: int = 300_000) -> bytes:
    return bytes(range(256)) * (size // 256) + b"tail"


def test_a_large_attachment_is_decoded_from_the_raw_bytes_exactly():
    data = big()
    raw = mail_with_parts(text_part(b"see file"), file_part(b'filename="a.bin"', data))
    blobs = parse._Blobs(raw)
    assert blobs.spans  # the body was cut out of what the stdlib parser saw
    assert b'filename="a.bin"\r\n\r\nMAILPROCBLOB0\r\n' in blobs.text  # after the blank line
    mail = parse_message(raw)
    assert [(a.filename, a.data == data, a.problems) for a in mail.attachments] == [
        ("a.bin", True, [])
    ]
    assert mail.body_text == "see file"


def test_a_large_attachment_cut_off_keeps_what_arrived():
    data = big()
    encoded = b64(data)
    cut = encoded[: len(encoded) // 2 + 3]  # inside a line, mid-group
    raw = HEAD + b'Subject: t\r\nContent-Type: multipart/mixed; boundary="BB"\r\n\r\n--BB\r\n'
    raw += b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
    raw += b'Content-Disposition: attachment; filename="a.bin"\r\n\r\n' + cut
    (att,) = parse_message(raw).attachments
    assert "truncated base64" in att.problems or "truncated: the mail ends inside this file" in (
        att.problems
    )
    assert data.startswith(att.data) and len(att.data) > len(data) // 3


def test_a_long_run_of_letters_in_a_text_body_is_given_back_as_written():
    text = (b"ABCD" * 19 + b"\r\n") * 400  # looks like base64, is plain text
    raw = mail_with_parts(text_part(text), file_part(b'filename="a.bin"', b"x"))
    assert parse._Blobs(raw).spans
    assert parse_message(raw).body_text == text.decode().replace("\r\n", "\n").strip()


def test_lines_that_split_a_group_still_decode():
    data = big()
    odd = base64.b64encode(data)
    lines = b"\r\n".join(odd[i : i + 75] for i in range(0, len(odd), 75)) + b"\r\n"
    raw = mail_with_parts(
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="a.bin"\r\n\r\n' + lines
    )
    (att,) = parse_message(raw).attachments
    assert (att.data == data, att.problems) == (True, [])


def test_a_forwarded_mail_with_a_large_file():
    data = big()
    inner = mail_with_parts(file_part(b'filename="inner.bin"', data), subject=b"inner")
    raw = mail_with_parts(
        text_part(b"fw"), b"Content-Type: message/rfc822\r\n\r\n" + inner, subject=b"Fw: inner"
    )
    mail = parse_message(raw)
    assert [(a.filename, a.data == data) for a in mail.attachments] == [("inner.bin", True)]
    assert mail.forwarded.subject == "inner"


def test_a_body_whose_groups_do_not_fit_its_lines_is_read_whole():
    """Two characters on a line of their own before the long lines: no run of whole groups, so
    the body is left to the stdlib parser, and decodes all the same."""
    data = big()
    encoded = base64.b64encode(data)
    lines = encoded[:2] + b"\r\n"
    lines += b"".join(encoded[i : i + 76] + b"\r\n" for i in range(2, len(encoded), 76))
    raw = mail_with_parts(
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="a.bin"\r\n\r\n' + lines
    )
    assert parse._Blobs(raw).spans == []
    (att,) = parse_message(raw).attachments
    assert (att.data == data, att.problems) == (True, [])

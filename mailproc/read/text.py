"""Text normalisation shared by every stage that matches Chinese words.

Units write 東風鎮 for 东风镇, １２ for 12 and put spaces inside names; every comparison
goes through `normalize` so rules can list each word once, in simplified script.
"""

import functools
import re
import unicodedata

import opencc

_SPACE_AND_PUNCT = re.compile(
    r"[\s\u3000_\-—–·•.,，。、:：;；!！?？'\"“”‘’()（）\[\]【】《》<>〈〉/\\|]+"
)


@functools.cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def simplify(text: str) -> str:
    """Traditional → simplified, full-width → half-width (NFKC), nothing else changed."""
    if not text:
        return ""
    return _t2s().convert(unicodedata.normalize("NFKC", text))


def normalize(text: str) -> str:
    """`simplify`, lower-cased, with white space and punctuation removed: for matching."""
    return _SPACE_AND_PUNCT.sub("", simplify(text)).lower()


# Where a reply's quotation of an earlier mail begins, as Chinese and western clients write it:
# 163/QQ/Foxmail's "原始邮件" rule, Outlook's header block, Gmail's "在…写道：" / "On … wrote:".
_QUOTE_START = re.compile(
    r"^\s*(?:-{2,}\s*(?:原始邮件|Original Message|Forwarded message|转发邮件)"
    r"|_{5,}\s*$|(?:发件人|From)\s*[:：]|在.{0,80}写道\s*[:：]\s*$|On .{0,120} wrote:\s*$)",
    re.I,
)


def own_words(body: str) -> str:
    """The part of a body its sender wrote: quoted lines (`>`) and everything from the start of
    a quoted earlier mail on are left out, so words of the mail answered are not taken for the
    sender's."""
    kept = []
    for line in body.splitlines():
        if _QUOTE_START.match(line):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line)
    return "\n".join(kept)

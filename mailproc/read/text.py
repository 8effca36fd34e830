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

"""Problems: what a submission lacks, in the order the reply names them, and whether a mail
from an unknown sender looks like a submission at all. See
docs/campaign.md#problems-and-replies."""

import json
import re
from pathlib import PurePath

from mailproc.read.kinds import CONTAINER_KINDS, DOCUMENT_KINDS, DOCUMENT_SUFFIXES
from mailproc.read.text import normalize, own_words, simplify
from mailproc.rules import Item, Rules
from mailproc.values import PROBLEM_ORDER, FileCheck, Flag, ParsedMail

STATS_PROBLEMS = {"cloud_link", "no_stats", "unreadable_file", "bad_cells"}  # no 附件1 counted
_CJK = re.compile(r"[\u4e00-\u9fff]")
_SENTENCE_END = re.compile(r"[。！？!?；;\n]+")
# Numbers that are no figure: an ordinal of any campaign's periods or versions (第1周, 第3期,
# 第2次, 第2版), a month (8月份) or a date (6月13日, 6.13)
_NOT_A_FIGURE = re.compile(
    r"第\s*[0-9０-９一二三四五六七八九十百]+|[0-9]{1,2}\s*月份"
    r"|[0-9]{1,2}\s*月\s*[0-9]{1,2}\s*[日号]?"
    r"|[0-9]{1,2}[.．/-][0-9]{1,2}(?![0-9])|20[0-9]{2}\s*年"
)
_DIGITS = re.compile(r"[0-9]")
_CHINESE_NUMBER = "[零一二两三四五六七八九十百千万]+"
CORRECTION_SHOWN = 300  # characters of the correction the office sees


class Problems:
    """The rules' campaign words and cloud-drive link patterns, prepared once."""

    def __init__(self, rules: Rules):
        self.campaign_words = [normalize(w) for w in rules.words["campaign"]]
        self.table_name = rules.table["name"]
        self.cloud_links = [re.compile(p, re.I) for p in rules.words["cloud_link_patterns"]]
        self.correction_words = [normalize(w) for w in rules.words.get("correction_words", [])]
        self.column_words = {
            normalize(word)
            for column in rules.columns
            for word in (column.group, *column.group_synonyms, *column.flat)
        }
        suffixes = sorted(rules.values.get("unit_suffixes", []), key=len, reverse=True)
        units = "|".join(map(re.escape, filter(None, suffixes))) or "(?!)"
        self.counted = re.compile(rf"(?:[0-9]+|{_CHINESE_NUMBER})\s*(?:{units})")

    def correction(
        self,
        item: Item,
        subjects: list[str],
        bodies: list[str],
        files: list[FileCheck],
        earlier: list[dict],
    ) -> Flag | None:
        """A further version that corrects figures in words and brings no 附件1 (“更正：应急演练
        场次应为2场，以此为准”): a sentence of the subject or of the sender's own words with a
        figure, and a correction word in it or in the subject. A first version corrects
        nothing; a week or a date is no figure."""
        if not (item.needs_stats and earlier and self.correction_words):
            return None
        if any(c.role in {"stats", "stats_candidate"} for c in files):
            return None
        titled = any(self._corrects(normalize(subject)) for subject in subjects)
        said = []
        for text in [*subjects, *(own_words(body) for body in bodies)]:
            for sentence in _SENTENCE_END.split(text):  # shown as written, read simplified
                read = simplify(sentence)
                if (titled or self._corrects(normalize(read))) and self._has_figure(read):
                    said.append(sentence.strip())
        if not said:
            return None
        shown = "；".join(dict.fromkeys(said))
        if len(shown) > CORRECTION_SHOWN:
            shown = shown[:CORRECTION_SHOWN] + "…"
        return Flag("correction", f"文字更正（未附{self.table_name}）：{shown}")

    def looks_like_submission(
        self, subjects: list[str], names: str, bodies: list[str], files: list[FileCheck]
    ) -> bool:
        """Campaign words, a 附件1 table, or an office document in a mail written in Chinese."""
        text = " ".join([*subjects, names, *bodies])
        if any(w in normalize(text) for w in self.campaign_words):
            return True
        if any(c.role == "stats" for c in files):
            return True
        has_document = any(c.role in {"stats_candidate", "document"} for c in files)
        return has_document and _CJK.search(text) is not None

    def _corrects(self, normalized: str) -> bool:
        return any(word in normalized for word in self.correction_words)

    def _has_figure(self, sentence: str) -> bool:
        """A number with a unit (2场, 一千二百份), or a number and a 附件1 column's name."""
        figures = _NOT_A_FIGURE.sub(" ", sentence)
        return bool(self.counted.search(figures)) or (
            _DIGITS.search(figures) is not None
            and any(word in normalize(figures) for word in self.column_words)
        )

    def lacking(
        self,
        item: Item,
        mail: ParsedMail,
        files: list[FileCheck],
        bodies: list[str],
        earlier: list[dict],
        corrected: bool = False,
    ) -> list[str]:
        """What this version lacks. A part an earlier version of the same period brought (the
        summary's document in version 1) is not asked for again when a later one brings the
        rest (附件1 in version 2); a version `corrected` in words lacks the corrected 附件1."""
        before = [set(json.loads(row.get("problems") or "[]")) for row in earlier]
        had_document = any(not lacks & {"no_attachment", "cloud_link"} for lacks in before)
        had_stats = any(not lacks & STATS_PROBLEMS for lacks in before)
        problems = []
        readable_tables = [c.table for c in files if c.table is not None]
        for check in files:
            # A spreadsheet that is not 附件1 matters only while 附件1 is still owed.
            if check.role == "stats_candidate" and (readable_tables or not item.needs_stats):
                check.note, check.error = check.error, None
        documents = [c for c in files if c.role in {"document", "stats", "stats_candidate"}]
        stats_files = [c for c in files if c.role in {"stats", "stats_candidate"}]
        real_documents = [
            c
            for c in documents
            if c.attachment.kind in DOCUMENT_KINDS
            or PurePath(c.attachment.filename).suffix.lower() in DOCUMENT_SUFFIXES
        ]
        # A container left shut may hold both: it is what the unit is asked to send again
        shut = any(c.error and c.attachment.kind in CONTAINER_KINDS for c in files)
        missing_document = (
            item.needs_document and not real_documents and not had_document and not shut
        )
        missing_stats = (
            item.needs_stats and not stats_files and (corrected or not had_stats) and not shut
        )
        links = " ".join([*bodies, *(m.body_html for m in mail.chain())])
        if (missing_document or missing_stats) and any(p.search(links) for p in self.cloud_links):
            problems.append("cloud_link")
        if missing_document:
            problems.append("no_attachment")
        if missing_stats:
            problems.append("no_stats")
        if any(c.error for c in files):
            problems.append("unreadable_file")
        if item.needs_stats and readable_tables and all(t.bad_cells for t in readable_tables):
            problems.append("bad_cells")
        return sorted(set(problems), key=PROBLEM_ORDER.index)

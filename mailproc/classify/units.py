"""Which unit a mail is from or for: names and aliases in a text, names written short, the
registered address, and whether a row of 附件1 is the unit's own. See docs/campaign.md#unit."""

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import NamedTuple

from mailproc.classify.history import History
from mailproc.read.text import normalize
from mailproc.rules import Rules, Unit
from mailproc.values import Attachment, FileCheck, Flag, ParsedMail

_ON_BEHALF = re.compile(r"代(?:为|替)?(?:报送?)?$")
MIN_ABBREVIATION, MAX_ABBREVIATION = 3, 16  # characters of a unit name written short
# A slip in a name this short must sound like the right character (东凤镇 for 东风镇: the input
# method's slip); in a longer name any one character may be wrong, it names nothing else.
SOUND_ALIKE_UP_TO = 4
MIN_WITH_ONE_MISSING = 4  # 界沟街道 for 二界沟街道; a shorter rest (大街道) is an ordinary word
GUESS_SPAN = 2000  # characters at each end of a text where a slip is looked for


class Guess(NamedTuple):
    """A unit read from a name written with one character wrong or missing."""

    unit: Unit
    written: str

    @property
    def flag(self) -> Flag:
        return Flag(
            "unit_guess", f"单位名称疑似笔误：“{self.written}”按{self.unit.name}登记，请核对"
        )


class UnitNames:
    """Every unit's names, with the matching tables built once per rules."""

    def __init__(self, rules: Rules):
        self.rules = rules
        self.names = rules.unit_names_longest_first()
        regions = rules.words.get("region_words", [])  # optional: older rules lack it
        self.regions = sorted((normalize(w) for w in regions), key=len)[::-1]
        self.own_row_labels = {normalize(w) for w in rules.table.get("own_row_labels", [])}
        # unit names with the place names set aside, by first character, for abbreviations
        self.cores: dict[str, list[tuple[str, Unit]]] = {}
        for unit in rules.units:
            for name in unit.names:
                core = self.without_regions(normalize(name))
                if len(core) >= MIN_ABBREVIATION:
                    self.cores.setdefault(core[0], []).append((core, unit))
        self.unit_ends = {core[-1] for forms in self.cores.values() for core, _ in forms}
        self.by_last: dict[str, list[tuple[str, Unit]]] = {}  # every name, by its last character
        for name, unit in self.names:
            if len(name) >= MIN_ABBREVIATION:
                self.by_last.setdefault(name[-1], []).append((name, unit))

    def unit_in(self, text: str) -> Unit | None:
        """The unit named earliest in `text` (longest name at that place); a unit named right
        after 代 (代报, 代为报送) first: it is the one the mail reports for."""
        norm = normalize(text)
        named: list[tuple[int, int, Unit]] = []
        for name, unit in self.names:
            pos = norm.find(name)
            while pos >= 0:
                named.append((pos, -len(name), unit))
                pos = norm.find(name, pos + 1)
        for pos, _, unit in sorted(named):
            if _ON_BEHALF.search(norm[max(0, pos - 4) : pos]):
                return unit
        return min(named, key=lambda hit: hit[:2])[2] if named else None

    def unit_named(self, text: str) -> Unit | None:
        """The unit `text` names in full (or by an alias), else by a short form."""
        return self.unit_in(text) or self.unit_abbreviated_in(text)

    def without_regions(self, text: str) -> str:
        for word in self.regions:
            text = text.replace(word, "")
        return text[1:] if text.startswith("区") else text

    def unit_abbreviated_in(self, text: str) -> Unit | None:
        """The unit a name in `text` abbreviates (区市场局, 区住房城乡建设局, 国网盘锦市大洼区供电
        公司): with place names set aside, its characters appear in order in the unit's name and
        it shares the first and last character. The longest such name wins, and only when it
        fits one unit."""
        norm = normalize(text)
        for length in range(min(len(norm), MAX_ABBREVIATION), MIN_ABBREVIATION - 1, -1):
            for start in range(len(norm) - length + 1):
                written = norm[start : start + length]
                if written[-1] not in self.unit_ends:
                    continue
                core = self.without_regions(written)
                if len(core) < MIN_ABBREVIATION:
                    continue
                fits = {
                    unit
                    for name, unit in self.cores.get(core[0], [])
                    if name[-1] == core[-1] and _in_order(core, name)
                }
                if len(fits) == 1:
                    return fits.pop()
        return None

    def guess(self, texts: Iterable[str]) -> Guess | None:
        """The one unit that the texts name with one character wrong (东凤镇, 榆数街道) or
        missing (界沟街道), when they name no other that way; the last character (镇, 街道, 局)
        is always written right. Asked only when no unit is named exactly."""
        found: dict[str, Guess] = {}
        for text in texts:
            if len(text) > 2 * GUESS_SPAN:  # a long body: its opening and its signature
                text = f"{text[:GUESS_SPAN]}\n{text[-GUESS_SPAN:]}"
            norm = normalize(text)
            for end, char in enumerate(norm, 1):
                for name, unit in self.by_last.get(char, ()):
                    for length in (len(name), len(name) - 1):
                        written = norm[max(0, end - length) : end]
                        if _slip_of(written, name):
                            found.setdefault(unit.name, Guess(unit, written))
        return next(iter(found.values())) if len(found) == 1 else None

    def sender_unit(self, chain: list[ParsedMail], history: History) -> Unit | None:
        """The unit whose address (in the rules, or registered by the office) sent the mail or
        the mail it forwards. `From` only: a `Reply-To` costs a forger nothing."""
        for mail in chain:
            unit = self.rules.unit_by_address(mail.from_address)
            if unit is None and mail.from_address:
                unit = self.rules.unit(history.registered_unit(mail.from_address) or "")
            if unit:
                return unit
        return None

    def names_unit(self, label: str, unit: Unit) -> bool:
        """Whether a row label (or 填报单位) names `unit`: its name, a short form, 本单位."""
        if normalize(label) in self.own_row_labels:
            return True
        return self.unit_named(label) is unit

    def own_row_of(self, unit: Unit) -> Callable[[str], bool]:
        """Whether a row label names `unit` (see `names_unit`), as `sheets.pick` asks it."""
        return functools.partial(self.names_unit, unit=unit)

    def find(
        self,
        subjects: list[str],
        attachments: list[Attachment],
        files: list[FileCheck],
        sender: Unit | None,
        bodies: list[str],
    ) -> tuple[Unit | None, str | None]:
        reporters = [c.table.reporter for c in files if c.table and c.table.reporter]
        for source, texts in (
            ("subject", subjects),
            ("filename", [att.filename for att in attachments]),
            ("table", reporters),
        ):
            for text in texts:
                unit = self.unit_named(text)
                if unit:
                    return unit, source
        if sender:
            return sender, "address"
        for body in bodies:
            unit = self.unit_in(body)
            if unit:
                return unit, "body"
        return None, None


def _slip_of(written: str, name: str) -> bool:
    """Whether `written` is `name` with one character before its last wrong (sounding alike,
    in a short name) or missing (leaving a long enough rest)."""
    if written[-1:] != name[-1] or written == name:
        return False
    if len(written) == len(name):
        wrong = [i for i, (a, b) in enumerate(zip(written, name, strict=True)) if a != b]
        return len(wrong) == 1 and (
            len(name) > SOUND_ALIKE_UP_TO or _sounds_alike(written[wrong[0]], name[wrong[0]])
        )
    if len(written) == len(name) - 1 >= MIN_WITH_ONE_MISSING:
        return any(name[:i] + name[i + 1 :] == written for i in range(len(name) - 1))
    return False


def _sounds_alike(one: str, other: str) -> bool:
    """Whether two characters share a reading, tones aside (风 and 凤 are both feng)."""
    return bool(_readings(one) & _readings(other))


@functools.cache
def _readings(char: str) -> frozenset[str]:
    """The pinyin readings of a character without tones; loaded only when a slip is weighed."""
    from pypinyin.pinyin_dict import pinyin_dict  # here: it takes half a second to load

    marked = pinyin_dict.get(ord(char), "")
    plain = "".join(c for c in unicodedata.normalize("NFD", marked) if not unicodedata.combining(c))
    return frozenset(filter(None, plain.split(",")))


def _in_order(short: str, name: str) -> bool:
    """Whether the characters of `short` appear in `name` in the same order."""
    rest = iter(name)
    return all(char in rest for char in short)

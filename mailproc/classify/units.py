"""Which unit a mail is from or for: names and aliases in a text, names written short, the
registered address, and whether a row of 附件1 is the unit's own. See docs/campaign.md#unit."""

import functools
import re
from collections.abc import Callable

from mailproc.classify.history import History
from mailproc.read.text import normalize
from mailproc.rules import Rules, Unit
from mailproc.values import Attachment, FileCheck, ParsedMail

_ON_BEHALF = re.compile(r"代(?:为|替)?(?:报送?)?$")
MIN_ABBREVIATION, MAX_ABBREVIATION = 3, 16  # characters of a unit name written short


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


def _in_order(short: str, name: str) -> bool:
    """Whether the characters of `short` appear in `name` in the same order."""
    rest = iter(name)
    return all(char in rest for char in short)

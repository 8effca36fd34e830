"""Benchmark: consolidate many units' 附件1 tables, against calamine merely reading the files.

The weekly digest reads every unit's latest 附件1 and adds up the figures. This script generates
that workload (half .xlsx written by openpyxl, half .xls written by xlwt, filled with the drift
real units show), times `read_stats` over all of it against the floor set by python-calamine
opening and reading the same bytes, and checks the consolidated totals against the figures the
generator wrote, so a fast but wrong reader fails too.

    .venv/bin/python benchmarks/consolidate.py [--units 1000] [--repeat 3] [--keep DIR]

Exit status 1 when totals or any table differ from what was generated, or a target is missed.
"""

import argparse
import io
import itertools
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import opencc
import openpyxl
import xlwt
from python_calamine import CalamineWorkbook

from mailproc.read.tables import read_stats
from mailproc.rules import load_rules

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
TARGET_SECONDS = 5.0
TARGET_RATIO = 2.0
SEED = 20190613

TITLE = "盘锦市大洼区“安全生产月”和“安全生产大洼行”活动情况统计表"
PLACES = ["东风镇", "新开镇", "清水镇", "新兴镇", "西安镇", "新立镇", "唐家镇", "平安镇",
          "赵圈河镇", "田家街道", "榆树街道", "王家街道", "大洼街道", "二界沟街道", "向海街道",
          "荣兴街道", "区教育局", "区卫健局", "区住建局", "区交通局", "区市场监管局",
          "区农业农村局"]  # fmt: skip
PEOPLE = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "冯堃"]
TOTAL_LABELS = ["累计", "合计", "本月累计", "累计数"]
# Largest plausible weekly figure by the column's unit.
CEILINGS = {"场": 8, "人次": 3000, "个": 6, "份": 5000, "家": 3, "项": 25, "条": 3, "篇": 5}

Row = list[Any]  # None is an empty cell
Merge = tuple[int, int, int, int]  # first row, first column, last row, last column (from 0)


@dataclass
class Sheet:
    name: str
    rows: list[Row]
    merges: list[Merge] = field(default_factory=list)


@dataclass
class Generated:
    """One unit's file and what reading it must give."""

    name: str
    kind: str
    data: bytes
    reporter: str
    values: dict[str, int]
    approximations: int


# ---------------------------------------------------------------------------------------------
# Generating the tables


class UnitTable:
    """One unit's way of filling in 附件1: script, layout, header words and cell habits."""

    def __init__(self, rng: random.Random, rules: Any, unit: str, to_traditional: Callable):
        self.rng = rng
        self.traditional = rng.random() < 0.15
        self.script: Callable[[str], str] = to_traditional if self.traditional else str
        self.unit = self.script(unit)
        self.approximations = 0
        columns = list(rules.columns)
        if rng.random() < 0.3:  # some units drop the columns they had nothing for
            dropped = set(rng.sample(range(len(columns)), rng.randrange(1, 8)))
            columns = [c for n, c in enumerate(columns) if n not in dropped]
        self.columns = columns
        self.figures = {c.id: self.figure(c.unit) for c in columns}

    def figure(self, unit: str) -> int:
        if self.rng.random() < 0.3:
            return 0
        return self.rng.randrange(1, CEILINGS[unit] + 1)

    def cell(self, value: int, unit: str) -> Any:
        """`value` the way a clerk types it."""
        rng, roll = self.rng, self.rng.random()
        if value == 0:
            return rng.choice([0, 0, None, "—", "无", "0"])
        if roll < 0.55:
            return value
        if roll < 0.65:
            return str(value)
        if roll < 0.75:
            return str(value).translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
        if roll < 0.85:
            return self.script(f"{value}{unit}")
        if roll < 0.9 and value >= 1000:
            return f"{value:,}"
        if roll < 0.95:
            self.approximations += 1
            return f"约{value}"
        self.approximations += 1
        return self.script(f"{value}余")

    def reporter_rows(self) -> list[Row]:
        """Title and 填报单位 above the header, as a line, as label and value cells, or absent
        (the data row's 单位 cell then names the unit)."""
        rng, s = self.rng, self.script
        person = rng.choice(PEOPLE)
        style = rng.random()
        if style < 0.6:
            line = f"填报单位：{self.unit}    填报人：{person}    联系电话：0427-6780436"
            return [[s(TITLE)], [s(f"{line}    填报日期：2019年6月12日")]]
        if style < 0.8:
            return [[s(TITLE)], [s("填报单位"), self.unit, s(f"填报人：{person}")]]
        return [[s(TITLE)]] if style < 0.9 else []

    def total_row(self, width_before: int) -> Row:
        label = self.script(self.rng.choice(TOTAL_LABELS))
        cumulative = [f * self.rng.randrange(2, 5) for f in self.figures.values()]
        return [label, *[None] * width_before, *cumulative]

    def horizontal(self) -> Sheet:
        rng, s = self.rng, self.script
        rows = self.reporter_rows()
        lead = [s("序号")] if rng.random() < 0.2 else []  # a 序号 column before 单位
        merges: list[Merge] = []
        if rng.random() < 0.6:  # the template's two-level header, groups merged across
            header, merges = self.two_level_header([*lead, s("单位")], top=len(rows))
            rows += header
        else:  # single-level, in each unit's own words
            rows.append([*lead, s("单位"), *(s(rng.choice(c.flat)) for c in self.columns)])
        values = [self.cell(self.figures[c.id], c.unit) for c in self.columns]
        data_row = [*([1] if lead else []), self.unit, *values]
        if rng.random() < 0.4:
            total = self.total_row(len(lead))
            rows += [data_row, total] if rng.random() < 0.8 else [total, data_row]
        else:
            rows.append(data_row)
        if rng.random() < 0.5:
            rows.append([s("注：本表数据截至填报日期，请于每周四11时前报送。")])
        return Sheet("附件1" if rng.random() < 0.5 else "Sheet1", rows, merges)

    def two_level_header(self, lead: Row, top: int) -> tuple[list[Row], list[Merge]]:
        """Group cells over sub-headers; a group over two columns is one merged cell."""
        rng, s = self.rng, self.script
        groups, subs = list(lead), [None] * len(lead)
        merges = [(top, c, top + 1, c) for c in range(len(lead))]
        for group, members in itertools.groupby(self.columns, key=lambda c: c.group):
            members = list(members)
            first = members[0]
            groups += [s(rng.choice([group, group, *first.group_synonyms]))]
            groups += [None] * (len(members) - 1)
            for column in members:
                subs.append(s(rng.choice([column.header, column.header, *column.synonyms])))
            if len(members) > 1:
                merges.append((top, len(subs) - len(members), top, len(subs) - 1))
        return [groups, subs], merges

    def vertical(self) -> Sheet:
        s = self.script
        rows: list[Row] = [
            [s(TITLE)],
            [s(f"填报单位：{self.unit}")],
            [s("项目"), s("单位"), s("数量")],
        ]
        for column, value in zip(self.columns, self.figures.values(), strict=True):
            label = s(self.rng.choice(column.flat))
            rows.append([label, s(column.unit), self.cell(value, column.unit)])
        return Sheet("Sheet1", rows)

    def sheets(self) -> list[Sheet]:
        main = self.vertical() if self.rng.random() < 0.05 else self.horizontal()
        if self.rng.random() < 0.2:
            notes = [
                ["填表说明"],
                ["1. 请按实际开展情况填写，无数据填0。"],
                ["2. 每周四11时前报送。"],
            ]
            return [
                Sheet(self.script("填表说明"), [[self.script(t) for t in r] for r in notes]),
                main,
            ]
        return [main]


def write_xlsx(sheets: list[Sheet]) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for sheet in sheets:
        target = workbook.create_sheet(sheet.name)
        for r, row in enumerate(sheet.rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    target.cell(r, c, value)
        for r1, c1, r2, c2 in sheet.merges:
            target.merge_cells(
                start_row=r1 + 1, start_column=c1 + 1, end_row=r2 + 1, end_column=c2 + 1
            )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def write_xls(sheets: list[Sheet]) -> bytes:
    workbook = xlwt.Workbook(encoding="utf-8")
    for sheet in sheets:
        target = workbook.add_sheet(sheet.name)
        covered = {
            (r, c)
            for r1, c1, r2, c2 in sheet.merges
            for r in range(r1, r2 + 1)
            for c in range(c1, c2 + 1)
        }
        for r1, c1, r2, c2 in sheet.merges:
            value = sheet.rows[r1][c1] if c1 < len(sheet.rows[r1]) else None
            target.write_merge(r1, r2, c1, c2, "" if value is None else value)
        for r, row in enumerate(sheet.rows):
            for c, value in enumerate(row):
                if value is not None and (r, c) not in covered:
                    target.write(r, c, value)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def unit_name(n: int) -> str:
    place = PLACES[n % len(PLACES)]
    return place if n < len(PLACES) else f"{place}第{n // len(PLACES)}网格"


def generate(units: int, rules: Any) -> list[Generated]:
    """`units` tables, deterministic for a given count; even ones .xlsx, odd ones .xls."""
    rng = random.Random(SEED)
    to_traditional = opencc.OpenCC("s2t").convert
    files = []
    for n in range(units):
        table = UnitTable(rng, rules, unit_name(n), to_traditional)
        sheets = table.sheets()
        kind = "xlsx" if n % 2 == 0 else "xls"
        data = write_xlsx(sheets) if kind == "xlsx" else write_xls(sheets)
        name = f"{n:04d}_{table.unit}_附件1.{kind}"
        files.append(Generated(name, kind, data, table.unit, table.figures, table.approximations))
    return files


# ---------------------------------------------------------------------------------------------
# Measuring


def calamine_read(files: list[Generated]) -> int:
    """The floor: open each workbook from bytes and turn every sheet into Python values."""
    cells = 0
    for file in files:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(file.data))
        for index in range(len(workbook.sheet_names)):
            cells += sum(map(len, workbook.get_sheet_by_index(index).to_python()))
    return cells


def consolidate(files: list[Generated], rules: Any) -> Counter[str]:
    """What the digest does: read every unit's 附件1 and add up each column."""
    totals: Counter[str] = Counter()
    for file in files:
        table = read_stats(file.data, file.name, file.kind, rules)
        if table is not None:
            totals.update(table.values)
    return totals


def best_of(repeat: int, *runs: Callable[[], Any]) -> list[tuple[float, Any]]:
    """Best time and result of each run. The runs take turns, so a slow spell on a shared
    machine falls on both sides of the ratio rather than on whichever ran then."""
    best: list[tuple[float, Any]] = [(float("inf"), None)] * len(runs)
    for _ in range(repeat):
        for n, run in enumerate(runs):
            started = time.perf_counter()
            result = run()
            best[n] = (min(best[n][0], time.perf_counter() - started), result)
    return best


def mismatches(files: list[Generated], rules: Any) -> list[str]:
    """Every way a file's reading differs from what was written into it."""
    found = []
    for file in files:
        table = read_stats(file.data, file.name, file.kind, rules)
        if table is None:
            found.append(f"{file.name}: no table found")
            continue
        got = (table.values, table.reporter, len(table.approximations), table.bad_cells)
        want = (file.values, file.reporter, file.approximations, [])
        if got != want:
            found.append(f"{file.name}: read {got}, wrote {want}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1000, help="tables to generate")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--keep", type=Path, help="also write the generated files here")
    args = parser.parse_args()

    rules = load_rules(RULES_DIR)
    started = time.perf_counter()
    generated = generate(args.units, rules)
    with tempfile.TemporaryDirectory(prefix="mailproc-bench-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for file in generated:
            (folder / file.name).write_bytes(file.data)
        # read back from disk: what is measured is what a user can open
        files = [replace(f, data=(folder / f.name).read_bytes()) for f in generated]
    kinds = Counter(f.kind for f in files)
    size = sum(len(f.data) for f in files) / 2**20
    kept = f" in {args.keep}" if args.keep else ""
    print(
        f"generated {len(files)} files ({kinds['xlsx']} xlsx, {kinds['xls']} xls, "
        f"{size:.1f} MB{kept}) in {time.perf_counter() - started:.1f} s, not timed"
    )

    problems = mismatches(files, rules)
    expected: Counter[str] = Counter()
    for file in files:
        expected.update(file.values)
    tracemalloc.start()
    consolidate(files, rules)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    (baseline, _), (elapsed, totals) = best_of(
        args.repeat, lambda: calamine_read(files), lambda: consolidate(files, rules)
    )
    if totals != expected:
        problems.append(f"totals {dict(totals)} != generated {dict(expected)}")
    ratio = elapsed / baseline
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    fast, close = elapsed < TARGET_SECONDS, ratio < TARGET_RATIO
    print(f"files                 {len(files)}")
    print(f"calamine read only    {baseline:.3f} s  (best of {args.repeat})")
    print(f"mailproc consolidate  {elapsed:.3f} s  (best of {args.repeat})")
    print(f"ratio                 {ratio:.2f}x")
    print(f"python heap peak      {peak / 2**20:.1f} MB during consolidation (tracemalloc)")
    print(f"process max RSS       {maxrss:.0f} MB (includes generation)")
    print(f"totals                {'match' if not problems else 'MISMATCH'} {dict(totals)}")
    for problem in problems[:10]:
        print(f"  {problem}")
    print(f"time  < {TARGET_SECONDS:g} s  {'PASS' if fast else 'FAIL'}")
    print(f"ratio < {TARGET_RATIO:g}x   {'PASS' if close else 'FAIL'}")
    return 0 if fast and close and not problems else 1


if __name__ == "__main__":
    sys.exit(main())

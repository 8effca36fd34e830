"""Archive: the original of every mail and each of its attachments, kept on disk.

Files are filed as UNIT/ITEM/PERIOD/ so an office can browse them without mailproc; names
are sanitised (no path traversal, no control characters) and content-addressed by a short
sha256 prefix, so writing the same mail twice is harmless.
"""

import os
import re
import unicodedata
from pathlib import Path

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
MAX_NAME_BYTES = 150


def safe_name(name: str, fallback: str = "file") -> str:
    """A file name that stays inside its folder on any system and keeps its extension."""
    name = unicodedata.normalize("NFC", name or "").replace("..", "_")
    name = re.sub(r"_+", "_", _UNSAFE.sub("_", name)).strip().strip(".")
    name = re.sub(r"\s+", " ", name)
    if not name or set(name) <= {"_", " "}:
        name = fallback
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 10:
        stem, ext = name, ""
    while len((stem + (f".{ext}" if ext else "")).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + (f".{ext}" if ext else "")


class Archive:
    """One archive folder; every path it returns is relative to it."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def folder_for(
        self, disposition: str, unit: str | None, item: str | None, period: str | None
    ) -> Path:
        """UNIT/ITEM/PERIOD for submissions; `_quarantine` if a person must look; else `_other`."""
        if disposition in {"quarantined", "unrecognized"}:
            return Path("_quarantine")
        if unit is None:
            return Path("_other")
        return Path(safe_name(unit)) / (item or "_other") / (period or ("_none" if item else ""))

    def store(self, folder: Path, name: str, data: bytes) -> str:
        """Write `data` as folder/name unless it is there already; returns the relative path."""
        relative = folder / safe_name(name)
        target = (self.root / relative).resolve()
        if self.root.resolve() not in target.parents:
            raise ValueError(f"refusing to write outside the archive: {relative}")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, target)
        return relative.as_posix()

"""Archive: the original of every mail and each of its attachments, kept on disk.

Files are filed as UNIT/ITEM/PERIOD/ so an office can browse them without mailproc; names
are sanitised (no path traversal, no control characters) and content-addressed by a short
sha256 prefix, so writing the same mail twice is harmless. Files are 0600 and folders 0700:
the archive is units' mail.
"""

import hashlib
import re
import unicodedata
from pathlib import Path

from mailproc.private import write_private

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
MAX_NAME_BYTES = 150  # of the UTF-8 name: room left for the folders under Windows' 260 characters
MAX_EXTENSION = 10
# Names Windows gives to devices, whatever their extension or case: a file named CON.xlsx cannot
# be opened or copied there, so the archive an office browses must hold none
_WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]}
)


def safe_name(name: str, fallback: str = "file") -> str:
    """A file name that stays inside its folder and opens on any system, keeping its extension:
    no path, no control characters, no Windows device name (CON, NUL, COM1… get a leading _),
    no trailing dot or space, at most MAX_NAME_BYTES bytes. A name cut to fit ends in a short
    hash of the whole name, so two long names that differ only at their end stay two files."""
    name = unicodedata.normalize("NFC", name or "").replace("..", "_")
    name = re.sub(r"\s+", " ", re.sub(r"_+", "_", _UNSAFE.sub("_", name))).strip(" .")
    if not name or set(name) <= {"_", " ", "."}:
        name = fallback
    if name.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_DEVICES:
        name = f"_{name}"
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > MAX_EXTENSION:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        mark = "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        room = MAX_NAME_BYTES - len(f"{mark}{suffix}".encode())
        stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(" .") + mark
    return stem + suffix


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

    def read(self, relative: Path) -> bytes:
        return (self.root / relative).read_bytes()

    def remove(self, relative: Path) -> None:
        """One archived file gone (it was moved elsewhere), and its folders left empty."""
        target = self.root / relative
        target.unlink(missing_ok=True)
        for folder in target.parents:
            if folder == self.root or not folder.is_relative_to(self.root) or any(folder.iterdir()):
                break
            folder.rmdir()

    def store(self, folder: Path, name: str, data: bytes) -> str:
        """Write `data` as folder/name unless it is there already; returns the relative path."""
        relative = folder / safe_name(name)
        target = (self.root / relative).resolve()
        if self.root.resolve() not in target.parents:
            raise ValueError(f"refusing to write outside the archive: {relative}")
        if not target.exists():
            write_private(target, data)
        return relative.as_posix()

"""What reading one mail may cost: the limits an office sets (`[limits]` in the config) and the
budget one mail draws on while its containers (zip, 7z, rar, winmail.dat, and those inside
them), xlsx and docx are unpacked.

Sizes are counted while inflating, never taken from a zip's own header: a header can say 1 KB
for a part that expands to a gigabyte. The budget is one for the whole mail, across all its
files, so eight zip bombs in one mail cost no more than one.
"""

import zipfile
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1 << 16  # inflated at a time, so a lie is caught within one chunk of the limit
MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """The ceilings of reading one mail. Memory, CPU and wall time bind the process that reads
    (see `read.sandbox`); unpacking draws on a `Budget`; the archive bytes are counted as the
    mail's files are stored (`pipeline`)."""

    memory_bytes: int = 1024 * MIB  # address space of the reading process
    cpu_seconds: float = 60  # CPU time for one mail, all its files together
    wall_seconds: float = 120  # elapsed time for one mail
    unpacked_bytes: int = 64 * MIB  # taken out of every container, xlsx, docx of the mail
    file_unpacked_bytes: int = 64 * MIB  # inflated from one xlsx or docx (附件1 is ~20 KB)
    files: int = 1000  # files taken out of containers
    depth: int = 2  # a container, and a container inside it; no deeper
    archive_bytes: int = 100 * MIB  # the mail and the files taken out of it, in the archive


class OverBudget(Exception):
    """Unpacking would pass one of the mail's limits; the message says which, in Chinese."""


@dataclass
class Budget:
    """What is left of one mail's limits. It travels with each piece of work on the mail (to the
    reading process and back), so every file draws on the same amounts."""

    unpacked_bytes: int
    files: int
    file_unpacked_bytes: int
    depth: int

    @classmethod
    def of(cls, limits: Limits) -> "Budget":
        return cls(limits.unpacked_bytes, limits.files, limits.file_unpacked_bytes, limits.depth)

    def take_file(self) -> None:
        if self.files <= 0:
            raise OverBudget("邮件中的压缩文件个数超过上限，其余未解开")
        self.files -= 1

    def take(self, size: int) -> None:
        """Count `size` bytes as they come out of a container (a chunk just inflated, or a
        file taken whole out of a winmail.dat)."""
        self.unpacked_bytes -= size
        if self.unpacked_bytes < 0:
            raise OverBudget("邮件中的文件解压后总量超过上限，未解开")

    def inflate(self, archive: zipfile.ZipFile, member: zipfile.ZipInfo, keep: bool) -> bytes:
        """One member of a zip, inflated and counted against the mail and against the file it
        belongs to; its bytes when `keep`, else b"" (only the count was wanted)."""
        return self.read_counted(archive.open(member), keep)

    def read_counted(self, part: BinaryIO, keep: bool = True) -> bytes:
        """Everything `part` yields, read a chunk at a time and counted as it comes, then
        closed: a member of any archive whose reader streams (zip, rar)."""
        kept = bytearray()
        with part:
            while chunk := part.read(CHUNK):
                self.take(len(chunk))
                if keep:
                    kept += chunk
        return bytes(kept)

    def check_package(self, archive: zipfile.ZipFile) -> None:
        """Inflate every part of an xlsx or docx once, counting: a part that expands past the
        file's limit, or the mail's, stops here, before a reader (native code that trusts the
        declared sizes) allocates for it."""
        for_file = self.file_unpacked_bytes
        for member in archive.infolist():
            with archive.open(member) as part:
                while chunk := part.read(CHUNK):
                    for_file -= len(chunk)
                    self.unpacked_bytes -= len(chunk)
                    if for_file < 0:
                        limit = _mib(self.file_unpacked_bytes)
                        raise OverBudget(f"文件解压后超过 {limit} MB 上限")
                    if self.unpacked_bytes < 0:
                        raise OverBudget("邮件中的文件解压后总量超过上限")


def _mib(size: int) -> int:
    return max(size, 0) // MIB

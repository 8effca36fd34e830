"""Containers: the files that hold files — zip, 7z, rar and Outlook's winmail.dat (TNEF) —
opened into their members, which count as attachments of the mail (domain.md, "Containers").

Every member is counted against the mail's one budget as it comes out, never by the size its
container declares: zip and rar members are read a chunk at a time, 7z members are counted as
py7zr writes them (it never writes more of a member than the size it declared, and the
declared sizes are checked against the budget first), a winmail.dat member by its length.
A container that cannot be opened (damaged, locked with a password, compressed in a way no
reader here knows, over the mail's limits) raises `Unopened`; parse records the reason on the
container, which stays one attachment, and classify words it for the unit (`why_unopened`).
"""

import io
import logging
import lzma
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailproc.read.budget import Budget, OverBudget
from mailproc.read.kinds import PROTECTED_MEMBER, ZIP_ENCRYPTED_FLAG, Container
from mailproc.values import Attachment

# tnefparse logs every MAPI property it cannot decode; what it cannot read is judged here.
logging.getLogger("tnefparse").setLevel(logging.CRITICAL)

MAX_MEMBERS = 1000  # files listed in one container: more is not a unit's submission

# Why a container stays shut, as parse records it after "<kind> not opened: "
DAMAGED = "damaged"
PROTECTED = "password-protected"
NO_READER = "no reader installed"
UNSUPPORTED = "unsupported method or split volume"
TOO_BIG = "unpacked size over the limit"
TOO_MANY = "too many files"
EMPTY = "empty"
TOO_DEEP = "nested too deep"
# What the sniffing of a zip records when its central directory cannot be read
SNIFFED_DAMAGED = "truncated or corrupt"

# What the unit reads: the format by the name an office clerk knows it by, then why
FORMAT_NAMES = {
    "zip": "ZIP 压缩文件",
    "7z": "7z 压缩文件",
    "rar": "RAR 压缩文件",
    "tnef": "winmail.dat（Outlook 邮件附件包）",
}
WORDING = {
    DAMAGED: "{format}已损坏或不完整，无法解开",
    PROTECTED: "{format}设有密码，无法解开，请取消密码后重新发送",
    NO_READER: "本处无法打开{format}，请改用 zip 格式压缩，或直接发送文件本身",
    UNSUPPORTED: "{format}使用了本处无法解开的压缩方式或分卷，请改用 zip 格式压缩，"
    "或直接发送文件本身",
    TOO_BIG: "{format}解压后超过本处可处理的上限，未解开，请直接发送所需文件",
    TOO_MANY: "{format}内文件过多，未解开，请直接发送所需文件",
    EMPTY: "{format}内没有文件",
    TOO_DEEP: "{format}内又套有多层压缩文件，未解开，请直接发送文件本身",
}
# Outlook wraps files in winmail.dat only in its rich-text mode: the way out for the unit
TNEF_ADVICE = "；请在 Outlook 中把邮件格式改为 HTML 后重新发送"

# A charset decoder: (bytes, the label they came with) → (text, whether it decoded cleanly)
Decode = Callable[[bytes, str | None], tuple[str, bool]]


class Unopened(Exception):
    """A container that cannot be opened; str(e) is the reason (DAMAGED, PROTECTED, …)."""


@dataclass
class Member:
    """One file taken out of a container."""

    name: str
    raw_name: bytes | None  # the name's bytes, when they did not decode cleanly
    data: bytes
    problems: list[str] = field(default_factory=list)


def not_opened(kind: str, reason: str) -> str:
    """The problem parse records on a container left shut."""
    return f"{kind} not opened: {reason}"


def why_unopened(att: Attachment) -> str | None:
    """What the unit is told of a container that stayed shut, in Chinese; None when nothing
    was recorded against it."""
    format_name = FORMAT_NAMES.get(att.kind, "压缩文件")
    prefix = not_opened(att.kind, "")
    for problem in att.problems:
        if problem.startswith(SNIFFED_DAMAGED):
            reason = DAMAGED
        elif problem.startswith(prefix):
            reason = next((r for r in WORDING if problem[len(prefix) :].startswith(r)), DAMAGED)
        else:
            continue
        text = WORDING[reason].format(format=format_name)
        return text + TNEF_ADVICE if att.kind == "tnef" and reason == DAMAGED else text
    return None


def members(kind: str, source: Container, budget: Budget, decode: Decode) -> list[Member]:
    """The files a container of `kind` holds, taken out within `budget`; raises `Unopened`,
    or `OverBudget` when taking them out would pass the mail's limits. `decode` reads a name
    stored as bytes (the mail's own charset decoder: GBK names are common)."""
    opener = {"zip": _zip, "7z": _seven_zip, "rar": _rar, "tnef": _tnef}[kind]
    return opener(source, budget, decode)


def _declared(count: int, size: int, budget: Budget) -> None:
    """Refuse at once a container whose own listing is already over the limits: an honest
    one that is too big is not worth inflating to find out."""
    if count > MAX_MEMBERS:
        raise Unopened(TOO_MANY)
    if size > budget.unpacked_bytes:
        raise Unopened(TOO_BIG)


# --- zip -----------------------------------------------------------------------------------

ZIP_ERRORS = (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError)
# What inflating a damaged member raises besides: its deflate or LZMA stream is broken
MEMBER_ERRORS = (*ZIP_ERRORS, RuntimeError, zlib.error, lzma.LZMAError)


def _zip_name(info: zipfile.ZipInfo, decode: Decode) -> tuple[str, bytes | None]:
    """As stored when flagged UTF-8 (0x800), else its bytes decoded (UTF-8, else gb18030)."""
    if info.flag_bits & 0x800:
        return info.filename, None
    raw = info.orig_filename.encode("cp437")
    name, clean = decode(raw, None)
    return name, None if clean else raw


def _zip(source: Container, budget: Budget, decode: Decode) -> list[Member]:
    try:
        archive = source.zip()
    except ZIP_ERRORS:
        raise Unopened(DAMAGED) from None
    infos = [i for i in archive.infolist() if not i.is_dir() and "__MACOSX/" not in i.filename]
    _declared(len(infos), sum(i.file_size for i in infos), budget)
    found = []
    for info in infos:
        name, raw_name = _zip_name(info, decode)
        problems = ["undecodable file name"] if raw_name else []
        budget.take_file()
        if info.flag_bits & ZIP_ENCRYPTED_FLAG:  # named, never inflated: asked for again
            found.append(Member(name, raw_name, b"", [*problems, PROTECTED_MEMBER]))
            continue
        try:
            data = budget.inflate(archive, info, keep=True)
        except MEMBER_ERRORS as err:
            data = b""
            problems.append(f"unreadable zip member: {err}")
        found.append(Member(name, raw_name, data, problems))
    return found


# --- 7z ------------------------------------------------------------------------------------

SEVEN_ZIP_AES = b"\x06\xf1\x07\x01"  # the coder id of 7-Zip's AES-256 encryption


class _Counted:
    """One member as py7zr writes it out, counted against the mail's budget chunk by chunk."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.data = bytearray()

    def write(self, chunk: bytes | bytearray) -> int:
        self.budget.take(len(chunk))
        self.data += chunk
        return len(chunk)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return len(self.data)

    def close(self) -> None:
        pass


class _CountingFactory:
    """Where py7zr writes each member (its writer-factory interface): in memory, counted."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.written: list[tuple[str, _Counted]] = []

    def create(self, filename: str) -> _Counted:
        member = _Counted(self.budget)
        self.written.append((filename, member))
        return member

    def files(self) -> list[tuple[str, bytes]]:
        return [(name, bytes(member.data)) for name, member in self.written]


def _seven_zip(source: Container, budget: Budget, decode: Decode) -> list[Member]:
    import py7zr  # with its compression stack, only where a 7z is met

    try:
        archive = py7zr.SevenZipFile(io.BytesIO(source.data))
        files = [f for f in archive.files if not f.is_directory]
    except py7zr.PasswordRequired:  # the names themselves are enciphered
        raise Unopened(PROTECTED) from None
    except py7zr.UnsupportedCompressionMethodError:
        raise Unopened(UNSUPPORTED) from None
    except Exception:  # a damaged 7z fails in as many ways as its header can be cut
        raise Unopened(DAMAGED) from None
    _declared(len(files), sum(f.uncompressed or 0 for f in files), budget)
    for _ in files:
        budget.take_file()
    encrypted = any(
        coder.get("method") == SEVEN_ZIP_AES
        for f in files
        if f.folder is not None
        for coder in f.folder.coders
    )
    if encrypted:  # named, never decrypted: asked for again
        return [Member(f.filename, None, b"", [PROTECTED_MEMBER]) for f in files]
    written = _CountingFactory(budget)
    try:
        archive.extractall(factory=written)
    except OverBudget:
        raise
    except py7zr.UnsupportedCompressionMethodError:
        raise Unopened(UNSUPPORTED) from None
    except Exception:
        raise Unopened(DAMAGED) from None
    return [Member(name, None, data) for name, data in written.files()]


# --- rar -----------------------------------------------------------------------------------


def _rar(source: Container, budget: Budget, decode: Decode) -> list[Member]:
    import rarfile

    try:
        archive = rarfile.RarFile(io.BytesIO(source.data))
        if archive.needs_password() and not archive.infolist():  # enciphered names
            raise Unopened(PROTECTED)
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if not infos and archive.strerror():  # cut before its first file
            raise Unopened(DAMAGED)
    except Unopened:
        raise
    except rarfile.NeedFirstVolume:
        raise Unopened(UNSUPPORTED) from None
    except Exception:  # rarfile.Error, or what a header cut in its middle makes Python raise
        raise Unopened(DAMAGED) from None
    _declared(len(infos), sum(i.file_size or 0 for i in infos), budget)
    found = []
    for info in infos:
        budget.take_file()
        if info.needs_password():
            found.append(Member(info.filename, None, b"", [PROTECTED_MEMBER]))
            continue
        try:  # stored members are read here; compressed ones through unar or unrar
            data = budget.read_counted(archive.open(info))
        except rarfile.RarCannotExec:
            raise Unopened(NO_READER) from None
        except rarfile.NeedFirstVolume:
            raise Unopened(UNSUPPORTED) from None
        except OverBudget:
            raise
        except Exception:
            raise Unopened(DAMAGED) from None
        found.append(Member(info.filename, None, data))
    return found


# --- winmail.dat ---------------------------------------------------------------------------

TNEF_FIRST_OBJECT = 6  # after the signature and the key
TNEF_OBJECT_HEAD = 9  # level (1), id (2), type (2), length (4); a checksum (2) follows the data
# tnefparse copies the rest of the stream at every object it reads: a stream of many tiny
# objects before a large one would cost that copy squared. Bytes copied, at most:
TNEF_COPY_LIMIT = 4 << 30
MAPI_LONG_FILENAME = 0x3707
MAPI_FILENAME = 0x3704
MAPI_DISPLAY_NAME = 0x3001
MAPI_UNICODE = 0x001F  # a property whose text is UTF-16; 0x001E is text in the codepage
NAME_PROPERTIES = (MAPI_LONG_FILENAME, MAPI_FILENAME, MAPI_DISPLAY_NAME)  # the best first
TITLE = 0  # the attachment's title attribute (attAttachTitle), after the MAPI names


def _tnef_copy_cost(data: bytes) -> int:
    """What tnefparse will copy reading `data`: its objects' framing walked, nothing decoded."""
    offset, cost = TNEF_FIRST_OBJECT, 0
    while offset + 12 < len(data):
        cost += len(data) - offset
        (length,) = struct.unpack_from("<I", data, offset + 5)
        offset += TNEF_OBJECT_HEAD + length + 2
    return cost


def _tnef_names(tnef: Any, decode: Decode) -> list[tuple[str, bytes | None]]:
    """Each attachment's name, in order: its MAPI long file name, else the title, decoded here
    from the bytes Outlook wrote (tnefparse reads names as UTF-8, and GBK names are common)."""
    from tnefparse.mapi import decode_mapi
    from tnefparse.tnef import TNEF

    groups: list[dict[int, str | bytes]] = []  # per attachment: name property → value
    for obj in tnef.objects:
        if obj.name == TNEF.ATTATTACHRENDDATA:  # as in tnefparse: the next attachment begins
            groups.append({})
        elif obj.level != TNEF.LVL_ATTACHMENT or not groups:
            continue
        elif obj.name == TNEF.ATTATTACHTITLE:
            groups[-1].setdefault(TITLE, bytes(obj.data))
        elif obj.name == TNEF.ATTATTACHMENT:
            # latin-1 maps each byte to one character: the codepage text comes back as bytes
            for prop in decode_mapi(obj.data, "latin-1"):
                if prop.name in NAME_PROPERTIES and prop.raw_data:
                    text = prop.raw_data[0]
                    if isinstance(text, str):
                        unicode = prop.attr_type == MAPI_UNICODE
                        groups[-1][prop.name] = text if unicode else text.encode("latin-1")
    return [_tnef_name(group, tnef.codepage, decode) for group in groups]


def _tnef_name(
    found: dict[int, str | bytes], label: str | None, decode: Decode
) -> tuple[str, bytes | None]:
    for key in (*NAME_PROPERTIES, TITLE):
        value = found.get(key)
        if isinstance(value, str) and value.strip("\x00"):
            return value.strip("\x00"), None
        if isinstance(value, bytes) and value.strip(b"\x00"):
            raw = value.split(b"\x00", 1)[0]
            name, clean = decode(raw, label)
            return name, None if clean else raw
    return "", None


def _tnef(source: Container, budget: Budget, decode: Decode) -> list[Member]:
    from tnefparse.tnef import TNEF

    data = source.data
    if _tnef_copy_cost(data) > TNEF_COPY_LIMIT:
        raise Unopened(TOO_BIG)
    try:
        tnef = TNEF(data, do_checksum=False)
    except Exception:  # tnefparse meets a cut stream with whatever Python raises there
        raise Unopened(DAMAGED) from None
    try:
        names = _tnef_names(tnef, decode)
    except Exception:  # the attachments' properties are past reading: their data is not
        names = []
    attachments = [a for a in tnef.attachments if a.data]
    _declared(len(attachments), sum(len(a.data) for a in attachments), budget)
    found = []
    for number, attachment in enumerate(tnef.attachments):
        if not attachment.data:  # a link or an OLE picture without a file
            continue
        name, raw_name = names[number] if number < len(names) else ("", None)
        budget.take_file()
        budget.take(len(attachment.data))
        problems = ["undecodable file name"] if raw_name else []
        found.append(
            Member(name or f"winmail-{number + 1}.bin", raw_name, attachment.data, problems)
        )
    return found

"""Raw mail bytes → `ParsedMail`, without losing a character of Chinese mail.

mail-parser builds the message tree (and guards the stdlib parser against runaway nesting), but
its decoded fields are lossy for Chinese mail: GB2312-labelled text holding GBK-only characters,
raw 8-bit GBK names and quoted encoded words come back as mojibake or literal `=?...?=`. So every
header, name and body is decoded here from the original bytes with the stdlib `email` helpers,
reading gb2312/gbk labels as gb18030 (their superset) and unlabelled 8-bit bytes as UTF-8, else
gb18030. Whatever cannot be decoded cleanly is kept (U+FFFD plus the raw bytes) and reported in
`problems`. `ParseError` is the only exception: for input that is not a mail at all, and as the
last guard when something unforeseen breaks, so callers quarantine the file instead of crashing.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.errors
import email.header
import email.parser
import email.utils
import hashlib
import itertools
import mimetypes
import re
import struct
import zipfile
from datetime import UTC, datetime
from email.message import Message
from html.parser import HTMLParser
from pathlib import PurePosixPath

from mailproc.read import containers
from mailproc.read.budget import Budget, Limits, OverBudget
from mailproc.read.kinds import (
    BINARY_KINDS,
    CONTAINER_KINDS,
    CSV_EXTENSIONS,
    FTYP_MARK,
    HEIF_BRANDS,
    IMAGE_MAGIC,
    OFD_ROOT,
    OLE2_KINDS,
    OLE2_MAGIC,
    OLE2_SECTOR,
    OLE2_WORD_STREAM,
    OLE2_WORKBOOK_STREAMS,
    PDF_MAGIC,
    PDF_MAGIC_WITHIN,
    PROTECTED_MEMBER,
    RAR_MAGIC,
    SEVEN_ZIP_MAGIC,
    SUFFIX_KINDS,
    TNEF_CONTENT_TYPES,
    TNEF_MAGIC,
    TNEF_NAME,
    WEBP_MARK,
    ZIP_SIGNATURES,
    ZIPPED_KINDS,
    Container,
    pdf_is_complete,
)
from mailproc.values import Attachment, ParsedMail

__all__ = [
    "Attachment",
    "ParseError",
    "ParsedMail",
    "html_to_text",
    "parse_mail_time",
    "parse_message",
    "sniff_kind",
    "unparsed",
]

MAX_FORWARD_DEPTH = 3
MAX_MIME_DEPTH = 30

# Labels whose real-world content is GBK: gb18030 decodes all of it, the narrower codecs drop
# characters such as 堃 and 鎔 that Chinese clients put under a GB2312 label.
_GB_CODECS = {"gb2312", "gbk", "gb18030", "hz"}
# Labels that say nothing about 8-bit bytes: fall back to UTF-8, then gb18030.
_NO_LABEL = {"ascii", "us-ascii", "unknown-8bit", "x-unknown", "unknown", "default", ""}

_HEADER_NAME = re.compile(rb"^[!-9;-~]+[ \t]*:")
_MSG_ID = re.compile(r"<[^<>\s]+>")
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w.-]+", re.ASCII)
_CUT_MULTIPART = "truncated: multipart ends without its closing boundary"
_TRUNCATION_DEFECTS = (
    email.errors.InvalidBase64PaddingDefect,
    email.errors.InvalidBase64LengthDefect,
)


class ParseError(Exception):
    """The input is not a mail (empty, binary, no header) or could not be parsed; str(e) says why.

    Callers quarantine the file with this reason instead of crashing the run.
    """


# --- text decoding -------------------------------------------------------------------------


def _codec(label: str | None) -> str | None:
    """Python codec for a MIME charset label; GB labels widen to gb18030, unknown → None."""
    if not label:
        return None
    label = label.strip().strip("\"'").split("*", 1)[0].lower()
    if label in _NO_LABEL:
        return None
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return "gb18030" if name in _GB_CODECS else name


def _decode_bytes(data: bytes, label: str | None = None) -> tuple[str, bool]:
    """Decode with the label, else UTF-8, else gb18030; (text, clean) — never raises.

    A labelled text that fails only in its last bytes was cut off: keep the label and replace
    the broken tail rather than re-reading everything as another charset (mojibake).
    """
    primary = _codec(label)
    order = [primary] if primary else []
    order += [c for c in ("utf-8", "gb18030") if c not in order]
    for n, codec in enumerate(order):
        try:
            return data.decode(codec), True
        except UnicodeDecodeError as err:
            if n == 0 and primary and err.start >= len(data) - 4:
                break
    return data.decode(order[0], "replace"), False


def _header_bytes(value: str) -> bytes:
    """Original bytes of a compat32 header value (raw 8-bit bytes are surrogate escapes)."""
    return str(value).encode("utf-8", "surrogateescape")


def _decode_header(data: bytes) -> tuple[str, bool]:
    """RFC 2047 words and raw 8-bit bytes → text; (text, clean).

    Adjacent encoded words whose labels name the same codec are joined as bytes before
    decoding, because mailers split words inside a multi-byte character.
    """
    text, clean = _decode_bytes(data) if max(data, default=0) > 0x7F else (data.decode(), True)
    text = re.sub(r"\r?\n(?=[ \t])", "", text).replace("\r", "").replace("\n", "")
    if "=?" not in text:
        return text.strip(), clean
    try:
        pieces = email.header.decode_header(text)
    except (email.errors.HeaderParseError, ValueError):
        return text.strip(), False
    if len(pieces) == 1 and isinstance(pieces[0][0], str):  # "=?" but no encoded word
        return text.strip(), clean
    merged: list[tuple[bytes, str | None, str | None]] = []  # (bytes, label, codec key)
    for chunk, label in pieces:
        key = (_codec(label) or label) if label else None
        if label and merged and merged[-1][2] == key:
            merged[-1] = (merged[-1][0] + chunk, label, key)
        else:
            merged.append((chunk, label, key))
    out = []
    for chunk, label, _ in merged:
        if label is None:  # decode_header hands back plain text as raw-unicode-escape bytes
            out.append(chunk.decode("raw-unicode-escape"))
            continue
        part, ok = _decode_bytes(chunk, label)
        out.append(part)
        clean = clean and ok
    return "".join(out).strip(), clean


def _decode_value(value: str) -> tuple[str, bool]:
    return _decode_header(_header_bytes(value))


# --- HTML → text ---------------------------------------------------------------------------


class _HTMLText(HTMLParser):
    """Readable text of an HTML body: block tags become line breaks, links show their URL."""

    BREAKS = frozenset(
        {"p", "br", "div", "tr", "li", "ul", "ol", "table", "blockquote", "pre", "hr", "dt", "dd"}
        | {"h1", "h2", "h3", "h4", "h5", "h6", "section"}
    )
    SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.links: list[tuple[str, int]] = []  # (href, len(out) when <a> opened)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BREAKS:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append("\t")
        elif tag == "a":
            self.links.append(((dict(attrs).get("href") or "").strip(), len(self.out)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BREAKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BREAKS:
            self.out.append("\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if href and not href.startswith(("#", "javascript:")) and href != label:
                self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML body, keeping paragraph/row breaks and link targets."""
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # html.parser gives up on some broken markup
        pass
    text = "".join(parser.out).replace("\xa0", " ")
    lines = [re.sub(r"[ \r\f\v]+", " ", line).strip(" \t") for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# Link targets, which html_to_text writes out and a plain part seldom does: set aside when the
# two parts are weighed, so a link is not taken for more text.
_LINK = re.compile(r"(?:https?|ftp)://\S+|www\.\S+", re.I)
_WORD_CHARACTER = re.compile(r"\w")


def _said(text: str) -> int:
    """How much a body says: its letters, digits and Chinese characters, links set aside."""
    return len(_WORD_CHARACTER.findall(_LINK.sub("", text)))


def _body_text(plain: str, html: str) -> str:
    """The body as the sender wrote it: the plain part, unless it says less than the HTML part
    (empty, a placeholder such as “此邮件为HTML格式…”, or a shortened copy) — then the HTML
    part's text, where the week, the unit and a cloud link may be all there is."""
    if not html.strip():
        return plain
    html_text = html_to_text(html)
    placeholder = "html" in plain.lower() and "html" not in html_text.lower()
    return html_text if placeholder or _said(html_text) > _said(plain) else plain


# --- content sniffing ----------------------------------------------------------------------

_ZIP_ERRORS = containers.ZIP_ERRORS
_BAD_ZIP = f"{containers.SNIFFED_DAMAGED} zip container"
_WORKBOOK_STREAMS = {name.lower() for name in OLE2_WORKBOOK_STREAMS}


def _ext(filename: str) -> str:
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower().lstrip(".")


def _ole_streams(data: bytes) -> tuple[set[str], bool]:
    """Stream names of an OLE2 compound file and whether it is complete.

    Reads the header's FAT sector list (first 109 entries, enough for files up to ~7 MB with
    512-byte sectors, beyond that the chain just stops early) and follows the directory chain.
    """
    try:
        (shift,) = struct.unpack_from("<H", data, 0x1E)
        n_fat, first_dir = struct.unpack_from("<I I", data, 0x2C)
        size = 1 << shift if 7 <= shift <= 16 else OLE2_SECTOR
        fat_sectors = [s for s in struct.unpack_from("<109I", data, 0x4C) if s < 0xFFFFFFFA]
    except struct.error:
        return set(), False
    complete = all((s + 2) * size <= len(data) for s in fat_sectors[:n_fat])
    fat: list[int] = []
    for s in fat_sectors[:n_fat]:
        chunk = data[(s + 1) * size : (s + 2) * size]
        fat.extend(struct.unpack(f"<{len(chunk) // 4}I", chunk[: len(chunk) // 4 * 4]))
    used = [i for i, nxt in enumerate(fat) if nxt != 0xFFFFFFFF]
    if used and (used[-1] + 2) * size > len(data):
        complete = False
    names: set[str] = set()
    sector, seen = first_dir, set()
    while sector < 0xFFFFFFFA and sector not in seen and len(seen) < 10_000:
        seen.add(sector)
        block = data[(sector + 1) * size : (sector + 2) * size]
        if len(block) < size:
            complete = False
            break
        for off in range(0, size, 128):
            name_len, kind = struct.unpack_from("<HB", block, off + 64)
            if kind in (1, 2, 5) and 2 <= name_len <= 64:
                names.add(block[off : off + name_len - 2].decode("utf-16-le", "replace"))
        sector = fat[sector] if sector < len(fat) else 0xFFFFFFFE
    return names, complete


def _zip_kind(names: list[str], zf: zipfile.ZipFile) -> str:
    """Office/ODF format of a readable zip from its member names."""
    if any(n.startswith("xl/") for n in names):
        return "xlsx"
    if any(n.startswith("word/") for n in names):
        return "docx"
    if OFD_ROOT in names:  # a document, never unpacked into its XML parts
        return "ofd"
    if "mimetype" in names:
        try:
            mimetype = zf.read("mimetype")[:100]
        except (*_ZIP_ERRORS, RuntimeError):
            mimetype = b""
        if b"opendocument.spreadsheet" in mimetype:
            return "ods"
        if mimetype.startswith(b"application/vnd."):
            return "other"
    if any(n.startswith(("ppt/", "visio/")) for n in names):
        return "other"
    return "zip"


def _sniff(container: Container, filename: str) -> tuple[str, str | None]:
    """(kind, problem) of a file from its first bytes; a zip is looked into through the
    attachment's `container`, which later stages open no more.

    The name only breaks ties (WPS .et/.wps) or stands in when the content is cut off or
    unrecognisable, so a spreadsheet renamed .doc is still read as a spreadsheet.
    """
    data = container.data
    ext = _ext(filename)
    named = SUFFIX_KINDS.get(ext, ext)
    guess = named if named in BINARY_KINDS else "other"
    if not data:
        return guess, "empty file"
    head = data[:8]
    if head.startswith(ZIP_SIGNATURES):
        try:
            zf = container.zip()
            kind = _zip_kind(zf.namelist(), zf)
        except _ZIP_ERRORS:
            return (guess if guess in ZIPPED_KINDS else "zip"), _BAD_ZIP
        if kind == "xlsx" and ext == "et":
            return "et", None
        return kind, None
    if head == OLE2_MAGIC:
        streams, complete = _ole_streams(data)
        problem = None if complete else "truncated or corrupt OLE2 file"
        lowered = {s.lower() for s in streams}
        if lowered & _WORKBOOK_STREAMS:
            kind = "et" if ext == "et" else "xls"
        elif OLE2_WORD_STREAM.lower() in lowered:
            kind = "wps" if ext == "wps" else "doc"
        elif ext in OLE2_KINDS:
            kind = ext
        else:
            kind = "other"
        return kind, problem
    if PDF_MAGIC in data[:PDF_MAGIC_WITHIN]:
        return "pdf", None if pdf_is_complete(data) else "truncated PDF (no %%EOF)"
    if data.startswith(RAR_MAGIC):
        return "rar", None
    if data.startswith(SEVEN_ZIP_MAGIC):
        return "7z", None
    if data.startswith(TNEF_MAGIC):
        return "tnef", None
    if data.startswith(IMAGE_MAGIC) or data[8:12] == WEBP_MARK:
        return "image", None
    if data[4:8] == FTYP_MARK and data[8:12] in HEIF_BRANDS:  # an iPhone's HEIC photo
        return "image", None
    sample = data[:4096]
    controls = sum(b < 9 or (13 < b < 32 and b != 27) for b in sample)
    if b"\x00" not in sample and controls * 100 <= len(sample) and _decode_bytes(sample[:-4])[1]:
        return ("csv" if ext in CSV_EXTENSIONS else "text"), None
    if _utf16_text(sample):  # Excel's 另存为“Unicode 文本”
        return ("csv" if ext in CSV_EXTENSIONS else "text"), None
    if guess != "other":
        return guess, f"content does not look like a .{ext} file"
    return "other", None


def _utf16_text(sample: bytes) -> bool:
    """Whether bytes are text in UTF-16 with its byte order mark: characters, no controls
    but tabs and line ends."""
    if sample.startswith(codecs.BOM_UTF16_LE):
        encoding = "utf-16-le"
    elif sample.startswith(codecs.BOM_UTF16_BE):
        encoding = "utf-16-be"
    else:
        return False
    text = sample[2:].decode(encoding, "replace")[:-1]  # the sample may end inside a character
    return bool(text) and not any((c < " " and c not in "\t\r\n") or c == "\ufffd" for c in text)


def sniff_kind(data: bytes, filename: str) -> str:
    """File type from content: xlsx xls et ods csv docx doc wps pdf ofd zip rar 7z tnef image
    text other."""
    return _sniff(Container(data), filename)[0]


# --- attachments and zips ------------------------------------------------------------------


def _make_attachment(
    data: bytes,
    filename: str,
    content_type: str,
    raw_filename: bytes | None = None,
    from_archive: str | None = None,
    problems: list[str] | None = None,
) -> Attachment:
    att = Attachment(
        filename=filename,
        content_type=content_type,
        kind="",  # sniffed below, through the attachment's own container
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        raw_filename=raw_filename,
        from_archive=from_archive,
        problems=list(problems or []),
    )
    att.kind, problem = _sniff(att.container, filename)
    if problem:
        att.problems.append(problem)
    return att


def _opens(att: Attachment) -> bool:
    """Whether an attachment is a container to take files out of: not one whose zip could not
    even be listed, nor a member its own archive kept locked."""
    return (
        att.kind in CONTAINER_KINDS
        and bool(att.data)
        and _BAD_ZIP not in att.problems
        and PROTECTED_MEMBER not in att.problems
    )


def _unpack(att: Attachment, budget: Budget, level: int = 0) -> list[Attachment]:
    """The files of a container attachment (zip, 7z, rar, winmail.dat), each an attachment of
    the mail, or the container itself with the reason it stays shut (`read.containers`).

    The mail's budget guards against bombs: bytes are counted as they come out, across every
    container of the mail; a container inside a container is opened while its depth allows.
    """
    try:
        found = containers.members(att.kind, att.container, budget, _decode_bytes)
    except containers.Unopened as shut:
        att.problems.append(containers.not_opened(att.kind, str(shut)))
        return [att]
    except OverBudget as over:
        att.problems.append(containers.not_opened(att.kind, f"{containers.TOO_BIG}: {over}"))
        return [att]
    if not found:
        if att.kind == "tnef":  # Outlook's rich-text body alone: no file was sent
            return []
        att.problems.append(containers.not_opened(att.kind, containers.EMPTY))
        return [att]
    archive = f"{att.from_archive}/{att.filename}" if att.from_archive else att.filename
    members: list[Attachment] = []
    for found_member in found:
        name = found_member.name
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        member = _make_attachment(
            found_member.data, name, ctype, found_member.raw_name, archive, found_member.problems
        )
        if not _opens(member):
            members.append(member)
        elif level + 1 < budget.depth:
            members.extend(_unpack(member, budget, level + 1))
        else:
            member.problems.append(containers.not_opened(member.kind, containers.TOO_DEEP))
            members.append(member)
    return members


# --- MIME walking --------------------------------------------------------------------------


def _part_headers(part: Message) -> Message:
    """Content-Type/-Disposition of a part with their original bytes as latin-1 text.

    latin-1 maps each byte to one character, so stdlib parameter parsing (RFC 2231 included)
    works unchanged and `.encode("latin-1")` gives back the exact bytes of any value.
    """
    view = Message()
    view.set_default_type(part.get_default_type())
    for name, value in part.raw_items():
        if name.lower() in ("content-type", "content-disposition"):
            view[name] = _header_bytes(value).decode("latin-1")
    return view


def _param_text(value: str | tuple[str | None, str | None, str]) -> tuple[str, bytes, bool]:
    """A parameter value from `_part_headers` → (text, original bytes, clean)."""
    if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded latin-1 text)
        charset, _, text = value
        raw = text.encode("latin-1", "replace")
        decoded, clean = _decode_bytes(raw, charset)
    else:
        raw = value.encode("latin-1", "replace")
        decoded, clean = _decode_header(raw)
    return decoded, raw, clean


def _filename(view: Message) -> tuple[str, bytes | None, bool]:
    """(name, raw bytes, clean) from Content-Disposition filename, else Content-Type name."""
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        value = view.get_param(param, header=header)
        if value:
            text, raw, clean = _param_text(value)
            if text:
                return text, raw, clean
    return "", None, True


# A stretch of whole lines of base64 characters this long is an attachment's body, cut out
# before the stdlib parser sees it (shorter ones are left to it: they cost it little). The
# look-behind lets a match start only where a stretch starts: without it the search is tried
# again at every byte of a shorter stretch, quadratic in its length (35 ms a mail).
_BLOB_MIN = 16 * 1024
_BASE64_STRETCH = re.compile(rb"(?<![A-Za-z0-9+/\r\n])[A-Za-z0-9+/\r\n]{%d,}" % _BLOB_MIN)
_BLOB_MARK = b"MAILPROCBLOB"  # plus the run's number: not a multiple of 4 characters long
_BLOB_LINE = re.compile(rb"MAILPROCBLOB(\d+)\r?\n?")
_BASE64_ALPHABET = re.compile(rb"[^A-Za-z0-9+/=]")


def _runs(raw: bytes) -> list[tuple[int, int]]:
    """Spans of at least _BLOB_MIN bytes made of whole lines of base64 characters, holding a
    whole number of 4-character groups; found by one scan for long stretches of those
    characters, with no object made per line."""
    runs = []
    for stretch in _BASE64_STRETCH.finditer(raw):
        start, stop = stretch.span()
        if start and raw[start - 1 : start] != b"\n":  # begins inside a line: from the next
            start = raw.find(b"\n", start, stop) + 1
        while start < stop and raw[start] in b"\r\n":  # the blank line ending a header stays
            start += 1
        end = raw.rfind(b"\n", start, stop) + 1  # ends with its last whole line
        while end > start:  # lines dropped from the end until the groups are whole
            newlines = raw.count(b"\n", start, end) + raw.count(b"\r", start, end)
            if (end - start - newlines) % 4 == 0:
                break
            end = raw.rfind(b"\n", start, end - 1) + 1
        if start and end - start >= _BLOB_MIN:
            runs.append((start, end))
    return runs


class _Blobs:
    """The long base64 bodies of a mail, left in its raw bytes while the rest is parsed.

    The stdlib parser keeps every line of a body as its own string: a 68 MB mail costs it some
    700 MB, ten times its size. Cut out and replaced by a one-line mark, a body is decoded
    straight from the raw bytes when its part is read (`payload`), so reading a mail costs
    about twice its size. Runs hold whole 4-character groups only, so a body decodes in pieces:
    the mark's run, and what the parser kept before and after it (the short last line with its
    padding).
    """

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.spans: list[tuple[int, int]] = []
        pieces, last = [], 0
        for start, end in _runs(raw):
            pieces += [raw[last:start], b"%s%d\r\n" % (_BLOB_MARK, len(self.spans))]
            self.spans.append((start, end))
            last = end
        self.text = b"".join([*pieces, raw[last:]]) if self.spans else raw

    def restored(self, payload: bytes) -> bytes:
        """A payload with the runs put back as they were (for a part that is not base64)."""
        return _BLOB_LINE.sub(lambda m: self.raw[slice(*self.spans[int(m.group(1))])], payload)

    def _in_place(self, pieces: list[bytes]) -> bytes | None:
        """A body of one run whose lines before and after lie in the raw mail just as the
        parser kept them, decoded in one piece from the raw bytes: decoded in pieces and joined,
        a 48 MB file would be in memory twice. None for any other body, or one that will not
        decode whole."""
        if len(pieces) != 3:
            return None
        before, number, after = pieces
        start, end = self.spans[int(number)]
        if start < len(before) or self.raw[start - len(before) : start] != before:
            return None
        if self.raw[end : end + len(after)] != after:
            return None
        try:
            return binascii.a2b_base64(memoryview(self.raw)[start - len(before) : end + len(after)])
        except binascii.Error:
            return None

    def payload(self, part: Message) -> tuple[bytes, list[str]]:
        """A part's decoded bytes, its runs decoded from the raw mail without a copy of them."""
        text = _header_bytes(part.get_payload())
        if part.get("content-transfer-encoding", "").strip().lower() != "base64":
            part.set_payload(self.restored(text).decode("ascii", "surrogateescape"))
            return part.get_payload(decode=True) or b"", []
        pieces = _BLOB_LINE.split(text)  # text, run number, text, …, text
        whole_body = self._in_place(pieces)
        if whole_body is not None:
            return whole_body, []
        chunks: list[bytes] = []
        problems: list[str] = []
        carry = b""  # base64 characters short of a whole group, waiting for the next piece
        for index, piece in enumerate(pieces):
            if index % 2:  # a run: decoded from the raw bytes as they lie
                run = memoryview(self.raw)[slice(*self.spans[int(piece)])]
                if carry:  # a group split across the mark (not as mail programs write)
                    joined = carry + _BASE64_ALPHABET.sub(b"", run)
                    whole = len(joined) // 4 * 4
                    run, carry = joined[:whole], joined[whole:]
                chunks.append(binascii.a2b_base64(run))
                continue
            alphabet = carry + _BASE64_ALPHABET.sub(b"", piece)
            last = index == len(pieces) - 1
            whole = len(alphabet) if last else len(alphabet) // 4 * 4
            carry = alphabet[whole:]
            try:
                chunks.append(binascii.a2b_base64(alphabet[:whole]))
            except binascii.Error:  # cut off in transfer: what is whole is kept
                problems.append("truncated base64")
                usable = alphabet[:whole].rstrip(b"=")
                chunks.append(binascii.a2b_base64(usable[: len(usable) // 4 * 4]))
        chunks = [chunk for chunk in chunks if chunk]
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), problems


class _Walker:
    """Collects bodies, attachments and forwarded messages of one message tree."""

    def __init__(self, depth: int, budget: Budget, blobs: _Blobs) -> None:
        self.depth = depth
        self.budget = budget
        self.blobs = blobs
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[Attachment] = []
        self.forwarded: ParsedMail | None = None
        self.problems: list[str] = []
        self.last_attachment: Attachment | None = None

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def walk(self, part: Message, level: int = 0, in_report: bool = False) -> None:
        if level > MAX_MIME_DEPTH:
            self.problem("MIME parts nested too deep; inner parts skipped")
            return
        for defect in part.defects:
            if isinstance(defect, email.errors.CloseBoundaryNotFoundDefect):
                self.problem(_CUT_MULTIPART)
            elif isinstance(defect, email.errors.StartBoundaryNotFoundDefect):
                self.problem("multipart without its boundary; parts not separated")
        ctype = _part_headers(part).get_content_type()
        if ctype == "message/rfc822" and part.is_multipart():
            self.forward(part, in_report)
            return
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                report = in_report or ctype == "multipart/report"
                for child in payload:
                    if isinstance(child, Message):
                        self.walk(child, level + 1, report)
            return
        self.leaf(part, ctype)

    def forward(self, part: Message, in_report: bool) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, Message):
            return
        if self.depth >= MAX_FORWARD_DEPTH:
            self.problem("forwarded messages nested too deep; innermost not parsed")
            return
        try:
            raw = inner.as_bytes()
        except (LookupError, UnicodeError, ValueError, TypeError, email.errors.MessageError):
            raw = b""
        parsed = _from_message(inner, raw, self.depth + 1, self.budget, self.blobs)
        for problem in parsed.problems:
            self.problem(f"forwarded message: {problem}")
        if self.forwarded is None:
            self.forwarded = parsed
        # A bounce or complaint returns the original mail: its files are not a submission.
        if not in_report:
            self.attachments.extend(parsed.attachments)

    def payload(self, part: Message, name: str) -> tuple[bytes, list[str]]:
        """Decoded payload bytes and transfer-encoding problems (cut-off base64 salvaged)."""
        if self.blobs.spans and _BLOB_MARK in _header_bytes(part.get_payload()):
            return self.blobs.payload(part)
        before = len(part.defects)
        try:
            data = part.get_payload(decode=True)
        except (ValueError, TypeError, LookupError, binascii.Error):
            data = None
        problems = []
        new = part.defects[before:]
        if any(isinstance(d, email.errors.InvalidBase64LengthDefect) for d in new):
            text = _header_bytes(part.get_payload())
            alphabet = re.sub(rb"[^A-Za-z0-9+/]", b"", text)
            data = base64.b64decode(alphabet[: len(alphabet) // 4 * 4])
        if any(isinstance(d, _TRUNCATION_DEFECTS) for d in new):
            problems.append("truncated base64")
            self.problem(f"truncated base64 in {name}")
        elif any(isinstance(d, email.errors.InvalidBase64CharactersDefect) for d in new):
            problems.append("invalid characters in base64")
        return data if isinstance(data, bytes) else b"", problems

    def leaf(self, part: Message, ctype: str) -> None:
        view = _part_headers(part)
        name, raw_name, clean = _filename(view)
        attached = bool(name) or (view.get_content_disposition() or "").lower() == "attachment"
        # a "multipart" without boundaries is a leaf too: show its text rather than lose it
        body_type = ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")
        if body_type and not attached:
            data, _ = self.payload(part, f"the {ctype} body")
            text, ok = _decode_bytes(data, view.get_content_charset())
            if not ok:
                self.problem(f"undecodable bytes in {ctype} body")
            (self.html if ctype == "text/html" else self.plain).append(text)
            self.last_attachment = None
            return
        if not attached and ctype.startswith("text/"):
            self.last_attachment = None
            return  # delivery reports, rfc822-headers, calendars: not files
        if not name:
            ext = mimetypes.guess_extension(ctype) or ".bin"
            name = f"attachment-{len(self.attachments) + 1}{ext}"
        data, problems = self.payload(part, repr(name))
        if not clean:
            problems.append("undecodable file name")
            self.problem(f"undecodable file name {name!r}")
        att = _make_attachment(data, name, ctype, None if clean else raw_name, None, problems)
        outlook = ctype in TNEF_CONTENT_TYPES or name.lower() == TNEF_NAME
        if outlook and att.kind in ("other", "text"):  # a winmail.dat that is not whole
            att.kind = "tnef"
        self.last_attachment = att
        self.attachments.extend(_unpack(att, self.budget) if _opens(att) else [att])


# --- headers -------------------------------------------------------------------------------


# The years a mail's time may fall in. A Date: or Received: outside them is a clock gone wrong
# or a forged header, never a moment the campaign saw; and every time inside converts to any
# time zone (year 9999 at -1200 overflows `astimezone`), so a reader can trust what it is given.
PLAUSIBLE_YEARS = range(1990, 2101)
# The digit runs of a date that are neither part of the time (09:00:00.5) nor the zone (+0800)
_DATE_NUMBER = re.compile(r"(?<![\d:.+-])\d+(?![\d:.])")


def parse_mail_time(value: str | None) -> datetime | None:
    """The moment a Date: or Received: time names (UTC when it names no zone); None when it is
    absent, garbage or impossible: a year outside PLAUSIBLE_YEARS, or one written with 1 or 3
    digits, or as 0001, which the two-digit rule of RFC 5322 would read as 2001."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    numbers = _DATE_NUMBER.findall(value)
    written = numbers[-1] if numbers else ""  # the year follows the day (and asctime's time)
    if parsed.year not in PLAUSIBLE_YEARS or written not in (
        str(parsed.year),
        f"{parsed.year % 100:02d}",
    ):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _readable(text: str) -> str:
    """Text with the raw bytes a header kept undecoded (surrogate escapes) shown as U+FFFD: an
    address or Message-ID with a broken byte is still recorded, stored and shown."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _addresses(values: list[str], problems: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-case address) pairs; names decoded even when quoted (Foxmail)."""
    out = []
    for name, addr in email.utils.getaddresses(values):
        addr = _readable(addr.strip().lower())
        if "@" not in addr:
            continue
        text, clean = _decode_value(name)
        if not clean:
            problems.append("undecodable bytes in an address display name")
        out.append((text.strip().strip('"').strip(), addr))
    if not out:  # getaddresses gives up on some broken headers: keep what looks like addresses
        out = [("", _readable(a.lower())) for v in values for a in _ADDRESS.findall(v)]
    return out


def _from_message(
    msg: Message, raw: bytes, depth: int, budget: Budget, blobs: _Blobs
) -> ParsedMail:
    problems: list[str] = []
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        text, clean = _decode_value(value)
        if not clean:
            problems.append(f"undecodable bytes in {name} header")
        headers.setdefault(name.lower(), []).append(text)
    raw_headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        raw_headers.setdefault(name.lower(), []).append(value)

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    senders = _addresses(raw_headers.get("from", [])[:1], problems)
    reply_to = _addresses(raw_headers.get("reply-to", [])[:1], problems)
    received = raw_headers.get("received", [])
    walker = _Walker(depth, budget, blobs)
    try:
        walker.walk(msg)
    except RecursionError:
        walker.problem("MIME structure nested too deep; parts skipped")
    if walker.last_attachment and _CUT_MULTIPART in walker.problems:
        walker.last_attachment.problems.append("truncated: the mail ends inside this file")
    plain = "\n".join(t.replace("\r\n", "\n").strip() for t in walker.plain if t.strip())
    html = "\n".join(walker.html)
    message_id = _readable("".join((first("message-id") or "").split())) or None
    in_reply_to = _MSG_ID.findall(_readable(first("in-reply-to") or ""))
    references = _readable(" ".join(headers.get("references", [])))
    return ParsedMail(
        raw=raw,
        message_id=message_id,
        subject=first("subject") or "",
        from_name=senders[0][0] if senders else "",
        from_address=senders[0][1] if senders else "",
        to=[a for _, a in _addresses(raw_headers.get("to", []), problems)],
        cc=[a for _, a in _addresses(raw_headers.get("cc", []), problems)],
        reply_to=reply_to[0][1] if reply_to else None,
        date=parse_mail_time(first("date")),
        received_at=parse_mail_time(received[0].rpartition(";")[2]) if received else None,
        in_reply_to=in_reply_to[0]
        if in_reply_to
        else (_readable(first("in-reply-to") or "") or None),
        references=_MSG_ID.findall(references) or references.split(),
        headers=headers,
        content_type=_part_headers(msg).get_content_type(),
        body_text=_body_text(plain, html),
        body_html=html,
        attachments=walker.attachments,
        forwarded=walker.forwarded,
        problems=list(dict.fromkeys(problems + walker.problems)),
    )


def _check_is_mail(raw: bytes) -> None:
    """Raise ParseError for input that is plainly not a mail."""
    if not raw.strip():
        raise ParseError("empty file")
    head = re.split(rb"\r?\n\r?\n", raw[:65536], maxsplit=1)[0]
    if b"\x00" in head:
        raise ParseError("binary data (NUL bytes in the header area), not a mail")
    lines = [line for line in head.splitlines() if line.strip()]
    if lines and lines[0].startswith(b"From "):  # mbox separator line
        lines = lines[1:]
    if not lines or not _HEADER_NAME.match(lines[0]):
        raise ParseError("no header lines at the start, not a mail")


def _load(raw: bytes) -> tuple[Message, list[str]]:
    """The stdlib's message tree, else headers only when the MIME nesting is too deep for it.

    mail-parser used to wrap this parse, and its own second pass over the tree (bodies and
    attachments decoded into its fields, a quarter of parsing) was thrown away: only the
    tree is read here, and `_from_message` reads it once.
    """
    try:
        return email.message_from_bytes(raw), []
    except RecursionError:
        return _headers_only(raw)


def _headers_only(raw: bytes) -> tuple[Message, list[str]]:
    msg = email.parser.BytesHeaderParser().parsebytes(raw)
    msg.set_payload("")
    return msg, ["MIME structure nested too deep to parse; body and files not read"]


def parse_message(raw: bytes, budget: Budget | None = None) -> ParsedMail:
    """Parse raw mail bytes; raises only ParseError, for input that is not a mail at all. Zips
    are unpacked within `budget` (the mail's; by default, the default limits')."""
    _check_is_mail(raw)
    try:
        blobs = _Blobs(raw)
        msg, problems = _load(blobs.text)
        if not msg.keys():
            raise ParseError("no mail headers")
        parsed = _from_message(msg, raw, 0, budget or Budget.of(Limits()), blobs)
    except ParseError:
        raise
    except Exception as err:  # hostile input must reach quarantine with a reason, not crash
        raise ParseError(f"could not parse: {type(err).__name__}: {err}") from err
    parsed.problems[:0] = problems
    return parsed


# Header fields a mail gains on its way, not from its sender: two copies that differ only in
# these came by two routes.
_TRACE_FIELDS = frozenset(
    {
        b"received",
        b"delivered-to",
        b"return-path",
        b"x-original-to",
        b"authentication-results",
        b"received-spf",
        b"x-received",
        b"arc-seal",
        b"arc-message-signature",
        b"arc-authentication-results",
    }
)
_FIELD_START = re.compile(rb"^[!-9;-~]+:", re.M)


def without_trace(raw: bytes) -> bytes:
    """The mail's bytes with the trace header fields taken out and line ends made alike: what
    two copies of one mail that came by different routes have in common."""
    text = raw.replace(b"\r\n", b"\n")
    head, _, body = text.partition(b"\n\n")
    starts = [m.start() for m in _FIELD_START.finditer(head)] + [len(head)]
    kept = [
        head[start:end]
        for start, end in itertools.pairwise(starts)
        if head[start : head.index(b":", start)].strip().lower() not in _TRACE_FIELDS
    ]
    return b"".join(kept) + b"\n\n" + body


def unparsed(raw: bytes) -> ParsedMail:
    """A mail that could not be parsed, as nothing but its bytes: the office can still book it
    for a unit and item (`mailproc assign`); it has no sender to answer."""
    return ParsedMail(
        raw=raw,
        message_id=None,
        subject="",
        from_name="",
        from_address="",
        to=[],
        cc=[],
        reply_to=None,
        date=None,
        received_at=None,
        in_reply_to=None,
        references=[],
        headers={},
        content_type="",
        body_text="",
        body_html="",
        attachments=[],
    )
